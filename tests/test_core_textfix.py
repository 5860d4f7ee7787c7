from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from relocpy.core.textfix import (
    PLACEHOLDER,
    SYSCONFIG_HEADER,
    parse_sysconfigdata,
    portable_compiler,
    python_config_script,
    relocatable_makefile,
    relocatable_pkgconfig,
    relocatable_sysconfigdata,
    relocate_sysconfig_vars,
    replace_path,
    replace_same_length,
    rewrite_shebang,
    same_length_path,
    strip_prefix_link_flags,
)

OLD = "/opt/py/3.12.1"
SYSCONFIG = f"""# system configuration generated and used by the sysconfig module
build_time_vars = {{'prefix': '{OLD}',
 'INCLUDEPY': '{OLD}/include/python3.12',
 'LDSHARED': 'gcc -shared -L{OLD}/lib -Wl,-rpath,{OLD}/lib',
 'CC': '/opt/zig/zig cc -target x86_64-linux-gnu.2.17',
 'abs_srcdir': '/tmp/build/Python-3.12.1',
 'RUNSHARED': 'LD_LIBRARY_PATH=/tmp/build/Python-3.12.1',
 'OTHER': '{OLD}x/not-this',
 'Py_ENABLE_SHARED': 1}}
"""


def test_parse_sysconfigdata_reads_the_literal_only() -> None:
    values = parse_sysconfigdata(SYSCONFIG + "\nimport os\n")
    assert values["prefix"] == OLD and values["Py_ENABLE_SHARED"] == 1


def test_relocated_sysconfigdata_keeps_the_header_uv_requires() -> None:
    text = relocatable_sysconfigdata(SYSCONFIG, OLD, ("/tmp/build/Python-3.12.1",))
    assert text.startswith(SYSCONFIG_HEADER + "build_time_vars = {")
    values = parse_sysconfigdata(text)
    assert values["prefix"] == PLACEHOLDER
    assert values["INCLUDEPY"] == f"{PLACEHOLDER}/include/python3.12"
    assert values["LDSHARED"] == "gcc -shared"
    assert values["CC"] == "cc"
    assert values["abs_srcdir"] == PLACEHOLDER
    assert values["OTHER"] == f"{OLD}x/not-this"
    assert OLD + "/" not in text and "/tmp/build" not in text


def test_relocated_sysconfigdata_follows_sys_base_prefix(tmp_path: Path) -> None:
    """Import the file the way sysconfig does, in a real interpreter whose base prefix we know."""
    (tmp_path / "_sysconfigdata_probe.py").write_text(relocatable_sysconfigdata(SYSCONFIG, OLD))
    code = (
        "import sys, json, _sysconfigdata_probe as m;"
        "print(json.dumps([sys.base_prefix, m.build_time_vars['INCLUDEPY'],"
        " m.build_time_vars['prefix']]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path)},
    ).stdout
    base, include, prefix = __import__("json").loads(out)
    assert include == f"{base}/include/python3.12" and prefix == base


def test_strip_prefix_link_flags() -> None:
    flags = f"-L{OLD}/lib -Wl,-rpath,{OLD}/lib -lm -L/usr/lib -I{OLD}/include -O2"
    assert strip_prefix_link_flags(flags, OLD) == "-lm -L/usr/lib -O2"
    assert strip_prefix_link_flags("-O2 -g", OLD) == "-O2 -g"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("CC", "gcc -pthread", "gcc -pthread"),
        ("CC", "/usr/lib/ccache/gcc", "cc"),
        ("CC", "/x/zig cc -target x86_64-linux-gnu.2.17 -O2", "cc -O2"),
        ("CXX", "/x/zig c++ -target x86_64-linux-gnu.2.17", "c++"),
        ("LDSHARED", "/x/zig cc -target=x86_64-linux-gnu.2.17 -shared", "cc -shared"),
        ("CPP", "/x/zig cc -E", "cc -E"),
        # a clang build: the host's cc and c++ build extensions, as for zig
        ("CC", "clang", "cc"),
        ("CXX", "clang++", "c++"),
        ("LDSHARED", "clang -shared -Wl,-z,now", "cc -shared -Wl,-z,now"),
        ("CPP", "clang -E", "cc -E"),
    ],
)
def test_portable_compiler(key: str, value: str, expected: str) -> None:
    assert portable_compiler(key, value) == expected


def test_relocate_vars_keeps_ints_and_unrelated_strings() -> None:
    out = relocate_sysconfig_vars({"A": 1, "B": "-O2", "C": f"{OLD}/lib"}, OLD)
    assert out == {"A": 1, "B": "-O2", "C": f"{PLACEHOLDER}/lib"}


def test_replace_path_respects_component_boundaries() -> None:
    assert replace_path(f"{OLD}/lib:{OLD} {OLD}x", OLD, "/N") == f"/N/lib:/N {OLD}x"


def test_makefile_prefix_is_computed_by_make(tmp_path: Path) -> None:
    makefile = (
        f"prefix=\t\t{OLD}\nexec_prefix=\t${{prefix}}\nLIBDIR=\t\t{OLD}/lib\n"
        f"LDFLAGS=\t\t-L{OLD}/lib -lm\nall:\n\t@echo $(LIBDIR) $(LDFLAGS)\n"
    )
    text = relocatable_makefile(makefile, OLD)
    assert OLD not in text
    config = tmp_path / "moved dir" / "lib" / "python3.12" / "config-3.12"
    config.mkdir(parents=True)
    (config / "Makefile").write_text(text)
    elsewhere = tmp_path / "moved"
    elsewhere.mkdir()
    shutil.copytree(tmp_path / "moved dir" / "lib", elsewhere / "lib")
    out = subprocess.run(
        ["make", "-s", "-f", str(elsewhere / "lib/python3.12/config-3.12/Makefile")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == [f"{elsewhere}/lib", "-lm"]


def test_pkgconfig_follows_the_file(tmp_path: Path) -> None:
    pc = (
        f"prefix={OLD}\nexec_prefix=${{prefix}}\nincludedir={OLD}/include\n"
        "Name: Python\nDescription: x\nVersion: 3.12\nCflags: -I${includedir}/python3.12\n"
    )
    text = relocatable_pkgconfig(pc, OLD)
    assert OLD not in text
    pcdir = tmp_path / "tree" / "lib" / "pkgconfig"
    pcdir.mkdir(parents=True)
    (pcdir / "python-3.12.pc").write_text(text)
    out = subprocess.run(
        ["pkg-config", "--variable=includedir", "python-3.12"],
        env={"PKG_CONFIG_PATH": str(pcdir), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(out).resolve() == (tmp_path / "tree" / "include").resolve()


def _fake_bin(tmp_path: Path, name: str) -> Path:
    bindir = tmp_path / "tree with space ü" / "bin"
    bindir.mkdir(parents=True)
    (bindir / name).symlink_to(sys.executable)
    return bindir


def test_shebang_trampoline_runs_from_a_moved_bin_dir(tmp_path: Path) -> None:
    bindir = _fake_bin(tmp_path, "python3.99")
    script = f"#!{OLD}/bin/python3.99 -s\nimport sys\nprint(sys.argv[1:])\n".encode()
    fixed = rewrite_shebang(script, OLD, {"python3.99", "python"}, "python3.99")
    assert fixed is not None and fixed.startswith(b"#!/bin/sh\n") and OLD.encode() not in fixed
    (bindir / "tool").write_bytes(fixed)
    (bindir / "tool").chmod(0o755)
    link_dir = tmp_path / "links"
    link_dir.mkdir()
    (link_dir / "tool").symlink_to(bindir / "tool")
    for entry in (bindir / "tool", link_dir / "tool"):
        out = subprocess.run([str(entry), "a b", "c"], capture_output=True, text=True, env={})
        assert out.stdout.strip() == "['a b', 'c']", out.stderr


def test_foreign_shebangs_are_left_alone() -> None:
    names = {"python3", "python3.13"}
    assert rewrite_shebang(b"#!/bin/sh\necho\n", OLD, names, "python3.13") is None
    assert rewrite_shebang(b"#!/usr/bin/python3\n", OLD, names, "python3.13") is None
    assert rewrite_shebang(b"no shebang\n", OLD, names, "python3.13") is None
    assert rewrite_shebang(b"#!/install/bin/python3.13\n", OLD, names, "python3.13") is not None


def test_shebang_naming_python_runs_the_versioned_interpreter(tmp_path: Path) -> None:
    """ensurepip of 3.11 writes `#!<prefix>/bin/python`; a tree need not have that name."""
    bindir = _fake_bin(tmp_path, "python3.99")
    fixed = rewrite_shebang(b"#!/install/bin/python\nprint('ok')\n", OLD, {"python"}, "python3.99")
    assert fixed is not None
    (bindir / "pip3").write_bytes(fixed)
    (bindir / "pip3").chmod(0o755)
    out = subprocess.run([bindir / "pip3"], capture_output=True, text=True, env={})
    assert out.stdout.strip() == "ok", out.stderr


def test_python_config_script_finds_its_tree(tmp_path: Path) -> None:
    bindir = _fake_bin(tmp_path, "python3.99")
    config = bindir.parent / "lib" / "python3.99" / "config-3.99"
    config.mkdir(parents=True)
    (config / "python-config.py").write_text("import sys\nprint('config', sys.argv[1:])\n")
    script = bindir / "python3.99-config"
    script.write_text(python_config_script("3.99", "config-3.99"))
    script.chmod(0o755)
    (bindir / "python3-config").symlink_to("python3.99-config")
    out = subprocess.run(
        [str(bindir / "python3-config"), "--includes"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "config ['--includes']", out.stderr


def test_same_length_path_keeps_the_last_component() -> None:
    new = same_length_path("/root/.pyenv/versions/3.12.1")
    assert new == "/install//////////////3.12.1" and len(new) == len("/root/.pyenv/versions/3.12.1")
    assert same_length_path("/opt/3.12") is None  # too short to hold the placeholder


def test_same_length_path_keeps_a_tail_of_a_long_last_component() -> None:
    old = "/tmp/relocpy-build-3.13.15-24kpa88k"  # a work directory named in debug info
    new = same_length_path(old)
    assert new is not None and len(new) == len(old)
    kept = new.removeprefix("/install/")
    assert "/" not in kept and old.endswith(kept) and len(kept) == len(old) - len("/install/")


def test_replace_same_length_keeps_merged_suffix_strings() -> None:
    old = "/root/.pyenv/versions/3.12.1"
    new = same_length_path(old)
    assert new is not None
    # A linker may let PY_VERSION ("3.12.1") point into the tail of the prefix string.
    data = b"\0" + old.encode() + b"\0lib\0" + old.encode("utf-32-le") + b"\0" * 4
    out, count = replace_same_length(data, old, new)
    assert count == 2 and len(out) == len(data)
    assert old.encode() not in out and old.encode("utf-32-le") not in out
    tail = out.index(b"3.12.1\0")
    assert out[tail : tail + 7] == b"3.12.1\0"


def test_python_config_names_lib_for_shared_builds() -> None:
    from relocpy.core.textfix import python_config_libdir

    original = (
        "        if opt == '--ldflags':\n"
        "            if not getvar('Py_ENABLE_SHARED'):\n"
        "                libs.insert(0, '-L' + getvar('LIBPL'))\n"
        "        print(' '.join(libs))\n"
    )
    fixed = python_config_libdir(original)
    assert "            else:  # relocpy" in fixed
    assert "                libs.insert(0, '-L' + getvar('LIBDIR'))\n" in fixed
    assert python_config_libdir(fixed) == fixed  # applied once only
    compile(textwrap.dedent(fixed), "python-config.py", "exec")
    assert python_config_libdir("print(1)\n") == "print(1)\n"


def test_prefix_maps_of_the_build_do_not_reach_sysconfig() -> None:
    """CPython is compiled with -ffile-prefix-map=<work dir>=/relocpy/build (reproducible debug
    info); the flag names the build machine's directory and must not reach extension builds."""
    from relocpy.core.textfix import (
        relocatable_makefile,
        relocate_sysconfig_vars,
        strip_prefix_maps,
    )

    flag = "-ffile-prefix-map=/tmp/relocpy-build-3.13.15-ab12=/relocpy/build"
    assert strip_prefix_maps(f"-g {flag} -std=c11") == "-g -std=c11"
    assert strip_prefix_maps("-fno-strict-aliasing") == "-fno-strict-aliasing"
    values = relocate_sysconfig_vars(
        {"CONFIGURE_CFLAGS_NODIST": f"{flag} -std=c11", "PY_CFLAGS_NODIST": f"-O3 {flag}"},
        "/install",
        ("/tmp/relocpy-build-3.13.15-ab12",),
    )
    assert not [v for v in values.values() if "prefix-map" in str(v) or "relocpy-build" in str(v)]
    for line in (f"CONFIGURE_CFLAGS_NODIST= {flag} -std=c11", f"CONFIGURE_CFLAGS_NODIST={flag} -g"):
        makefile = relocatable_makefile(f"prefix=/install\n{line}\n", "/install")
        assert "prefix-map" not in makefile and "CONFIGURE_CFLAGS_NODIST=" in makefile, makefile


def test_build_machine_tool_paths_become_tool_names() -> None:
    """AR, CC and CONFIG_ARGS named the build machine's toolchain wrappers by absolute path
    (zig's inside RELOCPY_HOME): another machine finds the tools on PATH by their names."""
    from relocpy.core.textfix import relocatable_makefile, relocate_sysconfig_vars

    bindir = "/home/u/.cache/relocpy/toolchains/ziglang-0.17.1/bin-x86_64-linux-gnu.2.17"
    values = relocate_sysconfig_vars(
        {
            "AR": f"{bindir}/ar",
            "CONFIG_ARGS": f"'--prefix=/install' 'CC={bindir}/cc' 'AR={bindir}/ar'",
            "BINDIR": "/install/bin",
            "LIBPL": "/install/lib/python3.13/config-3.13-x86_64-linux-gnu",
            "OTHER": f"{bindir}/ar",  # not a tool variable: left as it is
        },
        "/install",
    )
    assert values["AR"] == "ar"
    assert values["CONFIG_ARGS"] == "'--prefix=/install' 'CC=cc' 'AR=ar'"
    assert values["BINDIR"] == "/install/bin" and values["OTHER"] == f"{bindir}/ar"
    makefile = relocatable_makefile(
        f"prefix=\t\t/install\nCC=\t\t{bindir}/cc\nAR=\t\t{bindir}/ar\n"
        f"CONFIG_ARGS=\t '--prefix=/install' 'CC={bindir}/cc'\nLIBDIR=\t\t$(prefix)/lib\n",
        "/install",
    )
    assert bindir not in makefile
    assert "CC=\t\tcc\n" in makefile and "AR=\t\tar\n" in makefile
    assert "'CC=cc'" in makefile and "LIBDIR=\t\t$(prefix)/lib\n" in makefile
