from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fake_tree import make_fake_archives
from mirror_server import MirrorServer
from relocpy.errors import ChecksumMismatchError
from relocpy.mirror import Mirror, MirrorError, parse_archive_name, scan_directory, write_index


def test_parse_archive_name() -> None:
    fields = parse_archive_name(
        "cpython-3.13.5+20260101-x86_64-unknown-linux-gnu-install_only.tar.zst"
    )
    assert fields is not None
    assert (fields["version"], fields["build"], fields["libc"], fields["flavour"]) == (
        "3.13.5",
        "20260101",
        "gnu",
        "install_only",
    )
    fields = parse_archive_name(
        "cpython-3.13.5+20260101-x86_64-unknown-linux-gnu-freethreaded+pgo-full.tar.zst"
    )
    assert fields is not None and fields["variant"] == "freethreaded"
    assert parse_archive_name("index.json") is None
    assert parse_archive_name("cpython-3.13.5+x-x86_64-unknown-linux-gnu-install_only.log") is None


def test_index_and_uv_downloads(tmp_path: Path) -> None:
    make_fake_archives(tmp_path, "3.99.0", "20260101")
    make_fake_archives(tmp_path, "3.99.0", "20260202")
    (tmp_path / "notes.txt").write_text("ignored")
    entries = write_index(tmp_path, base_url="http://mirror.test/py")
    assert len(entries) == 4
    index = json.loads((tmp_path / "index.json").read_text())
    first = index["archives"][0]
    assert set(first) >= {
        "name",
        "version",
        "build",
        "variant",
        "target_triple",
        "libc",
        "glibc_floor",
        "sha256",
        "size",
    }
    uv = json.loads((tmp_path / "uv-downloads.json").read_text())
    assert list(uv) == ["cpython-3.99.0-linux-x86_64-gnu"]
    entry = uv["cpython-3.99.0-linux-x86_64-gnu"]
    assert entry["build"] == "20260202"  # newest build wins the version's key
    assert entry["url"].endswith("%2B20260202-x86_64-unknown-linux-gnu-install_only.tar.gz")
    assert entry["url"].startswith("http://mirror.test/py/cpython-3.99.0%2B20260202")
    assert (entry["os"], entry["libc"], entry["arch"]["family"]) == ("linux", "gnu", "x86_64")
    assert (entry["major"], entry["minor"], entry["patch"]) == (3, 99, 0)
    assert entry["variant"] is None and entry["prerelease"] == ""


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MirrorError, match="no interpreter archives"):
        write_index(tmp_path)


def test_download_resumes_after_a_cut(tmp_path: Path) -> None:
    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    make_fake_archives(mirror_dir, payload=2_000_000)
    write_index(mirror_dir)
    entry = next(e for e in scan_directory(mirror_dir) if e.compression == "gz")
    target = tmp_path / "dl" / "a.tar.gz"
    target.parent.mkdir()
    with MirrorServer(mirror_dir) as server:
        server.cut_after = 700_000
        with pytest.raises(MirrorError, match="resume"):
            Mirror(server.url).download(entry, target)
        part = target.with_name("a.tar.gz.part")
        assert 0 < part.stat().st_size < entry.size and not target.exists()
        server.cut_after = None
        Mirror(server.url).download(entry, target)
    assert target.read_bytes() == (mirror_dir / entry.name).read_bytes()


def test_download_refuses_a_wrong_checksum(tmp_path: Path) -> None:
    make_fake_archives(tmp_path)
    entry = scan_directory(tmp_path)[0]
    bad = type(entry)(**{**entry.__dict__, "sha256": "0" * 64})
    target = tmp_path / "x.tar"
    with pytest.raises(ChecksumMismatchError, match="0" * 64):
        Mirror(str(tmp_path)).download(bad, target)
    assert not target.exists() and not target.with_name("x.tar.part").exists()


def test_unreachable_mirror(tmp_path: Path) -> None:
    with pytest.raises(MirrorError, match=re.escape("cannot reach mirror http://127.0.0.1:9")):
        Mirror("http://127.0.0.1:9", timeout=2).entries()
