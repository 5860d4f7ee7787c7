"""The CycloneDX SBOM: schema-valid (cyclonedx-python-lib's strict validator), complete for
every library a build bundles, the same bytes for the same inputs, and read back by verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from relocpy.build.libraries import libraries_for
from relocpy.core.sbom import SBOM_PATH, components, make_sbom, read_sbom, spdx_id
from relocpy.verify.checks import audit_licences

URL = "https://www.python.org/ftp/python/3.13.15/Python-3.13.15.tar.xz"


def metadata_for(readline: str = "libedit") -> dict[str, object]:
    """What a 3.13 build's metadata lists: every recipe it links, and one grafted library."""
    libraries = [
        {
            "name": r.name,
            "version": r.version,
            "license": r.license,
            "source": r.source.filename,
            "source_sha256": r.source.sha256,
            "source_urls": list(r.source.urls),
            "debian_package": r.source.debian_package,
            "debian_version": r.source.debian_version or r.version,
            "origin": "built from source (static)",
        }
        for r in libraries_for((3, 13, 15), readline)
    ]
    grafted = [
        {"soname": "libz.so.1", "file": "lib/libz.so.1", "package": "zlib1g",
         "version": "1:1.2.13.dfsg-1", "license": "Zlib", "origin": "host (grafted)"},
        {"soname": "libreadline.so.8", "file": "lib/libreadline.so.8", "package": "libreadline8",
         "version": "8.2-1.3", "license": "GPL-3+", "origin": "host (grafted)"},
    ]  # fmt: skip
    return {
        "source": {"sha256": "ab" * 32, "url": URL},
        "bundled_libraries": [*libraries, *grafted],
    }


def test_the_sbom_is_valid_complete_and_deterministic() -> None:
    metadata = metadata_for()
    text = make_sbom(metadata, "3.13.15", "x86_64-unknown-linux-gnu", 1767225600, URL)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert text == make_sbom(metadata, "3.13.15", "x86_64-unknown-linux-gnu", 1767225600, URL)
    data = json.loads(text)
    assert data["metadata"]["timestamp"].startswith("2026-01-01T00:00:00")
    names = {c["name"] for c in data["components"]}
    recipes = libraries_for((3, 13, 15), "libedit")
    assert names == {"cpython", "zlib1g", "libreadline8", *(r.name for r in recipes)}
    for component in data["components"]:
        assert component["version"] and component["purl"].startswith("pkg:"), component
        if component["name"] == "zlib1g":
            assert component["purl"] == "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64"
            continue
        if component["name"] == "libreadline8":  # Debian's short name, not an SPDX id
            assert component["licenses"] == [{"license": {"name": "GPL-3+"}}]
            continue
        assert component["licenses"], component["name"]
        assert len(component["hashes"][0]["content"]) == 64
    by_name = {c["name"]: c for c in data["components"]}
    assert by_name["openssl"]["cpe"] == "cpe:2.3:a:openssl:openssl:3.5.7:*:*:*:*:*:*:*"
    assert by_name["cpython"]["externalReferences"][0]["url"] == URL
    # every component with an upstream URL names it; the rest have a Debian source purl
    for recipe in recipes:
        comp = by_name[recipe.name]
        if recipe.source.urls:
            assert comp["externalReferences"][0]["url"] == recipe.source.urls[0]
        else:
            assert comp["purl"].startswith(f"pkg:deb/debian/{recipe.source.debian_package}@")
    # the dependency graph: the interpreter depends on every component
    [root] = [d for d in data["dependencies"] if d["ref"] == "interpreter"]
    assert len(root["dependsOn"]) == len(data["components"])


@pytest.mark.parametrize(
    ("readline", "gpl"),
    [("libedit", ["gdbm", "libreadline8"]), ("readline", ["gdbm", "libreadline8", "readline"])],
)
def test_verify_reports_licences_and_flags_gpl(
    tmp_path: Path, readline: str, gpl: list[str]
) -> None:
    text = make_sbom(metadata_for(readline), "3.13.15", "x86_64-unknown-linux-gnu", 0, URL)
    (tmp_path / SBOM_PATH).parent.mkdir(parents=True)
    (tmp_path / SBOM_PATH).write_text(text)
    assert sorted(c.name for c in read_sbom(tmp_path / SBOM_PATH) if c.copyleft) == gpl
    check = audit_licences(tmp_path, own=True)
    licences = {
        "gdbm": "GPL-3.0-or-later",
        "readline": "GPL-3.0-or-later",
        "libreadline8": "GPL-3+",
    }
    assert check.ok and "GPL: " + ", ".join(f"{n} ({licences[n]})" for n in gpl) in check.detail
    assert "PSF-2.0" in check.detail and "24 components" in check.detail


def test_a_tree_without_an_sbom() -> None:
    assert not audit_licences(Path("/nonexistent"), own=True).ok  # relocpy's own: must have one
    assert audit_licences(Path("/nonexistent"), own=False).ok  # a repaired prefix need not


def test_spdx_ids_from_recipe_licences() -> None:
    assert spdx_id("BSD-3-Clause (libuuid)") == "BSD-3-Clause"
    assert spdx_id("blessing (public domain)") == "blessing"
    assert spdx_id(None) is None
    assert components({}, "3.13.15", None)[0].purl == "pkg:generic/cpython@3.13.15"
