"""zstd: compression.zstd (_zstd) from CPython 3.14 on. A plain Makefile, hence a hook.

Debian's orig is the upstream release less its bundled test data (`+dfsg`), so its hash is not
upstream's, and no upstream URL is pinned.
"""

from __future__ import annotations

from relocpy.recipes.library import LIBRARY_PREFIX, LibraryBuild, LibraryRecipe, debian_source


def build_libzstd(build: LibraryBuild) -> None:
    env = build.env
    common = [
        f"CC={env['CC']}",
        f"AR={env['AR']}",
        f"RANLIB={env['RANLIB']}",
        f"CFLAGS={env['CFLAGS']}",
        f"PREFIX={LIBRARY_PREFIX}",
        f"LIBDIR={LIBRARY_PREFIX}/lib",
        f"DESTDIR={build.stage}",
    ]
    lib = build.source / "lib"
    build.run(["make", f"-j{build.jobs}", "-C", str(lib), "libzstd.a", *common])
    build.run(["make", "-C", str(lib), "install-static", "install-includes", "install-pc", *common])


RECIPE = LibraryRecipe(
    name="zstd",
    version="1.5.7",
    source=debian_source(
        "libzstd",
        "1.5.7",
        "libzstd_1.5.7+dfsg.orig.tar.xz",
        "0c092ef267edce57ba7f3f2645c861f72eaf5e76273c6c3632869423464b90a5",
        debian_version="1.5.7+dfsg",
    ),
    license="BSD-3-Clause",
    purpose="compression.zstd",
    python=((3, 14), (4, 0)),
    build=build_libzstd,
)
