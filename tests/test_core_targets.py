"""Targets: names, triples and the binfmt_misc rules that let this machine run them."""

from __future__ import annotations

from pathlib import Path

import pytest

from relocpy.core import emulation
from relocpy.core.errors import MissingToolError, RelocpyError
from relocpy.core.targets import (
    TARGETS,
    Target,
    host_target,
    is_cross,
    parse_target,
    target_of_elf,
)

# qemu's own scripts/qemu-binfmt-conf.sh (qemu 7.2), for the CPUs it names
QEMU_CONF = {
    "aarch64": (
        r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
    "s390x": (
        r"\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    ),
    "riscv64": (
        r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
}
MACHINES = {"aarch64": 183, "s390x": 22, "riscv64": 243}


def _bytes(escaped: str) -> bytes:
    """What binfmt_misc reads from a \\x-escaped field."""
    return escaped.encode("latin-1").decode("unicode_escape").encode("latin-1")


def _target(arch: str) -> Target:
    return Target(arch, "gnu", "2.17", f"linux-{arch}", MACHINES[arch], arch, arch)


@pytest.mark.parametrize("arch", sorted(QEMU_CONF))
def test_binfmt_magic_and_mask_are_qemus(arch: str) -> None:
    rule = emulation.binfmt_rule(_target(arch), f"/usr/bin/qemu-{arch}-static")
    name, kind, offset, magic, mask, interpreter, flags = rule.split(":")[1:]
    assert (name, kind, offset) == (f"relocpy-{arch}", "M", "")
    assert (_bytes(magic), _bytes(mask)) == tuple(_bytes(text) for text in QEMU_CONF[arch])
    assert (interpreter, flags) == (f"/usr/bin/qemu-{arch}-static", "F")


def test_binfmt_magic_matches_a_real_elf_header() -> None:
    """The rule matches what zig writes for aarch64 (an executable and a shared object) and
    not an x86_64 one: checked on real headers, as the kernel compares them."""
    magic, mask = TARGETS["aarch64-linux-gnu"].binfmt
    aarch64_exec = bytes.fromhex("7f454c4602010100000000000000000002 00b700".replace(" ", ""))
    aarch64_dyn = bytes.fromhex("7f454c460201010000000000000000000300b700")
    x86_64_dyn = bytes.fromhex("7f454c4602010100000000000000000003003e00")

    def matches(header: bytes) -> bool:
        return all((h & m) == (g & m) for h, g, m in zip(header, magic, mask, strict=True))

    assert matches(aarch64_exec) and matches(aarch64_dyn)
    assert not matches(x86_64_dyn)


def test_names_and_triples() -> None:
    arm = parse_target("aarch64-linux-gnu")
    assert arm.triple == "aarch64-unknown-linux-gnu"
    assert arm.zig_target(None) == "aarch64-linux-gnu.2.17"
    assert arm.zig_target("2.28") == "aarch64-linux-gnu.2.28"
    assert parse_target("aarch64-unknown-linux-gnu") is arm
    assert parse_target("arm64-linux-gnu") is arm
    assert parse_target(None) == host_target()
    assert is_cross(arm) and not is_cross(host_target())
    with pytest.raises(RelocpyError, match="unknown target 'sparc-linux-gnu'") as info:
        parse_target("sparc-linux-gnu")
    assert "aarch64-linux-gnu" in (info.value.hint or "")


def _entry(directory: Path, name: str, magic: bytes, enabled: bool = True) -> None:
    (directory / name).write_text(
        f"{'enabled' if enabled else 'disabled'}\ninterpreter /usr/bin/qemu-x-static\n"
        f"flags: F\noffset 0\nmagic {magic.hex()}\nmask ffff\n"
    )


def test_registered_for_reads_binfmt_entries(tmp_path: Path) -> None:
    arm = TARGETS["aarch64-linux-gnu"]
    (tmp_path / "register").write_text("")
    (tmp_path / "status").write_text("enabled\n")
    assert emulation.registered_for(arm, tmp_path) is None
    _entry(tmp_path, "qemu-aarch64", arm.binfmt[0], enabled=False)
    assert emulation.registered_for(arm, tmp_path) is None  # a disabled entry runs nothing
    _entry(tmp_path, "other", arm.binfmt[0])
    assert emulation.registered_for(arm, tmp_path) == "/usr/bin/qemu-x-static"
    assert emulation.registered_for(arm, tmp_path / "absent") is None


def test_enable_names_a_missing_qemu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulation.shutil, "which", lambda name: None)
    with pytest.raises(MissingToolError, match="qemu-aarch64-static is not installed") as info:
        emulation.enable(TARGETS["aarch64-linux-gnu"])
    assert "qemu-user-static" in (info.value.hint or "")
    assert emulation.enable(host_target()) is None  # the host's own: nothing to do


def test_requirements_name_the_packages() -> None:
    needs = emulation.emulation_requirements(TARGETS["aarch64-linux-gnu"], "a build")
    assert {(r.name, r.package) for r in needs} == {
        ("qemu-aarch64-static", "qemu-user-static"),
        ("/usr/aarch64-linux-gnu/lib/libc.so.6", "libc6-arm64-cross"),
    }
    assert emulation.emulation_requirements(host_target(), "a build") == []


def test_other_cpus_are_spelt_as_each_tool_spells_them() -> None:
    """ppc64le is powerpc64le to zig, autoconf and Debian's multiarch, ppc64el to dpkg; each
    CPU's glibc floor is the lowest zig provides (2.17 where it can, as manylinux2014)."""
    ppc = parse_target("ppc64le-unknown-linux-gnu")
    assert (ppc.name, ppc.triple) == ("ppc64le-linux-gnu", "ppc64le-unknown-linux-gnu")
    assert ppc.zig_target(None) == "powerpc64le-linux-gnu.2.19"
    assert ppc.gnu_host == ppc.multiarch == "powerpc64le-linux-gnu"
    assert ppc.cross_gcc_package == "gcc-powerpc64le-linux-gnu"
    assert ppc.cross_prefix == "powerpc64le-linux-gnu-"
    needs = emulation.emulation_requirements(ppc, "a build")
    assert {(r.name, r.package) for r in needs} == {
        ("qemu-ppc64le-static", "qemu-user-static"),
        ("/usr/powerpc64le-linux-gnu/lib/libc.so.6", "libc6-ppc64el-cross"),
    }
    s390x, riscv = parse_target("s390x-linux-gnu"), parse_target("riscv64-linux-gnu")
    assert s390x.zig_target(None) == "s390x-linux-gnu.2.17"
    assert riscv.zig_target(None) == "riscv64-linux-gnu.2.27"
    assert riscv.cross_libc_root == "/usr/riscv64-linux-gnu"
    for target in (ppc, s390x, riscv):
        assert target_of_elf(ELF_NAMES[target.arch]) is target


# pyelftools' names of these CPUs' e_machine
ELF_NAMES = {"ppc64le": "64-bit PowerPC", "s390x": "IBM S/390", "riscv64": "RISC-V"}


@pytest.mark.parametrize(
    ("name", "header"),
    [
        # the first 20 bytes of what `zig cc -target <cpu>-linux-gnu.<floor>` writes
        ("ppc64le-linux-gnu", "7f454c4602010100000000000000000002001500"),
        ("s390x-linux-gnu", "7f454c4602020100000000000000000000020016"),
        ("riscv64-linux-gnu", "7f454c460201010000000000000000000300f300"),
    ],
)
def test_binfmt_rules_match_each_cpus_real_header(name: str, header: str) -> None:
    magic, mask = TARGETS[name].binfmt
    data = bytes.fromhex(header)
    assert all((h & m) == (g & m) for h, g, m in zip(data, magic, mask, strict=True))
    for other in TARGETS.values():
        if other.arch != TARGETS[name].arch:
            magic, mask = other.binfmt
            assert not all((h & m) == (g & m) for h, g, m in zip(data, magic, mask, strict=True))


def test_ppc64le_compiles_long_double_as_double_and_says_so_in_its_identity() -> None:
    """glibc before 2.32 has no IEEE-quad printf (__printfieee128), and zig no IBM
    double-double helpers (__gcc_qadd): zig's wrapper passes -mlong-double-64 for ppc64le,
    and the toolchain identity (cache keys) names it."""
    from relocpy.build.zig import zig_identity

    ppc = TARGETS["ppc64le-linux-gnu"]
    assert ppc.cflags == ("-mlong-double-64",)
    assert "powerpc64le-linux-gnu.2.19 -mlong-double-64," in zig_identity("2.19", ppc)
    arm = TARGETS["aarch64-linux-gnu"]
    assert zig_identity("2.17", arm).startswith("zig ") and "-mabi" not in zig_identity("2.17", arm)
