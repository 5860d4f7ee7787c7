"""CPython's own tests from a moved tree: summary parsing and a real run of the subset."""

from __future__ import annotations

import pytest

from relocpy.verify.testsuite import SuiteResult, known_failures, parse_summary, suite_check

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


RERUN = """\
== Tests result: FAILURE ==

1 test failed:
    test_ssl

Re-running failed tests in verbose mode
Re-running test_ssl in verbose mode
OK

== Tests result: FAILURE then SUCCESS ==

15 tests OK.

1 re-run test:
    test_ssl

Tests result: FAILURE then SUCCESS
"""


def test_the_summary_after_re_runs_counts() -> None:
    outcome = parse_summary(RERUN)
    assert "failed" not in outcome and outcome["re-run"] == ["test_ssl"]
    result = SuiteResult(["test_ssl"], [], outcome, 2, RERUN)
    assert result.ok and result.final_result == "FAILURE then SUCCESS"
    assert "passed when re-run: test_ssl" in suite_check(result)[1]


def test_known_failures_are_per_version() -> None:
    assert [k.test for k in known_failures("3.13")] == ["test_write_read_limited_history"]
    assert {k.module for k in known_failures("3.9")} == {"test_ssl", "test_hashlib"}
    assert known_failures("3.13t") == known_failures("3.13")
    assert known_failures("3.12") == ()


@pytest.mark.real
def test_subset_runs_in_a_moved_tree(built_archive, tmp_path) -> None:
    from relocpy.core.archive import extract_archive
    from relocpy.core.tree import inspect_tree
    from relocpy.verify.testsuite import run_test_suite, unpack_test_suite

    extract_archive(built_archive.archives.gz, tmp_path / "moved ü")
    tree = inspect_tree(tmp_path / "moved ü" / "python")
    unpack_test_suite(built_archive.test_suite, tree, tmp_path / "tests")
    result = run_test_suite(tree)
    assert len(result.ran) >= 16, result.output[-2000:]
    assert result.absent == ["test_sqlite", "test_zstd"], result.output[-2000:]
    # test_readline's known failure (also in an in-place build) is not run; all else passes
    ok, detail = suite_check(result)
    assert ok, result.output[-4000:]
    assert "test_readline.test_write_read_limited_history" in detail
    for name in (
        "test_ssl",
        "test_sqlite3",
        "test_ctypes",
        "test_decimal",
        "test_tcl",
        "test_venv",
        "test_sysconfig",
    ):
        assert name in result.ran and name not in result.failed, name


@pytest.mark.real
def test_extended_pgo_training_is_the_whole_suite_less_the_slow(built_archive, tmp_path) -> None:
    """The extended training's arguments, as the Makefile would run them, on the real tree's
    regrtest: it takes them, and selects every test but the excluded ones."""
    import subprocess

    from relocpy.core.archive import extract_archive
    from relocpy.core.tree import inspect_tree
    from relocpy.recipes.cpython import PGO_EXTENDED_EXCLUDES, profile_task
    from relocpy.verify.testsuite import unpack_test_suite

    extract_archive(built_archive.archives.gz, tmp_path / "t")
    tree = inspect_tree(tmp_path / "t" / "python")
    unpack_test_suite(built_archive.test_suite, tree, tmp_path / "tests")
    task = profile_task("extended", 2)
    assert task is not None
    args = task.replace("$(TESTTIMEOUT)", "1200").split()
    listed = subprocess.run(
        [str(tree.executable), *args, "--list-tests"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(listed) > 300, listed
    assert {"test_json", "test_pickle", "test_re", "test_ssl"} <= set(listed)
    # 3.13 lists the packages it splits as test.test_asyncio.test_futures and so on
    assert not set(PGO_EXTENDED_EXCLUDES) & {part for name in listed for part in name.split(".")}
    # BOLT's training runs the same tests outside the Makefile (no $(TESTTIMEOUT) there)
    from relocpy.recipes.cpython import tolerant_profile_task, training_args

    assert training_args("extended", 2) == [a for a in args if not a.startswith("--timeout")]
    pgo = subprocess.run(
        [str(tree.executable), *training_args("pgo", 2), "--list-tests"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert 30 < len(pgo) < 60 and "test_generators" in pgo, pgo
    # the retry after a failed training test runs it not stopping for a failure
    assert tolerant_profile_task("pgo", 2) == "-m test --pgo --timeout=$(TESTTIMEOUT) || true"
    assert tolerant_profile_task("extended", 2) == f"{task} || true"
