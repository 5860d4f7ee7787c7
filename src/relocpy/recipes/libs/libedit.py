"""libedit (BSD licence): line editing for the readline module, the default."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="libedit",
    version="20221030-3.1",
    source=debian_source(
        "libedit",
        "20221030-3.1",
        "libedit_3.1-20221030.orig.tar.gz",
        "f0925a5adf4b1bf116ee19766b7daa766917aec198747943b1c4edf67a4be2bb",
        debian_version="3.1-20221030",
        urls=("https://thrysoee.dk/editline/libedit-20221030-3.1.tar.gz",),
    ),
    license="BSD-3-Clause",
    purpose="readline (default: its licence allows redistribution without GPL terms)",
    depends=("ncurses",),
    configure_args=("--disable-shared", "--enable-static", "--disable-examples"),
    cflags=("-I{deps}/include/ncursesw",),
    # its chartype.h insists on __STDC_ISO_10646__, which glibc predefines; musl's wchar_t is
    # UCS-4 as well, and says nothing
    musl_cflags=("-D__STDC_ISO_10646__=201706L",),
    env=(("LIBS", "-lncursesw"),),
)
