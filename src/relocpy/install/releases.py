"""Every pinned CPython release as this machine sees it: who serves its source here, and
whether it is cached, built into the binary cache and installed (`relocpy versions`)."""

from __future__ import annotations

from dataclasses import dataclass

from relocpy.core import home
from relocpy.core.records import RecordError
from relocpy.install.trees import installed
from relocpy.package.mirror import Mirror, MirrorError
from relocpy.sources.catalog import load_cpython_pins
from relocpy.sources.fetch import SourceCache, where_served


@dataclass(frozen=True)
class VersionRow:
    version: str
    filename: str
    sha256: str
    cached: bool
    prerelease: bool = False
    served_by: str = ""  # which mirror serves the source here ("" if none was found)
    built: bool = False  # the binary cache has a build of it
    installed: bool = False

    @property
    def status(self) -> str:
        if self.built:
            return "built here"
        if self.cached or self.served_by:
            return "source here, not built yet"
        return "pinned, not built here"


def versions(cache: SourceCache | None = None, probe: bool = True) -> list[VersionRow]:
    """Every release the catalog pins: whether its tarball is cached, which mirror serves it
    here (`probe`: ask python.org and Debian's archive, answers kept for a day), whether the
    binary cache has a build of it, and whether it is installed."""
    cache = cache or SourceCache()
    pins = load_cpython_pins()
    served = where_served(pins) if probe else {}
    built = _built_versions()
    have = {i.version for i in installed()}
    return [
        VersionRow(
            p.version,
            p.filename,
            p.sha256,
            cache.lookup(p) is not None,
            p.prerelease,
            served.get(p.version, ""),
            p.version in built,
            p.version in have,
        )
        for p in pins
    ]


def _built_versions() -> set[str]:
    cache = home.binaries_dir()
    if not (cache / "index.json").is_file():
        return set()
    try:
        return {e.version for e in Mirror(str(cache)).entries()}
    except (MirrorError, RecordError):
        return set()
