"""musl builds: names, refusals, the static flavour's configure and ctypes (pure parts)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from relocpy.build.libraries import cross_configure_args, libraries_for, library_keys
from relocpy.build.zig import zig_identity
from relocpy.core import emulation
from relocpy.core.errors import RelocpyError
from relocpy.core.progress import QuietReporter
from relocpy.core.targets import TARGETS, host_target, is_cross, needs_emulation, parse_target
from relocpy.package.archives import flavour_name, strip_program, variant_name
from relocpy.package.mirror import parse_archive_name
from relocpy.pipeline import check_flavour, check_toolchain_choice
from relocpy.recipes.cpython import configure_args, patch_ctypes_for_static, static_ldflags
from relocpy.recipes.libs import RECIPES
from relocpy.sources.catalog import resolve_cpython

MUSL = TARGETS["x86_64-linux-musl"]
ARM_MUSL = TARGETS["aarch64-linux-musl"]


def test_musl_targets_are_named_as_zig_and_python_build_standalone_name_them() -> None:
    assert parse_target("x86_64-unknown-linux-musl") is MUSL
    assert MUSL.zig_target("2.17") == "x86_64-linux-musl"  # no glibc floor for musl
    assert MUSL.triple == "x86_64-unknown-linux-musl"
    assert MUSL.musllinux == "musllinux_1_2_x86_64" and host_target().musllinux is None
    # another C library is a cross build (configure's --host), on this CPU it runs natively
    assert is_cross(MUSL) and not needs_emulation(MUSL) and needs_emulation(ARM_MUSL)
    assert zig_identity("2.17", MUSL) == zig_identity("2.28", MUSL)
    assert "x86_64-linux-musl" in zig_identity("2.17", MUSL)
    assert strip_program(MUSL) == "strip"  # the host's binutils read any x86_64 ELF file
    assert strip_program(ARM_MUSL) == "aarch64-linux-gnu-strip"  # Debian's aarch64 binutils
    assert cross_configure_args(RECIPES["xz"], MUSL) == [
        "--host=x86_64-linux-musl",
        "--build=x86_64-linux-gnu",
    ]


def test_musl_library_keys_are_their_own_and_libxau_comes_from_the_glibc_package() -> None:
    flags = ("-O2",)
    host = library_keys(libraries_for((3, 13, 5)), zig_identity("2.17"), flags)
    recipes = libraries_for((3, 13, 5), target=MUSL)
    musl = library_keys(recipes, zig_identity("2.17", MUSL), flags)
    assert set(host) == set(musl) and not set(host.values()) & set(musl.values())
    xau = next(r for r in recipes if r.name == "libxau")
    assert ("usr/lib/x86_64-linux-gnu/libXau.a", "lib/libXau.a") in xau.copy_tree


def test_musl_needs_qemu_only_for_another_cpu_and_no_glibc() -> None:
    assert emulation.emulation_requirements(MUSL, "x") == []
    needs = emulation.emulation_requirements(ARM_MUSL, "x")
    assert [(r.name, r.package) for r in needs] == [("qemu-aarch64-static", "qemu-user-static")]


def test_static_flavour_refusals() -> None:
    pin = resolve_cpython("3.13.5")
    check_flavour(MUSL, True, pin)  # the one that builds
    with pytest.raises(RelocpyError, match="takes musl") as info:
        check_flavour(host_target(), True, pin)
    assert "--target x86_64-linux-musl --static" in (info.value.hint or "")
    check_flavour(MUSL, False, pin)  # the dynamic flavour
    with pytest.raises(RelocpyError, match=r"3\.11 or newer"):
        check_flavour(MUSL, True, resolve_cpython("3.9.2"))
    with pytest.raises(RelocpyError, match="links musl"):
        check_toolchain_choice("zig", "2.28", "source", "noopt", target=MUSL)
    check_toolchain_choice("zig", None, "source", "noopt", target=MUSL, march="x86-64-v3")


def test_static_configure_builds_every_module_in_and_no_test_modules() -> None:
    args = configure_args((3, 13, 5), "noopt", static=True)
    assert "--disable-shared" in args and "--enable-shared" not in args
    assert "--disable-test-modules" in args
    assert "--enable-loadable-sqlite-extensions" not in args  # no dlopen to load one with
    assert "--enable-shared" in configure_args((3, 13, 5), "noopt")
    # static-pie by default: it loads at a random address and relocates itself (BIND_NOW)
    assert static_ldflags(True) == "-static -pie" and static_ldflags(False) == "-static"


CTYPES_TAIL = """\
if _os.name == "nt":
    pythonapi = PyDLL("python dll", None, _sys.dllhandle)
else:
    pythonapi = PyDLL(None)
"""


def test_ctypes_of_a_static_build_imports_without_dlopen() -> None:
    patched = patch_ctypes_for_static(CTYPES_TAIL)
    namespace: dict[str, object] = {}

    def no_dlopen(name: object) -> object:
        raise OSError("Dynamic loading not supported")

    class Os:
        name = "posix"

    exec(patched, {"_os": Os, "_sys": None, "PyDLL": no_dlopen}, namespace)
    assert namespace["pythonapi"] is None
    exec(patched, {"_os": Os, "_sys": None, "PyDLL": lambda n: "handle"}, namespace)
    assert namespace["pythonapi"] == "handle"
    with pytest.raises(ValueError, match="no single"):
        patch_ctypes_for_static("pythonapi = None\n")


def test_static_archives_are_named_and_read_back_as_such() -> None:
    assert flavour_name("install_only", static=True) == "static+install_only"
    assert variant_name(static=True) == "static" and variant_name() == "default"
    fields = parse_archive_name(
        "cpython-3.13.5+20260101-x86_64-unknown-linux-musl-static+install_only.tar.gz"
    )
    assert fields is not None
    assert (fields["libc"], fields["variant"], fields["flavour"]) == (
        "musl",
        "static",
        "install_only",
    )


def test_libxau_glibc_shim_defines_what_debians_objects_call(tmp_path) -> None:
    import subprocess

    from relocpy.recipes.libs.libxau import GLIBC_SHIM

    source = tmp_path / "shim.c"
    source.write_text(GLIBC_SHIM)
    obj = tmp_path / "shim.o"
    subprocess.run(["gcc", "-Wall", "-Werror", "-c", str(source), "-o", str(obj)], check=True)
    symbols = subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True)
    defined = {line.split()[-1] for line in symbols.stdout.splitlines() if " T " in line}
    assert defined == {"__snprintf_chk", "__xstat"}


def test_test_suite_archive_is_found_beside_any_flavour(tmp_path) -> None:
    from relocpy.verify.checks import test_suite_for

    for stem in ("x86_64-unknown-linux-gnu-", "x86_64-unknown-linux-musl-static+"):
        archive = tmp_path / f"cpython-3.13.5+20260101-{stem}install_only_stripped.tar.zst"
        assert test_suite_for(archive).name == f"cpython-3.13.5+20260101-{stem}test_suite.tar.gz"


def test_dynamic_musl_leaves_out_what_musl_added_after_its_floor() -> None:
    from relocpy.recipes.cpython import MUSL_FLOOR, MUSL_FLOOR_CACHE_VARIABLES

    # zig's musl 1.2.5 has them; Debian 12's and Alpine 3.17's musl 1.2.3 does not
    assert MUSL_FLOOR == "1.2.3"
    assert MUSL_FLOOR_CACHE_VARIABLES == {"ac_cv_func_preadv2": "no", "ac_cv_func_pwritev2": "no"}


def test_extension_wheel_has_its_tag_and_a_record_that_checks(tmp_path) -> None:
    import base64
    import hashlib
    import zipfile

    from relocpy.verify.roots import make_root, write_extension_wheel

    ext = tmp_path / "relocpy_cprobe.cpython-313-x86_64-linux-musl.so"
    ext.write_bytes(b"\x7fELF not really")
    tag = "cp313-cp313-musllinux_1_2_x86_64"
    wheel = write_extension_wheel(ext, tmp_path / "wheels", tag)
    assert wheel.name == f"relocpy_cprobe-1.0-{tag}.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = "relocpy_cprobe-1.0.dist-info"
        assert f"Tag: {tag}" in archive.read(f"{info}/WHEEL").decode()
        for line in archive.read(f"{info}/RECORD").decode().splitlines():
            name, digest, size = line.split(",")
            assert name in names
            if name.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(data)
    # a root: the tree (hard links) and the loader (a copy, wherever this machine keeps it:
    # another CPU's is in the cache) at musl's path, /lib/ld-musl-<arch>.so.1; nothing else
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "python3.13").write_text("x")
    loader = tmp_path / "cache" / "lib" / "ld-musl-aarch64.so.1"
    loader.parent.mkdir(parents=True)
    loader.write_text("loader")
    root = tmp_path / "root"
    assert make_root(tree, root, loader) == "/python"
    assert (root / "python" / "bin" / "python3.13").stat().st_nlink == 2
    assert (root / "lib" / "ld-musl-aarch64.so.1").read_text() == "loader"
    assert sorted(p.name for p in root.iterdir()) == ["lib", "python"]


def test_musl_loader_is_the_hosts_for_its_cpu_and_a_cached_package_for_another(
    tmp_path, monkeypatch
) -> None:
    from relocpy.sources import loaders

    monkeypatch.setenv("RELOCPY_HOME", str(tmp_path / "home"))
    assert loaders.musl_loader("x86_64") == Path("/lib/ld-musl-x86_64.so.1")
    arm = loaders.musl_loader("aarch64")
    assert arm == tmp_path / "home/cache/emulation/musl-aarch64/lib/ld-musl-aarch64.so.1"
    pin = loaders.FOREIGN_MUSL["aarch64"]
    assert pin.debian_pool == "pool/main/m/musl/musl_1.2.3-1_arm64.deb" and len(pin.sha256) == 64
    with pytest.raises(RelocpyError, match="no musl loader for riscv64"):
        loaders.ensure_foreign_musl("riscv64", QuietReporter())
    # a glibc target or the host's CPU leaves qemu's loader prefix alone
    monkeypatch.delenv("QEMU_LD_PREFIX", raising=False)
    assert loaders.use_foreign_musl(parse_target("aarch64-linux-gnu"), QuietReporter()) is None
    assert loaders.use_foreign_musl(parse_target("x86_64-linux-musl"), QuietReporter()) is None
    assert "QEMU_LD_PREFIX" not in os.environ


@pytest.mark.real
def test_aarch64_musl_loader_is_fetched_checked_and_unpacked_once(tmp_path, monkeypatch) -> None:
    """Debian's arm64 musl from the archive's pool: its loader runs a program under qemu."""
    from relocpy.sources import loaders

    monkeypatch.setenv("RELOCPY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QEMU_LD_PREFIX", raising=False)
    root = loaders.use_foreign_musl(parse_target("aarch64-linux-musl"), QuietReporter())
    assert root is not None and os.environ["QEMU_LD_PREFIX"] == str(root)
    loader = root / "lib" / "ld-musl-aarch64.so.1"
    assert loader.resolve().name == "libc.so" and loader.resolve().stat().st_size > 100_000
    assert [p.name for p in root.parent.iterdir()] == ["musl-aarch64"]  # no partial copy
    # musl's loader run as a program prints its usage (and exits 1): it is an aarch64 musl
    result = subprocess.run(
        ["qemu-aarch64-static", str(loader)], capture_output=True, text=True, check=False
    )
    assert "musl libc (aarch64)" in result.stderr, result.stderr
    assert loaders.ensure_foreign_musl("aarch64", QuietReporter()) == root  # once


def test_a_musl_pybi_is_refused_before_anything_is_built(tmp_path) -> None:
    from relocpy.pipeline import build

    with pytest.raises(RelocpyError, match="musllinux"):
        build("3.13.5", tmp_path / "out", target="x86_64-linux-musl", pybi=True)
    assert not (tmp_path / "out").exists()
