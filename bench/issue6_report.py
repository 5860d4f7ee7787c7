"""Speed, start-up and size of our 3.11.2 builds against Debian's python3.11 and pyenv's 3.11.7.

Usage:
  .venv/bin/python bench/issue6_report.py [--build DIR] [--ours LABEL=ARCHIVE ...]
      [--rounds 21] [--loops 3] [--startup-runs 200] [--phases speed,callgrind,startup,size]

--build DIR builds what --ours does not name, into DIR (kept, so a second run reuses it):
  noopt:   relocpy build 3.11.2 --toolchain gcc --glibc 2.17 --opt noopt
  pgo+lto: relocpy build 3.11.2 --toolchain gcc --glibc 2.17 --opt pgo+lto --no-pie
           (the release flavour, examples/release.toml)
Each archive is unpacked under a path with a space and non-ASCII letters, and compared with
/usr/bin/python3.11 (Debian's, 3.11.2 with PGO and LTO) and pyenv's 3.11.7 (shared, no PGO):
1. speed: bench/workloads.py, every workload in a fresh process per interpreter; each round runs
   every workload on every interpreter back to back, in a new random order (so machine noise hits
   them alike). Per workload: the fastest run and the median, as ratios to Debian's, and the
   geometric means of those ratios. The machine is a shared VM whose neighbours only ever add
   time, so the fastest of many runs is the best estimate of the undisturbed speed; the median
   shows how much the noise moved;
2. callgrind counts of one run of each workload (warm-up subtracted), which do not depend on the
   machine's load: instructions, and cycles estimated from its cache and branch simulation;
3. start-up: `-c pass` and `-I -S -c pass`, wall time (interleaved) and instructions;
4. size: .tar.gz and .tar.zst of install_only and install_only_stripped, and the installed size.
Every interpreter runs with a cleared environment. Results go to stdout and bench/results/issue6.md.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relocpy.core.archive import extract_archive

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads.py"
NAMES = [
    "nbody", "objects", "fannkuch", "spectral_norm", "json_roundtrip", "pickle_roundtrip",
    "regex", "generators", "strings", "coroutines",
]  # fmt: skip
DEBIAN = Path("/usr/bin/python3.11")
DEBIAN_PACKAGES = (
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11",
)  # fmt: skip
BUILDS = {"noopt": "noopt", "pgo+lto": "pgo+lto"}
# python-build-standalone's 3.10 x86_64 install_only_stripped .tar.gz, as the issue gives it
PBS_STRIPPED_GZ = 20.6e6


@dataclass
class Interpreter:
    label: str
    exe: Path
    archive: Path | None = None  # ours only
    installed_bytes: int | None = None


def _env(home: Path, hashseed: bool = False) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C.UTF-8"}
    if hashseed:
        env["PYTHONHASHSEED"] = "0"
    return env


def _tree_bytes(root: Path, skip: tuple[str, ...] = ()) -> int:
    """Bytes of the regular files under `root`, leaving out directories named in `skip`."""
    total = 0
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def _pyenv_python() -> Path:
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    root = root or str(Path.home() / ".pyenv")
    return Path(root) / "versions" / "3.11.7" / "bin" / "python3.11"


def _debian_installed_bytes() -> int:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Installed-Size}\n", *DEBIAN_PACKAGES],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sum(int(line) * 1024 for line in out.split())


def _build(out: Path, opt: str) -> Path:
    from relocpy.core.progress import ConsoleReporter
    from relocpy.pipeline import build

    found = sorted(out.glob(f"cpython-3.11.2+bench{opt.replace('+', '')}-*-install_only.tar.gz"))
    if found:
        return found[0]
    result = build(
        "3.11.2", out, opt=opt, toolchain="gcc", glibc="2.17", pie=opt != "pgo+lto",
        build_tag=f"bench{opt.replace('+', '')}", reporter=ConsoleReporter(),
    )  # fmt: skip
    return result.archives.gz


def _run_seconds(interp: Interpreter, name: str, loops: int, env: dict[str, str]) -> float:
    out = subprocess.run(
        [str(interp.exe), str(WORKLOADS), name, str(loops)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(out.split()[-1])


def _simulate(cmd: list[str], env: dict[str, str]) -> dict[str, int]:
    """callgrind's counts for one run, with its cache and branch-predictor simulation: Ir
    (instructions) and CEst, KCachegrind's cycle estimate, Ir + 10 × (L1 misses + branch
    mispredictions) + 100 × last-level misses. Both are the same on every run of one program."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--branch-sim=yes",
             f"--callgrind-out-file={out}", *cmd],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        text = out.read_text() if out.exists() else ""
    events = re.search(r"^events: (.+)$", text, re.M)
    totals = re.search(r"^(?:summary|totals): (.+)$", text, re.M)
    if result.returncode != 0 or not events or not totals:
        raise RuntimeError(f"callgrind failed for {cmd}: {result.stderr[-800:]}")
    counts = dict(zip(events.group(1).split(), map(int, totals.group(1).split()), strict=True))
    l1 = counts["I1mr"] + counts["D1mr"] + counts["D1mw"]
    ll = counts["ILmr"] + counts["DLmr"] + counts["DLmw"]
    branches = counts["Bcm"] + counts["Bim"]
    counts["CEst"] = counts["Ir"] + 10 * (l1 + branches) + 100 * ll
    return counts


def _startup_ms(interps: list[Interpreter], args: list[str], runs: int, home: Path) -> dict:
    samples: dict[str, list[float]] = {i.label: [] for i in interps}
    env = _env(home)
    for _ in range(runs):
        order = interps[:]
        random.shuffle(order)
        for interp in order:
            start = time.perf_counter()
            subprocess.run([str(interp.exe), *args], env=env, check=True)
            samples[interp.label].append((time.perf_counter() - start) * 1000)
    return samples


def _table_head(say: Callable[..., None], first: str, interps: list[Interpreter]) -> None:
    """A markdown table's header: the row label, then one column per interpreter."""
    say(f"| {first} | " + " | ".join(i.label for i in interps) + " |")
    say("|---" * (len(interps) + 1) + "|")


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def paired_ratios(times: dict[tuple[str, str], list[float]], label: str, name: str) -> list[float]:
    """One ratio to Debian's per round: the two runs of a round were made back to back, so a
    slow stretch of the machine weighs on both sides of the ratio."""
    return [t / b for t, b in zip(times[(label, name)], times[("debian", name)], strict=True)]


def paired_summary(
    times: dict[tuple[str, str], list[float]], label: str, boots: int = 2000, seed: int = 6
) -> tuple[float, float, float]:
    """The geometric mean over workloads of each workload's median paired ratio, and its 95%
    bootstrap interval: rounds drawn with replacement, `boots` times, from a fixed seed."""
    ratios = [paired_ratios(times, label, name) for name in NAMES]
    point = _geomean([statistics.median(r) for r in ratios])
    rounds = len(ratios[0])
    draw = random.Random(seed)
    means = []
    for _ in range(boots):
        picks = [draw.randrange(rounds) for _ in range(rounds)]
        means.append(_geomean([statistics.median([r[i] for i in picks]) for r in ratios]))
    means.sort()
    return point, means[int(0.025 * boots)], means[int(0.975 * boots) - 1]


def _sibling(archive: Path, flavour: str, ext: str) -> Path:
    name = archive.name.replace("-install_only.tar.gz", f"-{flavour}.{ext}")
    return archive.with_name(name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ours", action="append", default=[], metavar="LABEL=ARCHIVE")
    parser.add_argument("--build", type=Path, help="build the missing 3.11.2 archives here")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=200)
    parser.add_argument("--no-callgrind", action="store_true")
    parser.add_argument(
        "--phases",
        default="speed,callgrind,startup,size",
        help="which measurements to run (callgrind, which needs no quiet machine, takes longest)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "issue6.md")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    if args.no_callgrind or not shutil.which("valgrind"):
        phases.discard("callgrind")

    ours = dict(item.split("=", 1) for item in args.ours)
    for label, opt in BUILDS.items():
        if label not in ours and args.build is not None:
            args.build.mkdir(parents=True, exist_ok=True)
            ours[label] = str(_build(args.build, opt))
    if not ours:
        parser.error("name archives with --ours LABEL=ARCHIVE, or give --build DIR")

    work = Path(tempfile.mkdtemp(prefix="relocpy-bench6-"))
    home = work / "home"
    home.mkdir()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    interps = [Interpreter("debian", DEBIAN), Interpreter("pyenv-3.11.7", _pyenv_python())]
    for label, archive in ours.items():
        dest = work / f"ours ü {label}"
        extract_archive(Path(archive), dest)
        root = dest / "python"
        interps.append(Interpreter(f"relocpy-{label}", root / "bin" / "python3.11",
                                   Path(archive), _tree_bytes(root)))  # fmt: skip
    interps[0].installed_bytes = _debian_installed_bytes()
    # pyenv's 3.11.7 is this machine's working Python, with many packages: its own files only
    pyenv_prefix = interps[1].exe.parent.parent
    interps[1].installed_bytes = _tree_bytes(pyenv_prefix, ("site-packages", "test"))

    say("# Issue 6: speed, start-up and size against Debian's python3.11")
    say()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    say(f"Run: {when}, {os.cpu_count()} cores, {args.rounds} rounds × {args.loops} loops per"
        " workload, cleared environment.")  # fmt: skip
    say()
    for interp in interps:
        probe = (
            "import sys, sysconfig as s; print(sys.version.split()[0], *(s.get_config_var(v)"
            " for v in ('CONFIG_ARGS', 'PY_CFLAGS_NODIST', 'LDFLAGS_NODIST')))"
        )
        version = subprocess.run(
            [str(interp.exe), "-c", probe], env=_env(home), capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        pgo = "--enable-optimizations" in version or "-fprofile-use" in version
        lto = "--with-lto" in version or "-flto" in version
        opts = "+".join(n for n, on in (("PGO", pgo), ("LTO", lto)) if on)
        if interp.label == "debian":
            opts = "PGO+LTO by Debian's rules (its sysconfig does not record them)"
        say(f"- `{interp.label}`: {interp.exe} — {version.split()[0]}, {opts or 'no PGO/LTO'}")
    say()

    # 1. speed: every workload's runs interleaved, interpreters in a new random order each time
    start = time.monotonic()
    if "speed" not in phases:
        args.rounds = 0
    times: dict[tuple[str, str], list[float]] = {}
    env = _env(home, hashseed=True)
    for _ in range(args.rounds):
        for name in NAMES:
            order = interps[:]
            random.shuffle(order)
            for interp in order:
                seconds = _run_seconds(interp, name, args.loops, env) / args.loops
                times.setdefault((interp.label, name), []).append(seconds)
    if "speed" in phases:
        say(f"## Speed (ms per workload call; {time.monotonic() - start:.0f} s)")
        say()
        say(
            "Each cell: the fastest of the runs (the one the machine's other load disturbed"
            " least: on this VM, load only ever adds time), then the median, each as a ratio"
            " to Debian's. The summary rows are geometric means of those ratios."
        )
        say()
        _table_head(say, "workload", interps)
        fastest: dict[str, list[float]] = {i.label: [] for i in interps}
        middle: dict[str, list[float]] = {i.label: [] for i in interps}
        for name in NAMES:
            base_min = min(times[("debian", name)])
            base_med = statistics.median(times[("debian", name)])
            cells = []
            for interp in interps:
                runs = times[(interp.label, name)]
                low, med = min(runs), statistics.median(runs)
                fastest[interp.label].append(low / base_min)
                middle[interp.label].append(med / base_med)
                cells.append(
                    f"{low * 1000:.1f} ({low / base_min:.3f}×), "
                    f"median {med * 1000:.1f} ({med / base_med:.3f}×)"
                )
            say(f"| {name} | " + " | ".join(cells) + " |")
        for title, ratios in (("fastest run", fastest), ("median", middle)):
            means = [f"**{_geomean(ratios[i.label]):.3f}×**" for i in interps]
            say(f"| **geometric mean vs Debian, {title}** | " + " | ".join(means) + " |")
        paired = [paired_summary(times, i.label) for i in interps]
        say(
            "| **geometric mean vs Debian, median of paired ratios [95% interval]** | "
            + " | ".join(f"**{p:.3f}×** [{lo:.3f}, {hi:.3f}]" for p, lo, hi in paired)
            + " |"
        )
        say()
        say(
            "Paired ratios: in each round, a workload's run on an interpreter divided by its run"
            " on Debian's in the same round (seconds apart); per workload the median over the"
            " rounds; the interval comes from redrawing the rounds (bootstrap, 2000 draws)."
        )
        say()

    # 2. callgrind: instructions and the simulated cycle estimate
    if "callgrind" in phases:
        start = time.monotonic()
        per: dict[tuple[str, str], dict[str, int]] = {}
        for name in NAMES:
            for interp in interps:
                cmd = [str(interp.exe), str(WORKLOADS), name]
                once, warm = _simulate([*cmd, "1"], env), _simulate([*cmd, "0"], env)
                per[(interp.label, name)] = {k: once[k] - warm[k] for k in ("Ir", "CEst")}
        for key, title in (
            ("Ir", "Instructions (callgrind, millions; one call, warm-up subtracted)"),
            ("CEst", "Estimated cycles (callgrind's cache and branch simulation, millions;"
                     " Ir + 10 × (L1 misses + mispredicted branches) + 100 × LL misses)"),
        ):  # fmt: skip
            say(f"## {title}")
            say()
            _table_head(say, "workload", interps)
            ratios: dict[str, list[float]] = {i.label: [] for i in interps}
            for name in NAMES:
                base = per[("debian", name)][key]
                cells = []
                for interp in interps:
                    value = per[(interp.label, name)][key]
                    ratios[interp.label].append(value / base)
                    cells.append(f"{value / 1e6:.0f} ({value / base:.3f}×)")
                say(f"| {name} | " + " | ".join(cells) + " |")
            means = [f"**{_geomean(ratios[i.label]):.3f}×**" for i in interps]
            say("| **geometric mean vs Debian** | " + " | ".join(means) + " |")
            say()
        say(f"({time.monotonic() - start:.0f} s)")
        say()

    # 3. start-up
    if "startup" in phases:
        _report_startup(interps, args.startup_runs, home, "callgrind" in phases, say)
    elif "callgrind" in phases:  # the counts alone: they need no quiet machine
        _report_startup(interps, 0, home, True, say)
    if "size" in phases:
        _report_size(interps, say)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)


def _report_startup(
    interps: list[Interpreter], runs: int, home: Path, callgrind: bool, say: Callable[..., None]
) -> None:
    say(f"## Start-up (wall ms over {runs} runs each, interleaved; callgrind counts)")
    say()
    _table_head(say, "command", interps)
    for flags in (["-c", "pass"], ["-I", "-S", "-c", "pass"]):
        samples = _startup_ms(interps, flags, runs, home) if runs else None
        if samples is not None:
            base = statistics.median(samples["debian"])
            base_min = min(samples["debian"])
            cells = []
            for interp in interps:
                med, low = statistics.median(samples[interp.label]), min(samples[interp.label])
                cells.append(f"{low:.2f} ms fastest ({low / base_min:.3f}×), {med:.2f} median"
                             f" ({med / base:.3f}×)")  # fmt: skip
            say(f"| `python {' '.join(flags)}` wall | " + " | ".join(cells) + " |")
        if callgrind:
            env_plain = _env(home)
            per = {i.label: _simulate([str(i.exe), *flags], env_plain) for i in interps}
            for key, what in (("Ir", "instructions"), ("CEst", "estimated cycles")):
                say(f"| `python {' '.join(flags)}` {what} | " + " | ".join(
                    f"{per[i.label][key] / 1e6:.1f} M"
                    f" ({per[i.label][key] / per['debian'][key]:.3f}×)"
                    for i in interps) + " |")  # fmt: skip
    say()


def _report_size(interps: list[Interpreter], say: Callable[..., None]) -> None:
    say("## Size (MB = 10^6 bytes)")
    say()
    say("| | .tar.gz | .tar.zst | stripped .tar.gz | stripped .tar.zst | installed |"
        " stripped, installed |")  # fmt: skip
    say("|---|---|---|---|---|---|---|")
    for interp in interps:
        cells = []
        if interp.archive is not None:
            for flavour in ("install_only", "install_only_stripped"):
                for ext in ("tar.gz", "tar.zst"):
                    path = _sibling(interp.archive, flavour, ext)
                    cells.append(f"{path.stat().st_size / 1e6:.1f}" if path.exists() else "—")
        else:
            cells = ["—"] * 4
        cells.append(f"{interp.installed_bytes / 1e6:.1f}" if interp.installed_bytes else "—")
        stripped = (
            _sibling(interp.archive, "install_only_stripped", "tar.gz") if interp.archive else None
        )
        if stripped is not None and stripped.exists():
            with tarfile.open(stripped) as tar:
                cells.append(f"{sum(m.size for m in tar if m.isreg()) / 1e6:.1f}")
        else:
            cells.append("—")
        say(f"| {interp.label} | " + " | ".join(cells) + " |")
    say(f"| python-build-standalone 3.10 (from the issue, not measured here) | | | "
        f"{PBS_STRIPPED_GZ / 1e6:.1f} | | | |")  # fmt: skip
    say()
    say("Debian's installed size is the Installed-Size of "
        + ", ".join(DEBIAN_PACKAGES) + " (its shared libssl, libsqlite3, … not counted); "
        "pyenv's is its version directory without site-packages and test; ours is the"
        " unpacked install_only tree.")  # fmt: skip


if __name__ == "__main__":
    main()
