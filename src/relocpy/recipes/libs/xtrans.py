"""xtrans: X transport code, shipped as headers and .c includes (from Debian's xtrans-dev)."""

from relocpy.recipes.library import LibraryRecipe, debian_binary

RECIPE = LibraryRecipe(
    name="xtrans",
    version="1.4.0",
    source=debian_binary(
        "xtrans-dev",
        "1.4.0-1",
        "xtrans-dev_1.4.0-1_all.deb",
        "9ce1af9464faee0c679348dd11cdf63934c12e734a64e0903692b0cb5af38e06",
    ),
    license="MIT",
    purpose="libX11 transport layer",
    copy_tree=(
        ("usr/include/X11/Xtrans", "include/X11/Xtrans"),
        ("usr/share/pkgconfig", "lib/pkgconfig"),
        ("usr/share/aclocal", "share/aclocal"),
    ),
)
