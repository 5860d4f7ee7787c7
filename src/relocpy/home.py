"""Where relocpy keeps its state: caches, downloads and logs.

`RELOCPY_HOME` overrides everything; otherwise the XDG base directories are used.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path | None:
    value = os.environ.get("RELOCPY_HOME")
    return Path(value).expanduser() if value else None


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
