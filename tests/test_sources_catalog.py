from __future__ import annotations

import re

import pytest

from conftest import pyenv_root
from relocpy.core.errors import UnknownVersionError
from relocpy.sources.catalog import load_cpython_pins, resolve_cpython

CATALOG = """
[[cpython]]
version = "3.12.1"
filename = "Python-3.12.1.tar.xz"
sha256 = "AB"
[[cpython]]
version = "3.12.10"
filename = "Python-3.12.10.tar.xz"
sha256 = "cd"
debian_package = "python3.12"
"""


def test_packaged_catalog_pins_the_releases_reachable_here() -> None:
    versions = {pin.version for pin in load_cpython_pins()}
    assert {"3.9.2", "3.11.2", "3.13.5", "3.13.15"} <= versions
    for pin in load_cpython_pins():
        assert len(pin.sha256) == 64
        numeric = pin.version.split("a")[0].split("b")[0].split("rc")[0]
        assert pin.urls[0] == f"https://www.python.org/ftp/python/{numeric}/{pin.filename}"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [("3.12", "3.12.10"), ("3", "3.12.10"), ("3.12.1", "3.12.1"), ("cpython@3.12", "3.12.10")],
)
def test_resolve_picks_newest_match(request_: str, expected: str) -> None:
    pins = load_cpython_pins(CATALOG)
    assert resolve_cpython(request_, pins).version == expected


def test_sha256_is_normalised_to_lower_case() -> None:
    assert load_cpython_pins(CATALOG)[0].sha256 == "ab"


@pytest.mark.parametrize("bad", ["3.99", "2.7", "banana", "", "3.12.1.1"])
def test_unknown_version_lists_known_ones(bad: str) -> None:
    with pytest.raises(UnknownVersionError) as info:
        resolve_cpython(bad, load_cpython_pins(CATALOG))
    assert "known versions: 3.12.1–3.12.10" in info.value.message


def test_the_catalog_has_every_release_from_3_8_on() -> None:
    """Every final release 3.8.0-3.14.x the public lists know, 3.15 pre-releases marked."""
    from relocpy.sources.catalog import summarise_versions

    pins = load_cpython_pins()
    finals = {p.version for p in pins if not p.prerelease}
    for minor, last in ((8, 20), (9, 25), (10, 21), (11, 16), (12, 14)):
        assert {f"3.{minor}.{n}" for n in range(last + 1)} <= finals
    assert {p.version for p in pins if p.prerelease} >= {"3.15.0a1", "3.15.0b1", "3.15.0rc1"}
    assert all(p.version.startswith("3.15.") for p in pins if p.prerelease)
    assert len({p.sha256 for p in pins}) == len(pins)
    assert summarise_versions(["3.8.0", "3.8.1", "3.15.0a1", "3.15.2"]) == (
        "3.8.0–3.8.1, 3.15.2 (and 1 pre-releases)"
    )
    assert resolve_cpython("3.15").version == "3.15.2" and not resolve_cpython("3.15").prerelease
    assert resolve_cpython("3.15.0a2").prerelease


def test_the_catalog_agrees_with_this_machines_pyenv() -> None:
    """pyenv's python-build definitions on this machine (a later pyenv than the one the
    catalog was read from) give the same tarball hash for every release both name."""
    definitions = pyenv_root() / "plugins" / "python-build" / "share" / "python-build"
    assert definitions.is_dir(), f"{definitions}: this machine kind is expected to have pyenv"
    compared, differ = 0, []
    for pin in load_cpython_pins():
        path = definitions / pin.version
        if not path.is_file():
            continue
        match = re.search(re.escape(pin.filename) + r"#([0-9a-f]{64})", path.read_text())
        if match:
            compared += 1
            if match.group(1) != pin.sha256:
                differ.append(pin.version)
    assert differ == [] and compared >= 100, (compared, differ)
