"""Verify must fail, and say why, on trees that are not relocatable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import compile_c
from relocpy.elf import iter_elf_files
from relocpy.policy import get_policy
from relocpy.verify import audit_elf, audit_leftovers, find_leftovers

LIB = "int answer(void) { return 42; }\n"
EXE = "int answer(void);\nint main(void){return answer() - 42;}\n"


def test_absolute_runpath_and_foreign_library_are_flagged(tmp_path: Path) -> None:
    host = tmp_path / "host"
    compile_c(LIB, host / "libanswer.so.1", "-shared", "-fPIC", "-Wl,-soname,libanswer.so.1")
    tree = tmp_path / "tree"
    compile_c(EXE, tree / "bin" / "prog", f"-L{host}", "-l:libanswer.so.1", f"-Wl,-rpath,{host}")
    checks = {
        c.name: c for c in audit_elf(tree, iter_elf_files(tree), get_policy("manylinux_2_17"))
    }
    assert not checks["elf-runpath"].ok and str(host) in checks["elf-runpath"].detail
    assert not checks["elf-needed"].ok
    assert "bin/prog needs libanswer.so.1 (host" in checks["elf-needed"].detail


def test_glibc_above_the_policy_is_flagged(tmp_path: Path) -> None:
    # A program linked here needs __libc_start_main@GLIBC_2.34: newer than manylinux2014 allows.
    tree = tmp_path / "tree"
    compile_c("int main(void){return 0;}\n", tree / "bin" / "prog")
    policy = get_policy("manylinux_2_17")
    checks = {c.name: c for c in audit_elf(tree, iter_elf_files(tree), policy)}
    assert not checks["glibc"].ok and "bin/prog needs GLIBC_2.34" in checks["glibc"].detail
    checks = {
        c.name: c for c in audit_elf(tree, iter_elf_files(tree), get_policy("manylinux_2_36"))
    }
    assert checks["glibc"].ok


def test_leftovers_found_as_utf8_and_wchar(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("prefix=/build/here/x\n")
    (tmp_path / "b.bin").write_bytes(b"\0" + "/build/here".encode("utf-32-le"))
    (tmp_path / "c.txt").write_text("clean")
    assert find_leftovers(tmp_path, ["/build/here"]) == {"/build/here": ["a.txt", "b.bin"]}
    check = audit_leftovers(tmp_path, ["/build/here"])
    assert not check.ok and "a.txt" in check.detail


def test_cli_verify_fails_on_a_tree_that_is_not_python(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "relocpy", "verify", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2 and "not an installed CPython prefix" in result.stderr
