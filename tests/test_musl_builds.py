"""Real musl CPythons: the static one run in an empty root, the dynamic one in a root with only
musl's loader, where pip installs a musllinux wheel."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import passed_checks
from relocpy.core.archive import extract_archive
from relocpy.core.errors import RelocpyError
from relocpy.install.selection import Machine, select
from relocpy.package.mirror import parse_index, write_index
from relocpy.verify.checks import verify


@pytest.mark.real
def test_musl_static_build_runs_alone_in_an_empty_root(built_musl_static, tmp_path: Path) -> None:
    archives = built_musl_static.archives
    assert "-x86_64-unknown-linux-musl-static+install_only.tar.gz" in archives.gz.name
    info = json.loads(archives.metadata.read_text())
    assert (info["libc"], info["variant"], info["policy"]) == ("musl", "static", "static")
    assert info["build_options"]["static"] is True and info["glibc_floor"] is None
    report = verify(archives.gz)
    checks = passed_checks(report)
    assert "alone in an empty root" in checks["empty-root"]
    assert "built-in modules import" in checks["extensions-import"]
    assert checks["c-extension"].startswith("skipped: a static interpreter")
    assert {"starts", "ssl-ca-store", "venv-pip", "required-modules", "second-move-paths"} <= set(
        checks
    )


@pytest.mark.real
def test_musl_static_tree_is_one_static_executable(built_musl_static, tmp_path: Path) -> None:
    extract_archive(built_musl_static.archives.gz, tmp_path)
    root = tmp_path / "python"
    executable = (root / "bin" / "python3.13").resolve()
    with executable.open("rb") as handle:
        elf = ELFFile(handle)
        kinds = {segment["p_type"] for segment in elf.iter_segments()}
        dynamic = elf.get_section_by_name(".dynamic")
        needed = [t.needed for t in dynamic.iter_tags("DT_NEEDED")] if dynamic else []
        flags = [t.entry.d_val for t in dynamic.iter_tags("DT_FLAGS_1")] if dynamic else []
        kind = elf["e_type"]
    # static-pie: no loader, no library; it relocates itself (its only dynamic section)
    assert "PT_INTERP" not in kinds and needed == [] and kind == "ET_DYN"
    assert flags and flags[0] & 0x08000000  # DF_1_PIE
    # nothing left to load: no shared module, no libpython
    shared = [p.name for p in root.rglob("*.so*") if p.is_file()]
    assert shared == [], shared
    # tkinter's module is in too (Tk and Xlib static; Debian's libXau with its glibc shim)
    result = subprocess.run(
        [str(executable), "-c", "import sys; print(sorted(sys.builtin_module_names))"],
        capture_output=True, text=True, env={}, check=True,
    )  # fmt: skip
    for name in ("_tkinter", "_ssl", "_sqlite3", "_ctypes", "_decimal", "_curses", "readline"):
        assert f"'{name}'" in result.stdout


@pytest.mark.real
def test_static_builds_are_left_out_of_uvs_list_and_offered_to_musl(
    built_musl_static, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for path in (built_musl_static.archives.gz, built_musl_static.archives.metadata):
        os.link(path, mirror / path.name)
    write_index(mirror)
    assert json.loads((mirror / "uv-downloads.json").read_text()) == {}
    entries = parse_index((mirror / "index.json").read_text())
    (entry,) = entries
    assert (entry.libc, entry.variant, entry.flavour) == ("musl", "static", "install_only")
    assert select("3.13", entries, Machine("x86_64", "musl", (0, 0))).name == entry.name
    with pytest.raises(RelocpyError, match="built for musl"):
        select("3.13", entries, Machine("x86_64", "gnu", (2, 36)))


@pytest.mark.real
@pytest.mark.bench  # a fourth 3.13 build: left to bench runs (CI time)
def test_musl_dynamic_build_installs_a_musllinux_wheel_in_a_musl_only_root(
    built_musl, tmp_path: Path
) -> None:
    archives = built_musl.archives
    assert archives.gz.name.endswith("-x86_64-unknown-linux-musl-install_only.tar.gz")
    info = json.loads(archives.metadata.read_text())
    assert (info["libc"], info["variant"], info["policy"]) == ("musl", "default", "musllinux_1_2")
    report = verify(archives.gz)
    checks = passed_checks(report)
    assert "compiled with musl-gcc" in checks["c-extension"]
    assert "musllinux_1_2_x86_64.whl" in checks["musl-root"]
    assert "and it imports" in checks["musl-root"]
    # musl's loader and libc.so, nothing else, whatever file asks
    extract_archive(archives.gz, tmp_path)
    executable = tmp_path / "python" / "bin" / "python3.13"
    with executable.open("rb") as handle:
        elf = ELFFile(handle)
        interp = next(s for s in elf.iter_segments() if s["p_type"] == "PT_INTERP")
        loader = interp.get_interp_name()
        needed = [t.needed for t in elf.get_section_by_name(".dynamic").iter_tags("DT_NEEDED")]
    assert loader == "/lib/ld-musl-x86_64.so.1" and needed == ["libc.so"]


@pytest.mark.real
@pytest.mark.bench  # another 3.13 build, for aarch64: left to bench runs (CI time)
def test_aarch64_musl_dynamic_build_runs_every_check_under_qemu(built_aarch64_musl) -> None:
    """Debian has no aarch64 musl cross compiler and apt here no arm64 package: the C
    extension is compiled with zig for aarch64-linux-musl, and qemu runs the tree with
    Debian's arm64 musl (from the archive's pool) as its loader; pip, which runs that loader
    to learn musl's version, runs in a root that holds it."""
    archives = built_aarch64_musl.archives
    assert archives.gz.name.endswith("-aarch64-unknown-linux-musl-install_only.tar.gz")
    info = json.loads(archives.metadata.read_text())
    assert (info["libc"], info["policy"]) == ("musl", "musllinux_1_2")
    report = verify(archives.gz)
    checks = passed_checks(report)
    assert "bin-aarch64-linux-musl/cc" in checks["c-extension"]
    assert "musllinux_1_2_aarch64.whl" in checks["musl-root"]
    assert "in a root with only ld-musl-aarch64.so.1" in checks["venv-pip"]


@pytest.mark.real
@pytest.mark.bench  # a fourth 3.13 build: left to bench runs (CI time)
def test_uv_is_offered_the_dynamic_musl_build(built_musl, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for path in (built_musl.archives.gz, built_musl.archives.metadata):
        os.link(path, mirror / path.name)
    write_index(mirror)
    downloads = json.loads((mirror / "uv-downloads.json").read_text())
    (entry,) = downloads.values()
    assert (entry["libc"], entry["arch"]["family"], entry["variant"]) == ("musl", "x86_64", None)
    entries = parse_index((mirror / "index.json").read_text())
    assert select("3.13", entries, Machine("x86_64", "musl", (0, 0))).name == entries[0].name


@pytest.mark.real
def test_a_static_build_writes_no_empty_test_suite(built_musl_static) -> None:
    # configure's --disable-test-modules installs no `test` package: nothing to ship
    assert built_musl_static.test_suite is None
    assert not list(built_musl_static.archives.gz.parent.glob("*test_suite*"))
