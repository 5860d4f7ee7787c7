"""The command line: help a user can read, conventional exit codes, no tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_tree import make_fake_archives
from relocpy import cli
from relocpy.package.mirror import write_index

RELOCPY = [sys.executable, "-m", "relocpy"]


def _cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RELOCPY, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "RELOCPY_HOME": str(home), **env},
    )


def test_help_is_for_users(tmp_path: Path) -> None:
    result = _cli("--help", home=tmp_path)
    assert result.returncode == 0
    assert "Relocatable CPython for Linux" in result.stdout
    assert "argument parsing" not in result.stdout and "`pipeline`" not in result.stdout
    build = _cli("build", "--help", home=tmp_path).stdout
    for text in ("optimisation: noopt (default)", "parallel compile jobs", "3, 3.13 or 3.13.5"):
        assert text in build
    for verb in ("install", "verify", "matrix plan", "repair", "cache"):
        shown = _cli(*verb.split(), "--help", home=tmp_path).stdout
        assert "show this help message" in shown


def test_errors_name_no_internal_names(tmp_path: Path) -> None:
    result = _cli("matrix", home=tmp_path)
    assert result.returncode == 2
    assert "matrix_command" not in result.stderr and "{plan,build}" in result.stderr


def test_run_of_a_missing_command_exits_127(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_fake_archives(mirror, "3.99.0")
    write_index(mirror)
    home = tmp_path / "home"
    result = _cli("run", "3.99", "--mirror", str(mirror), "--", "relocpy-no-such-cmd", home=home)
    assert result.returncode == 127, result.stderr
    assert "relocpy-no-such-cmd: command not found" in result.stderr
    ok = _cli("run", "3.99", "--", "python3.99", "x", home=home)
    assert ok.returncode == 0 and ok.stdout.strip() == "fake 3.99.0 x"


def test_sigterm_exits_143(tmp_path: Path) -> None:
    """A slow mirror keeps `install` busy; SIGTERM ends it with 143 and leaves nothing."""
    from mirror_server import MirrorServer

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_fake_archives(mirror, "3.99.0", payload=3_000_000)
    write_index(mirror)
    home = tmp_path / "home"
    with MirrorServer(mirror) as server:
        server.delay_per_chunk = 0.05
        proc = subprocess.Popen(
            [*RELOCPY, "install", "3.99", "--mirror", server.url],
            env={**os.environ, "RELOCPY_HOME": str(home)},
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not list(home.glob("cache/archives/*.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert not [p for p in (home / "data" / "pythons").glob("*") if p.name != ".locks"]


def test_an_unexpected_error_is_one_line_and_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELOCPY_HOME", str(tmp_path))

    def broken(args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "_stages", broken)
    assert cli.main(["versions"]) == 70
    err = capsys.readouterr().err
    assert "error: relocpy failed unexpectedly: KeyError: 'a bug'" in err
    assert "Traceback" not in err
    [log] = (tmp_path / "cache" / "logs").glob("crash-*.log")
    assert "Traceback" in log.read_text() and "a bug" in log.read_text()


def test_a_rejected_build_leaves_no_out_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for args in (["3.99"], ["3.13", "--opt", "pgo+lto"], ["3.13", "--glibc", "2.5"]):
        result = _cli("build", *args, "--out", str(out), home=tmp_path / "home")
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert not out.exists(), args


def test_the_relocpy_script_runs_installed_interpreters_and_falls_back(tmp_path: Path) -> None:
    """bin/relocpy as installed into the venv: `run` of an installed interpreter without the
    full command line, everything else through it."""
    script = Path(sys.executable).parent / "relocpy"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_fake_archives(mirror, "3.99.0")
    write_index(mirror)
    env = {**os.environ, "RELOCPY_HOME": str(tmp_path / "home")}
    first = subprocess.run(  # not installed yet: the full command line installs it
        [str(script), "run", "3.99", "--mirror", str(mirror), "--", "python3.99", "a"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert first.returncode == 0 and first.stdout.strip() == "fake 3.99.0 a", first.stderr
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / ".python-version").write_text("3.99\n")
    fast = subprocess.run(
        [str(script), "run", "--", "python3.99", "b"],
        capture_output=True, text=True, env=env, cwd=tmp_path / "work",
    )  # fmt: skip
    assert fast.returncode == 0 and fast.stdout.strip() == "fake 3.99.0 b", fast.stderr
    missing = subprocess.run(
        [str(script), "run", "3.99", "--", "relocpy-no-such"], capture_output=True, text=True,
        env=env,
    )  # fmt: skip
    assert missing.returncode == 127
    versions = subprocess.run(
        [str(script), "versions", "--offline", "--json"], capture_output=True, text=True, env=env
    )
    assert versions.returncode == 0 and '"3.13.15"' in versions.stdout
