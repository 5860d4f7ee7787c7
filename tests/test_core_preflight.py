"""The preflight: every missing program, aclocal macro and header named at once, with one fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from relocpy import pipeline
from relocpy.core import preflight
from relocpy.core.errors import MissingToolError, RelocpyError
from relocpy.core.preflight import (
    Requirement,
    defined_macros,
    header,
    install_command,
    macro,
    missing,
    program,
    require,
)
from relocpy.recipes.libs import RECIPES
from relocpy.sources.catalog import resolve_cpython


def test_defined_macros_reads_m4_files(tmp_path: Path) -> None:
    (tmp_path / "ltdl.m4").write_text(
        "AC_DEFUN([LT_SYS_SYMBOL_USCORE],\n[dnl\n])\nAU_DEFUN([AC_LIBTOOL_OLD], [x])\n"
    )
    (tmp_path / "other.m4").write_text("m4_define([_LT_HIDDEN], [y])\nAC_DEFUN(PLAIN_NAME, z)\n")
    (tmp_path / "notes.txt").write_text("AC_DEFUN([NOT_A_MACRO_FILE])")
    assert defined_macros([tmp_path, tmp_path / "absent"]) == {
        "LT_SYS_SYMBOL_USCORE",
        "AC_LIBTOOL_OLD",
        "_LT_HIDDEN",
        "PLAIN_NAME",
    }


def test_the_host_has_libtool_and_libltdl_macros() -> None:
    """scripts/setup installs libltdl-dev: its ltdl.m4 is where libffi's macro lives."""
    found = defined_macros(preflight.aclocal_dirs())
    assert {"LT_INIT", "LT_SYS_SYMBOL_USCORE", "AM_INIT_AUTOMAKE", "PKG_CHECK_MODULES"} <= found


def test_missing_lists_each_gap_once_with_everything_that_needs_it() -> None:
    needs = [
        program("make", "zlib"),
        program("make", "xz"),
        program("perl", "openssl"),
        macro("LT_SYS_SYMBOL_USCORE", "libffi's autoreconf"),
        header("tk.h", "tk-dev", "tkinter"),
        program("gcc", "verify"),
    ]
    absent = missing(
        needs,
        which=lambda name: "/usr/bin/gcc" if name == "gcc" else None,
        macros={"LT_INIT"},
        include_dirs=["/nonexistent"],
    )
    assert [(r.kind, r.name, r.needed_by) for r in absent] == [
        ("program", "make", "zlib, xz"),
        ("program", "perl", "openssl"),
        ("aclocal macro", "LT_SYS_SYMBOL_USCORE", "libffi's autoreconf"),
        ("header", "tk.h", "tkinter"),
    ]
    assert install_command(absent) == "apt-get install -y libltdl-dev make perl tk-dev"


def test_require_names_everything_and_the_one_command() -> None:
    needs = [program("tic", "ncurses"), macro("LT_SYS_SYMBOL_USCORE", "libffi's autoreconf")]
    with pytest.raises(MissingToolError) as caught:
        require(needs, "the build of CPython 3.13.15", which=lambda name: None, macros=())
    message = caught.value.message
    assert message.startswith("cannot start the build of CPython 3.13.15: this machine lacks 2")
    assert "program tic, needed by ncurses: Debian package ncurses-bin" in message
    assert "aclocal macro LT_SYS_SYMBOL_USCORE, needed by libffi's autoreconf" in message
    assert caught.value.hint == "install them with: apt-get install -y libltdl-dev ncurses-bin"
    require(needs, "nothing", which=lambda name: "/bin/x", macros={"LT_SYS_SYMBOL_USCORE"})


def test_every_recipe_declares_what_it_runs() -> None:
    needs = {(r.kind, r.name) for recipe in RECIPES.values() for r in recipe.requirements()}
    assert ("aclocal macro", "LT_SYS_SYMBOL_USCORE") in needs  # libffi
    assert {("program", "perl"), ("program", "tclsh"), ("program", "tic")} <= needs
    assert ("program", "dpkg-deb") in needs  # the Debian binary packages
    for req in (r for recipe in RECIPES.values() for r in recipe.requirements()):
        assert req.package in preflight.PROGRAM_PACKAGES.values() or req.kind != "program"


def test_build_without_libltdl_names_it_before_making_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a machine without libltdl-dev: the host's real macros less the one ltdl.m4 has.
    The session's RELOCPY_HOME is replaced by an empty one, so libffi is not cached."""
    monkeypatch.setenv("RELOCPY_HOME", str(tmp_path / "home"))
    real = preflight._host_macros()
    monkeypatch.setattr(preflight, "_host_macros", lambda: real - {"LT_SYS_SYMBOL_USCORE"})
    out = tmp_path / "out"
    with pytest.raises(MissingToolError) as caught:
        pipeline.build("3.13", out)
    assert "aclocal macro LT_SYS_SYMBOL_USCORE, needed by libffi's autoreconf" in str(caught.value)
    assert caught.value.hint == "install them with: apt-get install -y libltdl-dev"
    assert not out.exists()
    assert not (tmp_path / "home" / "cache" / "libs").exists()


def test_cached_libraries_need_no_build_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an empty home: the session's (in CI seeded from the fresh root's build) has libffi cached
    monkeypatch.setenv("RELOCPY_HOME", str(tmp_path / "home"))
    pin = resolve_cpython("3.13")
    needs = pipeline.build_needs(pin, "zig", None, "source", "libedit")
    assert any(r.name == "autoreconf" for r in needs)
    monkeypatch.setattr("relocpy.build.libraries.uncached", lambda recipes, identity, flags: [])
    cached = pipeline.build_needs(pin, "zig", None, "source", "libedit", stripped=False)
    assert [(r.kind, r.name) for r in cached] == [("program", "make")]


def test_host_library_builds_need_headers() -> None:
    needs = pipeline.build_needs(resolve_cpython("3.13"), "gcc", None, "host", "libedit")
    headers = [r for r in needs if isinstance(r, Requirement) and r.kind == "header"]
    assert ("openssl/ssl.h", "libssl-dev") in {(r.name, r.package) for r in headers}


def test_clang_builds_need_llvm_19_and_its_profile_runtime() -> None:
    pin = resolve_cpython("3.13")
    needs = pipeline.build_needs(pin, "clang", None, "source", "libedit", bolt=True, opt="pgo+lto")
    by_package = {r.package for r in needs}
    assert {"clang-19", "lld-19", "llvm-19", "bolt-19", "libclang-rt-19-dev"} <= by_package
    runtime = next(r for r in needs if r.package == "libclang-rt-19-dev")
    assert runtime.kind == "file" and runtime.name.endswith("libclang_rt.profile-x86_64.a")
    plain = pipeline.build_needs(pin, "clang", None, "source", "libedit", opt="noopt")
    assert not {"bolt-19", "libclang-rt-19-dev"} & {r.package for r in plain}
    # a file requirement is met by the file, nothing else
    absent = Requirement("file", "/nonexistent/libx.a", "libx-dev", "a test")
    assert missing([absent]) == [absent]
    assert missing([Requirement("file", __file__, "python3", "a test")]) == []


@pytest.mark.parametrize(
    ("toolchain", "opt", "libs", "message"),
    [
        ("gcc", "pgo+lto", "source", "--bolt needs --toolchain clang"),
        ("zig", "noopt", "source", "--bolt needs --toolchain clang"),
        ("clang", "lto", "source", "--opt lto is not profile-guided"),
        ("clang", "pgo+lto", "host", "--libs host"),
    ],
)
def test_bolt_and_clang_refuse_what_cannot_build(
    toolchain: str, opt: str, libs: str, message: str
) -> None:
    with pytest.raises(RelocpyError, match=message):
        pipeline.check_toolchain_choice(toolchain, None, libs, opt, bolt=libs == "source")
