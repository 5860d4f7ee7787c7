"""Interpreters of one CPython version side by side: speed, instructions and start-up.

Usage (issue 18's four-interpreter tables):
  .venv/bin/python bench/interpreters.py --version 3.13 --root trixie \\
      --ours gcc-pgo-lto=DIST/cpython-3.13.5+T-...-install_only.tar.gz \\
      --ours clang-pgo-thinlto=DIST/...clang...tar.gz@WORK/relocpy-static-python.prebolt \\
      --ours clang-bolt=DIST/...clang...tar.gz [--rounds 11] [--phases speed,callgrind,startup]
  .venv/bin/python bench/interpreters.py --version 3.11 --ours gcc-pgo-lto=... --ours ...

The baseline, labelled `debian`, is Debian's own python3.X: on this host for 3.11 (bookworm's
3.11.2), and inside a debootstrapped root with `--root SUITE` (trixie has 3.13.5). With
`--root`, every interpreter runs inside that root (ours unpacked into its /opt), so all of
them use the same glibc, and the root gets python3.X and valgrind from its own archive once.
`LABEL=ARCHIVE@EXECUTABLE` unpacks ARCHIVE and puts EXECUTABLE in place of bin/python3.X:
how the step before BOLT is measured, from the `.prebolt` copy a `--keep-work` BOLT build
leaves in its work directory (the executable is the only file BOLT changes).
`--plain LABEL=PATH` adds an interpreter that is already installed where the others run (PATH
as the root sees it): how a plain `./configure --enable-optimizations --with-lto` build of the
same source by another compiler is compared (`--startup pass` when it lacks `_ssl`/`_sqlite3`).

1. speed: bench/workloads.py, every workload in a fresh process; each round runs every
   workload on every interpreter in a new random order. Per interpreter: the geometric mean
   over workloads of the median paired ratio to Debian's (each run divided by Debian's run of
   the same round), with a 95% bootstrap interval (bench/issue6_report.paired_summary), and
   the ratio of the fastest runs;
2. callgrind: instructions of one call of each workload (its warm-up run subtracted), which
   the machine's load does not change;
3. start-up: `-c pass` and `-c "import json, ssl, asyncio, sqlite3"`: wall time (paired
   ratios over interleaved runs) and instructions.
Every interpreter runs with a cleared environment. The tables go to stdout and are appended
to --out (default bench/results/issue18.md).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import report
from issue6_report import NAMES, WORKLOADS, _geomean, paired_summary

from relocpy.core.archive import extract_archive

HERE = Path(__file__).resolve().parent
IMPORTS = "import json, ssl, asyncio, sqlite3"
STARTUP = {"-c pass": ["-c", "pass"], f'-c "{IMPORTS}"': ["-c", IMPORTS]}
BASELINE = "debian"


@dataclass
class Place:
    """Where interpreters run: this host (`root` None) or a chroot."""

    root: Path | None

    def inside(self, path: Path) -> str:
        """`path` (on the host) as the chroot sees it."""
        if self.root is None:
            return str(path)
        return "/" + str(path.relative_to(self.root))

    def command(self, argv: list[str]) -> list[str]:
        chroot = shutil.which("chroot", path="/usr/sbin:/usr/bin:/sbin:/bin") or "chroot"
        return argv if self.root is None else [chroot, str(self.root), *argv]

    def scratch(self) -> Path:
        base = (self.root / "tmp") if self.root is not None else Path("/tmp")
        path = base / f"relocpy-bench-{os.getpid()}"
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Interpreter:
    label: str
    exe: str  # as the place sees it
    what: str


def _env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}


def prepare_root(suite: str, roots: Path, short: str) -> Path:
    """A Debian `suite` root with its python`short` and valgrind installed (once)."""
    from relocpy.verify.distro import ensure_root

    root = ensure_root(suite, roots=roots)
    if (
        not (root / "usr" / "bin" / f"python{short}").exists()
        or not (root / "usr" / "bin" / "valgrind").exists()
    ):
        script = (
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
            f" --no-install-recommends python{short} valgrind"
        )
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
        subprocess.run(["chroot", str(root), "sh", "-c", script], env=env, check=True)
    return root


def _unpack(label: str, spec: str, short: str, place: Place, work: Path) -> Interpreter:
    archive, _, executable = spec.partition("@")
    dest = work / f"ours ü {label}"
    extract_archive(Path(archive), dest)
    exe = dest / "python" / "bin" / f"python{short}"
    if executable:
        mode = exe.stat().st_mode
        shutil.copyfile(executable, exe)
        exe.chmod(mode)
    what = Path(archive).name + (f" with bin/python{short} = {executable}" if executable else "")
    return Interpreter(label, place.inside(exe), what)


def _run(place: Place, interp: Interpreter, args: list[str]) -> str:
    result = subprocess.run(
        place.command([interp.exe, *args]), env=_env(), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"{interp.label} {args}: {result.stderr[-600:]}")
    return result.stdout


def instructions(place: Place, argv: list[str]) -> int:
    """callgrind's instruction count (Ir) of one run of `argv` in `place`."""
    scratch = place.scratch()
    out = scratch / f"callgrind.{random.randrange(10**9)}.out"
    result = subprocess.run(
        place.command(["valgrind", "--tool=callgrind", f"--callgrind-out-file={place.inside(out)}",
                       *argv]),
        env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    text = out.read_text() if out.exists() else ""
    out.unlink(missing_ok=True)
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"callgrind failed for {argv}: {result.stderr[-600:]}")
    return int(found.group(1))


def _interval(ratios: list[float], boots: int = 2000, seed: int = 18) -> tuple[float, float]:
    draw = random.Random(seed)
    medians = sorted(statistics.median(draw.choice(ratios) for _ in ratios) for _ in range(boots))
    return medians[int(0.025 * boots)], medians[int(0.975 * boots) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", required=True, help="3.11 or 3.13: python3.X")
    parser.add_argument("--root", help="run everything in a root of this Debian suite")
    parser.add_argument("--roots", type=Path, default=Path("/var/tmp/relocpy-bench-roots"))
    parser.add_argument("--debian", help="Debian's interpreter (default /usr/bin/python3.X)")
    parser.add_argument("--ours", action="append", default=[], metavar="LABEL=ARCHIVE[@EXE]")
    parser.add_argument("--plain", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--startup", choices=["pass", "imports", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=40)
    parser.add_argument("--phases", default="speed,callgrind,startup")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "issue18.md")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    short = args.version
    root = prepare_root(args.root, args.roots, short) if args.root else None
    place = Place(root)
    if root is not None:  # valgrind reads /proc/self/maps
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    work = (root / "opt" if root else Path("/tmp")) / f"relocpy-bench-{os.getpid()}"
    work.mkdir(parents=True)
    workloads = work / "workloads.py"
    shutil.copyfile(WORKLOADS, workloads)
    debian = args.debian or f"/usr/bin/python{short}"
    interps = [Interpreter(BASELINE, debian, f"Debian's {debian}")]
    for item in args.ours:
        label, _, spec = item.partition("=")
        interps.append(_unpack(label, spec, short, place, work))
    for item in args.plain:
        label, _, path = item.partition("=")
        interps.append(Interpreter(label, path, f"{path}, installed in the root as it is"))
    startup = {
        title: flags
        for title, flags in STARTUP.items()
        if args.startup == "both" or (args.startup == "pass") == (flags == ["-c", "pass"])
    }
    lines: list[str] = []
    say: Callable[[str], None] = lines.append
    try:
        where = f"in a Debian {args.root} root" if root else "on this host (Debian 12)"
        say(f"\n## {short}: {len(interps)} interpreters {where}\n")
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        say(f"Run: {when}, {os.cpu_count()} cores, cleared environment, PYTHONHASHSEED=0.\n")
        for interp in interps:
            version = _run(place, interp, ["-c", "import sys; print(sys.version)"]).strip()
            say(f"- `{interp.label}`: {interp.what} — {version.splitlines()[0]}")
        say("")
        labels = [i.label for i in interps]
        head = f"| | {' | '.join(labels)} |\n" + "|---" * (len(labels) + 1) + "|"
        wl = place.inside(workloads)
        if "speed" in phases:
            start = time.monotonic()
            times: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for name in NAMES:
                    order = interps[:]
                    random.shuffle(order)
                    for interp in order:
                        out = _run(place, interp, [wl, name, str(args.loops)])
                        times.setdefault((interp.label, name), []).append(
                            float(out.split()[-1]) / args.loops
                        )
            say(f"### Speed ({args.rounds} rounds × {args.loops} loops,"
                f" {time.monotonic() - start:.0f} s)\n")  # fmt: skip
            say(head)
            for name in NAMES:
                base = statistics.median(times[(BASELINE, name)])
                cells = [
                    f"{statistics.median(times[(label, name)]) * 1000:.1f} ms"
                    f" ({statistics.median(times[(label, name)]) / base:.3f}×)"
                    for label in labels
                ]
                say(f"| {name} (median) | " + " | ".join(cells) + " |")
            fastest = [
                _geomean([min(times[(lb, n)]) / min(times[(BASELINE, n)]) for n in NAMES])
                for lb in labels
            ]
            say("| **geomean, fastest runs** | " + " | ".join(f"{v:.3f}×" for v in fastest) + " |")
            paired = [paired_summary(times, label) for label in labels]
            say(
                "| **geomean of median paired ratios [95% interval]** | "
                + " | ".join(f"**{p:.3f}×** [{lo:.3f}, {hi:.3f}]" for p, lo, hi in paired)
                + " |\n"
            )
        if "callgrind" in phases:
            start = time.monotonic()
            counts: dict[tuple[str, str], int] = {}
            for name in NAMES:
                for interp in interps:
                    once = instructions(place, [interp.exe, wl, name, "1"])
                    warm = instructions(place, [interp.exe, wl, name, "0"])
                    counts[(interp.label, name)] = once - warm
            say(f"### Instructions (callgrind, millions; one call, warm-up subtracted;"
                f" {time.monotonic() - start:.0f} s)\n")  # fmt: skip
            say(head)
            for name in NAMES:
                base = counts[(BASELINE, name)]
                say(f"| {name} | " + " | ".join(
                    f"{counts[(lb, name)] / 1e6:.0f} ({counts[(lb, name)] / base:.3f}×)"
                    for lb in labels) + " |")  # fmt: skip
            means = [
                _geomean([counts[(lb, n)] / counts[(BASELINE, n)] for n in NAMES]) for lb in labels
            ]
            say("| **geomean vs Debian** | " + " | ".join(f"**{m:.3f}×**" for m in means) + " |\n")
        if "startup" in phases:
            say(f"### Start-up ({args.startup_runs} interleaved runs each; paired ratio to"
                " Debian's: median [95% interval]; instructions)\n")  # fmt: skip
            say(head)
            for title, flags in startup.items():
                samples: dict[str, list[float]] = {label: [] for label in labels}
                for _ in range(args.startup_runs):
                    order = interps[:]
                    random.shuffle(order)
                    for interp in order:
                        begin = time.perf_counter()
                        _run(place, interp, flags)
                        samples[interp.label].append((time.perf_counter() - begin) * 1000)
                cells = []
                for label in labels:
                    ratios = [a / b for a, b in zip(samples[label], samples[BASELINE], strict=True)]
                    lo, hi = _interval(ratios)
                    ms, mid = statistics.median(samples[label]), statistics.median(ratios)
                    cells.append(f"{ms:.1f} ms, {mid:.3f}× [{lo:.3f}, {hi:.3f}]")
                say(f"| `{title}` wall | " + " | ".join(cells) + " |")
                if "callgrind" in phases:
                    ir = {i.label: instructions(place, [i.exe, *flags]) for i in interps}
                    say(f"| `{title}` instructions | " + " | ".join(
                        f"{ir[lb] / 1e6:.1f} M ({ir[lb] / ir[BASELINE]:.3f}×)" for lb in labels
                    ) + " |")  # fmt: skip
            say("")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(place.scratch(), ignore_errors=True)
        if root is not None:
            subprocess.run(["umount", "--lazy", str(root / "proc")], check=False)
    report(args.out, "Issue 18: interpreters side by side", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
