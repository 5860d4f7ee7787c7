"""libxcrypt: crypt(3) for the _crypt module, which CPython 3.13 removed."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="libxcrypt",
    version="4.4.33",
    source=debian_source(
        "libxcrypt",
        "4.4.33",
        "libxcrypt_4.4.33.orig.tar.xz",
        "5e2da5cb5f263e9ac4c4b3f49c75e3b8523889210f45c60bb7e97b229c75a10b",
    ),
    license="LGPL-2.1-or-later",
    purpose="crypt",
    autoreconf=True,
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--disable-werror",
        "--disable-failure-tokens",
        "--enable-hashes=strong,glibc",
        "--enable-obsolete-api=no",
        "--disable-xcrypt-compat-files",
    ),
    python=((3, 0), (3, 13)),
)
