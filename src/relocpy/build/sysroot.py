"""gcc for an old glibc: a sysroot of zig's glibc headers and the stub libraries zig builds.

zig cannot do profile-guided optimisation (its programs write no profile); gcc can, but links
against the host's glibc. The host gcc with `-nostdinc`, zig's headers for the target glibc and
the versioned stub libraries and start files zig makes for it gives both: a gcc build (PGO, LTO)
whose binaries need nothing newer than that glibc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

from relocpy.build.toolchain import Toolchain, compiler_identity
from relocpy.build.zig import (
    HOST_DIRS,
    ZIG_VERSION,
    ensure_zig,
    parse_glibc,
    require_dev_fd,
    toolchain_prefix_map,
    toolchains_dir,
    zig_command,
)
from relocpy.core.errors import MissingToolError, RelocpyError
from relocpy.core.preflight import Requirement, require
from relocpy.core.progress import QuietReporter, Reporter, append_log
from relocpy.elf.aliases import GLIBC_DATA_ALIASES, join_aliases

_ARCH = "x86_64"
# Bumped when the cc wrapper changes what it compiles or links (it enters the identity, and
# with it every library key). 3: links libm, libpthread and libdl where needed; 4: named
# gcc, which CPython's configure needs to see to use its PGO and LTO flags. 5: no
# RELOCPY_HOME path in debug info (the toolchains directory mapped, zig's start files built
# with its library directory as /dev/fd/9): builds in different homes are byte-identical.
# 6: the stubs' environ, tzname, ... are aliases again (elf.aliases): with 5, executables gcc
# linked read an environment glibc never filled (os.environ was empty).
_WRAPPER_VERSION = 6
# zig's header directories for x86_64 glibc, most specific first (as zig cc passes them)
_HEADER_DIRS = ("x86-linux-gnu", "generic-glibc", "x86-linux-any", "any-linux-any")
# What the sysroot's lib/ holds: zig's start files, libc_nonshared.a and one stub per library
_FROM_ZIG = {
    "Scrt1.o": "Scrt1.o",
    "crt1.o": "crt1.o",
    "libc_nonshared.a": "libc_nonshared.a",
    "libc.so.6": "libc.so.6",
    "libm.so.6": "libm.so.6",
    "libpthread.so.0": "libpthread.so.0",
    "libdl.so.2": "libdl.so.2",
    "librt.so.1": "librt.so.1",
    "libutil.so.1": "libutil.so.1",
    "libresolv.so.2": "libresolv.so.2",
    "libld.so.2": "ld-linux-x86-64.so.2",
}
_LINK_NAMES = {"m": "libm.so.6", "pthread": "libpthread.so.0", "dl": "libdl.so.2",
               "rt": "librt.so.1", "util": "libutil.so.1", "resolv": "libresolv.so.2"}  # fmt: skip
_PROBE = """#include <math.h>
#include <pthread.h>
#include <dlfcn.h>
#include <resolv.h>
#include <time.h>
int main(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return (int)sqrt(4.0) + (dlopen(0, RTLD_NOW) == 0) + (pthread_self() == 0); }
"""


def sysroot_dir(glibc: str) -> Path:
    # versioned: a sysroot made by an older wrapper holds start files with home paths
    return toolchains_dir() / f"sysroot-{_ARCH}-linux-gnu.{glibc}-{_WRAPPER_VERSION}"


def _gcc_file(name: str) -> str:
    result = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True)
    return result.stdout.strip()


def ensure_sysroot(glibc: str, reporter: Reporter | None = None, log: Path | None = None) -> Path:
    """The sysroot for `glibc` (built once: zig compiles its glibc stubs in a private cache)."""
    reporter = reporter or QuietReporter()
    glibc = parse_glibc(glibc)
    root = sysroot_dir(glibc)
    if (root / "lib" / "libc.so").is_file():
        return root
    require_dev_fd()
    zig = ensure_zig(reporter, log)
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root.parent / f".{root.name}.lock")):
        if (root / "lib" / "libc.so").is_file():
            return root
        reporter.step(f"assembling a glibc {glibc} sysroot for gcc from zig's glibc stubs")
        # A fixed name (the lock makes it ours). What zig records in the start files' debug
        # info, which every program linked with the sysroot carries, is kept free of home
        # paths by zig_command (its library directory as /dev/fd/9) and by running it in `/`.
        staging = root.with_name(f".{root.name}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        scratch = staging / "zig-cache"
        (staging / "lib").mkdir(parents=True)
        try:
            probe = staging / "probe.c"
            probe.write_text(_PROBE)
            env = {
                **os.environ,
                "ZIG_GLOBAL_CACHE_DIR": str(scratch),
                "ZIG_LOCAL_CACHE_DIR": str(scratch),
            }
            libs = [f"-l{name}" for name in _LINK_NAMES]
            for pie in (["-fPIE", "-pie"], ["-fno-PIE", "-no-pie"]):
                cmd = zig_command(zig, "cc", "-target", f"{_ARCH}-linux-gnu.{glibc}", *pie,
                                  str(probe), "-o", str(staging / "probe"), *libs)  # fmt: skip
                # from `/`: zig records the directory it runs in inside its start files
                result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/")
                append_log(log, f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}")
                if result.returncode != 0:
                    raise RelocpyError(
                        f"zig could not link for glibc {glibc}: {result.stderr.strip()[-300:]}"
                    )
            for source, target in _FROM_ZIG.items():
                found = sorted(scratch.rglob(source))
                if not found:
                    raise RelocpyError(f"zig built no {source} for glibc {glibc}")
                shutil.copy2(found[0], staging / "lib" / target)
            for library, aliases in GLIBC_DATA_ALIASES.items():
                joined = join_aliases(staging / "lib" / library, aliases)
                append_log(log, f"{library}: made weak aliases again: {', '.join(joined)}")
            for name in ("crti.o", "crtn.o"):  # _init/_fini prologue and epilogue, not versioned
                path = _gcc_file(name)
                if not os.path.isabs(path):
                    raise MissingToolError(
                        f"gcc has no {name}", hint="apt-get install -y libc6-dev"
                    )
                shutil.copy2(path, staging / "lib" / name)
            lib = root / "lib"  # the final location: linker scripts name absolute paths
            (staging / "lib" / "libc.so").write_text(
                f"/* relocpy: glibc {glibc} stubs made by zig {ZIG_VERSION} */\n"
                # quoted: RELOCPY_HOME may hold spaces
                f'GROUP ( "{lib}/libc.so.6" "{lib}/libc_nonshared.a"'
                f' AS_NEEDED ( "{lib}/ld-linux-x86-64.so.2" ) )\n'
            )
            for name, soname in _LINK_NAMES.items():
                (staging / "lib" / f"lib{name}.so").symlink_to(soname)
            shutil.rmtree(scratch)
            probe.unlink()
            (staging / "probe").unlink(missing_ok=True)
            staging.rename(root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return root


def sysroot_identity(glibc: str, compiler: str = "gcc") -> str:
    """What names the compiler-with-sysroot toolchain in build hashes (nothing is built to
    know): `compiler` is "gcc" or "clang"."""
    program = "gcc" if compiler == "gcc" else CLANG
    return (
        f"{compiler_identity(program)}, glibc {parse_glibc(glibc)} sysroot from zig {ZIG_VERSION}"
        f", wrapper {_WRAPPER_VERSION}"
    )


def _wrapper(glibc: str, root: Path, compiler: str, flags: str, link_flags: str = "") -> str:
    """The one-word `cc` of a sysroot toolchain: `compiler` with `flags`, zig's headers for
    `glibc`, the sysroot's start files and stubs, and none of the host's directories.
    `link_flags` go to links only (clang warns of a flag a compile leaves unused, and
    configure's -Werror checks take that warning for a broken compiler)."""
    sysroot_flags = f'-B"{root / "lib"}" -L"{root / "lib"}" -static-libgcc'
    linking = f'set -- {link_flags} {sysroot_flags} "$@"; ' if link_flags else ""
    always = "" if link_flags else f"{sysroot_flags} "
    return (
        "#!/bin/sh\n"
        f"# relocpy: {compiler.rsplit('/', 1)[-1]} for glibc {glibc} (zig's headers and stubs)\n"
        "link=yes\n"
        'for arg do shift; case "$arg" in\n'
        f"  {HOST_DIRS}) continue;;\n"
        "  -c|-E|-S|-M|-MM|-v|--version|-print*|-dump*) link=no;;\n"
        'esac; set -- "$@" "$arg"; done\n'
        # Before glibc 2.34 pthread_* and dlopen live in libpthread and libdl; static
        # libraries (OpenSSL, SQLite) need them and libm after themselves, and zig links all
        # three by itself (CPython's configure puts a library's -lm before the library).
        # --as-needed records them only where they are used.
        f'if [ $link = yes ]; then {linking}set -- "$@" -Wl,--push-state,--as-needed'
        " -lm -lpthread -ldl -Wl,--pop-state; fi\n"
        f"exec {compiler} {flags} -D__GLIBC_MINOR__={glibc.split('.')[1]} "
        # headers and start files live in RELOCPY_HOME: debug info names them the same in
        # every home (given to the link too, which is where LTO writes its debug info)
        f'"{toolchain_prefix_map()}" '
        f'{always}"$@"\n'
    )


def _install_wrapper(bindir: Path, name: str, text: str) -> Path:
    bindir.mkdir(exist_ok=True)
    cc = bindir / name
    if not cc.is_file() or cc.read_text() != text:
        tmp = cc.with_name(f".{name}.{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, cc)
    return cc


def _zig_header_flags(reporter: Reporter | None, log: Path | None) -> list[str]:
    headers = ensure_zig(reporter, log).parent / "lib" / "libc" / "include"
    return [f'-isystem "{headers / name}"' for name in _HEADER_DIRS]


def gcc_glibc_toolchain(
    glibc: str, reporter: Reporter | None = None, log: Path | None = None
) -> Toolchain:
    """The host gcc, compiling against zig's glibc `glibc` headers and linking its stubs.

    A one-word `cc` wrapper (configure scripts want one word); host include and library
    directories are dropped, as for zig, and libgcc is linked statically (no libgcc_s.so.1).
    """
    if shutil.which("gcc") is None:
        raise MissingToolError("gcc not found on PATH", hint="apt-get install -y gcc")
    glibc = parse_glibc(glibc)
    root = ensure_sysroot(glibc, reporter, log)
    # gcc answers a bare name for a directory it does not have (include-fixed on Debian 12)
    builtin = [d for d in (_gcc_file("include"), _gcc_file("include-fixed")) if os.path.isabs(d)]
    includes = [f'-isystem "{d}"' for d in builtin] + _zig_header_flags(reporter, log)
    # configure scripts (CPython's PGO and LTO flags among them) recognise gcc by name
    cc = _install_wrapper(
        root / "bin", "gcc", _wrapper(glibc, root, "gcc", " ".join(["-nostdinc", *includes]))
    )
    return Toolchain(
        name="gcc",
        cc=str(cc),
        make="make",
        include_dirs=(),
        identity=sysroot_identity(glibc),
        glibc=glibc,
    )


# Debian's clang-19 and the LLVM tools of the same release (profile format, bitcode and BOLT
# must all match the compiler): /usr/lib/llvm-19/bin holds unversioned names of each.
LLVM_BIN = Path("/usr/lib/llvm-19/bin")
CLANG = str(LLVM_BIN / "clang")
# program -> the Debian package that has it
LLVM_TOOLS = {
    "clang": "clang-19",
    "ld.lld": "lld-19",
    "llvm-ar": "llvm-19",
    "llvm-profdata": "llvm-19",
    "llvm-objcopy": "llvm-19",
}
BOLT_TOOLS = {"llvm-bolt": "bolt-19", "merge-fdata": "bolt-19"}
# What a program built with -fprofile-instr-generate links: clang's profile runtime
PROFILE_RUNTIME = Path("/usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.profile-x86_64.a")


def llvm_requirements(needed_by: str, bolt: bool = False, pgo: bool = False) -> list[Requirement]:
    """What a clang build needs of LLVM 19 (for the preflight): its tools, BOLT's with `bolt`,
    the profile runtime with `pgo`."""
    tools = {**LLVM_TOOLS, **(BOLT_TOOLS if bolt else {})}
    needs = [Requirement("program", str(LLVM_BIN / n), p, needed_by) for n, p in tools.items()]
    if pgo:
        needs.append(Requirement("file", str(PROFILE_RUNTIME), "libclang-rt-19-dev", needed_by))
    return needs


def clang_glibc_toolchain(
    glibc: str, reporter: Reporter | None = None, log: Path | None = None
) -> Toolchain:
    """Debian's clang-19, against the same sysroot as gcc_glibc_toolchain, linking with lld.

    What clang needs beyond the gcc case: its own builtin headers (`-nostdlibinc` keeps them),
    lld (ThinLTO links through it), and the LLVM tools of its release named for CPython's
    configure (llvm-profdata for PGO, llvm-ar for LTO): unversioned `llvm-profdata` on PATH
    may be another release, whose profile format clang-19 cannot read.
    """
    require(llvm_requirements("--toolchain clang"), "a clang build")
    glibc = parse_glibc(glibc)
    root = ensure_sysroot(glibc, reporter, log)
    flags = " ".join(["-nostdlibinc", *_zig_header_flags(reporter, log)])
    # named clang: CPython's configure picks its PGO flags by the compiler's name
    wrapper = _wrapper(glibc, root, CLANG, flags, link_flags="-fuse-ld=lld")
    cc = _install_wrapper(root / "bin", "clang", wrapper)
    return Toolchain(
        name="clang",
        cc=str(cc),
        make="make",
        include_dirs=(),
        ar=str(LLVM_BIN / "llvm-ar"),
        ranlib=str(LLVM_BIN / "llvm-ranlib"),
        identity=sysroot_identity(glibc, "clang"),
        glibc=glibc,
        extra_env=(
            ("LLVM_AR", str(LLVM_BIN / "llvm-ar")),
            ("LLVM_PROFDATA", str(LLVM_BIN / "llvm-profdata")),
        ),
    )
