"""Tk 8.6 for tkinter, on a static Xlib (no Xft/XScreenSaver, so only libX11 is needed)."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="tk",
    version="8.6.18",
    source=debian_source(
        "tk8.6",
        "8.6.18",
        "tk8.6_8.6.18.orig.tar.gz",
        "95cd528a80f5e4bdb557af9b14a7197d6860793a3894e25e7c9fad2ed05d4c3c",
    ),
    license="TCL",
    purpose="tkinter",
    depends=("tcl", "libx11", "libxcb", "libxau", "xorgproto", "zlib"),
    subdir="unix",
    configure_args=(
        "--disable-shared",
        "--enable-threads",
        "--disable-rpath",
        "--with-tcl={deps}/lib",
        "--disable-xft",
        "--disable-xss",
        "--with-x",
        "--x-includes={deps}/include",
        "--x-libraries={deps}/lib",
    ),
    # libX11 first: GNU ld takes static archives in order, and wish links -lX11 after LIBS
    env=(("LIBS", "-lX11 -lxcb -lXau -lpthread -ldl"),),
    install_targets=("install-binaries", "install-libraries", "install-headers"),
)
