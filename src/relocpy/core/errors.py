"""Domain errors: each carries a one-line cause and, where one exists, the fix.

The CLI prints `error: <message>` (plus `hint: <fix>`) and exits non-zero; nothing else is caught.
"""

from __future__ import annotations


class RelocpyError(Exception):
    """A failure the user can act on."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UnknownVersionError(RelocpyError):
    """The catalog has no release matching the request."""


class ChecksumMismatchError(RelocpyError):
    """A file's sha256 differs from its pin."""


class SourceUnavailableError(RelocpyError):
    """No mirror could deliver a pinned file."""


class MissingToolError(RelocpyError):
    """A compiler, make or header needed for a build is not installed."""


class NotAPythonPrefixError(RelocpyError):
    """A directory given as an installed CPython is not one."""


class OutputDirError(RelocpyError):
    """The output location cannot be written."""


class BuildFailedError(RelocpyError):
    """configure, make or make install failed; the log says why."""


class ToolFailedError(RelocpyError):
    """An external tool (patchelf, tar, ...) failed."""
