from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from relocpy.archive import BadArchiveError, extract_archive, read_member, write_archives


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "bin" / "link").symlink_to("tool")
    (root / "lib" / "test").mkdir(parents=True)
    (root / "lib" / "test" / "x.py").write_text("x")
    (root / "lib" / "a.py").write_text("a")
    return root


def test_archives_are_deterministic_and_filtered(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    keep = lambda rel: not rel.startswith("lib/test")  # noqa: E731
    first = (tmp_path / "1.tar.gz", tmp_path / "1.tar.zst")
    second = (tmp_path / "2.tar.gz", tmp_path / "2.tar.zst")
    write_archives(root, "python", *first, keep)
    write_archives(root, "python", *second, keep)
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    for archive in first:
        out = tmp_path / ("x-" + archive.name)
        extract_archive(archive, out)
        assert (out / "python" / "bin" / "link").readlink() == Path("tool")
        assert (out / "python" / "bin" / "tool").stat().st_mode & 0o111
        assert not (out / "python" / "lib" / "test").exists()
        assert read_member(archive, "python/lib/a.py") == b"a"
    assert not list(tmp_path.glob("*.part"))


def _hostile(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / "hostile.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda: tarfile.TarInfo("python/../../escape"),
        lambda: tarfile.TarInfo("/abs/path"),
        lambda: _link("python/bad", "../../../etc/passwd", tarfile.SYMTYPE),
        lambda: _link("python/hard", "/etc/passwd", tarfile.LNKTYPE),
        lambda: _device("python/dev"),
    ],
    ids=["dotdot", "absolute", "symlink-out", "hardlink-out", "device"],
)
def test_unsafe_members_are_refused(tmp_path: Path, make) -> None:
    member = make()
    if member.isreg():
        member.size = 1
    archive = _hostile(tmp_path, member, b"x")
    with pytest.raises(BadArchiveError, match="unsafe member"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escape").exists()


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def test_truncated_archive_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    (root / "big").write_bytes(bytes(range(256)) * 4096)
    gz, zst = tmp_path / "a.tar.gz", tmp_path / "a.tar.zst"
    write_archives(root, "python", gz, zst, lambda rel: True)
    for archive in (gz, zst):
        data = archive.read_bytes()
        archive.write_bytes(data[: len(data) // 2])
        with pytest.raises(BadArchiveError, match="corrupt or truncated"):
            extract_archive(archive, tmp_path / f"out-{archive.suffix}")


def test_gzip_members_are_standard_and_deterministic(tmp_path: Path) -> None:
    import gzip as gzip_module
    import subprocess

    from relocpy.archive import GZIP_LEVEL_SMALLEST, gzip_bytes

    data = b"".join(f"line {i} of a tar stream\n".encode() for i in range(20000))
    smallest = gzip_bytes(data, GZIP_LEVEL_SMALLEST)
    assert gzip_bytes(data, GZIP_LEVEL_SMALLEST) == smallest
    assert len(smallest) <= len(gzip_bytes(data)) < len(data) // 10
    assert gzip_module.decompress(smallest) == data
    (tmp_path / "x.gz").write_bytes(smallest)
    assert subprocess.run(["gzip", "-t", str(tmp_path / "x.gz")]).returncode == 0
    assert smallest[4:8] == b"\0\0\0\0"  # no time in the header
