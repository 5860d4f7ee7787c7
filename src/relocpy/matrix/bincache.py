"""The binary cache: finished builds stored under the hash of everything that went into them.

A cache directory is also a mirror (archives at the top, `index.json`, `uv-downloads.json`), so
`relocpy install --mirror DIR` and uv read the same files; `specs/<hash>.json` maps a spec hash to
its files. Local directories are read and written; http(s):// and file:// mirrors are read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock

from relocpy import __version__
from relocpy.build.libraries import libraries_for, library_cflags, library_keys, spec_cflags
from relocpy.core.checksums import sha256_file
from relocpy.core.errors import RelocpyError
from relocpy.core.progress import Reporter
from relocpy.core.targets import parse_target
from relocpy.matrix.spec import MatrixSpec
from relocpy.package.mirror import (
    Mirror,
    MirrorError,
    MirrorFileMissing,
    parse_archive_name,
    write_index,
)
from relocpy.sources.catalog import resolve_cpython

SPECS_DIR = "specs"
SPEC_FORMAT = 1

# The modules whose code decides what a build produces; their bytes enter every spec hash, so
# a change to the build logic is a cache miss. (CLI, install, verify and mirror code do not.)
_BUILD_LOGIC = (
    "build",
    "core/archive.py",
    "core/runner.py",
    "core/sbom.py",
    "core/textfix.py",
    "core/tree.py",
    "elf",
    "package/archives.py",
    "pipeline.py",
    "recipes",
    "repair",
    "runtime",
    "sources/catalog.toml",
)


class BinaryCacheError(RelocpyError):
    """A binary cache that cannot be read or written."""


@functools.cache
def build_logic_digest() -> str:
    """sha256 over relocpy's build code (file names and bytes, in a fixed order)."""
    digest = hashlib.sha256()
    package = resources.files("relocpy")
    for name in _BUILD_LOGIC:
        entry = package.joinpath(name)
        paths = sorted(_walk(Path(str(entry))), key=str) if entry.is_dir() else [Path(str(entry))]
        for path in paths:
            digest.update(f"{path.relative_to(Path(str(package))).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _walk(directory: Path) -> Iterable[Path]:
    for path in directory.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path


def toolchain_identity(spec: MatrixSpec) -> str:
    """The compiler, exactly, without installing or running anything heavy."""
    from relocpy.pipeline import toolchain_identity as identity

    return identity(spec.toolchain, spec.glibc, parse_target(spec.target))


@functools.cache
def _host_library_versions() -> dict[str, str]:
    """Versions of the host -dev packages a `libs = "host"` build links and grafts."""
    from relocpy.build.toolchain import HOST_LIBRARY_HEADERS

    packages = sorted({req.apt_package for req in HOST_LIBRARY_HEADERS})
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}=${Version}\\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def spec_inputs(spec: MatrixSpec, identity: str | None = None) -> dict[str, object]:
    """Everything that decides a spec's output: the CPython pin, every library's key (recipe,
    pin, flags, toolchain), the toolchain, the options and relocpy's build logic."""
    pin = resolve_cpython(spec.version)
    identity = identity or toolchain_identity(spec)
    inputs: dict[str, object] = {
        "spec": spec.as_dict(),
        "cpython": {"version": pin.version, "sha256": pin.sha256},
        "toolchain": identity,
        "relocpy": __version__,
        "build_logic": build_logic_digest(),
    }
    if spec.libs == "source":
        cflags = library_cflags(spec_cflags(spec.march, spec.cflags))
        recipes = libraries_for(pin.version_tuple, spec.readline, parse_target(spec.target))
        inputs["libraries"] = library_keys(recipes, identity, cflags)
    else:
        inputs["host_libraries"] = _host_library_versions()
    return inputs


def spec_hash(inputs: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def build_tag(digest: str) -> str:
    """The archive's +BUILD part for a matrix spec: its hash, so names never collide."""
    return digest[:16]


@dataclass(frozen=True)
class StoredFile:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class CacheEntry:
    """One spec's files in a cache."""

    spec_hash: str
    label: str
    files: tuple[StoredFile, ...]
    location: str

    @property
    def archive(self) -> str:
        """The `.tar.gz` install_only archive's name."""
        return next(
            f.name for f in self.files if f.name.endswith(".tar.gz") and "install_only" in f.name
        )


def _entry_from_json(text: str, location: str) -> CacheEntry:
    try:
        data = json.loads(text)
        files = tuple(StoredFile(**f) for f in data["files"])
        return CacheEntry(data["spec_hash"], data["label"], files, location)
    except (ValueError, KeyError, TypeError) as exc:
        raise BinaryCacheError(f"malformed spec record in {location}: {exc}") from exc


class BinaryCache(Protocol):
    location: str

    def lookup(self, digest: str) -> CacheEntry | None:
        """The spec's entry, or None if this cache does not hold it."""

    def record_text(self, digest: str) -> str | None:
        """The spec's record (JSON text), or None if this cache does not hold it."""

    def fetch(self, entry: CacheEntry, name: str, target: Path, reporter: Reporter) -> None:
        """Copy one of the entry's files to `target`, checking its sha256."""


class LocalBinaryCache:
    """A directory: read and written; every store is atomic and locked per spec."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.location = str(self.root)

    def _record(self, digest: str) -> Path:
        return self.root / SPECS_DIR / f"{digest}.json"

    def record_text(self, digest: str) -> str | None:
        record = self._record(digest)
        return record.read_text() if record.is_file() else None

    def lookup(self, digest: str) -> CacheEntry | None:
        record = self._record(digest)
        if not record.is_file():
            return None
        entry = _entry_from_json(record.read_text(), self.location)
        for stored in entry.files:
            path = self.root / stored.name
            if not path.is_file() or path.stat().st_size != stored.size:
                return None  # a file went missing: the spec is not (fully) here
        return entry

    def fetch(self, entry: CacheEntry, name: str, target: Path, reporter: Reporter) -> None:
        shutil.copyfile(self.root / name, target)

    def lock(self, digest: str) -> FileLock:
        (self.root / SPECS_DIR).mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / SPECS_DIR / f".{digest[:16]}.lock"))

    def store(
        self,
        digest: str,
        label: str,
        inputs: dict[str, object],
        files: Iterable[Path],
        extra: dict[str, object] | None = None,
    ) -> CacheEntry:
        """Copy `files` in (each via a temporary name), then write the record, then the index.

        The record goes last: a spec is in the cache exactly when its record is.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        stored = []
        for path in files:
            target = self.root / path.name
            tmp = target.with_name(f".{path.name}.{os.getpid()}.part")
            try:
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            stored.append(StoredFile(path.name, sha256_file(target), target.stat().st_size))
        return self._write_record(digest, label, inputs, stored, extra or {})

    def _write_record(
        self,
        digest: str,
        label: str,
        inputs: dict[str, object],
        stored: list[StoredFile],
        extra: dict[str, object],
    ) -> CacheEntry:
        record = {
            "format": SPEC_FORMAT,
            "spec_hash": digest,
            "label": label,
            "inputs": inputs,
            "files": [vars(f) for f in stored],
            **extra,
        }
        path = self._record(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        self.reindex()
        return CacheEntry(digest, label, tuple(stored), self.location)

    def reindex(self) -> None:
        """Rewrite the mirror index over every archive in the directory."""
        lock = FileLock(str(self.root / SPECS_DIR / ".index.lock"))
        with lock:
            if any(parse_archive_name(p.name) for p in self.root.iterdir()):
                write_index(self.root)

    def substitute(self, source: BinaryCache, entry: CacheEntry, reporter: Reporter) -> CacheEntry:
        """Copy a spec's files from another cache (a mirror) into this one, hashes checked."""
        self.root.mkdir(parents=True, exist_ok=True)
        record = json.loads(source.record_text(entry.spec_hash) or "{}")
        for stored in entry.files:
            target = self.root / stored.name
            tmp = target.with_name(f".{stored.name}.{os.getpid()}.part")
            try:
                source.fetch(entry, stored.name, tmp, reporter)
                actual = sha256_file(tmp)
                if actual != stored.sha256:
                    raise BinaryCacheError(
                        f"{stored.name} from {source.location} has sha256 {actual}, "
                        f"but its spec record says {stored.sha256}"
                    )
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        extra = {
            k: v
            for k, v in record.items()
            if k not in ("format", "spec_hash", "label", "inputs", "files")
        }
        extra["substituted_from"] = source.location
        return self._write_record(
            entry.spec_hash, entry.label, record.get("inputs", {}), list(entry.files), extra
        )


class MirrorBinaryCache:
    """A mirror at http(s):// or file:// (or a path), read-only."""

    def __init__(self, location: str) -> None:
        self.mirror = Mirror(location)
        self.location = self.mirror.url

    def record_text(self, digest: str) -> str | None:
        try:
            with self.mirror.open(f"{SPECS_DIR}/{digest}.json") as response:
                return response.read().decode("utf-8")
        except MirrorFileMissing:
            return None

    def lookup(self, digest: str) -> CacheEntry | None:
        text = self.record_text(digest)
        return None if text is None else _entry_from_json(text, self.location)

    def fetch(self, entry: CacheEntry, name: str, target: Path, reporter: Reporter) -> None:
        size = next(f.size for f in entry.files if f.name == name)
        self.mirror.fetch_file(name, size, target, reporter)


SPEC_ARTIFACT = "application/vnd.relocpy.spec.v1"
INDEX_ARTIFACT = "application/vnd.relocpy.mirror-index.v1"
RECORD_TYPE = "application/vnd.relocpy.spec-record.v1+json"
ENTRIES_NAME = "entries.json"  # a spec artifact's index entries, merged into the mirror index
_HASH = re.compile(r"^[0-9a-f]{64}$")


def _media_type(name: str) -> str:
    if name.endswith(".tar.gz"):
        return "application/gzip"
    if name.endswith(".tar.zst"):
        return "application/zstd"
    if name.endswith(".json"):
        return "application/json"
    return "text/plain" if name.endswith(".log") else "application/octet-stream"


class OciBinaryCache:
    """An OCI registry repository (`oci://HOST[:PORT]/REPO`): read and written.

    Each spec is one ORAS artifact tagged by its hash: its files as layers, plus its record
    (`<hash>.json`) and its index entries (`entries.json`). The tag is put last, after every
    blob is in, so an interrupted push claims nothing; two jobs pushing one spec push the same
    blobs, and the tag ends on one complete manifest. The `index` tag is the mirror view:
    `index.json`, `uv-downloads.json` and every archive, for `relocpy install --mirror` and uv.
    """

    def __init__(self, location: str) -> None:
        from relocpy.package.oci import OciClient

        self.client = OciClient(location)
        self.location = self.client.where.url

    def _manifest(self, digest: str) -> dict[str, Any] | None:
        from relocpy.package.oci import OciError

        try:
            found = self.client.manifest(digest)
        except OciError as exc:
            raise BinaryCacheError(exc.message, hint=exc.hint) from None
        return None if found is None else found[0]

    def _layers(self, digest: str) -> dict[str, dict[str, Any]] | None:
        from relocpy.package.oci import OciError, titled_layers

        manifest = self._manifest(digest)
        if manifest is None:
            return None
        try:
            return titled_layers(manifest)
        except OciError as exc:
            raise BinaryCacheError(f"{self.location}:{digest[:16]}…: {exc.message}") from None

    def _read(self, layer: dict[str, Any]) -> bytes:
        from relocpy.package.oci import OciError

        try:
            return self.client.read_blob(layer["digest"])
        except OciError as exc:
            raise BinaryCacheError(exc.message, hint=exc.hint) from None

    def record_text(self, digest: str) -> str | None:
        layers = self._layers(digest)
        if layers is None or f"{digest}.json" not in layers:
            return None
        return self._read(layers[f"{digest}.json"]).decode("utf-8")

    def lookup(self, digest: str) -> CacheEntry | None:
        layers = self._layers(digest)
        if layers is None:
            return None
        record = layers.get(f"{digest}.json")
        if record is None:
            raise BinaryCacheError(f"{self.location}:{digest} has no spec record layer")
        entry = _entry_from_json(self._read(record).decode("utf-8"), self.location)
        for stored in entry.files:
            item = layers.get(stored.name)
            if item is None or item["digest"] != f"sha256:{stored.sha256}":
                raise BinaryCacheError(
                    f"{self.location}:{digest[:16]}…: the layer of {stored.name} disagrees with"
                    " the spec record",
                    hint="the manifest was altered; push the spec again",
                )
        return entry

    def fetch(self, entry: CacheEntry, name: str, target: Path, reporter: Reporter) -> None:
        from relocpy.package.oci import OciError

        stored = next(f for f in entry.files if f.name == name)
        try:
            self.client.pull_blob(f"sha256:{stored.sha256}", stored.size, target, reporter, name)
        except OciError as exc:
            raise BinaryCacheError(exc.message, hint=exc.hint) from None

    def push(self, local: LocalBinaryCache, entry: CacheEntry, reporter: Reporter) -> None:
        """Push a spec from a local cache: blobs first, the tag last."""
        from relocpy.package.mirror import entries_for, index_document
        from relocpy.package.oci import EMPTY_BLOB, artifact_manifest, layer

        paths = [local.root / f.name for f in entry.files]
        record = local.record_text(entry.spec_hash)
        if record is None:
            raise BinaryCacheError(f"{local.location} lost the record of {entry.spec_hash}")
        layers = []
        for stored, path in zip(entry.files, paths, strict=True):
            reporter.step(f"pushing {stored.name} ({stored.size / 1e6:.1f} MB) to {self.location}")
            digest, size = self.client.push_blob(path, f"sha256:{stored.sha256}")
            layers.append(layer(stored.name, digest, size, _media_type(stored.name)))
        entries = json.dumps(index_document(entries_for(paths)), indent=2, sort_keys=True)
        for name, data, kind in (
            (ENTRIES_NAME, entries.encode(), "application/json"),
            (f"{entry.spec_hash}.json", record.encode(), RECORD_TYPE),
        ):
            digest, size = self.client.push_blob(data)
            layers.append(layer(name, digest, size, kind))
        self.client.push_blob(EMPTY_BLOB)
        manifest = artifact_manifest(
            SPEC_ARTIFACT, layers, {"org.opencontainers.image.description": entry.label}
        )
        self.client.put_manifest(entry.spec_hash, manifest)

    def reindex(self) -> list[str]:
        """Rewrite the `index` artifact over every spec in the repository; the archive names."""
        from relocpy.package.mirror import index_document, parse_index, uv_download_entries
        from relocpy.package.oci import EMPTY_BLOB, artifact_manifest, layer

        entries, archive_layers = [], {}
        for tag in sorted(self.client.tags()):
            if not _HASH.match(tag):
                continue
            layers = self._layers(tag)
            if layers is None or ENTRIES_NAME not in layers:
                continue
            found = parse_index(self._read(layers[ENTRIES_NAME]), f"{self.location}:{tag}")
            for item in found:
                entries.append(item)
                archive_layers[item.name] = layers[item.name]
                meta = item.name[: -len(".tar.gz" if item.compression == "gz" else ".tar.zst")]
                if f"{meta}.json" in layers:
                    archive_layers[f"{meta}.json"] = layers[f"{meta}.json"]
        if not entries:
            raise BinaryCacheError(f"{self.location} holds no spec with an interpreter archive")
        uv = uv_download_entries(entries, "")
        blob_url = f"{self.client.where.api}/blobs/"
        for value in uv.values():
            name = str(value["url"]).lstrip("/")
            value["url"] = blob_url + str(archive_layers[urllib.parse.unquote(name)]["digest"])
        top = []
        for name, data in (
            ("index.json", index_document(entries)),
            ("uv-downloads.json", uv),
        ):
            digest, size = self.client.push_blob(
                (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
            )
            top.append(layer(name, digest, size, "application/json"))
        self.client.push_blob(EMPTY_BLOB)
        manifest = artifact_manifest(
            INDEX_ARTIFACT, [*top, *(archive_layers[n] for n in sorted(archive_layers))]
        )
        from relocpy.package.mirror import OCI_INDEX_TAG

        self.client.put_manifest(OCI_INDEX_TAG, manifest)
        return sorted(e.name for e in entries)


def open_mirror(location: str) -> BinaryCache:
    """A cache to read from: a local directory, an oci:// registry repository, or a file:// or
    http(s):// mirror."""
    if location.startswith("oci://"):
        return OciBinaryCache(location)
    if "://" in location:
        return MirrorBinaryCache(location)
    return LocalBinaryCache(Path(location))


@dataclass(frozen=True)
class Lookup:
    entry: CacheEntry | None
    where: str  # "local", "mirror" or "missing"


def find(digest: str, local: LocalBinaryCache, mirrors: list[BinaryCache]) -> Lookup:
    entry = local.lookup(digest)
    if entry is not None:
        return Lookup(entry, "local")
    for mirror in mirrors:
        try:
            entry = mirror.lookup(digest)
        except (MirrorError, BinaryCacheError):
            continue  # an unreachable mirror is a miss, not a failure
        if entry is not None:
            return Lookup(entry, "mirror")
    return Lookup(None, "missing")
