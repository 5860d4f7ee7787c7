"""Choosing among builds: what runs on this machine, the documented order, and why-nots."""

from __future__ import annotations

import random
import re

import pytest

from relocpy.core.errors import UnknownVersionError
from relocpy.core.versions import matches, parse_request, version_key
from relocpy.install.selection import Machine, cpu_level, explain, select
from relocpy.package.mirror import MirrorEntry

V3_HOST = Machine("x86_64", "gnu", (2, 36), "v3")
OLD_CPU = Machine("x86_64", "gnu", (2, 36), "")


def entry(version: str, build: str = "20260101", **changes: object) -> MirrorEntry:
    level = str(changes.pop("cpu_level", ""))
    flavour = str(changes.pop("flavour", "install_only"))
    arch = f"x86_64_{level}" if level else "x86_64"
    ext = str(changes.pop("ext", "tar.zst"))
    fields: dict[str, object] = dict(
        name=f"cpython-{version}+{build}-{arch}-unknown-linux-gnu-{flavour}.{ext}",
        version=version,
        build=build,
        variant="default",
        flavour=flavour,
        target_triple=f"{arch}-unknown-linux-gnu",
        arch="x86_64",
        libc="gnu",
        glibc_floor="2.17",
        sha256="0" * 64,
        size=1,
        cpu_level=level,
        opt="noopt",
    )
    fields.update(changes)
    return MirrorEntry(**fields)  # type: ignore[arg-type]


def test_cpu_levels_from_flags() -> None:
    v2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
    v3 = v2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
    assert cpu_level(set()) == "" and cpu_level(v2) == "v2" and cpu_level(v3) == "v3"
    assert cpu_level(v3 - {"avx2"}) == "v2"
    assert cpu_level({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}) == ""


def test_the_documented_order() -> None:
    entries = [
        entry("3.13.5", opt="pgo+lto"),
        entry("3.13.15", opt="noopt"),
        entry("3.13.15", opt="pgo+lto"),
        entry("3.13.15", opt="pgo+lto", cpu_level="v3"),
        entry("3.13.15", opt="pgo+lto", cpu_level="v4"),
        entry("3.13.15", opt="pgo+lto", flavour="install_only_stripped"),
        entry("3.13.15", "20260202", opt="lto"),
    ]
    ranked = explain("3.13", entries, V3_HOST)
    names = [(c.entry.opt, c.entry.cpu_level, c.entry.flavour, c.why_not) for c in ranked]
    assert names[:5] == [
        ("pgo+lto", "v3", "install_only", None),  # the best this CPU runs
        ("pgo+lto", "", "install_only", None),
        ("lto", "", "install_only", None),  # a newer tag does not beat the optimised build
        ("noopt", "", "install_only", None),
        ("pgo+lto", "", "install_only_stripped", None),
    ]
    assert ranked[5].entry.version == "3.13.5"
    assert ranked[-1].why_not == "needs an x86-64-v4 CPU, this one is x86-64-v3"
    assert select("3.13", entries, OLD_CPU).cpu_level == ""
    # the order of the index plays no part
    for seed in range(5):
        random.Random(seed).shuffle(entries)
        assert select("3.13", entries, V3_HOST) == ranked[0].entry


def test_ties_end_with_zst_then_the_name() -> None:
    gz = entry("3.13.15", ext="tar.gz")
    zst = entry("3.13.15")
    assert select("3.13", [gz, zst], V3_HOST) == zst


def test_why_a_build_does_not_run_here() -> None:
    entries = [
        entry("3.13.15", glibc_floor="2.39"),
        entry("3.13.15", arch="aarch64", target_triple="aarch64-unknown-linux-gnu"),
        entry("3.13.15", libc="musl", glibc_floor=None),
    ]
    reasons = sorted(c.why_not or "" for c in explain("3.13", entries, V3_HOST))
    assert reasons == [
        "built for aarch64, this machine is x86_64",
        "built for musl, this machine has gnu",
        "needs glibc 2.39, this machine has 2.36",
    ]
    with pytest.raises(UnknownVersionError, match=re.escape("none for this machine: ")):
        select("3.13", entries, V3_HOST)


def test_requests_and_pre_releases() -> None:
    assert parse_request("3.15.0a2").prerelease == "a2"
    assert parse_request("cpython@3.13t").freethreaded
    assert matches("3.15.0a2", "default", parse_request("3.15.0a2"))
    assert not matches("3.15.0a2", "default", parse_request("3.15"))  # finals only, as pip
    assert not matches("3.13.5", "freethreaded", parse_request("3.13"))
    assert version_key("3.15.0a2") < version_key("3.15.0b1") < version_key("3.15.0rc1")
    assert version_key("3.15.0rc1") < version_key("3.15.0") < version_key("3.15.1")
    for bad in ("3.15a1", "three", "3.x"):
        with pytest.raises(UnknownVersionError):
            parse_request(bad)


def test_the_fast_run_path_matches_as_the_chain_does() -> None:
    import importlib.machinery
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parent.parent / "bin" / "relocpy"
    loader = importlib.machinery.SourceFileLoader("relocpy_script", str(script))
    spec = importlib.util.spec_from_loader("relocpy_script", loader)
    assert spec is not None
    fastrun = importlib.util.module_from_spec(spec)
    loader.exec_module(fastrun)

    versions = ["3.13.5", "3.13.15", "3.11.2", "3.15.0a2", "3.15.0", "3.9.2", "4.0.0"]
    requests = ["3", "3.13", "3.13.5", "3.13t", "cpython@3.11", "3.15.0a2", "3.15", "3.1",
                "3.13+freethreaded", "cpython-3.13.5", "3.15.0rc1", "3.15.0rc1t"]  # fmt: skip
    for version in versions:
        for variant in ("default", "freethreaded"):
            for request in requests:
                expected = matches(version, variant, parse_request(request))
                assert fastrun.matches(version, variant, request) is expected, (version, request)
    for bad in ("three", "3.x", "3.15a1", "", "3.13.5.1", "t"):
        assert fastrun.matches("3.13.5", "default", bad) is None, bad


def test_stripped_with_bytecode_comes_first() -> None:
    """Of one build, the stripped archive that holds the bytecode, then install_only, then a
    stripped archive without bytecode; .tar.zst before .tar.gz within each."""
    entries = [
        entry("3.13.15", flavour="install_only_stripped", bytecode=None),
        entry("3.13.15", ext="tar.gz", bytecode=True),
        entry("3.13.15", bytecode=True),
        entry("3.13.15", flavour="install_only_stripped", bytecode=True, ext="tar.gz"),
        entry("3.13.15", flavour="install_only_stripped", bytecode=True),
    ]
    ranked = [
        (c.entry.flavour, c.entry.bytecode, c.entry.compression)
        for c in explain("3.13", entries, V3_HOST)
    ]
    assert ranked == [
        ("install_only_stripped", True, "zst"),
        ("install_only_stripped", True, "gz"),
        ("install_only", True, "zst"),
        ("install_only", True, "gz"),
        ("install_only_stripped", None, "zst"),
    ]
