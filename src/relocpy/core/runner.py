"""Running build commands: unpack a tarball, run a step with every line logged, stop cleanly.

Shared by the CPython build and the library builds; an interrupt stops make and its children.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path

from relocpy.core.archive import extract_archive
from relocpy.core.errors import BuildFailedError
from relocpy.core.progress import Reporter, append_log


class CommandGroup:
    """The commands run for one piece of work that runs in several threads (the library
    builds of one CPython build), so that one thread can stop them all: after `stop()`,
    a command of the group that is running is stopped and one that starts fails at once."""

    def __init__(self) -> None:
        self._running: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self.stopped = False

    def add(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._running.add(process)
            stopped = self.stopped
        if stopped:
            _stop_group(process)

    def discard(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._running.discard(process)

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            running = list(self._running)
        for process in running:
            _stop_group(process)


def unpack_source(tarball: Path, into: Path) -> Path:
    """Extract the release tarball with relocpy's safe extractor (no link followed, nothing
    outside `into`; tarfile's own `filter=` is missing from Debian 12's Python 3.11.2); return
    its single top-level directory."""
    extract_archive(tarball, into)
    tops = list(into.iterdir())
    if len(tops) != 1 or not tops[0].is_dir():
        raise BuildFailedError(f"{tarball.name} does not have one top-level directory")
    return tops[0]


def run_logged(
    cmd: list[str],
    cwd: Path,
    log: Path,
    reporter: Reporter,
    label: str,
    env: dict[str, str],
    milestones: dict[str, str] | None = None,
    accept: tuple[int, ...] = (0,),
    group: CommandGroup | None = None,
) -> int:
    """Run `cmd`, every output line to `log` and to the reporter's detail line; an output line
    that holds a key of `milestones` makes its value the reporter's current step. An exit
    status not in `accept` raises BuildFailedError; the status is returned. A command of a
    `group` that was stopped raises BuildFailedError."""
    if group is not None and group.stopped:
        raise BuildFailedError(f"{label}: not started, the build was stopped")
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
        if group is not None:
            group.add(process)
        try:
            for line in process.stdout:
                handle.write(line)
                tail.append(line.rstrip())
                for start, step in (milestones or {}).items():
                    if start in line:
                        reporter.step(step)
                reporter.detail(f"{label}: {line.strip()}")
            code = process.wait()
        except BaseException:
            _stop_group(process)
            raise
        finally:
            if group is not None:
                group.discard(process)
    if code not in accept:
        last = next((line for line in reversed(tail) if line.strip()), "")
        raise BuildFailedError(
            f"{label} failed (exit {code}): {last[:300]}",
            hint=f"the full log is {log}",
        )
    return code


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


def prefix_map_flags(maps: dict[str, str]) -> list[str]:
    """-ffile-prefix-map flags that write each directory's path as its replacement in debug
    info and __FILE__ (gcc and clang); longest path first, as the compiler takes the first match."""
    return [f"-ffile-prefix-map={old}={maps[old]}" for old in sorted(maps, key=len, reverse=True)]


def build_env() -> dict[str, str]:
    """The caller's environment minus what would leak into the build (PYTHON*, site dirs)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "CONDA"))
    }
    env["LC_ALL"] = "C"
    return env
