"""Third-party libraries built from source, static and position-independent, cached by input hash.

A library's key hashes its recipe, its dependencies' keys, the toolchain and the flags, so a
second build of any CPython with the same inputs re-uses it; outputs live in `cache/libs/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from relocpy.build.toolchain import Toolchain
from relocpy.core import home
from relocpy.core.errors import RelocpyError
from relocpy.core.preflight import Requirement, require
from relocpy.core.progress import QuietReporter, Reporter
from relocpy.core.runner import (
    CommandGroup,
    build_env,
    prefix_map_flags,
    unpack_source,
)
from relocpy.core.targets import Target, host_target, is_cross
from relocpy.recipes.library import LIBRARY_PREFIX, LibraryBuild, LibraryRecipe
from relocpy.recipes.libs import RECIPES
from relocpy.sources.catalog import SourcePin
from relocpy.sources.debian import unpack_deb
from relocpy.sources.fetch import fetch

# Bump when the steps below change what a library build produces: every cached key changes.
LIBRARY_BUILD_LOGIC = "2"  # 2: fixed work directory, -ffile-prefix-map, SOURCE_DATE_EPOCH
LIBRARY_EPOCH = 315532800  # 1980-01-01, SOURCE_DATE_EPOCH of every library build
BASE_CFLAGS = ("-O2", "-fPIC", "-fvisibility=hidden")
READLINE_CHOICES = ("libedit", "readline")

# Seconds each build took with zig on 2 cores (library.json of a cold `relocpy build 3.13`;
# CPython's own: configure to packaging, noopt and pgo+lto): what a build's estimate adds up.
TYPICAL_SECONDS = {
    "zlib": 12, "bzip2": 3, "xz": 24, "libffi": 106, "openssl": 143, "sqlite": 72,
    "ncurses": 36, "readline": 15, "libedit": 11, "libuuid": 29, "gdbm": 12, "mpdecimal": 7,
    "expat": 17, "libxcrypt": 30, "xorgproto": 1, "xtrans": 1, "xcb-proto": 2,
    "pthread-stubs": 1, "libxau": 1, "libxcb": 20, "libx11": 66, "tcl": 55, "tk": 29,
    "cpython-noopt": 300, "cpython-pgo": 1800,
}  # fmt: skip


@dataclass(frozen=True)
class BuiltLibrary:
    recipe: LibraryRecipe
    key: str
    prefix: Path  # the library's own install tree (include/, lib/, share/)


def libraries_for(
    version: tuple[int, ...], readline: str = "libedit", target: Target | None = None
) -> list[LibraryRecipe]:
    """The recipes a CPython version links, dependencies first, for a build that runs on
    `target` (None: this machine)."""
    if readline not in READLINE_CHOICES:
        raise RelocpyError(
            f"unknown readline implementation {readline!r}",
            hint=f"choose one of {', '.join(READLINE_CHOICES)}",
        )
    if readline == "libedit" and version[:2] < (3, 10):
        readline = "readline"  # CPython learnt --with-readline=editline in 3.10
    skip = {"libedit", "readline"} - {readline}
    wanted = [r.name for r in RECIPES.values() if r.name not in skip and r.used_by(version)]
    machine = target or host_target()
    return [recipe.for_target(machine) for recipe in dependency_closure(wanted)]


def dependency_closure(names: Iterable[str]) -> list[LibraryRecipe]:
    """`names` and everything they depend on, each after its dependencies."""
    ordered: list[LibraryRecipe] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in path:
            raise RelocpyError(f"dependency cycle: {' -> '.join((*path, name))}")
        if name not in RECIPES:
            raise RelocpyError(f"unknown library {name!r}; known: {', '.join(sorted(RECIPES))}")
        for dep in RECIPES[name].depends:
            visit(dep, (*path, name))
        seen.add(name)
        ordered.append(RECIPES[name])

    for name in names:
        visit(name, ())
    return ordered


def library_key(
    recipe: LibraryRecipe, toolchain_identity: str, cflags: tuple[str, ...], dep_keys: list[str]
) -> str:
    """sha256 over everything that goes into one library build."""
    data = {
        "recipe": recipe.fingerprint(),
        "toolchain": toolchain_identity,
        "cflags": cflags,
        "deps": sorted(dep_keys),
        "logic": LIBRARY_BUILD_LOGIC,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def spec_cflags(march: str, cflags: Iterable[str] = ()) -> tuple[str, ...]:
    """The flags a build spec adds to CPython's and its libraries' compiles."""
    return (*(() if march == "x86-64" else (f"-march={march}",)), *cflags)


def library_cflags(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The flags every library is compiled with, plus a spec's own (-march, CFLAGS)."""
    return (*BASE_CFLAGS, *extra)


def library_keys(
    recipes: list[LibraryRecipe], toolchain_identity: str, cflags: tuple[str, ...]
) -> dict[str, str]:
    """Each recipe's cache key, in build order (a key covers its dependencies' keys)."""
    keys: dict[str, str] = {}
    for recipe in recipes:
        deps = [keys[name] for name in _all_depends(recipe)]
        keys[recipe.name] = library_key(recipe, toolchain_identity, cflags, deps)
    return keys


def libs_dir() -> Path:
    return home.cache_dir() / "libs"


def _cached_prefix(recipe: LibraryRecipe, key: str) -> Path:
    return libs_dir() / f"{recipe.name}-{recipe.version}-{key[:16]}" / "prefix"


def uncached(
    recipes: list[LibraryRecipe], toolchain_identity: str, cflags: tuple[str, ...]
) -> list[LibraryRecipe]:
    """The recipes whose build is not in the library cache yet."""
    keys = library_keys(recipes, toolchain_identity, cflags)
    return [r for r in recipes if not _cached_prefix(r, keys[r.name]).is_dir()]


def build_requirements(
    recipes: list[LibraryRecipe], toolchain_identity: str, cflags: tuple[str, ...]
) -> list[Requirement]:
    """What the host needs to build those of `recipes` the cache lacks (cached ones need
    nothing: a machine with a warm cache builds CPython without autoconf)."""
    return [req for r in uncached(recipes, toolchain_identity, cflags) for req in r.requirements()]


def _substitute(value: str, deps: Path) -> str:
    return value.replace("{deps}", str(deps))


def _library_env(
    recipe: LibraryRecipe, toolchain: Toolchain, cflags: tuple[str, ...], deps: Path, tmp: Path
) -> dict[str, str]:
    env = build_env()
    env.update(toolchain.env())
    # Reproducible output: debug info names /relocpy/<library> instead of the work directory,
    # and dates (OpenSSL's "built on", __DATE__) come from a fixed epoch: a library build is
    # shared by every spec with its key, whatever their build tags.
    remap = prefix_map_flags({str(tmp.parent): f"/relocpy/{recipe.name}"})
    own = (*recipe.cflags, *(recipe.musl_cflags if toolchain.machine.libc == "musl" else ()))
    env["CFLAGS"] = " ".join((*cflags, *remap, *(_substitute(f, deps) for f in own)))
    env["SOURCE_DATE_EPOCH"] = str(LIBRARY_EPOCH)
    env["CPPFLAGS"] = f"-I{deps}/include"
    env["LDFLAGS"] = f"-L{deps}/lib"
    env["PKG_CONFIG_LIBDIR"] = f"{deps}/lib/pkgconfig:{deps}/share/pkgconfig"
    # with --host, configure would look for <host>-pkg-config first: the host's one reads only
    # PKG_CONFIG_LIBDIR, which names the target's libraries
    env["PKG_CONFIG"] = "pkg-config"
    env.pop("PKG_CONFIG_PATH", None)
    env["TMPDIR"] = str(tmp)
    for name, value in recipe.env:
        env[name] = _substitute(value, deps)
    return env


def relocate_pkgconfig(pc_text: str, old_prefix: str) -> str:
    """Make a .pc file independent of where its tree lives (prefix from ${pcfiledir})."""
    lines = []
    for line in pc_text.splitlines():
        if line.startswith("prefix="):
            line = "prefix=${pcfiledir}/../.."
        else:
            line = line.replace(f"{old_prefix}/lib/x86_64-linux-gnu", "${prefix}/lib")
            line = line.replace("${prefix}/lib/x86_64-linux-gnu", "${prefix}/lib")
            line = line.replace(old_prefix + "/", "${prefix}/")
        lines.append(line)
    return "\n".join(lines) + "\n"


def _tidy_output(prefix: Path, old_prefix: str) -> None:
    """Drop libtool archives and docs; make .pc files relocatable."""
    for pattern in ("lib/*.la", "lib/lib*.so*"):
        for path in prefix.glob(pattern):
            path.unlink()
    for sub in ("share/man", "share/doc", "share/info", "man"):
        shutil.rmtree(prefix / sub, ignore_errors=True)
    for pc in [*prefix.glob("lib/pkgconfig/*.pc"), *prefix.glob("share/pkgconfig/*.pc")]:
        pc.write_text(relocate_pkgconfig(pc.read_text(), old_prefix))


def cross_configure_args(recipe: LibraryRecipe, target: Target) -> list[str]:
    """--host and --build for an autoconf configure of a library that runs on another CPU."""
    if not is_cross(target) or not recipe.autoconf_host:
        return []
    host = [f"--host={target.gnu_host}", f"--build={host_target().gnu_host}"]
    return [*host, *recipe.cross_configure_args]


def _run_recipe(build: LibraryBuild) -> None:
    """configure && make && make install, or the recipe's hook."""
    recipe = build.recipe
    if recipe.source.debian_kind == "deb":
        for inside, target in recipe.copy_tree:
            src = build.source / inside
            dest = build.prefix / target
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dest)
        _tidy_output(build.prefix, "/usr")
        if recipe.build:
            recipe.build(build)
        return
    if recipe.build:
        recipe.build(build)
        return
    workdir = build.source / recipe.subdir if recipe.subdir else build.source
    if recipe.autoreconf:
        build.reporter.step(f"{recipe.name}: autoreconf")
        build.run(["autoreconf", "-fi"], cwd=workdir)
    build.reporter.step(f"{recipe.name} {recipe.version}: configure")
    args = [_substitute(arg, build.deps) for arg in recipe.configure_args]
    args += cross_configure_args(recipe, build.target)
    build.run(["./configure", f"--prefix={LIBRARY_PREFIX}", *args], cwd=workdir)
    build.reporter.step(f"{recipe.name} {recipe.version}: make -j{build.jobs}")
    build.run(["make", f"-j{build.jobs}", *recipe.make_targets], cwd=workdir)
    build.reporter.step(f"{recipe.name} {recipe.version}: make install")
    build.run(["make", *recipe.install_targets, f"DESTDIR={build.stage}"], cwd=workdir)
    for link, target in recipe.symlinks:
        (build.prefix / link).symlink_to(target)
    if recipe.after_install:
        recipe.after_install(build)


def assemble(libraries: Iterable[BuiltLibrary], dest: Path) -> Path:
    """One tree with every library's files (hard links; Config.sh scripts made to point here)."""
    dest.mkdir(parents=True, exist_ok=True)
    for library in libraries:
        for path in sorted(library.prefix.rglob("*")):
            rel = path.relative_to(library.prefix)
            target = dest / rel
            if path.is_dir() and not path.is_symlink():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() or target.is_symlink():
                target.unlink()
            if path.is_symlink():
                target.symlink_to(os.readlink(path))
            elif path.name.endswith("Config.sh"):
                target.write_text(path.read_text().replace(LIBRARY_PREFIX + "/", f"{dest}/"))
            else:
                os.link(path, target)
    return dest


def _fetch_sources(recipe: LibraryRecipe, reporter: Reporter, log: Path) -> list[Path]:
    pins: list[SourcePin] = [recipe.source, *recipe.extra_sources]
    return [fetch(pin, reporter=reporter, log=log) for pin in pins]


def build_library(
    recipe: LibraryRecipe,
    key: str,
    dependencies: list[BuiltLibrary],
    toolchain: Toolchain,
    cflags: tuple[str, ...],
    jobs: int,
    reporter: Reporter,
    group: CommandGroup | None = None,
) -> BuiltLibrary:
    """Build one library into the cache (or find it there); atomic, one builder per key.
    `group` holds its commands, for whoever must stop them."""
    root = libs_dir()
    final = root / f"{recipe.name}-{recipe.version}-{key[:16]}"
    (root / "logs").mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{key[:16]}.lock")):
        if (final / "prefix").is_dir():
            return BuiltLibrary(recipe, key, final / "prefix")
        log = root / "logs" / f"{final.name}.log"
        log.write_text(f"{recipe.name} {recipe.version} key {key}\n")
        # One builder per key holds the lock, so the directory needs no pid; a fixed path keeps
        # the outputs that record it (OpenSSL's compiler flags) the same from build to build.
        work = root / f".work-{final.name}"
        shutil.rmtree(work, ignore_errors=True)
        (work / "tmp").mkdir(parents=True)
        start = time.monotonic()
        try:
            reporter.step(f"{recipe.name} {recipe.version}: fetch")
            sources = _fetch_sources(recipe, reporter, log)
            if recipe.source.debian_kind == "deb":
                source = work / "src"
                for deb in sources:
                    unpack_deb(deb, source)
            else:
                source = unpack_source(sources[0], work / "src")
            deps = assemble(dependencies, work / "deps")
            env = _library_env(recipe, toolchain, cflags, deps, work / "tmp")
            build = LibraryBuild(
                recipe, source, work / "stage", deps, env, jobs, log, reporter, toolchain.machine,
                group,
            )  # fmt: skip
            build.prefix.mkdir(parents=True, exist_ok=True)
            _run_recipe(build)
            _tidy_output(build.prefix, LIBRARY_PREFIX)
            (work / "out").mkdir()
            build.prefix.rename(work / "out" / "prefix")
            manifest = {
                "name": recipe.name,
                "version": recipe.version,
                "key": key,
                "license": recipe.license,
                "source_sha256": recipe.source.sha256,
                "toolchain": toolchain.identity,
                "cflags": cflags,
                "depends": {d.recipe.name: d.key for d in dependencies},
                "seconds": round(time.monotonic() - start, 1),
            }
            (work / "out" / "library.json").write_text(json.dumps(manifest, indent=2) + "\n")
            shutil.copy2(log, work / "out" / "build.log")
            (work / "out").rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return BuiltLibrary(recipe, key, final / "prefix")


def build_libraries(
    recipes: list[LibraryRecipe],
    toolchain: Toolchain,
    reporter: Reporter | None = None,
    jobs: int | None = None,
    cflags: tuple[str, ...] = BASE_CFLAGS,
    workers: int | None = None,
) -> list[BuiltLibrary]:
    """Every recipe built (or taken from the cache), in `recipes`' order.

    Up to `workers` libraries build at once (default: 2 where there are 2 cores or more), each
    as soon as its dependencies are built: most of a small library's time is its configure
    script, which uses one core. A failure or an interrupt stops the other builds; each
    removes its own work directory, and the cache keeps only the libraries that finished.
    """
    reporter = reporter or QuietReporter()
    cpus = max(1, os.cpu_count() or 1)
    jobs = jobs or cpus
    workers = max(1, workers or min(2, cpus))
    require(build_requirements(recipes, toolchain.identity, cflags), "the library builds")
    keys = library_keys(recipes, toolchain.identity, cflags)
    index = {recipe.name: number for number, recipe in enumerate(recipes, 1)}
    built: dict[str, BuiltLibrary] = {}
    pending = list(recipes)
    running: dict[Future[BuiltLibrary], LibraryRecipe] = {}
    group = CommandGroup()

    def ready(recipe: LibraryRecipe) -> bool:
        return all(name in built for name in _all_depends(recipe))

    # the longest chain of builds first: X11's (libxcb, libx11, tk) would otherwise start late
    # and run alone at the end
    urgency = {name: -seconds for name, seconds in critical_paths(recipes).items()}

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="library") as pool:
        try:
            while pending or running:
                for recipe in sorted(
                    (r for r in pending if ready(r)), key=lambda r: urgency[r.name]
                ):
                    where = f"[{index[recipe.name]}/{len(recipes)}]"
                    cached = _cached_prefix(recipe, keys[recipe.name])
                    if cached.is_dir():
                        pending.remove(recipe)
                        reporter.detail(f"{where} {recipe.name}: cached")
                        built[recipe.name] = BuiltLibrary(recipe, keys[recipe.name], cached)
                    elif len(running) < workers:
                        pending.remove(recipe)
                        reporter.step(f"{where} building {recipe.name} {recipe.version}")
                        dependencies = [built[name] for name in _all_depends(recipe)]
                        future = pool.submit(
                            build_library, recipe, keys[recipe.name], dependencies,
                            toolchain, cflags, jobs, reporter, group,
                        )  # fmt: skip
                        running[future] = recipe
                if not running:
                    if any(ready(r) for r in pending):  # cached ones made others ready
                        continue
                    if pending:  # only a recipe list that lacks a dependency gets here
                        missing = sorted({d for r in pending for d in _all_depends(r)} - set(index))
                        raise RelocpyError(f"libraries missing from the build: {missing}")
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    recipe = running.pop(future)
                    built[recipe.name] = future.result()
        except BaseException:
            for future in running:
                future.cancel()
            group.stop()
            raise
    return [built[recipe.name] for recipe in recipes]


def critical_paths(recipes: list[LibraryRecipe]) -> dict[str, float]:
    """Per recipe, the typical seconds of the longest chain of builds that starts with it (it,
    then what needs it, and so on): how much work waits on it (TYPICAL_SECONDS; 10 s for a
    library not timed there)."""
    needed_by: dict[str, list[str]] = {r.name: [] for r in recipes}
    for recipe in recipes:
        for dep in recipe.depends:
            if dep in needed_by:
                needed_by[dep].append(recipe.name)
    chain: dict[str, float] = {}
    for recipe in reversed(recipes):  # dependencies come first, so dependents are done
        after = max((chain[name] for name in needed_by[recipe.name]), default=0.0)
        chain[recipe.name] = TYPICAL_SECONDS.get(recipe.name, 10) + after
    return chain


def _all_depends(recipe: LibraryRecipe) -> list[str]:
    """Direct and indirect dependencies, in build order."""
    return [r.name for r in dependency_closure(recipe.depends)]


def describe(libraries: list[BuiltLibrary]) -> list[dict[str, object]]:
    """Name, version, licence and source hash of each library (for metadata and SBOMs)."""
    return [
        {
            "name": lib.recipe.name,
            "version": lib.recipe.version,
            "license": lib.recipe.license,
            "source": lib.recipe.source.filename,
            "source_sha256": lib.recipe.source.sha256,
            "source_urls": list(lib.recipe.source.urls),
            "debian_package": lib.recipe.source.debian_package,
            "debian_version": lib.recipe.source.debian_version or lib.recipe.version,
            "key": lib.key,
        }
        for lib in libraries
    ]
