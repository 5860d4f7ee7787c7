"""Building CPython from a verified source tarball into a staging prefix.

configure / make / make install DESTDIR=..., with every line in the log and the current step shown.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relocpy.build.bolt import FDATA_SUFFIX as BOLT_FDATA_SUFFIX
from relocpy.build.bolt import LINK_FLAGS as BOLT_LINK_FLAGS
from relocpy.build.bolt import BoltRun, bolt_executable
from relocpy.build.libraries import spec_cflags
from relocpy.build.profile import SUFFIX as PROFILE_SUFFIX
from relocpy.build.profile import load_profile, save_profile
from relocpy.build.toolchain import Toolchain
from relocpy.core.errors import BuildFailedError
from relocpy.core.progress import Reporter, append_log
from relocpy.core.runner import build_env, prefix_map_flags, run_logged, unpack_source
from relocpy.core.targets import host_target
from relocpy.elf.read import undefined_symbols
from relocpy.recipes.cpython import (
    HARDENING_LDFLAGS,
    INSTALL_PREFIX,
    MUSL_DYNAMIC_LDFLAGS,
    MUSL_FLOOR_CACHE_VARIABLES,
    STATIC_ENV,
    configure_args,
    cross_configuration,
    library_configuration,
    patch_ctypes_for_static,
    profile_task,
    static_ldflags,
    tolerant_profile_task,
    training_args,
)
from relocpy.sources.catalog import SourcePin

if TYPE_CHECKING:
    from relocpy.build.libraries import BuiltLibrary


# What debug info and __FILE__ say instead of the random work directory of a build.
BUILD_DIR_IN_DEBUG_INFO = "/relocpy/build"


# What CPython's Makefile (3.9 to 3.13) prints as a profile-guided build moves on: its echo
# before the instrumented build, the training command, and its echo before the rebuild.
PGO_MILESTONES = {
    "Building with support for profile generation": "PGO 1/3: instrumented build",
    " -m test --pgo": "PGO 2/3: training run (python -m test --pgo or --pgo-extended)",
    "Rebuilding with profile guided optimizations": "PGO 3/3: optimised rebuild",
}


def missing_optimisations(makefile: str, opt: str) -> list[str]:
    """What of `opt` configure did not switch on, read from the Makefile it wrote: its PGO flags
    (PGO_PROF_USE_FLAG) and its LTO flags (-flto in CONFIGURE_CFLAGS_NODIST)."""
    values = dict(re.findall(r"^([A-Z_]+)=[ \t]*(.*)$", makefile, re.M))
    missing = []
    if opt.startswith("pgo") and not values.get("PGO_PROF_USE_FLAG", "").strip():
        missing.append("the PGO flags")
    if opt.endswith("lto") and "-flto" not in values.get("CONFIGURE_CFLAGS_NODIST", ""):
        missing.append("the LTO flags")
    return missing


def training_failed(message: str, opt: str) -> bool:
    """Whether a failed `make` of a PGO build failed in its training run (CPython's
    profile-run-stamp target), which running make again repeats on its own."""
    return opt.startswith("pgo") and "profile-run-stamp] Error" in message


@dataclass(frozen=True)
class BuildSpec:
    """What to build: `libs` is "source" (every library built here, static) or "host"
    (the host's -dev libraries, grafted into the tree by repair)."""

    pin: SourcePin
    opt: str = "noopt"
    jobs: int = max(1, os.cpu_count() or 1)
    libs: str = "source"
    readline: str = "libedit"
    march: str = "x86-64"
    cflags: tuple[str, ...] = ()
    free_threaded: bool = False
    pgo_training: str = "pgo"
    # False: the executable is position-dependent (-no-pie), as Debian's python3. Its code and
    # data then load at a fixed address (libraries, heap and stack are still randomised), and
    # with LTO the interpreter's code is generated without PIC: 3% fewer instructions on the
    # issue 6 workloads (callgrind). True keeps the toolchain's default, a PIE.
    pie: bool = True
    # A profile an earlier PGO build of this spec wrote (see build.profile): compiled with
    # its counts instead of training again, so the output is the same bytes as that build's.
    pgo_profile: Path | None = None
    # clang only: BOLT lays out the executable's code by a profile of the PGO training
    bolt: bool = False
    # musl only: one static executable with every extension module built in
    static: bool = False

    @property
    def make_variables(self) -> list[str]:
        """Variables given on make's command line: the PGO training task, if not the default."""
        task = profile_task(self.pgo_training, self.jobs) if self.opt.startswith("pgo") else None
        return [f"PROFILE_TASK={task}"] if task else []

    @property
    def configure_args(self) -> list[str]:
        return configure_args(self.pin.version_tuple, self.opt, self.free_threaded, self.static)

    @property
    def extra_cflags(self) -> list[str]:
        """Flags the spec adds to CPython's and its libraries' compiles."""
        return list(spec_cflags(self.march, self.cflags))


def profile_identity(spec: BuildSpec, toolchain: Toolchain) -> dict[str, object]:
    """What a PGO profile must have been trained on to be reused: the same source, compiler
    and everything that changes what is compiled."""
    return {
        "cpython": spec.pin.version,
        "source_sha256": spec.pin.sha256,
        "compiler": toolchain.identity,
        "opt": spec.opt,
        "configure_args": list(spec.configure_args),
        "cflags": list(spec.extra_cflags),
        "libs": spec.libs,
        "readline": spec.readline,
        "free_threaded": spec.free_threaded,
        "pie": spec.pie,
        "pgo_training": spec.pgo_training,
        # only when set: the profiles of earlier builds, which had no BOLT, stay usable
        **({"bolt": True} if spec.bolt else {}),
        **({"static": True} if spec.static else {}),
    }


@dataclass(frozen=True)
class StagedBuild:
    """The result of `make install DESTDIR=stage`: the prefix lives at `stage/install`."""

    spec: BuildSpec
    source_dir: Path
    stage_dir: Path
    log: Path
    seconds: float
    profile: Path | None = None  # the PGO profile the build trained or was given

    @property
    def prefix_dir(self) -> Path:
        return self.stage_dir / INSTALL_PREFIX.lstrip("/")


def build_cpython(
    spec: BuildSpec,
    tarball: Path,
    workdir: Path,
    toolchain: Toolchain,
    reporter: Reporter,
    log: Path,
    libraries: list[BuiltLibrary] | None = None,
    epoch: int = 315532800,
    build_python: Path | None = None,
) -> StagedBuild:
    """Unpack, configure, make and install into `workdir/stage`.

    With `libraries`, CPython links those static builds instead of the host's libraries.
    `epoch` is the SOURCE_DATE_EPOCH the compiler gives __DATE__ and __TIME__. A cross
    toolchain needs `build_python`, this machine's CPython of the same version.
    """
    start = time.monotonic()
    reporter.step(f"unpacking {tarball.name}")
    source = unpack_source(tarball, workdir / "src")
    stage = workdir / "stage"
    env = build_env()
    env.update(toolchain.env())
    args = list(spec.configure_args)
    if toolchain.cross:
        if build_python is None:
            raise BuildFailedError(
                f"a build for {toolchain.machine.name} needs this machine's CPython"
                f" {spec.pin.version} to run (--with-build-python)"
            )
        cross_args, cross_env = cross_configuration(
            toolchain.machine.gnu_host, host_target().gnu_host, str(build_python)
        )
        # pip comes after `make install` (install_cross_pip), not from its ensurepip
        args = [a if a != "--with-ensurepip=install" else "--with-ensurepip=no" for a in args]
        args += cross_args
        env.update(cross_env)
    deps = None
    if libraries is not None:
        from relocpy.build.libraries import assemble

        deps = assemble(libraries, workdir / "deps")
        extra_args, extra_env = library_configuration(
            spec.pin.version_tuple, str(deps), spec.readline, exclude_libs=toolchain.name != "zig"
        )
        args += extra_args
        env.update(extra_env)
    env["LDFLAGS"] = " ".join(filter(None, [env.get("LDFLAGS", ""), HARDENING_LDFLAGS]))
    if spec.static:
        env.update(STATIC_ENV)
        env["LDFLAGS"] += f" {static_ldflags(spec.pie)}"
    elif toolchain.machine.libc == "musl":
        env.update(MUSL_FLOOR_CACHE_VARIABLES)
        env["LDFLAGS"] += f" {MUSL_DYNAMIC_LDFLAGS}"
    cflags = list(spec.extra_cflags)
    if spec.static and spec.pie:  # CPython compiles its core without -fPIC when not shared
        cflags.append("-fPIE")
    if toolchain.name == "zig":
        # CPython stamps __DATE__ into its build info; zig makes that an error by default.
        cflags.append("-Wno-error=date-time")
    if cflags:
        env["CFLAGS"] = " ".join(cflags)
    # Reproducible output: the build's dates come from the epoch, and debug info names a fixed
    # directory instead of this random one. CFLAGS_NODIST reaches CPython's own compiles but not
    # the flags sysconfig hands to extension builds.
    env["SOURCE_DATE_EPOCH"] = str(epoch)
    remap = " ".join(prefix_map_flags({str(workdir): BUILD_DIR_IN_DEBUG_INFO}))
    env["CFLAGS_NODIST"] = remap
    # An LTO link compiles again and writes the debug info then, naming the directory it runs
    # in: without the map there, the strings differ per work directory and so does their order.
    env["LDFLAGS_NODIST"] = remap
    # Compiler temp files live in the work dir, so nothing outlives an interrupted build.
    env["TMPDIR"] = str(workdir / "tmp")
    (workdir / "tmp").mkdir(exist_ok=True)
    reporter.step(f"configure ({spec.opt})")
    # The flags that reach the compiler through the environment, so a failed configure's log
    # says what it was given.
    shown = ("CC", "CFLAGS", "CFLAGS_NODIST", "CPPFLAGS", "LDFLAGS", "AR", "SOURCE_DATE_EPOCH")
    append_log(log, "environment: " + " ".join(f"{k}={env[k]!r}" for k in shown if k in env))
    run_logged(["./configure", *args], source, log, reporter, "configure", env)
    lacking = missing_optimisations((source / "Makefile").read_text(errors="replace"), spec.opt)
    if lacking:
        raise BuildFailedError(
            f"configure left out {' and '.join(lacking)} that --opt {spec.opt} asks for",
            hint=f"CPython's configure chooses them by the compiler's name ({toolchain.cc});"
            f" the log has its output: {log}",
        )
    if spec.pgo_profile is not None:
        reporter.step(f"PGO: counts from {spec.pgo_profile.name}, no training run")
        load_profile(spec.pgo_profile, source, profile_identity(spec, toolchain))
    reporter.step(f"make -j{spec.jobs}")
    make = [toolchain.make, f"-j{spec.jobs}", *spec.make_variables]
    try:
        run_logged(make, source, log, reporter, "make", env, PGO_MILESTONES)
    except BuildFailedError as exc:
        if not training_failed(exc.message, spec.opt):
            raise
        # From 3.13 a failed test fails the training (and with clang, before its counts are
        # merged). Seen: 3.13.5's test_generators fails inside every make-driven --pgo run
        # here, gcc's and clang's, and passes alone, in the same order or with the same
        # environment. The instrumented build
        # is done (its stamp is there): make runs the training once more, now as CPython up
        # to 3.12 did, not stopping for a failed test; the log keeps the first run's report.
        reporter.step("PGO: a training test failed (the log has it); training again, tolerant")
        tolerant = tolerant_profile_task(spec.pgo_training, spec.jobs)
        run_logged(
            [toolchain.make, f"-j{spec.jobs}", f"PROFILE_TASK={tolerant}"], source, log,
            reporter, "make", env, PGO_MILESTONES,
        )  # fmt: skip
    run = MakeRun(source, workdir, toolchain.make, log, reporter, env)
    static_python = None
    if not spec.static:  # a static build's python has libpython and every module inside
        reporter.step("linking python with libpython inside")
        static_python = link_static_python(run, spec.pie, spec.bolt)
    if spec.bolt and static_python is not None:
        given = source / f"{static_python.name}{BOLT_FDATA_SUFFIX}"
        bolt_executable(
            BoltRun(source, log, reporter, env),
            static_python,
            training_args(spec.pgo_training, spec.jobs),
            given if spec.pgo_profile is not None else None,
        )
    profile = None
    if spec.opt.startswith("pgo"):
        # after BOLT: the profile holds its counts too
        profile = workdir / f"profile{PROFILE_SUFFIX}"
        save_profile(source, profile, profile_identity(spec, toolchain), epoch)
    reporter.step("make install")
    run_logged(
        [toolchain.make, "install", f"DESTDIR={stage}"], source, log, reporter, "make install", env
    )
    if toolchain.cross:
        install_cross_pip(run, stage)
    staged = StagedBuild(spec, source, stage, log, time.monotonic() - start, profile)
    if static_python is not None:
        install_static_python(
            static_python, staged.prefix_dir, spec.pin.version_tuple, spec.free_threaded
        )
    else:
        finish_static_build(staged.prefix_dir)
    if deps is not None:
        share_openssl(run, staged.prefix_dir)
        install_tcltk_scripts(deps, staged.prefix_dir)
        install_included_headers(deps, staged.prefix_dir)
    return staged


# pip for a cross build's tree. CPython's `make install` would run ensurepip with the build
# machine's Python, which installs by that Python's own prefix (under DESTDIR at its path), or
# not at all where that Python has pip already. The same Python instead runs pip from its
# bundled wheel for the tree's prefix, with the Makefile's PYTHON_FOR_BUILD environment: the
# target's sysconfig data, so the scripts name `$(prefix)/bin/python3.X`, as natively. pip
# is found by name in the wheel's directory (as ensurepip does), so no build path is recorded.
_CROSS_PIP_RULE = """
relocpy-cross-pip:
\t$(PYTHON_FOR_BUILD) $(RELOCPY_PIP_WHEEL)/pip install --no-cache-dir --no-index --no-deps \\
\t\t--ignore-installed --no-warn-script-location --disable-pip-version-check \\
\t\t--root=$(DESTDIR)/ --prefix=$(prefix) --find-links=$(dir $(RELOCPY_PIP_WHEEL)) pip
"""


def install_cross_pip(run: MakeRun, stage: Path) -> None:
    """Install the bundled pip into a cross build's staged tree (see _CROSS_PIP_RULE)."""
    wheels = sorted((run.source / "Lib" / "ensurepip" / "_bundled").glob("pip-*.whl"))
    if len(wheels) != 1:
        raise BuildFailedError(f"CPython's source bundles {len(wheels)} pip wheels, not one")
    run.reporter.step(f"installing {wheels[0].name} with the build Python")
    run.rule(
        _CROSS_PIP_RULE,
        "relocpy-cross-pip",
        "pip",
        (f"DESTDIR={stage}", f"RELOCPY_PIP_WHEEL={wheels[0]}"),
    )


# The rule CPython uses for its own executable, with the library objects in place of
# -lpython: a copy of the executable (a venv made with --copies) then runs without finding
# libpython, and calls into the interpreter skip the PLT, as in Debian's own python3.
# RELOCPY_EXECUTABLE_LDFLAGS is -pie, or -no-pie for a position-dependent executable (see
# BuildSpec.pie): zig links executables position-dependent unless told, Debian's gcc PIE.
_STATIC_PYTHON_RULE = """
relocpy-static-python: Programs/python.o $(LIBRARY_OBJS)
\t$(LINKCC) $(PY_CORE_LDFLAGS) $(RELOCPY_EXECUTABLE_LDFLAGS) $(LINKFORSHARED) -o $@ \\
\t\tPrograms/python.o $(LIBRARY_OBJS) $(LIBS) $(MODLIBS) $(SYSLIBS)
"""


@dataclass(frozen=True)
class MakeRun:
    """How to run make in a configured CPython tree: the tree, a directory for our rule files,
    the make program, the build's log, its reporter and its environment."""

    source: Path
    workdir: Path
    make: str
    log: Path
    reporter: Reporter
    env: dict[str, str]

    def rule(
        self, rule_text: str, target: str, label: str, variables: tuple[str, ...] = ()
    ) -> Path:
        """Make `target` of a rule of ours read after CPython's own Makefile, so the rule has
        the build's variables and objects; returns the file it made (in the source tree)."""
        rule = self.workdir / f"{target}.mk"
        rule.write_text(rule_text)
        run_logged(
            [self.make, "-f", "Makefile", "-f", str(rule), *variables, target],
            self.source,
            self.log,
            self.reporter,
            label,
            self.env,
        )
        return self.source / target


def link_static_python(run: MakeRun, pie: bool = True, bolt: bool = False) -> Path:
    """Link `python` once more, with libpython's objects inside it; returns the executable.

    libpython3.X.so stays in the tree for programs that embed Python; extension modules do not
    link it (since 3.8), they resolve the C API from the executable (-export-dynamic).
    `pie=False` links a position-dependent executable (-no-pie), as Debian links its python3.
    `bolt` keeps the link's relocations, which BOLT needs to move functions.
    """
    flags = ["-pie" if pie else "-no-pie", *([BOLT_LINK_FLAGS] if bolt else [])]
    return run.rule(
        _STATIC_PYTHON_RULE,
        "relocpy-static-python",
        "link static python",
        (f"RELOCPY_EXECUTABLE_LDFLAGS={' '.join(flags)}",),
    )


def install_static_python(
    executable: Path, prefix: Path, version: tuple[int, ...], free_threaded: bool = False
) -> None:
    """Put the statically linked executable where `make install` put the shared one:
    `python3.13`, or `python3.13t` for a free-threaded build. There `make install` also
    hard-links `python3.13` to `python3.13t`; that name becomes a symlink to it, so both
    run the one executable (python-build-standalone's layout has the same two names)."""
    bindir = prefix / "bin"
    plain = f"python{version[0]}.{version[1]}"
    target = bindir / (f"{plain}t" if free_threaded else plain)
    if not target.is_file() or target.is_symlink():
        raise BuildFailedError(f"make install left no executable {target.name} in {bindir}")
    replace_keeping_mode(executable, target)
    if free_threaded:
        (bindir / plain).unlink(missing_ok=True)
        (bindir / plain).symlink_to(target.name)


def finish_static_build(prefix: Path) -> None:
    """A static build's tree: ctypes imports without dlopen (patch_ctypes_for_static), and
    nothing was left a shared object."""
    ctypes_init = next(prefix.glob("lib/python3*/ctypes/__init__.py"), None)
    if ctypes_init is None:
        raise BuildFailedError(f"make install left no ctypes package in {prefix}")
    try:
        ctypes_init.write_text(patch_ctypes_for_static(ctypes_init.read_text()))
    except ValueError as exc:
        raise BuildFailedError(f"cannot make ctypes work without dlopen: {exc}") from exc
    shared = sorted(p.name for p in prefix.glob("lib/python3*/lib-dynload/*.so"))
    if shared:
        raise BuildFailedError(
            f"a static build left {len(shared)} modules shared: {', '.join(shared[:5])}",
            hint="Modules/Setup.stdlib names them *shared*; the log has configure's output",
        )


def replace_keeping_mode(built: Path, target: Path) -> None:
    """Put `built` in place of the installed `target`, atomically, with `target`'s mode."""
    mode = target.stat().st_mode
    tmp = target.with_name(target.name + ".relocpy-tmp")
    shutil.copyfile(built, tmp)
    tmp.chmod(mode)
    tmp.replace(target)


# One shared object for ssl and hashlib: each would otherwise link its own copy of the static
# OpenSSL (4 MB of the stripped archive's 22). The objects are the ones CPython built (after
# PGO's rebuild, the optimised ones), linked as CPython links either module.
# 3.11+ keep each module's link flags in MODULE_<NAME>_LDFLAGS (3.13 has no OPENSSL_LIBS any
# more); 3.9 and 3.10 have only OPENSSL_LDFLAGS and OPENSSL_LIBS.
_OPENSSL_MODULES_RULE = """
RELOCPY_OPENSSL = $(or $(strip $(MODULE__SSL_LDFLAGS) $(MODULE__HASHLIB_LDFLAGS)),\\
\t$(OPENSSL_LDFLAGS) $(OPENSSL_LIBS))
relocpy-openssl-modules:
\t$(BLDSHARED) $(RELOCPY_OBJECTS) $(RELOCPY_OPENSSL) $(LIBS) -o $@
"""
OPENSSL_MODULE_SOURCES = ("_ssl", "_hashopenssl")


def openssl_module_objects(source: Path) -> list[Path] | None:
    """The object files of the ssl and hashlib modules: under Modules/ (3.11+, makesetup) or
    under build/temp.*/ (setup.py, before 3.11). None unless each is there exactly once."""
    objects = []
    for name in OPENSSL_MODULE_SOURCES:
        found = sorted(p for p in source.rglob(f"{name}.o") if p.parent.name == "Modules")
        if len(found) != 1:
            return None
        objects.append(found[0])
    return objects


def share_openssl(run: MakeRun, prefix: Path) -> bool:
    """Make `_hashlib` the same file as `_ssl`: one shared object that defines both modules
    (PyInit__ssl and PyInit__hashlib), with `_hashlib.*.so` a symlink to it. The dynamic
    loader maps a file once however it is named, so importing both loads OpenSSL once.

    A shared libcrypto grafted next to libpython would do the same, but under a soname that a
    host's OpenSSL can interpose (an embedding program that links its own libssl); the static
    copy, hidden inside one module, cannot clash with anything. Returns whether it was done.
    """
    dynload = next(prefix.glob("lib/python3*/lib-dynload"), None)
    if dynload is None:
        return False
    ssl = sorted(dynload.glob("_ssl.*so"))
    hashlib = sorted(dynload.glob("_hashlib.*so"))
    objects = openssl_module_objects(run.source)
    if len(ssl) != 1 or len(hashlib) != 1 or hashlib[0].is_symlink() or objects is None:
        append_log(
            run.log, f"ssl and hashlib stay apart: modules {ssl + hashlib}, objects {objects}"
        )
        return False
    run.reporter.step("linking ssl and hashlib into one module (one OpenSSL)")
    relative = " ".join(str(o.relative_to(run.source)) for o in objects)
    combined = run.rule(
        _OPENSSL_MODULES_RULE,
        "relocpy-openssl-modules",
        "link ssl and hashlib",
        (f"RELOCPY_OBJECTS={relative}",),
    )
    # A module may leave undefined what the interpreter provides, so the linker cannot catch a
    # missing library; what the two modules needed before is all the joined one may need.
    before = undefined_symbols(ssl[0]) | undefined_symbols(hashlib[0])
    unresolved = sorted(undefined_symbols(combined) - before)
    if unresolved:
        raise BuildFailedError(
            f"the joined ssl and hashlib module leaves {len(unresolved)} symbols undefined that"
            f" the separate modules had linked in: {', '.join(unresolved[:5])}",
            hint=f"the OpenSSL link flags did not reach the link; its command is in {run.log}",
        )
    replace_keeping_mode(combined, ssl[0])
    hashlib[0].unlink()
    hashlib[0].symlink_to(ssl[0].name)
    return True


def install_included_headers(deps: Path, prefix: Path) -> None:
    """Headers that Python.h itself includes but a host may lack go next to Python.h.

    Python.h before 3.10 includes <crypt.h> when the build had it; hosts whose libc6-dev no
    longer carries it (Debian sid) could not compile any extension against the tree.
    """
    pyconfig = next(prefix.glob("include/python3*/pyconfig.h"), None)
    crypt_h = deps / "include" / "crypt.h"
    if pyconfig is None or not crypt_h.is_file():
        return
    python_h = pyconfig.with_name("Python.h").read_text(errors="replace")
    if "#include <crypt.h>" in python_h:
        shutil.copy2(crypt_h, pyconfig.with_name("crypt.h"))


def install_tcltk_scripts(deps: Path, prefix: Path) -> None:
    """Tcl/Tk's script libraries go to lib/tcl8.6 and lib/tk8.6 of the tree, where Tcl looks
    relative to the executable once the compiled-in path is not there."""
    for name in ("tcl8.6", "tk8.6"):
        source = deps / "lib" / name
        if source.is_dir():
            shutil.copytree(source, prefix / "lib" / name, dirs_exist_ok=True)
