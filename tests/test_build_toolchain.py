from __future__ import annotations

import shutil

import pytest

from relocpy.build.toolchain import HOST_LIBRARY_HEADERS, HeaderRequirement, host_toolchain
from relocpy.core.errors import MissingToolError


def test_host_toolchain_finds_gcc_and_every_header() -> None:
    toolchain = host_toolchain()
    assert shutil.which(toolchain.cc.split()[0])
    assert toolchain.include_dirs


def test_missing_compiler_names_the_apt_package() -> None:
    with pytest.raises(MissingToolError) as info:
        host_toolchain(cc="no-such-cc-relocpy")
    assert "no-such-cc-relocpy" in info.value.message
    assert info.value.hint == "install it with: apt-get install -y gcc"


def test_missing_header_names_header_purpose_and_package() -> None:
    needs = (*HOST_LIBRARY_HEADERS, HeaderRequirement("relocpy_absent.h", "librelocpy-dev", "x"))
    with pytest.raises(MissingToolError) as info:
        host_toolchain(headers=needs)
    assert "relocpy_absent.h (x)" in info.value.message
    assert info.value.hint == "install them with: apt-get install -y librelocpy-dev"
