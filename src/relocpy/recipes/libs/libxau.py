"""libXau: X authority files, needed by libxcb.

The one library taken prebuilt: this machine's archive has no libxau source package, so the
static library comes from Debian's libxau-dev (1.0.9; plain C89 calls, all present in glibc
2.17). With the upstream tarball reachable this recipe would be a normal autotools build.

Debian compiled it against glibc with _FORTIFY_SOURCE and large-file stat: its objects call
`__snprintf_chk` and `__xstat`, which only glibc has. For a musl build, two small wrappers
with those names (over musl's vsnprintf and stat) are added to the archive.
"""

from pathlib import Path

from relocpy.recipes.library import LibraryBuild, LibraryRecipe, debian_binary

# glibc's entry points that Debian's libXau.a calls, for a static link with musl. The stat
# layouts agree: musl and glibc both use the kernel's struct stat on x86_64 and aarch64.
GLIBC_SHIM = """\
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

int __snprintf_chk(char *s, size_t n, int flag, size_t slen, const char *format, ...)
{
    va_list ap;
    int r;
    (void)flag;
    (void)slen;
    va_start(ap, format);
    r = vsnprintf(s, n, format, ap);
    va_end(ap);
    return r;
}

int __xstat(int ver, const char *path, struct stat *buf)
{
    (void)ver;
    return stat(path, buf);
}
"""


def add_glibc_shim(build: LibraryBuild) -> None:
    """On musl, put GLIBC_SHIM's object into libXau.a (see the module's docstring)."""
    if build.target.libc != "musl":
        return
    work = Path(build.env["TMPDIR"])
    source = work / "xau-glibc-shim.c"
    source.write_text(GLIBC_SHIM)
    obj = work / "xau-glibc-shim.o"
    cflags = build.env["CFLAGS"].split()
    build.run([build.env["CC"], *cflags, "-c", str(source), "-o", str(obj)], cwd=work)
    build.run([build.env["AR"], "rs", str(build.prefix / "lib" / "libXau.a"), str(obj)], cwd=work)


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
        (
            "ppc64le",
            debian_binary(
                "libxau-dev",
                "1:1.0.9-1",
                "libxau-dev_1%3a1.0.9-1_ppc64el.deb",
                "9a855edb8a9455c35dd6dc5c95e986bef639bc232aac957c725c09d35843f3c7",
                pool="pool/main/libx/libxau",
            ),
        ),
        (
            "s390x",
            debian_binary(
                "libxau-dev",
                "1:1.0.9-1",
                "libxau-dev_1%3a1.0.9-1_s390x.deb",
                "b1280bdda910b4751f83f423630a79683581abbd736fc4c4fc39feaaebb2fce0",
                pool="pool/main/libx/libxau",
            ),
        ),
        (
            # riscv64 became a Debian release architecture with trixie: its oldest libXau
            "riscv64",
            debian_binary(
                "libxau-dev",
                "1:1.0.11-1",
                "libxau-dev_1%3a1.0.11-1_riscv64.deb",
                "1181a1a24d4d5bc5bd043516ac8424e93db5ac4fa4f5b6b7ae2bf8f05edcbe16",
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
    build=add_glibc_shim,
)
