"""Toolchains whose output does not depend on RELOCPY_HOME: the same program, compiled with
debug info in two homes of different path lengths, is the same bytes and names neither home.

zig records its library directory in everything it compiles, its own start files included;
the gcc sysroot's headers and start files live in the home too. A build in CI and a rebuild on
a user's machine only match if none of that reaches the output."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relocpy.build.sysroot import gcc_glibc_toolchain
from relocpy.build.toolchain import Toolchain
from relocpy.build.zig import ensure_zig, zig_root, zig_toolchain

pytestmark = pytest.mark.real  # zig builds its glibc start files in a second home

# 128-bit division is a compiler-rt routine with zig (libgcc's with gcc), as in _decimal
LIBRARY = """#include <stddef.h>
#include <stdio.h>
#include <string.h>
static size_t twice(const char *s) {
  volatile unsigned __int128 n = strlen(s), d = 1;
  return (size_t)(2 * n / d);
}
int shout(const char *s) { return printf("%s %zu\\n", s, twice(s)); }
"""
PROGRAM = """int shout(const char *);
int main(void) { return shout("hi") > 0 ? 0 : 1; }
"""


@pytest.fixture(scope="module")
def second_home(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Another RELOCPY_HOME, with a longer path and spaces in it, holding a hard-linked copy of
    the session's zig (so nothing is downloaded twice) and nothing else: wrappers, zig's cache
    of start files and the sysroot are made again there."""
    os.environ["RELOCPY_HOME"] = str(session_home)
    zig = ensure_zig()
    home = tmp_path_factory.mktemp("another relocpy home, longer")
    copy = home / zig_root().relative_to(session_home) / "ziglang"
    copy.parent.mkdir(parents=True)
    shutil.copytree(zig.parent, copy, copy_function=os.link, symlinks=True)
    yield home
    os.environ["RELOCPY_HOME"] = str(session_home)


def _build(home: Path, make: Callable[[], Toolchain], work: Path) -> dict[str, bytes]:
    """libshout.so and main (with debug info, -O2, LTO where the compiler does it) built with
    the toolchain of `home` in `work`, whose path is mapped as a build directory would be."""
    os.environ["RELOCPY_HOME"] = str(home)
    toolchain = make()
    work.mkdir(parents=True)
    (work / "shout.c").write_text(LIBRARY)
    (work / "main.c").write_text(PROGRAM)
    flags = [toolchain.cc, "-g", "-O2", f"-ffile-prefix-map={work}=/build"]
    if toolchain.name == "gcc":
        flags.append("-flto")
    run = dict(cwd=work, check=True, capture_output=True)
    subprocess.run([*flags, "-fPIC", "-shared", "shout.c", "-o", "libshout.so"], **run)
    subprocess.run([*flags, "main.c", "-o", "main", "-L.", "-lshout"], **run)
    out = subprocess.run(["./main"], cwd=work, capture_output=True, text=True,
                         env={"LD_LIBRARY_PATH": str(work)})  # fmt: skip
    assert out.stdout == "hi 4\n", out
    return {name: (work / name).read_bytes() for name in ("libshout.so", "main")}


@pytest.mark.parametrize(
    "make",
    [lambda: zig_toolchain("2.17"), lambda: gcc_glibc_toolchain("2.17")],
    ids=["zig", "gcc-sysroot"],
)
def test_two_homes_build_the_same_bytes(
    make: Callable[[], Toolchain], session_home: Path, second_home: Path, tmp_path: Path
) -> None:
    first = _build(session_home, make, tmp_path / "a")
    second = _build(second_home, make, tmp_path / "bb")
    for name, data in first.items():
        for home in (session_home, second_home):
            assert str(home).encode() not in data and str(home).encode() not in second[name]
        assert data == second[name], f"{name} differs between RELOCPY_HOMEs"
