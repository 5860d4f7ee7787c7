"""relocpy-installed interpreters as the ecosystem sees them: uv, tox, virtualenv, nox."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import passed_checks
from relocpy.verify.checks import verify

RELOCPY = [sys.executable, "-m", "relocpy"]
TOOLS = Path(sys.executable).parent
SAMPLE = Path(__file__).parent / "data" / "sample_project"


def _user_env(home_dir: Path, bin_dir: Path) -> dict[str, str]:
    """A user's environment: relocpy's link directory on PATH, nothing else of ours."""
    return {
        "HOME": str(home_dir),
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",
        "RELOCPY_HOME": str(home_dir / "relocpy"),
        "RELOCPY_BIN_DIR": str(bin_dir),
    }


@pytest.mark.real
def test_uv_installs_our_archive_and_it_passes_the_runtime_checks(
    mirror_of_three: Path, tmp_path: Path
) -> None:
    uv_dir = tmp_path / "uv"
    env = {
        **_user_env(tmp_path / "user", tmp_path / "uvbin"),
        "UV_PYTHON_INSTALL_DIR": str(uv_dir / "python"),
        "UV_PYTHON_BIN_DIR": str(uv_dir / "bin"),
        "UV_CACHE_DIR": str(uv_dir / "cache"),
        "UV_NO_CONFIG": "1",
    }
    result = subprocess.run(
        [
            str(TOOLS / "uv"),
            "python",
            "install",
            "--python-downloads-json-url",
            (mirror_of_three / "uv-downloads.json").as_uri(),
            "3.13",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    trees = [
        p
        for p in (uv_dir / "python").iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    ]
    assert len(trees) == 1 and trees[0].name.startswith("cpython-3.13")
    data = next(trees[0].glob("lib/python3.13/_sysconfigdata_*.py")).read_text()
    assert str(trees[0]) in data  # uv parsed our file as data and wrote its own prefix in
    report = verify(trees[0], in_place=True)
    passed_checks(report)
    assert {"c-extension", "venv-pip", "sysconfig-paths"} <= {c.name for c in report.checks}


@pytest.fixture(scope="module")
def user_with_three_pythons(mirror_of_three: Path, tmp_path_factory: pytest.TempPathFactory):
    """A user who ran `relocpy install 3.9 3.11 3.13`, and a tools venv made from relocpy 3.13."""
    base = tmp_path_factory.mktemp("user")
    bin_dir = base / "home" / ".local" / "bin"
    env = _user_env(base / "home", bin_dir)
    result = subprocess.run(
        [*RELOCPY, "install", "3.9", "3.11", "3.13", "--mirror", str(mirror_of_three)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert {p.name for p in bin_dir.iterdir()} == {"python3.9", "python3.11", "python3.13"}
    # The tools run on a relocpy interpreter too, as they would for a user without a system 3.x.
    tools = base / "tools"
    subprocess.run([str(bin_dir / "python3.13"), "-m", "venv", str(tools)], check=True, env=env)
    pip_env = {**env, **{k: v for k, v in os.environ.items() if k.startswith("PIP_")}}
    subprocess.run(
        [str(tools / "bin" / "pip"), "install", "-q", "tox>=4", "nox", "virtualenv"],
        check=True,
        env=pip_env,
    )
    env["SAMPLE_EXPECT_ROOT"] = str(base / "home" / "relocpy" / "data" / "pythons")
    return env, tools / "bin"


def _run_in(
    project: Path, env: dict[str, str], tool: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(tool), *args], cwd=project, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(SAMPLE, project)
    return project


@pytest.mark.real
def test_tox_runs_py39_py311_py313(user_with_three_pythons, tmp_path: Path) -> None:
    env, tools = user_with_three_pythons
    project = _project(tmp_path)
    result = _run_in(project, env, tools / "tox", "-e", "py39,py311,py313")
    for name in ("py39", "py311", "py313"):
        assert f"{name}: OK" in result.stdout


@pytest.mark.real
def test_virtualenv_p_313(user_with_three_pythons, tmp_path: Path) -> None:
    env, tools = user_with_three_pythons
    venv = tmp_path / "venv"
    subprocess.run(
        [str(tools / "virtualenv"), "-p", "3.13", str(venv)],
        check=True,
        env=env,
        capture_output=True,
    )
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sys; print(sys.version_info[:2], sys.base_prefix)",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert out.startswith("(3, 13)") and env["SAMPLE_EXPECT_ROOT"] in out


@pytest.mark.real
def test_nox_sessions_311_and_313(user_with_three_pythons, tmp_path: Path) -> None:
    env, tools = user_with_three_pythons
    project = _project(tmp_path)
    result = _run_in(project, env, tools / "nox", "-f", "noxfile.py")
    assert "Session tests-3.11 was successful" in result.stderr
    assert "Session tests-3.13 was successful" in result.stderr
