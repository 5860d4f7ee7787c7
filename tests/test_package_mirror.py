from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import SKIPPABLE_ZSTD_FRAME, zstd_frames
from fake_tree import make_fake_archives
from mirror_server import MirrorServer
from relocpy.core.errors import ChecksumMismatchError, RelocpyError
from relocpy.package.mirror import (
    Mirror,
    MirrorError,
    parse_archive_name,
    scan_directory,
    write_index,
)


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
    # what `relocpy install` takes: .tar.zst (uv unpacks it too)
    assert entry["url"].endswith("%2B20260202-x86_64-unknown-linux-gnu-install_only.tar.zst")
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


# ---- what a mirror index accepts -------------------------------------------------------------


def test_indexing_a_directory_without_archives_writes_nothing_there(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a mirror")
    with pytest.raises(MirrorError, match="no interpreter archives"):
        write_index(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_index_refuses_random_bytes_named_as_an_archive(tmp_path: Path) -> None:
    make_fake_archives(tmp_path, "3.99.0", "20260101")
    fake = tmp_path / "cpython-3.13.5+20260101-x86_64-unknown-linux-gnu-install_only.tar.gz"
    fake.write_bytes(os.urandom(1000))
    with pytest.raises(MirrorError, match=re.escape(f"{fake.name} does not open as an archive")):
        write_index(tmp_path)
    assert not (tmp_path / "index.json").exists()


def test_index_reads_an_archive_of_several_zstd_frames(tmp_path: Path) -> None:
    import zstandard

    _, zst = make_fake_archives(tmp_path, "3.99.0", "20260101")
    tar = zstandard.ZstdDecompressor().stream_reader(zst.read_bytes()).read()
    first, *rest = zstd_frames(tar, 1024, len(tar) // 2)
    zst.write_bytes(first + SKIPPABLE_ZSTD_FRAME + b"".join(rest))
    write_index(tmp_path)
    assert {e.name for e in scan_directory(tmp_path)} >= {zst.name}


@pytest.mark.parametrize("tail", [b"garbage!", b"\x28\xb5\x2f\xfd\x00"])
def test_index_refuses_bytes_after_a_zstd_frame(tmp_path: Path, tail: bytes) -> None:
    """Not a frame, or a frame cut short: an error that names the file, not a crash."""
    _, zst = make_fake_archives(tmp_path, "3.99.0", "20260101")
    zst.write_bytes(zst.read_bytes() + tail)
    with pytest.raises(MirrorError, match=re.escape(f"{zst.name} does not open as an archive")):
        write_index(tmp_path)
    assert not (tmp_path / "index.json").exists()


def test_index_refuses_an_archive_whose_name_lies(tmp_path: Path) -> None:
    gz, zst = make_fake_archives(tmp_path, "3.99.0", "20260101")
    liar = gz.with_name(gz.name.replace("3.99.0", "3.12.0"))
    gz.rename(liar)
    zst.unlink()
    with pytest.raises(
        MirrorError, match=re.escape("it holds CPython 3.99.0, its name says 3.12.0")
    ):
        write_index(tmp_path)


def test_index_refuses_metadata_that_disagrees(tmp_path: Path) -> None:
    gz, _ = make_fake_archives(tmp_path, "3.99.0", "20260101")
    meta = gz.with_name(gz.name.replace(".tar.gz", ".json"))
    meta.write_text('{"python_version": "3.12.0"}')
    with pytest.raises(
        MirrorError, match=re.escape("its metadata says CPython 3.12.0, its name 3.99.0")
    ):
        write_index(tmp_path)
    for bad, field in (("{", "not valid JSON"), ("[]", "expected an object")):
        meta.write_text(bad)
        with pytest.raises(MirrorError, match=re.escape(f"{meta.name}: ") + ".*" + field):
            write_index(tmp_path)
    meta.write_text('{"glibc_floor": 217}')
    with pytest.raises(MirrorError, match="glibc_floor: expected a string or null, got 217"):
        write_index(tmp_path)


def test_base_url_must_be_a_url(tmp_path: Path) -> None:
    make_fake_archives(tmp_path)
    for bad in ("not a url", "ftp://x/y", "http://", "relative/path"):
        with pytest.raises(MirrorError, match="is not an absolute http://, https:// or file://"):
            write_index(tmp_path, base_url=bad)
    assert not (tmp_path / "index.json").exists()


def _index_with(tmp_path: Path, change: dict[str, object] | None = None, **top: object) -> Path:
    make_fake_archives(tmp_path)
    write_index(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    index.update(top)
    if change is not None:
        index["archives"][0].update(change)
    (tmp_path / "index.json").write_text(json.dumps(index))
    return tmp_path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "../t2/cpython-3.99.0+20260101-x86_64-unknown-linux-gnu-install_only.tar.gz"},
         "must be a plain file name"),
        ({"version": "3.12.0"}, "disagrees with its name: version '3.12.0'"),
        ({"sha256": 12}, "archives[0].sha256: expected a string, got 12"),
        ({"size": "big"}, "archives[0].size: expected an integer"),
        ({"sha256": "abc"}, "has no valid sha256"),
    ],
)  # fmt: skip
def test_a_bad_index_entry_is_named(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    mirror = _index_with(tmp_path, change)
    with pytest.raises(RelocpyError, match=re.escape(message)):
        Mirror(str(mirror)).entries()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "index.json: not valid JSON"),
        ("[]", "index.json: the top level: expected an object"),
        ('{"format": 99, "archives": []}', "this relocpy reads format 1 to 1, not 99"),
        ('{"format": 1}', "archives: expected a list, got null"),
        ('{"format": 1, "archives": [{}]}', "archives[0].name: missing"),
    ],
)
def test_a_malformed_index_is_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "index.json").write_text(text)
    with pytest.raises(RelocpyError, match=re.escape(message)):
        Mirror(str(tmp_path)).entries()


def test_a_truncated_local_file_is_not_called_resumable(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_fake_archives(mirror, payload=200_000)
    write_index(mirror)
    entry = next(e for e in Mirror(str(mirror)).entries() if e.compression == "gz")
    (mirror / entry.name).write_bytes((mirror / entry.name).read_bytes()[:1000])
    target = tmp_path / "a.tar.gz"
    with pytest.raises(MirrorError, match="the mirror's copy is 1000 bytes") as caught:
        Mirror(str(mirror)).download(entry, target)
    assert "resume" not in str(caught.value) and "truncated" in (caught.value.hint or "")
    assert not target.exists() and not target.with_name("a.tar.gz.part").exists()


def test_python_build_standalone_layout_and_uv_json_mirrors(tmp_path: Path) -> None:
    """A directory laid out as python-build-standalone's releases (archives + SHA256SUMS), and
    a uv downloads JSON, serve relocpy unchanged; checksums are still checked."""
    pbs = tmp_path / "pbs"
    pbs.mkdir()
    gz, zst = make_fake_archives(pbs, "3.99.0", "20260101")
    zst.unlink()
    from relocpy.core.checksums import sha256_file

    lines = [f"{sha256_file(gz)}  {gz.name}", f"{'0' * 64}  cpython-3.99.0+20260101-x86_64-"
             "unknown-linux-gnu-pgo+lto-full.tar.zst"]  # fmt: skip
    (pbs / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    [entry] = Mirror(str(pbs)).entries()
    assert (entry.name, entry.size, entry.opt) == (gz.name, 0, "pgo+lto")
    Mirror(str(pbs)).download(entry, tmp_path / "got.tar.gz")
    assert (tmp_path / "got.tar.gz").read_bytes() == gz.read_bytes()

    uv = tmp_path / "uv.json"
    uv.write_text(json.dumps({
        "cpython-3.99.0-linux-x86_64-gnu": {
            "name": "cpython", "arch": {"family": "x86_64", "variant": None}, "os": "linux",
            "libc": "gnu", "major": 3, "minor": 99, "patch": 0, "prerelease": "",
            "url": gz.as_uri(), "sha256": sha256_file(gz), "variant": None,
        },
        "cpython-3.99.0-darwin-aarch64-none": {"name": "cpython", "os": "darwin", "url": "x"},
    }))  # fmt: skip
    [from_uv] = Mirror(str(uv)).entries()
    assert from_uv.url == gz.as_uri()
    Mirror(str(uv)).download(from_uv, tmp_path / "uv.tar.gz")
    bad = dataclasses.replace(from_uv, sha256="1" * 64)
    with pytest.raises(ChecksumMismatchError):
        Mirror(str(uv)).download(bad, tmp_path / "bad.tar.gz")


def test_stripped_archives_with_bytecode_are_offered_first(tmp_path: Path) -> None:
    """A stripped archive whose build's metadata says it holds the bytecode is what the uv JSON
    lists and `relocpy install` takes; one that does not say is ranked after install_only."""
    from relocpy.install.selection import Machine, select

    gz, zst = make_fake_archives(tmp_path, "3.99.0", "20260101")
    stripped = zst.with_name(zst.name.replace("install_only", "install_only_stripped"))
    shutil.copyfile(zst, stripped)
    machine = Machine("x86_64", "gnu", (2, 36), "")
    entries = write_index(tmp_path)
    assert select("3.99", entries, machine).name == zst.name  # bytecode unknown: install_only
    uv = json.loads((tmp_path / "uv-downloads.json").read_text())
    assert uv["cpython-3.99.0-linux-x86_64-gnu"]["url"].endswith(zst.name.replace("+", "%2B"))
    metadata = {
        "python_version": "3.99.0",
        "glibc_floor": "2.17",
        "build_options": {"opt": "lto"},
        "stripped_bytecode": "plain",
        "archives": {p.name: {} for p in (gz, zst, stripped)},
    }
    zst.with_name(zst.name.removesuffix(".tar.zst") + ".json").write_text(json.dumps(metadata))
    entries = write_index(tmp_path)
    chosen = select("3.99", entries, machine)
    assert (chosen.name, chosen.bytecode, chosen.opt) == (stripped.name, True, "lto")
    assert chosen.glibc_floor == "2.17"  # the build's metadata describes both flavours
    uv = json.loads((tmp_path / "uv-downloads.json").read_text())
    assert uv["cpython-3.99.0-linux-x86_64-gnu"]["url"].endswith(stripped.name.replace("+", "%2B"))


def test_static_musl_builds_are_not_offered_to_uv(tmp_path: Path) -> None:
    from relocpy.package.mirror import MirrorEntry, uv_download_entries

    gnu = MirrorEntry(
        "cpython-3.13.5+20260101-x86_64-unknown-linux-gnu-install_only.tar.gz", "3.13.5",
        "20260101", "default", "install_only", "x86_64-unknown-linux-gnu", "x86_64", "gnu",
        "2.17", "0" * 64, 1,
    )  # fmt: skip
    static = dataclasses.replace(
        gnu,
        name="cpython-3.13.5+20260101-x86_64-unknown-linux-musl-static+install_only.tar.gz",
        variant="static",
        target_triple="x86_64-unknown-linux-musl",
        libc="musl",
        glibc_floor=None,
    )
    # uv could not install a binary wheel into anything made with a static interpreter
    assert list(uv_download_entries([gnu, static], "http://m")) == [
        "cpython-3.13.5-linux-x86_64-gnu"
    ]


def test_uv_is_told_each_cpu_by_its_own_name(tmp_path: Path) -> None:
    """python-build-standalone's ppc64le is uv's powerpc64le; s390x and riscv64 are alike."""
    from relocpy.package.mirror import MirrorEntry, uv_download_entries

    def entry(arch: str) -> MirrorEntry:
        triple = f"{arch}-unknown-linux-gnu"
        return MirrorEntry(
            f"cpython-3.13.5+20260101-{triple}-install_only.tar.gz", "3.13.5", "20260101",
            "default", "install_only", triple, arch, "gnu", "2.17", "0" * 64, 1,
        )  # fmt: skip

    out = uv_download_entries([entry(a) for a in ("ppc64le", "s390x", "riscv64")], "http://m")
    assert sorted(out) == [
        "cpython-3.13.5-linux-powerpc64le-gnu",
        "cpython-3.13.5-linux-riscv64-gnu",
        "cpython-3.13.5-linux-s390x-gnu",
    ]
    assert {v["arch"]["family"] for v in out.values()} == {"powerpc64le", "s390x", "riscv64"}  # type: ignore[index]
    assert out["cpython-3.13.5-linux-powerpc64le-gnu"]["url"] == (
        "http://m/cpython-3.13.5%2B20260101-ppc64le-unknown-linux-gnu-install_only.tar.gz"
    )
