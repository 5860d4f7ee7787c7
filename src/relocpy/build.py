"""Building CPython from a verified source tarball into a staging prefix.

configure / make / make install DESTDIR=..., with every line in the log and the current step shown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tarfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from relocpy.catalog import SourcePin
from relocpy.errors import BuildFailedError
from relocpy.progress import Reporter, append_log
from relocpy.recipes.cpython import INSTALL_PREFIX, configure_args
from relocpy.toolchain import Toolchain


@dataclass(frozen=True)
class BuildSpec:
    pin: SourcePin
    opt: str = "noopt"
    jobs: int = max(1, os.cpu_count() or 1)

    @property
    def configure_args(self) -> list[str]:
        return configure_args(self.pin.version_tuple, self.opt)


@dataclass(frozen=True)
class StagedBuild:
    """The result of `make install DESTDIR=stage`: the prefix lives at `stage/install`."""

    spec: BuildSpec
    source_dir: Path
    stage_dir: Path
    log: Path
    seconds: float

    @property
    def prefix_dir(self) -> Path:
        return self.stage_dir / INSTALL_PREFIX.lstrip("/")


def unpack_source(tarball: Path, into: Path) -> Path:
    """Extract the release tarball; return its single top-level directory."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as archive:
        tops = {member.name.split("/", 1)[0] for member in archive.getmembers()}
        if len(tops) != 1:
            raise BuildFailedError(f"{tarball.name} does not have one top-level directory")
        archive.extractall(into, filter="data")
    return into / tops.pop()


def _run_logged(
    cmd: list[str], cwd: Path, log: Path, reporter: Reporter, label: str, env: dict[str, str]
) -> None:
    append_log(log, f"\n$ {' '.join(cmd)}   (in {cwd})")
    tail: deque[str] = deque(maxlen=25)
    with log.open("a", encoding="utf-8", errors="replace") as handle:
        process = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # so an interrupt can stop make and all its children
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                handle.write(line)
                tail.append(line.rstrip())
                reporter.detail(f"{label}: {line.strip()}")
            code = process.wait()
        except BaseException:
            _stop_group(process)
            raise
    if code != 0:
        last = next((line for line in reversed(tail) if line.strip()), "")
        raise BuildFailedError(
            f"{label} failed (exit {code}): {last[:300]}",
            hint=f"the full log is {log}",
        )


def _stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM the command and its children (compilers clean their temp files), then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def build_env() -> dict[str, str]:
    """The caller's environment minus what would leak into the build (PYTHON*, site dirs)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "CONDA"))
    }
    env["LC_ALL"] = "C"
    return env


def build_cpython(
    spec: BuildSpec,
    tarball: Path,
    workdir: Path,
    toolchain: Toolchain,
    reporter: Reporter,
    log: Path,
) -> StagedBuild:
    """Unpack, configure, make and install into `workdir/stage`."""
    start = time.monotonic()
    reporter.step(f"unpacking {tarball.name}")
    source = unpack_source(tarball, workdir / "src")
    stage = workdir / "stage"
    env = build_env()
    env["CC"] = toolchain.cc
    # Compiler temp files live in the work dir, so nothing outlives an interrupted build.
    env["TMPDIR"] = str(workdir / "tmp")
    (workdir / "tmp").mkdir(exist_ok=True)
    reporter.step(f"configure ({spec.opt})")
    _run_logged(["./configure", *spec.configure_args], source, log, reporter, "configure", env)
    reporter.step(f"make -j{spec.jobs}")
    _run_logged([toolchain.make, f"-j{spec.jobs}"], source, log, reporter, "make", env)
    reporter.step("make install")
    _run_logged(
        [toolchain.make, "install", f"DESTDIR={stage}"], source, log, reporter, "make install", env
    )
    return StagedBuild(spec, source, stage, log, time.monotonic() - start)
