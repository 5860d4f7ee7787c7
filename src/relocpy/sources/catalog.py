"""The catalog of pinned CPython releases, read from `catalog.toml`.

Resolves a request ("3.13", "3.13.5") to one `SourcePin`; unknown requests list what is known.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources

from relocpy.core.errors import UnknownVersionError
from relocpy.core.versions import matches, parse_request, version_key

PYTHON_ORG_FTP = "https://www.python.org/ftp/python"


@dataclass(frozen=True)
class SourcePin:
    """One upstream file identified by its sha256, and where it may be fetched from."""

    name: str
    version: str
    filename: str
    sha256: str
    urls: tuple[str, ...] = ()
    debian_package: str | None = None
    # Debian's spelling of the version where it differs (`1.3.dfsg+really1.3.1`, `1:1.0.9-1`).
    debian_version: str | None = None
    # "source": the `.orig` tarball of a source package; "deb": an arch-all/-dev binary package.
    debian_kind: str = "source"
    prerelease: bool = False  # an alpha, beta or release candidate (3.15.0a2)
    # A binary package's path in any Debian archive (pool/main/...): how a package of another
    # CPU, which this machine's apt does not list, is fetched from the archives it names.
    debian_pool: str | None = None

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """The numeric release (3, 15, 0) of `3.15.0a2`."""
        return tuple(int(re.match(r"\d+", part)[0]) for part in self.version.split("."))  # type: ignore[index]


def debian_binary(
    package: str, debian_version: str, filename: str, sha256: str, pool: str | None = None
) -> SourcePin:
    """A pin on a Debian binary package; used where the archive lacks the source (a recipe),
    or for a program of another CPU that no source builds here (musl's loader for qemu).
    `pool` is its directory in a Debian archive (pool/main/libx/libxau), for packages of
    another CPU than this machine's, which its apt configuration does not list."""
    return SourcePin(
        package, debian_version, filename, sha256, (), package, debian_version, debian_kind="deb",
        debian_pool=f"{pool}/{re.sub(r'_[0-9]+%3a', '_', filename)}" if pool else None,
    )  # fmt: skip


def load_cpython_pins(text: str | None = None) -> list[SourcePin]:
    """Parse the catalog (the packaged one unless `text` is given), oldest release first."""
    if text is None:
        text = (
            resources.files("relocpy.sources").joinpath("catalog.toml").read_text(encoding="utf-8")
        )

    data = tomllib.loads(text)
    pins = []
    for entry in data.get("cpython", []):
        version = entry["version"]
        filename = entry.get("filename", f"Python-{version}.tar.xz")
        numeric = re.match(r"\d+\.\d+\.\d+", version)[0]  # type: ignore[index]
        pins.append(
            SourcePin(
                name="cpython",
                version=version,
                filename=filename,
                sha256=entry["sha256"].lower(),
                urls=(f"{PYTHON_ORG_FTP}/{numeric}/{filename}",),
                debian_package=entry.get("debian_package"),
                prerelease=bool(re.search(r"(a|b|rc)\d+$", version)),
            )
        )
    return sorted(pins, key=lambda pin: version_key(pin.version))


def resolve_cpython(request: str, pins: list[SourcePin] | None = None) -> SourcePin:
    """The newest pinned release matching `request` ("3", "3.13", "3.13.5", "cpython@3.13",
    "3.15.0a2"); a request without a pre-release suffix matches final releases only."""

    pins = load_cpython_pins() if pins is None else pins
    try:
        wanted = parse_request(request.strip().removeprefix("cpython-"))
    except UnknownVersionError:
        wanted = None
    found = [] if wanted is None else [p for p in pins if matches(p.version, "default", wanted)]
    if not found:
        known = summarise_versions([p.version for p in pins])
        raise UnknownVersionError(
            f"unknown CPython version {request!r}; known versions: {known}",
            hint="run `relocpy versions` to list them",
        )
    return max(found, key=lambda pin: version_key(pin.version))


def summarise_versions(versions: list[str]) -> str:
    """`3.8.0–3.8.20, 3.9.0–3.9.25, 3.15.2 (and 13 pre-releases)`: each minor series as a span
    of its final releases (in catalog order)."""
    series: dict[str, list[str]] = {}
    pre = 0
    for version in versions:
        if re.search(r"(a|b|rc)\d+$", version):
            pre += 1
            continue
        series.setdefault(version.rsplit(".", 1)[0], []).append(version)
    spans = [v[0] if len(v) == 1 else f"{v[0]}–{v[-1]}" for v in series.values()]
    return ", ".join(spans) + (f" (and {pre} pre-releases)" if pre else "")
