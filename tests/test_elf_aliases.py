"""elf.aliases: glibc's variables with several names, joined again in a stub library."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from relocpy.elf.aliases import GLIBC_DATA_ALIASES, Symbol, alias_patches, join_aliases

# A library as zig's stubs are: each name of a variable a global of its own
STUB = """char **__environ = 0; char **environ = 0; char **_environ = 0;
char *__tzname[2] = {0, 0}; char *tzname[2] = {0, 0};
int __daylight = 0; long daylight = 0; /* a size that differs: left alone */
"""


def _sym(name: str, value: int, bind: str = "STB_GLOBAL", size: int = 8) -> Symbol:
    return Symbol(".dynsym", value, name, value, size, bind, 10)


def test_patches_join_weak_names_to_their_global_name() -> None:
    symbols = [_sym("__environ", 0x100), _sym("environ", 0x108), _sym("_environ", 0x110)]
    patches = alias_patches(symbols, {"__environ": ("environ", "_environ")})
    assert [(p.symbol.name, p.target.name) for p in patches] == [
        ("environ", "__environ"),
        ("_environ", "__environ"),
    ]


def test_patches_leave_joined_missing_and_mismatched_names_alone() -> None:
    symbols = [
        _sym("__environ", 0x100),
        _sym("environ", 0x100, "STB_WEAK"),  # already an alias
        _sym("__daylight", 0x200, size=4),
        _sym("daylight", 0x208, size=8),  # another size: not the same variable
        _sym("tzname", 0x300),  # no __tzname
    ]
    aliases = {"__environ": ("environ", "_environ"), "__daylight": ("daylight",),
               "__tzname": ("tzname",)}  # fmt: skip
    assert alias_patches(symbols, aliases) == []
    # the same address but still global: ld does not take it for an alias
    assert len(alias_patches([_sym("__environ", 0x100), _sym("environ", 0x100)], aliases)) == 1


def _table(path: Path) -> dict[str, tuple[int, int, str]]:
    with path.open("rb") as handle:
        section = ELFFile(handle).get_section_by_name(".dynsym")
        assert isinstance(section, SymbolTableSection)
        return {
            s.name: (s["st_value"], s["st_size"], s["st_info"]["bind"])
            for s in section.iter_symbols()
            if s.name
        }


def test_join_aliases_rewrites_a_stub_in_place(tmp_path: Path) -> None:
    (tmp_path / "stub.c").write_text(STUB)
    library = tmp_path / "libstub.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "stub.c", "-o", str(library)], cwd=tmp_path,
                   check=True)  # fmt: skip
    before = _table(library)
    assert before["environ"][0] != before["__environ"][0]
    size = library.stat().st_size
    aliases = {"__environ": ("environ", "_environ"), "__tzname": ("tzname",),
               "__daylight": ("daylight",)}  # fmt: skip
    joined = join_aliases(library, aliases)
    assert joined == ["_environ = __environ", "environ = __environ", "tzname = __tzname"]
    after = _table(library)
    for weak, strong in (
        ("environ", "__environ"),
        ("_environ", "__environ"),
        ("tzname", "__tzname"),
    ):
        assert after[weak] == (after[strong][0], after[strong][1], "STB_WEAK")
        assert after[strong] == before[strong]
    assert after["daylight"] == before["daylight"]
    assert library.stat().st_size == size
    assert join_aliases(library, aliases) == []  # once is enough
    # and ld now takes them for aliases: a program's copy of `environ` carries `__environ` too
    (tmp_path / "main.c").write_text(
        "extern char **environ; int main(void) { return environ != 0; }\n"
    )
    subprocess.run(["gcc", "-no-pie", "main.c", "-o", "main", "-L.", "-lstub"], cwd=tmp_path,
                   check=True)  # fmt: skip
    exported = subprocess.run(["nm", "-D", "main"], cwd=tmp_path, capture_output=True, text=True)
    names = {line.split()[-1].split("@")[0] for line in exported.stdout.splitlines()}
    assert {"environ", "__environ", "_environ"} <= names


def _mapped(name: str) -> Path:
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split()[-1]
        if path.startswith("/") and Path(path).name == name:
            return Path(path)
    pytest.skip(f"this process has no {name} mapped")


@pytest.mark.parametrize("library", sorted(GLIBC_DATA_ALIASES))
def test_the_table_is_glibcs_own(library: str) -> None:
    """Every weak variable of this host's glibc at the address of a global one is in the
    table, and nothing else is."""
    path = _mapped(library)
    with path.open("rb") as handle:
        section = ELFFile(handle).get_section_by_name(".dynsym")
        assert isinstance(section, SymbolTableSection)
        objects = [
            (sym.name, sym["st_value"], sym["st_info"]["bind"])
            for sym in section.iter_symbols()
            if sym["st_info"]["type"] == "STT_OBJECT" and sym["st_shndx"] != "SHN_UNDEF"
        ]
    strong = {value: name for name, value, bind in objects if bind == "STB_GLOBAL"}
    found: dict[str, set[str]] = {}
    for name, value, bind in objects:
        if bind == "STB_WEAK" and value in strong:
            found.setdefault(strong[value], set()).add(name)
    table = {k: set(v) for k, v in GLIBC_DATA_ALIASES[library].items()}
    assert found == table
