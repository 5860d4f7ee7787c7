"""pthread-stubs: an empty pkg-config module libxcb requires (Debian's libpthread-stubs0-dev)."""

from relocpy.recipes.library import LibraryRecipe, debian_binary

RECIPE = LibraryRecipe(
    name="pthread-stubs",
    version="0.4",
    source=debian_binary(
        "libpthread-stubs0-dev",
        "0.4-1",
        "libpthread-stubs0-dev_0.4-1_amd64.deb",
        "54632f160e1e8a43656a87195a547391038c4ca0f53291b849cd4457ba5dfde9",
    ),
    license="MIT",
    purpose="libxcb build requirement",
    copy_tree=(("usr/lib/x86_64-linux-gnu/pkgconfig", "lib/pkgconfig"),),
)
