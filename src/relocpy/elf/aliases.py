"""Variables of glibc with several names, given back to stub libraries that lost the link.

glibc gives some variables more than one name: `environ` and `_environ` are weak aliases of
`__environ`, one pointer at one address. An executable that reads such a variable without the
GOT (gcc's code does, in PIE executables too) gets its own copy of it (a copy relocation), and
the linker gives that copy every name of the variable only when the library it links against
shows them as aliases: a weak and a global symbol at one address. Then glibc's own code, which
writes `__environ` at start-up, writes the executable's copy.

zig's glibc stubs list each name as a global variable of its own. An executable linked by gcc
against them reads a copy of `environ` that glibc never writes: CPython's `os.environ` is empty,
and children that `subprocess` starts get no environment at all. `alias_patches` finds the
names to join (pure); `join_aliases` writes them into a stub library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

# glibc's variables with weak aliases, by library: the global name, then its weak names
# (as glibc's own libc.so.6 and libm.so.6 define them; tests/test_elf_aliases.py compares
# this table with the host's glibc).
GLIBC_DATA_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "libc.so.6": {
        "__environ": ("environ", "_environ"),
        "__tzname": ("tzname",),
        "__daylight": ("daylight",),
        "__timezone": ("timezone",),
        "__progname": ("program_invocation_short_name",),
        "__progname_full": ("program_invocation_name",),
    },
    "libm.so.6": {"__signgam": ("signgam",)},
}


@dataclass(frozen=True)
class Symbol:
    """One entry of a symbol table, as far as joining aliases needs it."""

    table: str  # the section's name: .dynsym or .symtab
    index: int
    name: str
    value: int
    size: int
    bind: str  # STB_GLOBAL, STB_WEAK, ...
    section: int | str  # st_shndx


@dataclass(frozen=True)
class Patch:
    """Give `symbol` the address of `target` and weak binding."""

    symbol: Symbol
    target: Symbol


def alias_patches(symbols: list[Symbol], aliases: dict[str, tuple[str, ...]]) -> list[Patch]:
    """The weak names of `aliases` that are not yet weak aliases of their global name, table by
    table. A name the library does not define, or whose size differs from its global name's,
    is left alone (glibc's own aliases always share the size)."""
    patches: list[Patch] = []
    by_table: dict[str, dict[str, Symbol]] = {}
    for symbol in symbols:
        if symbol.section != "SHN_UNDEF":
            by_table.setdefault(symbol.table, {}).setdefault(symbol.name, symbol)
    for names in by_table.values():
        for strong, weak_names in aliases.items():
            target = names.get(strong)
            if target is None or target.bind != "STB_GLOBAL":
                continue
            for weak in weak_names:
                symbol = names.get(weak)
                if symbol is None or symbol.size != target.size:
                    continue
                joined = symbol.value == target.value and symbol.section == target.section
                if not (joined and symbol.bind == "STB_WEAK"):
                    patches.append(Patch(symbol, target))
    return patches


def _symbols(elf: ELFFile) -> list[Symbol]:
    found = []
    for section in elf.iter_sections():
        if not isinstance(section, SymbolTableSection):
            continue
        for index, sym in enumerate(section.iter_symbols()):
            found.append(
                Symbol(
                    section.name,
                    index,
                    sym.name,
                    sym["st_value"],
                    sym["st_size"],
                    sym["st_info"]["bind"],
                    sym["st_shndx"],
                )
            )
    return found


def join_aliases(path: Path, aliases: dict[str, tuple[str, ...]]) -> list[str]:
    """Make the weak names of `aliases` in the library at `path` weak aliases of their global
    names (same address, section and size), in place; returns the names changed.

    Two fields of existing symbol entries change and nothing moves, so the entries are
    rewritten where they lie, with pyelftools' own encoding of a symbol (patchelf edits
    dynamic sections and RUNPATHs, not symbol values)."""
    with path.open("rb") as handle:
        elf = ELFFile(handle)
        patches = alias_patches(_symbols(elf), aliases)
        writes: list[tuple[int, bytes]] = []
        for patch in patches:
            section = elf.get_section_by_name(patch.symbol.table)
            assert isinstance(section, SymbolTableSection)
            entry = section.get_symbol(patch.symbol.index).entry
            entry["st_value"] = patch.target.value
            entry["st_shndx"] = patch.target.section
            entry["st_info"]["bind"] = "STB_WEAK"
            offset = section["sh_offset"] + patch.symbol.index * section["sh_entsize"]
            writes.append((offset, elf.structs.Elf_Sym.build(entry)))
    if writes:
        fd = os.open(path, os.O_WRONLY)
        try:
            for offset, data in writes:
                os.pwrite(fd, data, offset)
        finally:
            os.close(fd)
    return sorted({f"{p.symbol.name} = {p.target.name}" for p in patches})
