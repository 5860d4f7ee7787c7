"""`relocpy install` from nothing: a build on a miss, the binary cache, .python-version, and
console scripts that survive moves (real builds; the 3.11 one is made once per session)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import link_caches, wheel_with_a_script

RELOCPY = [sys.executable, "-m", "relocpy"]
CLEAN = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}

pytestmark = pytest.mark.real


def test_install_from_nothing_builds_caches_and_installs(installed_from_nothing) -> None:
    done, plan = installed_from_nothing
    assert plan.source == "build" and plan.estimate and "libraries to build" in plan.estimate
    assert "installed: none" in plan.notes and any("binary cache" in n for n in plan.notes)
    python = done.installation.executable
    out = subprocess.run(
        [str(python), "-c", "import ssl, sqlite3, ctypes, curses, sys; print(sys.version)"],
        capture_output=True, text=True, env=CLEAN,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("3.11.2")
    from relocpy.core.home import binaries_dir

    records = list((binaries_dir() / "specs").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["label"].startswith("3.11.2")


def test_a_second_install_comes_from_the_binary_cache(
    installed_from_nothing, tmp_path: Path
) -> None:
    """Into an empty data directory (another XDG_DATA_HOME): nothing is built again."""
    from relocpy.core.home import binaries_dir

    home = os.environ["RELOCPY_HOME"]
    env = {
        **os.environ,
        "RELOCPY_HOME": "",
        "XDG_CACHE_HOME": str(Path(home) / "xdg-cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "RELOCPY_BIN_DIR": str(tmp_path / "bin"),
    }
    # the same caches, reached as a user without RELOCPY_HOME reaches them
    (Path(home) / "xdg-cache").mkdir(exist_ok=True)
    link = Path(home) / "xdg-cache" / "relocpy"
    if not link.exists():
        link.symlink_to(Path(home) / "cache")
    before = sorted((binaries_dir() / "specs").glob("*.json"))
    result = subprocess.run([*RELOCPY, "install", "3.11"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "from binary cache" in result.stderr and "building" not in result.stderr
    assert sorted((binaries_dir() / "specs").glob("*.json")) == before
    assert Path(result.stdout.strip()).is_relative_to(tmp_path / "data")


def test_run_reads_python_version(installed_from_nothing, tmp_path: Path) -> None:
    project = tmp_path / "project" / "sub"
    project.mkdir(parents=True)
    (tmp_path / "project" / ".python-version").write_text("3.11\n")
    result = subprocess.run(
        [*RELOCPY, "run", "--", "python", "-V"], cwd=project, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Python 3.11.2"


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_console_scripts_survive_two_moves(built_tree, tmp_path: Path, installer: str) -> None:
    first = tmp_path / "first" / "python"
    shutil.copytree(built_tree.root, first, symlinks=True)
    wheel = wheel_with_a_script(tmp_path)
    python = first / "bin" / built_tree.executable.name
    if installer == "pip":
        cmd = [str(python), "-m", "pip", "install", "--no-index", "--no-deps", str(wheel)]
    else:
        uv = Path(sys.executable).parent / "uv"
        cmd = [str(uv), "pip", "install", "--python", str(python), "--no-index",
               "--break-system-packages", "--no-cache", str(wheel)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=CLEAN)
    assert done.returncode == 0, done.stdout + done.stderr
    script = first / "bin" / "relocpy-hello"
    assert str(first) not in script.read_text().splitlines()[0]
    second = tmp_path / "second place" / "python"
    second.parent.mkdir()
    os.rename(first, second)
    third = tmp_path / "third ü ñ" / "python"
    third.parent.mkdir()
    os.rename(second, third)
    out = subprocess.run(
        [str(third / "bin" / "relocpy-hello")], capture_output=True, text=True, env=CLEAN
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"hello from {third}"


def test_a_release_whose_source_is_not_here_is_named_with_its_mirror(tmp_path: Path) -> None:
    """No mirror has 3.12, no build is cached, and this machine reaches neither python.org nor
    a Debian package of 3.12: the error says so, names the URL that serves it, and installs
    and builds nothing."""
    home = tmp_path / "home"
    result = subprocess.run(
        [*RELOCPY, "install", "3.12"],
        capture_output=True, text=True, env={**os.environ, "RELOCPY_HOME": str(home)},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot build CPython 3.12.14: its source is not reachable from here" in result.stderr
    url = "https://www.python.org/ftp/python/3.12.14/Python-3.12.14.tar.xz"
    assert f"it is served by: {url}" in result.stderr
    assert "relocpy fetch 3.12.14 --file Python-3.12.14.tar.xz" in result.stderr
    assert "Traceback" not in result.stderr
    assert (
        not list((home / "cache" / "libs").glob("*-*"))
        if (home / "cache" / "libs").exists()
        else True
    )
    assert not (home / "data" / "pythons").exists() or not [
        p for p in (home / "data" / "pythons").iterdir() if p.name != ".locks"
    ]


def test_a_build_that_fails_on_a_miss_installs_nothing(
    built_archive, session_home: Path, tmp_path: Path
) -> None:
    """A real build on a miss (the session's sources, libraries and zig, so only CPython
    builds) whose `make` fails: the error names the build and its log, exit 2, and nothing is
    installed, linked or recorded in the binary cache, and no build directory is left."""
    version = built_archive.archives.gz.name.split("-")[1].split("+")[0]
    home = tmp_path / "home"
    link_caches(session_home / "cache", home / "cache", ("libs", "sources", "apt", "toolchains"))
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "make").write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -f "*) exec /usr/bin/make "$@";; esac\n'  # configure's own probes
        'echo "make: *** [Makefile:1] Error 2 (this test\'s make fails)" >&2\nexit 2\n'
    )
    (fake / "make").chmod(0o755)
    env = {
        **os.environ,
        "RELOCPY_HOME": str(home),
        "PATH": f"{fake}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        [*RELOCPY, "install", version, "--build-only"], capture_output=True, text=True, env=env
    )
    said = result.stdout + result.stderr
    assert result.returncode == 2, said
    assert f"error: the build of {version}" in result.stderr and "failed" in result.stderr, said
    assert "nothing was installed" in result.stderr and "Traceback" not in said
    log = Path(result.stderr.split("the build log is ", 1)[1].split()[0])
    assert log.is_file() and "this test's make fails" in log.read_text(errors="replace")
    pythons = home / "data" / "pythons"
    assert not pythons.exists() or [p.name for p in pythons.iterdir()] in ([], [".locks"])
    assert not (home / "bin").exists() or not list((home / "bin").iterdir())
    binaries = home / "cache" / "binaries"
    assert not list(binaries.glob("specs/*.json")) and not list(binaries.glob(".build-*"))
    assert not list(binaries.glob("cpython-*"))
