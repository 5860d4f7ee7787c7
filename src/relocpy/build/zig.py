"""zig as a C toolchain for an old glibc: `zig cc -target x86_64-linux-gnu.2.17` from this host.

zig comes from the `ziglang` wheel on PyPI, installed on demand into relocpy's cache (hash-pinned).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from filelock import FileLock

from relocpy.build.toolchain import Toolchain
from relocpy.core import home
from relocpy.core.errors import MissingToolError, RelocpyError
from relocpy.core.progress import QuietReporter, Reporter, append_log
from relocpy.core.targets import Target, host_target

ZIG_VERSION = "0.17.1"
# sha256 of the manylinux x86_64 wheel of ziglang 0.17.1 (pip --require-hashes checks it)
ZIG_WHEEL_SHA256 = "ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54"
DEFAULT_GLIBC = "2.17"
# Bumped when the wrappers change what zig compiles or records (it enters the identity, and
# with it every library key and spec hash). 2: zig's library directory named /dev/fd/9 and
# the toolchain directory mapped, so no RELOCPY_HOME path reaches the debug info. 3: its cache
# directory named /dev/fd/8 (compiler-rt's debug info names it).
_WRAPPER_VERSION = 3
# zig names its library directory (clang's headers, the glibc sources of its start files) in
# the debug info of everything it compiles, its own start files and compiler-rt included,
# where no -ffile-prefix-map reaches. Handed that directory open on a fixed descriptor, as
# ZIG_LIB_DIR=/dev/fd/9, it records that name instead of a path inside RELOCPY_HOME: builds in
# different homes are then byte-identical.
ZIG_LIB_FD = 9
# The same for zig's cache directory, where compiler-rt's generated sources live: every
# program that needs a compiler-rt routine (128-bit division in _decimal) names it.
ZIG_CACHE_FD = 8
TOOLCHAINS_IN_DEBUG_INFO = "/relocpy/toolchains"


HOST_DIRS = "|".join(
    f"{flag}{path}"
    for flag, paths in (
        ("-I", ("/usr/include", "/usr/include/*", "/usr/local/include")),
        (
            "-L",
            ("/lib", "/lib/*", "/lib64", "/usr/lib", "/usr/lib/*", "/usr/lib64", "/usr/local/lib"),
        ),
    )
    for path in paths
)


def parse_glibc(value: str) -> str:
    """'2.17' -> '2.17'; anything else is refused with the accepted form."""
    match = re.fullmatch(r"(?:glibc-?)?(2)\.(\d{1,2})", value.strip())
    if not match or int(match.group(2)) < 17:
        raise RelocpyError(
            f"unsupported glibc floor {value!r}",
            hint="give a version such as 2.17, 2.28 or 2.34 (2.17 is the oldest supported)",
        )
    return f"{match.group(1)}.{match.group(2)}"


def zig_identity(glibc: str = DEFAULT_GLIBC, target: Target | None = None) -> str:
    """What names this toolchain in build hashes (the same string `zig_toolchain` records)."""
    target = target or host_target()
    floor = parse_glibc(glibc) if target.libc == "gnu" else None
    flags = "".join(f" {flag}" for flag in target.cflags)
    return f"zig {ZIG_VERSION} {target.zig_target(floor)}{flags}, wrapper {_WRAPPER_VERSION}"


def toolchains_dir() -> Path:
    """Where zig, its wrappers and the gcc sysroots live (inside RELOCPY_HOME's cache)."""
    return home.cache_dir() / "toolchains"


def zig_root(version: str = ZIG_VERSION) -> Path:
    return toolchains_dir() / f"ziglang-{version}"


def require_dev_fd() -> None:
    """zig is handed its directories as /dev/fd/N (see ZIG_LIB_FD): say so where that is
    missing (a chroot without /proc), instead of zig failing to find its own headers."""
    if not Path("/dev/fd").is_dir():
        raise MissingToolError(
            "/dev/fd is missing here: relocpy hands zig its directories as /dev/fd/8 and"
            " /dev/fd/9 (so no home path reaches the build's debug info)",
            hint="mount /proc (/dev/fd is a link to /proc/self/fd), or use --toolchain gcc",
        )


def zig_lib_prelude(zig: Path) -> str:
    """Shell lines that make a following `exec zig ...` see its library directory as
    /dev/fd/9 (see ZIG_LIB_FD)."""
    return f'exec {ZIG_LIB_FD}<"{zig.parent / "lib"}"\nexport ZIG_LIB_DIR=/dev/fd/{ZIG_LIB_FD}\n'


def zig_command(zig: Path, *args: str) -> list[str]:
    """argv for `zig ARGS` with its library directory named /dev/fd/9."""
    return ["/bin/sh", "-c", zig_lib_prelude(zig) + 'exec "$0" "$@"', str(zig), *args]


def toolchain_prefix_map() -> str:
    """The flag that names the toolchains directory the same in every RELOCPY_HOME."""
    return f"-ffile-prefix-map={toolchains_dir()}={TOOLCHAINS_IN_DEBUG_INFO}"


def ensure_zig(reporter: Reporter | None = None, log: Path | None = None) -> Path:
    """The `zig` executable, installing the pinned ziglang wheel from PyPI the first time."""
    reporter = reporter or QuietReporter()
    root = zig_root()
    exe = root / "ziglang" / "zig"
    if exe.is_file():
        return exe
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root.parent / f".ziglang-{ZIG_VERSION}.lock")):
        if exe.is_file():
            return exe
        staging = root.with_name(f".{root.name}.{os.getpid()}")
        requirements = staging.with_suffix(".txt")
        requirements.write_text(f"ziglang=={ZIG_VERSION} --hash=sha256:{ZIG_WHEEL_SHA256}\n")
        reporter.step(f"installing zig {ZIG_VERSION} from PyPI (about 100 MB, once)")
        cmd = [
            sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes",
            "--only-binary", ":all:", "--target", str(staging), "-r", str(requirements),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        append_log(log, f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}")
        requirements.unlink(missing_ok=True)
        if result.returncode != 0 or not (staging / "ziglang" / "zig").is_file():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise MissingToolError(
                f"cannot install zig {ZIG_VERSION} from PyPI: {last}",
                hint="check that pip can reach PyPI, or use --toolchain gcc",
            )
        staging.rename(root)
    return exe


def _write_wrapper(path: Path, text: str) -> None:
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def _prime_libc(bindir: Path, reporter: Reporter, log: Path | None) -> None:
    """Have zig build its glibc start files, stubs and compiler-rt from a fixed directory.

    zig compiles them the first time a link needs them, caches them, and records the directory
    it was run from in their debug info, which every program it links then carries: without
    this, that would be whichever library build happened to link first. They are built from
    `/`, the one directory whose name is the same in every RELOCPY_HOME.
    """
    stamp = bindir / f".libc-primed-{_WRAPPER_VERSION}"
    if stamp.is_file():
        return
    with FileLock(str(bindir / ".prime.lock")):
        if stamp.is_file():
            return
        what = "musl C library" if "musl" in bindir.name else "glibc start files and stubs"
        reporter.step(f"zig: building its {what} for {bindir.name.removeprefix('bin-')}")
        prime = bindir / "prime"
        prime.mkdir(exist_ok=True)
        (prime / "prime.c").write_text("int main(void) { return 0; }\n")
        src = str(prime / "prime.c")
        for args in (
            [src, "-o", str(prime / "exe")],
            ["-fPIE", "-pie", src, "-o", str(prime / "pie")],
            ["-fPIC", "-shared", src, "-o", str(prime / "lib.so")],
        ):
            result = subprocess.run(
                [str(bindir / "cc"), *args], cwd="/", capture_output=True, text=True
            )
            if log is not None:
                append_log(log, f"zig cc {' '.join(args)}: {result.stdout}{result.stderr}")
            if result.returncode != 0:
                raise RelocpyError(
                    f"zig cannot link a C program for {bindir.name}: {result.stderr[-500:]}",
                    hint="remove the zig toolchain directory to have it installed again",
                )
        stamp.touch()


def zig_toolchain(
    glibc: str = DEFAULT_GLIBC,
    reporter: Reporter | None = None,
    log: Path | None = None,
    target: Target | None = None,
) -> Toolchain:
    """cc/ar/ranlib wrapper scripts around zig for `<arch>-linux-gnu.<glibc>` (this machine's
    CPU unless `target` says another: a cross toolchain), or for `<arch>-linux-musl` (zig's
    own musl; `glibc` is not read).

    Configure scripts want one word for CC, so the target lives in a wrapper, not in CC.
    """
    machine = target or host_target()
    floor = parse_glibc(glibc) if machine.libc == "gnu" else None
    require_dev_fd()
    zig = ensure_zig(reporter, log)
    target_name = machine.zig_target(floor)
    bindir = zig.parent.parent / f"bin-{target_name}"
    bindir.mkdir(parents=True, exist_ok=True)
    # A new cache for a new wrapper version: the old one holds start files with home paths.
    cache = toolchains_dir() / f"zig-cache-{_WRAPPER_VERSION}"
    # configure scripts ask the compiler for its linker (`-print-prog-name=ld`) and then ask
    # that for GNU ld's version; zig's clang cannot answer with a versioned triple, but its
    # linker takes GNU ld's options, so the wrappers answer `ld`.
    # CPython links libpython with `-Wl,-h<soname>`, GNU ld's short -soname, which zig's
    # linker driver does not know: the wrapper spells it out.
    # Host system directories are dropped: their headers and libraries are for the host's
    # glibc, and CPython's setup.py (3.9-3.11) adds them by itself, ahead of zig's own.
    # zig 0.17 also fails on a shared link with only libraries as input (CPython's
    # libpython3.so stub): an empty C file is added to such a link.
    empty = bindir / "empty.c"
    empty.write_text("/* added by relocpy to link-only zig cc calls */\n")
    linker_query = (
        'case "$1" in -print-prog-name=ld) echo ld; exit 0;; esac\n'
        "shared=no; inputs=no\n"
        'for arg do shift; case "$arg" in\n'
        '  -Wl,-h*) set -- "$@" "-Wl,-soname,${arg#-Wl,-h}"; continue;;\n'
        f"  {HOST_DIRS}) continue;;\n"
        "  -shared) shared=yes;;\n"
        "  *.c|*.o|*.s|*.S|*.a|*.cc|*.cpp|*.i|-|-c|-E|-M|-MM|-v|--version|-print*|-dump*) "
        "inputs=yes;;\n"
        "esac\n"
        'set -- "$@" "$arg"; done\n'
        f'if [ $shared = yes ] && [ $inputs = no ]; then set -- "$@" "{empty}"; fi\n'
    )
    # Header paths inside the toolchains directory (the sysroot's, a user's -I) are written as
    # /relocpy/toolchains/... in debug info; zig's own headers are /dev/fd/9/... (ZIG_LIB_FD).
    remap = toolchain_prefix_map()
    cache.mkdir(parents=True, exist_ok=True)
    flags = "".join(f" {flag}" for flag in machine.cflags)
    for name, command, prelude in (
        ("cc", f'cc -target {target_name}{flags} "{remap}"', linker_query),
        ("c++", f'c++ -target {target_name}{flags} "{remap}"', linker_query),
        ("ar", "ar", ""),
        ("ranlib", "ranlib", ""),
    ):
        _write_wrapper(
            bindir / name,
            "#!/bin/sh\n"
            f'exec {ZIG_CACHE_FD}<"${{ZIG_GLOBAL_CACHE_DIR:-{cache}}}"\n'
            f"export ZIG_GLOBAL_CACHE_DIR=/dev/fd/{ZIG_CACHE_FD}"
            f" ZIG_LOCAL_CACHE_DIR=/dev/fd/{ZIG_CACHE_FD}\n"
            f"{prelude}"
            f"{zig_lib_prelude(zig)}"
            f'exec "{zig}" {command} "$@"\n',
        )
    _prime_libc(bindir, reporter or QuietReporter(), log)
    return Toolchain(
        name="zig",
        cc=str(bindir / "cc"),
        make="make",
        include_dirs=(),
        ar=str(bindir / "ar"),
        ranlib=str(bindir / "ranlib"),
        identity=zig_identity(glibc, machine),
        glibc=floor,
        target=target,
        # CPython's --with-lto for clang wants llvm-ar; zig's ar is one.
        extra_env=(("CXX", str(bindir / "c++")), ("LLVM_AR", str(bindir / "ar"))),
    )
