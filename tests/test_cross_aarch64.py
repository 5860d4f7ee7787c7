"""A real aarch64 CPython, cross-compiled with zig and proven under qemu-user on this machine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import passed_checks
from relocpy.core.errors import RelocpyError
from relocpy.install.selection import Machine, select
from relocpy.package.mirror import parse_index, write_index
from relocpy.verify.checks import verify


@pytest.mark.real
def test_aarch64_build_runs_every_check_under_qemu(built_aarch64, tmp_path: Path) -> None:
    archives = built_aarch64.archives
    assert "-aarch64-unknown-linux-gnu-install_only" in archives.gz.name
    options = json.loads(archives.metadata.read_text())["build_options"]
    assert options["target"] == "aarch64-unknown-linux-gnu" and options["glibc_target"] == "2.17"
    table = tmp_path / "elf.md"
    report = verify(archives.gz)
    table.write_text(report.elf_table)
    checks = passed_checks(report)
    assert "AArch64, GLIBC_2.17" in checks["binutils-audit"]
    assert "compiled with aarch64-linux-gnu-gcc" in checks["c-extension"]
    assert {"starts", "extensions-import", "ssl-ca-store", "venv-pip", "second-move-paths"} <= set(
        checks
    )
    rows = [line for line in report.elf_table.splitlines() if line.startswith("| lib")]
    assert rows and all("| AArch64 |" in row for row in rows)


@pytest.mark.real
def test_aarch64_archive_is_offered_to_aarch64_machines_only(built_aarch64, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for path in (built_aarch64.archives.gz, built_aarch64.archives.metadata):
        os.link(path, mirror / path.name)
    write_index(mirror)
    downloads = json.loads((mirror / "uv-downloads.json").read_text())
    (entry,) = downloads.values()
    assert entry["arch"]["family"] == "aarch64" and entry["libc"] == "gnu"
    entries = parse_index((mirror / "index.json").read_text())
    arm = Machine("aarch64", "gnu", (2, 17))
    assert select("3.13", entries, arm).name == built_aarch64.archives.gz.name
    with pytest.raises(RelocpyError, match="built for aarch64, this machine is x86_64"):
        select("3.13", entries, Machine("x86_64", "gnu", (2, 36)))
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
        "RELOCPY_HOME": str(tmp_path / "relocpy"),
        "RELOCPY_BIN_DIR": str(tmp_path / "bin"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "relocpy", "install", "3.13", "--mirror", str(mirror), "--no-build"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert result.returncode != 0 and "built for aarch64" in result.stderr
    assert not (tmp_path / "bin").exists() or not any((tmp_path / "bin").iterdir())


# what readelf calls each CPU (binutils-audit's detail), and the glibc floor zig gives it
OTHER_CPUS = {
    "ppc64le": ("PowerPC64", "2.19"),
    "s390x": ("IBM S/390", "2.17"),
    "riscv64": ("RISC-V", "2.27"),
}


@pytest.mark.real
@pytest.mark.bench  # three more cross builds (~12 minutes each here): left to bench runs
@pytest.mark.parametrize("arch", sorted(OTHER_CPUS))
def test_other_cpus_build_and_run_every_check_under_qemu(
    arch: str, built_tree, tmp_path: Path
) -> None:
    """ppc64le, s390x (big-endian) and riscv64, cross-compiled with zig at the lowest glibc
    it provides for each, pass every check under qemu-user, the C extension compiled with
    Debian's cross gcc of that CPU (scripts/setup --all-targets)."""
    from relocpy.pipeline import build

    readelf_name, floor = OTHER_CPUS[arch]
    result = build(
        "3.13", tmp_path / "dist", target=f"{arch}-linux-gnu", build_tag="20260101",
        stripped=False, build_python=built_tree.executable,
    )  # fmt: skip
    options = json.loads(result.archives.metadata.read_text())["build_options"]
    assert options["target"] == f"{arch}-unknown-linux-gnu" and options["glibc_target"] == floor
    report = verify(result.archives.gz)
    checks = passed_checks(report)
    # zig's stubs for the floor; the symbols taken may all be older (ppc64le's are 2.17's)
    highest = re.search(r"highest GLIBC_(\d+)\.(\d+)", checks["glibc"])
    assert highest and (int(highest[1]), int(highest[2])) <= tuple(map(int, floor.split(".")))
    assert readelf_name in checks["binutils-audit"]
    gcc = {"ppc64le": "powerpc64le"}.get(arch, arch)
    assert f"compiled with {gcc}-linux-gnu-gcc" in checks["c-extension"]
