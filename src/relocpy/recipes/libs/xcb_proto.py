"""xcb-proto: the XML protocol descriptions and the xcbgen generator libxcb is built with.

Both are data/Python (Debian's arch-independent xcb-proto and python3-xcbgen packages).
"""

from __future__ import annotations

from relocpy.recipes.library import LibraryBuild, LibraryRecipe, debian_binary


def point_pc_at_prefix(build: LibraryBuild) -> None:
    pc = build.prefix / "lib" / "pkgconfig" / "xcb-proto.pc"
    lines = []
    for line in pc.read_text().splitlines():
        if line.startswith("pythondir="):
            line = "pythondir=${prefix}/lib/python3/dist-packages"
        lines.append(line)
    pc.write_text("\n".join(lines) + "\n")


RECIPE = LibraryRecipe(
    name="xcb-proto",
    version="1.15.2",
    source=debian_binary(
        "xcb-proto",
        "1.15.2-1",
        "xcb-proto_1.15.2-1_all.deb",
        "cb6c18fb8ce684d8219ee2e0ff52ff32802b3d9c8f5e64a9054d5ceab9866dcc",
    ),
    extra_sources=(
        debian_binary(
            "python3-xcbgen",
            "1.15.2-1",
            "python3-xcbgen_1.15.2-1_all.deb",
            "f5b504e8276612e6d8f22e5d5b9a75eae324e060bee6ab0571be9ab29bf3e00b",
        ),
    ),
    license="MIT",
    purpose="libxcb's code generator input",
    copy_tree=(
        ("usr/share/xcb", "share/xcb"),
        ("usr/share/pkgconfig", "lib/pkgconfig"),
        ("usr/lib/python3/dist-packages/xcbgen", "lib/python3/dist-packages/xcbgen"),
    ),
    build=point_pc_at_prefix,
)
