"""The host toolchain: compiler, make and the headers a CPython build needs.

Checks run before any work starts and name the missing piece and the apt command that adds it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from relocpy.core.errors import MissingToolError
from relocpy.core.preflight import compiler_include_dirs
from relocpy.core.targets import Target, host_target, is_cross


@dataclass(frozen=True)
class HeaderRequirement:
    header: str  # as included: "openssl/ssl.h"
    apt_package: str
    purpose: str


# Libraries taken from the host's -dev packages (grafted into the tree by repair).
HOST_LIBRARY_HEADERS = (
    HeaderRequirement("stdio.h", "libc6-dev", "the C library"),
    HeaderRequirement("openssl/ssl.h", "libssl-dev", "ssl, hashlib"),
    HeaderRequirement("ffi.h", "libffi-dev", "ctypes"),
    HeaderRequirement("sqlite3.h", "libsqlite3-dev", "sqlite3"),
    HeaderRequirement("zlib.h", "zlib1g-dev", "zlib"),
    HeaderRequirement("bzlib.h", "libbz2-dev", "bz2"),
    HeaderRequirement("lzma.h", "liblzma-dev", "lzma"),
    HeaderRequirement("ncursesw/curses.h", "libncurses-dev", "curses"),
    HeaderRequirement("readline/readline.h", "libreadline-dev", "readline"),
    HeaderRequirement("gdbm.h", "libgdbm-dev", "dbm.gnu"),
    HeaderRequirement("gdbm-ndbm.h", "libgdbm-compat-dev", "dbm.ndbm"),
    HeaderRequirement("uuid/uuid.h", "uuid-dev", "uuid"),
    HeaderRequirement("tk.h", "tk-dev", "tkinter"),
)

APT_BUILD_TOOLS = {"cc": "gcc", "make": "make", "pkg-config": "pkg-config"}


@dataclass(frozen=True)
class Toolchain:
    """A C compiler and its helpers; `identity` names it exactly (it enters build hashes)."""

    name: str
    cc: str
    make: str
    include_dirs: tuple[str, ...]
    ar: str = "ar"
    ranlib: str = "ranlib"
    identity: str = ""
    glibc: str | None = None  # the glibc version it targets; None: the host's
    extra_env: tuple[tuple[str, str], ...] = ()
    target: Target | None = None  # the machine its programs run on; None: this one

    @property
    def machine(self) -> Target:
        return self.target or host_target()

    @property
    def cross(self) -> bool:
        """Whether its programs run on another machine (configure's --host differs)."""
        return is_cross(self.machine)

    def env(self) -> dict[str, str]:
        """Variables a configure script needs to use this toolchain."""
        return {"CC": self.cc, "AR": self.ar, "RANLIB": self.ranlib, **dict(self.extra_env)}


def find_header(header: str, include_dirs: tuple[str, ...]) -> Path | None:
    extra = ("/usr/include/tcl8.6", "/usr/include/tcl")
    for directory in (*include_dirs, *extra):
        candidate = Path(directory) / header
        if candidate.is_file():
            return candidate
    return None


def host_toolchain(
    cc: str | None = None, headers: tuple[HeaderRequirement, ...] = HOST_LIBRARY_HEADERS
) -> Toolchain:
    """The host gcc toolchain, after checking that a CPython build can succeed with it."""
    cc = cc or os.environ.get("CC") or "cc"
    missing_tools = []
    cc_program = cc.split()[0]
    if shutil.which(cc_program) is None:
        missing_tools.append(("C compiler " + cc_program, "gcc"))
    if shutil.which("make") is None:
        missing_tools.append(("make", "make"))
    if missing_tools:
        names = ", ".join(name for name, _ in missing_tools)
        packages = " ".join(sorted({pkg for _, pkg in missing_tools}))
        raise MissingToolError(
            f"cannot build: {names} not found on PATH",
            hint=f"install it with: apt-get install -y {packages}",
        )
    include_dirs = compiler_include_dirs(cc)
    absent = [req for req in headers if find_header(req.header, include_dirs) is None]
    if absent:
        listing = ", ".join(f"{req.header} ({req.purpose})" for req in absent)
        packages = " ".join(sorted({req.apt_package for req in absent}))
        raise MissingToolError(
            f"cannot build: headers missing: {listing}",
            hint=f"install them with: apt-get install -y {packages}",
        )
    return Toolchain("gcc", cc, "make", include_dirs, identity=compiler_identity(cc))


def compiler_identity(cc: str) -> str:
    """The first line of `cc --version` (e.g. `gcc (Debian 12.2.0-14) 12.2.0`)."""
    try:
        result = subprocess.run(
            [*cc.split(), "--version"], capture_output=True, text=True, check=False
        )
    except OSError:  # not installed: the preflight says so
        return cc
    lines = result.stdout.splitlines()
    return lines[0].strip() if lines else cc


def check_build_tools(tools: dict[str, str]) -> None:
    """Raise MissingToolError naming every program in `tools` (program -> apt package) absent."""
    absent = {name: pkg for name, pkg in tools.items() if shutil.which(name) is None}
    if absent:
        raise MissingToolError(
            f"cannot build: {', '.join(sorted(absent))} not found on PATH",
            hint=f"install them with: apt-get install -y {' '.join(sorted(set(absent.values())))}",
        )
