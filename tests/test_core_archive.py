from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from conftest import SKIPPABLE_ZSTD_FRAME, small_tmpfs, zstd_frames
from relocpy.core import archive as archive_module
from relocpy.core.archive import (
    EXTRACTOR_ENV,
    BadArchiveError,
    extract_archive,
    gnu_tar,
    read_member,
    write_archives,
)


@pytest.fixture(autouse=True, params=["gnu-tar", "python"])
def extractor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with both writers: GNU tar behind the scan, and Python's own."""
    if request.param == "python":
        monkeypatch.setenv(EXTRACTOR_ENV, "python")
    else:
        monkeypatch.delenv(EXTRACTOR_ENV, raising=False)
        assert gnu_tar() is not None, "GNU tar is part of every supported machine"
    return request.param


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

    from relocpy.core.archive import GZIP_LEVEL_SMALLEST, gzip_bytes

    data = b"".join(f"line {i} of a tar stream\n".encode() for i in range(20000))
    smallest = gzip_bytes(data, GZIP_LEVEL_SMALLEST)
    assert gzip_bytes(data, GZIP_LEVEL_SMALLEST) == smallest
    assert len(smallest) <= len(gzip_bytes(data)) < len(data) // 10
    assert gzip_module.decompress(smallest) == data
    (tmp_path / "x.gz").write_bytes(smallest)
    assert subprocess.run(["gzip", "-t", str(tmp_path / "x.gz")]).returncode == 0
    assert smallest[4:8] == b"\0\0\0\0"  # no time in the header


def test_extracted_files_keep_their_mtimes(tmp_path: Path) -> None:
    """make compares them: a source tree whose configure.ac looks newer than aclocal.m4 would
    run aclocal again (a program the build machine need not have)."""
    root = _tree(tmp_path / "t")
    big = root / "lib" / "big.bin"
    big.write_bytes(b"x" * 3_000_000)
    os.utime(big, (1_000_000_000, 1_000_000_000))
    gz, zst = tmp_path / "a.tar.gz", tmp_path / "a.tar.zst"
    write_archives(root, "python", gz, zst, lambda rel: True)
    for archive in (gz, zst):
        out = tmp_path / f"x-{archive.name}"
        extract_archive(archive, out)
        assert (out / "python/lib/big.bin").stat().st_mtime == 1_000_000_000


# ---- hostile archives: nothing outside the destination may change --------------------------

import hostile_archives as hostile  # noqa: E402
from relocpy.core.archive import member_name, resolve_link  # noqa: E402


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("python/./bin//x/", "python/bin/x"),
        ("./python/w", "python/w"),
        ("python//w", "python/w"),
        ("python/w/", "python/w"),
    ],
)
def test_member_names_are_canonical(raw: str, canonical: str) -> None:
    assert member_name(raw) == canonical


@pytest.mark.parametrize("raw", ["/etc/x", "python/../../x", "./", "", "a/\0b"])
def test_member_names_that_leave_are_refused(raw: str) -> None:
    with pytest.raises(BadArchiveError, match="unsafe member"):
        member_name(raw)


def test_links_resolve_through_other_links() -> None:
    kinds = {"python/d1/d2/u": "link", "python/w": "link", "python/d1": "dir", "python": "dir"}
    targets = {"python/d1/d2/u": "../../../", "python/w": "d1/d2/u/../../"}
    assert resolve_link("python/d1/d2/u", kinds, targets) == ""  # the destination itself
    assert resolve_link("python/w", kinds, targets) is None  # two levels above it
    loop = {"python/a": "b", "python/b": "a"}
    assert resolve_link("python/a", {"python/a": "link", "python/b": "link"}, loop) is None
    assert resolve_link("python/bin/p", {"python/bin/p": "link"}, {"python/bin/p": "p3"}) == (
        "python/bin/p3"
    )


def _pwned_anywhere(*roots: Path) -> list[str]:
    """Payloads where an escape would put them: in or beside any directory above the
    destinations (the generator aims at `../outside/`, `../box/outside/` and their parents)."""
    found = []
    for root in roots:
        for above in (root, *root.parents):
            for pattern in ("*PWNED*", "outside/*PWNED*", "box/outside/*PWNED*", "tmp/*/*PWNED*"):
                found += [str(p) for p in above.glob(pattern)]
    return found


def test_the_issue_chain_writes_nothing_outside(tmp_path: Path) -> None:
    box = hostile.make_box(tmp_path)
    archive = hostile.write_case(hostile.issue_chain(), tmp_path / "chain.tar.gz")
    before = hostile.snapshot(box, box / "dest")
    with pytest.raises(BadArchiveError, match="through the link"):
        extract_archive(archive, box / "dest")
    assert hostile.snapshot(box, box / "dest") == before
    assert not (box / "dest").exists()  # it made the directory, so it removed it
    assert not Path("/tmp/relocpy-x").exists() and not _pwned_anywhere(tmp_path)


def _run_case(case: list[hostile.Member], tmp: Path, fmt: int) -> str:
    """Extract one case in a fresh box; assert nothing outside changed; return the outcome."""
    box = hostile.make_box(tmp)
    archive = tmp / "case.tar"
    try:
        hostile.write_case(case, archive, fmt)
    except (ValueError, tarfile.TarError):
        return "unwritable"  # e.g. a name ustar cannot hold
    dest = box / "dest"
    before = hostile.snapshot(box, dest)
    try:
        extract_archive(archive, dest)
        outcome = "extracted"
    except BadArchiveError:
        outcome = "refused"
        assert not dest.exists()
    assert hostile.snapshot(box, dest) == before
    if dest.exists():
        assert hostile.escaping_links(dest) == []
    return outcome


def test_the_corpus_changes_nothing_outside(tmp_path: Path) -> None:
    cases = hostile.load_corpus()
    assert len(cases) >= 150 and sum(c["found"] == "escape" for c in cases) >= 100
    for number, case in enumerate(cases):
        fmt = hostile.case_format(case)
        _run_case(case["members"], tmp_path / str(number), fmt)  # type: ignore[arg-type]
    assert not _pwned_anywhere(tmp_path)


def test_fuzzed_archives_change_nothing_outside(tmp_path: Path) -> None:
    """Two thousand generated archives mixing link chains, ./ and // spellings, hard links
    to links, links replaced by directories, duplicates, long names and PAX headers."""
    outcomes: dict[str, int] = {}
    for seed in range(10_000, 12_000):
        fmt = (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT)[seed % 3]
        outcome = _run_case(hostile.generate(seed), tmp_path / str(seed), fmt)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        shutil.rmtree(tmp_path / str(seed))
    assert outcomes.get("refused", 0) > 1500, outcomes
    assert not _pwned_anywhere(tmp_path)


def test_benign_links_inside_the_tree_extract(tmp_path: Path) -> None:
    members: list[hostile.Member] = [
        {"type": "dir", "name": "python/bin"},
        {"type": "file", "name": "python/bin/python3.13", "data": "x"},
        {"type": "sym", "name": "python/bin/python3", "target": "python3.13"},
        {"type": "sym", "name": "python/lib/up", "target": "../bin"},
        {"type": "hard", "name": "python/bin/copy", "target": "python/bin/python3.13"},
        {"type": "dir", "name": "python/bin/"},  # a directory may be listed twice
    ]
    archive = hostile.write_case(members, tmp_path / "ok.tar")
    extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out/python/lib/up/python3").read_text() == "x"
    assert (tmp_path / "out/python/bin/copy").stat().st_nlink == 2


# ---- GNU tar behind the scan, and Python's writer: the same trees, the same refusals ----------


def _listing(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything an extraction decides about a tree: kinds, modes, mtimes, data, links."""
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", oct(info.st_mode & 0o7777))
        else:
            found[rel] = (
                "file", oct(info.st_mode & 0o7777), int(info.st_mtime), info.st_nlink,
                path.read_bytes(),
            )  # fmt: skip
    for path in sorted(root.rglob("*")):  # directory times, after reading (reads keep them)
        if path.is_dir() and not path.is_symlink():
            found[path.relative_to(root).as_posix()] += (int(path.lstat().st_mtime),)
    return found


def _real_tree(root: Path) -> Path:
    _tree(root)
    deep = root / "lib" / ("d" * 90) / ("e" * 90)  # names over ustar's 100 bytes: pax headers
    deep.mkdir(parents=True)
    (deep / "m.py").write_text("m")
    (root / "lib" / "up").symlink_to("../bin")
    os.link(root / "bin" / "tool", root / "bin" / "tool-hard")
    os.utime(root / "lib", (1_500_000_000, 1_500_000_000))
    return root


def test_gnu_tar_writes_a_plain_archive_as_python_would(
    tmp_path: Path, extractor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _real_tree(tmp_path / "t")
    gz, zst = tmp_path / "a.tar.gz", tmp_path / "a.tar.zst"
    write_archives(root, "python", gz, zst, lambda rel: True, mtime=1_600_000_000)
    monkeypatch.setenv(EXTRACTOR_ENV, "python")
    extract_archive(zst, tmp_path / "by-python")
    monkeypatch.delenv(EXTRACTOR_ENV)

    def no_python_writes(*args: object) -> None:
        raise AssertionError("a plain archive's member reached the Python writer")

    monkeypatch.setattr(archive_module._Extraction, "add", no_python_writes)
    for archive in (gz, zst):
        extract_archive(archive, tmp_path / f"by-tar-{archive.name}", top="python")
        assert _listing(tmp_path / f"by-tar-{archive.name}") == _listing(tmp_path / "by-python")
    listing = _listing(tmp_path / "by-python")
    assert listing["python/lib/up"] == ("link", "../bin")
    assert listing["python/bin/tool-hard"][3] == 2  # a hard link, not a copy


def test_gnu_tar_gets_every_byte_when_writev_takes_part(
    tmp_path: Path, extractor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Members go to GNU tar by writev, up to 1,024 pieces at a time; a pipe may take part of
    them (a signal, a reader that is slow): the rest follows, in order."""
    if extractor == "python":
        pytest.skip("GNU tar's input")
    root = tmp_path / "t"
    (root / "many").mkdir(parents=True)
    for index in range(1500):  # 3,000 pieces in the first megabyte: more than one writev
        (root / "many" / f"{index}.py").write_text(f"x = {index}\n" * (index % 7))
    gz, zst = tmp_path / "a.tar.gz", tmp_path / "a.tar.zst"
    write_archives(root, "python", gz, zst, lambda rel: True, mtime=1_600_000_000)
    monkeypatch.setenv(EXTRACTOR_ENV, "python")
    extract_archive(zst, tmp_path / "by-python")
    monkeypatch.delenv(EXTRACTOR_ENV)
    calls: list[int] = []

    def short_writev(fd: int, pieces: list[bytes | memoryview]) -> int:
        assert len(pieces) <= 1024
        calls.append(len(pieces))
        head = b"".join(bytes(piece) for piece in pieces)[: 1000 + 7 * len(calls)]
        return os.write(fd, head)

    monkeypatch.setattr(archive_module.os, "writev", short_writev)
    extract_archive(zst, tmp_path / "by-tar")
    assert max(calls) == 1024
    assert _listing(tmp_path / "by-tar") == _listing(tmp_path / "by-python")


def test_an_archive_of_several_zstd_frames_extracts_whole(tmp_path: Path) -> None:
    """RFC 8878 streams may hold several frames and skippable frames (pzstd writes them): all
    of it is read, and a frame cut short or bytes that are not a frame are refused."""
    root = _real_tree(tmp_path / "t")
    gz, zst = tmp_path / "a.tar.gz", tmp_path / "a.tar.zst"
    write_archives(root, "python", gz, zst, lambda rel: True, mtime=1_600_000_000)
    tar = zstandard.ZstdDecompressor().stream_reader(zst.read_bytes()).read()
    extract_archive(zst, tmp_path / "one-frame")
    frames = zstd_frames(tar, 700, len(tar) // 2)  # one cut inside a header, one anywhere
    several = tmp_path / "several.tar.zst"
    several.write_bytes(frames[0] + SKIPPABLE_ZSTD_FRAME + frames[1] + frames[2])
    extract_archive(several, tmp_path / "several")
    assert _listing(tmp_path / "several") == _listing(tmp_path / "one-frame")
    for bad, why in [
        (frames[0] + frames[1] + frames[2][:-5], "truncated"),
        (frames[0] + b"garbage!" + frames[1], "Unknown frame descriptor"),
    ]:
        several.write_bytes(bad)
        with pytest.raises(BadArchiveError, match=why):
            extract_archive(several, tmp_path / "bad")
        assert not (tmp_path / "bad").exists()


def test_python_takes_over_from_the_first_member_that_is_not_plain(
    tmp_path: Path, extractor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "mixed.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for index in range(3):
            info = tarfile.TarInfo(f"python/plain-{index}")
            info.size, info.mode, info.mtime = 1, 0o644, 1_600_000_000
            tar.addfile(info, io.BytesIO(b"p"))
        odd = tarfile.TarInfo("python/odd")  # mode 600: not plain, tarfile reads from here on
        odd.size, odd.mode, odd.mtime = 1, 0o600, 1_600_000_000
        tar.addfile(odd, io.BytesIO(b"o"))
        link = tarfile.TarInfo("python/plain-link")
        link.type, link.linkname = tarfile.SYMTYPE, "plain-0"
        tar.addfile(link)
    added: list[str] = []
    original = archive_module._Extraction.add

    def counting(self: archive_module._Extraction, member: tarfile.TarInfo, tar: object) -> None:
        added.append(member.name)
        original(self, member, tar)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_module._Extraction, "add", counting)
    extract_archive(archive, tmp_path / "out", top="python")
    if extractor == "gnu-tar":
        assert added == ["python/odd", "python/plain-link"]
    else:
        assert len(added) == 5
    out = tmp_path / "out" / "python"
    assert sorted(p.name for p in out.iterdir()) == [
        "odd", "plain-0", "plain-1", "plain-2", "plain-link",
    ]  # fmt: skip
    assert (out / "odd").stat().st_mode & 0o777 == 0o644  # as Python writes any file
    assert (out / "plain-link").read_text() == "p"


def test_both_writers_agree_on_generated_archives(tmp_path: Path, extractor: str) -> None:
    """Refused by one, refused by the other; extracted, the same tree."""
    if extractor == "python":
        pytest.skip("compares both writers in one run")
    for seed in range(20_000, 20_400):
        fmt = (tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT)[seed % 2]
        results = []
        for writer in ("gnu-tar", "python"):
            os.environ[EXTRACTOR_ENV] = writer
            try:
                case = tmp_path / f"{seed}-{writer}"
                outcome = _run_case(hostile.generate(seed), case, fmt)
                dest = case / "box" / "dest"
                results.append((outcome, _listing(dest) if dest.exists() else None))
            finally:
                del os.environ[EXTRACTOR_ENV]
        assert results[0] == results[1], seed


def test_tar_errors_of_the_destination_are_the_os_errors(tmp_path: Path, extractor: str) -> None:
    """A full disk under GNU tar is an OSError(ENOSPC), as from Python's writes: the
    installer says "no space left" for both (tests/test_install_trees.py, with a real tmpfs)."""
    if extractor == "python":
        pytest.skip("GNU tar's messages")
    with small_tmpfs(tmp_path / "small", "1m") as small:
        root = tmp_path / "t"
        root.mkdir()
        (root / "big").write_bytes(os.urandom(3_000_000))
        gz, zst = tmp_path / "a.tar.gz", tmp_path / "a.tar.zst"
        write_archives(root, "python", gz, zst, lambda rel: True)
        with pytest.raises(OSError) as raised:
            extract_archive(zst, small / "out")
        assert raised.value.errno == errno.ENOSPC and "GNU tar" in str(raised.value)
        assert not (small / "out").exists()


def test_a_tar_that_stops_early_fails_the_extraction(tmp_path: Path, extractor: str) -> None:
    """tar quitting in the middle (here: at once) breaks the pipe: its own words are the
    error, and what it wrote is removed."""
    if extractor == "python":
        pytest.skip("GNU tar's failure")
    quitter = tmp_path / "tar"
    quitter.write_text("#!/bin/sh\necho 'tar: gave up' >&2\nexit 2\n")
    quitter.chmod(0o755)
    root = tmp_path / "t"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(4_000_000))
    gz, zst = tmp_path / "a.tar.gz", tmp_path / "a.tar.zst"
    write_archives(root, "python", gz, zst, lambda rel: True)
    with zst.open("rb") as raw, pytest.raises(BadArchiveError, match="tar: gave up"):
        archive_module.extract_stream(raw, tmp_path / "out", zst.name, tar=str(quitter))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"\x28\xb5\x2f\xfd" + b"\0" * 10, b"not a tar"])
def test_an_empty_or_broken_stream_is_refused(tmp_path: Path, content: bytes) -> None:
    archive = tmp_path / "x.tar"
    archive.write_bytes(content)
    with pytest.raises(BadArchiveError, match="corrupt or truncated"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
