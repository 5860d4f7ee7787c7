"""Where relocpy keeps its state: caches, downloads and logs.

`RELOCPY_HOME` overrides everything; otherwise the XDG base directories are used.
"""

from __future__ import annotations

import os
from pathlib import Path

from relocpy.core.errors import RelocpyError


def home() -> Path | None:
    """`RELOCPY_HOME`, which must be a directory (or not exist yet), or None when unset."""
    value = os.environ.get("RELOCPY_HOME")
    if not value:
        return None
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise RelocpyError(
            f"RELOCPY_HOME={value} is not a directory",
            hint="point RELOCPY_HOME at a directory (it is created if missing), or unset it",
        )
    return path


def cache_dir() -> Path:
    """Root of re-creatable state (downloads, apt state, build caches)."""
    base = home()
    if base is not None:
        return base / "cache"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "relocpy"


def downloads_dir() -> Path:
    """Content-addressed store of verified source files: `sha256/<hex>/<filename>`."""
    return cache_dir() / "sources"


def binaries_dir() -> Path:
    """The local binary cache: a mirror directory of built archives (`matrix build`, and
    `install` on a miss)."""
    return cache_dir() / "binaries"


def data_dir() -> Path:
    """Root of installed interpreters and their records."""
    base = home()
    if base is not None:
        return base / "data"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "relocpy"


def pythons_dir() -> Path:
    return data_dir() / "pythons"


def bin_dir() -> Path:
    """Where `python3.X` links go: RELOCPY_BIN_DIR, else RELOCPY_HOME/bin, else ~/.local/bin."""
    explicit = os.environ.get("RELOCPY_BIN_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = home()
    return base / "bin" if base is not None else Path.home() / ".local" / "bin"
