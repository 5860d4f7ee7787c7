"""bzip2: libbz2 for the bz2 module (a plain Makefile, hence a hook)."""

from __future__ import annotations

import shutil

from relocpy.recipes.library import LibraryBuild, LibraryRecipe, debian_source


def build_libbz2(build: LibraryBuild) -> None:
    env = build.env
    build.run(
        [
            "make",
            f"-j{build.jobs}",
            "libbz2.a",
            f"CC={env['CC']}",
            f"AR={env['AR']}",
            f"RANLIB={env['RANLIB']}",
            f"CFLAGS={env['CFLAGS']} -D_FILE_OFFSET_BITS=64",
        ]
    )
    (build.prefix / "include").mkdir(parents=True)
    (build.prefix / "lib").mkdir(parents=True)
    shutil.copy2(build.source / "bzlib.h", build.prefix / "include")
    shutil.copy2(build.source / "libbz2.a", build.prefix / "lib")


RECIPE = LibraryRecipe(
    name="bzip2",
    version="1.0.8",
    source=debian_source(
        "bzip2",
        "1.0.8",
        "bzip2_1.0.8.orig.tar.gz",
        "ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269",
        urls=("https://sourceware.org/pub/bzip2/bzip2-1.0.8.tar.gz",),
    ),
    license="bzip2-1.0.6",
    purpose="bz2",
    build=build_libbz2,
)
