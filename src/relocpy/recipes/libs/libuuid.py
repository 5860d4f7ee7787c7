"""libuuid from util-linux: the _uuid module (only the library is built)."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="libuuid",
    version="2.41.5",
    source=debian_source(
        "util-linux",
        "2.41.5",
        "util-linux_2.41.5.orig.tar.xz",
        "f586e35d320ff537aab3ffeca37e9ecd482ccbe013590db4429a414d8aa6a728",
    ),
    license="BSD-3-Clause (libuuid)",
    purpose="uuid",
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--disable-all-programs",
        "--enable-libuuid",
        "--disable-nls",
        "--disable-bash-completion",
        "--without-python",
        "--without-systemd",
        "--without-udev",
        "--without-tinfo",
        "--without-ncursesw",
        "--without-ncurses",
        "--disable-asciidoc",
        "--disable-poman",
    ),
)
