"""Installing interpreters from a mirror: selection, download, atomic unpack, links.

A tree becomes visible under its final name only by one rename of a complete directory; a per-key
file lock makes concurrent installs of the same build share one download and one extraction.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from relocpy.core import home
from relocpy.core.children import dies_with_us
from relocpy.core.errors import RelocpyError, UnknownVersionError
from relocpy.core.progress import QuietReporter, Reporter
from relocpy.core.versions import matches, parse_request, version_key
from relocpy.install.selection import Machine, select

if TYPE_CHECKING:
    from relocpy.package.mirror import Mirror, MirrorEntry

# Downloading and unpacking (zstandard, urllib, the lock) are imported where they are used:
# `relocpy run` and `relocpy find` only read install records and must start fast.

RECORD = ".relocpy-install.json"
# The same facts on one line (version, build, variant), for `bin/relocpy`'s `run` fast path,
# which reads it without importing json.
RECORD_LINE = ".relocpy-install.line"


class InstallError(RelocpyError):
    """An install that could not complete; nothing of it is left behind."""


def install_key(entry: MirrorEntry) -> str:
    variant = "" if entry.variant == "default" else f"+{entry.variant}"  # freethreaded, static
    arch = entry.arch + (f"_{entry.cpu_level}" if entry.cpu_level else "")
    return f"cpython-{entry.version}{variant}+{entry.build}-linux-{arch}-{entry.libc}"


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
    """The install record of `root`, or None when it has none or a damaged one (a directory
    without a trustworthy record is not an installation)."""
    record = root / RECORD
    try:
        data = json.loads(record.read_text())
        fields = {k: data[k] for k in ("version", "build", "variant", "sha256")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(v, str) for v in fields.values()):
        return None
    return Installation(key=root.name, root=root, **fields)


def installed(pythons: Path | None = None) -> list[Installation]:
    """Every installed interpreter; an unreadable data directory is an error, not "none"."""
    pythons = pythons or home.pythons_dir()
    if not pythons.exists():
        return []
    try:
        children = sorted(pythons.iterdir())
    except OSError as exc:
        raise InstallError(
            f"cannot read the installed interpreters in {pythons}: {exc.strerror}",
            hint="check RELOCPY_HOME (or XDG_DATA_HOME): it must name a directory you can read",
        ) from exc
    found = [_read_record(p) for p in children if not p.name.startswith(".")]
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


@dataclass(frozen=True)
class LinkResult:
    """What happened to the `pythonX.Y` launcher in the bin directory."""

    path: Path | None
    problem: str | None = None  # why no launcher was made, and how to fix it


@dataclass(frozen=True)
class Installed:
    installation: Installation
    link: LinkResult | None


def install_entry(
    entry: MirrorEntry,
    source: Mirror,
    *,
    reporter: Reporter | None = None,
    links: bool = True,
) -> Installed:
    """Install `entry` from `source` (or find it installed already); add its launcher."""
    reporter = reporter or QuietReporter()
    key = install_key(entry)
    pythons = home.pythons_dir()
    done = _read_record(pythons / key)
    if done is None:
        done = _install_locked(entry, key, source, pythons, reporter)
    return Installed(done, link_interpreter(done) if links else None)


def install(
    request: str,
    mirror: str,
    *,
    reporter: Reporter | None = None,
    links: bool = True,
    machine: Machine | None = None,
) -> Installation:
    """Install the best build of `request` from `mirror`, or return the one already there.
    (`relocpy.install.chain` runs the whole chain: installed, mirrors, binary cache, a build.)"""
    from relocpy.package.mirror import Mirror

    source = Mirror(mirror)
    entry = select(request, source.entries(), machine or Machine.current())
    return install_entry(entry, source, reporter=reporter, links=links).installation


def _install_locked(
    entry: MirrorEntry, key: str, mirror: Mirror, pythons: Path, reporter: Reporter
) -> Installation:
    from relocpy.core.locks import file_lock

    locks = pythons / ".locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {locks}: {exc.strerror}") from exc
    final = pythons / key
    with file_lock(locks / f"{key}.lock"):
        done = _read_record(final)
        if done is not None:  # another process finished it while we waited
            return done
        _clean_stale(pythons, key)
        if final.exists():  # a directory without a record is not ours to trust
            shutil.rmtree(final)
        tmp = pythons / f".tmp-{key}-{os.getpid()}"
        try:
            tree = tmp / "python"
            mode = _unpacked_into(entry, mirror, reporter, tree)
            record = {
                "version": entry.version,
                "build": entry.build,
                "variant": entry.variant,
                "sha256": entry.sha256,
                "source": entry.name,
                "files": mode,
                "installed_at": int(time.time()),
            }
            (tree / RECORD).write_text(json.dumps(record, indent=2) + "\n")
            (tree / RECORD_LINE).write_text(f"{entry.version} {entry.build} {entry.variant}\n")
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


STORE_MANIFEST = "manifest.json"  # beside python/ in unpacked/<sha256>/: size, mtime per file


def _store_dir() -> Path:
    return home.cache_dir() / "unpacked"


def _file_stamps(tree: Path) -> dict[str, list[int]]:
    """Size and mtime (ns) of every regular file under `tree`, by relative path (one scandir
    per directory: this runs before every install)."""
    stamps: dict[str, list[int]] = {}
    pending = [("", str(tree))]
    while pending:
        prefix, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append((rel + "/", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    stamps[rel] = [info.st_size, info.st_mtime_ns]
    return stamps


def store_changes(done: Path) -> list[str]:
    """Files of the unpacked store `done` (`unpacked/<sha256>`) that differ from what was
    extracted (size or mtime), or are missing or added: installs are hard links into the
    store, so an in-place edit through one install lands here."""
    try:
        expected = json.loads((done / STORE_MANIFEST).read_text())
    except (OSError, ValueError):
        return ["(no manifest)"]
    actual = _file_stamps(done / "python")
    changed = [rel for rel, stamp in expected.items() if actual.get(rel) != stamp]
    return sorted(changed + [rel for rel in actual if rel not in expected])


def _drop_store(done: Path) -> None:
    """Take a store out of use at once (a rename), then delete it; installs keep their files."""
    trash = done.with_name(f".stale-{done.name}-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.rename(done, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _unpacked_into(entry: MirrorEntry, mirror: Mirror, reporter: Reporter, tree: Path) -> str:
    """Make `tree` from `unpacked/<sha256>/python` (see `_link_tree`; returns how): each archive
    is extracted once; installs link from it. A store whose files changed since (an edit
    through an install) is extracted again.

    An archive not downloaded yet is unpacked while it downloads (one pass: no copy to read
    again, no second pass to hash it); the tree counts only once the download's sha256 matches
    the index. The hostile-archive checks of `extract_stream` are the same either way."""
    from relocpy.core.archive import BadArchiveError, extract_archive, extract_stream
    from relocpy.core.tree import inspect_tree

    store = _store_dir()
    done = store / entry.sha256
    if (done / "python").is_dir():
        changed = store_changes(done)
        if not changed:
            return _link_tree(done / "python", tree)
        reporter.step(
            f"the unpacked copy of {entry.name} was modified ({', '.join(changed[:3])}"
            f"{' …' if len(changed) > 3 else ''}): unpacking it again"
        )
        _drop_store(done)
    store.mkdir(parents=True, exist_ok=True)
    for stale in [*store.glob(f".tmp-{entry.sha256}-*"), *store.glob(f".stale-{entry.sha256}-*")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed install (we hold the lock)
    tmp = store / f".tmp-{entry.sha256}-{os.getpid()}"
    downloads = _download_dir()
    archive = downloads / f"{entry.sha256}.tar.{entry.compression}"
    try:
        try:
            if archive.is_file():
                reporter.step(f"unpacking {entry.name}")
                extract_archive(archive, tmp, top="python")
            else:

                def unpack(raw: BinaryIO) -> None:
                    extract_stream(raw, tmp, entry.name, top="python")

                reporter.step(
                    f"downloading and unpacking {entry.name} ({entry.size / 2**20:.1f} MiB)"
                )
                if mirror.is_local:  # its file stays at hand: no copy in the cache
                    mirror.consume(entry, unpack, reporter)
                else:
                    downloads.mkdir(parents=True, exist_ok=True)
                    mirror.download(entry, archive, reporter, consume=unpack)
        except BadArchiveError:
            archive.unlink(missing_ok=True)  # do not keep a bad archive around
            raise
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # a partial download would only take space
                archive.with_name(archive.name + ".part").unlink(missing_ok=True)
                raise _disk_full(exc, store) from exc
            raise
        try:
            inspect_tree(tmp / "python")
        except RelocpyError as exc:
            archive.unlink(missing_ok=True)
            raise BadArchiveError(
                f"{entry.name} does not hold a CPython tree: {exc.message}"
            ) from None
        # the install's copy is made while this process reads the stamps for the manifest
        linking = _LinkJob(tmp / "python", tree)
        try:
            stamps = _file_stamps(tmp / "python")
        finally:
            mode = linking.wait()
        (tmp / STORE_MANIFEST).write_text(json.dumps(stamps))
        os.rename(tmp, done)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return mode


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


def reflinks_work(directory: Path) -> bool:
    """Whether the file system of `directory` clones files (btrfs, XFS, ...): found out once by
    cloning a probe file, and remembered in the directory."""
    remembered = directory / ".reflinks"
    try:
        return remembered.read_text().strip() == "yes"
    except OSError:
        pass
    import fcntl

    probe = directory / f".reflink-probe-{os.getpid()}"
    clone = probe.with_name(probe.name + "-clone")
    try:
        probe.write_bytes(b"relocpy")
        with probe.open("rb") as source, clone.open("wb") as target:
            try:  # what `cp --reflink=always` asks of the kernel, without a process
                fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
                works = True
            except OSError:
                works = False
        remembered.write_text("yes\n" if works else "no\n")
        return works
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
        clone.unlink(missing_ok=True)


def _link_tree(source: Path, target: Path) -> str:
    """Recreate `source` at `target`: reflink copies where the file system clones files (each
    install then owns its files), else hard links into the store (whose files `store_changes`
    checks before every install and uninstall), else copies. Returns which was used."""
    return _LinkJob(source, target).wait()


class _LinkJob:
    """`_link_tree`, started: GNU cp runs (in C, several times faster than `_copy_tree`) while
    the caller goes on; `wait` ends it, or copies in Python where cp could not (another file
    system, a cp without -l)."""

    def __init__(self, source: Path, target: Path) -> None:
        self.source, self.target = source, target
        target.parent.mkdir(parents=True, exist_ok=True)
        self._cp: subprocess.Popen[bytes] | None = None
        self.mode = "copy"
        if shutil.which("cp"):
            if reflinks_work(source.parent):
                self.mode, flags = "reflink", ["-a", "--reflink=always"]
            else:
                self.mode, flags = "hardlink", ["-al"]
            self._cp = subprocess.Popen(
                [*dies_with_us(), "cp", *flags, "--", str(source), str(target)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def wait(self) -> str:
        if self._cp is not None:
            if self._cp.wait() == 0:
                return self.mode
            shutil.rmtree(self.target, ignore_errors=True)
        _copy_tree(self.source, self.target)
        return "copy"


def _copy_tree(source: Path, target: Path) -> None:
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
                shutil.copy2(src, out / name)


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


def link_interpreter(installation: Installation, bin_dir: Path | None = None) -> LinkResult:
    """`bin_dir/pythonX.Y` runs this installation, unless a file relocpy did not make is there
    (then the result says so, and how to fix it)."""
    bin_dir = bin_dir or home.bin_dir()
    suffix = "t" if installation.variant == "freethreaded" else ""
    link = bin_dir / f"python{installation.short_version}{suffix}"
    try:
        bin_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return LinkResult(
            None,
            f"no launcher {link.name}: cannot use {bin_dir} as the bin directory"
            f" ({exc.strerror}); set RELOCPY_BIN_DIR to a directory",
        )
    if link.exists() or link.is_symlink():
        owner = launcher_target(link)
        if owner is None:  # never replace what the user or another tool put there
            return LinkResult(
                None,
                f"no launcher {link}: a file relocpy did not make is there; remove it, or set"
                f" RELOCPY_BIN_DIR to another directory (the interpreter itself is"
                f" {installation.executable})",
            )
        current = _read_record(home.pythons_dir() / owner)
        if current and (version_key(current.version), current.build) > (
            version_key(installation.version),
            installation.build,
        ):
            return LinkResult(link)  # a newer build already owns the name
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    try:
        tmp.write_text(_launcher_text(installation))
        tmp.chmod(0o755)
        os.replace(tmp, link)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return LinkResult(None, f"no launcher {link}: {exc.strerror}")
    return LinkResult(link)


def matching_installs(request: str) -> list[Installation]:
    """Installed interpreters that satisfy `request`, newest first."""
    wanted = parse_request(request)
    found = [i for i in installed() if matches(i.version, i.variant, wanted)]
    return sorted(found, key=lambda i: (version_key(i.version), i.build), reverse=True)


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
        # An edit made in place through this install changed the shared store too: a store
        # that no longer matches its archive is dropped, and the next install unpacks afresh.
        store = _store_dir() / victim.sha256
        if store.is_dir() and store_changes(store):
            _drop_store(store)
    return victims


def as_json(installation: Installation) -> dict[str, object]:
    data = asdict(installation)
    data["root"] = str(installation.root)
    data["executable"] = str(installation.executable)
    return data
