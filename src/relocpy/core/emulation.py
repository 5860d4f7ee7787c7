"""Running another CPU's programs on this machine: qemu-user through binfmt_misc.

Once the kernel hands the target's ELF files to `qemu-<cpu>-static` (a binfmt_misc entry with
the F flag: the kernel opens qemu when the entry is made, so it also works inside a chroot),
every way relocpy runs a tree's interpreter works unchanged, subprocesses included (venv, pip,
a build's `make install`). qemu finds the target's loader and C library under
QEMU_LD_PREFIX: Debian's libc6-<arch>-cross (installed with the cross gcc) is such a root.
`clean_env` passes QEMU_LD_PREFIX on, and `enable` sets it for this process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from relocpy.core.errors import MissingToolError
from relocpy.core.preflight import Requirement
from relocpy.core.targets import Target, needs_emulation

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
LOADER_PREFIX_VARIABLE = "QEMU_LD_PREFIX"


def _escaped(data: bytes) -> str:
    return "".join(f"\\x{byte:02x}" for byte in data)


def qemu_program(target: Target) -> str:
    return f"qemu-{target.qemu}-static"


def binfmt_rule(target: Target, interpreter: str) -> str:
    """The line written to binfmt_misc's `register` for `target` (pure)."""
    magic, mask = target.binfmt
    return f":relocpy-{target.qemu}:M::{_escaped(magic)}:{_escaped(mask)}:{interpreter}:F"


def registered_for(target: Target, binfmt_dir: Path = BINFMT_DIR) -> str | None:
    """The interpreter of an enabled binfmt_misc entry that matches `target`'s magic, if any."""
    magic = target.binfmt[0].hex()
    if not binfmt_dir.is_dir():
        return None
    for entry in sorted(binfmt_dir.iterdir()):
        if entry.name in ("register", "status"):
            continue
        try:
            text = entry.read_text()
        except OSError:
            continue
        fields = dict(line.split(" ", 1) for line in text.splitlines()[1:] if " " in line)
        if text.startswith("enabled") and fields.get("magic", "").strip() == magic:
            return fields.get("interpreter", "").strip() or None
    return None


def emulation_requirements(target: Target, who: str) -> list[Requirement]:
    """What running `target`'s programs here needs: qemu-user and the target's C library."""
    if not needs_emulation(target):
        return []
    needs = [Requirement("program", qemu_program(target), "qemu-user-static", who)]
    if target.libc != "gnu":  # zig links musl into the programs
        return needs
    return [
        *needs,
        Requirement(
            "file",
            f"{target.cross_libc_root}/lib/libc.so.6",
            f"libc6-{target.debian_arch}-cross",
            f"{who} (the {target.arch} C library qemu runs it with)",
        ),
    ]


def _mount_binfmt(binfmt_dir: Path) -> None:
    if (binfmt_dir / "register").exists():
        return
    if os.geteuid() != 0:
        raise MissingToolError(
            f"binfmt_misc is not mounted at {binfmt_dir}, and only root can mount it",
            hint=f"as root: mount -t binfmt_misc binfmt_misc {binfmt_dir}",
        )
    result = subprocess.run(
        ["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise MissingToolError(
            f"cannot mount binfmt_misc at {binfmt_dir}: {result.stderr.strip()}",
            hint="run on a kernel with binfmt_misc (modprobe binfmt_misc), as root",
        )


def enable(target: Target, binfmt_dir: Path = BINFMT_DIR) -> str | None:
    """Make this machine run `target`'s programs (idempotent); returns the qemu it uses, or
    None for the host's CPU. Sets QEMU_LD_PREFIX for this process and its children (glibc
    targets: the loader and C library their programs need)."""
    if not needs_emulation(target):
        return None
    qemu = shutil.which(qemu_program(target))
    if qemu is None:
        raise MissingToolError(
            f"{qemu_program(target)} is not installed: {target.arch} programs cannot run here",
            hint="apt-get install -y qemu-user-static",
        )
    loader_root = Path(target.cross_libc_root)
    if target.libc == "gnu" and not (loader_root / "lib" / "libc.so.6").is_file():
        raise MissingToolError(
            f"no {target.arch} C library at {loader_root} for qemu to run programs with",
            hint=f"apt-get install -y {target.cross_gcc_package}"
            f" (or libc6-{target.debian_arch}-cross)",
        )
    if target.libc == "gnu":
        os.environ[LOADER_PREFIX_VARIABLE] = str(loader_root)
    found = registered_for(target, binfmt_dir)
    if found:
        return found
    _mount_binfmt(binfmt_dir)
    if registered_for(target, binfmt_dir) is None:
        try:
            (binfmt_dir / "register").write_text(binfmt_rule(target, qemu))
        except OSError as exc:
            raise MissingToolError(
                f"cannot register {qemu} with binfmt_misc: {exc}",
                hint="run as root, or register qemu yourself (update-binfmts --enable)",
            ) from exc
    return registered_for(target, binfmt_dir) or qemu
