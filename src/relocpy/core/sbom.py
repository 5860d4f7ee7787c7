"""A CycloneDX JSON SBOM for an interpreter tree: CPython and every library in it.

Built with cyclonedx-python-lib from the build's metadata (`bundled_libraries`): each
component has its version, licence (an SPDX id), source URL, source sha256, a purl, and a CPE
where the product has a known one. The SBOM goes into the tree (`SBOM_PATH`) and beside the
archives. Its serial number and timestamp derive from the content and SOURCE_DATE_EPOCH, so
two builds of one spec write the same bytes.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SBOM_PATH = "share/relocpy/sbom.cdx.json"
SPEC_VERSION = "1.6"
# Licences that oblige whoever distributes the tree (flagged by `relocpy verify`).
COPYLEFT = re.compile(r"^A?GPL")  # LGPL (libxcrypt) is linked, not flagged
# NVD vendor:product of the components that have one.
CPES = {
    "cpython": "python:python",
    "openssl": "openssl:openssl",
    "zlib": "zlib:zlib",
    "bzip2": "bzip:bzip2",
    "xz": "tukaani:xz",
    "libffi": "libffi_project:libffi",
    "sqlite": "sqlite:sqlite",
    "ncurses": "gnu:ncurses",
    "readline": "gnu:readline",
    "gdbm": "gnu:gdbm",
    "expat": "libexpat_project:libexpat",
    "libuuid": "kernel:util-linux",
    "tcl": "tcl:tcl",
    "tk": "tcl:tk",
    "zstd": "facebook:zstandard",
    "libx11": "x.org:libx11",
    "libxcrypt": "libxcrypt_project:libxcrypt",
    "mpdecimal": "bytereef:mpdecimal",
}
_NAMESPACE = uuid.UUID("5b0d8f0e-8c1a-4c59-a1d2-7f0e6f3d2b11")


@dataclass(frozen=True)
class SbomComponent:
    """One component, as the SBOM and `relocpy verify` see it."""

    name: str
    version: str
    license: str | None  # an SPDX id or expression; None: not known
    source_url: str | None
    sha256: str | None
    purl: str
    cpe: str | None
    origin: str

    @property
    def copyleft(self) -> bool:
        return bool(self.license and any(COPYLEFT.match(p) for p in self.license.split()))


def spdx_id(text: str | None) -> str | None:
    """`BSD-3-Clause (libuuid)` → `BSD-3-Clause`: the SPDX part of a recipe's licence."""
    if not text:
        return None
    return text.split(" (", 1)[0].strip() or None


def _purl(kind: str, name: str, version: str, **qualifiers: str | None) -> str:
    from packageurl import PackageURL

    if kind == "deb":
        return PackageURL(
            "deb", "debian", name, version, {k: v for k, v in qualifiers.items() if v}
        ).to_string()
    return PackageURL(
        "generic", None, name, version, {k: v for k, v in qualifiers.items() if v}
    ).to_string()


def components(
    metadata: dict[str, Any], python_version: str, cpython_url: str | None
) -> list[SbomComponent]:
    """CPython, then every library the metadata lists (built from source, or grafted)."""
    source = metadata.get("source") if isinstance(metadata.get("source"), dict) else {}
    found = [
        SbomComponent(
            "cpython",
            python_version,
            "PSF-2.0",
            cpython_url,
            source.get("sha256") if isinstance(source, dict) else None,
            _purl("generic", "cpython", python_version, download_url=cpython_url),
            f"cpe:2.3:a:{CPES['cpython']}:{python_version}:*:*:*:*:*:*:*",
            "built from source",
        )
    ]
    for item in metadata.get("bundled_libraries") or []:
        if not isinstance(item, dict):
            continue
        if "name" in item:  # built from source
            name, version = str(item["name"]), str(item["version"])
            urls = item.get("source_urls") or []
            url = urls[0] if urls else None
            debian = item.get("debian_package")
            if url or not debian:
                purl = _purl("generic", name, version, download_url=url)
            else:
                purl = _purl(
                    "deb", str(debian), str(item.get("debian_version") or version), arch="source"
                )
            cpe = CPES.get(name)
            found.append(
                SbomComponent(
                    name,
                    version,
                    spdx_id(item.get("license")),
                    url,
                    item.get("source_sha256"),
                    purl,
                    f"cpe:2.3:a:{cpe}:{version}:*:*:*:*:*:*:*" if cpe else None,
                    str(item.get("origin", "built from source")),
                )
            )
        else:  # grafted from the host: a Debian binary package
            package = str(item.get("package") or item.get("soname"))
            version = str(item.get("version") or "unknown")
            found.append(
                SbomComponent(
                    package,
                    version,
                    item.get("license"),  # Debian's short name (GPL-3+), from its copyright file
                    None,
                    None,
                    _purl("deb", package, version, arch="amd64"),
                    None,
                    str(item.get("origin", "grafted")),
                )
            )
    return found


def make_sbom(
    metadata: dict[str, Any],
    python_version: str,
    triple: str,
    epoch: int,
    cpython_url: str | None = None,
) -> str:
    """The CycloneDX 1.6 JSON text (deterministic for the same inputs)."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        XsUri,
    )
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    found = components(metadata, python_version, cpython_url)
    licences = LicenseFactory()
    built = []
    for item in found:
        component = Component(
            name=item.name,
            version=item.version,
            type=ComponentType.APPLICATION if item.name == "cpython" else ComponentType.LIBRARY,
            bom_ref=f"{item.name}@{item.version}",
            purl=PackageURL.from_string(item.purl),
            cpe=item.cpe,
            description=item.origin,
        )
        if item.license:
            component.licenses.add(licences.make_from_string(item.license))
        if item.sha256:
            component.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=item.sha256))
        if item.source_url:
            component.external_references.add(
                ExternalReference(
                    type=ExternalReferenceType.DISTRIBUTION, url=XsUri(item.source_url)
                )
            )
        built.append(component)
    root = Component(
        name=f"cpython-{python_version}-{triple}",
        version=python_version,
        type=ComponentType.APPLICATION,
        bom_ref="interpreter",
        description="a relocatable CPython tree built by relocpy",
    )
    content = json.dumps([vars(c) for c in found], sort_keys=True) + triple
    bom = Bom(
        components=built,
        serial_number=uuid.uuid5(_NAMESPACE, hashlib.sha256(content.encode()).hexdigest()),
    )
    bom.metadata.timestamp = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    bom.metadata.component = root
    bom.register_dependency(root, built)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    # one order, whatever the library's set ordering: components by reference
    data = json.loads(text)
    data.get("metadata", {}).pop("tools", None)  # names the library's own version
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def read_sbom(path: Path) -> list[SbomComponent]:
    """The components of an SBOM this module wrote (for `relocpy verify`)."""
    data = json.loads(path.read_text())
    out = []
    for item in data.get("components", []):
        licences = [
            entry.get("license", {}).get("id")
            or entry.get("expression")
            or entry.get("license", {}).get("name")
            for entry in item.get("licenses", [])
        ]
        hashes = [h["content"] for h in item.get("hashes", []) if h.get("alg") == "SHA-256"]
        urls = [
            r["url"] for r in item.get("externalReferences", []) if r.get("type") == "distribution"
        ]
        out.append(
            SbomComponent(
                item["name"],
                item.get("version", ""),
                " AND ".join(x for x in licences if x) or None,
                urls[0] if urls else None,
                hashes[0] if hashes else None,
                item.get("purl", ""),
                item.get("cpe"),
                item.get("description", ""),
            )
        )
    return out
