from __future__ import annotations

import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

from relocpy.elf.policy import get_policy, policy_for_glibc
from relocpy.package.archives import (
    archive_stem,
    flavour_name,
    include_in_install_only,
    include_in_stripped,
    include_in_test_suite,
    pin_timestamps,
    target_triple,
    uncheck_hash_pycs,
)


def test_archive_stem_matches_python_build_standalone() -> None:
    stem = archive_stem("3.13.5", "20260101", triple="x86_64-unknown-linux-gnu")
    assert stem == "cpython-3.13.5+20260101-x86_64-unknown-linux-gnu-install_only"


@pytest.mark.parametrize(
    ("rel", "included"),
    [
        ("lib/python3.13/test", False),
        ("lib/python3.13/test/test_os.py", False),
        ("lib/python3.13/testing.py", True),
        ("lib/libpython3.13.a", False),
        ("lib/python3.13/config-3.13-x86_64-linux-gnu/libpython3.13.a", False),
        ("lib/libpython3.13.so.1.0", True),
        ("lib/python3.13/idlelib/idle_test/__pycache__", False),
        ("lib/python3.13/unittest/test/__pycache__", False),
        ("lib/python3.13/__pycache__", True),
        ("lib/python3.13/idlelib/idle_test/htest.py", True),
    ],
)
def test_install_only_filter(rel: str, included: bool) -> None:
    assert include_in_install_only(rel, "3.13") is included


@pytest.mark.parametrize(
    ("rel", "included"),
    [
        ("lib/python3.13/__pycache__", True),
        ("lib/python3.13/__pycache__/os.cpython-313.pyc", True),
        ("lib/python3.13/__pycache__/os.cpython-313.opt-1.pyc", False),
        ("lib/python3.13/__pycache__/os.cpython-313.opt-2.pyc", False),
        ("lib/python3.13/site-packages/pip/__pycache__/__init__.cpython-313.pyc", True),
        ("lib/python3.13/unittest/test/__pycache__/test_case.cpython-313.pyc", False),
        ("lib/python3.13/os.py", True),
        ("lib/python3.13/test/test_os.py", False),
        ("lib/python3.13/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so", True),
        ("lib/python3.13/pycache_helpers.py", True),
        ("lib/python3.13/idlelib/idle_test/htest.py", False),
        ("lib/python3.13/unittest/test", False),
        ("lib/python3.13/unittest/case.py", True),
        ("lib/python3.13/lib-dynload/_testcapi.cpython-313-x86_64-linux-gnu.so", False),
        ("lib/python3.13/lib-dynload/xxlimited_35.cpython-313-x86_64-linux-gnu.so", False),
        ("lib/python3.13/lib-dynload/_xxsubinterpreters.cpython-313-x86_64-linux-gnu.so", True),
        ("lib/python3.13/site-packages/pkg/tests/test_x.py", True),
        ("lib/python3.13/site-packages/pip/_vendor/distlib/t64.exe", False),
        ("lib/python3.13/site-packages/setuptools/cli-64.exe", False),
        ("lib/python3.13/site-packages/pip/_vendor/distlib/scripts.py", True),
        ("lib/python3.13/ensurepip/_bundled/pip-25.1.1-py3-none-any.whl", True),
        ("bin/tool.exe", True),
    ],
)
def test_stripped_filter_keeps_plain_bytecode_but_no_tests(rel: str, included: bool) -> None:
    assert include_in_stripped(rel, "3.13") is included


def test_test_suite_holds_what_stripped_leaves_out() -> None:
    parents = frozenset({"lib/python3.13/ctypes", "lib/python3.13/lib-dynload"})
    for rel in (
        "lib/python3.13/test/test_os.py",
        "lib/python3.13/ctypes",
        "lib/python3.13/ctypes/test/test_funcptr.py",
        "lib/python3.13/lib-dynload",
        "lib/python3.13/lib-dynload/_testcapi.cpython-313-x86_64-linux-gnu.so",
    ):
        assert include_in_test_suite(rel, "3.13", parents), rel
    for rel in ("lib/python3.13/os.py", "lib/python3.13/ctypes/util.py", "bin"):
        assert not include_in_test_suite(rel, "3.13", parents), rel


def test_policies() -> None:
    assert get_policy("manylinux2014").glibc_max == (2, 17)
    assert policy_for_glibc((2, 17)).name == "manylinux_2_17"
    assert policy_for_glibc((2, 18)).name == "manylinux_2_28"
    assert not get_policy("manylinux_2_17").allows_library("libssl.so.3")
    assert get_policy("manylinux_2_17").allows_library("libc.so.6")
    with pytest.raises(Exception, match="known policies"):
        get_policy("manylinux_9_99")


def test_triples_and_flavours_follow_python_build_standalone() -> None:
    assert target_triple() == "x86_64-unknown-linux-gnu"
    assert target_triple("x86-64-v3") == "x86_64_v3-unknown-linux-gnu"
    assert flavour_name("install_only", free_threaded=True) == "freethreaded+install_only"


def test_checked_hash_pycs_become_unchecked_and_read_no_source(tmp_path: Path) -> None:
    """What `make install` writes with SOURCE_DATE_EPOCH set (checked hash-based bytecode)
    becomes unchecked: the hash stays, imports take the .pyc without reading the source (an
    edited source is seen only with --check-hash-based-pycs always); timestamp and unchecked
    bytecode is left as it is."""
    package = tmp_path / "lib" / "pkg"
    package.mkdir(parents=True)
    names = ("checked", "stamped", "unchecked", "patched")
    sources = {name: package / f"{name}.py" for name in names}
    modes = {
        "checked": py_compile.PycInvalidationMode.CHECKED_HASH,
        "stamped": py_compile.PycInvalidationMode.TIMESTAMP,
        "unchecked": py_compile.PycInvalidationMode.UNCHECKED_HASH,
        "patched": py_compile.PycInvalidationMode.CHECKED_HASH,
    }
    pycs = {}
    for name, source in sources.items():
        source.write_text("VALUE = 1\n")
        pycs[name] = Path(
            py_compile.compile(str(source), invalidation_mode=modes[name], doraise=True)
        )
    # changed after make install compiled it (as a static build patches ctypes): it must stay
    # checked, or the old bytecode would run
    sources["patched"].write_text("VALUE = 3\n")
    before = {name: pyc.read_bytes() for name, pyc in pycs.items()}
    assert uncheck_hash_pycs(tmp_path) == 1
    after = pycs["checked"].read_bytes()
    assert int.from_bytes(after[4:8], "little") == 0b01  # hash-based, source not checked
    assert after[8:] == before["checked"][8:]
    assert pycs["stamped"].read_bytes() == before["stamped"]
    assert pycs["unchecked"].read_bytes() == before["unchecked"]
    assert pycs["patched"].read_bytes() == before["patched"]
    assert uncheck_hash_pycs(tmp_path) == 0
    sources["checked"].write_text("VALUE = 2\n")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path / "lib")}
    code = ["-c", "import pkg.checked, pkg.patched; print(pkg.checked.VALUE, pkg.patched.VALUE)"]
    seen = [
        subprocess.run([sys.executable, *flags, *code], env=env, capture_output=True, text=True)
        for flags in ([], ["--check-hash-based-pycs", "always"])
    ]
    assert [r.stdout.strip() for r in seen] == ["1 3", "2 3"], [r.stderr for r in seen]


def test_pin_timestamps_keeps_bytecode_valid(tmp_path: Path) -> None:
    """After pinning, the .pyc still matches its source: importing it rewrites nothing."""
    package = tmp_path / "lib" / "pkg"
    package.mkdir(parents=True)
    source = package / "mod.py"
    source.write_text("VALUE = 42\n")
    pyc = Path(py_compile.compile(str(source), doraise=True))
    epoch = 1_700_000_000
    assert pin_timestamps(tmp_path, epoch) == 1
    assert source.stat().st_mtime == epoch and pyc.stat().st_mtime == epoch
    assert int.from_bytes(pyc.read_bytes()[8:12], "little") == epoch
    before = pyc.read_bytes()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path / "lib")}
    result = subprocess.run(
        [sys.executable, "-c", "import importlib.util, pkg.mod; print(pkg.mod.__cached__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == str(pyc)
    assert pyc.read_bytes() == before and pyc.stat().st_mtime == epoch  # not recompiled


def test_package_tree_and_test_suite_split_a_tree(tmp_path: Path) -> None:
    """install_only, install_only_stripped and test_suite of one small tree: what each holds,
    a symlink kept as one, and debug info gone from the stripped ELF files only."""
    import subprocess
    import tarfile

    from relocpy.core.tree import InterpreterTree
    from relocpy.package.archives import package_tree, write_test_suite

    root = tmp_path / "tree"
    stdlib = root / "lib" / "python3.13"
    files = [
        "lib/python3.13/os.py",
        "lib/python3.13/__pycache__/os.cpython-313.pyc",
        "lib/python3.13/__pycache__/os.cpython-313.opt-1.pyc",
        "lib/python3.13/test/test_os.py",
        "lib/python3.13/ctypes/util.py",
        "lib/python3.13/ctypes/test/test_x.py",
        "lib/python3.13/lib-dynload/_testcapi.cpython-313-x86_64-linux-gnu.so",
        "lib/python3.13/site-packages/pip/_vendor/distlib/t64.exe",
        "lib/python3.13/site-packages/pip/__init__.py",
        "lib/libpython3.13.a",
    ]
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "bin").mkdir()
    program = tmp_path / "main.c"
    program.write_text("int main(void) { return 0; }\n")
    exe = root / "bin" / "python3.13"
    subprocess.run(["gcc", "-g", str(program), "-o", str(exe)], check=True)
    dynload = stdlib / "lib-dynload"
    subprocess.run(
        ["gcc", "-g", "-shared", "-fPIC", str(program), "-o",
         str(dynload / "_ssl.cpython-313-x86_64-linux-gnu.so")],
        check=True,
    )  # fmt: skip
    (dynload / "_hashlib.cpython-313-x86_64-linux-gnu.so").symlink_to(
        "_ssl.cpython-313-x86_64-linux-gnu.so"
    )
    tree = InterpreterTree(
        root, "3.13.5", "3.13", "3.13", "/install", (), (), stdlib / "config-3.13", True
    )
    out = tmp_path / "out"
    out.mkdir()
    packaged = package_tree(tree, out, build="20260101", metadata={}, mtime=315532800)
    suite = write_test_suite(tree, out, build="20260101", mtime=315532800)

    def members(path: Path) -> dict[str, tarfile.TarInfo]:
        with tarfile.open(path) as tar:
            return {m.name.removeprefix("python/"): m for m in tar.getmembers()}

    full = members(packaged.gz)
    assert packaged.stripped_gz is not None
    stripped = members(packaged.stripped_gz)
    tests = members(suite)
    ssl_so = "lib/python3.13/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so"
    hashlib_so = "lib/python3.13/lib-dynload/_hashlib.cpython-313-x86_64-linux-gnu.so"
    for kept in ("lib/python3.13/os.py", "lib/python3.13/ctypes/util.py", ssl_so, "bin/python3.13"):
        assert kept in full and kept in stripped, kept
    assert stripped[hashlib_so].issym() and stripped[hashlib_so].linkname == ssl_so.split("/")[-1]
    exe_rel = "lib/python3.13/site-packages/pip/_vendor/distlib/t64.exe"
    assert "lib/python3.13/__pycache__/os.cpython-313.pyc" in full and exe_rel in full
    assert "lib/python3.13/__pycache__/os.cpython-313.opt-1.pyc" in full
    assert "lib/python3.13/__pycache__/os.cpython-313.pyc" in stripped  # plain bytecode kept
    for left in (
        "lib/python3.13/__pycache__/os.cpython-313.opt-1.pyc",
        "lib/python3.13/ctypes/test/test_x.py",
        "lib/python3.13/lib-dynload/_testcapi.cpython-313-x86_64-linux-gnu.so",
        exe_rel,
    ):
        assert left not in stripped, left
    assert not [n for n in (*full, *stripped) if n.startswith("lib/python3.13/test")]
    assert not [n for n in (*full, *stripped) if n.endswith(".a")]
    for test in (
        "lib/python3.13/test/test_os.py",
        "lib/python3.13/ctypes/test/test_x.py",
        "lib/python3.13/lib-dynload/_testcapi.cpython-313-x86_64-linux-gnu.so",
    ):
        assert test in tests, test
    assert "lib/python3.13/os.py" not in tests and "bin/python3.13" not in tests
    # debug info stripped in the stripped archive only; the tree itself is left as it was
    assert stripped["bin/python3.13"].size < full["bin/python3.13"].size
    assert exe.stat().st_size == full["bin/python3.13"].size
    assert not (out / ".stripped-tree").exists()
