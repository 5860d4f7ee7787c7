"""What relocpy's scripts hook costs every start: the same tree with no hook, with the `.pth`
file older builds had, and with the `sitecustomize.py` they have now (issue 18: start-up no
slower than the distribution's).

Usage: .venv/bin/python bench/startup_hook.py --archive ARCHIVE [--rounds 15] [--work DIR]
ARCHIVE is a relocpy install_only archive; it is unpacked once, and before each round the hook
files are switched (every variant's bytecode is written by an untimed start first). Each round
times `-c pass` and `-c "import json, ssl, asyncio, sqlite3"` 10 times per variant, variants
interleaved, clear environment. Reported: medians and the ratio to the tree without a hook.
Results: stdout and bench/results/startup.md (appended).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import report  # noqa: E402

COMMANDS = {
    "-c pass": "pass",
    "import json, ssl, asyncio, sqlite3": "import json, ssl, asyncio, sqlite3",
}
PTH_LINE = "import _relocpy_scripts; _relocpy_scripts.register()\n"


def _switch(site: Path, variant: str) -> None:
    for name in ("_relocpy_scripts.pth", "sitecustomize.py"):
        (site / name).unlink(missing_ok=True)
    runtime = resources.files("relocpy").joinpath("runtime")
    (site / "_relocpy_scripts.py").write_text(runtime.joinpath("scripts_hook.py").read_text())
    if variant == ".pth (before)":
        (site / "_relocpy_scripts.pth").write_text(PTH_LINE)
    elif variant == "sitecustomize (now)":
        (site / "sitecustomize.py").write_text(runtime.joinpath("sitecustomize.py").read_text())


def _time(python: Path, code: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(python), "-c", code], env={}, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.md")
    args = parser.parse_args()
    from relocpy.core.archive import extract_archive
    from relocpy.core.tree import inspect_tree

    work = Path(tempfile.mkdtemp(prefix="relocpy-hook-bench-", dir=args.work))
    variants = ["no hook", ".pth (before)", "sitecustomize (now)"]
    times = {(v, c): [] for v in variants for c in COMMANDS}
    try:
        extract_archive(args.archive, work / "x", top="python")
        tree = inspect_tree(work / "x" / "python")
        site = tree.stdlib / "site-packages"
        for _ in range(args.rounds):
            for variant in variants:
                _switch(site, variant)
                for label, code in COMMANDS.items():
                    _time(tree.executable, code, 1)  # writes this variant's bytecode
                    times[variant, label] += _time(tree.executable, code, 10)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    lines = [
        f"### the scripts hook's cost per start, {time.strftime('%Y-%m-%d')}",
        "",
        f"`{args.archive.name}`, {args.rounds} rounds x 10 starts per variant, interleaved",
        "",
        "| hook | " + " | ".join(f"`{c}`" for c in COMMANDS) + " |",
        "| --- | " + " | ".join("---" for _ in COMMANDS) + " |",
    ]
    for variant in variants:
        cells = []
        for label in COMMANDS:
            value, base = med(times[variant, label]), med(times["no hook", label])
            cells.append(f"{value * 1000:.2f} ms ({value / base:.3f})")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    report(args.out, "Start-up per flavour (bench/startup.py)", "\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
