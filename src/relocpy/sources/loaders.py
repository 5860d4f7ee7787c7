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
import subprocess
from pathlib import Path

from relocpy.core.emulation import LOADER_PREFIX_VARIABLE
from relocpy.core.errors import MissingToolError
from relocpy.core.home import cache_dir
from relocpy.core.progress import Reporter
from relocpy.core.targets import HOST_ARCH, Target, needs_emulation
from relocpy.sources.catalog import SourcePin
from relocpy.sources.fetch import fetch

# Where musl's dynamic loader (which is also its libc.so) lives on every musl system
MUSL_LOADER = "/lib/ld-musl-{arch}.so.1"


def _musl_deb(debian_arch: str, sha256: str) -> SourcePin:
    """bookworm's musl (1.2.3, musllinux_1_2's floor, as the host's own) for `debian_arch`."""
    filename = f"musl_1.2.3-1_{debian_arch}.deb"
    return SourcePin(
        "musl", "1.2.3-1", filename, sha256, (), "musl", "1.2.3-1",
        debian_kind="deb", debian_pool=f"pool/main/m/musl/{filename}",
    )  # fmt: skip


FOREIGN_MUSL = {
    "aarch64": _musl_deb(
        "arm64", "6ccf2bf0f479b00411cb8e1eeb048e648718170db5d63bbb4bf4a89350b81468"
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
    result = subprocess.run(
        ["dpkg-deb", "-x", str(deb), str(partial)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise MissingToolError(
            f"cannot unpack {deb.name}: {result.stderr.strip()}",
            hint="dpkg-deb comes with dpkg (apt-get install -y dpkg)",
        )
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
