"""libmpdec: the decimal module. CPython before 3.13 builds its bundled copy instead."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="mpdecimal",
    version="4.0.1",
    source=debian_source(
        "mpdecimal",
        "4.0.1",
        "mpdecimal_4.0.1.orig.tar.gz",
        "96d33abb4bb0070c7be0fed4246cd38416188325f820468214471938545b1ac8",
    ),
    license="BSD-2-Clause",
    purpose="decimal",
    configure_args=("--disable-shared", "--enable-static", "--disable-cxx", "--disable-doc"),
    python=((3, 13), (4, 0)),
)
