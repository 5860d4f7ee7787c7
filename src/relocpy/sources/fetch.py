"""Fetching pinned source files: a content-addressed cache in front of a list of mirrors.

Every file is checked against its sha256 pin before it enters the cache; nothing unverified is used.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

from relocpy.core import home
from relocpy.core.checksums import sha256_file
from relocpy.core.errors import ChecksumMismatchError, SourceUnavailableError
from relocpy.core.progress import QuietReporter, Reporter, append_log
from relocpy.core.versions import matches, parse_request, version_key
from relocpy.sources.catalog import SourcePin
from relocpy.sources.debian import AptSourceArchive

_CHUNK = 1 << 20


class Mirror(Protocol):
    """Somewhere a pinned file may be fetched from."""

    @property
    def name(self) -> str: ...

    def fetch(self, pin: SourcePin, workdir: Path, reporter: Reporter, log: Path | None) -> Path:
        """Place the file in `workdir` and return its path, or raise SourceUnavailableError."""


class SourceCache:
    """`<root>/sha256/<hex>/<filename>`: a file is stored under the hash it was verified against."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or home.downloads_dir()

    def path_for(self, pin: SourcePin) -> Path:
        return self.root / "sha256" / pin.sha256 / pin.filename

    def lookup(self, pin: SourcePin) -> Path | None:
        path = self.path_for(pin)
        return path if path.is_file() else None

    def store(self, pin: SourcePin, verified: Path) -> Path:
        """Move an already verified file into place atomically."""
        target = self.path_for(pin)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{os.getpid()}.part")
        shutil.move(str(verified), staging)
        os.replace(staging, target)
        return target


class LocalFileMirror:
    """A file the user already has (`relocpy fetch VERSION --file PATH`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return f"local file {self.path}"

    def fetch(self, pin: SourcePin, workdir: Path, reporter: Reporter, log: Path | None) -> Path:
        if not self.path.is_file():
            raise SourceUnavailableError(f"{self.path} does not exist")
        target = workdir / pin.filename
        shutil.copyfile(self.path, target)
        return target


class UrlMirror:
    """Plain HTTP(S)/file URLs from the pin (python.org for CPython); short timeout."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    @property
    def name(self) -> str:
        return "upstream URL"

    def fetch(self, pin: SourcePin, workdir: Path, reporter: Reporter, log: Path | None) -> Path:
        if not pin.urls:
            raise SourceUnavailableError("no upstream URL pinned")
        reasons = []
        for url in pin.urls:
            target = workdir / pin.filename
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as response:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    done = 0
                    with target.open("wb") as out:
                        while chunk := response.read(_CHUNK):
                            out.write(chunk)
                            done += len(chunk)
                            reporter.bytes_done(pin.filename, done, total)
                append_log(log, f"downloaded {url} ({done} bytes)")
                return target
            except (OSError, urllib.error.URLError) as exc:
                reason = getattr(exc, "reason", exc)
                append_log(log, f"{url}: {reason}")
                reasons.append(f"{url}: {reason}")
        raise SourceUnavailableError("; ".join(reasons))


class DebianMirror:
    """The `.orig` tarball of the Debian source package named in the pin."""

    def __init__(self, archive: AptSourceArchive | None = None) -> None:
        self._archive = archive

    @property
    def name(self) -> str:
        return "Debian source package"

    def fetch(self, pin: SourcePin, workdir: Path, reporter: Reporter, log: Path | None) -> Path:
        if not pin.debian_package:
            raise SourceUnavailableError("no Debian source package is known for this file")
        version = pin.debian_version or pin.version
        if pin.debian_kind == "deb" and pin.debian_pool:
            return download_from_pool(pin, workdir, reporter, log)
        if pin.debian_kind == "deb":
            reporter.detail(f"apt-get download {pin.debian_package}={version}")
            return download_deb(pin.debian_package, version, workdir, log)
        archive = self._archive or AptSourceArchive(home.cache_dir() / "apt")
        reporter.detail(f"apt-get source {pin.debian_package} (upstream {version})")
        return archive.download_orig(pin.debian_package, version, workdir, log=log)


def download_from_pool(pin: SourcePin, workdir: Path, reporter: Reporter, log: Path | None) -> Path:
    """A binary package by its pool path, from each Debian archive this machine's apt names
    in turn (a package of another CPU, which apt here does not list)."""
    from relocpy.sources.debian import configured_archives

    archives = configured_archives()
    if not archives:
        raise SourceUnavailableError("this machine's apt configuration names no Debian archive")
    urls = tuple(f"{a.uri.rstrip('/')}/{pin.debian_pool}" for a in archives)
    return UrlMirror(timeout=30.0).fetch(
        dataclasses.replace(pin, urls=urls), workdir, reporter, log
    )


def download_deb(package: str, version: str, workdir: Path, log: Path | None) -> Path:
    """`apt-get download PACKAGE=VERSION` with the machine's own apt configuration (read only)."""
    result = subprocess.run(
        ["apt-get", "download", f"{package}={version}"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    append_log(log, f"$ apt-get download {package}={version}\n{result.stdout}{result.stderr}")
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        errors = [line for line in result.stderr.splitlines() if line.startswith("E:")]
        reason = errors[0][2:].strip() if errors else f"exit status {result.returncode}"
        raise SourceUnavailableError(f"apt-get download {package}={version} failed: {reason}")
    return debs[0]


def default_mirrors() -> list[Mirror]:
    return [UrlMirror(), DebianMirror()]


def fetch(
    pin: SourcePin,
    mirrors: list[Mirror] | None = None,
    cache: SourceCache | None = None,
    reporter: Reporter | None = None,
    log: Path | None = None,
) -> Path:
    """Return a cached, verified copy of `pin`, trying the cache and then each mirror in order."""
    cache = cache or SourceCache()
    reporter = reporter or QuietReporter()
    mirrors = default_mirrors() if mirrors is None else mirrors
    cached = cache.lookup(pin)
    if cached is not None:
        actual = sha256_file(cached)
        if actual == pin.sha256:
            return cached
        cached.unlink()  # a damaged cache entry is dropped and fetched again
    cache.root.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        reporter.step(f"fetching {pin.filename} from {mirror.name}")
        with tempfile.TemporaryDirectory(dir=cache.root, prefix=".fetch-") as tmp:
            try:
                path = mirror.fetch(pin, Path(tmp), reporter, log)
            except SourceUnavailableError as exc:
                failures.append(f"{mirror.name}: {exc.message}")
                continue
            actual = sha256_file(path)
            if actual != pin.sha256:
                raise ChecksumMismatchError(
                    f"{pin.filename} from {mirror.name} has sha256 {actual}, "
                    f"but the pin is {pin.sha256}",
                    hint="the mirror serves a different file; it was not used",
                )
            return cache.store(pin, path)
    raise SourceUnavailableError(
        f"cannot fetch {pin.filename} ({pin.name} {pin.version}): " + "; ".join(failures),
        hint="seed the cache with `relocpy fetch VERSION --file PATH`, or check the network",
    )


# ---- which mirror serves a release here -------------------------------------------------------

PROBE_MAX_AGE = 24 * 3600
_PYTHON_ORG_PROBE = "https://www.python.org/ftp/python/"


def url_answers(url: str, timeout: float = 5.0) -> bool:
    """Whether a HEAD request for `url` succeeds (2xx) within `timeout`."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= getattr(response, "status", 200) < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _probe(pins: list[SourcePin], archive: AptSourceArchive) -> dict[str, str]:
    python_org = url_answers(_PYTHON_ORG_PROBE, timeout=3)
    served: dict[str, str] = {}
    listed: dict[str, list[str]] = {}
    try:
        archive.refresh_index()
    except SourceUnavailableError:
        archive = None  # type: ignore[assignment]
    for pin in pins:
        if python_org:
            served[pin.version] = "python.org"
            continue
        if archive is None or not pin.debian_package:
            continue
        if pin.debian_package not in listed:
            listed[pin.debian_package] = archive.versions(pin.debian_package)
        for debian_version in listed[pin.debian_package]:
            for orig in archive.orig_files(pin.debian_package, debian_version):
                if orig.sha256 == pin.sha256 and url_answers(orig.url):
                    served[pin.version] = f"Debian {pin.debian_package} {debian_version}"
    return served


def where_served(
    pins: list[SourcePin], cache: SourceCache | None = None, reporter: Reporter | None = None
) -> dict[str, str]:
    """version -> the mirror that serves its tarball here: "cache", "python.org", or
    "Debian <package> <version>" when the archive lists it *and* the file answers (a listing
    alone proves nothing: some answer 404). Probes are remembered for a day; `reporter` hears
    when they run (several seconds)."""
    import json
    import time

    cache = cache or SourceCache()
    record = home.cache_dir() / "source-probes.json"
    probes: dict[str, str] = {}
    try:
        data = json.loads(record.read_text())
        if time.time() - float(data["time"]) < PROBE_MAX_AGE and isinstance(data["served"], dict):
            probes = {str(k): str(v) for k, v in data["served"].items()}
        else:
            raise ValueError("stale")
    except (OSError, ValueError, KeyError, TypeError):
        from relocpy.sources.catalog import load_cpython_pins

        # every release at once, whatever was asked: the record stands for the whole catalog
        if reporter is not None:
            reporter.step(
                "finding which CPython source tarballs this machine can fetch"
                " (python.org, Debian's source packages; remembered for a day)"
            )
        probes = _probe(load_cpython_pins(), AptSourceArchive(home.cache_dir() / "apt"))
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f".{record.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"time": time.time(), "served": probes}))
        os.replace(tmp, record)
    wanted = {pin.version for pin in pins}
    served = {version: where for version, where in probes.items() if version in wanted}
    for pin in pins:
        if cache.lookup(pin) is not None:
            served[pin.version] = "cache"
    return served


def resolve_reachable(request: str, reporter: Reporter | None = None) -> SourcePin:
    """The release to build for `request`: the newest pinned one that matches, unless this
    machine cannot get its source and an older matching one it can (a cached tarball, or a
    mirror that answers). `3.13` then builds the newest 3.13 there is *here*; an exact
    version (`3.13.18`) is always taken as asked, and its fetch names what is missing."""
    from relocpy.sources.catalog import load_cpython_pins, resolve_cpython

    newest = resolve_cpython(request)
    wanted = parse_request(request.strip().removeprefix("cpython-"))
    pins = sorted(
        (p for p in load_cpython_pins() if matches(p.version, "default", wanted)),
        key=lambda p: version_key(p.version),
        reverse=True,
    )
    if len(wanted.version) == 3 or len(pins) == 1 or SourceCache().lookup(newest):
        return newest
    served = where_served(pins, reporter=reporter)
    for pin in pins:
        if pin.version in served:
            if pin is not newest and reporter is not None:
                reporter.step(
                    f"CPython {newest.version}, the newest {request}, cannot be fetched here"
                    f" (no mirror serves {newest.filename}); taking {pin.version}, the newest"
                    f" {request} whose source this machine can get ({served[pin.version]})"
                )
            return pin
    return newest
