"""An installed CPython prefix and the facts about it that repair and verify need.

Read from the prefix's own `_sysconfigdata_*.py`; a directory without one is not a CPython.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from relocpy.core.errors import NotAPythonPrefixError
from relocpy.core.textfix import SysconfigFormatError, parse_sysconfigdata


@dataclass(frozen=True)
class InterpreterTree:
    root: Path
    version: str  # "3.12.1"
    short_version: str  # "3.12"
    ldversion: str  # "3.12" or "3.13t"
    recorded_prefix: str  # the prefix the build was configured with
    build_dirs: tuple[str, ...]  # source/build directories recorded at build time
    sysconfigdata: tuple[Path, ...]
    config_dir: Path  # lib/pythonX.Y/config-X.Y-<multiarch>
    shared: bool

    @property
    def stdlib(self) -> Path:
        return self.root / "lib" / f"python{self.short_version}"

    @property
    def executable(self) -> Path:
        return self.root / "bin" / f"python{self.short_version}"

    @property
    def interpreter_names(self) -> set[str]:
        # a free-threaded build's scripts may name python3.13 as well as python3.13t
        plain = self.short_version.removesuffix("t")
        return {"python", "python3", f"python{plain}", f"python{self.short_version}",
                f"python{self.ldversion}"}  # fmt: skip


def inspect_tree(root: Path) -> InterpreterTree:
    """Identify the CPython installed at `root`, or raise NotAPythonPrefixError."""
    root = Path(root)
    if not root.is_dir():
        raise NotAPythonPrefixError(f"{root} is not a directory")
    candidates = sorted(root.glob("lib/python3*/_sysconfigdata_*.py"))
    if not candidates:
        raise NotAPythonPrefixError(
            f"{root} is not an installed CPython prefix: no lib/python3.X/_sysconfigdata_*.py",
            hint="pass the directory that contains bin/ and lib/ of a CPython 3 installation",
        )
    try:
        values = parse_sysconfigdata(candidates[0].read_text(encoding="utf-8"))
    except (OSError, SysconfigFormatError) as exc:
        raise NotAPythonPrefixError(f"cannot read {candidates[0]}: {exc}") from exc
    if not values.get("VERSION"):
        raise NotAPythonPrefixError(f"{candidates[0]} names no VERSION")
    # "3.13", or "3.13t" for a free-threaded build (lib/python3.13t, bin/python3.13t)
    short = candidates[0].parent.name.removeprefix("python")
    stdlib = root / "lib" / f"python{short}"
    config_dirs = sorted(stdlib.glob(f"config-{short}*"))
    if not config_dirs:
        raise NotAPythonPrefixError(f"{root} has no {stdlib.name}/config-{short}* directory")
    executable = root / "bin" / f"python{short}"
    if not executable.exists():
        raise NotAPythonPrefixError(f"{root} has no bin/python{short}")
    build_dirs = tuple(
        sorted(
            {
                str(values[key])
                for key in ("abs_builddir", "abs_srcdir")
                if isinstance(values.get(key), str) and str(values[key]).startswith("/")
            }
        )
    )
    patchlevel = _read_patchlevel(root, short) or short
    return InterpreterTree(
        root=root,
        version=patchlevel,
        short_version=short,
        ldversion=str(values.get("LDVERSION") or short),
        recorded_prefix=str(values.get("prefix", "")).rstrip("/") or "/",
        build_dirs=build_dirs,
        sysconfigdata=tuple(candidates),
        config_dir=config_dirs[0],
        shared=bool(values.get("Py_ENABLE_SHARED")),
    )


def _read_patchlevel(root: Path, short: str) -> str | None:
    """PY_VERSION from the installed patchlevel.h ("3.12.1")."""
    for header in sorted(root.glob(f"include/python{short}*/patchlevel.h")):
        for line in header.read_text(errors="replace").splitlines():
            if line.startswith("#define PY_VERSION "):
                return line.split('"')[1]
    return None


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for running a tree's interpreter: none of the caller's PYTHON*, SSL_CERT_*,
    PIP_* or VIRTUAL_ENV settings, which would hide (or cause) defects in the tree."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",
        "HOME": "/nonexistent",  # no user site-packages, no ~/.config/pip
        "TERM": "dumb",
    }
    # Where qemu-user finds another CPU's C library (see core.emulation): a tree of that CPU
    # runs only with it, and it changes nothing else.
    if os.environ.get("QEMU_LD_PREFIX"):
        env["QEMU_LD_PREFIX"] = os.environ["QEMU_LD_PREFIX"]
    env.update(extra or {})
    return env
