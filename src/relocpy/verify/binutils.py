"""A second reading of every ELF file, by binutils' readelf: NEEDED, RUNPATH, highest GLIBC_.

relocpy's own audit reads ELF with pyelftools; this one asks GNU readelf (which reads every
CPU's ELF, so an aarch64 tree is audited on this x86_64 machine the same way) and compares.
A disagreement is a bug in one of the two readers, or a file neither should trust.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from relocpy.core.preflight import Requirement, program
from relocpy.elf.read import ElfInfo

_MACHINE = re.compile(r"^\s*Machine:\s+(.+?)\s*$", re.M)
_DYNAMIC = re.compile(r"\((NEEDED|RUNPATH|RPATH)\)\s+[^\[]*\[(.*)\]\s*$", re.M)
_GLIBC = re.compile(r"Name: GLIBC_(\d+)\.(\d+)(?:\.(\d+))?\b")


@dataclass(frozen=True)
class ElfRow:
    """What readelf says of one file (path relative to the tree's root)."""

    path: str
    machine: str
    needed: tuple[str, ...]
    runpath: tuple[str, ...]
    rpath: tuple[str, ...]
    max_glibc: tuple[int, ...] | None

    @property
    def glibc_text(self) -> str:
        return "GLIBC_" + ".".join(map(str, self.max_glibc)) if self.max_glibc else "-"


def parse_readelf(path: str, text: str) -> ElfRow:
    """The row of `readelf -h -d -V -W FILE`'s output `text` (pure)."""
    machine = _MACHINE.search(text)
    found: dict[str, list[str]] = {"NEEDED": [], "RUNPATH": [], "RPATH": []}
    for tag, value in _DYNAMIC.findall(text):
        if tag == "NEEDED":
            found[tag].append(value)
        else:
            found[tag] += [part for part in value.split(":") if part]
    versions = [tuple(int(g) for g in m if g) for m in _GLIBC.findall(text)]
    return ElfRow(
        path,
        machine.group(1) if machine else "?",
        tuple(found["NEEDED"]),
        tuple(found["RUNPATH"]),
        tuple(found["RPATH"]),
        max(versions) if versions else None,
    )


def readelf_requirements(who: str) -> list[Requirement]:
    return [program("readelf", who)]


def read_rows(root: Path, infos: list[ElfInfo]) -> list[ElfRow]:
    """readelf's row for each of `infos`' files (pyelftools found them), sorted by path."""
    readelf = shutil.which("readelf")
    if readelf is None:
        raise FileNotFoundError("readelf")
    rows = []
    for info in sorted(infos, key=lambda i: str(i.path)):
        result = subprocess.run(
            [readelf, "-h", "-d", "-V", "-W", str(info.path)],
            capture_output=True,
            text=True,
            check=False,
            env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
        )
        rows.append(parse_readelf(str(info.path.relative_to(root)), result.stdout))
    return rows


def disagreements(root: Path, rows: list[ElfRow], infos: list[ElfInfo]) -> list[str]:
    """Where readelf and pyelftools read a file differently (pure)."""
    by_path = {str(i.path.relative_to(root)): i for i in infos}
    differ = []
    for row in rows:
        info = by_path.get(row.path)
        if info is None:
            differ.append(f"{row.path}: pyelftools did not read it")
            continue
        if (row.needed, row.runpath, row.rpath) != (info.needed, info.runpath, info.rpath):
            differ.append(f"{row.path}: NEEDED/RUNPATH differ")
        if row.max_glibc != info.max_glibc:
            differ.append(f"{row.path}: highest GLIBC_ {row.glibc_text} vs {info.max_glibc}")
    return differ


def format_rows(rows: list[ElfRow]) -> str:
    """A Markdown table: one row per ELF file."""
    lines = [
        "| file | machine | NEEDED | RUNPATH | highest GLIBC_ |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        runpath = ":".join(row.runpath + row.rpath) or "-"
        lines.append(
            f"| {row.path} | {row.machine} | {' '.join(row.needed) or '-'} | {runpath} |"
            f" {row.glibc_text} |"
        )
    return "\n".join(lines) + "\n"
