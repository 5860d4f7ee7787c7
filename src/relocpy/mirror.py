"""Mirrors of interpreter archives: indexing a directory, and reading one over file:// or HTTP(S).

`relocpy mirror index DIR` writes `index.json` (relocpy's own) and `uv-downloads.json` (the schema
of uv's `--python-downloads-json-url`), so one directory serves relocpy, uv and plain HTTP.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from relocpy.checksums import sha256_file
from relocpy.errors import ChecksumMismatchError, RelocpyError
from relocpy.progress import QuietReporter, Reporter

INDEX_NAME = "index.json"
UV_INDEX_NAME = "uv-downloads.json"
_ARCHIVE = re.compile(
    r"^cpython-(?P<version>\d+\.\d+\.\d+)(?P<pre>(?:a|b|rc)\d+)?\+(?P<build>[0-9A-Za-z.]+)-"
    r"(?P<triple>[a-z0-9_]+-[a-z]+-linux-(?P<libc>gnu|musl)[a-z0-9]*)-"
    r"(?P<flavour>[a-z_+-]+?)(?P<ext>\.tar\.(?:gz|zst))$"
)
_CHUNK = 1 << 20


class MirrorError(RelocpyError):
    """A mirror that cannot be read, or whose content is inconsistent."""


class MirrorFileMissing(MirrorError):
    """The mirror answered, but has no such file (HTTP 404, or no file at a file:// URL)."""


@dataclass(frozen=True)
class MirrorEntry:
    """One archive a mirror offers."""

    name: str  # file name, relative to the index
    version: str
    build: str
    variant: str  # "default" or "freethreaded"
    flavour: str  # install_only, install_only_stripped
    target_triple: str
    arch: str
    libc: str
    glibc_floor: str | None
    sha256: str
    size: int

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))

    @property
    def compression(self) -> str:
        return "zst" if self.name.endswith(".zst") else "gz"


def parse_archive_name(name: str) -> dict[str, str] | None:
    """Fields of a python-build-standalone style archive name, or None."""
    match = _ARCHIVE.match(name)
    if not match:
        return None
    fields = match.groupdict()
    flavour = fields["flavour"]
    variant = "default"
    if "freethreaded" in flavour:
        variant = "freethreaded"
        flavour = flavour.replace("freethreaded+", "").replace("freethreaded", "install_only")
    fields["flavour"], fields["variant"] = flavour, variant
    return fields


def scan_directory(directory: Path) -> list[MirrorEntry]:
    """Every archive in `directory`, hashed, with facts from its metadata JSON where present."""
    entries = []
    for path in sorted(directory.iterdir()):
        fields = parse_archive_name(path.name)
        if fields is None or not path.is_file():
            continue
        metadata_path = directory / (path.name[: -len(fields["ext"])] + ".json")
        metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
        entries.append(
            MirrorEntry(
                name=path.name,
                version=fields["version"],
                build=fields["build"],
                variant=fields["variant"],
                flavour=fields["flavour"],
                target_triple=fields["triple"],
                arch=fields["triple"].split("-", 1)[0],
                libc=fields["libc"],
                glibc_floor=metadata.get("glibc_floor"),
                sha256=sha256_file(path),
                size=path.stat().st_size,
            )
        )
    return entries


def uv_download_entries(entries: list[MirrorEntry], base_url: str) -> dict[str, dict[str, object]]:
    """The entries in the shape of uv's python downloads JSON.

    uv keys downloads by version, variant and platform (no build): per key the newest build's
    install_only archive is listed, the `.tar.gz` where both compressions exist.
    """
    chosen: dict[str, MirrorEntry] = {}
    for entry in entries:
        if entry.flavour != "install_only":
            continue
        suffix = "" if entry.variant == "default" else f"+{entry.variant}"
        key = f"cpython-{entry.version}{suffix}-linux-{entry.arch}-{entry.libc}"
        best = chosen.get(key)
        if best is None or (entry.build, entry.compression == "gz") > (
            best.build,
            best.compression == "gz",
        ):
            chosen[key] = entry
    out: dict[str, dict[str, object]] = {}
    for key, entry in sorted(chosen.items()):
        major, minor, patch = entry.version.split(".")
        out[key] = {
            "name": "cpython",
            "arch": {"family": entry.arch, "variant": None},
            "os": "linux",
            "libc": entry.libc,
            "major": int(major),
            "minor": int(minor),
            "patch": int(patch),
            "prerelease": "",
            "url": base_url.rstrip("/") + "/" + urllib.parse.quote(entry.name),
            "sha256": entry.sha256,
            "variant": None if entry.variant == "default" else entry.variant,
            "build": entry.build,
        }
    return out


def write_index(directory: Path, base_url: str | None = None) -> list[MirrorEntry]:
    """Write `index.json` and `uv-downloads.json` into `directory` (atomically)."""
    directory = Path(directory).absolute()
    if not directory.is_dir():
        raise MirrorError(f"{directory} is not a directory")
    entries = scan_directory(directory)
    if not entries:
        raise MirrorError(f"no interpreter archives (cpython-*.tar.gz/.tar.zst) in {directory}")
    index = {"format": 1, "archives": [asdict(e) for e in entries]}
    _write_json(directory / INDEX_NAME, index)
    _write_json(
        directory / UV_INDEX_NAME, uv_download_entries(entries, base_url or directory.as_uri())
    )
    return entries


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def parse_index(text: str) -> list[MirrorEntry]:
    try:
        data = json.loads(text)
        return [MirrorEntry(**item) for item in data["archives"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise MirrorError(f"malformed mirror index: {exc}") from exc


def _mirror_url(mirror: str) -> str:
    if "://" in mirror:
        return mirror.rstrip("/")
    return Path(mirror).absolute().as_uri()


class Mirror:
    """A mirror at a local path, a file:// URL or an http(s):// URL."""

    def __init__(self, location: str, timeout: float = 10.0) -> None:
        self.url = _mirror_url(location)
        self.timeout = timeout

    def open(self, name: str, offset: int = 0):  # type: ignore[no-untyped-def]
        """A response for `name` (relative to the mirror), from byte `offset` on."""
        url = f"{self.url}/{urllib.parse.quote(name)}"
        request = urllib.request.Request(url)
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            kind = MirrorFileMissing if exc.code == 404 else MirrorError
            raise kind(f"mirror {self.url} answered {exc.code} for {name}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, FileNotFoundError):
                raise MirrorFileMissing(f"mirror {self.url} has no {name}") from exc
            reason = getattr(exc, "reason", exc)
            raise MirrorError(
                f"cannot reach mirror {self.url}: {reason}",
                hint="check the URL (or --mirror) and the network",
            ) from exc

    def entries(self) -> list[MirrorEntry]:
        with self.open(INDEX_NAME) as response:
            return parse_index(response.read().decode("utf-8"))

    def fetch_file(
        self, name: str, size: int, part: Path, reporter: Reporter | None = None
    ) -> None:
        """Download `name` (`size` bytes) into `part`, resuming what `part` already holds."""
        reporter = reporter or QuietReporter()
        offset = part.stat().st_size if part.exists() else 0
        if offset > size:
            part.unlink()
            offset = 0
        if offset < size or not part.exists():
            with self.open(name, offset) as response:
                resumed = offset and getattr(response, "status", 200) == 206
                mode = "ab" if resumed else "wb"
                done = offset if resumed else 0
                with part.open(mode) as out:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        reporter.bytes_done(name, done, size)
        if part.stat().st_size != size:
            raise MirrorError(
                f"{name}: the mirror sent {part.stat().st_size} of {size} bytes",
                hint="run the same command again to resume the download",
            )

    def download(self, entry: MirrorEntry, target: Path, reporter: Reporter | None = None) -> Path:
        """Fetch `entry` into `target`, resuming a `target.part` left by an earlier attempt."""
        part = target.with_name(target.name + ".part")
        self.fetch_file(entry.name, entry.size, part, reporter)
        actual = sha256_file(part)
        if actual != entry.sha256:
            part.unlink()
            raise ChecksumMismatchError(
                f"{entry.name} has sha256 {actual}, but the mirror index says {entry.sha256}"
            )
        os.replace(part, target)
        return target
