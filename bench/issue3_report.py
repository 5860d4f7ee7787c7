"""Self-contained builds report: from-scratch and cached build times, sizes, verify tables.

Usage: .venv/bin/python bench/issue3_report.py [--versions 3.13 3.11 3.9] [--distros bookworm]
       [--grafted 3.13]
The first version is built from scratch (libraries + CPython, zig, glibc 2.17, noopt) in an
empty library cache, then again with the libraries cached (the two archives are compared byte
for byte, and every library built here is compared with the one in the user's cache of the same
key). Later versions are built once, with the cache as it is by then. `--grafted` versions are
also built with gcc and the host's libraries grafted, for the size comparison. Every zig archive
is verified on the host (with the CPython test subset) and in each distribution root. Source
downloads are shared (not timed). Results go to stdout and to bench/results/issue3.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from relocpy.core import home
from relocpy.pipeline import BuildResult, build
from relocpy.verify.checks import VerifyReport, verify


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _table(title: str, report: VerifyReport) -> list[str]:
    lines = [f"#### {title} (policy {report.policy})", "", "| check | result | detail |"]
    lines.append("| --- | --- | --- |")
    for check in report.checks:
        detail = check.detail.replace("|", "\\|").replace("\n", " ")[:240]
        lines.append(f"| {check.name} | {'pass' if check.ok else 'FAIL'} | {detail} |")
    return [*lines, ""]


def _timed_build(version: str, out: Path, **options: object) -> tuple[BuildResult, float]:
    start = time.monotonic()
    result = build(version, out, build_tag="20260101", **options)  # type: ignore[arg-type]
    return result, time.monotonic() - start


def _library_seconds(result: BuildResult) -> float:
    meta = json.loads(result.archives.metadata.read_text())
    total = 0.0
    for lib in meta["bundled_libraries"]:
        manifest = home.cache_dir() / "libs" / f"{lib['name']}-{lib['version']}-{lib['key'][:16]}"
        total += json.loads((manifest / "library.json").read_text())["seconds"]
    return total


def _compare_archives(first: BuildResult, second: BuildResult) -> list[str]:
    """Byte comparison of the two builds' archives; on a difference, which members differ."""
    import tarfile

    lines = []
    for a, b in ((first.archives.gz, second.archives.gz), (first.test_suite, second.test_suite)):
        if a.read_bytes() == b.read_bytes():
            lines.append(f"- {a.name}: identical ({_sha(a)[:16]})")
            continue
        with tarfile.open(a) as ta, tarfile.open(b) as tb:
            ma = {m.name: m for m in ta.getmembers()}
            mb = {m.name: m for m in tb.getmembers()}
            differ = []
            for name in sorted(set(ma) | set(mb)):
                x, y = ma.get(name), mb.get(name)
                if x is None or y is None:
                    differ.append(f"{name} (only in one)")
                elif x.isreg() and y.isreg():
                    fx, fy = ta.extractfile(x), tb.extractfile(y)
                    if fx is not None and fy is not None and fx.read() != fy.read():
                        differ.append(name)
                elif (x.mtime, x.mode, x.linkname) != (y.mtime, y.mode, y.linkname):
                    differ.append(f"{name} (metadata)")
        lines.append(f"- {a.name}: differs in {len(differ)} members: {', '.join(differ[:30])}")
    return lines


def _compare_libraries(fresh: Path, user: Path) -> list[str]:
    """Libraries built in the fresh cache against the user's cache entries of the same key."""
    same, differ = 0, []
    for lib in sorted(fresh.glob("*/prefix")):
        other = user / lib.parent.name / "prefix"
        if not other.is_dir():
            continue
        files = sorted(p.relative_to(lib) for p in lib.rglob("*") if p.is_file())
        bad = [
            str(f)
            for f in files
            if not (other / f).is_file() or (other / f).read_bytes() != (lib / f).read_bytes()
        ]
        if bad:
            differ.append(f"{lib.parent.name}: {', '.join(bad[:8])}")
        else:
            same += 1
    return [
        f"- libraries identical to an earlier build of the same key: {same}",
        *(f"- differs: {d}" for d in differ),
    ]


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", nargs="+", default=["3.13"])
    parser.add_argument("--distros", nargs="+", default=["bullseye", "bookworm", "trixie", "sid"])
    parser.add_argument("--grafted", nargs="*", default=["3.13"])
    parser.add_argument("--out", type=Path, default=Path("bench/results/issue3.md"))
    args = parser.parse_args()

    from relocpy.verify.distro import verify_in_distro

    # A fresh library cache (sources stay in the shared download cache).
    shared_sources = home.downloads_dir()
    user_libs = home.cache_dir() / "libs"  # read before RELOCPY_HOME changes below
    work = Path(tempfile.mkdtemp(prefix="relocpy-bench3-"))
    os.environ["RELOCPY_HOME"] = str(work / "home")
    (work / "home" / "cache").mkdir(parents=True)
    (work / "home" / "cache" / "sources").symlink_to(shared_sources)
    # zig's download is shared (not timed); its compiled libc stubs are not (part of the build).
    shared = home.cache_dir()
    (work / "home" / "cache" / "toolchains").mkdir()
    for name in ("toolchains/ziglang-0.17.1", "roots", "apt"):
        if (shared / name).exists():
            (work / "home" / "cache" / name).symlink_to(shared / name)

    rows, tables, repro = [], [], []
    for number, version in enumerate(args.versions):
        first, first_s = _timed_build(version, work / "scratch" / version)
        sizes = (first.archives.gz.stat().st_size, first.archives.zst.stat().st_size)
        if number == 0:
            libs_s = _library_seconds(first)
            second, second_s = _timed_build(version, work / "cached")
            repro += _compare_archives(first, second)
            repro += _compare_libraries(home.cache_dir() / "libs", user_libs)
            rows.append(
                f"| {version} zig glibc 2.17 | {first_s:.0f} s (libraries {libs_s:.0f} s) "
                f"| {second_s:.0f} s | {_mib(sizes[0])} | {_mib(sizes[1])} |"
            )
        else:
            rows.append(
                f"| {version} zig glibc 2.17 | – | {first_s:.0f} s "
                f"| {_mib(sizes[0])} | {_mib(sizes[1])} |"
            )
        if version in args.grafted:
            grafted, grafted_s = _timed_build(
                version, work / "grafted", toolchain="gcc", libs="host"
            )
            rows.append(
                f"| {version} gcc, host libraries grafted | {grafted_s:.0f} s | – "
                f"| {_mib(grafted.archives.gz.stat().st_size)} "
                f"| {_mib(grafted.archives.zst.stat().st_size)} |"
            )
        report = verify(first.archives.gz, test_suite=first.test_suite)
        tables += _table(f"{version}: host (Debian 12)", report)
        for suite in args.distros:
            tables += _table(f"{version}: {suite} root", verify_in_distro(first.archives.gz, suite))

    lines = [
        "# Self-contained builds (issue 3)",
        "",
        f"Machine: {os.cpu_count()} cores. Command: `.venv/bin/python bench/issue3_report.py "
        f"--versions {' '.join(args.versions)}`.",
        "",
        "| build (noopt) | from scratch | libraries cached | .tar.gz | .tar.zst |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "Reproducibility (same inputs built twice):",
        "",
        *repro,
        "",
        *tables,
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
