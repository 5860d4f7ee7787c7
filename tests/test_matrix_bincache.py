"""The binary cache: spec hashes, atomic stores, mirror reads and substitution with hash checks."""

from __future__ import annotations

import dataclasses
import json
import tarfile
from pathlib import Path

import pytest

from fake_tree import make_fake_archives
from mirror_server import MirrorServer
from relocpy.core.progress import QuietReporter
from relocpy.matrix.bincache import (
    BinaryCacheError,
    LocalBinaryCache,
    MirrorBinaryCache,
    build_logic_digest,
    find,
    spec_hash,
    spec_inputs,
)
from relocpy.matrix.spec import MatrixSpec

NAME = "cpython-3.13.15+0123456789abcdef-x86_64-unknown-linux-gnu-install_only.tar.gz"


def digest_of(spec: MatrixSpec) -> str:
    return spec_hash(spec_inputs(spec))


def test_spec_hash_covers_every_input() -> None:
    base = MatrixSpec("3.13.15")
    assert digest_of(base) == digest_of(MatrixSpec("3.13.15"))
    variants = [
        dataclasses.replace(base, opt="lto"),
        dataclasses.replace(base, toolchain="gcc", glibc=None),
        dataclasses.replace(base, glibc="2.28"),
        dataclasses.replace(base, march="x86-64-v3"),
        dataclasses.replace(base, cflags=("-fno-omit-frame-pointer",)),
        dataclasses.replace(base, readline="readline"),
        dataclasses.replace(base, version="3.11.2"),
        dataclasses.replace(base, free_threaded=True),
    ]
    digests = {digest_of(v) for v in variants} | {digest_of(base)}
    assert len(digests) == len(variants) + 1
    inputs = spec_inputs(base)
    # every library's key is in, and flags reach the libraries' keys
    assert {"openssl", "sqlite", "libffi", "zlib"} <= set(inputs["libraries"])
    v3 = spec_inputs(dataclasses.replace(base, march="x86-64-v3"))
    assert v3["libraries"]["openssl"] != inputs["libraries"]["openssl"]
    assert inputs["cpython"]["sha256"] and inputs["build_logic"] == build_logic_digest()
    host = spec_inputs(MatrixSpec("3.13.15", toolchain="gcc", glibc=None, libs="host"))
    assert "libssl-dev" in host["host_libraries"]


def fake_build(tmp: Path) -> list[Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    gz, _ = make_fake_archives(tmp, "3.13.15", "0123456789abcdef")
    archive = gz.rename(tmp / NAME)
    meta = tmp / NAME.replace(".tar.gz", ".json")
    meta.write_text(json.dumps({"glibc_floor": "2.17"}))
    # a build stores its test_suite archive too: not an interpreter, and not indexed as one
    tests = tmp / NAME.replace("install_only.tar.gz", "test_suite.tar.gz")
    with tarfile.open(tests, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("python/lib/python3.13/test/"))
    return [archive, meta, tests]


def test_store_lookup_and_index(tmp_path: Path) -> None:
    cache = LocalBinaryCache(tmp_path / "cache")
    assert cache.lookup("ab" * 32) is None
    entry = cache.store("ab" * 32, "label", {"x": 1}, fake_build(tmp_path / "out"))
    assert entry.archive == NAME
    again = cache.lookup("ab" * 32)
    assert again is not None and again.files == entry.files
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert [a["name"] for a in index["archives"]] == [NAME]
    assert index["archives"][0]["glibc_floor"] == "2.17"
    assert (tmp_path / "cache" / "uv-downloads.json").is_file()
    record = json.loads((tmp_path / "cache" / "specs" / f"{'ab' * 32}.json").read_text())
    assert record["inputs"] == {"x": 1}
    # a file that went missing makes the spec a miss, not a broken hit
    (tmp_path / "cache" / NAME).unlink()
    assert cache.lookup("ab" * 32) is None


def test_substitute_from_http_mirror_checks_hashes(tmp_path: Path) -> None:
    upstream = LocalBinaryCache(tmp_path / "upstream")
    upstream.store("cd" * 32, "label", {}, fake_build(tmp_path / "out"))
    local = LocalBinaryCache(tmp_path / "local")
    with MirrorServer(upstream.root) as server:
        mirror = MirrorBinaryCache(server.url)
        assert mirror.lookup("ef" * 32) is None
        found = find("cd" * 32, local, [mirror])
        assert found.where == "mirror" and found.entry is not None
        stored = local.substitute(mirror, found.entry, QuietReporter())
        assert local.lookup("cd" * 32) == dataclasses.replace(stored, location=local.location)
        assert (local.root / NAME).read_bytes() == (upstream.root / NAME).read_bytes()
        assert find("cd" * 32, local, [mirror]).where == "local"

        # a mirror whose file does not match its record: refused, nothing stored
        size = (upstream.root / NAME).stat().st_size
        (upstream.root / NAME).write_bytes(b"x" * size)  # same size, other bytes
        other = LocalBinaryCache(tmp_path / "other")
        entry = mirror.lookup("cd" * 32)
        assert entry is not None
        with pytest.raises(BinaryCacheError, match="sha256"):
            other.substitute(mirror, entry, QuietReporter())
        assert other.lookup("cd" * 32) is None
        assert not (other.root / NAME).exists()


def test_unreachable_mirror_is_a_miss(tmp_path: Path) -> None:
    local = LocalBinaryCache(tmp_path / "local")
    dead = MirrorBinaryCache("http://127.0.0.1:9")
    assert find("ab" * 32, local, [dead]).where == "missing"
    file_mirror = MirrorBinaryCache((tmp_path / "nothing").as_uri())
    assert find("ab" * 32, local, [file_mirror]).where == "missing"


def test_an_interrupted_store_leaves_no_record(tmp_path: Path) -> None:
    """The record is written after every file: a store that dies midway is a plain miss."""
    cache = LocalBinaryCache(tmp_path / "cache")
    files = [*fake_build(tmp_path / "out"), tmp_path / "out" / "vanished.log"]
    with pytest.raises(FileNotFoundError):
        cache.store("ab" * 32, "label", {}, files)
    assert cache.lookup("ab" * 32) is None
    assert not list((tmp_path / "cache").glob(".*.part"))
