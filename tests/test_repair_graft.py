from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import compile_c
from relocpy.elf.patch import ElfPatcher
from relocpy.elf.policy import get_policy
from relocpy.elf.read import iter_elf_files, read_elf
from relocpy.repair.graft import apply_grafts, grafted_name, plan_grafts, runpath_for

LIB = "int answer(void) { return 41; }\n"
LIB2 = "int answer(void);\nint plus_one(void) { return answer() + 1; }\n"
EXE = (
    "#include <stdio.h>\nint plus_one(void);\n"
    'int main(void){printf("%d\\n", plus_one());return 0;}\n'
)


def _host_libraries(host: Path) -> None:
    compile_c(LIB, host / "libanswer.so.1", "-shared", "-fPIC", "-Wl,-soname,libanswer.so.1")
    compile_c(
        LIB2,
        host / "libplus.so.2",
        "-shared",
        "-fPIC",
        "-Wl,-soname,libplus.so.2",
        f"-L{host}",
        "-l:libanswer.so.1",
        f"-Wl,-rpath,{host}",
    )


def test_grafted_tree_runs_after_the_host_libraries_are_gone(tmp_path: Path) -> None:
    host = tmp_path / "host"
    _host_libraries(host)
    tree = tmp_path / "tree"
    compile_c(EXE, tree / "bin" / "prog", f"-L{host}", "-l:libplus.so.2", f"-Wl,-rpath,{host}")
    plan = plan_grafts(tree, iter_elf_files(tree), get_policy("manylinux_2_17"))
    assert set(plan.grafts) == {"libplus.so.2", "libanswer.so.1"}  # transitive dependency too
    result = apply_grafts(tree, plan, tree / "lib", ElfPatcher())

    shutil.rmtree(host)
    moved = tmp_path / "moved tree ü"
    tree.rename(moved)
    run = subprocess.run([moved / "bin" / "prog"], capture_output=True, text=True, env={})
    assert run.stdout.strip() == "42", run.stderr

    prog = read_elf(moved / "bin" / "prog")
    assert prog is not None
    assert prog.runpath == ("$ORIGIN/../lib",) and prog.rpath == ()
    assert result.grafted["libplus.so.2"] in prog.needed
    for name in result.grafted.values():
        assert name.count("-") == 1 and (moved / "lib" / name).is_file()
        lib = read_elf(moved / "lib" / name)
        assert lib is not None and lib.soname == name
        assert all(entry.startswith("$ORIGIN") for entry in lib.runpath)


def test_whitelisted_and_missing_libraries(tmp_path: Path) -> None:
    host = tmp_path / "host"
    _host_libraries(host)
    tree = tmp_path / "tree"
    compile_c(EXE, tree / "bin" / "prog", f"-L{host}", "-l:libplus.so.2", f"-Wl,-rpath,{host}")
    (host / "libanswer.so.1").unlink()
    plan = plan_grafts(tree, iter_elf_files(tree), get_policy("manylinux_2_17"))
    assert "libc.so.6" not in plan.grafts
    assert plan.missing == {"libanswer.so.1": ["bin/prog"]}


def test_grafted_name_is_content_addressed() -> None:
    assert grafted_name("libssl.so.3", b"x") != grafted_name("libssl.so.3", b"y")
    assert grafted_name("libssl.so.3", b"x").startswith("libssl-")
    assert grafted_name("libssl.so.3", b"x").endswith(".so.3")
    assert grafted_name("libtcl8.6.so", b"x").endswith(".so")


def test_runpath_for() -> None:
    assert (
        runpath_for(Path("/t/lib/python3.13/lib-dynload/x.so"), Path("/t/lib")) == "$ORIGIN/../.."
    )
    assert runpath_for(Path("/t/lib/libfoo.so"), Path("/t/lib")) == "$ORIGIN"
