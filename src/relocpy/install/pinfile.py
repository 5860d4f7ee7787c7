""".python-version, as pyenv and uv write it: the interpreter a directory tree asks for.

The first such file found from the working directory upwards wins; its first line that is not
blank or a `#` comment is the request (`3.13`, `3.13.5`, `3.13t`, `cpython@3.13`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from relocpy.core.errors import RelocpyError, UnknownVersionError
from relocpy.core.versions import parse_request

FILENAME = ".python-version"


class PinFileError(RelocpyError):
    """A .python-version that cannot be read or does not name a version."""


@dataclass(frozen=True)
class Pin:
    request: str
    path: Path
    line: int


def read_pin(path: Path) -> Pin:
    """The request in the .python-version at `path`, checked."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PinFileError(f"cannot read {path}: {exc}") from exc
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            parse_request(text)
        except UnknownVersionError:
            raise PinFileError(
                f"{path}, line {number}: {text!r} is not a CPython version",
                hint="write a version such as 3.13 or 3.13.5 there (`relocpy pin 3.13`)",
            ) from None
        return Pin(text, path, number)
    raise PinFileError(
        f"{path} names no version", hint="write one there, e.g. with `relocpy pin 3.13`"
    )


def find_pin(start: Path | None = None) -> Pin | None:
    """The nearest .python-version at or above `start` (default: the working directory)."""
    here = Path(start or os.getcwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / FILENAME
        if candidate.is_file():
            return read_pin(candidate)
    return None


def write_pin(request: str, directory: Path | None = None) -> Path:
    """Write `request` (checked) to `directory/.python-version`; return the file."""
    parse_request(request)
    path = Path(directory or os.getcwd()) / FILENAME
    tmp = path.with_name(f".{FILENAME}.{os.getpid()}")
    tmp.write_text(request.strip() + "\n")
    os.replace(tmp, path)
    return path
