"""The musl loader of another CPU, for qemu-user: Debian's `musl` package of that CPU.

A dynamic musl program asks for /lib/ld-musl-<arch>.so.1 (musl's loader, which is also its C
library). For this machine's CPU that is Debian's `musl` package (scripts/setup installs it).
For another CPU, apt here lists no package, so the same package of that CPU is taken from the
archive's pool, checksum pinned, and unpacked once into the cache: a root that qemu-user reads
the loader from (QEMU_LD_PREFIX), and that verify copies into a root of its own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from relocpy.core import emulation
from relocpy.core.emulation import LOADER_PREFIX_VARIABLE
from relocpy.core.errors import MissingToolError, ToolFailedError
from relocpy.core.home import cache_dir
from relocpy.core.progress import Reporter
from relocpy.core.targets import HOST_ARCH, Target, needs_emulation
from relocpy.sources.catalog import debian_binary
from relocpy.sources.debian import unpack_deb
from relocpy.sources.fetch import fetch

# Where musl's dynamic loader (which is also its libc.so) lives on every musl system
MUSL_LOADER = "/lib/ld-musl-{arch}.so.1"


# bookworm's musl (1.2.3, musllinux_1_2's floor, as the host's own), per CPU
FOREIGN_MUSL = {
    "aarch64": debian_binary(
        "musl",
        "1.2.3-1",
        "musl_1.2.3-1_arm64.deb",
        "6ccf2bf0f479b00411cb8e1eeb048e648718170db5d63bbb4bf4a89350b81468",
        pool="pool/main/m/musl",
    ),
}


def foreign_musl_dir(arch: str) -> Path:
    """Where Debian's musl package for `arch` (another CPU) is unpacked: a root holding
    lib/ld-musl-<arch>.so.1, for QEMU_LD_PREFIX."""
    return cache_dir() / "emulation" / f"musl-{arch}"


def musl_loader(arch: str) -> Path:
    """musl's loader for `arch` on this machine: the host's (Debian's `musl`) for its own CPU,
    the unpacked package of another CPU's (`ensure_foreign_musl`) otherwise."""
    path = MUSL_LOADER.format(arch=arch)
    if arch == HOST_ARCH:
        return Path(path)
    return foreign_musl_dir(arch) / path.lstrip("/")


def ensure_foreign_musl(arch: str, reporter: Reporter, log: Path | None = None) -> Path:
    """The root with Debian's musl for `arch` (another CPU), fetched and unpacked once into the
    cache (a half-unpacked copy is never seen: it is renamed into place whole)."""
    root = foreign_musl_dir(arch)
    if musl_loader(arch).exists():
        return root
    pin = FOREIGN_MUSL.get(arch)
    if pin is None:
        raise MissingToolError(
            f"relocpy has no musl loader for {arch} to run its programs with under qemu-user",
            hint=f"musl packages are pinned for {', '.join(sorted(FOREIGN_MUSL))} only",
        )
    deb = fetch(pin, reporter=reporter, log=log)
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = root.with_name(f".{root.name}.{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        unpack_deb(deb, partial)
    except ToolFailedError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        os.rename(partial, root)
    except OSError:  # another process unpacked it first
        shutil.rmtree(partial, ignore_errors=True)
    return root


def use_foreign_musl(target: Target, reporter: Reporter, log: Path | None = None) -> Path | None:
    """For a dynamic musl build of another CPU: its loader, fetched if need be, and qemu-user
    pointed at it (QEMU_LD_PREFIX, for this process and its children); the root, or None for
    every other target (glibc ones: `core.emulation.enable` points qemu at their C library)."""
    if target.libc != "musl" or not needs_emulation(target):
        return None
    root = ensure_foreign_musl(target.arch, reporter, log)
    os.environ[LOADER_PREFIX_VARIABLE] = str(root)
    return root


def enable_emulation(target: Target, reporter: Reporter, static: bool = False) -> None:
    """Make this machine run `target`'s programs (`core.emulation.enable`: qemu-user, and a
    glibc target's C library), and give a dynamic musl one of another CPU its loader."""
    emulation.enable(target)
    if not static:
        use_foreign_musl(target, reporter)
