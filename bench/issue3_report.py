"""Self-contained builds report: from-scratch and cached build times, sizes, verify tables.

Usage: .venv/bin/python bench/issue3_report.py [--versions 3.13] [--distros bookworm bullseye]
       [--no-grafted]
For each version: a from-scratch build (libraries + CPython, zig, glibc 2.17, noopt) in an empty
library cache, then the same build again (libraries cached), then a gcc build that grafts the
host's libraries for the size comparison. Every zig archive is verified on the host (with the
CPython test subset) and in each distribution root. Source downloads are shared (not timed).
Results go to stdout and to bench/results/issue3.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from relocpy import home
from relocpy.pipeline import BuildResult, build
from relocpy.verify import VerifyReport, verify


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", nargs="+", default=["3.13"])
    parser.add_argument("--distros", nargs="+", default=["bullseye", "bookworm", "trixie", "sid"])
    parser.add_argument("--no-grafted", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/results/issue3.md"))
    args = parser.parse_args()

    from relocpy.distro import verify_in_distro

    # A fresh library cache (sources stay in the shared download cache).
    shared_sources = home.downloads_dir()
    work = Path(tempfile.mkdtemp(prefix="relocpy-bench3-"))
    os.environ["RELOCPY_HOME"] = str(work / "home")
    (work / "home" / "cache").mkdir(parents=True)
    (work / "home" / "cache" / "sources").symlink_to(shared_sources)

    rows, tables = [], []
    for version in args.versions:
        first, first_s = _timed_build(version, work / "scratch")
        libs_s = _library_seconds(first)
        second, second_s = _timed_build(version, work / "cached")
        sizes = (first.archives.gz.stat().st_size, first.archives.zst.stat().st_size)
        same = first.archives.gz.read_bytes() == second.archives.gz.read_bytes()
        rows.append(
            f"| {version} zig glibc 2.17 | {first_s:.0f} s (libraries {libs_s:.0f} s) "
            f"| {second_s:.0f} s (.tar.gz {'identical' if same else 'differs'}) "
            f"| {_mib(sizes[0])} | {_mib(sizes[1])} |"
        )
        if not args.no_grafted:
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
        *tables,
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
