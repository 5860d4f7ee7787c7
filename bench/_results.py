"""What every bench script does with its result: print it and append it to its results file."""

from __future__ import annotations

from pathlib import Path


def report(results: Path, heading: str, text: str) -> None:
    """Print `text` and append it to `results` (a Markdown file begun with `heading`)."""
    print(text)
    results.parent.mkdir(exist_ok=True)
    if not results.exists():
        results.write_text(f"# {heading}\n")
    with results.open("a") as handle:
        handle.write(text)
