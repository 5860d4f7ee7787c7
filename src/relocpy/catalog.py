"""The catalog of pinned CPython releases, read from `catalog.toml`.

Resolves a request ("3.13", "3.13.5") to one `SourcePin`; unknown requests list what is known.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from relocpy.errors import UnknownVersionError

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

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def load_cpython_pins(text: str | None = None) -> list[SourcePin]:
    """Parse the catalog (the packaged one unless `text` is given), oldest release first."""
    if text is None:
        text = resources.files("relocpy").joinpath("catalog.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    pins = []
    for entry in data.get("cpython", []):
        version = entry["version"]
        filename = entry["filename"]
        pins.append(
            SourcePin(
                name="cpython",
                version=version,
                filename=filename,
                sha256=entry["sha256"].lower(),
                urls=(f"{PYTHON_ORG_FTP}/{version}/{filename}",),
                debian_package=entry.get("debian_package"),
            )
        )
    return sorted(pins, key=lambda pin: pin.version_tuple)


def resolve_cpython(request: str, pins: list[SourcePin] | None = None) -> SourcePin:
    """The newest pinned release matching `request` ("3", "3.13", "3.13.5", "cpython@3.13")."""
    pins = load_cpython_pins() if pins is None else pins
    wanted = request.strip().removeprefix("cpython@").removeprefix("cpython-")
    try:
        wanted_key = _version_key(wanted)
    except ValueError:
        wanted_key = ()
    matches = [
        pin for pin in pins if wanted_key and pin.version_tuple[: len(wanted_key)] == wanted_key
    ]
    if not matches:
        known = ", ".join(pin.version for pin in pins)
        raise UnknownVersionError(
            f"unknown CPython version {request!r}; known versions: {known}",
            hint="run `relocpy versions` to list them",
        )
    return max(matches, key=lambda pin: pin.version_tuple)
