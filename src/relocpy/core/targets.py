"""The machines relocpy builds for: CPU, C library, and what each needs to be built and run.

Pure data and lookups. A target is named as zig names it (`aarch64-linux-gnu`); archives carry
python-build-standalone's triple (`aarch64-unknown-linux-gnu`). The host is x86_64; every other
CPU is cross-compiled with zig and run under qemu-user (`core.emulation`).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from relocpy.core.errors import RelocpyError


@dataclass(frozen=True)
class Target:
    arch: str  # as `uname -m` and python-build-standalone say it: x86_64, aarch64, ...
    libc: str  # "gnu" (glibc) or "musl"
    glibc_floor: str  # the oldest glibc its builds run on (manylinux2014's 2.17 where it can)
    openssl: str  # OpenSSL's ./Configure target
    e_machine: int  # the ELF header's e_machine
    debian_arch: str  # dpkg's name of the CPU (Debian's packages for it)
    qemu: str  # qemu-user's name of the CPU (qemu-<name>-static)
    # the GNU name of the CPU, where it is not `arch` (ppc64le is powerpc64le to zig, autoconf
    # and Debian's multiarch directories)
    gnu_cpu: str = ""
    # what every compile for it takes (in the compiler wrapper, so every build step has it)
    cflags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The CLI's name: aarch64-linux-gnu, ppc64le-linux-gnu."""
        return f"{self.arch}-linux-{self.libc}"

    @property
    def cpu(self) -> str:
        """The CPU as zig, autoconf and Debian's multiarch spell it: powerpc64le."""
        return self.gnu_cpu or self.arch

    @property
    def triple(self) -> str:
        """python-build-standalone's triple: aarch64-unknown-linux-gnu."""
        return f"{self.arch}-unknown-linux-{self.libc}"

    @property
    def gnu_host(self) -> str:
        """What autoconf's --host and --build take: aarch64-linux-gnu, powerpc64le-linux-gnu."""
        return f"{self.cpu}-linux-{self.libc}"

    @property
    def multiarch(self) -> str:
        """Debian's multiarch directory of the CPU's glibc packages (lib/aarch64-linux-gnu),
        where the Debian packages a recipe takes prebuilt keep their files."""
        return f"{self.cpu}-linux-gnu"

    @property
    def cross_prefix(self) -> str:
        """Debian's cross toolchain prefix: `aarch64-linux-gnu-` (gcc-aarch64-linux-gnu). Its
        binutils (strip) read the CPU's ELF files whatever their C library."""
        return f"{self.multiarch}-"

    @property
    def cross_gcc_package(self) -> str:
        return f"gcc-{self.multiarch}"

    @property
    def cross_libc_root(self) -> str:
        """Where Debian's libc6-<arch>-cross puts the target's loader and C library: a root for
        qemu-user to find /lib/ld-linux-*.so.1 in (QEMU_LD_PREFIX)."""
        return f"/usr/{self.multiarch}"

    @property
    def musllinux(self) -> str | None:
        """The musllinux platform tag of a dynamic musl build (musllinux_1_2_x86_64)."""
        if self.libc != "musl":
            return None
        major, minor = MUSL_VERSION.split(".")[:2]
        return f"musllinux_{major}_{minor}_{self.arch}"

    def zig_target(self, glibc: str | None) -> str:
        """`zig cc -target` for this target: aarch64-linux-gnu.2.17, or x86_64-linux-musl."""
        if self.libc == "gnu":
            return f"{self.gnu_host}.{glibc or self.glibc_floor}"
        return self.gnu_host

    @property
    def binfmt(self) -> tuple[bytes, bytes]:
        """(magic, mask) binfmt_misc matches this target's executables and shared objects by:
        the ELF identification (64-bit, byte order, version), e_type EXEC or DYN (the mask
        drops the low bit), and e_machine. As qemu's own qemu-binfmt-conf.sh has them."""
        little = self.arch not in BIG_ENDIAN
        ident = b"\x7fELF\x02" + (b"\x01" if little else b"\x02") + b"\x01" + b"\x00" * 9
        machine = self.e_machine.to_bytes(2, "little" if little else "big")
        etype = (2).to_bytes(2, "little" if little else "big")
        magic = ident + etype + machine
        ident_mask = b"\xff" * 7 + b"\x00" + b"\xff" * 8
        etype_mask = b"\xfe\xff" if little else b"\xff\xfe"
        return magic, ident_mask + etype_mask + b"\xff\xff"


BIG_ENDIAN = frozenset({"s390x"})
# The musl zig 0.17 builds and links (its lib/libc/musl/VERSION)
MUSL_VERSION = "1.2.5"

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("x86_64", "gnu", "2.17", "linux-x86_64", 62, "amd64", "x86_64"),
        Target("aarch64", "gnu", "2.17", "linux-aarch64", 183, "arm64", "aarch64"),
        # musl: no glibc floor (the field is not read for them)
        Target("x86_64", "musl", "", "linux-x86_64", 62, "amd64", "x86_64"),
        Target("aarch64", "musl", "", "linux-aarch64", 183, "arm64", "aarch64"),
        # zig's floors: 2.17 is refused for powerpc64le (2.19 is its lowest), and RISC-V's
        # glibc port begins at 2.27
        # long double as double: zig's default, IEEE quad, needs glibc 2.32's printf family
        # (__printfieee128 ...), and IBM's double-double needs libgcc's helpers (__gcc_qadd
        # ...), which zig's compiler-rt lacks. glibc's headers redirect long double calls to
        # its __nldbl_ functions for such code (since 2.4), and musl on ppc64le does the same.
        Target(
            "ppc64le",
            "gnu",
            "2.19",
            "linux-ppc64le",
            21,
            "ppc64el",
            "ppc64le",
            "powerpc64le",
            ("-mlong-double-64",),
        ),
        Target("s390x", "gnu", "2.17", "linux64-s390x", 22, "s390x", "s390x"),
        Target("riscv64", "gnu", "2.27", "linux64-riscv64", 243, "riscv64", "riscv64"),
    )
}

HOST_ARCH = platform.machine() or "x86_64"


def host_target() -> Target:
    """The machine relocpy runs on."""
    return TARGETS.get(f"{HOST_ARCH}-linux-gnu") or Target(
        HOST_ARCH, "gnu", "2.17", f"linux-{HOST_ARCH}", 0, HOST_ARCH, HOST_ARCH
    )


def parse_target(text: str | None) -> Target:
    """`aarch64-linux-gnu`, or python-build-standalone's `aarch64-unknown-linux-gnu`, or None
    for the host."""
    if text is None or text in ("", "host", "native"):
        return host_target()
    name = text.strip().replace("-unknown-", "-").replace("arm64", "aarch64")
    if name in TARGETS:
        return TARGETS[name]
    raise RelocpyError(
        f"unknown target {text!r}",
        hint=f"choose one of {', '.join(TARGETS)}",
    )


# pyelftools' names of the CPUs above (ELFFile.get_machine_arch)
_ELF_MACHINE_NAMES = {
    "x64": "x86_64",
    "AArch64": "aarch64",
    "64-bit PowerPC": "ppc64le",
    "IBM S/390": "s390x",
    "RISC-V": "riscv64",
}


def target_of_elf(machine: str, libc: str = "gnu") -> Target:
    """The target whose programs run on `machine` (pyelftools' name of e_machine: AArch64)."""
    arch = _ELF_MACHINE_NAMES.get(machine)
    found = TARGETS.get(f"{arch}-linux-{libc}") if arch else None
    if found is None:
        raise RelocpyError(
            f"relocpy knows no target for ELF machine {machine} ({libc})",
            hint=f"the targets it builds and runs: {', '.join(TARGETS)}",
        )
    return found


def is_cross(target: Target) -> bool:
    """Whether `target` is not the machine relocpy runs on: a cross build (configure's --host
    differs), for another CPU or another C library."""
    return target.arch != HOST_ARCH or target.libc != host_target().libc


def needs_emulation(target: Target) -> bool:
    """Whether `target`'s programs run here only under qemu-user (another CPU)."""
    return target.arch != HOST_ARCH
