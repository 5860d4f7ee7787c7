"""First start and read-only start of each flavour, and the size of each: issue 18.

Usage: .venv/bin/python bench/startup.py --dist DIR [--runs 7] [--work DIR]
DIR holds one build's archives (`relocpy build … --out DIR`). For each install flavour
(install_only, install_only_stripped; the .tar.zst of each), every run unpacks a fresh tree
(relocpy's extractor, as an install does) and times `python -c "import json, ssl, asyncio,
sqlite3"` with a clear environment:
- first run: the first start of the fresh tree, by its owner (root: it may write bytecode);
- read-only: starts by another user (nobody, via setpriv) of a fresh tree its owner never
  started, so nobody could write bytecode into it: a container layer, a system-wide install
  (the median of 3 starts, each alike);
the flavours alternate within each run. Also the sizes: archives, unpacked bytes and files.
Results: stdout and bench/results/startup.md (appended).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import report  # noqa: E402

from relocpy.core.archive import extract_archive, open_archive_stream  # noqa: E402

CODE = "import json, ssl, asyncio, sqlite3"
FLAVOURS = ("install_only", "install_only_stripped")
_EXE = "python3.*[0-9]"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C.UTF-8"}


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=_env(), check=True, stdout=subprocess.DEVNULL, cwd="/")
    return time.perf_counter() - start


def _archive(dist: Path, flavour: str) -> Path:
    found = sorted(dist.glob(f"cpython-*-{flavour}.tar.zst"))
    if not found:
        sys.exit(f"no cpython-*-{flavour}.tar.zst in {dist}")
    return found[-1]


def sizes(archive: Path) -> dict[str, float]:
    unpacked = files = 0
    with open_archive_stream(archive) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            files += 1
            unpacked += member.size
    gz = archive.with_name(archive.name.removesuffix(".tar.zst") + ".tar.gz")
    return {
        "zst MB": archive.stat().st_size / 1e6,
        "gz MB": gz.stat().st_size / 1e6 if gz.is_file() else float("nan"),
        "unpacked MB": unpacked / 1e6,
        "entries": files,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dist", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp"))
    args = parser.parse_args()
    archives = {flavour: _archive(args.dist, flavour) for flavour in FLAVOURS}
    work = Path(tempfile.mkdtemp(prefix="relocpy-startup-", dir=args.work))
    work.chmod(0o755)  # nobody must reach the trees (and only read them)
    first: dict[str, list[float]] = {f: [] for f in FLAVOURS}
    readonly: dict[str, list[float]] = {f: [] for f in FLAVOURS}
    try:
        for run in range(args.runs):
            order = FLAVOURS if run % 2 == 0 else tuple(reversed(FLAVOURS))
            trees = {}
            for flavour in order:  # two fresh trees each: one its owner starts, one nobody
                for who in ("owner", "nobody"):
                    dest = work / f"{flavour}-{run}-{who}"
                    extract_archive(archives[flavour], dest)
                    trees[flavour, who] = str(next((dest / "python" / "bin").glob(_EXE)))
            for flavour in order:
                first[flavour].append(_timed([trees[flavour, "owner"], "-c", CODE]))
            for flavour in order:  # never started by a user who could write its bytecode
                python = trees[flavour, "nobody"]
                readonly[flavour].append(
                    statistics.median(_timed([*NOBODY, python, "-c", CODE]) for _ in range(3))
                )
            for path in work.iterdir():
                shutil.rmtree(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    lines = [
        f'### start-up: `python -c "{CODE}"` (median of {args.runs} fresh trees)',
        "",
        f"archives: `{archives['install_only'].name}` and its stripped twin",
        "",
        "| flavour | first run (owner, fresh tree) | read-only (another user)"
        " | runs: first / read-only (ms) |",
        "| --- | --- | --- | --- |",
    ]
    for flavour in FLAVOURS:
        lines.append(
            f"| {flavour} | {med(first[flavour]) * 1000:.0f} ms"
            f" | {med(readonly[flavour]) * 1000:.0f} ms"
            f" | {', '.join(f'{t * 1000:.0f}' for t in first[flavour])} /"
            f" {', '.join(f'{t * 1000:.0f}' for t in readonly[flavour])} |"
        )
    for label, times in (("first run", first), ("read-only", readonly)):
        ratios = [s / f for s, f in zip(times[FLAVOURS[1]], times[FLAVOURS[0]], strict=True)]
        lines.append(
            f"\n{label}: stripped / install_only, median of the {len(ratios)} paired ratios:"
            f" {med(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})"
        )
    lines += [
        "",
        "| flavour | .tar.zst | .tar.gz | unpacked | entries |",
        "| --- | --- | --- | --- | --- |",
    ]
    for flavour in FLAVOURS:
        size = sizes(archives[flavour])
        lines.append(
            f"| {flavour} | {size['zst MB']:.1f} MB | {size['gz MB']:.1f} MB |"
            f" {size['unpacked MB']:.1f} MB | {size['entries']:.0f} |"
        )
    report(
        HERE / "results" / "startup.md",
        "Start-up and size per flavour (bench/startup.py)",
        "\n" + "\n".join(lines) + "\n",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
