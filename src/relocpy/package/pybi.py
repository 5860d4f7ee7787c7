"""PyBI (PEP 711): the interpreter tree as a `.pybi`, a zip with a `pybi-info/` directory,
and a small reader that installs one.

`write_pybi` stores the tree's files (what install_only holds) in a fixed order with fixed
times, symlinks by the Info-Zip convention and in `RECORD` as `symlink=TARGET`, and
`pybi-info/METADATA` with `Pybi-Environment-Marker-Variables`, `Pybi-Paths` and
`Pybi-Wheel-Tag`s. `install_pybi` checks every rule PEP 711 sets for unpackers (plain relative
names, symlinks relative and inside, nothing beneath a symlink, `RECORD` and archive agreeing,
every hash) before it writes anything, and moves the finished tree into place last.
"""

from __future__ import annotations

import base64
import csv
import email.parser
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relocpy import __version__
from relocpy.core.errors import RelocpyError

INFO = "pybi-info"
_FORBIDDEN_KEYS = ("Requires-Dist", "Provides-Extra", "Requires-Python")
_NAME = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)(?:-(?P<build>\d[^-]*))?-(?P<platform>[^-]+)\.pybi$"
)
_ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can carry


class PybiError(RelocpyError):
    """A `.pybi` that breaks PEP 711's rules, or does not match its RECORD."""


@dataclass(frozen=True)
class PybiInfo:
    """What a `.pybi`'s `pybi-info/` says."""

    name: str
    version: str
    tags: tuple[str, ...]
    marker_variables: dict[str, str]
    paths: dict[str, str]
    wheel_tags: tuple[str, ...]


def platform_tag(glibc: tuple[int, ...] | None, arch: str = "x86_64") -> str:
    major, minor = (glibc or (2, 17))[:2]
    return f"manylinux_{major}_{minor}_{arch}"


def marker_variables(version: str, arch: str = "x86_64") -> dict[str, str]:
    """The PEP 508 marker variables that do not depend on the machine it runs on."""
    short = ".".join(version.split(".")[:2])
    return {
        "implementation_name": "cpython",
        "implementation_version": version,
        "os_name": "posix",
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": version,
        "python_version": short,
        "sys_platform": "linux",
    }


def install_paths(short: str, free_threaded: bool = False) -> dict[str, str]:
    """sysconfig's posix_prefix paths, relative to the tree (the same keys)."""
    abi = "t" if free_threaded else ""
    return {
        "stdlib": f"lib/python{short}{abi}",
        "platstdlib": f"lib/python{short}{abi}",
        "purelib": f"lib/python{short}{abi}/site-packages",
        "platlib": f"lib/python{short}{abi}/site-packages",
        "include": f"include/python{short}{abi}",
        "platinclude": f"include/python{short}{abi}",
        "scripts": "bin",
        "data": ".",
    }


def wheel_tags(short: str, free_threaded: bool = False) -> list[str]:
    """The wheel tags CPython `short` takes, most preferred first (packaging.tags' order), with
    PLATFORM for the machine-dependent platform tags."""
    major, minor = (int(p) for p in short.split("."))
    cp = f"cp{major}{minor}"
    tags = [f"{cp}-{cp}{'t' if free_threaded else ''}-PLATFORM"]
    if not free_threaded:  # the stable ABI is not available without the GIL
        tags.append(f"{cp}-abi3-PLATFORM")
    tags.append(f"{cp}-none-PLATFORM")
    if not free_threaded:
        tags += [f"cp{major}{m}-abi3-PLATFORM" for m in range(minor - 1, 1, -1)]
    pys = [f"py{major}{minor}", f"py{major}", *(f"py{major}{m}" for m in range(minor - 1, -1, -1))]
    tags += [f"{py}-none-PLATFORM" for py in pys]
    tags += [f"{cp}-none-any"]
    tags += [f"{py}-none-any" for py in pys]
    return tags


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _entry(name: str, mode: int, mtime: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_zip_time(mtime))
    info.external_attr = (mode & 0xFFFF) << 16
    info.create_system = 3  # Unix, so the mode bits are read
    return info


def _zip_time(mtime: int) -> tuple[int, int, int, int, int, int]:
    import time

    return time.gmtime(max(mtime, _ZIP_EPOCH))[:6]


def write_pybi(
    root: Path,
    out_dir: Path,
    *,
    version: str,
    glibc: tuple[int, ...] | None,
    include: Callable[[str], bool],
    mtime: int,
    build: str | None = None,
    arch: str = "x86_64",
    free_threaded: bool = False,
) -> Path:
    """Write `cpython-VERSION[-BUILD]-PLATFORM.pybi` of the tree at `root` into `out_dir`."""
    short = ".".join(version.split(".")[:2])
    platform = platform_tag(glibc, arch)
    tag = build if build and build[0].isdigit() else None
    name = f"cpython-{version}{f'-{tag}' if tag else ''}-{platform}.pybi"
    target = out_dir / name
    paths = install_paths(short, free_threaded)
    members: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for entry in sorted([*filenames, *(d for d in dirnames if (base / d).is_symlink())]):
            rel = (base / entry).relative_to(root).as_posix()
            if include(rel):
                members.append((rel, base / entry))
        dirnames[:] = [
            d
            for d in dirnames
            if not (base / d).is_symlink() and include((base / d).relative_to(root).as_posix())
        ]
    names = {rel for rel, _ in members}
    extra_link = None
    if "bin/python" not in names:  # PEP 711: `{scripts}/python` runs the interpreter
        extra_link = ("bin/python", f"python{short}{'t' if free_threaded else ''}")
    record: list[list[str]] = []
    part = target.with_name(f".{name}.part")
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for rel, path in sorted(members):
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                link = os.readlink(path)
                archive.writestr(_entry(rel, 0o120777, mtime), link)
                record.append([rel, f"symlink={link}", ""])
                continue
            data = path.read_bytes()
            archive.writestr(_entry(rel, stat.S_IFREG | (mode & 0o777), mtime), data)
            record.append([rel, _record_hash(data), str(len(data))])
        if extra_link:
            archive.writestr(_entry(extra_link[0], 0o120777, mtime), extra_link[1])
            record.append([extra_link[0], f"symlink={extra_link[1]}", ""])
        metadata = [
            "Metadata-Version: 2.1",
            "Name: cpython",
            f"Version: {version}",
            "Summary: a relocatable CPython interpreter built by relocpy",
            "License: PSF-2.0",
            "Pybi-Environment-Marker-Variables: "
            + json.dumps(marker_variables(version, arch), sort_keys=True),
            f"Pybi-Paths: {json.dumps(paths, sort_keys=True)}",
            *(f"Pybi-Wheel-Tag: {t}" for t in wheel_tags(short, free_threaded)),
        ]
        pybi = ["Pybi-Version: 1.0", f"Generator: relocpy {__version__}", f"Tag: {platform}"]
        if tag:
            pybi.append(f"Build: {tag}")
        for info_name, lines in (("METADATA", metadata), ("PYBI", pybi)):
            data = ("\n".join(lines) + "\n").encode()
            archive.writestr(_entry(f"{INFO}/{info_name}", 0o100644, mtime), data)
            record.append([f"{INFO}/{info_name}", _record_hash(data), str(len(data))])
        record.append([f"{INFO}/RECORD", "", ""])
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(record)
        archive.writestr(_entry(f"{INFO}/RECORD", 0o100644, mtime), text.getvalue())
    os.replace(part, target)
    return target


def _check_name(name: str) -> str:
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\0" in name
        or any(p in ("", ".", "..") for p in name.rstrip("/").split("/"))
    ):
        raise PybiError(f"refusing the member {name!r}: not a plain relative path")
    return name.rstrip("/")


def read_info(path: Path) -> tuple[PybiInfo, dict[str, tuple[str, str]]]:
    """The `pybi-info/` metadata, and RECORD (name → (hash, size)), checked against PEP 711."""
    match = _NAME.match(path.name)
    if not match:
        raise PybiError(
            f"{path.name} is not a PyBI file name ({{name}}-{{version}}-{{platform}}.pybi)"
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PybiError(f"{path.name} is not a zip file: {exc}") from None
    with archive:
        try:
            meta = archive.read(f"{INFO}/METADATA").decode()
            pybi = archive.read(f"{INFO}/PYBI").decode()
            record_text = archive.read(f"{INFO}/RECORD").decode()
        except KeyError as exc:
            raise PybiError(f"{path.name} lacks {exc.args[0]}") from None
    message = email.parser.Parser().parsestr(meta)
    forbidden = [k for k in _FORBIDDEN_KEYS if k in message]
    if forbidden:
        raise PybiError(f"{path.name}: METADATA has {', '.join(forbidden)}, which PEP 711 forbids")
    header = email.parser.Parser().parsestr(pybi)
    if header.get("Pybi-Version") != "1.0":
        raise PybiError(f"{path.name}: PYBI says Pybi-Version {header.get('Pybi-Version')!r}")
    try:
        markers = json.loads(message["Pybi-Environment-Marker-Variables"])
        paths = json.loads(message["Pybi-Paths"])
    except (TypeError, ValueError) as exc:
        raise PybiError(f"{path.name}: METADATA's Pybi fields are not JSON: {exc}") from None
    if message["Name"] != match["name"] or message["Version"] != match["version"]:
        raise PybiError(f"{path.name}: METADATA names {message['Name']} {message['Version']}")
    tags = tuple(header.get_all("Tag") or ())
    if match["platform"] not in ".".join(tags).split("."):
        raise PybiError(f"{path.name}: PYBI's tags {tags} do not include {match['platform']}")
    record = {}
    for row in csv.reader(io.StringIO(record_text)):
        if len(row) != 3:
            raise PybiError(f"{path.name}: a RECORD row is not name,hash,size: {row}")
        record[_check_name(row[0])] = (row[1], row[2])
    info = PybiInfo(
        message["Name"],
        message["Version"],
        tags,
        markers,
        paths,
        tuple(message.get_all("Pybi-Wheel-Tag") or ()),
    )
    return info, record


def install_pybi(path: Path, dest: Path) -> PybiInfo:
    """Unpack the `.pybi` at `path` into the new directory `dest`, after checking it whole."""
    info, record = read_info(path)
    dest = Path(dest).absolute()
    if dest.exists():
        raise PybiError(f"{dest} exists", hint="install a PyBI into a new directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            links: dict[str, str] = {}
            names = set()
            for item in entries:
                name = _check_name(item.filename)
                names.add(name)
                if (item.external_attr >> 16) & 0xF000 == 0xA000:
                    links[name] = archive.read(item).decode()
            dirs = {e.filename.rstrip("/") for e in entries if e.is_dir()}
            if names - dirs != set(record):
                differ = sorted(set(record) ^ (names - dirs))
                raise PybiError(f"{path.name}: RECORD and the archive differ on {differ[:5]}")
            for name, target in links.items():
                if name.startswith(f"{INFO}/"):
                    raise PybiError(f"{path.name}: a symlink inside {INFO}/: {name}")
                said = record[name][0]
                if said != f"symlink={target}":
                    raise PybiError(
                        f"{path.name}: {name} links to {target!r}, RECORD says {said!r}"
                    )
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
                if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                    raise PybiError(f"{path.name}: the symlink {name} -> {target} leaves the tree")
            for name in names:
                parts = name.split("/")
                for depth in range(1, len(parts)):
                    above = "/".join(parts[:depth])
                    if above in links:
                        raise PybiError(f"{path.name}: {name} lies beneath the symlink {above}")
            for item in entries:
                name = item.filename.rstrip("/")
                if name in links or item.is_dir():
                    continue
                data = archive.read(item)
                hash_, size = record[name]
                if name != f"{INFO}/RECORD" and (
                    hash_ != _record_hash(data) or size != str(len(data))
                ):
                    raise PybiError(f"{path.name}: {name} does not match its RECORD entry")
                out = work / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
                out.chmod((item.external_attr >> 16) & 0o777 or 0o644)
            for name, target in sorted(links.items()):
                out = work / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.symlink_to(target)
        os.replace(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return info
