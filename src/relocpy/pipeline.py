"""The verbs as library functions: build, repair, verify, versions.

Each composes the stages; the CLI only parses arguments and prints what these return.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from relocpy import __version__
from relocpy.build.buildpython import (
    build_python_path,
    build_python_requirements,
    check_build_python,
    ensure_build_python,
)
from relocpy.build.cpython import BuildSpec, build_cpython, profile_identity
from relocpy.build.libraries import (
    BuiltLibrary,
    build_libraries,
    build_requirements,
    describe,
    libraries_for,
    library_cflags,
    spec_cflags,
)
from relocpy.build.profile import SUFFIX as PROFILE_SUFFIX
from relocpy.build.profile import check_identity as check_profile_identity
from relocpy.build.profile import read_identity as read_profile_identity
from relocpy.build.toolchain import HOST_LIBRARY_HEADERS, Toolchain, host_toolchain
from relocpy.build.zig import DEFAULT_GLIBC, zig_toolchain
from relocpy.core import emulation, home
from relocpy.core.checksums import sha256_file
from relocpy.core.errors import BuildFailedError, ChecksumMismatchError, RelocpyError
from relocpy.core.preflight import Requirement, header, program, require
from relocpy.core.progress import QuietReporter, Reporter
from relocpy.core.targets import MUSL_VERSION, Target, host_target, is_cross, parse_target
from relocpy.core.tree import InterpreterTree, inspect_tree
from relocpy.elf.policy import get_policy
from relocpy.package.archives import (
    PackagedArchives,
    archive_stem,
    bundled_libraries,
    flavour_name,
    include_in_install_only,
    package_tree,
    pin_timestamps,
    strip_package,
    strip_program,
    target_triple,
    uncheck_hash_pycs,
    write_test_suite,
)
from relocpy.package.pybi import write_pybi
from relocpy.recipes.cpython import MUSL_FLOOR, OPT_LEVELS, PGO_TRAININGS
from relocpy.repair.cacerts import add_ca_fallback
from relocpy.repair.graft import GRAFTED_ORIGIN
from relocpy.repair.relocate import default_policy, recompile, repair_in_place, writable_directory
from relocpy.sources.catalog import SourcePin, load_cpython_pins, resolve_cpython
from relocpy.sources.fetch import (
    LocalFileMirror,
    Mirror,
    SourceCache,
    fetch,
    resolve_reachable,
)
from relocpy.sources.loaders import enable_emulation
from relocpy.verify.checks import check_required_modules


def seed_cache(request: str, file: Path, cache: SourceCache | None = None) -> Path:
    """Put a local copy of a release tarball into the cache, after checking it against its pin.

    The file's own sha256 picks the release (so `fetch 3.13 --file Python-3.13.5.tar.xz` is
    3.13.5, not the newest 3.13); it must be a pinned release that matches `request`."""
    from relocpy.core.checksums import sha256_file
    from relocpy.core.versions import matches, parse_request

    file = Path(file)
    if file.is_dir():
        raise RelocpyError(f"{file} is a directory", hint="give the tarball itself with --file")
    if not file.is_file():
        raise RelocpyError(f"{file} does not exist", hint="give the path of the tarball")
    wanted = parse_request(request)
    digest = sha256_file(file)
    pins = load_cpython_pins()
    pin = next((p for p in pins if p.sha256 == digest), None)
    if pin is None:
        named = next((p for p in pins if p.filename == file.name), None)
        why = (
            f"; {named.version}'s pin is {named.sha256}: the file is damaged or not the upstream"
            " release"
            if named
            else ""
        )
        raise ChecksumMismatchError(
            f"{file.name} (sha256 {digest}) is no pinned CPython release{why}",
            hint="download it again from python.org, or run `relocpy versions` to list the pins",
        )
    if not matches(pin.version, "default", wanted):
        raise RelocpyError(
            f"{file.name} is CPython {pin.version}, not {request}",
            hint=f"run `relocpy fetch {pin.version} --file {file}`",
        )
    return fetch(pin, mirrors=[LocalFileMirror(file)], cache=cache)


# Files in archives get this mtime when neither SOURCE_DATE_EPOCH nor a dated build tag says
# otherwise (1980-01-01: zip files, and so wheels built from the tree, cannot go earlier).
DEFAULT_EPOCH = 315532800


def source_date_epoch(tag: str) -> int:
    """SOURCE_DATE_EPOCH if set; else midnight UTC of a YYYYMMDD build tag; else DEFAULT_EPOCH."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return int(epoch)
    try:
        day = _dt.datetime.strptime(tag, "%Y%m%d").replace(tzinfo=_dt.UTC)
    except ValueError:
        return DEFAULT_EPOCH
    return int(day.timestamp())


def default_build_tag() -> str:
    """YYYYMMDD of SOURCE_DATE_EPOCH if set (reproducible), else of today (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (
        _dt.datetime.fromtimestamp(int(epoch), _dt.UTC)
        if epoch and epoch.isdigit()
        else _dt.datetime.now(_dt.UTC)
    )
    return moment.strftime("%Y%m%d")


@dataclass(frozen=True)
class BuildResult:
    archives: PackagedArchives
    log: Path
    seconds: float
    # CPython's own tests, to unpack over the install_only tree (None: a static build, which
    # leaves the test package and its modules out)
    test_suite: Path | None
    pybi: Path | None = None  # the same tree as a PEP 711 .pybi (`build(pybi=True)`)
    pgo_profile: Path | None = None  # a PGO build's profile, to rebuild the same bytes from


def build(
    request: str,
    out_dir: Path,
    *,
    opt: str = "noopt",
    jobs: int | None = None,
    build_tag: str | None = None,
    mirrors: list[Mirror] | None = None,
    reporter: Reporter | None = None,
    keep_work: bool = False,
    toolchain: str = "zig",
    glibc: str | None = None,
    libs: str = "source",
    readline: str = "libedit",
    march: str = "x86-64",
    cflags: tuple[str, ...] = (),
    free_threaded: bool = False,
    log: Path | None = None,
    stripped: bool = True,
    pgo_training: str = "pgo",
    pie: bool = True,
    also_needs: tuple[Requirement, ...] = (),
    pybi: bool = False,
    pgo_profile: Path | None = None,
    bolt: bool = False,
    target: str | None = None,
    build_python: Path | None = None,
    static: bool = False,
) -> BuildResult:
    """Build CPython `request` from its pinned source and write relocatable archives to `out_dir`.

    The default is every library from source, built with zig for glibc 2.17; `toolchain="gcc"`
    targets the host's glibc, and `libs="host"` links the host's -dev libraries and grafts them.
    `march` (x86-64-v2, -v3) and `cflags` apply to CPython and to its libraries; the archive's
    triple names the CPU level. `stripped` also writes the install_only_stripped pair.
    `pgo_training` ("pgo" or "extended", see recipes.cpython.PGO_TRAININGS) is what a
    profile-guided build trains on. `pie=False` links a position-dependent executable.
    `pybi` also writes the install_only tree as a PEP 711 `.pybi`. A PGO build writes its
    profile beside the archives (`<stem>.pgo-profile.tar.zst`); given as `pgo_profile` to a
    build of the same spec, it replaces the training and the build repeats those bytes.
    `bolt` (clang, PGO) lays out the interpreter's code by BOLT's profile of the same training.
    `target` (`aarch64-linux-gnu`; None: this machine) cross-compiles with zig, with this
    machine's CPython of the same version as the build Python, and runs the result under
    qemu-user for the checks that follow the build. `build_python` is that CPython, given
    (relocpy's own x86_64 build of the version, say); else relocpy builds it once.
    `static` (a musl target) builds one static executable with every extension module in it,
    which runs with no C library on the machine at all, and cannot load extension modules.
    Before anything is created, every program, aclocal macro and header the build needs (plus
    `also_needs`, what the caller does next) is checked, and all that is missing is named.
    Nothing appears in `out_dir` unless every step succeeded.
    """
    reporter = reporter or QuietReporter()
    start = time.monotonic()
    pin = resolve_cpython(request)  # an unknown version fails before anything else
    if opt not in OPT_LEVELS:
        raise ValueError(f"unknown --opt {opt!r}; choose one of {', '.join(OPT_LEVELS)}")
    if free_threaded and pin.version_tuple[:2] < (3, 13):
        raise RelocpyError(
            f"free-threaded builds exist from CPython 3.13 on, not {pin.version}",
            hint="drop --free-threaded or ask for 3.13",
        )
    if pgo_training not in PGO_TRAININGS:
        raise ValueError(
            f"unknown PGO training {pgo_training!r}; choose one of {', '.join(PGO_TRAININGS)}"
        )
    if pgo_training != "pgo" and not opt.startswith("pgo"):
        raise RelocpyError(
            f"--pgo-training {pgo_training} trains a profile-guided build, and --opt {opt} is not",
            hint="add --opt pgo+lto, or drop --pgo-training",
        )
    if pgo_profile is not None:
        if not opt.startswith("pgo"):
            raise RelocpyError(
                f"--pgo-profile gives a profile-guided build its counts, and --opt {opt} is not",
                hint="add --opt pgo+lto (the spec the profile was trained on)",
            )
        if not Path(pgo_profile).is_file():
            raise RelocpyError(
                f"no PGO profile at {pgo_profile}",
                hint=f"give the {PROFILE_SUFFIX} file an earlier build wrote beside its archives",
            )
        read_profile_identity(Path(pgo_profile))  # not a profile at all: say so before building
    machine = parse_target(target)
    check_toolchain_choice(toolchain, glibc, libs, opt, bolt, machine, march)
    check_flavour(machine, static, pin)
    if pybi and machine.libc == "musl":
        raise RelocpyError(
            "--pybi writes manylinux platform tags, and a musl build needs musllinux ones",
            hint="drop --pybi for a musl target (its archives are written as usual)",
        )
    pin = resolve_reachable(request, reporter)
    needs = build_needs(
        pin, toolchain, glibc, libs, readline, march, cflags, stripped, bolt, opt, machine,
        build_python is not None,
    )  # fmt: skip
    require([*needs, *also_needs], f"the build of CPython {pin.version}")
    # before hours of building: a machine that cannot run it says so
    enable_emulation(machine, reporter, static)
    existed = Path(out_dir).exists()
    try:
        out_dir = writable_directory(out_dir)
        tag = build_tag or default_build_tag()
        triple = target_triple(march) if not is_cross(machine) else machine.triple
        flavour = flavour_name("install_only", free_threaded, static)
        stem = archive_stem(pin.version, tag, flavour, triple)
        if log is None:
            logs = home.cache_dir() / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            log = logs / f"{stem}.{os.getpid()}.log"
        log.write_text(f"relocpy {__version__} build of {pin.version} ({opt})\n")
        tools = select_toolchain(toolchain, glibc, libs, reporter, log, opt, machine)
        spec = BuildSpec(
            pin,
            opt,
            jobs or max(1, os.cpu_count() or 1),
            libs,
            readline,
            march,
            tuple(cflags),
            free_threaded,
            pgo_training,
            pie,
            Path(pgo_profile).resolve() if pgo_profile is not None else None,
            bolt,
            static,
        )
        if spec.pgo_profile is not None:  # before the libraries are built, not after
            check_profile_identity(spec.pgo_profile, profile_identity(spec, tools))
        runs_on = f"glibc {tools.glibc}" if tools.glibc else "this host's glibc"
        if machine.libc == "musl":
            runs_on = f"musl {MUSL_VERSION}, static" if static else f"musl {MUSL_FLOOR} or newer"
        if tools.cross:
            runs_on = f"{machine.arch}, {runs_on}"
        reporter.step(
            f"building CPython {pin.version} ({opt}, {tools.name}, {runs_on}, {libs} libraries);"
            f" log: {log}"
        )
        libraries = None
        if libs == "source":
            libraries = _source_libraries(pin, spec, tools, reporter)

        tarball = fetch(pin, mirrors=mirrors, reporter=reporter, log=log)
        if build_python is not None:
            build_python = check_build_python(Path(build_python), pin)
        elif tools.cross:
            build_python = ensure_build_python(pin, tarball, reporter, log, spec.jobs)
        workdir = Path(tempfile.mkdtemp(prefix=f"relocpy-build-{pin.version}-"))
        partial = Path(tempfile.mkdtemp(prefix=".relocpy-partial-", dir=out_dir))
        try:
            staged = build_cpython(
                spec, tarball, workdir, tools, reporter, log, libraries, source_date_epoch(tag),
                build_python,
            )  # fmt: skip
            original = inspect_tree(staged.prefix_dir)
            if libraries is not None:
                # configure recorded where the libraries were assembled (-I, -L, --with-openssl=):
                # that directory is a build path like the source tree, and goes the same way.
                # Debug info also names the work directory itself.
                extra = (str(workdir / "deps"), str(workdir))
                original = dataclasses.replace(original, build_dirs=(*original.build_dirs, *extra))
            if static:  # no library at all: nothing to graft, nothing to allow
                policy = get_policy("static")
            elif machine.libc == "musl":  # musl's libc.so only
                policy = get_policy("musllinux_1_2")
            elif tools.glibc:
                policy = get_policy(f"manylinux_{tools.glibc.replace('.', '_')}")
            else:
                policy = default_policy()
            report = repair_in_place(
                staged.prefix_dir, original, policy=policy, reporter=reporter, log=log
            )
            tree = inspect_tree(staged.prefix_dir)
            if libraries is not None:
                _finish_self_contained(tree, report.grafted, log)
            missing = check_required_modules(tree)
            if not missing.ok:
                raise BuildFailedError(
                    f"CPython {pin.version} built without standard modules; {missing.detail}",
                    hint=f"the log says why: {log}",
                )
            flavours = "install_only and install_only_stripped" if stripped else "install_only"
            reporter.step(f"writing archives ({flavours}; .tar.gz, .tar.zst)")
            metadata = _build_metadata(
                pin,
                spec,
                tools,
                report.grafted,
                report.grafted_from,
                [str(staged.source_dir), str(staged.stage_dir), str(workdir)],
                staged.seconds,
                libraries,
            )
            profile_path = None
            if staged.profile is not None:
                profile_path = partial / f"{stem}{PROFILE_SUFFIX}"
                shutil.copyfile(staged.profile, profile_path)
                metadata["pgo_profile"] = {
                    "file": profile_path.name,
                    "sha256": sha256_file(profile_path),
                    "given": pgo_profile is not None,
                }
            tree = inspect_tree(staged.prefix_dir)
            epoch = source_date_epoch(tag)
            pin_timestamps(tree.root, epoch)
            uncheck_hash_pycs(tree.root)
            packaged = package_tree(
                tree,
                partial,
                build=tag,
                metadata=metadata,
                mtime=epoch,
                triple=triple,
                free_threaded=free_threaded,
                stripped=stripped,
                strip=strip_program(machine),
                static=static,
            )
            tests = None
            if not static:  # configure's --disable-test-modules installs no `test` package
                tests = write_test_suite(
                    tree, partial, build=tag, mtime=epoch, triple=triple,
                    free_threaded=free_threaded,
                )  # fmt: skip
            pybi_path = None
            if pybi:
                reporter.step("writing the .pybi (PEP 711)")
                pybi_path = write_pybi(
                    tree.root,
                    partial,
                    version=tree.version,
                    glibc=_floor(packaged.info.get("glibc_floor")),
                    include=lambda rel: include_in_install_only(rel, tree.short_version),
                    mtime=epoch,
                    build=tag,
                    free_threaded=free_threaded,
                    arch=machine.arch,
                )
            shutil.copyfile(log, partial / f"{stem}.log")
            final = _publish(packaged, partial, out_dir)
            reporter.step(f"done in {time.monotonic() - start:.0f} s: {final.gz.name}")
            reporter.step(flavour_note(opt))
            return BuildResult(
                final,
                out_dir / f"{stem}.log",
                time.monotonic() - start,
                out_dir / tests.name if tests else None,
                out_dir / pybi_path.name if pybi_path else None,
                out_dir / profile_path.name if profile_path else None,
            )
        finally:
            shutil.rmtree(partial, ignore_errors=True)
            if keep_work:
                reporter.step(f"kept the build directory {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    except BaseException:
        if not existed:  # a rejected build leaves no empty --out behind
            with contextlib.suppress(OSError):
                Path(out_dir).rmdir()
        raise


def build_libraries_for(
    request: str,
    *,
    toolchain: str = "zig",
    glibc: str | None = None,
    readline: str = "libedit",
    march: str = "x86-64",
    cflags: tuple[str, ...] = (),
    opt: str = "noopt",
    jobs: int | None = None,
    reporter: Reporter | None = None,
    target: str | None = None,
) -> list[BuiltLibrary]:
    """Only the third-party libraries a `build` with these options links, into the library
    cache: a CI job that runs first, so the builds that follow share them."""
    reporter = reporter or QuietReporter()
    pin = resolve_cpython(request)
    machine = parse_target(target)
    check_toolchain_choice(toolchain, glibc, "source", opt, target=machine, march=march)
    logs = home.cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"libraries-{pin.version}.{os.getpid()}.log"
    log.write_text(f"relocpy {__version__}: the libraries of CPython {pin.version}\n")
    tools = select_toolchain(toolchain, glibc, "source", reporter, log, opt, machine)
    spec = BuildSpec(
        pin, opt, jobs or max(1, os.cpu_count() or 1), readline=readline, march=march,
        cflags=tuple(cflags),
    )  # fmt: skip
    return _source_libraries(pin, spec, tools, reporter)


def _source_libraries(
    pin: SourcePin, spec: BuildSpec, tools: Toolchain, reporter: Reporter
) -> list[BuiltLibrary]:
    """The libraries a `spec` build of `pin` links, each built (or found in the library cache)
    with `tools`: one step that `build` and `build_libraries_for` share."""
    return build_libraries(
        libraries_for(pin.version_tuple, spec.readline, tools.machine),
        tools,
        reporter,
        spec.jobs,
        library_cflags(spec.extra_cflags),
    )


def toolchain_identity(name: str, glibc: str | None, target: Target | None = None) -> str:
    """What names a toolchain in build hashes, without installing or building anything."""
    if name == "zig":
        from relocpy.build.zig import zig_identity

        return zig_identity(glibc or DEFAULT_GLIBC, target)
    from relocpy.build.toolchain import compiler_identity

    if name == "clang" or glibc is not None:
        from relocpy.build.sysroot import sysroot_identity

        return sysroot_identity(glibc or DEFAULT_GLIBC, name)
    return compiler_identity(os.environ.get("CC") or "cc")


def build_needs(
    pin: SourcePin,
    toolchain: str,
    glibc: str | None,
    libs: str,
    readline: str,
    march: str = "x86-64",
    cflags: tuple[str, ...] = (),
    stripped: bool = True,
    bolt: bool = False,
    opt: str = "noopt",
    target: Target | None = None,
    build_python_given: bool = False,
) -> list[Requirement]:
    """Every host program, aclocal macro and header a build needs, for the preflight.

    Libraries already in the library cache need nothing; zig itself comes from PyPI.
    """
    who = f"CPython {pin.version}"
    needs = [program("make", who)]
    machine = target or host_target()
    if is_cross(machine):
        needs += emulation.emulation_requirements(machine, f"{who} for {machine.name}")
        if not build_python_given and not build_python_path(pin).is_file():
            needs += build_python_requirements(who)
    if toolchain == "gcc":
        compiler = os.environ.get("CC", "cc").split()[0]
        needs.append(Requirement("C compiler", compiler, "gcc", f"{who} (--toolchain gcc)"))
    elif toolchain == "clang":
        from relocpy.build.sysroot import llvm_requirements

        needs += llvm_requirements(f"{who} (--toolchain clang)", bolt, opt.startswith("pgo"))
    if stripped:
        strip = strip_program(machine)
        needs.append(
            Requirement(
                "program", strip, strip_package(strip), "the install_only_stripped archives"
            )
        )
    if libs == "host":
        from relocpy.build.toolchain import HOST_LIBRARY_HEADERS

        needs += [header(h.header, h.apt_package, h.purpose) for h in HOST_LIBRARY_HEADERS]
    else:
        recipes = libraries_for(pin.version_tuple, readline, machine)
        flags = library_cflags(spec_cflags(march, cflags))
        identity = toolchain_identity(toolchain, glibc, machine)
        needs += build_requirements(recipes, identity, flags)
    return needs


def check_flavour(machine: Target, static: bool, pin: SourcePin) -> None:
    """Refuse a build flavour the target cannot have: static needs musl (glibc's static
    programs still load its NSS modules at run time) and CPython 3.11 (Setup.stdlib)."""
    if static and machine.libc != "musl":
        raise RelocpyError(
            f"--static builds one executable with no C library to load, which takes musl,"
            f" and --target {machine.name} is glibc",
            hint=f"use --target {machine.arch}-linux-musl --static",
        )
    if static and pin.version_tuple[:2] < (3, 11):
        raise RelocpyError(
            f"static builds take CPython 3.11 or newer (Modules/Setup.stdlib), not {pin.version}",
            hint="ask for 3.11 or newer",
        )


def check_toolchain_choice(
    name: str,
    glibc: str | None,
    libs: str,
    opt: str,
    bolt: bool = False,
    target: Target | None = None,
    march: str = "x86-64",
) -> None:
    """Refuse a toolchain, glibc, libraries and optimisation combination that cannot build."""
    if libs not in ("source", "host"):
        raise RelocpyError(f"unknown --libs {libs!r}", hint="choose source or host")
    machine = target or host_target()
    if is_cross(machine):
        if name != "zig":
            raise RelocpyError(
                f"--target {machine.name} is cross-compiled with zig, the one toolchain here"
                f" that has {machine.arch}'s headers and C library stubs",
                hint=f"use --toolchain zig --target {machine.name}",
            )
        if libs != "source":
            raise RelocpyError(
                f"--libs host links this machine's libraries, which are not {machine.arch}'s",
                hint="build the libraries (--libs source)",
            )
        if march != "x86-64" and machine.arch != "x86_64":
            raise RelocpyError(
                f"--march {march} is an x86-64 level, and --target {machine.name} is not x86-64",
                hint="drop --march",
            )
        if machine.libc == "musl" and glibc is not None:
            raise RelocpyError(
                f"--glibc {glibc} sets a glibc floor, and --target {machine.name} links musl",
                hint="drop --glibc",
            )
    if bolt and name != "clang":
        raise RelocpyError(
            f"--bolt needs --toolchain clang: BOLT rewrites what LLVM's lld links (with the"
            f" relocations it keeps), and --toolchain {name} links with another linker",
            hint="use --toolchain clang --opt pgo+lto --bolt",
        )
    if bolt and not opt.startswith("pgo"):
        raise RelocpyError(
            f"--bolt trains on the same run as PGO, and --opt {opt} is not profile-guided",
            hint="use --opt pgo+lto --bolt",
        )
    if name == "zig":
        if opt != "noopt":
            # Measured with zig 0.17.1: `zig cc -fprofile-instr-generate` links, but the program
            # writes no .profraw (zig ships no profile runtime), so there is nothing to train on.
            # CPython's configure picks its PGO and LTO flags by the compiler's name (*gcc*,
            # *clang*), and zig's wrapper is neither: it would build without them, silently.
            raise RelocpyError(
                f"--opt {opt} needs gcc: zig cannot do profile-guided optimisation (its"
                " instrumented programs write no profile), and CPython's configure does not"
                " take zig for a compiler it can do LTO with",
                hint="use --toolchain gcc --glibc 2.17 or --toolchain clang: the same glibc"
                " floor, with PGO and LTO",
            )
        if libs == "host":
            raise RelocpyError(
                "--libs host links this host's libraries, which need this host's glibc",
                hint="use --toolchain gcc with --libs host, or build the libraries (--libs source)",
            )
    elif name == "clang":
        if libs == "host":
            raise RelocpyError(
                "--toolchain clang builds for an old glibc (default 2.17), and --libs host links"
                " this host's libraries, which need this host's glibc",
                hint="build the libraries (--libs source), or use --toolchain gcc --libs host",
            )
    elif name == "gcc":
        if glibc is not None and libs == "host":
            raise RelocpyError(
                f"--libs host links this host's libraries, which need this host's glibc,"
                f" not glibc {glibc}",
                hint="build the libraries (--libs source), or drop --glibc",
            )
    else:
        raise RelocpyError(f"unknown toolchain {name!r}", hint="choose zig, gcc or clang")


def select_toolchain(
    name: str,
    glibc: str | None,
    libs: str,
    reporter: Reporter,
    log: Path,
    opt: str = "noopt",
    target: Target | None = None,
) -> Toolchain:
    """The toolchain for a build, after checking the combination makes sense."""
    check_toolchain_choice(name, glibc, libs, opt, target=target)
    if name == "zig":
        machine = target or host_target()
        return zig_toolchain(glibc or machine.glibc_floor, reporter, log, target)
    if name == "clang":
        from relocpy.build.sysroot import clang_glibc_toolchain

        return clang_glibc_toolchain(glibc or DEFAULT_GLIBC, reporter, log)
    if glibc is not None:
        from relocpy.build.sysroot import gcc_glibc_toolchain

        return gcc_glibc_toolchain(glibc, reporter, log)
    headers = HOST_LIBRARY_HEADERS if libs == "host" else HOST_LIBRARY_HEADERS[:1]
    return host_toolchain(headers=headers)


def _finish_self_contained(tree: InterpreterTree, grafted: dict[str, str], log: Path) -> None:
    """A tree with its own libraries needs nothing grafted, and gets the CA fallback."""
    if grafted:
        raise BuildFailedError(
            f"the build links host libraries although every library was built here: "
            f"{', '.join(sorted(grafted))}",
            hint=f"a recipe did not take effect; the log says which module linked them: {log}",
        )
    ssl_py = add_ca_fallback(tree.stdlib)
    recompile(tree, [ssl_py], log)


def _build_metadata(
    pin: SourcePin,
    spec: BuildSpec,
    tools: Toolchain,
    grafted: dict[str, str],
    grafted_from: dict[str, str],
    build_paths: list[str],
    seconds: float,
    libraries: list[BuiltLibrary] | None,
) -> dict[str, object]:
    host_libraries = bundled_libraries(grafted, grafted_from)
    return {
        "relocpy_version": __version__,
        "source": {
            "filename": pin.filename,
            "sha256": pin.sha256,
            "url": pin.urls[0] if pin.urls else None,
        },
        "build_options": {
            "opt": spec.opt,
            "configure_args": spec.configure_args,
            "toolchain": tools.name,
            "compiler": tools.identity,
            "glibc_target": tools.glibc,
            "libs": spec.libs,
            "readline": spec.readline if spec.libs == "source" else None,
            "march": spec.march,
            "target": tools.machine.triple,
            "cflags": list(spec.cflags),
            "free_threaded": spec.free_threaded,
            "pgo_training": spec.pgo_training if spec.opt.startswith("pgo") else None,
            "pie": spec.pie,
            "bolt": spec.bolt,
            "static": spec.static,
        },
        "flavour": flavour_note(spec.opt),
        "bundled_libraries": [
            {
                "soname": lib.soname,
                "file": f"lib/{lib.file}",
                "package": lib.package,
                "version": lib.version,
                "license": lib.license,
                "origin": GRAFTED_ORIGIN,
            }
            for lib in host_libraries
        ]
        + [{**lib, "origin": "built from source (static)"} for lib in describe(libraries or [])],
        "build_paths": build_paths,
        "build_seconds": round(seconds, 1),
    }


# The flavour the release archives are built as (examples/release.toml), and what the
# default flavour costs at run time against it: bench/results/issue6.md and issue18.md.
RELEASE_FLAVOUR = "--toolchain gcc --glibc 2.17 --opt pgo+lto --no-pie"
RELEASE_COMMAND = "relocpy matrix build examples/release.toml"


def flavour_note(opt: str) -> str:
    """What a build of optimisation `opt` is for, as its summary and metadata say it."""
    if opt == "noopt":
        return (
            "noopt: quick to build (no training run), and 20-30% slower than Debian's own"
            f" python3 on bench/workloads.py; the release flavour is `{RELEASE_FLAVOUR}`"
            f" ({RELEASE_COMMAND})"
        )
    return f"{opt}: optimised; the release flavour is `{RELEASE_FLAVOUR}`"


def _floor(text: object) -> tuple[int, ...] | None:
    """package_tree's measured `glibc_floor` ("2.17") as numbers (not measured twice)."""
    return tuple(int(p) for p in text.split(".")) if isinstance(text, str) else None


def _publish(packaged: PackagedArchives, partial: Path, out_dir: Path) -> PackagedArchives:
    """Move finished files out of the partial dir; the metadata JSON goes last."""
    names = sorted(p.name for p in partial.iterdir() if p != packaged.metadata)
    for name in [*names, packaged.metadata.name]:
        os.replace(partial / name, out_dir / name)
    return PackagedArchives(
        out_dir / packaged.gz.name,
        out_dir / packaged.zst.name,
        out_dir / packaged.metadata.name,
        packaged.info,
        out_dir / packaged.stripped_gz.name if packaged.stripped_gz else None,
        out_dir / packaged.stripped_zst.name if packaged.stripped_zst else None,
        out_dir / packaged.sbom.name if packaged.sbom else None,
    )


def read_build_output(out_dir: Path) -> BuildResult:
    """The BuildResult of a finished build's output directory (its one install_only build)."""
    out_dir = Path(out_dir)
    # install_only, or with the build's options: freethreaded+install_only, static+install_only
    metadata = sorted(p for p in out_dir.glob("cpython-*install_only.json"))
    if len(metadata) != 1:
        raise RelocpyError(
            f"{out_dir} holds {len(metadata)} install_only builds, not one",
            hint="point at the --out directory of one `relocpy build`",
        )
    info = json.loads(metadata[0].read_text())
    stem = metadata[0].name.removesuffix(".json")

    def beside(suffix: str) -> Path | None:
        path = out_dir / f"{stem}{suffix}"
        return path if path.is_file() else None

    def stripped(suffix: str) -> Path | None:
        path = out_dir / f"{stem}_stripped{suffix}"
        return path if path.is_file() else None

    gz, zst = beside(".tar.gz"), beside(".tar.zst")
    if gz is None or zst is None:
        raise RelocpyError(f"{out_dir} lacks the archives its {metadata[0].name} names")
    archives = PackagedArchives(
        gz, zst, metadata[0], info, stripped(".tar.gz"), stripped(".tar.zst"), beside(".cdx.json")
    )
    pybis = sorted(out_dir.glob("*.pybi"))
    profile = beside(PROFILE_SUFFIX)
    suite = out_dir / f"{stem.removesuffix('install_only')}test_suite.tar.gz"
    return BuildResult(
        archives,
        out_dir / f"{stem}.log",
        float(info.get("build_seconds", 0.0)),
        suite if suite.is_file() else None,  # a static build writes none
        pybis[0] if len(pybis) == 1 else None,
        profile,
    )
