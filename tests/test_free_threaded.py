"""A real free-threaded CPython 3.13t: built, verified without the GIL, installed as 3.13t."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import passed_checks
from relocpy.package.mirror import write_index
from relocpy.verify.checks import verify

TOOLS = Path(sys.executable).parent


@pytest.mark.real
@pytest.mark.bench  # 3.13t's build: left to bench runs (CI time)
def test_free_threaded_build_verifies_without_the_gil(built_free_threaded) -> None:
    archives = built_free_threaded.archives
    assert "-freethreaded+install_only" in archives.gz.name
    assert archives.info["variant"] == "freethreaded"
    report = verify(archives.gz)
    checks = passed_checks(report)
    assert "stays so after importing" in checks["free-threading"]
    assert "bin/python3.13t" not in checks["hardening"]  # the executable is relocpy's PIE


@pytest.fixture(scope="module")
def mirror_with_both(built_free_threaded, built_archive, tmp_path_factory) -> Path:
    mirror = tmp_path_factory.mktemp("mirror-ft")
    for archives in (built_free_threaded.archives, built_archive.archives):
        for path in (archives.gz, archives.zst, archives.metadata):
            os.link(path, mirror / path.name)
    write_index(mirror)
    return mirror


@pytest.mark.real
@pytest.mark.bench  # 3.13t's build: left to bench runs (CI time)
def test_install_313t_picks_the_free_threaded_build(mirror_with_both: Path, tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",
        "RELOCPY_HOME": str(tmp_path / "relocpy"),
        "RELOCPY_BIN_DIR": str(tmp_path / "bin"),
    }
    for request, gil in (("3.13t", "False"), ("3.13", "True")):
        mirror = str(mirror_with_both)
        result = subprocess.run(
            [sys.executable, "-m", "relocpy", "install", request, "--mirror", mirror, "--no-build"],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        found = subprocess.run(
            [sys.executable, "-m", "relocpy", "find", request],
            capture_output=True, text=True, env=env, check=True,
        ).stdout.strip()  # fmt: skip
        ran = subprocess.run(
            [found, "-c", "import sys; print(sys._is_gil_enabled())"],
            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True,
        )  # fmt: skip
        assert ran.stdout.strip() == gil, (request, found)
    assert {p.name for p in (tmp_path / "bin").iterdir()} >= {"python3.13t", "python3.13"}


@pytest.mark.real
@pytest.mark.bench  # 3.13t's build: left to bench runs (CI time)
def test_uv_installs_313t_from_our_json(mirror_with_both: Path, tmp_path: Path) -> None:
    downloads = json.loads((mirror_with_both / "uv-downloads.json").read_text())
    assert any(v["variant"] == "freethreaded" for v in downloads.values())
    uv_dir = tmp_path / "uv"
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
        "UV_PYTHON_INSTALL_DIR": str(uv_dir / "python"),
        "UV_PYTHON_BIN_DIR": str(uv_dir / "bin"),
        "UV_CACHE_DIR": str(uv_dir / "cache"),
        "UV_NO_CONFIG": "1",
    }
    url = (mirror_with_both / "uv-downloads.json").as_uri()
    result = subprocess.run(
        [str(TOOLS / "uv"), "python", "install", "--python-downloads-json-url", url, "3.13t"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trees = [p for p in (uv_dir / "python").iterdir() if p.is_dir() and not p.is_symlink()]
    assert [t.name for t in trees if not t.name.startswith(".")] == [
        next(t.name for t in trees if "freethreaded" in t.name)
    ]
    tree = next(t for t in trees if "freethreaded" in t.name)
    ran = subprocess.run(
        [str(tree / "bin" / "python3.13t"), "-c", "import sys; print(sys._is_gil_enabled())"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True,
    )  # fmt: skip
    assert ran.stdout.strip() == "False"
