"""Cross builds: what changes when the interpreter is built for another CPU (pure parts)."""

from __future__ import annotations

import pytest

from relocpy.build.libraries import cross_configure_args, libraries_for, library_keys
from relocpy.build.zig import zig_identity
from relocpy.core.errors import RelocpyError
from relocpy.core.targets import TARGETS, host_target
from relocpy.pipeline import check_toolchain_choice
from relocpy.recipes.cpython import CROSS_CACHE_VARIABLES, cross_configuration
from relocpy.recipes.libs import RECIPES

ARM = TARGETS["aarch64-linux-gnu"]


def test_autoconf_libraries_get_host_and_build() -> None:
    assert cross_configure_args(RECIPES["xz"], ARM) == [
        "--host=aarch64-linux-gnu",
        "--build=x86_64-linux-gnu",
    ]
    assert cross_configure_args(RECIPES["zlib"], ARM) == []  # its own configure refuses them
    assert cross_configure_args(RECIPES["xz"], host_target()) == []


def test_cpython_configure_for_another_cpu() -> None:
    args, env = cross_configuration("aarch64-linux-gnu", "x86_64-linux-gnu", "/b/python3.13")
    assert args == [
        "--host=aarch64-linux-gnu",
        "--build=x86_64-linux-gnu",
        "--with-build-python=/b/python3.13",
    ]
    assert env == CROSS_CACHE_VARIABLES and env["ac_cv_file__dev_ptmx"] == "yes"


def test_library_keys_differ_per_target_and_take_the_targets_package() -> None:
    flags = ("-O2",)
    host = library_keys(libraries_for((3, 13, 5)), zig_identity("2.17"), flags)
    arm_recipes = libraries_for((3, 13, 5), target=ARM)
    arm = library_keys(arm_recipes, zig_identity("2.17", ARM), flags)
    assert zig_identity("2.17", ARM) == "zig 0.17.1 aarch64-linux-gnu.2.17, wrapper 3"
    assert set(host) == set(arm) and not set(host.values()) & set(arm.values())
    xau = next(r for r in arm_recipes if r.name == "libxau")
    assert xau.source.filename.endswith("_arm64.deb")
    assert xau.source.debian_pool == "pool/main/libx/libxau/libxau-dev_1.0.9-1_arm64.deb"
    assert ("usr/lib/aarch64-linux-gnu/libXau.a", "lib/libXau.a") in xau.copy_tree


def test_a_cpus_own_configure_arguments_enter_its_recipe_and_its_key() -> None:
    """OpenSSL for riscv64 is configured `no-asm` (its perlasm AES does not link with lld);
    the argument is in that target's recipe, so in its cache key, and in no other's."""
    riscv = TARGETS["riscv64-linux-gnu"]
    ssl_riscv = next(r for r in libraries_for((3, 13, 5), target=riscv) if r.name == "openssl")
    ssl_arm = next(r for r in libraries_for((3, 13, 5), target=ARM) if r.name == "openssl")
    assert ssl_riscv.configure_args == ("no-asm",) and ssl_arm.configure_args == ()
    assert ssl_riscv.arch_configure_args == () == ssl_arm.arch_configure_args
    assert '"no-asm"' in ssl_riscv.fingerprint() and '"no-asm"' not in ssl_arm.fingerprint()
    ppc = TARGETS["ppc64le-linux-gnu"]
    xau = next(r for r in libraries_for((3, 13, 5), target=ppc) if r.name == "libxau")
    assert xau.source.filename.endswith("_ppc64el.deb")
    assert ("usr/lib/powerpc64le-linux-gnu/libXau.a", "lib/libXau.a") in xau.copy_tree


@pytest.mark.parametrize(
    ("toolchain", "libs", "march", "message"),
    [
        ("gcc", "source", "x86-64", "cross-compiled with zig"),
        ("clang", "source", "x86-64", "cross-compiled with zig"),
        ("zig", "host", "x86-64", "not aarch64's"),
        ("zig", "source", "x86-64-v3", "is an x86-64 level"),
    ],
)
def test_cross_refusals(toolchain: str, libs: str, march: str, message: str) -> None:
    with pytest.raises(RelocpyError, match=message):
        check_toolchain_choice(toolchain, None, libs, "noopt", target=ARM, march=march)
    check_toolchain_choice("zig", None, "source", "noopt", target=ARM)  # the one that builds


def test_strip_for_another_cpu_is_its_binutils() -> None:
    from relocpy.package.archives import strip_package, strip_program

    assert strip_program(ARM) == "aarch64-linux-gnu-strip"
    assert strip_package("aarch64-linux-gnu-strip") == "binutils-aarch64-linux-gnu"
    assert (strip_program(host_target()), strip_package("strip")) == ("strip", "binutils")
