"""GNU dbm with its ndbm compatibility layer: dbm.gnu and dbm.ndbm (GPL-3.0)."""

from relocpy.recipes.library import LibraryRecipe, debian_source

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
)
