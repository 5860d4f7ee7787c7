"""zlib: deflate for zlib, zipfile, gzip (and Tcl)."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="zlib",
    version="1.3.1",
    # Debian's orig drops contrib/ (+dfsg), so its hash is not upstream's: no upstream URL.
    source=debian_source(
        "zlib",
        "1.3.1",
        "zlib_1.3.dfsg+really1.3.1.orig.tar.gz",
        "60dd315c07f616887caa029408308a018ace66e3d142726a97db164b3b8f69fb",
        debian_version="1.3.dfsg+really1.3.1",
    ),
    license="Zlib",
    purpose="zlib, zipfile, gzip",
    configure_args=("--static",),
    autoconf_host=False,  # its own configure: the target comes from CC
)
