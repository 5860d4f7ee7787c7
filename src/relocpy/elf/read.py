"""Reading ELF files (via pyelftools): dynamic section and versioned glibc symbol needs.

Pure analysis: `read_elf` returns an `ElfInfo`, or None for files that are not ELF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

ELF_MAGIC = b"\x7fELF"
_GLIBC_VERSION = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True)
class ElfInfo:
    path: Path
    machine: str
    elf_class: int
    soname: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    # library -> version names required from it (GLIBC_2.17, ...)
    version_needs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    has_interp: bool = False

    @property
    def glibc_versions(self) -> list[tuple[int, ...]]:
        found = set()
        for names in self.version_needs.values():
            for name in names:
                match = _GLIBC_VERSION.match(name)
                if match:
                    found.add(tuple(int(part) for part in match.groups() if part is not None))
        return sorted(found)

    @property
    def max_glibc(self) -> tuple[int, ...] | None:
        versions = self.glibc_versions
        return versions[-1] if versions else None


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo | None:
    """Parse `path`'s dynamic section; None if it is not a (readable) ELF file."""
    if path.is_symlink() or not path.is_file() or not is_elf(path):
        return None
    try:
        with path.open("rb") as handle:
            elf = ELFFile(handle)
            needed: list[str] = []
            rpath: list[str] = []
            runpath: list[str] = []
            soname = None
            version_needs: dict[str, tuple[str, ...]] = {}
            has_interp = False
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)
                        elif tag.entry.d_tag == "DT_RPATH":
                            rpath += [p for p in tag.rpath.split(":") if p]
                        elif tag.entry.d_tag == "DT_RUNPATH":
                            runpath += [p for p in tag.runpath.split(":") if p]
                        elif tag.entry.d_tag == "DT_SONAME":
                            soname = tag.soname
                elif isinstance(section, GNUVerNeedSection):
                    for verneed, auxiliaries in section.iter_versions():
                        version_needs[verneed.name] = tuple(aux.name for aux in auxiliaries)
            for segment in elf.iter_segments():
                if segment.header.p_type == "PT_INTERP":
                    has_interp = True
            return ElfInfo(
                path=path,
                machine=elf.get_machine_arch(),
                elf_class=elf.elfclass,
                soname=soname,
                needed=tuple(needed),
                rpath=tuple(rpath),
                runpath=tuple(runpath),
                version_needs=version_needs,
                has_interp=has_interp,
            )
    except (ELFError, OSError, ValueError):
        return None


def iter_elf_files(root: Path) -> list[ElfInfo]:
    """Every ELF file under `root` (symlinks skipped), sorted by path."""
    infos = []
    for path in sorted(root.rglob("*")):
        info = read_elf(path)
        if info is not None:
            infos.append(info)
    return infos


def undefined_symbols(path: Path) -> frozenset[str]:
    """The names an ELF file's dynamic symbol table leaves for other objects to define."""
    with path.open("rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        if dynsym is None:
            return frozenset()
        return frozenset(
            s.name for s in dynsym.iter_symbols() if s.name and s["st_shndx"] == "SHN_UNDEF"
        )


@dataclass(frozen=True)
class Hardening:
    """The exploit mitigations an ELF file carries (what python-build-standalone validates)."""

    path: Path
    elf_type: str  # ET_EXEC (position-dependent), ET_DYN (PIE or shared object)
    relro: bool  # a PT_GNU_RELRO segment
    bind_now: bool  # DF_BIND_NOW, DF_1_NOW or DT_BIND_NOW: RELRO then covers the GOT
    exec_stack: bool  # PT_GNU_STACK missing or executable
    writable_and_executable: bool  # a PT_LOAD segment both writable and executable
    textrel: bool  # text relocations (DT_TEXTREL, DF_TEXTREL)
    stack_protector: bool  # references __stack_chk_fail
    fortified: bool  # references a fortified libc function (__memcpy_chk, ...)


_PF_X, _PF_W = 0x1, 0x2
_DF_TEXTREL, _DF_BIND_NOW, _DF_1_NOW = 0x4, 0x8, 0x1


def read_hardening(path: Path) -> Hardening | None:
    """`path`'s mitigations, or None if it is not a readable ELF executable or shared object
    (object files such as config-3.X/python.o have no segments to judge)."""
    if path.is_symlink() or not path.is_file() or not is_elf(path):
        return None
    try:
        with path.open("rb") as handle:
            elf = ELFFile(handle)
            if elf.header.e_type not in ("ET_EXEC", "ET_DYN"):
                return None
            relro = bind_now = textrel = wx = False
            stack = None
            for segment in elf.iter_segments():
                kind, flags = segment.header.p_type, segment.header.p_flags
                if kind == "PT_GNU_RELRO":
                    relro = True
                elif kind == "PT_GNU_STACK":
                    stack = flags
                elif kind == "PT_LOAD" and flags & _PF_W and flags & _PF_X:
                    wx = True
            for section in elf.iter_sections():
                if not isinstance(section, DynamicSection):
                    continue
                for tag in section.iter_tags():
                    name, value = tag.entry.d_tag, tag.entry.d_val
                    if name == "DT_BIND_NOW":
                        bind_now = True
                    elif name == "DT_FLAGS":
                        bind_now |= bool(value & _DF_BIND_NOW)
                        textrel |= bool(value & _DF_TEXTREL)
                    elif name == "DT_FLAGS_1":
                        bind_now |= bool(value & _DF_1_NOW)
                    elif name == "DT_TEXTREL":
                        textrel = True
            symbols: set[str] = set()
            dynsym = elf.get_section_by_name(".dynsym")
            if dynsym is not None:
                symbols = {s.name for s in dynsym.iter_symbols() if s.name}
            return Hardening(
                path=path,
                elf_type=str(elf.header.e_type),
                relro=relro,
                bind_now=bind_now,
                exec_stack=stack is None or bool(stack & _PF_X),
                writable_and_executable=wx,
                textrel=textrel,
                stack_protector="__stack_chk_fail" in symbols,
                fortified=any(s.startswith("__") and s.endswith("_chk") for s in symbols),
            )
    except (ELFError, OSError, ValueError):
        return None
