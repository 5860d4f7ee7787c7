from __future__ import annotations

from pathlib import Path

import pytest

from relocpy.core.errors import SourceUnavailableError
from relocpy.sources.debian import (
    AptSourceArchive,
    ArchiveEntry,
    configured_archives,
    parse_deb822_sources,
    parse_one_line_sources,
    parse_showsrc_versions,
    render_sources_list,
    upstream_version,
)

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://vendor.example/apt
Suites: nodistro
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: trixie
"""


def test_deb822_keeps_only_enabled_debian_archives() -> None:
    assert parse_deb822_sources(DEB822) == [
        ArchiveEntry(
            "http://mirror.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg"
        )
    ]


def test_one_line_sources_with_options() -> None:
    text = (
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bullseye main\n"
        "deb http://mirror.example/debian-security bullseye-security main\n"
        "deb https://vendor.example/apt cloud-sdk main\n"
    )
    assert parse_one_line_sources(text) == [ArchiveEntry("http://mirror.example/debian", "/k.gpg")]


def test_configured_archives_reads_a_whole_etc_apt(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://one.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "x.list.disabled").write_text(
        "deb http://ignored.example/debian sid main\n"
    )
    uris = [entry.uri for entry in configured_archives(tmp_path)]
    assert uris == ["http://one.example/debian", "http://mirror.example/debian"]


def test_render_sources_list_has_deb_src_lines_per_suite() -> None:
    text = render_sources_list([ArchiveEntry("http://m.example/debian", "/k.gpg")])
    assert text.splitlines() == [
        f"deb-src [signed-by=/k.gpg] http://m.example/debian {suite} main"
        for suite in ("bullseye", "bookworm", "trixie", "sid")
    ]


@pytest.mark.parametrize(
    ("debian", "upstream"),
    [("3.13.5-2+deb13u5", "3.13.5"), ("1:2.0-1", "2.0"), ("3.9.2-1", "3.9.2"), ("7", "7")],
)
def test_upstream_version(debian: str, upstream: str) -> None:
    assert upstream_version(debian) == upstream


def test_parse_showsrc_versions_filters_by_package() -> None:
    text = "Package: a\nVersion: 1-1\n\nPackage: b\nVersion: 2-1\n\nPackage: a\nVersion: 1-2\n"
    assert parse_showsrc_versions(text, "a") == ["1-1", "1-2"]


def test_no_configured_archive_is_a_clear_error(tmp_path: Path) -> None:
    archive = AptSourceArchive(tmp_path, archives=[])
    with pytest.raises(SourceUnavailableError, match="no Debian archive is configured"):
        archive.refresh_index()


def test_version_missing_from_the_real_archive_is_named(tmp_path: Path) -> None:
    archive = AptSourceArchive(tmp_path / "apt")
    with pytest.raises(SourceUnavailableError) as info:
        archive.download_orig("python3.13", "3.13.99", tmp_path / "dl")
    assert "lists no source package python3.13 of version 3.13.99" in info.value.message
    assert (tmp_path / "apt" / "sources.list").read_text().startswith("deb-src ")


def test_listed_but_missing_tarball_names_the_failure(tmp_path: Path) -> None:
    """This archive lists python3.14 sources whose files answer 404: say so, leave nothing."""
    archive = AptSourceArchive(tmp_path / "apt")
    archive.refresh_index()
    listed = archive.versions("python3.14")
    assert listed, "the archive was expected to list python3.14 source packages"
    with pytest.raises(SourceUnavailableError) as info:
        archive.download_orig("python3.14", upstream_version(listed[0]), tmp_path / "dl")
    assert f"python3.14={listed[0]}" in info.value.message
    assert "404" in info.value.message
    assert not list((tmp_path / "dl").glob("*.orig.tar.*"))
