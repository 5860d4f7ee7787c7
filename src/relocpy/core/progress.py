"""Progress for long-running work: step lines with elapsed time, byte counters, a full log.

The library reports through the `Reporter` protocol: the CLI passes a console one, tests a quiet
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console


class Reporter(Protocol):
    def step(self, message: str) -> None:
        """A new stage of work began."""

    def detail(self, message: str) -> None:
        """Transient status within a step (the current build target, bytes so far)."""

    def bytes_done(self, label: str, done: int, total: int | None) -> None:
        """A download advanced."""


class QuietReporter:
    """Records steps (tests assert on them); prints nothing."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def detail(self, message: str) -> None:
        pass

    def bytes_done(self, label: str, done: int, total: int | None) -> None:
        pass


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class ConsoleReporter:
    """Step lines on stderr, prefixed with elapsed time; details overwrite one status line."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False)
        self.start = time.monotonic()
        self._last_detail = time.monotonic()

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.start)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def step(self, message: str) -> None:
        self.console.print(f"[dim]{self._elapsed()}[/dim] {message}", soft_wrap=True)

    def detail(self, message: str) -> None:
        now = time.monotonic()
        if not self.console.is_terminal:
            # Logs and CI: a heartbeat line every 30 s instead of a live status line.
            if now - self._last_detail >= 30:
                self._last_detail = now
                self.console.print(f"  {self._elapsed()} {message[:200]}", soft_wrap=True)
            return
        if now - self._last_detail < 0.5:
            return
        self._last_detail = now
        width = max(20, self.console.width - 8)
        self.console.print(f"  {self._elapsed()} {message[:width]}", end="\r", soft_wrap=True)

    def bytes_done(self, label: str, done: int, total: int | None) -> None:
        of = f" of {_human(total)}" if total else ""
        self.detail(f"{label}: {_human(done)}{of}")


class PlainReporter:
    """Step lines on stderr with elapsed time, no styling: for logs, CI and quick commands."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self._last_detail = self.start

    def step(self, message: str) -> None:
        seconds = int(time.monotonic() - self.start)
        print(f"{seconds // 60:02d}:{seconds % 60:02d} {message}", file=sys.stderr, flush=True)

    def detail(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_detail >= 30:  # a heartbeat, not a flood
            self._last_detail = now
            self.step(f"  {message[:200]}")

    def bytes_done(self, label: str, done: int, total: int | None) -> None:
        of = f" of {_human(total)}" if total else ""
        self.detail(f"{label}: {_human(done)}{of}")


def console_reporter() -> Reporter:
    """A live rich display on a terminal; plain lines (and no rich import) elsewhere."""
    return ConsoleReporter() if sys.stderr.isatty() else PlainReporter()


def append_log(log: Path | None, text: str) -> None:
    if log is not None:
        with log.open("a", encoding="utf-8", errors="replace") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
