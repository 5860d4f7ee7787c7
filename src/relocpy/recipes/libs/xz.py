"""xz: liblzma for the lzma module."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="xz",
    version="5.8.1",
    source=debian_source(
        "xz-utils",
        "5.8.1",
        "xz-utils_5.8.1.orig.tar.xz",
        "0b54f79df85912504de0b14aec7971e3f964491af1812d83447005807513cd9e",
    ),
    license="0BSD",
    purpose="lzma",
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--disable-xz",
        "--disable-xzdec",
        "--disable-lzmadec",
        "--disable-lzmainfo",
        "--disable-lzma-links",
        "--disable-scripts",
        "--disable-doc",
        "--disable-nls",
    ),
)
