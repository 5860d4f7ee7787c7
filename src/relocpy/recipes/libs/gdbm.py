"""GNU dbm with its ndbm compatibility layer: dbm.gnu and dbm.ndbm (GPL-3.0)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from relocpy.recipes.library import LibraryBuild, LibraryRecipe, debian_source


def self_sufficient_compat(build: LibraryBuild) -> None:
    """Add libgdbm's objects to libgdbm_compat.a. A static archive cannot name what it needs,
    and CPython 3.9-3.11's setup.py links _dbm with -lgdbm_compat alone."""
    lib = build.prefix / "lib"
    with tempfile.TemporaryDirectory(dir=build.stage) as tmp:
        build.run([build.env["AR"], "x", str(lib / "libgdbm.a")], cwd=Path(tmp))
        objects = sorted(str(p) for p in Path(tmp).glob("*.o"))
        build.run([build.env["AR"], "q", str(lib / "libgdbm_compat.a"), *objects], cwd=Path(tmp))
    build.run([build.env["RANLIB"], str(lib / "libgdbm_compat.a")])


RECIPE = LibraryRecipe(
    name="gdbm",
    version="1.24",
    source=debian_source(
        "gdbm",
        "1.24",
        "gdbm_1.24.orig.tar.gz",
        "695e9827fdf763513f133910bc7e6cfdb9187943a4fec943e57449723d2b8dbf",
        urls=("https://ftp.gnu.org/gnu/gdbm/gdbm-1.24.tar.gz",),
    ),
    license="GPL-3.0-or-later",
    purpose="dbm.gnu, dbm.ndbm",
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--enable-libgdbm-compat",
        "--without-readline",
        "--disable-nls",
    ),
    cflags=("-Wno-error=date-time",),  # version.c stamps __DATE__; zig makes that an error
    after_install=self_sufficient_compat,
)
