"""Verify must fail, and say why, on trees that are not relocatable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import compile_c
from relocpy.elf.policy import get_policy
from relocpy.elf.read import iter_elf_files
from relocpy.verify.checks import audit_elf, audit_leftovers, check_environment, find_leftovers

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


# ---- bad input (issue 19) and hardening --------------------------------------------------------

import os  # noqa: E402

import pytest  # noqa: E402

from fake_tree import make_fake_archives  # noqa: E402
from relocpy.core.errors import RelocpyError  # noqa: E402
from relocpy.verify.checks import audit_hardening, verify  # noqa: E402


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "the top level: expected an object"),
        ('{"build_paths": "x"}', 'build_paths: expected a list, got "x"'),
        ('{"policy": 3}', "policy: expected a string or null, got 3"),
        ('{"policy": "manylinux_9_99"}', "unknown policy 'manylinux_9_99'"),
    ],
)
def test_bad_metadata_beside_an_archive_is_named(tmp_path: Path, text: str, message: str) -> None:
    gz, _ = make_fake_archives(tmp_path)
    meta = gz.with_name(gz.name.replace(".tar.gz", ".json"))
    meta.write_text(text)
    with pytest.raises(RelocpyError, match=re.escape(message)) as caught:
        verify(gz, runtime=False)
    assert meta.name in str(caught.value) or "policy" in message


def test_a_directory_that_is_no_prefix_is_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    home = tmp_path / "home"
    (home / "big").mkdir(parents=True)
    (home / "big" / "data").write_bytes(b"x" * 1000)
    copied = []
    monkeypatch.setattr(shutil, "copytree", lambda *a, **k: copied.append(a))
    with pytest.raises(RelocpyError, match="is not an installed CPython prefix"):
        verify(home)
    assert copied == []


def test_errors_name_the_archive_not_the_scratch_copy(tmp_path: Path) -> None:
    archive = tmp_path / "cpython-3.99.0+1-x86_64-unknown-linux-gnu-install_only.tar.gz"
    (tmp_path / "t" / "python" / "bin").mkdir(parents=True)
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "t" / "python", "python")
    with pytest.raises(RelocpyError) as caught:
        verify(archive, runtime=False)
    assert str(archive) in caught.value.message and "relocpy-verify-" not in caught.value.message


def test_static_only_with_a_test_suite_is_refused(tmp_path: Path) -> None:
    gz, _ = make_fake_archives(tmp_path)
    with pytest.raises(RelocpyError, match="--static-only leaves out"):
        verify(gz, runtime=False, test_suite=tmp_path / "x.tar.gz")


def _hardening(tree: Path, own: bool = True, pie: bool = True, flags: str = ""):
    return audit_hardening(tree, iter_elf_files(tree), flags, own, pie)


def test_hardening_flags_what_lacks_a_mitigation(tmp_path: Path) -> None:
    good = tmp_path / "good"
    compile_c(LIB, good / "lib" / "libgood.so", "-shared", "-fPIC", "-Wl,-z,relro,-z,now")
    compile_c(EXE.replace("answer() - 42", "0"), good / "bin" / "prog", "-pie", "-Wl,-z,now")
    check = _hardening(good)
    assert check.ok, check.detail
    bad = tmp_path / "bad"
    compile_c(LIB, bad / "lib" / "libstack.so", "-shared", "-fPIC", "-Wl,-z,execstack")
    compile_c(LIB, bad / "lib" / "liblazy.so", "-shared", "-fPIC", "-Wl,-z,norelro")
    compile_c("int main(void){return 0;}\n", bad / "bin" / "fixed", "-no-pie", "-Wl,-z,now")
    check = _hardening(bad)
    assert not check.ok
    assert "lib/libstack.so: executable stack" in check.detail
    assert "lib/liblazy.so: no RELRO" in check.detail
    assert "bin/fixed: position-dependent executable, but the build asked for PIE" in check.detail
    # a tree someone else built: weak relro is that builder's choice, an executable stack not
    other = _hardening(bad, own=False, pie=False)
    assert not other.ok and "no RELRO" not in other.detail
    os.unlink(bad / "lib" / "libstack.so")
    other = _hardening(bad, own=False, pie=False)
    assert other.ok and "builder left 1 weaker" in other.detail
    assert "bin/fixed is position-dependent (--no-pie, as the build asked)" in other.detail


def test_hardening_reports_grafted_host_libraries_but_fails_our_own(tmp_path: Path) -> None:
    """A library grafted from the host keeps its distribution's link flags (Debian links most
    without BIND_NOW): reported; the same gap in a file relocpy linked fails its build."""
    tree = tmp_path / "tree"
    compile_c(LIB, tree / "lib" / "libhost-1a2b3c4d.so.1", "-shared", "-fPIC", "-Wl,-z,lazy")
    compile_c(LIB, tree / "lib" / "libpython3.99.so", "-shared", "-fPIC", "-Wl,-z,now")
    grafted = {"lib/libhost-1a2b3c4d.so.1"}
    check = audit_hardening(tree, iter_elf_files(tree), "", True, True, grafted)
    assert check.ok, check.detail
    assert "1 grafted from the host are weaker: lib/libhost-1a2b3c4d.so.1: no BIND_NOW" in (
        check.detail
    )
    check = audit_hardening(tree, iter_elf_files(tree), "", True, True, ())
    assert not check.ok and "lib/libhost-1a2b3c4d.so.1: no BIND_NOW" in check.detail


def test_hardening_holds_flags_to_their_promise(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    source = "#include <string.h>\nint f(char *d, const char *s){ char b[64]; strcpy(b, s);"
    source += " strcpy(d, b); return b[0]; }\n"
    compile_c(source, tree / "lib" / "libpython3.99.so", "-shared", "-fPIC", "-O2",
              "-fno-stack-protector", "-Wl,-z,now")  # fmt: skip
    check = _hardening(tree, flags="-O2 -fstack-protector-strong")
    assert not check.ok and "no __stack_chk_fail although CFLAGS" in check.detail
    assert _hardening(tree, flags="-O2").ok


def test_a_policy_between_the_listed_ones_takes_the_whitelist_below_it() -> None:
    """PEP 600 names a policy per glibc: riscv64's floor, 2.27, is manylinux_2_27."""
    policy = get_policy("manylinux_2_27")
    assert policy.glibc_max == (2, 27)
    assert policy.lib_whitelist == get_policy("manylinux_2_17").lib_whitelist
    assert policy.allows_glibc((2, 27)) and not policy.allows_glibc((2, 28))
    assert get_policy("manylinux_2_19").glibc_max == (2, 19)
    for name in ("manylinux_2_5", "manylinux_9_99", "manylinux_x"):
        with pytest.raises(RelocpyError, match="unknown policy"):
            get_policy(name)


def test_a_stripped_archive_is_described_by_the_install_only_metadata(tmp_path: Path) -> None:
    """relocpy writes one metadata file for both flavours: verify of the stripped archive must
    read it too (without it, a --no-pie release failed the hardening check as "asked for PIE")."""
    import json

    from relocpy.verify.checks import _metadata_for

    stem = "cpython-3.13.5+20261204-x86_64-unknown-linux-gnu-install_only"
    (tmp_path / f"{stem}.json").write_text(json.dumps({"build_options": {"pie": False}}))
    for name in (f"{stem}.tar.zst", f"{stem}_stripped.tar.zst", f"{stem}_stripped.tar.gz"):
        assert _metadata_for(tmp_path / name) == {"build_options": {"pie": False}}, name
    assert _metadata_for(tmp_path / "cpython-3.12.0-other_stripped.tar.zst") == {}


def test_the_environment_check_sees_an_empty_os_environ(tmp_path: Path) -> None:
    """An interpreter whose os.environ is empty (what an executable reading an unfilled copy of
    `environ` shows) fails the check; one that has it passes."""
    assert check_environment(sys.executable).ok
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec env -i "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    check = check_environment(str(wrapper))
    assert not check.ok
    assert "a child does not get it either" in check.detail and "copy" in check.detail
