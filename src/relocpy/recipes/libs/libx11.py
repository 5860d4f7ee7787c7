"""libX11: Xlib for Tk. Locale and keysym data paths point at the host's /usr/share/X11."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="libx11",
    version="1.8.4",
    source=debian_source(
        "libx11",
        "1.8.4",
        "libx11_1.8.4.orig.tar.gz",
        "efd3a3a43c1f177edc2c205bedb0719b6648203595e54c0b83a32576aeaca7cd",
        debian_version="1.8.4",
    ),
    license="MIT",
    purpose="tkinter (X11 client)",
    depends=("xorgproto", "xtrans", "libxcb", "libxau"),
    tools=("pkg-config",),
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--disable-specs",
        "--without-xmlto",
        "--without-fop",
        "--disable-loadable-i18n",
        "--disable-loadable-xcursor",
        "--with-locale-lib-dir=/usr/lib/X11/locale",
        "--with-keysymdefdir={deps}/include/X11",
        "--datadir=/usr/share",
    ),
    env=(("LIBS", "-lxcb -lXau"),),
    # glibc's and musl's malloc(0) return a pointer, as configure finds out natively
    cross_configure_args=("--disable-malloc0returnsnull",),
)
