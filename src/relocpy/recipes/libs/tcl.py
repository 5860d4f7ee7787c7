"""Tcl 8.6 for tkinter. Its script library goes into the tree's lib/tcl8.6, where Tcl looks
relative to the executable when the compiled-in path does not exist.
"""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="tcl",
    version="8.6.18",
    source=debian_source(
        "tcl8.6",
        "8.6.18",
        "tcl8.6_8.6.18+dfsg.orig.tar.gz",
        "615a2c2e06d2931b4ff2b035d40d6fc51ba5b81f41ff15943c67d98e01edb201",
        debian_version="8.6.18+dfsg",
    ),
    license="TCL",
    purpose="tkinter",
    depends=("zlib",),
    subdir="unix",
    configure_args=("--disable-shared", "--enable-threads", "--disable-rpath"),
    install_targets=(
        "install-binaries",
        "install-libraries",
        "install-headers",
        "install-private-headers",
    ),
)
