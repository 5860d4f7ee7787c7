"""CPython's own tests from a moved tree: summary parsing and a real run of the subset."""

from __future__ import annotations

import pytest

from relocpy.testsuite import SuiteResult, parse_summary, suite_check

SAMPLE = """\
0:01:02 load avg: 1.20 [18/18] test_ssl passed

== Tests result: FAILURE ==

12 tests OK.

2 tests failed:
    test_venv test_zipfile

2 tests skipped:
    test_curses
    test_zstd

Total duration: 1 min 3 sec
"""


def test_summary_blocks_are_parsed() -> None:
    outcome = parse_summary(SAMPLE)
    assert outcome["failed"] == ["test_venv", "test_zipfile"]
    assert outcome["skipped"] == ["test_curses", "test_zstd"]


def test_single_test_wording_is_parsed() -> None:
    assert parse_summary("1 test failed:\n    test_ssl\n") == {"failed": ["test_ssl"]}


def test_check_detail_names_failures_and_absent_tests() -> None:
    result = SuiteResult(["test_ssl", "test_venv"], ["test_zstd"], {"failed": ["test_venv"]}, 2, "")
    ok, detail = suite_check(result)
    assert not ok
    assert "1/2 test modules passed" in detail
    assert "failed: test_venv" in detail and "not in this version: test_zstd" in detail


@pytest.mark.real
def test_subset_passes_in_a_moved_tree(built_archive) -> None:
    from relocpy.verify import verify

    report = verify(built_archive.archives.gz, test_suite=built_archive.test_suite)
    check = next(c for c in report.checks if c.name == "test-suite")
    assert check.ok, check.detail
    assert "test_ssl" not in check.detail.split("failed:")[-1]
