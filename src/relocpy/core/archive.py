"""Writing and reading interpreter archives (`.tar.gz`, `.tar.zst`).

Writing is deterministic for a given tree (sorted members, numeric owner 0, fixed gzip header;
gzip by libdeflate, whose best level is a few percent smaller than zlib's); reading is streaming
and refuses members that would land outside the target directory.
"""

from __future__ import annotations

import abc
import bz2
import contextlib
import errno
import fcntl
import functools
import gzip
import io
import lzma
import os
import queue
import shutil
import stat
import struct
import subprocess
import tarfile
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import deflate
import zstandard

from relocpy.core.children import dies_with_us
from relocpy.core.errors import RelocpyError
from relocpy.core.tarscan import END_OF_ARCHIVE, Header, NotPlain, TarScan

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

# concurrent.futures (with logging) is imported when Python writes files: an install whose
# archive GNU tar writes starts 9 ms sooner without it.


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


class _Chunks(io.RawIOBase):
    """A raw stream served from the chunks `_next_chunk` returns (b"" at the end); closing it
    closes `_source`."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._chunk = memoryview(b"")

    @abc.abstractmethod
    def _next_chunk(self) -> bytes: ...

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray) -> int:  # type: ignore[override]
        if not self._chunk:
            self._chunk = memoryview(self._next_chunk())
        size = min(len(target), len(self._chunk))
        target[:size] = self._chunk[:size]
        self._chunk = self._chunk[size:]
        return size

    def close(self) -> None:
        self._source.close()
        super().close()


class _ZstdStream(_Chunks):
    """Streaming zstd decompression of one frame or several in a row (RFC 8878: pzstd and
    `cat a.zst b.zst` write several; skippable frames give nothing), that fails on a truncated
    frame instead of ending early, and on anything after a frame that is not one."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        self._decompressor: Any = None  # a frame's ZstdDecompressionObj, inside a frame
        self._next = b""  # read past the end of the last frame: the start of the next one

    def _next_chunk(self) -> bytes:
        while True:
            chunk, self._next = self._next or self._source.read(1 << 20), b""
            if not chunk:
                if self._decompressor is not None:
                    raise EOFError("zstd stream ended before the end of its frame")
                return b""
            if self._decompressor is None:
                self._decompressor = zstandard.ZstdDecompressor().decompressobj()
            out = self._decompressor.decompress(chunk)
            if self._decompressor.eof:
                self._next, self._decompressor = self._decompressor.unused_data, None
            if out:
                return out


class _ReadAhead(_Chunks):
    """`source` read by a thread of its own, a few chunks ahead of the reader: decompression
    (and a download's hashing and writing) runs beside the reader's work (zstd and hashlib
    release the GIL). The thread's error is raised by the read that reaches it."""

    _CHUNK = 1 << 20
    _END = object()

    def __init__(self, source: BinaryIO, depth: int = 8) -> None:
        super().__init__(source)
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="relocpy-read", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        if isinstance(self._source, _Chunks):  # a decompressor's own chunks: no copy
            next_chunk = self._source._next_chunk
        else:
            next_chunk = functools.partial(self._source.read, self._CHUNK)
        try:
            while chunk := next_chunk():
                if not self._put(chunk):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the reader
            self._put(exc)

    def _next_chunk(self) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if item is self._END or isinstance(item, BaseException):
            self._done = True
            if isinstance(item, BaseException):
                raise item
            return b""
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        super().close()


class _Prefixed(_Chunks):
    """`head` (bytes already read from `raw`) followed by the rest of `raw`."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        super().__init__(raw)
        self._head: bytes | None = head

    def _next_chunk(self) -> bytes:
        if self._head:
            head, self._head = self._head, None
            return head
        return self._source.read(1 << 20)


# What reading a corrupt or truncated archive raises, whichever the compression: callers that
# read an archive catch these (and say which archive), not a list of their own.
UNREADABLE: tuple[type[Exception], ...] = (
    OSError, EOFError, ValueError, tarfile.TarError, zstandard.ZstdError, lzma.LZMAError
)  # fmt: skip


def decompressing(raw: BinaryIO, buffered: bool = True) -> BinaryIO:
    """A decompressing stream over `raw` (which need not seek: a download, a pipe), for a tar
    file compressed with gzip, zstd, xz or bzip2, or none (told apart by their magic bytes,
    not by a name). Unbuffered, zstd's stream hands over its chunks as they come (for
    `_ReadAhead`)."""
    head = b""
    while len(head) < 6 and (chunk := raw.read(6 - len(head))):
        head += chunk
    source = _Prefixed(head, raw)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=source)  # type: ignore[return-value]
    if head == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(source)  # type: ignore[return-value]
    if head[:3] == b"BZh":
        return bz2.BZ2File(source)  # type: ignore[return-value]
    if head[:4] == b"\x28\xb5\x2f\xfd":
        zstd = _ZstdStream(source)
        return io.BufferedReader(zstd, 1 << 20) if buffered else zstd  # type: ignore[return-value]
    return io.BufferedReader(source, 1 << 20)  # type: ignore[return-value]


def open_archive_stream(path: Path) -> BinaryIO:
    """A decompressing stream of the archive at `path` (see `decompressing`)."""
    return decompressing(path.open("rb"))


_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINK_HOPS = 40  # as the kernel's MAXSYMLINKS
# Errors of the destination itself (a full disk, no permission): not the archive's fault.
_DESTINATION_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.EIO,
}


def member_name(name: str) -> str:
    """A member's name in canonical form (`python/./bin//x/` -> `python/bin/x`); refuses a name
    that is absolute, empty, climbs with `..`, or holds a NUL byte."""
    if "\0" in name:
        raise BadArchiveError(f"unsafe member {name!r}: its name holds a NUL byte")
    if name.startswith("/"):
        raise BadArchiveError(f"unsafe member {name!r}: an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BadArchiveError(f"unsafe member {name!r}: it climbs out with '..'")
    if not parts:
        raise BadArchiveError(f"unsafe member {name!r}: it names the destination itself")
    return "/".join(parts)


def resolve_link(link: str, kinds: dict[str, str], targets: dict[str, str]) -> str | None:
    """Where the symlink `link` leads inside the destination, following the archive's other
    links as the kernel would, or None if it leaves the destination (absolute, too many `..`,
    or a loop)."""
    hops = 0

    def walk(base: list[str], target: str) -> list[str] | None:
        nonlocal hops
        if target.startswith("/"):
            return None
        stack = list(base)
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    return None  # above the destination
                stack.pop()
                continue
            stack.append(part)
            here = "/".join(stack)
            if kinds.get(here) == "link":
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    return None
                resolved = walk(stack[:-1], targets[here])
                if resolved is None:
                    return None
                stack = resolved
        return stack

    parts = link.split("/")
    resolved = walk(parts[:-1], targets[link])
    return None if resolved is None else "/".join(resolved)


# Writing the files: on a settled disk a file costs this VM's ext4 about 70 us, but while
# earlier writes are written back, 300-600 us, nearly all of it waiting. Writer threads overlap
# the waits; files go to them in batches, since a thread hand-over per file costs more than the
# file on tmpfs or a settled disk. The stripped 3.13 tree, 2,724 files, extracted in-process,
# median of 5: written by the reading thread, 0.35 s on tmpfs and 1.29 s on the busy disk; in
# batches by 4 threads, 0.33 s and 0.92 s; one thread per file, 0.45 s on tmpfs.
_WRITERS = 4
_BATCH_FILES = 64
_BATCH_BYTES = 4 << 20
_POOLED_SIZE = 4 << 20  # larger files are streamed to disk by the reading thread
_IN_FLIGHT_BYTES = 64 << 20  # memory held by writes not done yet
_TAR_BUFFER = 64 << 10  # tarfile's reads (its default, 10 KiB, costs a Python call per 10 KiB)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """All of `data` to `fd` (a write to a pipe or a full disk can take part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_IOV_MAX = 1024  # Linux's limit on the buffers of one writev


def _write_pieces(fd: int, pieces: list[bytes | memoryview]) -> None:
    """All of `pieces`, in order, to `fd`: gathered by writev, without joining them first."""
    for start in range(0, len(pieces), _IOV_MAX):
        batch = pieces[start : start + _IOV_MAX]
        written = os.writev(fd, batch)
        for piece in batch:  # a write to a pipe can take part of it: finish piece by piece
            size = len(piece)
            if written >= size:
                written -= size
                continue
            _write_all(fd, memoryview(piece)[written:])
            written = 0


def _write_new_file(dir_fd: int, base: str, mode: int, data: bytes, mtime: int) -> None:
    fd = os.open(base, _O_NEW_FILE, mode, dir_fd=dir_fd)
    try:
        _write_all(fd, data)
        os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)


def _write_batch(batch: list[tuple[int, str, int, bytes, int]]) -> None:
    for job in batch:
        _write_new_file(*job)


class _Writes:
    """File writes handed to a pool of threads in batches (one hand-over per batch: a thread
    switch per file costs more than a file on a settled disk), with a bound on the bytes
    they hold."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None  # started by the first batch
        self._pending: deque[tuple[Future[None], int]] = deque()
        self._bytes = 0
        self._batch: list[tuple[int, str, int, bytes, int]] = []
        self._batch_bytes = 0

    def submit(self, dir_fd: int, base: str, mode: int, data: bytes, mtime: int) -> None:
        self._batch.append((dir_fd, base, mode, data, mtime))
        self._batch_bytes += len(data)
        if len(self._batch) >= _BATCH_FILES or self._batch_bytes >= _BATCH_BYTES:
            self._hand_over()

    def _hand_over(self) -> None:
        if not self._batch:
            return
        size = self._batch_bytes
        while self._pending and self._bytes + size > _IN_FLIGHT_BYTES:
            self._wait_oldest()
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(_WRITERS, thread_name_prefix="relocpy-extract")
        self._pending.append((self._pool.submit(_write_batch, self._batch), size))
        self._bytes += size
        self._batch, self._batch_bytes = [], 0

    def _wait_oldest(self) -> None:
        future, size = self._pending.popleft()
        self._bytes -= size
        future.result()  # a write's error (a full disk) is raised here

    def drain(self) -> None:
        """Wait for every write handed over so far."""
        self._hand_over()
        while self._pending:
            self._wait_oldest()

    def close(self) -> None:
        """Stop: writes not started are dropped, running ones finish (before any clean-up)."""
        self._batch = []
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Extraction:
    """One archive written below one directory, no link ever followed.

    Every directory is opened component by component with O_NOFOLLOW relative to its parent,
    files are created with O_EXCL|O_NOFOLLOW, and symlinks are made only after every other
    member is written and each one's target resolves inside the destination. A member whose
    path runs through a link, or that names a path twice, is refused. `kinds` is what the
    archive made so far: path -> "dir", "file" or "link". Every check runs in the reading
    thread, before a write is handed to the pool; the pool only creates checked names in
    directories opened here.
    """

    def __init__(self, dest: Path, archive_name: str, top: str | None = None) -> None:
        self.archive = archive_name
        self.top = top
        self.root_fd = os.open(dest, _O_DIR)
        self.fds: dict[str, int] = {"": self.root_fd}
        self.kinds: dict[str, str] = {}
        self.targets: dict[str, str] = {}
        self.dir_times: list[tuple[str, int]] = []
        self.unmade: set[str] = set()  # parents of symlinks that GNU tar was not given
        self.writes = _Writes()

    def close(self) -> None:
        self.writes.close()
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def _refuse(self, name: str, why: str) -> BadArchiveError:
        return BadArchiveError(f"{self.archive}: unsafe member {name!r}: {why}")

    def _canonical(self, name: str) -> str:
        path = member_name(name)
        if self.top is not None and path.split("/")[0] != self.top:
            raise self._refuse(name, f"it lies outside {self.top}/")
        return path

    def _check_below(self, path: str, name: str) -> None:
        """Refuse `name` if the archive made `path`, one of its parents, a link or a file."""
        kind = self.kinds.get(path)
        if kind == "link":
            raise self._refuse(name, f"it would be written through the link {path!r}")
        if kind == "file":
            raise self._refuse(name, f"it would be written below the file {path!r}")

    def directory(self, path: str, name: str) -> int:
        """An fd of directory `path` (made where missing), after checking each component."""
        if path in self.fds:
            return self.fds[path]
        parent, _, base = path.rpartition("/")
        parent_fd = self.directory(parent, name)
        self._check_below(path, name)
        if self.kinds.get(path) is None or path in self.unmade:
            self.unmade.discard(path)
            os.mkdir(base, 0o755, dir_fd=parent_fd)
            self.kinds[path] = "dir"
        if len(self.fds) > 256:  # a bounded number of open directories
            self.writes.drain()  # (pending writes use them)
            for key in [k for k in self.fds if k]:
                os.close(self.fds.pop(key))
            parent_fd = self.directory(parent, name)
        fd = os.open(base, _O_DIR, dir_fd=parent_fd)
        self.fds[path] = fd
        return fd

    def _new_name(self, path: str, name: str) -> tuple[int, str]:
        if path in self.kinds:
            raise self._refuse(name, f"{path!r} is in the archive twice")
        parent, _, base = path.rpartition("/")
        return self.directory(parent, name), base

    def claim(self, header: Header) -> bool:
        """Check a member GNU tar is to write (`extract_stream`'s plain part) and record it, as
        `add` does, without writing; False for a symlink, which is made by `finish` instead."""
        path = self._canonical(header.name)
        parent = path.rpartition("/")[0]
        # A directory is "dir" only once its own parents passed: then so do this member's.
        known = self.kinds.get(parent) == "dir" and parent not in self.unmade
        parents = [] if known or not parent else parent.split("/")
        for end in range(1, len(parents) + 1):
            parent = "/".join(parents[:end])
            self._check_below(parent, header.name)
            new = parent not in self.kinds
            if new:
                self.kinds[parent] = "dir"
            if header.kind != "sym":
                self.unmade.discard(parent)  # GNU tar makes a member's missing parents
            elif new:
                self.unmade.add(parent)  # `directory` makes it, for the link
        if header.kind == "dir":
            if self.kinds.get(path, "dir") != "dir":
                raise self._refuse(header.name, f"{path!r} is in the archive twice")
            self.kinds[path] = "dir"
            self.unmade.discard(path)
            self.dir_times.append((path, header.mtime))
            return True
        if path in self.kinds:
            raise self._refuse(header.name, f"{path!r} is in the archive twice")
        if header.kind == "sym":
            if header.linkname.startswith("/"):
                raise self._refuse(header.name, f"its link {header.linkname!r} is absolute")
            self.kinds[path] = "link"
            self.targets[path] = header.linkname
            return False
        if header.kind == "hard" and self.kinds.get(member_name(header.linkname)) != "file":
            raise self._refuse(
                header.name, f"a hard link to {header.linkname!r}, not a file written before"
            )
        self.kinds[path] = "file"
        return True

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        path = self._canonical(member.name)
        if member.isdir():
            if self.kinds.get(path, "dir") != "dir":
                raise self._refuse(member.name, f"{path!r} is in the archive twice")
            self.directory(path, member.name)
            self.dir_times.append((path, int(member.mtime)))
        elif member.issym():
            if member.linkname.startswith("/"):
                raise self._refuse(member.name, f"its link {member.linkname!r} is absolute")
            self._new_name(path, member.name)  # checks the parents now, makes the link last
            self.kinds[path] = "link"
            self.targets[path] = member.linkname
        elif member.islnk():
            source = member_name(member.linkname)
            if self.kinds.get(source) != "file":
                raise self._refuse(
                    member.name, f"a hard link to {member.linkname!r}, not a file written before"
                )
            self.writes.drain()  # the file it links to is written
            source_parent, _, source_base = source.rpartition("/")
            source_fd = self.directory(source_parent, member.name)
            parent_fd, base = self._new_name(path, member.name)
            os.link(
                source_base, base, src_dir_fd=source_fd, dst_dir_fd=parent_fd,
                follow_symlinks=False,
            )  # fmt: skip
            self.kinds[path] = "file"
        elif member.isreg():
            parent_fd, base = self._new_name(path, member.name)
            mode = 0o755 if member.mode & 0o111 else 0o644
            mtime = int(member.mtime)
            self.kinds[path] = "file"
            source = tar.extractfile(member)
            if member.size <= _POOLED_SIZE:
                data = source.read() if source is not None else b""
                if len(data) != member.size:
                    raise EOFError(f"{member.name}: the archive ends inside this member")
                self.writes.submit(parent_fd, base, mode, data, mtime)
                return
            fd = os.open(base, _O_NEW_FILE, mode, dir_fd=parent_fd)
            with os.fdopen(fd, "wb") as out:
                if source is not None:
                    shutil.copyfileobj(source, out, 1 << 20)
                out.flush()  # a later flush would set the mtime again
                os.utime(out.fileno(), (mtime, mtime))
        else:
            raise self._refuse(member.name, "a device, fifo or other special file")

    def finish(self) -> None:
        """Wait for the writes; check every link's target against the whole archive, then
        make the links."""
        self.writes.drain()
        for link in sorted(self.targets):
            if resolve_link(link, self.kinds, self.targets) is None:
                raise self._refuse(
                    link, f"its link {self.targets[link]!r} leads outside the destination"
                )
        for link in sorted(self.targets):
            parent, _, base = link.rpartition("/")
            os.symlink(self.targets[link], base, dir_fd=self.directory(parent, link))
        for path, mtime in reversed(self.dir_times):
            parent, _, base = path.rpartition("/")
            os.utime(base, (mtime, mtime), dir_fd=self.directory(parent, path))


def extract_archive(path: Path, dest: Path, top: str | None = None) -> None:
    """Extract the archive at `path` into the new or empty directory `dest` (see
    `extract_stream`)."""
    with path.open("rb") as raw:
        extract_stream(raw, dest, path.name, top)


# GNU tar writes the files where it can: in C, in a process of its own, it creates the 3,000
# files of an interpreter tree several times faster than the Python writers (tmpfs, in-process:
# 0.07 s against about 0.3 s). Every member it gets has passed the same checks first (`TarScan`,
# `_Extraction.claim`); symlinks never reach it.
EXTRACTOR_ENV = "RELOCPY_EXTRACTOR"  # "python": never use GNU tar


def gnu_tar() -> str | None:
    """GNU tar's path if the `tar` on PATH is GNU tar, and RELOCPY_EXTRACTOR does not say
    "python"."""
    return None if os.environ.get(EXTRACTOR_ENV) == "python" else _find_gnu_tar()


@functools.cache
def _find_gnu_tar() -> str | None:
    found = shutil.which("tar")
    if found is None or not os.path.isdir("/proc/self/fd"):  # tar is sent to an open fd there
        return None
    try:
        done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return found if done.stdout.startswith("tar (GNU tar)") else None


# tar's messages for errors of the destination (LC_ALL=C), as the OSError they were
_TAR_DESTINATION_ERRORS = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Permission denied": errno.EACCES,
    "Operation not permitted": errno.EPERM,
    "Read-only file system": errno.EROFS,
    "Input/output error": errno.EIO,
    "Wrote only": errno.ENOSPC,  # a short write to a file: the disk filled up
}


# tar reads its input in records of 20 blocks (10 KiB) unless told: 7,000 reads of a pipe for
# an interpreter tree. 256 blocks (128 KiB), with short reads of the pipe put together (-B),
# take 550 reads and 0.02-0.03 s less of tar's time on tmpfs.
_TAR_RECORDS = ("--blocking-factor=256", "--read-full-records")


class _TarProcess:
    """GNU tar extracting what is written to it into the directory `root_fd` (whatever that
    path holds by now: tar changes into the open directory, not a name)."""

    def __init__(self, tar: str, root_fd: int) -> None:
        import tempfile  # (with random: 2 ms of every install's start)

        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (finish or kill closes it)
        where = f"/proc/self/fd/{root_fd}"
        self._proc = subprocess.Popen(
            [*dies_with_us(), tar, "-x", "-f", "-", *_TAR_RECORDS, "--no-same-owner",
             "--no-same-permissions", "--keep-old-files", "-C", where],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._errors,
            pass_fds=(root_fd,), umask=0o022, env={"LC_ALL": "C", "PATH": os.defpath},
        )  # fmt: skip
        assert self._proc.stdin is not None
        self._fd = self._proc.stdin.fileno()
        with contextlib.suppress(OSError):  # fewer, larger hand-overs (Linux only)
            fcntl.fcntl(self._fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)

    def write(self, pieces: list[bytes | memoryview]) -> None:
        try:
            _write_pieces(self._fd, pieces)
        except BrokenPipeError:
            self.finish()  # raises tar's error
            raise

    def finish(self) -> None:
        """End the archive and wait for tar; its failure raised as the OSError or
        BadArchiveError it stands for."""
        with contextlib.suppress(BrokenPipeError):  # (tar may have stopped already)
            _write_all(self._fd, END_OF_ARCHIVE)
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()  # type: ignore[union-attr]
        status = self._proc.wait()
        self._errors.seek(0)
        message = self._errors.read().decode(errors="replace").strip()
        self._errors.close()
        if status == 0:
            return
        for text, number in _TAR_DESTINATION_ERRORS.items():
            if text in message:
                raise OSError(number, f"{text} (GNU tar: {message.splitlines()[0]})")
        raise BadArchiveError(f"GNU tar failed (exit status {status}): {message[:2000]}")

    def kill(self) -> None:
        self._proc.kill()
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # type: ignore[union-attr]
        self._proc.wait()
        self._errors.close()


def _through_gnu_tar(reader: _ReadAhead, job: _Extraction, tar: str) -> bytes | None:
    """Scan the stream `reader` decompresses and hand each member that passes to GNU tar,
    until the archive ends (None) or a header is not plain tar: then the bytes from that header
    on, which `reader`'s remaining chunks follow."""
    scan = TarScan()
    process: _TarProcess | None = None
    rest: bytes | None = None
    empty = True
    try:
        while not scan.ended and (chunk := reader._next_chunk()):
            empty = False
            out: list[bytes | memoryview] = []
            try:
                for kind, value in scan.feed(chunk):
                    if kind == "data":
                        out.append(value)  # type: ignore[arg-type]
                    elif kind == "member":
                        header, raw = value  # type: ignore[misc]
                        if job.claim(header):
                            out.append(raw)
            except NotPlain as exc:
                rest = exc.rest
            if out:
                process = process or _TarProcess(tar, job.root_fd)
                process.write(out)  # one writev per chunk: no copy, no write per member
            if rest is not None:
                break
        if empty:
            raise EOFError("the archive is empty")  # (tarfile's words: "empty file")
        if rest is None and not scan.ended and not scan.at_boundary:
            raise EOFError("the archive ends inside a member")
        if process is not None:
            done, process = process, None
            done.finish()
    finally:
        if process is not None:
            process.kill()
    return rest


def extract_stream(
    raw: BinaryIO, dest: Path, name: str, top: str | None = None, tar: str | None = None
) -> None:
    """Stream-extract the archive read from `raw` (named `name` in errors) into the new or
    empty directory `dest`, refusing unsafe members.

    Nothing is ever written outside `dest`: no link is followed (see `_Extraction`), and no
    link that leads outside is made. With `top`, every member must lie under that directory.
    On any failure, what was extracted is removed again, and `dest` too if this made it.
    A corrupt or hostile archive raises BadArchiveError; a destination that cannot be written
    (a full disk) raises the OSError; an error of `raw` that is a RelocpyError (a download
    that failed) is raised as it is.

    The files of plain tar (see `relocpy.core.tarscan`) are written by GNU tar (`tar`, by
    default `gnu_tar()`) once they pass the checks; from the first member that is not plain
    tar on, tarfile reads and this process writes. Either way the checks are the same.
    """
    made = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    if not made and any(dest.iterdir()):
        raise RelocpyError(f"cannot extract {name} into {dest}: it is not empty")
    tar = tar or gnu_tar()
    job = _Extraction(dest, name, top)
    try:
        with _ReadAhead(decompressing(raw, buffered=False)) as reader:
            rest = _through_gnu_tar(reader, job, tar) if tar else b""
            if rest is not None:
                stream = io.BufferedReader(_Prefixed(rest, reader), 1 << 20)
                with tarfile.open(fileobj=stream, mode="r|", bufsize=_TAR_BUFFER) as tarred:
                    for member in tarred:
                        job.add(member, tarred)
            while reader._next_chunk():  # the rest must decompress too (integrity, truncation)
                pass
        job.finish()
    except BaseException as exc:
        job.close()
        _remove_extracted(dest, made)
        if isinstance(exc, OSError) and exc.errno is not None:
            if exc.errno in _DESTINATION_ERRNOS:
                raise
            raise BadArchiveError(f"{name} cannot be extracted safely: {exc}") from exc
        if isinstance(exc, UNREADABLE):  # ValueError: an mtime or size no file can have
            raise BadArchiveError(f"{name} is corrupt or truncated: {exc}") from exc
        raise
    job.close()


def _remove_extracted(dest: Path, made: bool) -> None:
    """Remove what an extraction wrote (links are removed, never followed)."""
    if made:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in list(dest.iterdir()) if dest.is_dir() else []:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def read_member(path: Path, name: str) -> bytes | None:
    with open_archive_stream(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if member.name == name and member.isreg():
                handle = tar.extractfile(member)
                return handle.read() if handle else None
    return None
