"""Debian source packages as a mirror, through a private apt configuration.

The machine's configured Debian archive URIs are read (never edited); relocpy writes its own
sources list with `deb-src` lines, its own lists and cache dirs, and runs `apt-get source`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from relocpy.core.errors import SourceUnavailableError, ToolFailedError

# Suites whose Sources indices relocpy asks for: the releases that carry the CPython tarballs.
SOURCE_SUITES = ("bullseye", "bookworm", "trixie", "sid")
_DEBIAN_CODENAMES = {
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "unstable",
    "testing",
    "stable",
    "oldstable",
}
_INDEX_MAX_AGE = 24 * 3600


@dataclass(frozen=True)
class ArchiveEntry:
    """One configured Debian archive: the base URI and the keyring that signs it."""

    uri: str
    signed_by: str | None = None


def _is_debian_archive_suite(suite: str) -> bool:
    base, _, pocket = suite.partition("-")
    # The security archive has its own layout and carries no tarballs we want.
    return base in _DEBIAN_CODENAMES and pocket != "security"


def parse_one_line_sources(text: str) -> list[ArchiveEntry]:
    """Entries of a classic `sources.list` (`deb [opts] URI SUITE COMPONENTS...`)."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith(("deb ", "deb-src ", "deb\t")):
            continue
        options: dict[str, str] = {}
        match = re.match(r"^(deb(?:-src)?)\s+\[([^\]]*)\]\s+(.*)$", line)
        if match:
            for option in match.group(2).split():
                key, _, value = option.partition("=")
                options[key] = value
            rest = match.group(3).split()
        else:
            rest = line.split()[1:]
        if len(rest) < 2 or not _is_debian_archive_suite(rest[1]):
            continue
        entries.append(ArchiveEntry(rest[0].rstrip("/"), options.get("signed-by")))
    return entries


def parse_deb822_sources(text: str) -> list[ArchiveEntry]:
    """Entries of a deb822 `.sources` file (stanzas of `Key: value` fields)."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key is not None:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        if not any(_is_debian_archive_suite(suite) for suite in suites):
            continue
        signed_by = fields.get("signed-by") or None
        if signed_by and not signed_by.startswith("/"):
            signed_by = None  # an inline key block; apt's default keyrings still apply
        for uri in fields.get("uris", "").split():
            entries.append(ArchiveEntry(uri.rstrip("/"), signed_by))
    return entries


def configured_archives(etc_apt: Path = Path("/etc/apt")) -> list[ArchiveEntry]:
    """The Debian archives this machine's apt is configured with, in order, deduplicated."""
    found: list[ArchiveEntry] = []
    main_list = etc_apt / "sources.list"
    if main_list.is_file():
        found += parse_one_line_sources(main_list.read_text(errors="replace"))
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found += parse_one_line_sources(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                found += parse_deb822_sources(path.read_text(errors="replace"))
    unique: dict[str, ArchiveEntry] = {}
    for entry in found:
        unique.setdefault(entry.uri, entry)
    return list(unique.values())


def render_sources_list(
    archives: Iterable[ArchiveEntry], suites: Iterable[str] = SOURCE_SUITES
) -> str:
    """The private sources list: one `deb-src` line per archive and suite."""
    lines = []
    for archive in archives:
        option = f"[signed-by={archive.signed_by}] " if archive.signed_by else ""
        lines += [f"deb-src {option}{archive.uri} {suite} main" for suite in suites]
    return "\n".join(lines) + "\n"


def upstream_version(debian_version: str) -> str:
    """`1:3.13.5-2+deb13u5` -> `3.13.5` (epoch and Debian revision dropped)."""
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def parse_showsrc_versions(text: str, package: str) -> list[str]:
    """Debian versions of `package` listed by `apt-cache showsrc`."""
    versions = []
    current = None
    for line in text.splitlines():
        if line.startswith("Package:"):
            current = line.split(":", 1)[1].strip()
        elif line.startswith("Version:") and current == package:
            versions.append(line.split(":", 1)[1].strip())
    return versions


@dataclass(frozen=True)
class OrigFile:
    url: str
    name: str
    size: int
    sha256: str


_PRINT_URI = re.compile(
    r"^'(?P<url>[^']+)' (?P<name>\S+) (?P<size>\d+) SHA256:(?P<sha>[0-9a-f]{64})$"
)


def parse_print_uris(text: str) -> list[OrigFile]:
    """The files `apt-get source --print-uris` lists."""
    found = []
    for line in text.splitlines():
        match = _PRINT_URI.match(line.strip())
        if match:
            found.append(OrigFile(match["url"], match["name"], int(match["size"]), match["sha"]))
    return found


class AptSourceArchive:
    """`apt-get source --download-only` under a private configuration rooted at `state_dir`."""

    def __init__(self, state_dir: Path, archives: list[ArchiveEntry] | None = None) -> None:
        self.state_dir = state_dir
        self.archives = configured_archives() if archives is None else archives

    @property
    def name(self) -> str:
        return "Debian source packages"

    def _options(self) -> list[str]:
        d = self.state_dir
        return [
            "-o",
            f"Dir::Etc::SourceList={d / 'sources.list'}",
            "-o",
            "Dir::Etc::SourceParts=/nonexistent",
            "-o",
            f"Dir::State::Lists={d / 'lists'}",
            "-o",
            f"Dir::State::status={d / 'status'}",
            "-o",
            f"Dir::Cache={d / 'cache'}",
            "-o",
            "Dir::Etc::PreferencesParts=/nonexistent",
            "-o",
            "Dir::Etc::Preferences=/nonexistent",
            "-o",
            "APT::Sandbox::User=root",
            "-o",
            "Acquire::Retries=1",
        ]

    def _check_usable(self) -> None:
        if shutil.which("apt-get") is None:
            raise SourceUnavailableError("apt-get is not installed: no Debian source mirror here")
        if not self.archives:
            raise SourceUnavailableError(
                "no Debian archive is configured in /etc/apt: no Debian source mirror here"
            )

    def refresh_index(self, log: Path | None = None) -> None:
        """Write the private configuration and fetch the Sources indices (at most daily)."""
        self._check_usable()
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.state_dir / "status").touch()
        sources = render_sources_list(self.archives)
        sources_path = self.state_dir / "sources.list"
        stamp = self.state_dir / "updated.stamp"
        with FileLock(str(self.state_dir / ".lock")):
            fresh = (
                stamp.is_file()
                and sources_path.is_file()
                and sources_path.read_text() == sources
                and time.time() - stamp.stat().st_mtime < _INDEX_MAX_AGE
            )
            if fresh:
                return
            sources_path.write_text(sources)
            self._run(["apt-get", *self._options(), "update"], log=log)
            stamp.touch()

    def versions(self, package: str) -> list[str]:
        result = subprocess.run(
            ["apt-cache", *self._options(), "showsrc", package],
            capture_output=True,
            text=True,
            check=False,
        )
        return parse_showsrc_versions(result.stdout, package)

    def orig_files(self, package: str, debian_version: str) -> list[OrigFile]:
        """The `.orig` tarball(s) the source package lists: URL, name, size and sha256 (from
        its `.dsc`, without downloading anything)."""
        result = subprocess.run(
            ["apt-get", *self._options(), "source", "--print-uris", f"{package}={debian_version}"],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.state_dir,
            env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        return [f for f in parse_print_uris(result.stdout) if ".orig.tar." in f.name]

    def download_orig(
        self, package: str, version: str, dest: Path, log: Path | None = None
    ) -> Path:
        """Fetch the `.orig` tarball of `package` at upstream `version` into `dest`."""
        self.refresh_index(log=log)
        candidates = [v for v in self.versions(package) if upstream_version(v) == version]
        if not candidates:
            raise SourceUnavailableError(
                f"Debian's archive lists no source package {package} of version {version}"
            )
        failures = []
        for debian_version in candidates:
            dest.mkdir(parents=True, exist_ok=True)
            try:
                self._run(
                    [
                        "apt-get",
                        *self._options(),
                        "source",
                        "--download-only",
                        f"{package}={debian_version}",
                    ],
                    cwd=dest,
                    log=log,
                )
            except SourceUnavailableError as exc:
                failures.append(f"{package}={debian_version}: {exc.message}")
                continue
            origs = sorted(dest.glob(f"{package}_{version}.orig.tar.*"))
            origs = [path for path in origs if not path.name.endswith(".asc")]
            if origs:
                return origs[0]
            failures.append(f"{package}={debian_version}: no .orig tarball in the source package")
        raise SourceUnavailableError("; ".join(failures))

    def _run(self, cmd: list[str], cwd: Path | None = None, log: Path | None = None) -> None:
        result = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        if log is not None:
            with log.open("a") as handle:
                handle.write(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if line.startswith("E:")]
            reason = errors[0][2:].strip() if errors else f"exit status {result.returncode}"
            raise SourceUnavailableError(f"apt-get failed: {reason}")


def unpack_deb(deb: Path, into: Path) -> None:
    """A Debian binary package's files under `into` (`dpkg-deb -x`)."""
    into.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["dpkg-deb", "-x", str(deb), str(into)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ToolFailedError(
            f"cannot unpack {deb.name}: {result.stderr.strip()}",
            hint="dpkg-deb comes with dpkg (apt-get install -y dpkg)",
        )
