"""zig as the old-glibc toolchain: version parsing and a real compile for glibc 2.17."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from relocpy.build.zig import parse_glibc, zig_identity, zig_toolchain
from relocpy.core.errors import RelocpyError
from relocpy.elf.read import read_elf


@pytest.mark.parametrize("value", ["2.17", "glibc-2.28", " 2.34 "])
def test_glibc_versions_are_accepted(value: str) -> None:
    assert parse_glibc(value) == value.strip().removeprefix("glibc-")


@pytest.mark.parametrize("value", ["2.5", "3.1", "latest", "2.17.1"])
def test_bad_glibc_versions_name_the_accepted_form(value: str) -> None:
    with pytest.raises(RelocpyError, match="unsupported glibc floor") as info:
        parse_glibc(value)
    assert "2.17" in (info.value.hint or "")


@pytest.mark.real
def test_zig_compiles_for_glibc_217(tmp_path: Path) -> None:
    toolchain = zig_toolchain("2.17")
    source = tmp_path / "hello.c"
    # exp and clock_gettime moved symbol versions after 2.17; the binary must use the old ones.
    source.write_text(
        "#include <math.h>\n#include <stdio.h>\n#include <time.h>\n"
        "int main(int c, char **v){struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);"
        'printf("%.3f\\n", exp((double)c)); return 0;}\n'
    )
    exe = tmp_path / "hello"
    subprocess.run([toolchain.cc, "-O2", str(source), "-o", str(exe), "-lm"], check=True)
    assert subprocess.run([str(exe)], capture_output=True, text=True).stdout == "2.718\n"
    assert read_elf(exe).max_glibc <= (2, 17)
    assert toolchain.identity == zig_identity("2.17") and "gnu.2.17" in toolchain.identity


def test_a_missing_dev_fd_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """zig gets its directories as /dev/fd/8 and /dev/fd/9: a root without /proc says so."""
    from relocpy.build import zig
    from relocpy.core.errors import MissingToolError

    real = Path.is_dir
    monkeypatch.setattr(Path, "is_dir", lambda p: False if str(p) == "/dev/fd" else real(p))
    with pytest.raises(MissingToolError, match="/dev/fd is missing"):
        zig.zig_toolchain("2.17")
