"""Build, repair and verify report: build times, archive sizes and verify tables, as Markdown.

Usage: .venv/bin/python bench/issue2_report.py [--versions 3.9 3.11 3.13] [--pyenv 3.8 3.10 3.12]
Builds each CPython version from its pinned source (noopt), repairs each pyenv prefix, and runs
`relocpy verify` on every product. Results go to stdout and to bench/results/issue2.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import PYENV_VERSIONS, pyenv_root
from relocpy.core.tree import inspect_tree
from relocpy.pipeline import build
from relocpy.repair.relocate import repair
from relocpy.verify.checks import VerifyReport, verify


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _du(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _table(title: str, report: VerifyReport) -> list[str]:
    lines = [
        f"#### {title} (policy {report.policy})",
        "",
        "| check | result | detail |",
        "| --- | --- | --- |",
    ]
    for check in report.checks:
        detail = check.detail.replace("|", "\\|").replace("\n", " ")[:220]
        lines.append(f"| {check.name} | {'pass' if check.ok else 'FAIL'} | {detail} |")
    failed = sum(not c.ok for c in report.checks)
    lines += ["", f"{len(report.checks) - failed} passed, {failed} failed", ""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", nargs="*", default=["3.9", "3.11", "3.13"])
    parser.add_argument("--pyenv", nargs="*", default=["3.8", "3.10", "3.12"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "issue2.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="relocpy-bench-"))
    summary = [
        "| product | time | .tar.gz | .tar.zst | installed | verify |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    tables: list[str] = []
    try:
        for version in args.versions:
            result = build(version, work / "dist", opt="noopt")
            report = verify(result.archives.gz)
            meta = result.archives.info
            unpacked = work / f"unpacked-{version}"
            from relocpy.core.archive import extract_archive

            extract_archive(result.archives.gz, unpacked)
            failed = sum(not c.ok for c in report.checks)
            summary.append(
                f"| build {meta['python_version']} (noopt, gcc, glibc floor {meta['glibc_floor']}) "
                f"| {result.seconds:.0f} s | {_mib(result.archives.gz.stat().st_size)} "
                f"| {_mib(result.archives.zst.stat().st_size)} | {_mib(_du(unpacked))} "
                f"| {len(report.checks) - failed}/{len(report.checks)} |"
            )
            tables += _table(f"relocpy build {meta['python_version']}", report)
            shutil.rmtree(unpacked)
        for short in args.pyenv:
            src = pyenv_root() / "versions" / PYENV_VERSIONS[short]
            original = inspect_tree(src)
            start = time.monotonic()
            repaired = repair(src, work / f"repaired-{short}")
            seconds = time.monotonic() - start
            report = verify(work / f"repaired-{short}", forbid=(str(src), *original.build_dirs))
            failed = sum(not c.ok for c in report.checks)
            summary.append(
                f"| repair pyenv {original.version} ({len(repaired.grafted)} libs grafted) "
                f"| {seconds:.0f} s | – | – | {_mib(_du(work / f'repaired-{short}'))} "
                f"| {len(report.checks) - failed}/{len(report.checks)} |"
            )
            tables += _table(f"relocpy repair pyenv {original.version}", report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(["### relocpy build / repair / verify", "", *summary, "", *tables])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
