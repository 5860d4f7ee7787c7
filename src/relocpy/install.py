"""Installing interpreters from a mirror: selection, download, atomic unpack, links.

A tree becomes visible under its final name only by one rename of a complete directory; a per-key
file lock makes concurrent installs of the same build share one download and one extraction.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relocpy import home
from relocpy.errors import RelocpyError, UnknownVersionError
from relocpy.policy import host_glibc
from relocpy.progress import QuietReporter, Reporter

if TYPE_CHECKING:
    from relocpy.mirror import Mirror, MirrorEntry

# Downloading and unpacking (zstandard, urllib, filelock) are imported where they are used:
# `relocpy run` and `relocpy find` only read install records and must start fast.

RECORD = ".relocpy-install.json"
_REQUEST = re.compile(r"^(?:cpython[@-])?(?P<version>\d+(?:\.\d+){0,2})(?P<ft>t|\+freethreaded)?$")


class InstallError(RelocpyError):
    """An install that could not complete; nothing of it is left behind."""


@dataclass(frozen=True)
class Machine:
    arch: str
    libc: str
    glibc: tuple[int, int]

    @classmethod
    def current(cls) -> Machine:
        return cls(platform.machine() or "x86_64", "gnu", host_glibc())


@dataclass(frozen=True)
class Request:
    version: tuple[int, ...]
    freethreaded: bool = False


def parse_request(text: str) -> Request:
    """`3`, `3.13`, `3.13.5`, `cpython@3.13`, `3.13t` (free-threaded)."""
    match = _REQUEST.match(text.strip())
    if not match:
        raise UnknownVersionError(
            f"cannot understand the version request {text!r}",
            hint="use 3, 3.13, 3.13.5, cpython@3.13 or 3.13t",
        )
    version = tuple(int(p) for p in match.group("version").split("."))
    return Request(version, bool(match.group("ft")))


def _matches(entry: MirrorEntry, request: Request) -> bool:
    wanted_variant = "freethreaded" if request.freethreaded else "default"
    prefix = entry.version_tuple[: len(request.version)]
    return prefix == request.version and entry.variant == wanted_variant


def _runs_on(entry: MirrorEntry, machine: Machine) -> bool:
    if entry.arch != machine.arch or entry.libc != machine.libc:
        return False
    if entry.glibc_floor:
        floor = tuple(int(p) for p in entry.glibc_floor.split(".")[:2])
        return floor <= machine.glibc
    return True


def select(text: str, entries: list[MirrorEntry], machine: Machine) -> MirrorEntry:
    """The newest build matching the request that runs on `machine` (zst preferred)."""
    request = parse_request(text)
    candidates = [e for e in entries if e.flavour == "install_only" and _matches(e, request)]
    runnable = [e for e in candidates if _runs_on(e, machine)]
    if not runnable:
        available = sorted({e.version for e in entries if _runs_on(e, machine)})
        why = " (builds exist, but none for this machine)" if candidates else ""
        raise UnknownVersionError(
            f"no build of {text!r} on the mirror{why}; available: "
            + (", ".join(available) or "none"),
        )
    return max(runnable, key=lambda e: (e.version_tuple, e.build, e.compression == "zst"))


def install_key(entry: MirrorEntry) -> str:
    variant = "+freethreaded" if entry.variant == "freethreaded" else ""
    return f"cpython-{entry.version}{variant}+{entry.build}-linux-{entry.arch}-{entry.libc}"


@dataclass(frozen=True)
class Installation:
    key: str
    root: Path
    version: str
    build: str
    variant: str
    sha256: str

    @property
    def short_version(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def executable(self) -> Path:
        return self.root / "bin" / f"python{self.short_version}"


def _read_record(root: Path) -> Installation | None:
    record = root / RECORD
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
        return Installation(
            key=root.name,
            root=root,
            version=data["version"],
            build=data["build"],
            variant=data["variant"],
            sha256=data["sha256"],
        )
    except (ValueError, KeyError):
        return None


def installed(pythons: Path | None = None) -> list[Installation]:
    pythons = pythons or home.pythons_dir()
    if not pythons.is_dir():
        return []
    found = [_read_record(p) for p in sorted(pythons.iterdir()) if not p.name.startswith(".")]
    return [i for i in found if i is not None]


def _download_dir() -> Path:
    return home.cache_dir() / "archives"


def _disk_full(exc: OSError, where: Path) -> InstallError:
    return InstallError(
        f"no space left on the device holding {where}",
        hint="free some space or point RELOCPY_HOME at a larger disk",
    )


def _clean_stale(pythons: Path, key: str) -> None:
    """Remove what an interrupted install of `key` left (only ever called under its lock)."""
    for stale in pythons.glob(f".tmp-{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def install(
    request: str,
    mirror: str,
    *,
    reporter: Reporter | None = None,
    links: bool = True,
    machine: Machine | None = None,
) -> Installation:
    """Install the best build of `request` from `mirror`, or return the one already there."""
    from relocpy.mirror import Mirror

    reporter = reporter or QuietReporter()
    source = Mirror(mirror)
    entry = select(request, source.entries(), machine or Machine.current())
    key = install_key(entry)
    pythons = home.pythons_dir()
    final = pythons / key
    done = _read_record(final)
    if done is None:
        done = _install_locked(entry, key, source, pythons, reporter)
    if links:
        link_interpreter(done)
    return done


def _install_locked(
    entry: MirrorEntry, key: str, mirror: Mirror, pythons: Path, reporter: Reporter
) -> Installation:
    from filelock import FileLock

    locks = pythons / ".locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {locks}: {exc.strerror}") from exc
    final = pythons / key
    with FileLock(str(locks / f"{key}.lock")):
        done = _read_record(final)
        if done is not None:  # another process finished it while we waited
            return done
        _clean_stale(pythons, key)
        if final.exists():  # a directory without a record is not ours to trust
            shutil.rmtree(final)
        archive = _fetch_archive(entry, mirror, reporter)
        tmp = pythons / f".tmp-{key}-{os.getpid()}"
        try:
            unpacked = _unpacked(entry, archive, reporter)
            tree = tmp / "python"
            _link_tree(unpacked, tree)
            record = {
                "version": entry.version,
                "build": entry.build,
                "variant": entry.variant,
                "sha256": entry.sha256,
                "source": entry.name,
                "installed_at": int(time.time()),
            }
            (tree / RECORD).write_text(json.dumps(record, indent=2) + "\n")
            os.rename(tree, final)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise _disk_full(exc, pythons) from exc
            raise InstallError(f"installing {entry.name} failed: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    reporter.step(f"installed {key}")
    result = _read_record(final)
    assert result is not None
    return result


def _unpacked(entry: MirrorEntry, archive: Path, reporter: Reporter) -> Path:
    """`unpacked/<sha256>/python`: each archive is extracted once; installs hardlink from it."""
    from relocpy.archive import BadArchiveError, extract_archive
    from relocpy.tree import inspect_tree

    store = home.cache_dir() / "unpacked"
    done = store / entry.sha256
    if (done / "python").is_dir():
        return done / "python"
    store.mkdir(parents=True, exist_ok=True)
    for stale in store.glob(f".tmp-{entry.sha256}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed install (we hold the lock)
    tmp = store / f".tmp-{entry.sha256}-{os.getpid()}"
    try:
        reporter.step(f"unpacking {entry.name}")
        try:
            extract_archive(archive, tmp)
        except BadArchiveError:
            archive.unlink(missing_ok=True)  # do not keep a bad archive around
            raise
        if not (tmp / "python").is_dir():
            archive.unlink(missing_ok=True)
            raise BadArchiveError(f"{entry.name} has no top-level python/ directory")
        inspect_tree(tmp / "python")
        os.rename(tmp, done)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done / "python"


def _link_tree(source: Path, target: Path) -> None:
    """Recreate `source` at `target` with hard links (copies where linking is impossible)."""
    # GNU cp does it in C, about twice as fast as the loop below, which stays as the fallback
    # (another filesystem, a cp without -l).
    if shutil.which("cp"):
        done = subprocess.run(
            ["cp", "-al", "--", str(source), str(target)], capture_output=True, check=False
        )
        if done.returncode == 0:
            return
        shutil.rmtree(target, ignore_errors=True)
    for dirpath, dirnames, filenames in os.walk(source):
        rel = os.path.relpath(dirpath, source)
        out = target if rel == "." else target / rel
        out.mkdir(parents=True, exist_ok=True)
        for name in [*dirnames, *filenames]:
            src = os.path.join(dirpath, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), out / name)
                if name in dirnames:
                    dirnames.remove(name)
            elif name in filenames:
                try:
                    os.link(src, out / name)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                        raise
                    shutil.copy2(src, out / name)


def _fetch_archive(entry: MirrorEntry, mirror: Mirror, reporter: Reporter) -> Path:
    downloads = _download_dir()
    downloads.mkdir(parents=True, exist_ok=True)
    target = downloads / f"{entry.sha256}.tar.{entry.compression}"
    if target.is_file():
        return target
    reporter.step(f"downloading {entry.name} ({entry.size / 2**20:.1f} MiB)")
    try:
        return mirror.download(entry, target, reporter)
    except OSError as exc:
        target.with_name(target.name + ".part").unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise _disk_full(exc, downloads) from exc
        raise


# ---- launchers in the bin directory ---------------------------------------------------------
# A launcher is a two-line sh script, not a symlink: CPython's venv records the directory of the
# executable it was started as, and a venv made from a symlink in ~/.local/bin cannot find its
# standard library. Through `exec`, sys.executable is the real interpreter inside the tree.

_LAUNCHER_MARK = "# relocpy launcher for "


def _launcher_text(installation: Installation) -> str:
    return (
        f"#!/bin/sh\n{_LAUNCHER_MARK}{installation.key}\n"
        f'exec {shlex.quote(str(installation.executable))} "$@"\n'
    )


def launcher_target(path: Path) -> str | None:
    """The install key a relocpy launcher runs, or None if `path` is not one."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 4096:
            return None
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    if len(lines) >= 2 and lines[0] == "#!/bin/sh" and lines[1].startswith(_LAUNCHER_MARK):
        return lines[1][len(_LAUNCHER_MARK) :]
    return None


def link_interpreter(installation: Installation, bin_dir: Path | None = None) -> Path | None:
    """`bin_dir/pythonX.Y` runs this installation, unless a file relocpy did not make is there."""
    bin_dir = bin_dir or home.bin_dir()
    suffix = "t" if installation.variant == "freethreaded" else ""
    link = bin_dir / f"python{installation.short_version}{suffix}"
    try:
        bin_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if link.exists() or link.is_symlink():
        owner = launcher_target(link)
        if owner is None:
            return None  # never replace what the user or another tool put there
        current = _read_record(home.pythons_dir() / owner)
        if current and (current.version, current.build) > (
            installation.version,
            installation.build,
        ):
            return link  # a newer build already owns the name
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.write_text(_launcher_text(installation))
    tmp.chmod(0o755)
    os.replace(tmp, link)
    return link


def matching_installs(request: str) -> list[Installation]:
    """Installed interpreters that satisfy `request`, newest first."""
    wanted = parse_request(request)

    def version(i: Installation) -> tuple[int, ...]:
        return tuple(int(p) for p in i.version.split("."))

    matches = [
        i
        for i in installed()
        if version(i)[: len(wanted.version)] == wanted.version
        and (i.variant == "freethreaded") == wanted.freethreaded
    ]
    return sorted(matches, key=lambda i: (version(i), i.build), reverse=True)


def find(request: str) -> Installation:
    """The newest installed interpreter matching `request`."""
    matches = matching_installs(request)
    if not matches:
        have = ", ".join(i.version for i in installed()) or "none"
        raise UnknownVersionError(
            f"no installed interpreter matches {request!r}; installed: {have}",
            hint=f"relocpy install {request}",
        )
    return matches[0]


def uninstall(request: str) -> list[Installation]:
    """Remove every installed build matching `request` (and the links relocpy made to them)."""
    victims = matching_installs(request)
    if not victims:
        raise UnknownVersionError(f"no installed interpreter matches {request!r}")
    pythons = home.pythons_dir()
    bin_dir = home.bin_dir()
    for victim in victims:
        if bin_dir.is_dir():
            for link in bin_dir.iterdir():
                if launcher_target(link) == victim.key:
                    link.unlink()
        trash = pythons / f".tmp-{victim.key}-uninstall-{os.getpid()}"
        os.rename(victim.root, trash)  # the name disappears atomically
        shutil.rmtree(trash, ignore_errors=True)
    return victims


def as_json(installation: Installation) -> dict[str, object]:
    data = asdict(installation)
    data["root"] = str(installation.root)
    data["executable"] = str(installation.executable)
    return data
