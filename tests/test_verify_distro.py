"""A moved tree runs on another Debian release: checks in overlays of a debootstrapped root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import passed_checks
from relocpy.core.errors import MissingToolError, RelocpyError
from relocpy.core.progress import QuietReporter
from relocpy.core.tree import InterpreterTree, inspect_tree
from relocpy.verify import distro
from relocpy.verify.checks import place_for_test
from relocpy.verify.distro import (
    CHECKS,
    ChrootRunner,
    ensure_root,
    fetch_https,
    install_test_ca,
    make_test_ca,
    overlay,
    remove_scratch,
    verify_in_distro,
)

SUITE = "bookworm"  # the host's glibc: a tree built here runs there
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, mount and chroot need root")


def test_unknown_suite_is_refused_with_the_valid_names(tmp_path: Path) -> None:
    with pytest.raises(RelocpyError, match="bullseye, bookworm, trixie, sid"):
        ensure_root("jessie", roots=tmp_path)
    with pytest.raises(RelocpyError, match="unknown Debian suite 'focal'"):
        verify_in_distro(tmp_path, "focal", roots=tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "relocpy", "verify", str(tmp_path), "--distro", "stretch"],
        capture_output=True,
        text=True,
    )
    # Refused before the (long) ordinary verify runs: the target is not even a tree.
    assert result.returncode == 2
    assert "unknown Debian suite 'stretch'" in result.stderr
    assert "bullseye, bookworm, trixie, sid" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_debootstrap_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "debootstrap" else real_which(name)
    )
    with pytest.raises(MissingToolError, match="debootstrap is not installed") as caught:
        ensure_root(SUITE, roots=tmp_path / "roots")
    assert caught.value.hint == "apt-get install -y debootstrap"
    assert not (tmp_path / "roots").exists()


@as_root
def test_scratch_with_a_mount_inside_is_not_deleted(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "host-file").write_text("must survive")
    scratch = tmp_path / "scratch"
    inside = scratch / "merged" / "proc"
    inside.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(host), str(inside)], check=True)
    reporter = QuietReporter()
    try:
        remove_scratch(scratch, reporter)
        assert (host / "host-file").read_text() == "must survive"
        assert f"still mounted there: {inside}" in reporter.steps[-1]
    finally:
        subprocess.run(["umount", str(inside)], check=True)
    remove_scratch(scratch, reporter)
    assert not scratch.exists() and (host / "host-file").exists()


# ---- real roots and a real tree ----------------------------------------------------------------


@pytest.fixture(scope="session")
def bookworm_root(session_home: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("debootstrap, mount and chroot need root")
    return ensure_root(SUITE)


@pytest.fixture(scope="session")
def repaired_tree(pyenv_prefix, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from relocpy.repair.relocate import repair

    out = tmp_path_factory.mktemp("distro-tree") / "python"
    repair(pyenv_prefix("3.13"), out)
    return out


def _no_mounts_under(path: Path) -> bool:
    return str(path.resolve()) not in Path("/proc/self/mountinfo").read_text()


@pytest.fixture
def chroot_tree(
    bookworm_root: Path, repaired_tree: Path, tmp_path: Path
) -> Iterator[tuple[ChrootRunner, InterpreterTree]]:
    """The repaired tree placed in an overlay of the bookworm root."""
    with overlay(bookworm_root, tmp_path / "overlay") as merged:
        runner = ChrootRunner(merged)
        yield runner, inspect_tree(place_for_test(repaired_tree, merged / "opt")[0])
    assert _no_mounts_under(tmp_path)


@pytest.mark.real
def test_root_is_built_once_and_cached(bookworm_root: Path) -> None:
    record = json.loads((bookworm_root / distro.MARKER).read_text())
    assert record["suite"] == SUITE and record["downloaded_bytes"] > 10_000_000
    assert (bookworm_root / "etc/ssl/certs/ca-certificates.crt").is_file()
    assert "VERSION_CODENAME=bookworm" in (bookworm_root / "etc/os-release").read_text()
    start = time.monotonic()
    assert ensure_root(SUITE) == bookworm_root
    assert time.monotonic() - start < 1
    assert not list(bookworm_root.parent.glob(f".{SUITE}-building-*"))


@pytest.mark.real
def test_moved_tree_passes_every_check_and_the_root_stays_minimal(
    bookworm_root: Path, repaired_tree: Path
) -> None:
    scratches = set(Path(tempfile.gettempdir()).glob(f"relocpy-{SUITE}-*"))
    report = verify_in_distro(repaired_tree, SUITE, QuietReporter())
    passed_checks(report)
    # A grafted tree uses Debian's OpenSSL configuration: no CA fallback to try elsewhere.
    assert [c.name for c in report.checks] == [n for n in CHECKS if n != "ca-layouts"]
    assert "glibc 2.36" in report.target
    details = {c.name: c.detail for c in report.checks}
    assert "/opt/moved here ü ñ/python/bin/python3.13 runs: 3.13.0" in details["starts"]
    assert "rejects an unknown CA" in details["https"]
    assert "compiled with gcc" in details["c-extension"]
    # gcc, the test CA and the moved tree went to the overlay, not into the cached root.
    assert not (bookworm_root / "usr/bin/gcc").exists()
    assert not (bookworm_root / "usr/local/share/ca-certificates" / distro.TEST_CA_NAME).exists()
    assert list((bookworm_root / "opt").iterdir()) == []
    assert set(Path(tempfile.gettempdir()).glob(f"relocpy-{SUITE}-*")) <= scratches


@pytest.mark.real
def test_self_contained_build_passes_every_check_on_bullseye(built_archive) -> None:
    """glibc 2.31 and OpenSSL 1.1 on the host: the zig build for glibc 2.17 needs neither."""
    if os.geteuid() != 0:
        pytest.skip("debootstrap, mount and chroot need root")
    report = verify_in_distro(built_archive.archives.gz, "bullseye", QuietReporter())
    passed_checks(report)
    assert [c.name for c in report.checks] == list(CHECKS)
    assert "glibc 2.31" in report.target
    details = {c.name: c.detail for c in report.checks}
    assert "Fedora/RHEL" in details["ca-layouts"] and "openSUSE" in details["ca-layouts"]
    assert "needs" not in details["imports"]  # _tkinter too: nothing left to the system


@pytest.mark.real
def test_https_trusts_exactly_the_system_store(
    chroot_tree: tuple[ChrootRunner, InterpreterTree], tmp_path: Path
) -> None:
    runner, tree = chroot_tree
    ca, crt, key = make_test_ca(tmp_path / "tls", "ours")
    [(ok, error)] = fetch_https(tree, runner, [(crt, key)])
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in error
    assert install_test_ca(runner, ca).returncode == 0
    assert fetch_https(tree, runner, [(crt, key)]) == [(True, "relocpy-ok")]


@pytest.mark.real
def test_https_check_fails_when_the_store_is_not_updated(
    chroot_tree: tuple[ChrootRunner, InterpreterTree], tmp_path: Path
) -> None:
    runner, tree = chroot_tree
    tool = runner.root / "usr/sbin/update-ca-certificates"
    tool.unlink()
    tool.write_text("#!/bin/sh\nexit 0\n")  # "succeeds" without adding the CA
    tool.chmod(0o755)
    check = distro.check_https(tree, runner, tmp_path / "tls")
    assert not check.ok
    assert "not trusted" in check.detail and "CERTIFICATE_VERIFY_FAILED" in check.detail


@pytest.mark.real
def test_a_tree_that_cannot_start_fails_every_check(
    bookworm_root: Path, repaired_tree: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(repaired_tree, broken, symlinks=True, copy_function=os.link)
    for library in (broken / "lib").glob("libpython3*.so*"):
        library.unlink()
    report = verify_in_distro(broken, SUITE)
    checks = {c.name: c for c in report.checks}
    assert not report.ok and list(checks) == list(CHECKS)
    assert "libpython3.13.so.1.0" in checks["starts"].detail
    assert all("does not start" in checks[name].detail for name in CHECKS[1:])


@pytest.mark.real
def test_cli_verify_with_distro(bookworm_root: Path, repaired_tree: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "relocpy",
            "verify",
            str(repaired_tree),
            "--static-only",
            "--distro",
            SUITE,
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    reports = json.loads(result.stdout)
    assert [r["ok"] for r in reports] == [True, True], result.stdout
    assert result.returncode == 0
    assert "Debian GNU/Linux 12 (bookworm)" in reports[1]["target"]
