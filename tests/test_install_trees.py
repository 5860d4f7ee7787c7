from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

import hostile_archives as hostile
from conftest import small_tmpfs
from fake_tree import make_fake_archives, write_unchecked_index
from mirror_server import MirrorServer
from relocpy.core import home
from relocpy.core.archive import EXTRACTOR_ENV, BadArchiveError
from relocpy.core.errors import ChecksumMismatchError, RelocpyError, UnknownVersionError
from relocpy.install.trees import (
    InstallError,
    Machine,
    find,
    install,
    installed,
    parse_request,
    select,
    store_changes,
    uninstall,
)
from relocpy.package.mirror import MirrorEntry, MirrorError, scan_directory, write_index
from relocpy.verify.checks import verify

RELOCPY = [sys.executable, "-m", "relocpy"]
HERE = Machine("x86_64", "gnu", (2, 36))


@pytest.fixture
def relocpy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home_dir = tmp_path / "home"
    monkeypatch.setenv("RELOCPY_HOME", str(home_dir))
    return home_dir


@pytest.fixture
def fake_mirror(tmp_path: Path) -> Path:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_fake_archives(mirror, "3.99.0", "20260101")
    make_fake_archives(mirror, "3.99.1", "20260101")
    write_index(mirror)
    return mirror


def _entry(version: str, build: str = "1", **changes: object) -> MirrorEntry:
    fields = dict(
        name=f"cpython-{version}+{build}-x86_64-unknown-linux-gnu-install_only.tar.zst",
        version=version,
        build=build,
        variant="default",
        flavour="install_only",
        target_triple="x86_64-unknown-linux-gnu",
        arch="x86_64",
        libc="gnu",
        glibc_floor="2.17",
        sha256="0" * 64,
        size=1,
    )
    fields.update(changes)
    return MirrorEntry(**fields)  # type: ignore[arg-type]


def test_select_newest_matching_runnable_build() -> None:
    entries = [
        _entry("3.13.5"),
        _entry("3.13.15", "1"),
        _entry("3.13.15", "2"),
        _entry("3.13.16", glibc_floor="2.39"),
        _entry("3.11.2"),
        _entry("3.13.15", "3", variant="freethreaded"),
    ]
    assert (select("3.13", entries, HERE).version, select("3.13", entries, HERE).build) == (
        "3.13.15",
        "2",
    )
    assert select("3", entries, HERE).version == "3.13.15"
    assert select("cpython@3.11", entries, HERE).version == "3.11.2"
    assert select("3.13t", entries, HERE).variant == "freethreaded"
    with pytest.raises(UnknownVersionError, match=re.escape("available: 3.11.2, 3.13.5, 3.13.15")):
        select("3.12", entries, HERE)
    with pytest.raises(UnknownVersionError, match="none for this machine"):
        select("3.13.16", entries, HERE)


@pytest.mark.parametrize("bad", ["three", "3.x", "py3", ""])
def test_bad_requests(bad: str) -> None:
    with pytest.raises(UnknownVersionError, match="cannot understand"):
        parse_request(bad)


def test_install_find_link_uninstall(relocpy_home: Path, fake_mirror: Path) -> None:
    done = install("3.99", str(fake_mirror))
    assert done.version == "3.99.1"
    assert done.root == home.pythons_dir() / "cpython-3.99.1+20260101-linux-x86_64-gnu"
    run = subprocess.run([done.executable, "hi"], capture_output=True, text=True)
    assert run.stdout.strip() == "fake 3.99.1 hi"
    link = home.bin_dir() / "python3.99"
    via_link = subprocess.run([link, "hi"], capture_output=True, text=True)
    assert via_link.stdout.strip() == "fake 3.99.1 hi"
    assert find("3.99.1") == done and [i.key for i in installed()] == [done.key]
    again = install("3.99", str(fake_mirror))  # already there: nothing downloaded or unpacked
    assert again == done
    uninstall("3.99")
    assert not done.root.exists() and not link.exists() and installed() == []
    with pytest.raises(UnknownVersionError, match="no installed interpreter"):
        find("3.99")


def test_links_never_replace_foreign_files(relocpy_home: Path, fake_mirror: Path) -> None:
    bin_dir = home.bin_dir()
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3.99").write_text("mine")
    install("3.99", str(fake_mirror))
    assert (bin_dir / "python3.99").read_text() == "mine"


def _cli(*args: str, home_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RELOCPY, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "RELOCPY_HOME": str(home_dir)},
    )


def test_eight_concurrent_installs_share_one_download(tmp_path: Path, fake_mirror: Path) -> None:
    home_dir = tmp_path / "home"
    with MirrorServer(fake_mirror) as server:
        procs = [
            subprocess.Popen(
                [*RELOCPY, "install", "3.99", "--mirror", server.url],
                env={**os.environ, "RELOCPY_HOME": str(home_dir)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        archive_gets = {k: v for k, v in server.gets.items() if k.endswith((".gz", ".zst"))}
    assert [p.returncode for p in procs] == [0] * 8, results
    assert list(archive_gets.values()) == [1], archive_gets
    outputs = {r[0].strip() for r in results}
    assert len(outputs) == 1 and Path(outputs.pop()).is_file()
    pythons = home_dir / "data" / "pythons"
    assert sorted(p.name for p in pythons.iterdir()) == [
        ".locks",
        "cpython-3.99.1+20260101-linux-x86_64-gnu",
    ]


def test_sigkill_at_any_moment_leaves_no_half_tree(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_fake_archives(mirror, files=3000, payload=3_000_000)
    write_index(mirror)
    home_dir = tmp_path / "home"
    final = home_dir / "data" / "pythons" / "cpython-3.99.0+20260101-linux-x86_64-gnu"
    with MirrorServer(mirror) as server:
        server.delay_per_chunk = 0.01
        for delay in (0.3, 0.8, 1.5, 2.5, 4.0):
            proc = subprocess.Popen(
                [*RELOCPY, "install", "3.99", "--mirror", server.url],
                env={**os.environ, "RELOCPY_HOME": str(home_dir)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # Whatever moment it died at, the final name is absent or holds a complete tree.
            assert not final.exists() or (final / ".relocpy-install.json").is_file()
            if final.exists():
                break
        server.delay_per_chunk = 0
        result = _cli("install", "3.99", "--mirror", server.url, home_dir=home_dir)
    assert result.returncode == 0, result.stderr
    assert (final / "bin" / "python3.99").is_file()
    assert not list((home_dir / "data" / "pythons").glob(".tmp-*"))
    assert not list((home_dir / "cache" / "unpacked").glob(".tmp-*"))


def _write_hostile_mirror(mirror: Path, member: tarfile.TarInfo) -> None:
    name = "cpython-3.99.0+20260101-x86_64-unknown-linux-gnu-install_only.tar.gz"
    with tarfile.open(mirror / name, "w:gz") as tar:
        tar.addfile(member)
    write_unchecked_index(mirror)  # a hostile mirror lists what it likes


def _member(kind: str) -> tarfile.TarInfo:
    if kind == "dotdot":
        return tarfile.TarInfo("python/../../escape")
    if kind == "absolute":
        return tarfile.TarInfo("/etc/relocpy-absolute")
    member = tarfile.TarInfo("python/bad")
    if kind == "symlink-out":
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    else:
        member.type, member.devmajor, member.devminor = tarfile.CHRTYPE, 1, 3
    return member


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink-out", "device"])
def test_hostile_archives_are_refused(relocpy_home: Path, tmp_path: Path, kind: str) -> None:
    mirror = tmp_path / "hostile"
    mirror.mkdir()
    _write_hostile_mirror(mirror, _member(kind))
    with pytest.raises(BadArchiveError, match="unsafe member"):
        install("3.99", str(mirror))
    _assert_nothing_installed()


def test_the_chain_and_the_corpus_change_nothing_outside_install_and_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hostile archive, served by a mirror whose index lists it as CPython 3.99.0, goes
    through `install` and through `verify`: each is refused, nothing is installed, and no
    file appears or changes outside the directory each extracts into."""
    cases = [(hostile.issue_chain(), tarfile.PAX_FORMAT)] + [
        (case["members"], hostile.case_format(case)) for case in hostile.load_corpus()
    ]
    name = "cpython-3.99.0+20260101-x86_64-unknown-linux-gnu-install_only.tar.gz"
    tried = 0
    for number, (members, fmt) in enumerate(cases):
        box = hostile.make_box(tmp_path / str(number))
        monkeypatch.setenv("RELOCPY_HOME", str(box / "home"))
        monkeypatch.setenv("TMPDIR", str(box / "tmp"))
        (box / "tmp").mkdir()
        mirror = box / "mirror"
        mirror.mkdir()
        try:
            hostile.write_case(members, mirror / name, fmt)  # type: ignore[arg-type]
        except (ValueError, tarfile.TarError):
            continue  # a name this tar format cannot hold
        write_unchecked_index(mirror)
        before = hostile.snapshot(box, box / "home")
        with pytest.raises(RelocpyError):
            install("3.99", str(mirror))
        _assert_nothing_installed()
        with pytest.raises(RelocpyError):
            verify(mirror / name, runtime=False)
        after = hostile.snapshot(box, box / "home")
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert changed == set(), (number, sorted(changed))
        # an escape from a destination inside the home lands beside it, not under python/
        stray = [p for p in box.rglob("*PWNED*") if "python" not in p.relative_to(box).parts]
        assert stray == [], (number, stray)
        tried += 1
    assert tried >= 150
    assert not Path("/tmp/relocpy-x").exists() and not list(Path("/tmp").glob("*PWNED*"))


def _assert_nothing_installed() -> None:
    pythons = home.pythons_dir()
    leftovers = (
        [p.name for p in pythons.iterdir() if p.name != ".locks"] if pythons.exists() else []
    )
    assert leftovers == []
    assert not (home.bin_dir() / "python3.99").exists()


def test_checksum_mismatch_installs_nothing(relocpy_home: Path, fake_mirror: Path) -> None:
    index = json.loads((fake_mirror / "index.json").read_text())
    for item in index["archives"]:
        item["sha256"] = "f" * 64
    (fake_mirror / "index.json").write_text(json.dumps(index))
    with pytest.raises(ChecksumMismatchError, match="f" * 64):
        install("3.99", str(fake_mirror))
    _assert_nothing_installed()


def test_a_download_cut_while_unpacking_resumes(relocpy_home: Path, tmp_path: Path) -> None:
    """An install unpacks while it downloads: a connection cut halfway leaves nothing
    installed and nothing in the store, but the bytes that came stay in the download's .part;
    the next install resumes from there (a Range request) and checks the whole file's sha256."""
    mirror = tmp_path / "m"
    mirror.mkdir()
    make_fake_archives(mirror, payload=3_000_000, files=300)
    write_index(mirror)
    with MirrorServer(mirror) as server:
        server.cut_after = 1_500_000
        with pytest.raises(MirrorError, match="resume"):
            install("3.99", server.url)
        _assert_nothing_installed()
        store = home.cache_dir() / "unpacked"
        assert not store.exists() or not list(store.iterdir())
        parts = list((home.cache_dir() / "archives").glob("*.part"))
        assert len(parts) == 1 and 0 < parts[0].stat().st_size <= 1_500_000
        server.cut_after = None
        done = install("3.99", server.url)
    assert (done.root / "payload.bin").read_bytes() == (
        mirror / "tree-3.99.0-20260101" / "payload.bin"
    ).read_bytes()
    assert not list((home.cache_dir() / "archives").glob("*.part"))
    assert server.gets.total() == 2 + 2  # the index and the archive, each twice


def test_truncated_archive_installs_nothing(relocpy_home: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "m"
    mirror.mkdir()
    _, zst = make_fake_archives(mirror, files=200)
    zst.write_bytes(zst.read_bytes()[:-2000])
    write_unchecked_index(mirror)  # the index matches the damaged file: only extraction can tell
    with pytest.raises(BadArchiveError, match="corrupt or truncated"):
        install("3.99", str(mirror))
    _assert_nothing_installed()


@pytest.mark.parametrize("writer", ["gnu-tar", "python"])
def test_full_disk_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    if writer == "python":
        monkeypatch.setenv(EXTRACTOR_ENV, "python")
    with small_tmpfs(tmp_path / "small", "6m") as small:
        monkeypatch.setenv("RELOCPY_HOME", str(small))
        mirror = tmp_path / "m"
        mirror.mkdir()
        make_fake_archives(mirror, payload=8_000_000)  # random bytes: 8 MB compressed too
        write_index(mirror)
        with pytest.raises(InstallError, match="no space left"):
            install("3.99", str(mirror))
        _assert_nothing_installed()
        assert not list((small / "data" / "pythons").glob(".tmp-*"))
        # small files, written by the extractor's threads: their error reaches the install
        many = tmp_path / "many"
        many.mkdir()
        make_fake_archives(many, "3.98.0", files=3000)  # 10 MB of modules
        write_index(many)
        with pytest.raises(InstallError, match="no space left"):
            install("3.98", str(many))
        _assert_nothing_installed()
        assert not list((small / "cache" / "unpacked").iterdir())


def test_unknown_version_and_unreachable_mirror(relocpy_home: Path, fake_mirror: Path) -> None:
    with pytest.raises(UnknownVersionError, match=re.escape("available: 3.99.0, 3.99.1")):
        install("3.12", str(fake_mirror))
    with pytest.raises(MirrorError, match="cannot reach mirror"):
        install("3.99", "http://127.0.0.1:9")
    result = _cli(
        "install", "3.12", "--no-build", "--mirror", str(fake_mirror), home_dir=relocpy_home
    )
    assert result.returncode == 2, result.stderr
    assert "no mirror and no cached build has '3.12'" in result.stderr
    assert "it has 3.99.0, 3.99.1" in result.stderr and "Traceback" not in result.stderr
    _assert_nothing_installed()


@pytest.mark.real
def test_real_interpreter_from_an_http_mirror(built_archive, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for path in (
        built_archive.archives.gz,
        built_archive.archives.zst,
        built_archive.archives.metadata,
    ):
        os.link(path, mirror / path.name)
    entries = write_index(mirror)
    assert {e.compression for e in entries} == {"gz", "zst"}
    home_dir = tmp_path / "home"
    with MirrorServer(mirror) as server:
        result = _cli("install", "3.13", "--mirror", server.url, home_dir=home_dir)
        assert result.returncode == 0, result.stderr
        executable = Path(result.stdout.strip())
        found = _cli("find", "3.13", "--json", home_dir=home_dir)
        assert json.loads(found.stdout)["executable"] == str(executable)
        run = _cli(
            "run",
            "3.13",
            "--",
            "python",
            "-c",
            "import ssl, sqlite3, sys; print(sys.prefix)",
            home_dir=home_dir,
        )
        assert run.returncode == 0, run.stderr
        assert Path(run.stdout.strip()) == executable.parent.parent
        listed = json.loads(
            _cli("list", "--json", "--available", "--mirror", server.url, home_dir=home_dir).stdout
        )
        assert len(listed["installed"]) == 1 and len(listed["available"]) == 2
    link = home_dir / "bin" / "python3.13"
    out = subprocess.run(
        [link, "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.startswith(built_archive.archives.info["python_version"])
    assert _cli("uninstall", "3.13", home_dir=home_dir).returncode == 0
    assert not link.exists() and not executable.exists()


def test_scan_reads_glibc_floor_from_metadata(tmp_path: Path) -> None:
    gz, _ = make_fake_archives(tmp_path)
    (tmp_path / gz.name.replace(".tar.gz", ".json")).write_text('{"glibc_floor": "2.17"}')
    assert {e.glibc_floor for e in scan_directory(tmp_path)} == {"2.17"}


@pytest.mark.parametrize("with_cp", [True, False])
def test_link_tree_hard_links_or_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_cp: bool
) -> None:
    import relocpy.install.trees as inst

    if not with_cp:
        monkeypatch.setattr(inst.shutil, "which", lambda name: None)
    source = tmp_path / "src"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "python3.99").write_text("x")
    (source / "bin" / "python").symlink_to("python3.99")
    mode = inst._link_tree(source, tmp_path / "dst")
    copy = tmp_path / "dst" / "bin"
    shared = (copy / "python3.99").stat().st_ino == (source / "bin" / "python3.99").stat().st_ino
    # this machine's ext4 cannot clone files: cp hard-links; without cp, files are copied
    assert (mode, shared) == (("hardlink", True) if with_cp else ("copy", False))
    assert os.readlink(copy / "python") == "python3.99"


# ---- bad input and silent failures (issue 19) ------------------------------------------------


def test_a_foreign_launcher_or_a_bin_dir_that_is_a_file_is_said(
    relocpy_home: Path, fake_mirror: Path, tmp_path: Path
) -> None:
    bin_dir = relocpy_home / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3.99").write_text("mine")
    result = _cli("install", "3.99", "--mirror", str(fake_mirror), home_dir=relocpy_home)
    assert result.returncode == 0, result.stderr
    assert f"warning: no launcher {bin_dir / 'python3.99'}: a file relocpy did not make" in (
        result.stderr
    )
    assert "RELOCPY_BIN_DIR" in result.stderr and (bin_dir / "python3.99").read_text() == "mine"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = subprocess.run(
        [*RELOCPY, "install", "3.99.0", "--mirror", str(fake_mirror)],
        capture_output=True,
        text=True,
        env={**os.environ, "RELOCPY_HOME": str(relocpy_home), "RELOCPY_BIN_DIR": str(blocker)},
    )
    assert result.returncode == 0 and "set RELOCPY_BIN_DIR to a directory" in result.stderr


def test_relocpy_home_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "home-file"
    blocker.write_text("")
    for args in (["list"], ["install", "3.13"], ["cache"], ["versions"]):
        result = _cli(*args, home_dir=blocker)
        assert result.returncode == 2, (args, result.stderr)
        assert f"RELOCPY_HOME={blocker} is not a directory" in result.stderr
        assert "Traceback" not in result.stderr


def test_list_with_an_unreadable_data_directory_is_an_error(relocpy_home: Path) -> None:
    (relocpy_home / "data").mkdir(parents=True)
    (relocpy_home / "data" / "pythons").write_text("not a directory")
    result = _cli("list", home_dir=relocpy_home)
    assert result.returncode == 2 and "cannot read the installed interpreters" in result.stderr


def test_an_edit_through_one_install_does_not_outlive_it(
    relocpy_home: Path, fake_mirror: Path
) -> None:
    """Installs are hard links into the unpacked store: an in-place edit through one reaches
    the store, so the store is checked before each install and after each uninstall."""
    done = install("3.99.1", str(fake_mirror), links=False)
    store = relocpy_home / "cache" / "unpacked" / done.sha256
    original = (store / "python" / "bin" / "python3.99").read_text()
    with (done.root / "bin" / "python3.99").open("a") as handle:  # in place, same inode
        handle.write("echo edited\n")
    assert store_changes(store) == ["bin/python3.99"]
    uninstall("3.99.1")
    assert not store.exists()  # the tampered store went with the install
    again = install("3.99.1", str(fake_mirror), links=False)
    assert (again.root / "bin" / "python3.99").read_text() == original
    # an edit the store notices before the next install: unpacked afresh, the edit not seen
    (again.root / "bin" / "python3.99").write_text("#!/bin/sh\necho tampered\n")  # new inode
    with (store / "python" / "lib" / "python3.99" / "module_x.py").open("w") as handle:
        handle.write("added behind relocpy's back")
    shutil.rmtree(again.root)  # a second install key would be needed otherwise
    third = install("3.99.1", str(fake_mirror), links=False)
    assert not (third.root / "lib" / "python3.99" / "module_x.py").exists()


def test_the_reflink_probe_agrees_with_cp(tmp_path: Path) -> None:
    """The probe asks the kernel what `cp --reflink=always` asks (FICLONE), without a
    process; it is remembered in the directory."""
    from relocpy.install.trees import reflinks_work

    (tmp_path / "a").write_bytes(b"x")
    cp = subprocess.run(
        ["cp", "--reflink=always", str(tmp_path / "a"), str(tmp_path / "b")], capture_output=True
    )
    probe = tmp_path / "probe"
    probe.mkdir()
    assert reflinks_work(probe) is (cp.returncode == 0)
    assert (probe / ".reflinks").read_text() == ("yes\n" if cp.returncode == 0 else "no\n")
    assert sorted(p.name for p in probe.iterdir()) == [".reflinks"]
