"""A profile-guided build's profile as a file: saved after the training, reused instead of it.

gcc optimises by the counts its training run wrote (CPython's test suite), and two training
runs count differently: timing-bound loops, threads, hash seeds and addresses all change how
often a branch runs. So two PGO builds of one spec differ in their code. Given the profile of
an earlier build, a build skips the instrumented build and the training and compiles with
those counts: its bytes are then a function of the source, the toolchain and that profile, and
a rebuild can check a release byte for byte.

The file is a zstd tar of the counts in the build directory, at their paths relative to it
(where the compiler looks): gcc's `.gcda` per object, or clang's merged `code.profclangd`, and
with BOLT the executable's merged `.fdata`. A manifest names what they were trained on; a
profile for another version, compiler or configuration is refused, since the compiler would
only warn and optimise by nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import zstandard

from relocpy.core.archive import (
    UNREADABLE,
    BadArchiveError,
    extract_archive,
    read_member,
    write_tar,
)
from relocpy.core.errors import BuildFailedError, RelocpyError

SUFFIX = ".pgo-profile.tar.zst"
TOP = "pgo-profile"
MANIFEST = "relocpy-pgo-profile.json"
FORMAT = 1
# CPython's Makefile: the stamp its profile-opt target waits for, written after the training
RUN_STAMP = "profile-run-stamp"
# What a profile holds: gcc's per-object counts, clang's merged counts (CPython's Makefile
# merges every process's .profclangr into code.profclangd), BOLT's merged counts.
COUNT_SUFFIXES = (".gcda", ".profclangd", ".fdata")


class ProfileMismatchError(RelocpyError):
    """A profile trained on another version, compiler or configuration."""


def save_profile(build_dir: Path, dest: Path, identity: dict[str, object], mtime: int) -> str:
    """Write the `.gcda` files under `build_dir` and `identity` (what must match for reuse) to
    `dest`, deterministically; the sha256 of the file. A build that left no profile fails."""
    counts = sorted(
        p
        for p in build_dir.rglob("*")
        if p.suffix in COUNT_SUFFIXES and p.is_file() and not p.is_symlink()
    )
    if not any(p.suffix != ".fdata" for p in counts):
        raise BuildFailedError(
            f"the profile-guided build left no profile ({', '.join(COUNT_SUFFIXES[:2])})"
            f" in {build_dir}",
            hint="the training run wrote nothing: its output in the build log says why",
        )
    with tempfile.TemporaryDirectory(prefix="relocpy-profile-", dir=dest.parent) as tmp:
        staging = Path(tmp) / TOP
        staging.mkdir()
        manifest = {"format": FORMAT, **identity, "files": len(counts)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        for path in counts:
            target = staging / path.relative_to(build_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        buffer = io.BytesIO()
        write_tar(buffer, staging, TOP, lambda _rel: True, mtime)
    data = zstandard.ZstdCompressor(level=19, threads=-1).compress(buffer.getvalue())
    tmp_dest = dest.with_name(dest.name + ".part")
    tmp_dest.write_bytes(data)
    tmp_dest.replace(dest)
    return hashlib.sha256(data).hexdigest()


def read_identity(path: Path) -> dict[str, object]:
    """The manifest of a profile file (what it was trained on)."""
    try:
        raw = read_member(path, f"{TOP}/{MANIFEST}")
    except UNREADABLE as exc:
        raise BadArchiveError(f"{path.name} is not a readable profile: {exc}") from exc
    if raw is None:
        raise BadArchiveError(
            f"{path.name} is not a relocpy PGO profile: it has no {TOP}/{MANIFEST}"
        )
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise BadArchiveError(f"{path.name}: its {MANIFEST} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadArchiveError(f"{path.name}: a profile of an unknown format")
    return manifest


def check_identity(path: Path, identity: dict[str, object]) -> None:
    """Refuse profile `path` unless it was trained on `identity` (every field equal)."""
    manifest = read_identity(path)
    differs = [
        f"{key} {manifest.get(key)!r} (this build: {value!r})"
        for key, value in identity.items()
        if manifest.get(key) != value
    ]
    if differs:
        raise ProfileMismatchError(
            f"{path.name} was trained on another build: {'; '.join(differs)}",
            hint="give the profile that the build of this exact spec wrote, or drop"
            " --pgo-profile to train one",
        )


def load_profile(path: Path, build_dir: Path, identity: dict[str, object]) -> None:
    """Put the counts of profile `path` into the configured `build_dir` and mark the training
    done, so CPython's `make` goes straight to the optimised build. The profile must have
    been trained on `identity`; anything else in it is refused (see core.archive)."""
    check_identity(path, identity)
    with tempfile.TemporaryDirectory(prefix="relocpy-profile-") as tmp:
        unpacked = Path(tmp) / "out"
        extract_archive(path, unpacked, top=TOP)
        root = unpacked / TOP
        for member in sorted(root.rglob("*")):
            rel = member.relative_to(root)
            if member.is_dir() or rel.as_posix() == MANIFEST:
                continue
            if member.suffix not in COUNT_SUFFIXES or member.is_symlink():
                raise BadArchiveError(f"{path.name}: {rel} is not a profile file")
            target = build_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(member, target)
    (build_dir / RUN_STAMP).touch()
