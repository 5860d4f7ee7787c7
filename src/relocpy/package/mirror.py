"""Mirrors of interpreter archives: indexing a directory, and reading one over file:// or HTTP(S).

`relocpy mirror index DIR` writes `index.json` (relocpy's own) and `uv-downloads.json` (the schema
of uv's `--python-downloads-json-url`), so one directory serves relocpy, uv and plain HTTP. A
mirror may also be laid out as python-build-standalone's releases are (archives and
`SHA256SUMS`), or be a uv download JSON. Every archive is indexed only after it was opened and
found to hold the CPython its name says; every entry read from a mirror is checked the same way
before it is used, and every download is checked against its sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from relocpy.core.checksums import sha256_file
from relocpy.core.errors import ChecksumMismatchError, RelocpyError
from relocpy.core.progress import QuietReporter, Reporter
from relocpy.core.records import (
    RecordError,
    expect,
    from_dict,
    parse_json,
    read_json,
    require_format,
)

if TYPE_CHECKING:
    from relocpy.package.oci import OciClient

INDEX_NAME = "index.json"
UV_INDEX_NAME = "uv-downloads.json"
SUMS_NAME = "SHA256SUMS"  # python-build-standalone's release listing
OCI_INDEX_TAG = "index"  # the tag of a registry mirror's index artifact
INDEX_FORMAT = 1
_SCAN_CACHE = ".relocpy-index-cache.json"
_ARCHIVE = re.compile(
    r"^cpython-(?P<version>\d+\.\d+\.\d+)(?P<pre>(?:a|b|rc)\d+)?\+(?P<build>[0-9A-Za-z.]+)-"
    r"(?P<triple>(?P<arch>[a-z0-9_]+?)(?:_(?P<level>v[234]))?-[a-z]+-linux-(?P<libc>gnu|musl)"
    r"[a-z0-9]*)-(?P<flavour>[a-z_+-]+?)(?P<ext>\.tar\.(?:gz|zst))$"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
# uv's names of CPU families where they are not python-build-standalone's (uv's own
# download metadata maps ppc64le so; its other families are spelt alike)
UV_ARCH_FAMILY = {"ppc64le": "powerpc64le"}
# ELF e_machine values of the CPUs relocpy names in triples
_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "i686", 40: "armv7", 21: "ppc64le", 22: "s390x"}
_ELF_MACHINES[243] = "riscv64"


class MirrorError(RelocpyError):
    """A mirror that cannot be read, or whose content is inconsistent."""


class MirrorFileMissing(MirrorError):
    """The mirror answered, but has no such file (HTTP 404, or no file at a file:// URL)."""


@dataclass(frozen=True)
class MirrorEntry:
    """One archive a mirror offers."""

    name: str  # file name, relative to the mirror
    version: str
    build: str
    variant: str  # "default", "freethreaded", "static" (musl, no extension loading)
    flavour: str  # install_only, install_only_stripped
    target_triple: str
    arch: str  # the CPU family: x86_64, aarch64, ...
    libc: str
    glibc_floor: str | None
    sha256: str
    size: int  # 0: not known (a SHA256SUMS or uv JSON mirror)
    cpu_level: str = ""  # "", "v2", "v3", "v4" (x86_64 only)
    opt: str | None = None  # noopt, lto, pgo, pgo+lto, where the mirror says
    url: str | None = None  # an absolute URL (uv JSON); None: `name` under the mirror
    # whether the archive holds the standard library's bytecode (None: the mirror does not
    # say; install_only always does, relocpy's install_only_stripped does since issue 18)
    bytecode: bool | None = None

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
    fields = {k: v or "" for k, v in match.groupdict().items()}
    flavour = fields["flavour"]
    options = []
    for option in ("freethreaded", "static"):
        if option in flavour:
            options.append(option)
            flavour = flavour.replace(f"{option}+", "").replace(option, "install_only")
    fields["flavour"], fields["variant"] = flavour, "+".join(options) or "default"
    return fields


def _plain_name(name: str, source: str) -> str:
    """`name` if it is a plain archive file name (no directory, no `..`), else MirrorError."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise MirrorError(
            f"{source}: refusing the entry {name!r}: an archive name must be a plain file name"
            " in the mirror, not a path",
        )
    return name


def check_entry(entry: MirrorEntry, source: str) -> MirrorEntry:
    """An entry read from a mirror, after checking that its name is a plain archive name whose
    fields agree with the entry's, and that its checksum and size are well formed."""
    name = entry.url.rsplit("/", 1)[-1] if entry.url else entry.name
    if entry.url is None:
        _plain_name(entry.name, source)
    fields = parse_archive_name(urllib.parse.unquote(name))
    if fields is None:
        raise MirrorError(f"{source}: {entry.name!r} is not an interpreter archive name")
    said = {
        "version": entry.version,
        "build": entry.build,
        "variant": entry.variant,
        "target_triple": entry.target_triple,
        "arch": entry.arch,
        "libc": entry.libc,
    }
    named = {
        "version": fields["version"] + fields["pre"],
        "build": fields["build"],
        "variant": fields["variant"],
        "target_triple": fields["triple"],
        "arch": fields["arch"],
        "libc": fields["libc"],
    }
    wrong = [f"{k} {said[k]!r} (the name says {named[k]!r})" for k in said if said[k] != named[k]]
    if wrong:
        raise MirrorError(
            f"{source}: the entry for {name} disagrees with its name: " + ", ".join(wrong)
        )
    if not _SHA256.match(entry.sha256):
        raise MirrorError(f"{source}: the entry for {name} has no valid sha256 ({entry.sha256!r})")
    if entry.size < 0:
        raise MirrorError(f"{source}: the entry for {name} has a negative size")
    if entry.url is not None:
        check_url(entry.url, f"{source}: the url of {name}")
    return entry


def check_url(url: str, what: str = "--base-url") -> str:
    """`url` if it is an absolute http(s):// or file:// URL, else MirrorError naming `what`."""
    parts = urllib.parse.urlsplit(url)
    ok = (
        (parts.scheme in ("http", "https") and bool(parts.netloc)) or parts.scheme == "file"
    ) and not any(c.isspace() for c in url)
    if not ok:
        raise MirrorError(
            f"{what} {url!r} is not an absolute http://, https:// or file:// URL",
            hint="for example https://example.org/pythons or file:///srv/pythons",
        )
    return url


# ---- what an archive holds --------------------------------------------------------------------

_PATCHLEVEL = re.compile(rb'#define\s+PY_VERSION\s+"([^"]+)"')


@dataclass(frozen=True)
class ArchiveFacts:
    """What opening an archive shows: its CPython version and the CPU its interpreter is for."""

    version: str
    machine: str | None  # None: no ELF interpreter found (a test tree)


def inspect_archive(path: Path) -> ArchiveFacts:
    """Read the whole archive (so a corrupt one fails here): the version from
    `python/include/pythonX.Y/patchlevel.h` (or `python/PYTHON.json`), the CPU from the ELF
    header of `python/bin/pythonX.Y`."""
    import tarfile  # (tarfile and the decompressors are for indexing, not for installs)

    from relocpy.core.archive import UNREADABLE, BadArchiveError, open_archive_stream

    version = None
    machine = None
    pending_exe: dict[str, bytes] = {}
    try:
        with open_archive_stream(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if not member.isreg():
                    continue
                if re.fullmatch(r"python/include/python3\.\d+t?/patchlevel\.h", name):
                    handle = tar.extractfile(member)
                    found = _PATCHLEVEL.search(handle.read() if handle else b"")
                    if found:
                        version = found.group(1).decode("ascii", "replace")
                elif name == "python/PYTHON.json" and version is None:
                    handle = tar.extractfile(member)
                    data = parse_json(handle.read() if handle else b"", f"{path.name}: PYTHON.json")
                    if isinstance(data, dict) and isinstance(data.get("python_version"), str):
                        version = data["python_version"]
                elif re.fullmatch(r"python/bin/python3\.\d+t?", name):
                    handle = tar.extractfile(member)
                    pending_exe[name] = handle.read(20) if handle else b""
            while stream.read(_CHUNK):
                pass
    except BadArchiveError as exc:
        raise MirrorError(exc.message) from exc
    except UNREADABLE as exc:
        raise MirrorError(f"{path.name} does not open as an archive: {exc}") from exc
    if version is None:
        raise MirrorError(
            f"{path.name} holds no CPython (no python/include/python3.X/patchlevel.h)"
        )
    for head in pending_exe.values():
        if head[:4] == b"\x7fELF" and len(head) >= 20:
            order = "little" if head[5] == 1 else "big"
            code = int.from_bytes(head[18:20], order)
            machine = _ELF_MACHINES.get(code, f"e_machine {code}")
    return ArchiveFacts(version, machine)


def _metadata_path(path: Path, fields: dict[str, str]) -> Path:
    """The build's metadata JSON beside an archive: `<stem>.json`, where the stem is the
    install_only archive's (one file describes both flavours of a build)."""
    stem = path.name[: -len(fields["ext"])]
    return path.with_name(stem.replace("install_only_stripped", "install_only") + ".json")


def _metadata(path: Path, fields: dict[str, str]) -> dict[str, object]:
    """The archive's sibling metadata JSON (relocpy's), checked, or {} when there is none (or
    it does not list this archive)."""
    metadata_path = _metadata_path(path, fields)
    if not metadata_path.is_file():
        return {}
    data = read_json(metadata_path, metadata_path.name)
    if not isinstance(data, dict):
        raise RecordError(f"{metadata_path.name}: the top level: expected an object")
    for key, hint in (("python_version", str), ("glibc_floor", str | None)):
        if key in data:
            expect(data[key], hint, metadata_path.name, key)
    if fields["flavour"] != "install_only" and path.name not in (data.get("archives") or {}):
        return {}  # another build's metadata
    options = data.get("build_options", {})
    expect(options, dict, metadata_path.name, "build_options")
    if "opt" in options:
        expect(options["opt"], str, metadata_path.name, "build_options.opt")
    return data


def _entry_for(path: Path, fields: dict[str, str]) -> MirrorEntry:
    """An index entry for the archive at `path`, after opening it: its content and its
    metadata must say what its name says."""
    named = fields["version"] + fields["pre"]
    metadata = _metadata(path, fields)
    if metadata.get("python_version") not in (None, named):
        raise MirrorError(
            f"{path.name}: its metadata says CPython {metadata['python_version']}, its name {named}"
        )
    facts = inspect_archive(path)
    if facts.version != named:
        raise MirrorError(f"{path.name}: it holds CPython {facts.version}, its name says {named}")
    if facts.machine is not None and facts.machine != fields["arch"]:
        raise MirrorError(
            f"{path.name}: its interpreter is for {facts.machine}, its name says {fields['arch']}"
        )
    options = metadata.get("build_options")
    opt = options.get("opt") if isinstance(options, dict) else None
    floor = metadata.get("glibc_floor")
    if fields["flavour"] == "install_only":
        bytecode: bool | None = True
    else:
        bytecode = metadata.get("stripped_bytecode") == "plain" if metadata else None
    return MirrorEntry(
        name=path.name,
        version=named,
        build=fields["build"],
        variant=fields["variant"],
        flavour=fields["flavour"],
        target_triple=fields["triple"],
        arch=fields["arch"],
        libc=fields["libc"],
        glibc_floor=floor if isinstance(floor, str) else None,
        sha256=sha256_file(path),
        size=path.stat().st_size,
        cpu_level=fields["level"],
        opt=opt if isinstance(opt, str) else None,
        bytecode=bytecode,
    )


def entries_for(paths: list[Path]) -> list[MirrorEntry]:
    """Index entries for the interpreter archives among `paths`, each opened and checked."""
    entries = []
    for path in sorted(paths):
        fields = parse_archive_name(path.name)
        if fields is not None and fields["flavour"].startswith("install_only"):
            entries.append(_entry_for(path, fields))
    return entries


def index_document(entries: list[MirrorEntry]) -> dict[str, object]:
    """`index.json`'s content for `entries`."""
    return {"format": INDEX_FORMAT, "archives": [asdict(e) for e in entries]}


def scan_directory(directory: Path) -> list[MirrorEntry]:
    """Every interpreter archive (install_only, install_only_stripped) in `directory`, opened
    and checked (see `_entry_for`). One that is
    corrupt or mislabelled is an error naming it: nothing is indexed then. Archives unchanged
    since the last scan (same size and mtime) are not read again."""
    cache_path = directory / _SCAN_CACHE
    try:
        cached = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except ValueError:
        cached = {}
    entries, problems, fresh = [], [], {}
    for path in sorted(directory.iterdir()):
        fields = parse_archive_name(path.name)
        if fields is None or not path.is_file() or path.is_symlink():
            continue
        if not fields["flavour"].startswith("install_only"):
            continue  # test_suite, full and debug archives are not interpreters to install
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        meta = _metadata_path(path, fields)
        if meta.is_file():
            stamp += [meta.stat().st_size, meta.stat().st_mtime_ns]
        known = cached.get(path.name) if isinstance(cached, dict) else None
        try:
            if isinstance(known, dict) and known.get("stamp") == stamp:
                entry = from_dict(MirrorEntry, known.get("entry"), _SCAN_CACHE, path.name)
            else:
                entry = _entry_for(path, fields)
        except (MirrorError, RecordError) as exc:
            problems.append(exc.message)
            continue
        fresh[path.name] = {"stamp": stamp, "entry": asdict(entry)}
        entries.append(entry)
    if problems:
        raise MirrorError(
            f"{len(problems)} files in {directory} are not what their names say; nothing was"
            " indexed:\n  " + "\n  ".join(problems),
            hint="remove or rename them, then index again",
        )
    if fresh or cache_path.exists():  # a directory with no archive gets no file of ours
        _write_json(cache_path, fresh)
    return entries


def install_rank(entry: MirrorEntry) -> tuple[int, bool]:
    """Among the archives of one build, the one to install, best highest: the stripped flavour
    where it holds the bytecode (smaller, as fast to start), then install_only, then a stripped
    archive without bytecode (its every start compiles where the tree is read-only); `.tar.zst`
    over `.tar.gz` (faster to unpack)."""
    stripped = 2 if entry.bytecode else 0
    return (1 if entry.flavour == "install_only" else stripped), entry.compression == "zst"


def uv_download_entries(entries: list[MirrorEntry], base_url: str) -> dict[str, dict[str, object]]:
    """The entries in the shape of uv's python downloads JSON.

    uv keys downloads by version, variant and platform (no build): per key the newest build's
    archive is listed, the one `relocpy install` would take of that build (`install_rank`:
    the stripped flavour where it holds bytecode, `.tar.zst`). An x86-64-v3 build is listed
    under its own key, with the `v3` arch variant uv selects on such CPUs.
    A static build (musl, every extension module built in) is left out: it cannot load
    an extension module, so no environment uv makes with it could install a binary wheel.
    """
    chosen: dict[str, MirrorEntry] = {}
    for entry in entries:
        if not entry.flavour.startswith("install_only") or "static" in entry.variant:
            continue
        suffix = "" if entry.variant == "default" else f"+{entry.variant}"
        family = UV_ARCH_FAMILY.get(entry.arch, entry.arch)
        arch = family + (f"_{entry.cpu_level}" if entry.cpu_level else "")
        key = f"cpython-{entry.version}{suffix}-linux-{arch}-{entry.libc}"
        best = chosen.get(key)
        if best is None or (entry.build, *install_rank(entry)) > (
            best.build,
            *install_rank(best),
        ):
            chosen[key] = entry
    out: dict[str, dict[str, object]] = {}
    for key, entry in sorted(chosen.items()):
        major, minor, patch = re.match(r"(\d+)\.(\d+)\.(\d+)", entry.version).groups()  # type: ignore[union-attr]
        out[key] = {
            "name": "cpython",
            "arch": {
                "family": UV_ARCH_FAMILY.get(entry.arch, entry.arch),
                "variant": entry.cpu_level or None,
            },
            "os": "linux",
            "libc": entry.libc,
            "major": int(major),
            "minor": int(minor),
            "patch": int(patch),
            "prerelease": entry.version[len(f"{major}.{minor}.{patch}") :],
            "url": base_url.rstrip("/") + "/" + urllib.parse.quote(entry.name),
            "sha256": entry.sha256,
            "variant": None if entry.variant == "default" else entry.variant,
            "build": entry.build,
        }
    return out


def write_index(directory: Path, base_url: str | None = None) -> list[MirrorEntry]:
    """Write `index.json` and `uv-downloads.json` into `directory` (atomically)."""
    directory = Path(directory).absolute()
    if base_url is not None:
        check_url(base_url)
    if not directory.is_dir():
        raise MirrorError(f"{directory} is not a directory")
    entries = scan_directory(directory)
    if not entries:
        raise MirrorError(f"no interpreter archives (cpython-*.tar.gz/.tar.zst) in {directory}")
    _write_json(directory / INDEX_NAME, index_document(entries))
    _write_json(
        directory / UV_INDEX_NAME, uv_download_entries(entries, base_url or directory.as_uri())
    )
    return entries


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# ---- reading a mirror ---------------------------------------------------------------------


def parse_index(text: str | bytes, source: str = INDEX_NAME) -> list[MirrorEntry]:
    """The entries of a relocpy `index.json`, each checked (see `check_entry`)."""
    data = parse_json(text, source)
    if not isinstance(data, dict):
        raise RecordError(f"{source}: the top level: expected an object")
    require_format(data, INDEX_FORMAT, source)
    archives = expect(data.get("archives"), list, source, "archives")
    return [
        check_entry(from_dict(MirrorEntry, item, source, f"archives[{i}]"), source)
        for i, item in enumerate(archives)
    ]


def parse_sums(text: str, source: str = SUMS_NAME) -> list[MirrorEntry]:
    """The install_only archives a python-build-standalone `SHA256SUMS` lists."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition("  ")
        name = name.lstrip("*")
        fields = parse_archive_name(name)
        if fields is None or not fields["flavour"].startswith("install_only"):
            continue  # full archives, debug builds and other files
        if not _SHA256.match(digest.lower()):
            raise MirrorError(f"{source}: line {number}: {digest!r} is not a sha256")
        entries.append(_entry_from_fields(_plain_name(name, source), fields, digest.lower()))
    return entries


def _entry_from_fields(
    name: str, fields: dict[str, str], sha256: str, url: str | None = None
) -> MirrorEntry:
    return MirrorEntry(
        name=name,
        version=fields["version"] + fields["pre"],
        build=fields["build"],
        variant=fields["variant"],
        flavour=fields["flavour"],
        target_triple=fields["triple"],
        arch=fields["arch"],
        libc=fields["libc"],
        glibc_floor="2.17" if fields["libc"] == "gnu" else None,  # python-build-standalone's
        sha256=sha256,
        size=0,
        cpu_level=fields["level"],
        opt="pgo+lto",  # every python-build-standalone install_only build is
        url=url,
    )


def parse_uv_downloads(text: str | bytes, source: str) -> list[MirrorEntry]:
    """The Linux CPython archives of a uv python downloads JSON (entries without a sha256 are
    left out: relocpy installs nothing it cannot check)."""
    data = parse_json(text, source)
    if not isinstance(data, dict):
        raise RecordError(f"{source}: the top level: expected an object keyed by download")
    entries = []
    for key, item in data.items():
        item = expect(item, dict, source, key)
        if item.get("name") != "cpython" or item.get("os") != "linux":
            continue
        url = expect(item.get("url"), str, source, f"{key}.url")
        sha256 = item.get("sha256")
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            continue
        file_name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        fields = parse_archive_name(file_name)
        if fields is None:
            raise MirrorError(f"{source}: {key}.url: {file_name!r} is not an archive name")
        entry = _entry_from_fields(file_name, fields, sha256, url=check_url(url, f"{key}.url"))
        entries.append(entry)
    return entries


class _CheckedBlob:
    """A registry blob read whole and checked against its digest, as a response."""

    status = 200

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._at + size
        chunk, self._at = self._data[self._at : end], min(end, len(self._data))
        return chunk

    def __enter__(self) -> _CheckedBlob:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _LocalResponse:
    """A local file opened as urllib's response to a file:// URL would be (status 206 when read
    from an offset), for the readers in `Mirror`."""

    def __init__(self, path: str, offset: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by __exit__
        self._file.seek(offset)
        self.status = 206 if offset else 200

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def __enter__(self) -> _LocalResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _open_local(url: str, name: str, mirror: str, offset: int) -> _LocalResponse:
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    try:
        return _LocalResponse(path, offset)
    except (FileNotFoundError, NotADirectoryError):
        raise MirrorFileMissing(f"mirror {mirror} has no {name}") from None
    except IsADirectoryError:
        raise MirrorFileMissing(f"mirror {mirror}: {name} is a directory") from None
    except OSError as exc:
        raise MirrorError(f"cannot read {path} from mirror {mirror}: {exc.strerror}") from exc


class _Download:
    """A download read as a stream: each chunk is written to `part`, hashed and reported as it
    arrives, so that unpacking can run while the bytes come in (`Mirror.download`'s `consume`).
    A resumed download first replays the `offset` bytes `part` already holds."""

    def __init__(
        self,
        response: Any,
        part: Path | None,
        offset: int,
        name: str,
        size: int,
        reporter: Reporter,
    ) -> None:
        self._response, self._name, self._size, self._reporter = response, name, size, reporter
        self.sha256 = hashlib.sha256()
        self.received = 0
        self._replay = part.open("rb") if offset and part else None
        self._replay_left = offset
        self._out = part.open("ab" if offset else "wb") if part else None  # None: no copy

    def read(self, size: int = -1) -> bytes:
        size = _CHUNK if size < 0 else size
        if self._replay is not None:
            chunk = self._replay.read(min(size, self._replay_left))
            self._replay_left -= len(chunk)
            if chunk:
                self.sha256.update(chunk)
                self.received += len(chunk)
                return chunk
            self._replay.close()
            self._replay = None
        try:
            chunk = self._response.read(size)
        except Exception as exc:  # the network's (a write to `part` below is the disk's)
            raise MirrorError(
                f"the download of {self._name} broke off after {self.received} bytes: {exc}",
                hint="run the same command again to resume the download",
            ) from exc
        if chunk:
            if self._out is not None:
                self._out.write(chunk)
            self.sha256.update(chunk)
            self.received += len(chunk)
            self._reporter.bytes_done(self._name, self.received, self._size or None)
        return chunk

    def close(self) -> None:
        """(A reader's close does not end the download: `finish` does.)"""

    def finish(self) -> None:
        """Read what the reader left (a tar's padding), then close the file."""
        while self.read(_CHUNK):
            pass
        self.abort()

    def abort(self) -> None:
        if self._replay is not None:
            self._replay.close()
        if self._out is not None:
            self._out.close()


class _NoBytes:
    """The response to nothing asked: a `.part` that already holds the whole file."""

    def read(self, size: int = -1) -> bytes:
        return b""


def _mirror_url(mirror: str) -> str:
    if mirror.startswith("oci://"):
        from relocpy.package.oci import parse_location

        return parse_location(mirror).url
    if "://" in mirror:
        return check_url(mirror.rstrip("/"), "the mirror")
    return Path(mirror).absolute().as_uri()


class Mirror:
    """A mirror at a local path, a file:// URL or an http(s):// URL: a directory with relocpy's
    `index.json` or python-build-standalone's `SHA256SUMS`, or a uv downloads `.json` file; or
    an OCI registry repository (`oci://HOST[:PORT]/REPO`), whose `index` artifact names the
    index files and archives as its layers (see `relocpy.matrix.bincache.OciBinaryCache`)."""

    def __init__(self, location: str, timeout: float = 10.0) -> None:
        self.location = location
        self.url = _mirror_url(location)
        self.timeout = timeout
        self._oci_layers: dict[str, dict[str, object]] | None = None
        self._oci_client: OciClient | None = None

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file:")

    def _url_of(self, name: str) -> str:
        if name.startswith(("http://", "https://", "file:")):
            return name
        return f"{self.url}/{urllib.parse.quote(name)}"

    def open(self, name: str, offset: int = 0):  # type: ignore[no-untyped-def]
        """A response for `name` (relative to the mirror, or an absolute URL) from `offset`."""
        if self.url.startswith("oci://"):
            return self._open_oci(name, offset)
        url = self._url_of(name)
        if url.startswith("file:"):  # read directly: urllib's import alone costs an install 40 ms
            return _open_local(url, name, self.url, offset)
        import urllib.error
        import urllib.request

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
            if isinstance(reason, (FileNotFoundError, NotADirectoryError)):
                raise MirrorFileMissing(f"mirror {self.url} has no {name}") from exc
            if isinstance(reason, IsADirectoryError):
                raise MirrorFileMissing(f"mirror {self.url}: {name} is a directory") from exc
            raise MirrorError(
                f"cannot reach mirror {self.url}: {reason}",
                hint="check the URL (or --mirror) and the network",
            ) from exc

    def _open_oci(self, name: str, offset: int):  # type: ignore[no-untyped-def]
        """A file of the registry's `index` artifact, by its title (its digest is checked by
        `download`, against the index entry that names it, or by reading it whole)."""
        from relocpy.package.oci import OciClient, OciError, titled_layers

        if self._oci_client is None:  # one client: its token serves every later request
            self._oci_client = OciClient(self.url, timeout=self.timeout)
        client = self._oci_client
        try:
            if self._oci_layers is None:
                found = client.manifest(OCI_INDEX_TAG)
                if found is None:
                    raise MirrorFileMissing(
                        f"the registry repository {self.url} has no {OCI_INDEX_TAG!r} tag",
                        hint="push builds with `relocpy matrix build … --cache "
                        f"{self.url}`, then `relocpy mirror index {self.url}`",
                    )
                self._oci_layers = titled_layers(found[0])
            item = self._oci_layers.get(name)
            if item is None:
                raise MirrorFileMissing(f"mirror {self.url} has no {name}")
            digest = str(item["digest"])
            if offset or not name.endswith(".json"):
                return client.open_blob(digest, offset)  # streamed; `download` checks it
            return _CheckedBlob(client.read_blob(digest))
        except OciError as exc:
            if isinstance(exc, MirrorError):
                raise
            raise MirrorError(exc.message, hint=exc.hint) from None

    def _read(self, name: str) -> bytes:
        with self.open(name) as response:
            return response.read()

    def entries(self) -> list[MirrorEntry]:
        """What the mirror offers, each entry checked."""
        if self.url.endswith(".json"):
            return parse_uv_downloads(self._read_whole_url(), self.location)
        try:
            return parse_index(self._read(INDEX_NAME), f"{self.location}: {INDEX_NAME}")
        except MirrorFileMissing:
            pass
        try:
            text = self._read(SUMS_NAME).decode("utf-8", "replace")
        except MirrorFileMissing:
            raise MirrorError(
                f"mirror {self.location} has neither {INDEX_NAME} nor {SUMS_NAME}",
                hint="index a directory of archives with `relocpy mirror index DIR`",
            ) from None
        return parse_sums(text, f"{self.location}: {SUMS_NAME}")

    def _read_whole_url(self) -> bytes:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise MirrorError(f"{self.url} answered {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise MirrorError(f"cannot read {self.url}: {getattr(exc, 'reason', exc)}") from exc

    def fetch_file(
        self, name: str, size: int, part: Path, reporter: Reporter | None = None
    ) -> None:
        """Download `name` (`size` bytes, 0 if not known) into `part`, resuming what `part`
        already holds."""
        self._stream(name, size, part, reporter or QuietReporter())

    def _stream(
        self,
        name: str,
        size: int,
        part: Path | None,
        reporter: Reporter,
        consume: Callable[[BinaryIO], None] | None = None,
    ) -> tuple[_Download, RelocpyError | None]:
        """Download `name` into `part` (None: keep no copy), resuming what `part` holds, while
        `consume` (if given) reads the bytes; checks the size. Returns the finished stream (its
        sha256) and the error `consume` raised, if any: whether that error or a checksum
        mismatch is the cause is for the caller to say."""
        offset = part.stat().st_size if part and part.exists() and size else 0
        if part and offset > size:
            part.unlink()
            offset = 0
        failed: RelocpyError | None = None
        done_already = bool(size) and offset == size  # a complete .part: nothing to ask for
        opened = contextlib.nullcontext(_NoBytes()) if done_already else self.open(name, offset)
        with opened as response:
            resumed = offset if done_already or getattr(response, "status", 200) == 206 else 0
            stream = _Download(response, part, resumed, name, size, reporter)
            try:
                if consume is not None:
                    try:
                        consume(stream)  # type: ignore[arg-type]
                    except MirrorError:
                        raise  # a broken download: `part` stays, to resume
                    except RelocpyError as exc:
                        failed = exc
                try:
                    stream.finish()  # (after a failure: was it the file the index lists?)
                except MirrorError:
                    if failed is None:
                        raise
                    raise failed from None
            except BaseException:
                stream.abort()
                raise
        if size and stream.received != size:
            if self.is_local:  # a local file does not grow by asking again
                if part:
                    part.unlink(missing_ok=True)
                raise MirrorError(
                    f"{name}: the mirror's copy is {stream.received} bytes, but its index says"
                    f" {size}",
                    hint="the file on the mirror is truncated, or the index is stale: run"
                    " `relocpy mirror index` on the mirror again, or use another mirror",
                )
            raise MirrorError(
                f"{name}: the mirror sent {stream.received} of {size} bytes",
                hint="run the same command again to resume the download",
            )
        return stream, failed

    def download(
        self,
        entry: MirrorEntry,
        target: Path,
        reporter: Reporter | None = None,
        consume: Callable[[BinaryIO], None] | None = None,
    ) -> Path:
        """Fetch `entry` into `target`, resuming a `target.part` left by an earlier attempt.

        With `consume`, the bytes are also handed to `consume` as they arrive (an install
        unpacks while it downloads): its result counts only once the size and sha256 are
        checked here, after it returns. If it fails and the checksum does not match either, the
        mismatch is the error raised."""
        part = target.with_name(target.name + ".part")
        self._fetch_checked(entry, part, reporter, consume)
        os.replace(part, target)
        return target

    def consume(
        self,
        entry: MirrorEntry,
        consume: Callable[[BinaryIO], None],
        reporter: Reporter | None = None,
    ) -> None:
        """Hand the bytes of `entry` to `consume` as they are read, keeping no copy (for a
        local mirror, whose file is at hand anyway), with the same checks as `download`."""
        self._fetch_checked(entry, None, reporter, consume)

    def _fetch_checked(
        self,
        entry: MirrorEntry,
        part: Path | None,
        reporter: Reporter | None,
        consume: Callable[[BinaryIO], None] | None,
    ) -> None:
        """`_stream` for an index entry, and its sha256 checked; `part` is removed where it
        holds a wrong or unusable file."""
        check_entry(entry, self.location)
        name = entry.url or entry.name
        stream, failed = self._stream(name, entry.size, part, reporter or QuietReporter(), consume)
        actual = stream.sha256.hexdigest()
        if part and (actual != entry.sha256 or failed is not None):
            part.unlink(missing_ok=True)
        if actual != entry.sha256:
            raise ChecksumMismatchError(
                f"{entry.name} has sha256 {actual}, but the mirror index says {entry.sha256}"
                + (f" ({failed.message})" if failed else ""),
                hint="the mirror serves a different file than it lists; it was not used",
            )
        if failed is not None:
            raise failed  # the listed file, but `consume` cannot use it
