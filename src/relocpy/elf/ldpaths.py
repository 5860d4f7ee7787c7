"""Resolving DT_NEEDED entries the way glibc's dynamic loader does.

Order: DT_RPATH of the object and its loaders (only when it has no DT_RUNPATH), DT_RUNPATH,
the ld.so.conf directories, then the default directories. LD_LIBRARY_PATH is deliberately ignored:
a tree must not depend on the environment of the machine that repaired it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from relocpy.elf.read import ElfInfo, read_elf

DEFAULT_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


def parse_ld_so_conf(
    path: Path, root: Path = Path("/"), _seen: set[Path] | None = None
) -> list[str]:
    """Directories listed in an ld.so.conf, following `include` globs (relative to `root`)."""
    seen = _seen if _seen is not None else set()
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    dirs: list[str] = []
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            pattern = line.split(None, 1)[1]
            if not pattern.startswith("/"):
                pattern = str(path.parent / pattern)
            for match in sorted(glob.glob(str(root) + pattern if str(root) != "/" else pattern)):
                dirs += parse_ld_so_conf(Path(match), root, seen)
        else:
            dirs.append(line)
    return dirs


@cache
def system_search_dirs() -> tuple[str, ...]:
    return tuple(parse_ld_so_conf(Path("/etc/ld.so.conf"))) + DEFAULT_DIRS


def expand_origin(entry: str, origin: Path) -> str:
    """Substitute $ORIGIN / ${ORIGIN} (and $LIB, $PLATFORM as on x86_64 Debian)."""
    for token in ("${ORIGIN}", "$ORIGIN"):
        entry = entry.replace(token, str(origin))
    for token in ("${LIB}", "$LIB"):
        entry = entry.replace(token, "lib/x86_64-linux-gnu")
    for token in ("${PLATFORM}", "$PLATFORM"):
        entry = entry.replace(token, "x86_64")
    return entry


def _compatible(candidate: Path, requester: ElfInfo) -> ElfInfo | None:
    info = read_elf(candidate.resolve()) if candidate.exists() else None
    if info and info.machine == requester.machine and info.elf_class == requester.elf_class:
        return info
    return None


@dataclass
class Resolution:
    """Where each NEEDED of one file resolved to (None: not found)."""

    requester: ElfInfo
    libraries: dict[str, Path | None] = field(default_factory=dict)


def search_path(requester: ElfInfo, inherited_rpath: tuple[str, ...] = ()) -> list[str]:
    """The directories the loader tries for `requester`'s direct dependencies, in order."""
    origin = requester.path.resolve().parent
    dirs: list[str] = []
    if not requester.runpath:
        dirs += [expand_origin(e, origin) for e in requester.rpath]
        dirs += list(inherited_rpath)
    dirs += [expand_origin(e, origin) for e in requester.runpath]
    dirs += list(system_search_dirs())
    return dirs


def resolve_needed(
    requester: ElfInfo, inherited_rpath: tuple[str, ...] = (), extra_dirs: tuple[str, ...] = ()
) -> Resolution:
    """Resolve the direct NEEDED entries of `requester`."""
    resolution = Resolution(requester)
    dirs = list(extra_dirs) + search_path(requester, inherited_rpath)
    for soname in requester.needed:
        found: Path | None = None
        if "/" in soname:
            found = Path(soname) if Path(soname).exists() else None
        else:
            for directory in dirs:
                candidate = Path(directory) / soname
                if _compatible(candidate, requester):
                    found = candidate
                    break
        resolution.libraries[soname] = found
    return resolution


def resolve_closure(
    root: ElfInfo,
    extra_dirs: tuple[str, ...] = (),
    descend: Callable[[str], bool] = lambda soname: True,
) -> dict[str, Path | None]:
    """Every library `root` loads, transitively: soname -> resolved path (None if missing).

    Dependencies of a library for which `descend(soname)` is false are not followed (a library
    taken from the host brings its own dependencies there).
    """
    closure: dict[str, Path | None] = {}
    origin = root.path.resolve().parent
    inherited = tuple(expand_origin(e, origin) for e in root.rpath) if not root.runpath else ()
    queue: list[tuple[ElfInfo, tuple[str, ...]]] = [(root, inherited)]
    while queue:
        info, rpaths = queue.pop()
        for soname, path in resolve_needed(info, rpaths, extra_dirs).libraries.items():
            if soname in closure:
                continue
            closure[soname] = path
            if path is None or not descend(soname):
                continue
            child = read_elf(path.resolve())
            if child is None:
                continue
            child_origin = path.resolve().parent
            child_rpath = (
                () if child.runpath else tuple(expand_origin(e, child_origin) for e in child.rpath)
            )
            queue.append((child, rpaths + child_rpath))
    return closure


def realpath(path: Path) -> Path:
    return Path(os.path.realpath(path))
