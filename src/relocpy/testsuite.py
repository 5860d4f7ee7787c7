"""CPython's own test suite, a named subset of it, run from a moved tree.

The tests come from the build's `test_suite` archive, unpacked over the install_only tree.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from relocpy.archive import extract_archive
from relocpy.errors import RelocpyError
from relocpy.tree import InterpreterTree, clean_env

# The modules whose tests prove the bundled libraries and the relocation work.
DEFAULT_TESTS = (
    "test_ssl",
    "test_sqlite3",
    "test_ctypes",
    "test_venv",
    "test_sysconfig",
    "test_site",
    "test_lzma",
    "test_bz2",
    "test_zlib",
    "test_zstd",
    "test_readline",
    "test_curses",
    "test_decimal",
    "test_hashlib",
    "test_uuid",
    "test_dbm",
    "test_tcl",
    "test_zipfile",
)

_SUMMARY = re.compile(
    r"^(?:All )?(\d+) tests? (OK|failed|skipped|run no tests|omitted|"
    r"altered the execution environment|skipped \(resource denied\))",
)


@dataclass
class SuiteResult:
    """Which tests passed, failed or were skipped; `output` is the runner's full output."""

    ran: list[str]
    absent: list[str]
    outcome: dict[str, list[str]] = field(default_factory=dict)
    returncode: int = 0
    output: str = ""

    @property
    def failed(self) -> list[str]:
        return self.outcome.get("failed", [])

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failed


def parse_summary(output: str) -> dict[str, list[str]]:
    """The `N tests failed:` style blocks of `python -m test` output, by category."""
    outcome: dict[str, list[str]] = {}
    lines = output.splitlines()
    for index, line in enumerate(lines):
        match = _SUMMARY.match(line.strip())
        if not match:
            continue
        category = match.group(2)
        names: list[str] = []
        for following in lines[index + 1 :]:
            if not following.startswith("    "):
                break
            names += following.split()
        if category == "failed" and not names:
            continue
        outcome.setdefault(category, []).extend(names)
    return outcome


def unpack_test_suite(archive: Path, tree: InterpreterTree, scratch: Path) -> None:
    """Put the archive's `lib/pythonX.Y/test` into `tree`."""
    extract_archive(archive, scratch)
    source = scratch / "python" / "lib" / f"python{tree.short_version}" / "test"
    if not source.is_dir():
        raise RelocpyError(f"{archive.name} holds no lib/python{tree.short_version}/test")
    source.rename(tree.stdlib / "test")


def present_tests(tree: InterpreterTree, wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    test_dir = tree.stdlib / "test"
    present = [
        name
        for name in wanted
        if (test_dir / f"{name}.py").is_file() or (test_dir / name / "__init__.py").is_file()
    ]
    return present, [name for name in wanted if name not in present]


def run_test_suite(
    tree: InterpreterTree,
    tests: tuple[str, ...] = DEFAULT_TESTS,
    jobs: int = 2,
    timeout: int = 1800,
) -> SuiteResult:
    """`python -m test -jN TESTS` with a clean environment; tests not in this version are absent."""
    ran, absent = present_tests(tree, tests)
    if not ran:
        raise RelocpyError(f"none of {', '.join(tests)} exists in {tree.stdlib / 'test'}")
    cmd = [
        str(tree.executable),
        "-m",
        "test",
        f"-j{jobs}",
        "--timeout",
        "900",
        *ran,
    ]
    env = clean_env()
    env.pop("DISPLAY", None)
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=tree.root
    )
    output = result.stdout + result.stderr
    return SuiteResult(ran, absent, parse_summary(output), result.returncode, output)


def suite_check(result: SuiteResult) -> tuple[bool, str]:
    """(ok, one-line detail) for a verify report."""
    skipped = result.outcome.get("skipped", []) + result.outcome.get(
        "skipped (resource denied)", []
    )
    parts = [f"{len(result.ran) - len(result.failed)}/{len(result.ran)} test modules passed"]
    if result.failed:
        parts.append("failed: " + " ".join(result.failed))
    if skipped:
        parts.append("skipped: " + " ".join(skipped))
    if result.absent:
        parts.append("not in this version: " + " ".join(result.absent))
    if result.returncode != 0 and not result.failed:
        parts.append(f"exit {result.returncode}: " + result.output.strip()[-300:])
    return result.ok, "; ".join(parts)
