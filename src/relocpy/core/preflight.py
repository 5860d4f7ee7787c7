"""Preflight: what a chosen piece of work needs from the host, checked before the work starts.

A requirement is data (a program, an aclocal macro or a header, and the Debian package that
provides it); `missing` looks each up on this machine, and `require` reports every gap at once
with the one `apt-get install` line that closes them all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from relocpy.core.errors import MissingToolError

# Debian 12 packages that provide each program a recipe or a stage runs.
PROGRAM_PACKAGES = {
    "aclocal": "automake",
    "apt-get": "apt",
    "ar": "binutils",
    "autoconf": "autoconf",
    "autoreconf": "autoconf",
    "automake": "automake",
    "c++": "g++",
    "cc": "gcc",
    "debootstrap": "debootstrap",
    "dpkg-deb": "dpkg",
    "gcc": "gcc",
    "libtoolize": "libtool",
    "m4": "m4",
    "make": "make",
    "openssl": "openssl",
    "perl": "perl",
    "pkg-config": "pkg-config",
    "python3": "python3",
    "strip": "binutils",
    "tclsh": "tcl",
    "tic": "ncurses-bin",
    "Xvfb": "xvfb",
}

# aclocal macros that `autoreconf` of a Debian `.orig` snapshot needs from the host, and the
# package whose /usr/share/aclocal file defines each. LT_SYS_SYMBOL_USCORE is in ltdl.m4, which
# libtool only recommends: an install without recommends lacks it (libffi then fails in autoconf).
MACRO_PACKAGES = {
    "AM_INIT_AUTOMAKE": "automake",
    "LT_INIT": "libtool",
    "LT_SYS_SYMBOL_USCORE": "libltdl-dev",
    "PKG_CHECK_MODULES": "pkg-config",
}

_DEFINES = re.compile(rb"(?:AC_DEFUN|AC_DEFUN_ONCE|AU_DEFUN|m4_define)\(\s*\[?([A-Za-z_]\w*)")
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Requirement:
    """One thing the host must have: `kind` is "program", "C compiler", "aclocal macro",
    "header" or "file" (an absolute path, e.g. a compiler's runtime library)."""

    kind: str
    name: str
    package: str
    needed_by: str

    def describe(self) -> str:
        return f"{self.kind} {self.name}, needed by {self.needed_by}: Debian package {self.package}"


def program(name: str, needed_by: str) -> Requirement:
    return Requirement("program", name, PROGRAM_PACKAGES.get(name, name), needed_by)


def macro(name: str, needed_by: str) -> Requirement:
    return Requirement("aclocal macro", name, MACRO_PACKAGES[name], needed_by)


def header(name: str, package: str, needed_by: str) -> Requirement:
    return Requirement("header", name, package, needed_by)


def aclocal_dirs() -> list[Path]:
    """Where aclocal looks for macros: automake's own `aclocal-X.Y` directory, the system
    directory (/usr/share/aclocal when automake is absent), its `dirlist`, and ACLOCAL_PATH."""
    dirs: list[Path] = []
    aclocal = shutil.which("aclocal")
    if aclocal:
        result = subprocess.run(
            [aclocal, "--print-ac-dir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            dirs.append(Path(result.stdout.strip()))
    if not dirs:
        dirs.append(Path("/usr/share/aclocal"))
    dirs += sorted(dirs[0].parent.glob("aclocal-*"))
    dirlist = dirs[0] / "dirlist"
    if dirlist.is_file():
        dirs += [Path(line.strip()) for line in dirlist.read_text().splitlines() if line.strip()]
    dirs += [Path(p) for p in os.environ.get("ACLOCAL_PATH", "").split(":") if p]
    return dirs


def defined_macros(dirs: Iterable[Path]) -> set[str]:
    """Names of the macros the `.m4` files in `dirs` define."""
    found: set[str] = set()
    for directory in dirs:
        for m4 in sorted(directory.glob("*.m4")) if directory.is_dir() else ():
            try:
                found.update(m.decode() for m in _DEFINES.findall(m4.read_bytes()))
            except OSError:
                continue
    return found


@cache
def _host_macros() -> frozenset[str]:
    return frozenset(defined_macros(aclocal_dirs()))


def _default_which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=_SYSTEM_PATH)


def compiler_include_dirs(cc: str) -> tuple[str, ...]:
    """The compiler's own header search list (`cc -E -v`)."""
    result = subprocess.run(
        [*cc.split(), "-xc", "-E", "-v", "/dev/null"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirs, inside = [], False
    for line in result.stderr.splitlines():
        if line.startswith("#include <...> search starts here"):
            inside = True
        elif line.startswith("End of search list"):
            break
        elif inside:
            dirs.append(line.strip())
    return tuple(dirs)


def _default_include_dirs() -> list[str]:
    """The host compiler's header search list, plus where Debian keeps Tcl's headers."""
    found = list(compiler_include_dirs("cc")) if shutil.which("cc") else []
    return [*found, "/usr/include", "/usr/include/tcl8.6", "/usr/include/tcl"]


def missing(
    requirements: Iterable[Requirement],
    *,
    which: Callable[[str], str | None] = _default_which,
    macros: Iterable[str] | None = None,
    include_dirs: Iterable[str] | None = None,
) -> list[Requirement]:
    """The requirements this machine does not meet, in the given order: one per program, macro
    or header, its `needed_by` naming everything that needs it.

    `which`, `macros` and `include_dirs` default to this machine's PATH, aclocal directories
    and compiler header search list."""
    requirements = list(requirements)
    known_macros: set[str] = set()
    if any(r.kind == "aclocal macro" for r in requirements):
        known_macros = set(_host_macros() if macros is None else macros)
    includes: list[Path] = []
    if any(r.kind == "header" for r in requirements):
        dirs = _default_include_dirs() if include_dirs is None else include_dirs
        includes = [Path(d) for d in dirs]
    who: dict[tuple[str, str], list[str]] = {}
    first: dict[tuple[str, str], Requirement] = {}
    for req in requirements:
        key = (req.kind, req.name)
        first.setdefault(key, req)
        if req.needed_by not in who.setdefault(key, []):
            who[key].append(req.needed_by)
    absent = []
    for key, req in first.items():
        if req.kind in ("program", "C compiler"):
            ok = which(req.name) is not None
        elif req.kind == "aclocal macro":
            ok = req.name in known_macros
        elif req.kind == "header":
            ok = any((d / req.name).is_file() for d in includes)
        elif req.kind == "file":
            ok = Path(req.name).is_file()
        else:
            raise ValueError(f"unknown requirement kind {req.kind!r}")
        if not ok:
            absent.append(replace(req, needed_by=", ".join(who[key])))
    return absent


def install_command(absent: Iterable[Requirement]) -> str:
    """The one command that installs every package `absent` names."""
    packages = sorted({req.package for req in absent})
    return "apt-get install -y " + " ".join(packages)


def require(
    requirements: Iterable[Requirement],
    work: str,
    which: Callable[[str], str | None] = _default_which,
    macros: Iterable[str] | None = None,
) -> None:
    """Raise MissingToolError listing every unmet requirement of `work` (one line each), with
    the apt-get line that fixes them all; return quietly when nothing is missing."""
    absent = missing(requirements, which=which, macros=macros)
    if not absent:
        return
    lines = "\n".join(f"  - {req.describe()}" for req in absent)
    noun = "thing" if len(absent) == 1 else "things"
    raise MissingToolError(
        f"cannot start {work}: this machine lacks {len(absent)} {noun} it needs:\n{lines}",
        hint=f"install them with: {install_command(absent)}",
    )
