"""Install speed: `relocpy install` vs `uv python install` of the same archive, side by side.

Usage: .venv/bin/python bench/install_speed.py --mirror DIR [--version 3.13] [--runs 5]
DIR holds relocpy archives indexed by `relocpy mirror index`. Both tools install the same
archive: the one `relocpy install` selects, which the mirror's uv-downloads.json lists (checked
before anything is timed). Every install goes into an empty install directory, alternating
which tool goes first:
- cold: each tool's cache is empty too (fresh XDG dirs for relocpy; fresh UV_* dirs for uv);
- warm: each tool keeps one cache across runs (relocpy: downloads and the unpacked store, so an
  install is a tree of hard links; uv: its UV_CACHE_DIR).
Before each timed run, `sync` (untimed) writes the previous run's files back.
Also: peak memory of a cold relocpy install, where the time of a cold install goes (copy,
sha256, decompression, file creation), and the overhead of `relocpy run`.
Results: stdout and bench/results/install_speed.md (appended).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import report

TOOLS = Path(sys.executable).parent


CPU: dict[str, list[float]] = {}  # CPU seconds (user + system, children included) per label


def _timed(cmd: list[str], env: dict[str, str], label: str | None = None) -> float:
    # Each run starts on a settled disk: this VM's ext4 creates files 5-10 times slower while
    # the previous run's 100 MB are written back, and whichever tool runs second paid for it.
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if label:
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        CPU.setdefault(label, []).append(used)
    return wall


def _base_env() -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C.UTF-8",
    }


def relocpy_install(
    mirror: Path, version: str, cache: Path, data: Path, label: str | None = None
) -> float:
    env = {
        **_base_env(),
        "XDG_CACHE_HOME": str(cache),
        "XDG_DATA_HOME": str(data),
        "RELOCPY_BIN_DIR": str(data / "bin"),
    }
    return _timed(
        [str(TOOLS / "relocpy"), "install", version, "--mirror", str(mirror), "--no-links"],
        env,
        label,
    )


def uv_install(
    mirror: Path, version: str, cache: Path, root: Path, label: str | None = None
) -> float:
    env = {
        **_base_env(),
        "UV_PYTHON_INSTALL_DIR": str(root / "python"),
        "UV_CACHE_DIR": str(cache),
        "UV_PYTHON_BIN_DIR": str(root / "bin"),
        "UV_NO_CONFIG": "1",
    }
    return _timed(
        [
            str(TOOLS / "uv"),
            "python",
            "install",
            "--python-downloads-json-url",
            (mirror / "uv-downloads.json").as_uri(),
            version,
        ],
        env,
        label,
    )


def fs_type(path: Path) -> str:
    done = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    return done.stdout.strip() or "?"


def same_archive(mirror: Path, version: str) -> str:
    """The archive `relocpy install VERSION` takes from `mirror`, after checking that the
    mirror's uv JSON lists that same file for uv."""
    import json
    import urllib.parse

    from relocpy.install.selection import Machine, select
    from relocpy.package.mirror import Mirror

    name = select(version, Mirror(str(mirror)).entries(), Machine.current()).name
    listed = json.loads((mirror / "uv-downloads.json").read_text())
    urls = [urllib.parse.unquote(v["url"]).rsplit("/", 1)[-1] for v in listed.values()]
    if name not in urls:
        sys.exit(f"uv-downloads.json does not list {name} (it lists {urls}): not the same archive")
    return name


def phases(archive: Path, scratch: Path) -> dict[str, float]:
    """Where a fresh install's time goes, measured one phase at a time."""
    from relocpy.core.archive import EXTRACTOR_ENV, extract_archive, open_archive_stream

    out: dict[str, float] = {}
    scratch.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    copy = scratch / archive.name
    shutil.copyfile(archive, copy)
    out["copy archive"] = time.perf_counter() - start
    start = time.perf_counter()
    hashlib.sha256(copy.read_bytes()).hexdigest()
    out["sha256"] = time.perf_counter() - start
    start = time.perf_counter()
    with open_archive_stream(copy) as stream:
        while stream.read(1 << 20):
            pass
    out["decompress only"] = time.perf_counter() - start
    start = time.perf_counter()
    with open_archive_stream(copy) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for _member in tar:
            pass
    out["decompress + tar parse"] = time.perf_counter() - start
    start = time.perf_counter()
    extract_archive(copy, scratch / "x")
    out["extraction (files written by GNU tar behind the scan; the default)"] = (
        time.perf_counter() - start
    )
    os.environ[EXTRACTOR_ENV] = "python"
    try:
        start = time.perf_counter()
        extract_archive(copy, scratch / "y")
        out["extraction (files written by Python's 4 threads; RELOCPY_EXTRACTOR=python)"] = (
            time.perf_counter() - start
        )
    finally:
        del os.environ[EXTRACTOR_ENV]
    start = time.perf_counter()
    os.sync()
    out["sync to disk"] = time.perf_counter() - start
    return out


_PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
    "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_memory_by_size(work: Path) -> dict[int, float]:
    """Peak RSS (MiB) of installing archives of very different sizes: streaming keeps it flat."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fake_tree import make_fake_archives
    from relocpy.package.mirror import write_index

    result = {}
    for index, size in enumerate((20_000_000, 300_000_000)):
        mirror = work / f"mem-mirror-{index}"
        mirror.mkdir(parents=True)
        make_fake_archives(mirror, payload=size)
        write_index(mirror)
        env = {**_base_env(), "RELOCPY_HOME": str(work / f"mem-home-{index}")}
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _PEAK,
                str(TOOLS / "relocpy"),
                "install",
                "3.99",
                "--mirror",
                str(mirror),
                "--no-links",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result[size] = int(out.strip()) / 1024
        shutil.rmtree(mirror)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mirror", type=Path, required=True)
    parser.add_argument("--version", default="3.13")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--work",
        type=Path,
        help="where caches and installs go (default: under /tmp); a tmpfs"
        " such as /dev/shm takes the file system's cost of creating files out",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "install_speed.md"
    )
    args = parser.parse_args()
    mirror = args.mirror.absolute()
    chosen = same_archive(mirror, args.version)
    print(f"both tools install {chosen}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="relocpy-install-bench-", dir=args.work))
    times: dict[str, list[float]] = {
        k: [] for k in ("relocpy cold", "uv cold", "relocpy warm", "uv warm")
    }
    try:
        # Prime the warm caches once (not timed).
        relocpy_install(mirror, args.version, work / "warm-r-cache", work / "prime-r")
        # Only relocpy has run so far: this is the peak memory of a cold relocpy install.
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        uv_install(mirror, args.version, work / "warm-uv-cache", work / "prime-uv")
        for run in range(args.runs):
            jobs = [
                (
                    "relocpy cold",
                    lambda r=run: relocpy_install(
                        mirror,
                        args.version,
                        work / f"rc-cache-{r}",
                        work / f"rc-data-{r}",
                        "relocpy cold",
                    ),
                ),
                (
                    "uv cold",
                    lambda r=run: uv_install(
                        mirror,
                        args.version,
                        work / f"uc-cache-{r}",
                        work / f"uc-root-{r}",
                        "uv cold",
                    ),
                ),
                (
                    "relocpy warm",
                    lambda r=run: relocpy_install(
                        mirror,
                        args.version,
                        work / "warm-r-cache",
                        work / f"rw-data-{r}",
                        "relocpy warm",
                    ),
                ),
                (
                    "uv warm",
                    lambda r=run: uv_install(
                        mirror,
                        args.version,
                        work / "warm-uv-cache",
                        work / f"uw-root-{r}",
                        "uv warm",
                    ),
                ),
            ]
            for name, job in jobs if run % 2 == 0 else reversed(jobs):
                times[name].append(job())
        env = {
            **_base_env(),
            "XDG_CACHE_HOME": str(work / "warm-r-cache"),
            "XDG_DATA_HOME": str(work / "prime-r"),
        }
        interpreter = subprocess.run(
            [str(TOOLS / "relocpy"), "find", args.version],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # interleaved, so a slow stretch of the machine weighs on both
        direct, via_run = [], []
        run_cmd = [str(TOOLS / "relocpy"), "run", args.version, "--", "python", "-c", "pass"]
        for _ in range(30):
            direct.append(_timed([interpreter, "-c", "pass"], env))
            via_run.append(_timed(run_cmd, env))
        breakdown = phases(mirror / chosen, work / "phases")
        memory = peak_memory_by_size(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median

    def row(label: str, values: list[float]) -> str:
        return (
            f"| {label} | {med(values):.3f} s | {med(CPU[label]):.3f} s |"
            f" {', '.join(f'{t:.2f}' for t in values)} |"
        )

    title = (
        f"### install {args.version}: relocpy vs uv (median of {args.runs}, side by side),"
        f" {time.strftime('%Y-%m-%d')}"
    )
    lines = [
        title,
        "",
        f"both install `{chosen}` ({(mirror / chosen).stat().st_size / 1e6:.1f} MB), into"
        f" {args.work or '/tmp'} (`{fs_type(work.parent)}`)",
        "",
        f"{os.cpu_count()} CPUs; CPU = user + system seconds of the tool and its children",
        "",
        "| what | median wall | median CPU | runs (wall) |",
        "| --- | --- | --- | --- |",
        *[row(name, values) for name, values in times.items()],
        *[
            f"| ratio relocpy / uv, {kind} | "
            f"{med(times[f'relocpy {kind}']) / med(times[f'uv {kind}']):.2f} |"
            f" {med(CPU[f'relocpy {kind}']) / med(CPU[f'uv {kind}']):.2f} | |"
            for kind in ("cold", "warm")
        ],
        f"| peak RSS of a cold relocpy install | {peak_kib / 1024:.0f} MiB | | |",
        "",
        f"| `python -c pass` direct | {med(direct) * 1000:.1f} ms | |",
        f"| `relocpy run {args.version} -- python -c pass` | {med(via_run) * 1000:.1f} ms | |",
        f"| overhead of `relocpy run` (median of 30 paired differences) |"
        f" {med([r - d for r, d in zip(via_run, direct, strict=True)]) * 1000:.1f} ms | |",
        "",
        "where a fresh install's time goes (one pass, in-process):",
        "",
        "| phase | seconds |",
        "| --- | --- |",
        *[f"| {k} | {v:.3f} |" for k, v in breakdown.items()],
        "",
        "peak memory of one install by archive size (incompressible payload, so the archive is as",
        "large as the payload):",
        "",
        "| archive size | peak RSS |",
        "| --- | --- |",
        *[f"| {size / 1e6:.0f} MB | {mib:.1f} MiB |" for size, mib in memory.items()],
    ]
    report(
        args.out,
        "Install speed: relocpy vs uv (bench/install_speed.py)",
        "\n" + "\n".join(lines) + "\n",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
