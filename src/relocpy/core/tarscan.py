"""Reading tar headers without tarfile: the scan that stands in front of GNU tar.

`TarScan` follows a tar stream fed to it in chunks and splits it into members, their data and
the end. It accepts a strict subset of tar only, "plain" tar: POSIX ustar headers with a valid
checksum and canonical octal numbers; files (mode 644 or 755), directories (755), symbolic and
hard links; and per-member pax headers that hold only the keys below. The first header outside
that subset stops the scan with `NotPlain`, at a member boundary, carrying the bytes from that
header on, so that the rest of the stream can go to tarfile, which reads every tar.

Why so strict: the scan decides what is safe, and GNU tar writes what it reads. Any spelling
the two could read differently (a global pax header, a GNU long name, base-256 numbers, an
unknown type that GNU tar writes as a file, a bad checksum GNU tar skips over) is never handed
to GNU tar at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)

_ZERO_BLOCK = bytes(BLOCK)
_USTAR = b"ustar\x0000"
_KINDS = {b"0": "file", b"\0": "file", b"5": "dir", b"2": "sym", b"1": "hard"}
_PLAIN_MODES = {"file": (0o644, 0o755), "dir": (0o755,)}
# pax keys that mean the same to tarfile and GNU tar, or that GNU tar ignores (times, owners)
PLAIN_PAX_KEYS = frozenset(
    {"path", "linkpath", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname"}
)
_MAX_PAX = 1 << 20
_LOW = bytes(range(128))
_OCTAL = re.compile(rb"[0-7]+[ \0]*")
_DECIMAL = re.compile(r"[0-9]+")
_PAX_TIME = re.compile(r"[0-9]+(\.[0-9]+)?")


class NotPlain(Exception):
    """A header outside plain tar; `rest` is the stream from that header on (within the chunk
    that was fed: the caller adds what follows)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
        self.rest = b""


class Header(NamedTuple):
    kind: str  # "file", "dir", "sym" or "hard"
    name: str  # as stored (pax path, or prefix/name); not canonical yet
    linkname: str
    size: int
    mtime: int


def _string(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _octal(field: bytes, what: str) -> int:
    if not _OCTAL.fullmatch(field):
        raise NotPlain(f"{what} is not a plain octal number")
    return int(field.rstrip(b" \0"), 8)


def _checksum_ok(block: bytes) -> bool:
    """As GNU tar and tarfile: the sum of the header's bytes, its checksum field read as
    spaces, taken unsigned or (as some old tars wrote it) signed."""
    field = block[148:156]
    stored = _octal(field, "the checksum")
    unsigned = sum(block) - sum(field) + 8 * 32
    if stored == unsigned:
        return True
    rest = block[:148] + block[156:]
    return stored == unsigned - 256 * len(rest.translate(None, _LOW))


def parse_pax(payload: bytes) -> dict[str, str]:
    """The records `LEN KEY=VALUE\\n` of a pax header; NotPlain if malformed or if a key is not
    one of PLAIN_PAX_KEYS."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(payload):
        space = payload.find(b" ", pos)
        if space < 0 or not payload[pos:space].isdigit():
            raise NotPlain("a malformed pax record")
        end = pos + int(payload[pos:space])
        if end > len(payload) or end <= space + 1 or payload[end - 1 : end] != b"\n":
            raise NotPlain("a malformed pax record")
        key, equals, value = payload[space + 1 : end - 1].partition(b"=")
        name = key.decode("utf-8", "surrogateescape")
        if not equals or name not in PLAIN_PAX_KEYS or name in records:
            raise NotPlain(f"the pax key {name!r}")
        records[name] = value.decode("utf-8", "surrogateescape")
        pos = end
    return records


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class TarScan:
    """The members of a tar stream fed in chunks (see the module's docstring)."""

    def __init__(self) -> None:
        self._buf = bytearray()  # a header block, or a pax payload, being gathered
        self._want = BLOCK
        self._skip = 0  # data and padding of the current member still to come
        self._pending = bytearray()  # a pax header (block and payload) waiting for its member
        self._pax_size: int | None = None  # set while a pax payload is being gathered
        self._pax: dict[str, str] = {}
        self.ended = False

    @property
    def at_boundary(self) -> bool:
        """Whether the bytes fed so far end between two members (tarfile, too, takes the end
        of the stream there as the end of the archive)."""
        return not (self._skip or self._buf or self._pending)

    def feed(self, chunk: bytes) -> Iterator[tuple[str, object]]:
        """Events of `chunk`: ("member", (Header, raw header bytes)), ("data", memoryview of a
        member's data and padding) and ("end", None) at the first zero block, after which the
        rest is not read. Raises NotPlain."""
        view = memoryview(chunk)
        pos, size = 0, len(view)
        while pos < size and not self.ended:
            if self._skip:
                take = min(self._skip, size - pos)
                yield "data", view[pos : pos + take]
                pos += take
                self._skip -= take
                continue
            if not self._buf and pos + self._want <= size:  # all in this chunk: one copy
                block = bytes(view[pos : pos + self._want])
                pos += self._want
            else:
                take = min(self._want - len(self._buf), size - pos)
                self._buf += view[pos : pos + take]
                pos += take
                if len(self._buf) < self._want:
                    return
                block = bytes(self._buf)
                self._buf.clear()
            try:
                event = self._block(block)
            except NotPlain as exc:
                exc.rest = bytes(self._pending) + block + bytes(view[pos:])
                raise
            if event is not None:
                yield event

    def _block(self, block: bytes) -> tuple[str, object] | None:
        if self._pax_size is not None:  # the payload of a pax header
            self._pax = parse_pax(block[: self._pax_size])
            self._pending += block
            self._pax_size, self._want = None, BLOCK
            return None
        if block == _ZERO_BLOCK:
            if self._pending:
                raise NotPlain("a pax header without its member")
            self.ended = True
            return "end", None
        if not _checksum_ok(block):
            raise NotPlain("a header whose checksum does not match")
        if block[257:265] != _USTAR:
            raise NotPlain("a header that is not POSIX ustar")
        typeflag = block[156:157]
        if typeflag == b"x":
            if self._pending:
                raise NotPlain("two pax headers in a row")
            pax_size = _octal(block[124:136], "a size")
            if pax_size > _MAX_PAX:
                raise NotPlain("a pax header over 1 MiB")
            self._pending += block
            if pax_size:
                self._pax_size, self._want = pax_size, _padded(pax_size)
            return None
        kind = _KINDS.get(typeflag)
        if kind is None:
            raise NotPlain(f"the member type {typeflag!r}")
        raw = bytes(self._pending) + block
        return "member", (self._member(block, kind), raw)

    def _member(self, block: bytes, kind: str) -> Header:
        pax = self._pax
        name = _string(block[0:100])
        if prefix := _string(block[345:500]):
            name = f"{prefix}/{name}"
        name = pax.get("path", name)
        size = _octal(block[124:136], "a size")
        if "size" in pax:
            if not _DECIMAL.fullmatch(pax["size"]):
                raise NotPlain("a pax size that is not a plain number")
            size = int(pax["size"])
        mtime = _octal(block[136:148], "an mtime")
        if "mtime" in pax:
            if not _PAX_TIME.fullmatch(pax["mtime"]):
                raise NotPlain("a pax mtime that is not a plain number")
            mtime = int(pax["mtime"].split(".")[0])
        mode = _octal(block[100:108], "a mode")
        if kind in _PLAIN_MODES and mode not in _PLAIN_MODES[kind]:
            raise NotPlain(f"the mode {mode:o}")
        if kind != "file" and size:
            raise NotPlain(f"a {kind} member with data")
        if kind != "dir" and name.endswith("/"):
            raise NotPlain("a name ending in '/' that is not a directory")
        linkname = pax.get("linkpath", _string(block[157:257]))
        self._pax = {}
        self._pending.clear()
        self._skip = _padded(size) if kind == "file" else 0
        return Header(kind, name, linkname, size, mtime)
