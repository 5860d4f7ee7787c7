from __future__ import annotations

import io
import tarfile

import pytest

from relocpy.core.tarscan import BLOCK, Header, NotPlain, TarScan, parse_pax


def _tar(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1_600_000_000
    return info, data


def _scan(data: bytes, chunk: int) -> list[tuple[str, object]]:
    """Events of `data` fed `chunk` bytes at a time, data joined per member."""
    scan = TarScan()
    events: list[tuple[str, object]] = []
    for start in range(0, len(data), chunk):
        for kind, value in scan.feed(data[start : start + chunk]):
            if kind == "data" and events and events[-1][0] == "data":
                events[-1] = ("data", events[-1][1] + bytes(value))  # type: ignore[operator]
            elif kind == "data":
                events.append(("data", bytes(value)))  # type: ignore[arg-type]
            else:
                events.append((kind, value))
    assert scan.ended
    return events


def test_members_data_and_end_whatever_the_chunk_size() -> None:
    link = tarfile.TarInfo("python/bin/python3")
    link.type, link.linkname = tarfile.SYMTYPE, "python3.13"
    folder = tarfile.TarInfo("python/bin")
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    long_name = "python/lib/" + "x" * 120  # a pax `path`
    data = _tar(
        (folder, b""), _file("python/bin/python3.13", b"#!" * 700, 0o755), (link, b""),
        _file(long_name, b"y"),
    )  # fmt: skip
    expected = None
    for chunk in (1, 7, BLOCK, 1000, len(data)):
        events = _scan(data, chunk)
        kinds = [(k, v[0] if k == "member" else v) for k, v in events]  # type: ignore[index]
        if expected is None:
            expected = kinds
        assert kinds == expected
    assert expected is not None
    headers = [value for kind, value in expected if kind == "member"]
    assert [(h.kind, h.name, h.linkname) for h in headers] == [  # type: ignore[attr-defined]
        ("dir", "python/bin/", ""),  # as stored (tarfile adds the slash)
        ("file", "python/bin/python3.13", ""),
        ("sym", "python/bin/python3", "python3.13"),
        ("file", long_name, ""),
    ]
    assert ("data", b"#!" * 700 + bytes(-1400 % BLOCK)) in expected
    assert expected[-1] == ("end", None)


def test_raw_header_bytes_include_the_pax_header() -> None:
    data = _tar(_file("python/" + "z" * 150))
    events = list(TarScan().feed(data))
    header, raw = events[0][1]  # type: ignore[misc]
    assert isinstance(header, Header) and len(raw) == 3 * BLOCK  # pax header, payload, ustar
    assert raw == data[: 3 * BLOCK]


def _global_header() -> bytes:
    out = io.BytesIO()
    with tarfile.open(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "g"}
    ) as tar:
        info, payload = _file("python/a")
        tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def _with_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _bad_checksum() -> bytes:
    data = bytearray(_tar(_file("python/a")))
    data[0] ^= 1
    return bytes(data)


def _unknown_type() -> bytes:
    data = bytearray(_tar(_file("python/a")))
    data[156:157] = b"A"  # GNU tar writes an unknown type as a file
    return _with_checksum(data[:BLOCK]) + bytes(data[BLOCK:])


def _base256_size() -> bytes:
    data = bytearray(_tar(_file("python/a")))
    data[124:136] = b"\x80" + (1).to_bytes(11, "big")
    return _with_checksum(data[:BLOCK]) + bytes(data[BLOCK:])


def _pax_key(key: str) -> bytes:
    info, payload = _file("python/a")
    info.pax_headers = {key: "1"}
    return _tar((info, payload))


def _sym_with_slash() -> bytes:
    info, payload = _file("python/a/")
    return _tar((info, payload), fmt=tarfile.USTAR_FORMAT)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: _tar(_file("python/a"), fmt=tarfile.GNU_FORMAT), "not POSIX ustar"),
        (_global_header, "member type b'g'"),
        (_bad_checksum, "checksum"),
        (_unknown_type, "member type b'A'"),
        (_base256_size, "not a plain octal"),
        (lambda: _tar(_file("python/a", mode=0o600)), "mode 600"),
        (lambda: _tar(_file("python/a", mode=0o4755)), "mode 4755"),
        (lambda: _pax_key("GNU.sparse.size"), "GNU.sparse.size"),
        (lambda: _pax_key("hdrcharset"), "hdrcharset"),
        (_sym_with_slash, "ending in '/'"),
    ],
    ids=[
        "gnu-format", "global-pax", "checksum", "unknown-type", "base-256", "mode-600",
        "setuid", "sparse", "hdrcharset", "file-named-like-a-dir",
    ],
)  # fmt: skip
def test_anything_but_plain_tar_stops_the_scan(make, why: str) -> None:
    data = make()
    with pytest.raises(NotPlain, match=why) as stopped:
        list(TarScan().feed(data))
    assert stopped.value.rest == data  # the first header: everything is tarfile's


def test_the_rest_starts_at_the_first_header_that_is_not_plain() -> None:
    odd_info, odd_data = _file("python/odd", mode=0o600)
    odd_info.pax_headers = {"path": "python/" + "o" * 120}  # its pax header goes along
    data = _tar(_file("python/a"), _file("python/b"), (odd_info, odd_data))
    scan = TarScan()
    members = []
    with pytest.raises(NotPlain) as stopped:
        for kind, value in scan.feed(data):
            if kind == "member":
                members.append(value[0].name)  # type: ignore[index]
    assert members == ["python/a", "python/b"]
    assert stopped.value.rest == data[4 * BLOCK :]  # two headers and two data blocks before
    with tarfile.open(fileobj=io.BytesIO(stopped.value.rest), mode="r|") as rest:
        assert [m.name for m in rest] == ["python/" + "o" * 120]


def test_a_stream_cut_inside_a_member_is_not_at_a_boundary() -> None:
    data = _tar(_file("python/a", b"x" * 2000))
    scan = TarScan()
    list(scan.feed(data[: BLOCK + 100]))
    assert not scan.at_boundary and not scan.ended
    scan = TarScan()
    list(scan.feed(data[: 2 * BLOCK + 4 * BLOCK - BLOCK]))  # header + all 4 data blocks
    assert scan.at_boundary


@pytest.mark.parametrize(
    "payload",
    [b"5 a=b", b"x path=a\n", b"8 path=a\n", b"12 path=a\n\n", b"11 pathab\n"],
    ids=["no-newline", "no-length", "short", "long", "no-equals"],
)
def test_malformed_pax_records_are_not_plain(payload: bytes) -> None:
    with pytest.raises(NotPlain):
        parse_pax(payload)


def test_pax_records_parse() -> None:
    assert parse_pax(b"12 path=a b\n16 linkpath=c=d\n") == {"path": "a b", "linkpath": "c=d"}
