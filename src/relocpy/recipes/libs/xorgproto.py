"""X11 protocol headers (header-only). The archive here lacks xorgproto's source package, so the
recipe takes the headers and .pc files from Debian's arch-independent x11proto-dev package.
"""

from relocpy.recipes.library import LibraryRecipe, debian_binary

RECIPE = LibraryRecipe(
    name="xorgproto",
    version="2022.1",
    source=debian_binary(
        "x11proto-dev",
        "2022.1-1",
        "x11proto-dev_2022.1-1_all.deb",
        "3cab66a6591774188a568f9b54c4e7956f18da76e0e0fc4a779db5f6bcc3f148",
    ),
    license="MIT",
    purpose="headers for libX11 and Tk",
    copy_tree=(("usr/include/X11", "include/X11"), ("usr/share/pkgconfig", "lib/pkgconfig")),
)
