"""libffi: foreign calls for ctypes. Debian's orig is a git snapshot: autoreconf first."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="libffi",
    version="3.4.8",
    source=debian_source(
        "libffi",
        "3.4.8",
        "libffi_3.4.8.orig.tar.gz",
        "cbb7f0b3b095dc506387ec1e35b891bfb4891d05b90a495bc69a10f2293f80ff",
    ),
    license="MIT",
    purpose="ctypes",
    autoreconf=True,
    aclocal_macros=("LT_SYS_SYMBOL_USCORE",),
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--disable-docs",
        "--disable-multi-os-directory",  # lib/, not lib64/
    ),
)
