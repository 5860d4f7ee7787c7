"""What relocpy's scripts hook costs every start: the same tree with no hook, with the `.pth`
file older builds had, and with the `sitecustomize.py` they have now (issue 18: start-up no
slower than the distribution's).

Usage: .venv/bin/python bench/startup_hook.py --archive ARCHIVE [--rounds 15] [--work DIR]
         [--root ROOT]
ARCHIVE is a relocpy install_only archive; it is unpacked once per variant (so the variants
can be interleaved start by start; each tree is started once, untimed, to write its bytecode).
Each round times `-c pass` and `-c "import json, ssl, asyncio, sqlite3"` once per variant and
command, in a new random order, with a clear environment. With `--root` (a Debian root, such as
bench/interpreters.py's trixie one), everything runs chrooted there, the trees in its /opt, and
that root's own /usr/bin/python3.X is measured alongside. Reported: medians, and the median of
the paired ratios (each start divided by the same round's start of the baseline: Debian's
interpreter with `--root`, else the tree without a hook).
Results: stdout and bench/results/startup.md (appended).
"""

from __future__ import annotations

import argparse
import random
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp"))
    parser.add_argument("--root", type=Path, help="a Debian root to run everything in")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.md")
    args = parser.parse_args()
    from relocpy.core.archive import extract_archive
    from relocpy.core.tree import inspect_tree

    base = args.root / "opt" if args.root else args.work
    work = Path(tempfile.mkdtemp(prefix="relocpy-hook-bench-", dir=base))
    variants = ["no hook", ".pth (before)", "sitecustomize (now)"]
    pythons: dict[str, str] = {}
    version = ""
    try:
        for number, variant in enumerate(variants):
            extract_archive(args.archive, work / str(number), top="python")
            tree = inspect_tree(work / str(number) / "python")
            _switch(tree.stdlib / "site-packages", variant)
            exe = tree.executable
            pythons[variant] = "/" + str(exe.relative_to(args.root)) if args.root else str(exe)
            version = tree.short_version
        if args.root:
            pythons = {f"Debian's python{version}": f"/usr/bin/python{version}", **pythons}
        chroot = ["/usr/sbin/chroot", str(args.root)] if args.root else []
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}

        def start(python: str, code: str) -> float:
            began = time.perf_counter()
            subprocess.run([*chroot, python, "-c", code], env=env, check=True)
            return time.perf_counter() - began

        for python in pythons.values():
            start(python, "import json, ssl, asyncio, sqlite3")  # writes the bytecode
        times: dict[tuple[str, str], list[float]] = {(v, c): [] for v in pythons for c in COMMANDS}
        order = [(v, c) for v in pythons for c in COMMANDS]
        for _ in range(args.rounds):
            random.shuffle(order)
            for variant, label in order:
                times[variant, label].append(start(pythons[variant], COMMANDS[label]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    baseline = next(iter(pythons))
    med = statistics.median
    where = f"chrooted in {args.root}" if args.root else "on this host"
    lines = [
        f"### the scripts hook's cost per start, {time.strftime('%Y-%m-%d')}",
        "",
        f"`{args.archive.name}`, {where}; {args.rounds} rounds, one start of each variant and",
        f"command per round in random order; median, and the median paired ratio to `{baseline}`",
        "",
        "| interpreter | " + " | ".join(f"`{c}`" for c in COMMANDS) + " |",
        "| --- | " + " | ".join("---" for _ in COMMANDS) + " |",
    ]
    for variant in pythons:
        cells = []
        for label in COMMANDS:
            ratios = [
                a / b for a, b in zip(times[variant, label], times[baseline, label], strict=True)
            ]
            cells.append(f"{med(times[variant, label]) * 1000:.2f} ms ({med(ratios):.3f})")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    report(args.out, "Start-up per flavour (bench/startup.py)", "\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
