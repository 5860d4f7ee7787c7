"""How CPython is configured, per version and optimisation level (data plus one small function)."""

from __future__ import annotations

OPT_LEVELS = ("noopt", "lto", "pgo", "pgo+lto")

# The prefix every build is configured with; repair maps it to the tree's location at run time.
INSTALL_PREFIX = "/install"

BASE_ARGS = (
    f"--prefix={INSTALL_PREFIX}",
    "--enable-shared",
    "--with-ensurepip=install",
    "--enable-loadable-sqlite-extensions",
)

# (minimum version, flag): flags that only exist from some release on.
VERSIONED_ARGS = (((3, 10), "--without-static-libpython"),)

OPT_ARGS = {
    "noopt": (),
    "lto": ("--with-lto",),
    "pgo": ("--enable-optimizations",),
    "pgo+lto": ("--enable-optimizations", "--with-lto"),
}


# The PGO training run, CPython's own test runner either way. "pgo" is the Makefile's default
# (`-m test --pgo`: 44 tests chosen for speed). "extended" runs the whole test suite
# (`--pgo-extended`), as Debian trains its python3.11 (its rules run regrtest over every test
# but a few slow or flaky ones); tests run in `jobs` workers, whose profiles gcc merges.
PGO_TRAININGS = ("pgo", "extended")
# Left out of the extended training, as Debian's rules leave them out: test_socket waits
# forever in its AF_VSOCK tests on a VM that has vsock (firecracker: `accept` never returns),
# and the others spend minutes in child processes, process pools and compilers rather than in
# the interpreter (test_tools builds a frozen interpreter: 4.5 minutes of 23 on 2 cores).
PGO_EXTENDED_EXCLUDES = (
    "test_socket",
    "test_tools",
    "test_multiprocessing_fork",
    "test_multiprocessing_forkserver",
    "test_multiprocessing_spawn",
    "test_concurrent_futures",
)


def profile_task(training: str, jobs: int) -> str | None:
    """The Makefile's PROFILE_TASK for `training`, or None to keep CPython's default."""
    if training not in PGO_TRAININGS:
        raise ValueError(
            f"unknown PGO training {training!r}; choose one of {', '.join(PGO_TRAININGS)}"
        )
    if training == "pgo":
        return None
    excluded = " ".join(PGO_EXTENDED_EXCLUDES)
    return f"-m test --pgo-extended -j{jobs} --timeout=$(TESTTIMEOUT) -x {excluded}"


# CPython's own PROFILE_TASK (3.9 to 3.13)
DEFAULT_PROFILE_TASK = "-m test --pgo --timeout=$(TESTTIMEOUT)"


def tolerant_profile_task(training: str, jobs: int) -> str:
    """PROFILE_TASK for a training whose failing tests do not stop the build, as CPython's
    Makefile had it up to 3.12 (`... $(PROFILE_TASK) || true`; 3.13 dropped the `|| true`).
    The shell runs the task in make's recipe, so the suffix takes effect there."""
    return f"{profile_task(training, jobs) or DEFAULT_PROFILE_TASK} || true"


def training_args(training: str, jobs: int) -> list[str]:
    """The arguments python runs the training `training` with, outside CPython's Makefile
    (the BOLT training): the same tests as PROFILE_TASK."""
    task = profile_task(training, jobs)
    if task is None:
        return ["-m", "test", "--pgo"]
    return [arg for arg in task.split() if not arg.startswith("--timeout=")]


# A static build (musl): one executable with every standard-library extension module built
# in. configure takes Modules/Setup.stdlib's build type from MODULE_BUILDTYPE; the test
# modules, some of which must be shared objects, are left out; a static executable cannot
# load extensions (musl's static dlopen always fails), so SQLite's is left out too.
STATIC_ENV = {"MODULE_BUILDTYPE": "static"}


# A dynamic musl build: zig links musl programs static unless told `-dynamic`. It compiles
# against zig's musl 1.2.5; the functions musl added after 1.2.3 (Debian 12's, Alpine 3.17's)
# are left out, so the interpreter loads with any musl from 1.2.3 on. The list is the
# difference of the two libc.so symbol tables that CPython's configure looks for.
MUSL_DYNAMIC_LDFLAGS = "-dynamic"
MUSL_FLOOR = "1.2.3"
MUSL_FLOOR_CACHE_VARIABLES = {"ac_cv_func_preadv2": "no", "ac_cv_func_pwritev2": "no"}


def static_ldflags(pie: bool) -> str:
    """A static executable's link flags: static-pie (musl's rcrt1: the executable relocates
    itself, so it loads at a random address and its GOT is read-only) unless `pie` is off."""
    return "-static -pie" if pie else "-static"


def configure_args(
    version: tuple[int, ...], opt: str, free_threaded: bool = False, static: bool = False
) -> list[str]:
    if free_threaded and version[:2] < (3, 13):
        raise ValueError(f"free-threaded builds exist from CPython 3.13 on, not {version}")
    if opt not in OPT_ARGS:
        raise ValueError(
            f"unknown optimisation level {opt!r}; choose one of {', '.join(OPT_LEVELS)}"
        )
    args = list(BASE_ARGS)
    args += [flag for minimum, flag in VERSIONED_ARGS if version[:2] >= minimum]
    args += OPT_ARGS[opt]
    if free_threaded:
        args.append("--disable-gil")
    if static:
        if version[:2] < (3, 11):
            raise ValueError(f"static builds exist from CPython 3.11 on, not {version}")
        args = ["--disable-shared" if a == "--enable-shared" else a for a in args]
        args = [a for a in args if a != "--enable-loadable-sqlite-extensions"]
        args.append("--disable-test-modules")
    return args


# ctypes makes `pythonapi` at import from dlopen(NULL), which a static executable cannot
# answer: in a static build the import would fail. There it becomes None, and ctypes imports.
CTYPES_PYTHONAPI = "    pythonapi = PyDLL(None)\n"
CTYPES_PYTHONAPI_STATIC = (
    "    try:\n"
    "        pythonapi = PyDLL(None)\n"
    "    except OSError:  # relocpy: a static interpreter (no dlopen)\n"
    "        pythonapi = None\n"
)


def patch_ctypes_for_static(source: str) -> str:
    """ctypes/__init__.py of a static build (see CTYPES_PYTHONAPI); ValueError if the line
    to change is not there exactly once."""
    if source.count(CTYPES_PYTHONAPI) != 1:
        raise ValueError("ctypes/__init__.py has no single `pythonapi = PyDLL(None)` line")
    return source.replace(CTYPES_PYTHONAPI, CTYPES_PYTHONAPI_STATIC)


# The modules a complete build has, each with the releases that have it (first, and the first
# without it): what `relocpy build` refuses to ship without. distutils left in 3.12, _crypt in
# 3.13; 3.14 added compression.zstd (_zstd, on the zstd recipe).
REQUIRED_MODULES: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("_ssl", (3, 0), (4, 0)),
    ("_hashlib", (3, 0), (4, 0)),
    ("_ctypes", (3, 0), (4, 0)),
    ("_sqlite3", (3, 0), (4, 0)),
    ("_curses", (3, 0), (4, 0)),
    ("_curses_panel", (3, 0), (4, 0)),
    ("readline", (3, 0), (4, 0)),
    ("_lzma", (3, 3), (4, 0)),
    ("_bz2", (3, 3), (4, 0)),
    ("zlib", (3, 0), (4, 0)),
    ("_uuid", (3, 7), (4, 0)),
    ("_dbm", (3, 0), (4, 0)),
    ("_gdbm", (3, 0), (4, 0)),
    ("_tkinter", (3, 0), (4, 0)),
    ("_decimal", (3, 3), (4, 0)),
    ("pyexpat", (3, 0), (4, 0)),
    ("_elementtree", (3, 0), (4, 0)),
    ("_json", (3, 0), (4, 0)),
    ("_socket", (3, 0), (4, 0)),
    ("select", (3, 0), (4, 0)),
    ("_multiprocessing", (3, 0), (4, 0)),
    ("_zoneinfo", (3, 9), (4, 0)),
    ("_crypt", (3, 0), (3, 13)),
    ("distutils", (3, 0), (3, 12)),
    ("_zstd", (3, 14), (4, 0)),
)


def modules_of(version: tuple[int, ...]) -> list[str]:
    """The modules a complete build of `version` must import (REQUIRED_MODULES)."""
    return [name for name, first, gone in REQUIRED_MODULES if first <= version[:2] < gone]


# RELRO over the whole GOT (BIND_NOW), as `relocpy verify` checks, for every build (source or
# host libraries): zig's linker does both by default, Debian's gcc only the first.
HARDENING_LDFLAGS = "-Wl,-z,relro -Wl,-z,now"


# Link lines for libraries built static into `{deps}` (configure's pkg-config is off for these
# builds, so every module's flags are given; the order matters for static archives).
_MODULE_LIBS = {
    "LIBFFI": "-lffi",
    "LIBSQLITE3": "-lsqlite3 -lm -ldl -lpthread",
    "ZLIB": "-lz",
    "BZIP2": "-lbz2",
    "LIBLZMA": "-llzma -lpthread",
    "LIBUUID": "-luuid",
    "GDBM": "-lgdbm",
    "LIBMPDEC": "-lmpdec -lm",
    "LIBCRYPT": "-lcrypt",
    "CURSES": "-lncursesw",
    "PANEL": "-lpanelw -lncursesw",
    "TCLTK": "-ltk8.6 -ltcl8.6 -lX11 -lxcb -lXau -lz -lpthread -ldl -lm",
    "LIBEDIT": "-ledit -lncursesw",
    "LIBREADLINE": "-lreadline -lncursesw",
    "LIBZSTD": "-lzstd",  # 3.14's _zstd; older configure scripts ignore it
}


def library_configuration(
    version: tuple[int, ...], deps: str, readline: str, exclude_libs: bool = True
) -> tuple[list[str], dict[str, str]]:
    """configure arguments and variables that make CPython link the libraries built in `deps`.

    The libraries are compiled with -fvisibility=hidden; where the linker supports it (GNU ld,
    not zig's), --exclude-libs also hides symbols a library marks visible itself.
    """
    include = f"-I{deps}/include -I{deps}/include/ncursesw"
    env = {
        "CPPFLAGS": include,
        "LDFLAGS": f"-L{deps}/lib" + (" -Wl,--exclude-libs,ALL" if exclude_libs else ""),
    }
    for module, libs in _MODULE_LIBS.items():
        env[f"{module}_CFLAGS"] = include
        env[f"{module}_LIBS"] = f"-L{deps}/lib {libs}"
    env["LIBUUID_CFLAGS"] += f" -I{deps}/include/uuid"  # as uuid.pc says: <uuid.h>
    # The static gdbm_compat needs gdbm after it; configure's own search tries it alone.
    env["ac_cv_search_dbm_open"] = "-lgdbm_compat -lgdbm"
    args = [f"--with-openssl={deps}", "--with-system-expat"]
    if version[:2] >= (3, 11):
        args.append("--with-pkg-config=no")
    if version[:2] >= (3, 13):
        args.append("--with-system-libmpdec")
    if version[:2] >= (3, 10):
        args.append(f"--with-readline={'editline' if readline == 'libedit' else 'readline'}")
    else:
        tcltk = _MODULE_LIBS["TCLTK"]
        args += [f"--with-tcltk-includes={include}", f"--with-tcltk-libs=-L{deps}/lib {tcltk}"]
    return args, env


# What configure cannot find out about the machine it builds for when it cannot run a program
# there (a cross build): the answers for Linux, as every cross build of CPython gives them.
CROSS_CACHE_VARIABLES = {
    "ac_cv_file__dev_ptmx": "yes",
    "ac_cv_file__dev_ptc": "no",
    "ac_cv_buggy_getaddrinfo": "no",
}


def cross_configuration(
    host: str, build: str, build_python: str
) -> tuple[list[str], dict[str, str]]:
    """configure arguments and variables of a build for machine `host` (autoconf's triple) on
    machine `build`, with `build_python` the build machine's CPython of the same X.Y."""
    args = [f"--host={host}", f"--build={build}", f"--with-build-python={build_python}"]
    return args, dict(CROSS_CACHE_VARIABLES)
