"""readelf's second reading of ELF files, against pyelftools'."""

from __future__ import annotations

from pathlib import Path

from conftest import compile_c
from relocpy.elf.read import read_elf
from relocpy.verify import binutils

READELF_AARCH64 = """\
ELF Header:
  Class:                             ELF64
  Machine:                           AArch64
Dynamic section at offset 0x10dd8 contains 25 entries:
  Tag        Type                         Name/Value
 0x0000000000000001 (NEEDED)             Shared library: [libm.so.6]
 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]
 0x000000000000001d (RUNPATH)            Library runpath: [$ORIGIN/../lib:$ORIGIN]
Version needs section '.gnu.version_r' contains 2 entries:
  000000: Version: 1  File: libm.so.6  Cnt: 1
  0x0010:   Name: GLIBC_2.17  Flags: none  Version: 3
  0x0020: Version: 1  File: libc.so.6  Cnt: 2
  0x0030:   Name: GLIBC_2.17  Flags: none  Version: 2
  0x0040:   Name: GLIBC_PRIVATE  Flags: none  Version: 4
"""


def test_parse_readelf() -> None:
    row = binutils.parse_readelf("bin/python3.13", READELF_AARCH64)
    assert row.machine == "AArch64"
    assert row.needed == ("libm.so.6", "libc.so.6")
    assert row.runpath == ("$ORIGIN/../lib", "$ORIGIN") and row.rpath == ()
    assert row.max_glibc == (2, 17) and row.glibc_text == "GLIBC_2.17"
    table = binutils.format_rows([row])
    assert "| bin/python3.13 | AArch64 | libm.so.6 libc.so.6 | $ORIGIN/../lib:$ORIGIN |" in table


def test_readelf_and_pyelftools_agree_on_a_real_program(tmp_path: Path) -> None:
    source = "#include <math.h>\n#include <stdio.h>\nint main(int c, char **v) {"
    source += ' printf("%f", sqrt((double)c)); return 0; }\n'
    program = compile_c(source, tmp_path / "bin" / "prog", "-lm", "-Wl,-rpath,$ORIGIN/../lib")
    info = read_elf(program)
    assert info is not None
    rows = binutils.read_rows(tmp_path, [info])
    assert rows[0].path == "bin/prog" and rows[0].runpath == ("$ORIGIN/../lib",)
    assert "libc.so.6" in rows[0].needed and rows[0].max_glibc
    assert binutils.disagreements(tmp_path, rows, [info]) == []
    wrong = binutils.ElfRow("bin/prog", "X", (), (), (), (2, 99))
    assert binutils.disagreements(tmp_path, [wrong], [info]) == [
        "bin/prog: NEEDED/RUNPATH differ",
        f"bin/prog: highest GLIBC_ GLIBC_2.99 vs {info.max_glibc}",
    ]
