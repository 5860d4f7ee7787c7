from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from relocpy.core.errors import ChecksumMismatchError, SourceUnavailableError
from relocpy.core.progress import QuietReporter
from relocpy.sources.catalog import SourcePin, resolve_cpython
from relocpy.sources.fetch import DebianMirror, SourceCache, UrlMirror, fetch


def _pin_for(path: Path, *, sha256: str | None = None, urls: tuple[str, ...] = ()) -> SourcePin:
    digest = sha256 or hashlib.sha256(path.read_bytes()).hexdigest()
    return SourcePin("demo", "1.0", path.name, digest, urls or (path.as_uri(),))


def test_fetch_verifies_and_caches_by_hash(tmp_path: Path) -> None:
    original = tmp_path / "demo-1.0.tar.gz"
    original.write_bytes(b"demo payload")
    pin = _pin_for(original)
    cache = SourceCache(tmp_path / "cache")
    path = fetch(pin, mirrors=[UrlMirror()], cache=cache)
    assert path == cache.root / "sha256" / pin.sha256 / "demo-1.0.tar.gz"
    assert path.read_bytes() == b"demo payload"
    original.unlink()
    # Served from the cache: no mirror is needed any more.
    assert fetch(pin, mirrors=[], cache=cache) == path


def test_damaged_cache_entry_is_fetched_again(tmp_path: Path) -> None:
    original = tmp_path / "demo.tar"
    original.write_bytes(b"good")
    pin = _pin_for(original)
    cache = SourceCache(tmp_path / "cache")
    cached = fetch(pin, mirrors=[UrlMirror()], cache=cache)
    cached.write_bytes(b"bitrot")
    assert fetch(pin, mirrors=[UrlMirror()], cache=cache).read_bytes() == b"good"


def test_checksum_mismatch_names_both_hashes_and_caches_nothing(tmp_path: Path) -> None:
    original = tmp_path / "demo.tar"
    original.write_bytes(b"tampered")
    pin = _pin_for(original, sha256="0" * 64)
    cache = SourceCache(tmp_path / "cache")
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(pin, mirrors=[UrlMirror()], cache=cache)
    actual = hashlib.sha256(b"tampered").hexdigest()
    assert actual in info.value.message and "0" * 64 in info.value.message
    assert not list(cache.root.rglob("demo.tar"))


def test_every_mirror_failing_lists_each_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.tar"
    pin = SourcePin("demo", "1.0", "nowhere.tar", "0" * 64, (missing.as_uri(),))
    with pytest.raises(SourceUnavailableError) as info:
        fetch(pin, mirrors=[UrlMirror(), DebianMirror()], cache=SourceCache(tmp_path / "c"))
    message = info.value.message
    assert "upstream URL" in message and "Debian source package" in message
    assert "no Debian source package is known" in message


def test_falls_back_to_debian_when_upstream_is_unreachable(tmp_path: Path) -> None:
    """python.org is unreachable here; the Debian `.orig` tarball must match the upstream pin."""
    pin = resolve_cpython("3.11.2")
    unreachable = SourcePin(
        pin.name,
        pin.version,
        pin.filename,
        pin.sha256,
        ((tmp_path / "absent.tgz").as_uri(),),
        pin.debian_package,
    )
    path = fetch(
        unreachable, mirrors=[UrlMirror(), DebianMirror()], cache=SourceCache(tmp_path / "cache")
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == pin.sha256


def test_the_probes_of_where_sources_are_said_once_a_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding which tarballs this machine can fetch takes seconds (an apt index, a request
    per file): the progress says so when it runs, and not while its record is fresh."""
    import relocpy.sources.fetch as fetch_module

    monkeypatch.setenv("RELOCPY_HOME", str(tmp_path / "home"))
    probes: list[int] = []

    def probe(pins: list[SourcePin], archive: object) -> dict[str, str]:
        probes.append(len(pins))
        return {"3.13.5": "Debian python3.13 3.13.5-2"}

    monkeypatch.setattr(fetch_module, "_probe", probe)
    reporter = QuietReporter()  # (records the steps)
    pins = [resolve_cpython("3.13.5")]
    first = fetch_module.where_served(pins, SourceCache(tmp_path / "c"), reporter)
    again = fetch_module.where_served(pins, SourceCache(tmp_path / "c"), reporter)
    assert first == again == {"3.13.5": "Debian python3.13 3.13.5-2"}
    assert len(probes) == 1 and len(reporter.steps) == 1
    assert "which CPython source tarballs this machine can fetch" in reporter.steps[0]
