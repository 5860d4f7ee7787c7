"""Library recipes and their builds: dependency order, cache keys, and real static builds."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from elftools.elf.elffile import ELFFile

from relocpy.build.libraries import (
    build_libraries,
    dependency_closure,
    libraries_for,
    library_key,
    relocate_pkgconfig,
)
from relocpy.core.errors import RelocpyError
from relocpy.core.progress import QuietReporter
from relocpy.recipes.libs import ALL_RECIPES, RECIPES


def names(recipes) -> list[str]:
    return [r.name for r in recipes]


def test_every_library_follows_its_dependencies() -> None:
    order = names(ALL_RECIPES)
    for recipe in ALL_RECIPES:
        for dep in recipe.depends:
            assert order.index(dep) < order.index(recipe.name), (recipe.name, dep)


def test_closure_pulls_in_dependencies_first() -> None:
    assert names(dependency_closure(["tk"])) == [
        "zlib",
        "tcl",
        "xorgproto",
        "xtrans",
        "xcb-proto",
        "pthread-stubs",
        "libxau",
        "libxcb",
        "libx11",
        "tk",
    ]


def test_libraries_differ_by_cpython_version() -> None:
    old = names(libraries_for((3, 9, 2)))
    new = names(libraries_for((3, 13, 5)))
    # 3.9 predates --with-readline=editline; _crypt is gone in 3.13; system libmpdec from 3.13.
    assert "readline" in old and "libedit" not in old and "libxcrypt" in old
    assert "libedit" in new and "readline" not in new and "libxcrypt" not in new
    assert "mpdecimal" in new and "mpdecimal" not in old
    assert "readline" in names(libraries_for((3, 13, 5), readline="readline"))


def test_unknown_library_and_readline_are_refused() -> None:
    with pytest.raises(RelocpyError, match="unknown library 'nope'"):
        dependency_closure(["nope"])
    with pytest.raises(RelocpyError, match="choose one of libedit, readline"):
        libraries_for((3, 13), readline="editline2")


def test_every_pin_is_a_sha256() -> None:
    for recipe in ALL_RECIPES:
        for pin in (recipe.source, *recipe.extra_sources):
            assert len(pin.sha256) == 64 and int(pin.sha256, 16) >= 0, recipe.name
            assert pin.debian_package, recipe.name


def test_key_covers_recipe_toolchain_flags_and_dependencies() -> None:
    zlib = RECIPES["zlib"]
    base = library_key(zlib, "zig 0.17.1 x86_64-linux-gnu.2.17", ("-O2",), [])
    assert base == library_key(zlib, "zig 0.17.1 x86_64-linux-gnu.2.17", ("-O2",), [])
    changed = [
        library_key(zlib, "zig 0.17.1 x86_64-linux-gnu.2.28", ("-O2",), []),
        library_key(zlib, "zig 0.17.1 x86_64-linux-gnu.2.17", ("-O3",), []),
        library_key(zlib, "zig 0.17.1 x86_64-linux-gnu.2.17", ("-O2",), ["0" * 64]),
        library_key(
            replace(zlib, configure_args=()), "zig 0.17.1 x86_64-linux-gnu.2.17", ("-O2",), []
        ),
    ]
    assert len({base, *changed}) == 5


def test_hook_source_enters_the_key() -> None:
    openssl = RECIPES["openssl"]
    assert "build_libs" in json.loads(openssl.fingerprint())["hook"]


def test_pkgconfig_is_made_relative() -> None:
    text = "prefix=/install\nlibdir=/install/lib\nLibs: -L${libdir} -lz\n"
    out = relocate_pkgconfig(text, "/install")
    assert out.splitlines()[:2] == ["prefix=${pcfiledir}/../..", "libdir=${prefix}/lib"]
    deb = "prefix=/usr\nlibdir=${prefix}/lib/x86_64-linux-gnu\n"
    assert relocate_pkgconfig(deb, "/usr").splitlines()[1] == "libdir=${prefix}/lib"


def _exported(path) -> set[str]:
    with path.open("rb") as handle:
        symtab = ELFFile(handle).get_section_by_name(".dynsym")
        return {
            s.name
            for s in symtab.iter_symbols()
            if s.name and s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] != "STB_LOCAL"
        }


@pytest.mark.real
def test_libraries_are_static_and_cached(built_archive) -> None:
    """The session's build made every library; asking again builds nothing."""
    from relocpy.build.zig import zig_toolchain

    reporter = QuietReporter()
    libs = build_libraries(libraries_for((3, 13, 15)), zig_toolchain(), reporter)
    assert not [step for step in reporter.steps if "building" in step]
    for lib in libs:
        assert not list(lib.prefix.glob("lib/*.so*")), lib.recipe.name
        manifest = json.loads((lib.prefix.parent / "library.json").read_text())
        assert manifest["key"] == lib.key


@pytest.mark.real
def test_extension_modules_keep_library_symbols_private(built_tree) -> None:
    """A host libssl or libsqlite3 loaded into the same process cannot clash with ours."""
    dynload = next(built_tree.stdlib.glob("lib-dynload"))
    for module, symbol in (
        ("_ssl", "SSL_new"),
        ("_sqlite3", "sqlite3_open"),
        ("_ctypes", "ffi_call"),
    ):
        exported = _exported(next(dynload.glob(f"{module}.*.so")))
        assert symbol not in exported, (module, symbol)
        assert any(name.startswith("PyInit_") for name in exported)


def test_zstd_is_a_library_of_3_14_on() -> None:
    assert "zstd" in names(libraries_for((3, 14, 10)))
    assert "zstd" not in names(libraries_for((3, 13, 15)))


@pytest.mark.real
def test_zstd_builds_static_for_glibc_2_17(built_archive) -> None:
    """3.14's source cannot be fetched here (Debian lists it, the file answers 404), so the
    recipe is proven on its own: a static, position-independent libzstd for zig's glibc 2.17."""
    from relocpy.build.zig import zig_toolchain

    [zstd] = build_libraries([RECIPES["zstd"]], zig_toolchain(), QuietReporter())
    assert (zstd.prefix / "include" / "zstd.h").is_file()
    archive = zstd.prefix / "lib" / "libzstd.a"
    assert archive.is_file() and not list(zstd.prefix.glob("lib/*.so*"))
    pc = (zstd.prefix / "lib" / "pkgconfig" / "libzstd.pc").read_text()
    assert "prefix=${pcfiledir}/../.." in pc and "/install" not in pc


def test_openssl_compiler_string_names_no_path() -> None:
    """OpenSSL bakes its compiler command line into libcrypto (`OpenSSL_version`): the
    wrapper's path and the work directory's prefix map would differ per RELOCPY_HOME."""
    from relocpy.recipes.libs.openssl import compiler_string

    cc = "/home/u/.cache/relocpy/toolchains/ziglang-0.17.1/bin-x86_64-linux-gnu.2.17/cc"
    flags = "-O2 -ffile-prefix-map=/home/u/.cache/relocpy/libs/.work/openssl=/relocpy/openssl -fPIC"
    assert compiler_string(cc, flags) == "cc -O2 -fPIC"


def _fake_recipes(monkeypatch: pytest.MonkeyPatch, depends: dict[str, tuple[str, ...]]):
    """Recipes named after `depends`' keys (in that order), registered where the scheduler
    looks dependencies up."""
    import relocpy.build.libraries as libraries

    base = RECIPES["zlib"]
    fakes = {name: replace(base, name=name, depends=deps) for name, deps in depends.items()}
    monkeypatch.setattr(libraries, "RECIPES", {**RECIPES, **fakes})
    monkeypatch.setattr(libraries, "build_requirements", lambda *a: [])
    return list(fakes.values())


def test_independent_libraries_build_two_at_a_time_after_their_dependencies(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import threading
    import time

    import relocpy.build.libraries as libraries
    from relocpy.build.toolchain import Toolchain

    graph = {"a": (), "b": (), "c": ("a",), "d": ("a", "b"), "e": ("c", "d")}
    recipes = _fake_recipes(monkeypatch, graph)
    lock = threading.Lock()
    now: list[str] = []
    most = 0
    finished: list[str] = []

    def fake_build(recipe, key, dependencies, *rest):
        nonlocal most
        assert {d.recipe.name for d in dependencies} == set(
            names(dependency_closure(graph[recipe.name]))
        )
        assert all(d.recipe.name in finished for d in dependencies)
        with lock:
            now.append(recipe.name)
            most = max(most, len(now))
        time.sleep(0.2)
        with lock:
            now.remove(recipe.name)
            finished.append(recipe.name)
        return libraries.BuiltLibrary(recipe, key, tmp_path / recipe.name)

    monkeypatch.setattr(libraries, "build_library", fake_build)
    toolchain = Toolchain("test", "cc", "make", ())
    built = build_libraries(recipes, toolchain, QuietReporter(), workers=2)
    assert names(b.recipe for b in built) == list(graph)  # the caller's order
    assert most == 2 and finished[-1] == "e"


def test_a_failed_library_stops_the_others_and_raises(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import threading
    import time

    import relocpy.build.libraries as libraries
    from relocpy.build.toolchain import Toolchain
    from relocpy.core.errors import BuildFailedError
    from relocpy.core.runner import run_logged

    recipes = _fake_recipes(monkeypatch, {"slow": (), "broken": (), "after": ("slow",)})
    started = threading.Event()
    ran: list[str] = []

    def fake_build(recipe, key, deps, toolchain, cflags, jobs, reporter, group):
        ran.append(recipe.name)
        if recipe.name == "slow":  # a real command, which the failure must stop
            started.set()
            run_logged(["sleep", "60"], tmp_path, tmp_path / "log", reporter, "s", {}, group=group)
        started.wait(10)
        raise BuildFailedError(f"{recipe.name} failed")

    monkeypatch.setattr(libraries, "build_library", fake_build)
    start = time.monotonic()
    with pytest.raises(BuildFailedError, match="broken failed"):
        build_libraries(recipes, Toolchain("test", "cc", "make", ()), QuietReporter(), workers=2)
    assert time.monotonic() - start < 30  # sleep 60 was stopped
    assert "after" not in ran


def test_the_longest_chain_of_builds_starts_first() -> None:
    from relocpy.build.libraries import critical_paths

    chains = critical_paths(libraries_for((3, 13, 15)))
    # xorgproto is quick, but libxcb, libx11 and tk wait on it; bzip2 is quick and alone
    assert chains["xorgproto"] > chains["libx11"] > chains["tk"] > chains["bzip2"]
    assert chains["zlib"] > chains["openssl"]  # openssl needs zlib
    assert chains["bzip2"] == 3  # nothing needs it: its own typical seconds
