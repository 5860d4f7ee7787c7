"""relocpy's caches by kind: how big each is, and removing what nothing uses.

Every kind can be made again (downloaded, unpacked or built); installed interpreters are not a
cache and are never touched here (their files are hard links, so dropping the store they came
from frees nothing until they are uninstalled).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from relocpy.core import home
from relocpy.core.errors import RelocpyError

KINDS = {
    "sources": "verified source tarballs",
    "libs": "third-party libraries built from source",
    "binaries": "the binary cache of finished builds (also a mirror)",
    "unpacked": "archives unpacked once, linked into installs",
    "archives": "interpreter archives downloaded from mirrors",
    "toolchains": "zig and the glibc sysroots",
    "logs": "build and crash logs",
    "roots": "debootstrapped Debian roots for verify --distro",
}
LOG_MAX_AGE = 30 * 24 * 3600


@dataclass(frozen=True)
class Usage:
    kind: str
    path: Path
    bytes: int
    entries: int

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "bytes": self.bytes,
            "entries": self.entries,
            "what": KINDS[self.kind],
        }


@dataclass(frozen=True)
class Freed:
    count: int
    bytes: int


def kind_dir(kind: str) -> Path:
    if kind not in KINDS:
        raise RelocpyError(f"unknown cache kind {kind!r}", hint="choose " + ", ".join(KINDS))
    if kind == "roots":
        from relocpy.verify.distro import roots_dir

        return roots_dir()
    return home.cache_dir() / kind


def _size(path: Path) -> int:
    """Bytes on disk under `path`, each inode once (hard links are shared)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            try:
                info = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
    return total


def usage() -> list[Usage]:
    """Size and number of top-level entries of every kind."""
    out = []
    for kind in KINDS:
        path = kind_dir(kind)
        entries = len(list(path.iterdir())) if path.is_dir() else 0
        out.append(Usage(kind, path, _size(path) if path.is_dir() else 0, entries))
    return out


def _remove(path: Path) -> int:
    size = _size(path) if path.is_dir() else path.lstat().st_size
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return size


def prune() -> Freed:
    """Remove unpacked stores no install uses, downloaded archives, temporary leftovers of
    killed runs, and logs older than 30 days."""
    from relocpy.install.trees import installed

    used = {i.sha256 for i in installed()}
    victims: list[Path] = []
    unpacked = kind_dir("unpacked")
    if unpacked.is_dir():
        for store in unpacked.iterdir():
            if store.name.startswith(".") or store.name not in used:
                victims.append(store)
    archives = kind_dir("archives")
    if archives.is_dir():
        victims += list(archives.iterdir())
    for kind in ("sources", "libs", "binaries"):
        path = kind_dir(kind)
        if path.is_dir():
            victims += [p for p in path.glob(".*") if ".tmp" in p.name]
    logs = kind_dir("logs")
    if logs.is_dir():
        cutoff = time.time() - LOG_MAX_AGE
        victims += [p for p in logs.iterdir() if p.lstat().st_mtime < cutoff]
    freed = sum(_remove(path) for path in victims)
    return Freed(len(victims), freed)


def clean(kind: str) -> Freed:
    """Remove one kind entirely."""
    path = kind_dir(kind)
    if not path.exists():
        return Freed(0, 0)
    return Freed(1, _remove(path))
