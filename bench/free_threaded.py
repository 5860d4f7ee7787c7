"""Does a free-threaded build scale? Pure-Python work in 1 and 2 threads, with and without the GIL.

Usage (issue 16, part 4):
  .venv/bin/python bench/free_threaded.py \\
      DIST/cpython-3.13.X+T-...-freethreaded+install_only.tar.gz \\
      [--gil DIST/cpython-3.13.X+T-...-install_only.tar.gz] [--rounds 7] [--size 3000000]

The free-threaded archive is unpacked under a path with a space and a non-ASCII letter and run
three ways: as built (no GIL), with PYTHON_GIL=1 (the same binary with the GIL forced on: the
fairest baseline for scaling), and, with --gil, the default build of the same version. Each
workload runs in one thread doing `size` units of work, and in `threads` threads each doing
`size` units (independent data, nothing shared); scaling = threads x T(1) / T(threads): 2.0 is
perfect on 2 cores, 1.0 is what a GIL allows. Rounds interleave every configuration in a new
random order; the table gives medians and the range over rounds. Every run has a cleared
environment (no PYTHON* variables but the PYTHON_GIL this script sets). The table goes to
stdout and is appended to --out (default bench/results/free_threaded.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import report

from relocpy.core.archive import extract_archive
from relocpy.core.tree import inspect_tree

HERE = Path(__file__).resolve().parent

# Run inside the interpreter under test: `workload size threads` -> JSON with the wall time.
WORKER = r"""
import json, sys, threading, time

def arith(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total

def alloc(n):
    kept = 0
    for i in range(n // 20):
        d = {j: str(j) for j in range(20)}
        kept += len([v for v in d.values() if v])
    return kept

name, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
work = {"arith": arith, "alloc": alloc}[name]
work(size // 100)  # warm up
threads = [threading.Thread(target=work, args=(size,)) for _ in range(count)]
start = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "gil": getattr(sys, "_is_gil_enabled", lambda: True)()}))
"""

WORKLOADS = ("arith", "alloc")


def _env(gil: str | None) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}
    if gil is not None:
        env["PYTHON_GIL"] = gil
    return env


def _run(exe: Path, gil: str | None, workload: str, size: int, threads: int) -> dict:
    result = subprocess.run(
        [str(exe), "-c", WORKER, workload, str(size), str(threads)],
        env=_env(gil),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{exe} failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("free_threaded", type=Path, help="a freethreaded+install_only archive")
    parser.add_argument("--gil", type=Path, help="a default (GIL) archive of the same version")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=3_000_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "free_threaded.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="relocpy-ft-") as tmp:
        configs: dict[str, tuple[Path, str | None]] = {}
        ft_root = Path(tmp) / "free threaded ü"
        extract_archive(args.free_threaded, ft_root)
        ft = inspect_tree(ft_root / "python")
        configs["free-threaded"] = (ft.executable, None)
        configs["free-threaded, PYTHON_GIL=1"] = (ft.executable, "1")
        if args.gil:
            gil_root = Path(tmp) / "default ü"
            extract_archive(args.gil, gil_root)
            configs["default build"] = (inspect_tree(gil_root / "python").executable, None)

        runs: dict[tuple[str, str, int], list[float]] = {}
        gil_seen: dict[str, set[bool]] = {label: set() for label in configs}
        cases = [
            (label, workload, n)
            for label in configs
            for workload in WORKLOADS
            for n in (1, args.threads)
        ]
        rng = random.Random(16)
        for round_no in range(1, args.rounds + 1):
            rng.shuffle(cases)
            for label, workload, n in cases:
                exe, gil = configs[label]
                data = _run(exe, gil, workload, args.size, n)
                runs.setdefault((label, workload, n), []).append(data["seconds"])
                gil_seen[label].add(bool(data["gil"]))
            print(f"round {round_no}/{args.rounds} done", file=sys.stderr)

    n = args.threads
    lines = [
        "",
        f"## {args.free_threaded.name}",
        "",
        f"`bench/free_threaded.py` on {os.cpu_count()} cores, {args.rounds} rounds, "
        f"size {args.size:,}, {n} threads. scaling = {n} x T(1) / T({n}) per round "
        f"(median, [min, max]); {float(n):.1f} is perfect, 1.0 is one core's worth.",
        "",
        f"| interpreter | GIL on | workload | T(1) s | T({n}) s | scaling |",
        "|---|---|---|---|---|---|",
    ]
    for label in configs:
        for workload in WORKLOADS:
            one, many = runs[(label, workload, 1)], runs[(label, workload, n)]
            scaling = [n * a / b for a, b in zip(one, many, strict=True)]
            on = "/".join(sorted({"yes" if g else "no" for g in gil_seen[label]}))
            lines.append(
                f"| {label} | {on} | {workload} | {statistics.median(one):.3f} | "
                f"{statistics.median(many):.3f} | {statistics.median(scaling):.2f} "
                f"[{min(scaling):.2f}, {max(scaling):.2f}] |"
            )
    if args.gil:
        lines += ["", "Single-thread cost of free threading, T(1) free-threaded / T(1) default:"]
        for workload in WORKLOADS:
            ratio = [
                a / b
                for a, b in zip(
                    runs[("free-threaded", workload, 1)],
                    runs[("default build", workload, 1)],
                    strict=True,
                )
            ]
            lines.append(f"- {workload}: {statistics.median(ratio):.2f}x")
    report(args.out, "Free-threaded scaling (issue 16)", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
