"""Writing and reading interpreter archives (`.tar.gz`, `.tar.zst`).

Writing is deterministic for a given tree (sorted members, numeric owner 0, fixed gzip header;
gzip by libdeflate, whose best level is a few percent smaller than zlib's); reading is streaming
and refuses members that would land outside the target directory.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import shutil
import stat
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import deflate
import zstandard

from relocpy.errors import RelocpyError


class BadArchiveError(RelocpyError):
    """An archive that is corrupt, truncated or has unsafe members."""


def iter_tree(root: Path, include: Callable[[str], bool]) -> Iterator[Path]:
    """Files, symlinks and directories under `root` in sorted order, filtered by relative path."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            rel = path.relative_to(root).as_posix()
            if not include(rel):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            yield path


def _tarinfo(tar: tarfile.TarFile, path: Path, arcname: str, mtime: int | None) -> tarfile.TarInfo:
    info = tar.gettarinfo(str(path), arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if mtime is not None:
        info.mtime = min(int(info.mtime), mtime)
    if info.isreg() or info.isdir():
        info.mode = stat.S_IMODE(info.mode) & 0o755 | (0o755 if info.isdir() else 0)
    return info


def write_tar(
    stream: BinaryIO, root: Path, top: str, include: Callable[[str], bool], mtime: int | None = None
) -> None:
    """Write `root` as `top/...` into an uncompressed tar stream."""
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_tarinfo(tar, root, top, mtime))
        for path in iter_tree(root, include):
            arcname = f"{top}/{path.relative_to(root).as_posix()}"
            info = _tarinfo(tar, path, arcname, mtime)
            if info.isreg():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)


# gzip member header: deflate, no flags, mtime 0, "best compression", OS unknown
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
# libdeflate's levels: 12 is its slowest and smallest (about 4% under zlib's 9 on a
# stripped tree, at a fifth of zlib's speed); 9 is smaller than zlib's 9 and three times faster.
GZIP_LEVEL = 9
GZIP_LEVEL_SMALLEST = 12


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """`data` as one gzip member with no name or time in its header: equal input, equal bytes."""
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return _GZIP_HEADER + deflate.deflate_compress(data, level) + trailer


def _tar_bytes(root: Path, top: str, include: Callable[[str], bool], mtime: int | None) -> bytes:
    buffer = io.BytesIO()
    write_tar(buffer, root, top, include, mtime)
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_archives(
    root: Path,
    top: str,
    gz_path: Path,
    zst_path: Path,
    include: Callable[[str], bool],
    mtime: int | None = None,
    gz_level: int = GZIP_LEVEL,
) -> None:
    """Write one tar stream gzip- and zstd-compressed (`.part` files, renamed when done)."""
    data = _tar_bytes(root, top, include, mtime)
    compressor = zstandard.ZstdCompressor(level=19, threads=-1, write_checksum=True)
    _write_atomically(gz_path, gzip_bytes(data, gz_level))
    try:
        _write_atomically(zst_path, compressor.compress(data))
    except BaseException:
        gz_path.unlink(missing_ok=True)
        raise


def write_gz(
    root: Path, top: str, gz_path: Path, include: Callable[[str], bool], mtime: int | None = None
) -> None:
    """One deterministic `.tar.gz` (a `.part` file, renamed when done)."""
    _write_atomically(gz_path, gzip_bytes(_tar_bytes(root, top, include, mtime)))


class _ZstdStream(io.RawIOBase):
    """Streaming zstd decompression that fails on a truncated frame instead of ending early."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._decompressor = zstandard.ZstdDecompressor().decompressobj()
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray) -> int:  # type: ignore[override]
        while not self._buffer:
            chunk = self._raw.read(1 << 20)
            if not chunk:
                if not self._decompressor.eof:
                    raise EOFError("zstd stream ended before the end of its frame")
                return 0
            if self._decompressor.eof:
                raise zstandard.ZstdError("trailing data after the zstd frame")
            self._buffer = self._decompressor.decompress(chunk)
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_archive_stream(path: Path) -> BinaryIO:
    """A decompressing stream for `.tar.gz`, `.tgz`, `.tar.zst` or plain `.tar`."""
    raw = path.open("rb")
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        return io.BufferedReader(_ZstdStream(raw), 1 << 20)  # type: ignore[return-value]
    return raw


def _check_member(member: tarfile.TarInfo, links: set[str], files: set[str]) -> None:
    """Refuse members that could write outside the destination or create special files."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts or not parts:
        raise BadArchiveError(f"unsafe member {name!r}: it points outside the destination")
    for depth in range(1, len(parts)):
        if "/".join(parts[:depth]) in links:
            raise BadArchiveError(f"unsafe member {name!r}: it would be written through a link")
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise BadArchiveError(
                f"unsafe member {name!r}: its link {member.linkname!r} leaves the destination"
            )
    elif member.islnk():
        if member.linkname not in files:
            raise BadArchiveError(
                f"unsafe member {name!r}: hard link to {member.linkname!r} outside the archive"
            )
    elif not (member.isreg() or member.isdir()):
        raise BadArchiveError(f"unsafe member {name!r}: device, fifo or other special file")


def extract_archive(path: Path, dest: Path) -> None:
    """Stream-extract `path` into the new or empty directory `dest`, refusing unsafe members.

    Written for speed as well as safety (tarfile's own extraction resolves every path with
    realpath): names are checked lexically, files are created with O_EXCL so nothing already
    there is followed, and no member may be written through a symlink from the same archive.
    """
    dest.mkdir(parents=True, exist_ok=True)
    links: set[str] = set()
    files: set[str] = set()
    directories: list[tuple[str, int]] = []
    try:
        with open_archive_stream(path) as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    _check_member(member, links, files)
                    target = os.path.join(dest, member.name)
                    if member.isdir():
                        os.makedirs(target, mode=0o755, exist_ok=True)
                        directories.append((target, int(member.mtime)))
                        continue
                    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                    if member.issym():
                        os.symlink(member.linkname, target)
                        links.add(member.name)
                    elif member.islnk():
                        os.link(os.path.join(dest, member.linkname), target)
                    else:
                        mode = 0o755 if member.mode & 0o111 else 0o644
                        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                        source = tar.extractfile(member)
                        with os.fdopen(fd, "wb") as out:
                            if source is not None:
                                shutil.copyfileobj(source, out, 1 << 20)
                        os.utime(target, (member.mtime, member.mtime))
                        files.add(member.name)
            while stream.read(1 << 20):  # the rest must decompress too (integrity, truncation)
                pass
        for directory, mtime in reversed(directories):
            os.utime(directory, (mtime, mtime))
    except OSError as exc:
        if exc.errno is not None:  # the destination failed (disk full, permissions): not the data
            raise
        raise BadArchiveError(f"{path.name} is corrupt or truncated: {exc}") from exc
    except (tarfile.TarError, EOFError, zstandard.ZstdError) as exc:
        raise BadArchiveError(f"{path.name} is corrupt or truncated: {exc}") from exc


def read_member(path: Path, name: str) -> bytes | None:
    with open_archive_stream(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if member.name == name and member.isreg():
                handle = tar.extractfile(member)
                return handle.read() if handle else None
    return None
