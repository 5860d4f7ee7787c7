"""A PGO profile saved by one build and given to another: the second compiles the same bytes
without training; a profile of another build, or one that is not a profile, is refused."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from relocpy.build.profile import (
    MANIFEST,
    RUN_STAMP,
    TOP,
    ProfileMismatchError,
    load_profile,
    read_identity,
    save_profile,
)
from relocpy.core.archive import BadArchiveError

PROGRAM = """#include <stdio.h>
#include <stdlib.h>
static int classify(int x) { if (x % 7 == 0) return 2; if (x % 3 == 0) return 1; return 0; }
int main(int argc, char **argv) {
  long counts[3] = {0, 0, 0};
  for (int i = 0; i < atoi(argv[1]); i++) counts[classify(i)]++;
  printf("%ld %ld %ld\\n", counts[0], counts[1], counts[2]);
  return 0;
}
"""
IDENTITY = {"cpython": "3.13.15", "compiler": "gcc 12.2.0", "opt": "pgo+lto"}


def _compile(build: Path, flag: str) -> bytes:
    """Objects/prog.o as CPython's Makefile would compile it (a path relative to the build
    directory, where gcc looks for Objects/prog.gcda), linked into `prog`."""
    (build / "Objects").mkdir(parents=True, exist_ok=True)
    (build / "Objects" / "prog.c").write_text(PROGRAM)
    run = {"cwd": build, "check": True, "capture_output": True}
    subprocess.run(["gcc", "-O2", flag, "-c", "Objects/prog.c", "-o", "Objects/prog.o"], **run)
    subprocess.run(["gcc", flag, "Objects/prog.o", "-o", "prog"], **run)
    return (build / "prog").read_bytes()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A build directory after training and the optimised compile, and its saved profile."""
    build = tmp_path_factory.mktemp("trained")
    _compile(build, "-fprofile-generate")
    subprocess.run([str(build / "prog"), "100000"], check=True, capture_output=True)
    optimised = _compile(build, "-fprofile-use")
    profile = build.parent / "trained.pgo-profile.tar.zst"
    save_profile(build, profile, IDENTITY, mtime=315532800)
    return build, profile, optimised


def test_a_given_profile_compiles_the_same_bytes(trained, tmp_path: Path) -> None:
    _, profile, optimised = trained
    again = tmp_path / "elsewhere"
    again.mkdir()
    load_profile(profile, again, IDENTITY)
    assert (again / RUN_STAMP).is_file()  # CPython's make skips its training
    assert (again / "Objects" / "prog.gcda").is_file()
    assert _compile(again, "-fprofile-use") == optimised
    # without the counts gcc optimises otherwise: the profile is what made them equal
    assert _compile(tmp_path / "untrained", "-fprofile-use") != optimised


def test_the_profile_file_is_deterministic(trained, tmp_path: Path) -> None:
    build, profile, _ = trained
    copy = tmp_path / "copy.pgo-profile.tar.zst"
    save_profile(build, copy, IDENTITY, mtime=315532800)
    assert copy.read_bytes() == profile.read_bytes()
    assert read_identity(profile) == {**IDENTITY, "format": 1, "files": 1}


def test_a_profile_of_another_build_is_refused(trained, tmp_path: Path) -> None:
    _, profile, _ = trained
    with pytest.raises(ProfileMismatchError, match=r"compiler 'gcc 12\.2\.0'.*'clang 19'"):
        load_profile(profile, tmp_path, {**IDENTITY, "compiler": "clang 19"})
    assert not list(tmp_path.iterdir())


def test_a_build_without_counts_fails(tmp_path: Path) -> None:
    from relocpy.core.errors import BuildFailedError

    with pytest.raises(BuildFailedError, match=r"left no profile \(\.gcda, \.profclangd\)"):
        save_profile(tmp_path, tmp_path / "p.tar.zst", IDENTITY, mtime=0)
    # BOLT's counts alone are no compiler profile
    (tmp_path / "relocpy-static-python.fdata").write_text("1 main 0 1 main 4 0 7\n")
    with pytest.raises(BuildFailedError, match="left no profile"):
        save_profile(tmp_path, tmp_path / "p.tar.zst", IDENTITY, mtime=0)


def test_clang_and_bolt_counts_travel_in_the_profile(tmp_path: Path) -> None:
    """clang's merged counts and BOLT's come back where the build looks for them; the raw
    per-process files (.profclangr) and everything else stay out."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "code.profclangd").write_bytes(b"\xfflprofi\x81 merged")
    (build / "code-123.profclangr").write_bytes(b"raw")
    (build / "relocpy-static-python.fdata").write_text("1 main 0 1 main 4 0 7\n")
    (build / "python.o").write_bytes(b"object")
    identity = {**IDENTITY, "compiler": "Debian clang version 19.1.7", "bolt": True}
    profile = tmp_path / "p.tar.zst"
    save_profile(build, profile, identity, mtime=0)
    again = tmp_path / "again"
    again.mkdir()
    load_profile(profile, again, identity)
    assert sorted(p.name for p in again.iterdir()) == [
        "code.profclangd", "profile-run-stamp", "relocpy-static-python.fdata",
    ]  # fmt: skip
    assert (again / "code.profclangd").read_bytes() == b"\xfflprofi\x81 merged"
    # a build without BOLT takes the profile of one with it (the compiler's counts are the
    # same); a BOLT build refuses a profile that has no BOLT counts
    load_profile(profile, tmp_path / "plain", {k: v for k, v in identity.items() if k != "bolt"})
    plain = tmp_path / "plain.tar.zst"
    save_profile(tmp_path / "plain", plain, {k: v for k, v in identity.items() if k != "bolt"}, 0)
    with pytest.raises(ProfileMismatchError, match="bolt"):
        load_profile(plain, tmp_path / "third", identity)


def _profile_with(tmp_path: Path, name: str, member: tarfile.TarInfo, data: bytes) -> Path:
    import json

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        manifest = json.dumps({"format": 1, **IDENTITY}).encode()
        info = tarfile.TarInfo(f"{TOP}/{MANIFEST}")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    path = tmp_path / name
    path.write_bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))
    return path


@pytest.mark.parametrize("kind", ["not-a-gcda", "symlink", "escape"])
def test_a_profile_that_is_not_only_counts_is_refused(tmp_path: Path, kind: str) -> None:
    if kind == "symlink":
        member = tarfile.TarInfo(f"{TOP}/Objects/x.gcda")
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "escape":
        member = tarfile.TarInfo(f"{TOP}/../../evil.gcda")
        member.size = 4
    else:
        member = tarfile.TarInfo(f"{TOP}/Makefile")
        member.size = 4
    profile = _profile_with(tmp_path, "p.tar.zst", member, b"evil")
    build = tmp_path / "build"
    build.mkdir()
    with pytest.raises(BadArchiveError):
        load_profile(profile, build, IDENTITY)
    assert not list(build.iterdir()) and not (tmp_path / "evil.gcda").exists()


def test_a_file_that_is_no_profile_says_so(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pgo-profile.tar.zst"
    junk.write_bytes(b"not zstd at all")
    with pytest.raises(BadArchiveError, match=r"junk\.pgo-profile\.tar\.zst"):
        read_identity(junk)


@pytest.mark.real  # resolves the 3.13 source and checks the host toolchain
def test_build_refuses_a_profile_of_another_spec_before_building(trained, tmp_path: Path) -> None:
    from relocpy.pipeline import build

    _, profile, _ = trained  # trained on IDENTITY, not on this spec
    out = tmp_path / "out"
    expected = r"trained on another build: .*opt 'pgo\+lto' \(this build: 'pgo'\)"
    with pytest.raises(ProfileMismatchError, match=expected):
        build("3.13", out, opt="pgo", toolchain="gcc", libs="host", pgo_profile=profile)
    assert not out.exists()  # nothing built, nothing left
