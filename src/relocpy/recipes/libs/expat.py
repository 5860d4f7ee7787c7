"""Expat: pyexpat and xml.etree. Debian's orig is a git snapshot (expat/ inside): autoreconf."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="expat",
    version="2.8.3",
    source=debian_source(
        "expat",
        "2.8.3",
        "expat_2.8.3.orig.tar.gz",
        "533659a16e0184035a99fd8e783f1ad61a887a7bf8586a8681740b9d7ed42389",
    ),
    license="MIT",
    purpose="pyexpat, xml.etree",
    subdir="expat",
    autoreconf=True,
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--without-docbook",
        "--without-examples",
        "--without-tests",
        "--without-xmlwf",
    ),
)
