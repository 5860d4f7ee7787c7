from __future__ import annotations

from pathlib import Path

from conftest import compile_c
from relocpy.elf.ldpaths import expand_origin, parse_ld_so_conf, resolve_closure, resolve_needed
from relocpy.elf.read import iter_elf_files, read_elf

LIB = "int answer(void) { return 42; }\n"
EXE = '#include <stdio.h>\nint answer(void);\nint main(void){printf("%d\\n", answer());return 0;}\n'


def _lib_and_exe(tmp_path: Path, rpath: str) -> tuple[Path, Path]:
    lib = compile_c(
        LIB, tmp_path / "lib" / "libanswer.so.1", "-shared", "-fPIC", "-Wl,-soname,libanswer.so.1"
    )
    (tmp_path / "lib" / "libanswer.so").symlink_to("libanswer.so.1")
    exe = compile_c(
        EXE, tmp_path / "bin" / "prog", f"-L{tmp_path / 'lib'}", "-lanswer", f"-Wl,-rpath,{rpath}"
    )
    return lib, exe


def test_read_elf_dynamic_section(tmp_path: Path) -> None:
    lib, exe = _lib_and_exe(tmp_path, "$ORIGIN/../lib")
    info = read_elf(exe)
    assert info is not None
    assert info.needed[0] == "libanswer.so.1" and "libc.so.6" in info.needed
    assert info.runpath == ("$ORIGIN/../lib",) and info.rpath == ()
    assert info.has_interp
    assert info.max_glibc is not None and info.max_glibc >= (2, 2, 5)
    lib_info = read_elf(lib)
    assert lib_info is not None and lib_info.soname == "libanswer.so.1"


def test_non_elf_and_symlinks_are_skipped(tmp_path: Path) -> None:
    _lib_and_exe(tmp_path, "$ORIGIN/../lib")
    (tmp_path / "notes.txt").write_text("hello")
    assert read_elf(tmp_path / "notes.txt") is None
    assert read_elf(tmp_path / "lib" / "libanswer.so") is None
    assert [i.path.name for i in iter_elf_files(tmp_path)] == ["prog", "libanswer.so.1"]


def test_origin_runpath_resolves_inside_the_tree(tmp_path: Path) -> None:
    lib, exe = _lib_and_exe(tmp_path, "$ORIGIN/../lib")
    info = read_elf(exe)
    assert info is not None
    found = resolve_needed(info).libraries
    assert found["libanswer.so.1"] is not None
    assert found["libanswer.so.1"].resolve() == lib.resolve()
    assert found["libc.so.6"] is not None


def test_absolute_rpath_and_closure(tmp_path: Path) -> None:
    lib, exe = _lib_and_exe(tmp_path, str(tmp_path / "lib"))
    info = read_elf(exe)
    assert info is not None
    closure = resolve_closure(info)
    assert closure["libanswer.so.1"] == tmp_path / "lib" / "libanswer.so.1"
    lib.unlink()
    assert resolve_closure(info)["libanswer.so.1"] is None


def test_expand_origin() -> None:
    assert expand_origin("$ORIGIN/../lib:${ORIGIN}", Path("/x/bin")) == "/x/bin/../lib:/x/bin"


def test_ld_so_conf_includes(tmp_path: Path) -> None:
    (tmp_path / "ld.so.conf.d").mkdir()
    (tmp_path / "ld.so.conf").write_text("include ld.so.conf.d/*.conf\n/opt/first # comment\n")
    (tmp_path / "ld.so.conf.d" / "a.conf").write_text("/opt/a\n")
    (tmp_path / "ld.so.conf.d" / "b.conf").write_text("/opt/b\ninclude /nonexistent/*.conf\n")
    assert parse_ld_so_conf(tmp_path / "ld.so.conf") == ["/opt/a", "/opt/b", "/opt/first"]
