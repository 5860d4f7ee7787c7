"""libxcb: the X protocol library under libX11 (core protocol only; extensions disabled)."""

from relocpy.recipes.library import LibraryRecipe, debian_source

_EXTENSIONS = [
    "composite",
    "damage",
    "dbe",
    "dpms",
    "dri2",
    "dri3",
    "ge",
    "glx",
    "present",
    "randr",
    "record",
    "render",
    "resource",
    "screensaver",
    "shape",
    "shm",
    "sync",
    "xevie",
    "xfixes",
    "xfree86-dri",
    "xinerama",
    "xinput",
    "xkb",
    "xprint",
    "selinux",
    "xtest",
    "xv",
    "xvmc",
]

RECIPE = LibraryRecipe(
    name="libxcb",
    version="1.15",
    source=debian_source(
        "libxcb",
        "1.15",
        "libxcb_1.15.orig.tar.gz",
        "1cb65df8543a69ec0555ac696123ee386321dfac1964a3da39976c9a05ad724d",
    ),
    license="MIT",
    purpose="tkinter (X11 client)",
    depends=("xorgproto", "xcb-proto", "pthread-stubs", "libxau"),
    tools=("pkg-config", "python3"),  # python3 runs xcbgen, the C code generator
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--disable-devel-docs",
        "--without-doxygen",
        *(f"--disable-{name}" for name in _EXTENSIONS),
    ),
)
