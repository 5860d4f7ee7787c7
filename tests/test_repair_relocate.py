"""Repair real pyenv prefixes (--enable-shared, absolute RPATHs) and prove the copies work."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from relocpy.core.errors import NotAPythonPrefixError, OutputDirError
from relocpy.core.tree import inspect_tree
from relocpy.repair.relocate import repair
from relocpy.verify.checks import verify


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.real
@pytest.mark.parametrize("short", ["3.8", "3.10", "3.12", "3.13"])
def test_repaired_pyenv_prefix_passes_verify(short: str, pyenv_prefix, tmp_path: Path) -> None:
    src = pyenv_prefix(short)
    original = inspect_tree(src)
    sysconfig_before = _digest(original.sysconfigdata[0])
    libpython = sorted((src / "lib").glob("libpython3*.so.1.0"))[0]
    libpython_before = _digest(libpython)

    report = repair(src, tmp_path / "repaired")

    assert _digest(original.sysconfigdata[0]) == sysconfig_before, "source must stay untouched"
    assert _digest(libpython) == libpython_before
    assert "libssl.so.3" in report.grafted and "libffi.so.8" in report.grafted
    forbidden = (str(src), *original.build_dirs)
    result = verify(tmp_path / "repaired", forbid=forbidden)
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert not failed, failed
    assert {c.name for c in result.checks} >= {
        "elf-needed",
        "elf-runpath",
        "glibc",
        "leftover-paths",
        "starts",
        "environment",
        "sysconfig-paths",
        "extensions-import",
        "ssl-ca-store",
        "venv-pip",
        "c-extension",
        "pip3-script",
        "python-config",
        "second-move-imports",
    }


def test_not_a_python_prefix(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    with pytest.raises(NotAPythonPrefixError, match="not an installed CPython prefix"):
        repair(tmp_path, tmp_path.parent / "out-never")
    assert not (tmp_path.parent / "out-never").exists()


def test_non_empty_output_is_refused(pyenv_prefix, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="not empty"):
        repair(pyenv_prefix("3.12"), tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_unwritable_output_leaves_nothing(pyenv_prefix, tmp_path: Path) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)], capture_output=True
    )
    try:
        target = readonly if mounted.returncode == 0 else tmp_path / "file-not-dir"
        if mounted.returncode != 0:
            target.write_text("a file where a directory should be")
        with pytest.raises(OutputDirError):
            repair(pyenv_prefix("3.12"), target / "out")
        assert not (target / "out").exists() if target.is_dir() else True
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(readonly)], check=True)
    assert not list(tmp_path.glob(".out.partial-*"))


def test_repair_into_its_own_source_is_refused(pyenv_prefix) -> None:
    src = pyenv_prefix("3.12")
    with pytest.raises(OutputDirError, match="inside the source prefix"):
        repair(src, src / "nested")


@pytest.mark.real
def test_a_policy_the_prefix_cannot_meet_fails_and_writes_nothing(
    pyenv_prefix, tmp_path: Path
) -> None:
    """pyenv's 3.12 was linked here against glibc 2.36: grafting cannot make it manylinux2014."""
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "relocpy", "repair", str(pyenv_prefix("3.12")), "--out", str(out),
         "--policy", "manylinux_2_17"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "files need GLIBC 2." in result.stderr and "newer than manylinux_2_17" in result.stderr
    assert "relocpy build --glibc 2.17" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.real
def test_pip_scripts_are_fixed_by_a_sitecustomize_not_a_pth(pyenv_prefix, tmp_path: Path) -> None:
    """The hook that keeps pip's console scripts working after a move costs the start-up
    little: a sitecustomize that registers one function (a `.pth` file made every 3.13 start
    ~5% slower). A prefix with a sitecustomize of its own keeps it and gets the `.pth`."""
    import os
    import shutil

    from conftest import wheel_with_a_script
    from relocpy.repair.relocate import SCRIPTS_PTH, add_script_hooks

    repair(pyenv_prefix("3.13"), tmp_path / "first")
    site = inspect_tree(tmp_path / "first").stdlib / "site-packages"
    assert (site / "sitecustomize.py").is_file() and not (site / SCRIPTS_PTH).exists()
    env = {"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    python = tmp_path / "first" / "bin" / "python3.13"
    started = subprocess.run(
        [str(python), "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True
    )
    assert "sitecustomize" in started.stderr and "_relocpy_scripts" not in started.stderr
    wheel = wheel_with_a_script(tmp_path)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    os.rename(tmp_path / "first", tmp_path / "moved dir ü")
    script = tmp_path / "moved dir ü" / "bin" / "relocpy-hello"
    ran = subprocess.run([str(script)], env=env, capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == f"hello from {tmp_path / 'moved dir ü'}"

    own = tmp_path / "own"
    shutil.copytree(tmp_path / "moved dir ü", own, symlinks=True)
    site = inspect_tree(own).stdlib / "site-packages"
    (site / "sitecustomize.py").write_text("MINE = True\n")
    add_script_hooks(inspect_tree(own))
    assert (site / "sitecustomize.py").read_text() == "MINE = True\n"
    assert (site / SCRIPTS_PTH).read_text().startswith("import _relocpy_scripts")
