"""libXau: X authority files, needed by libxcb.

The one library taken prebuilt: this machine's archive has no libxau source package, so the
static library comes from Debian's libxau-dev (1.0.9; plain C89 calls, all present in glibc
2.17). With the upstream tarball reachable this recipe would be a normal autotools build.
"""

from relocpy.recipes.library import LibraryRecipe, debian_binary

RECIPE = LibraryRecipe(
    name="libxau",
    version="1.0.9",
    source=debian_binary(
        "libxau-dev",
        "1:1.0.9-1",
        "libxau-dev_1%3a1.0.9-1_amd64.deb",
        "d1a7f5d484e0879b3b2e8d512894744505e53d078712ce65903fef2ecfd824bb",
    ),
    arch_sources=(
        (
            "aarch64",
            debian_binary(
                "libxau-dev",
                "1:1.0.9-1",
                "libxau-dev_1%3a1.0.9-1_arm64.deb",
                "21db3761a8f388fc83707c00fac645d4332737a859dd727571e1e6ede003b048",
                pool="pool/main/libx/libxau",
            ),
        ),
    ),
    license="MIT",
    purpose="libxcb authentication",
    depends=("xorgproto",),
    copy_tree=(
        ("usr/include/X11/Xauth.h", "include/X11/Xauth.h"),
        ("usr/lib/{multiarch}/libXau.a", "lib/libXau.a"),
        ("usr/lib/{multiarch}/pkgconfig/xau.pc", "lib/pkgconfig/xau.pc"),
    ),
)
