"""Every third-party library recipe, in dependency order (a library follows what it needs)."""

from __future__ import annotations

from relocpy.recipes.library import LibraryRecipe
from relocpy.recipes.libs import (
    bzip2,
    expat,
    gdbm,
    libedit,
    libffi,
    libuuid,
    libx11,
    libxau,
    libxcb,
    libxcrypt,
    mpdecimal,
    ncurses,
    openssl,
    pthread_stubs,
    readline,
    sqlite,
    tcl,
    tk,
    xcb_proto,
    xorgproto,
    xtrans,
    xz,
    zlib,
    zstd,
)

ALL_RECIPES: tuple[LibraryRecipe, ...] = (
    zlib.RECIPE,
    bzip2.RECIPE,
    xz.RECIPE,
    libffi.RECIPE,
    openssl.RECIPE,
    sqlite.RECIPE,
    ncurses.RECIPE,
    readline.RECIPE,
    libedit.RECIPE,
    libuuid.RECIPE,
    gdbm.RECIPE,
    mpdecimal.RECIPE,
    expat.RECIPE,
    libxcrypt.RECIPE,
    xorgproto.RECIPE,
    xtrans.RECIPE,
    xcb_proto.RECIPE,
    pthread_stubs.RECIPE,
    libxau.RECIPE,
    libxcb.RECIPE,
    libx11.RECIPE,
    tcl.RECIPE,
    tk.RECIPE,
    zstd.RECIPE,
)

RECIPES = {recipe.name: recipe for recipe in ALL_RECIPES}
