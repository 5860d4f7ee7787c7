"""A real matrix: one spec builds and verifies, one fails; a second run builds nothing; the
binary cache serves `relocpy install` and another cache over HTTP."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mirror_server import MirrorServer
from relocpy.cli import main
from relocpy.core.tree import clean_env
from relocpy.install.trees import install
from relocpy.matrix.run import build_file, plan_file

pytestmark = pytest.mark.real

MATRIX = """
# 3.11 with gcc and the host's libraries (the quickest real build), and the same with a flag
# the compiler rejects: that spec must fail alone, with its log named.
[matrix]
version = ["3.11"]
toolchain = ["gcc"]
libs = ["host"]
cflags = [[], ["-fno-such-flag-relocpy"]]
"""


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory, session_home: Path):
    work = tmp_path_factory.mktemp("matrix")
    path = work / "m.toml"
    path.write_text(MATRIX)
    cache = work / "cache"
    first = build_file(path, cache, parallel=2, verify=True)
    return path, cache, first


def test_one_failure_does_not_stop_the_other(matrix_run) -> None:
    _, cache, first = matrix_run
    good, bad = first
    assert good.status == "built", good.error
    assert good.entry is not None and (cache / good.entry.archive).is_file()
    assert bad.status == "failed"
    assert bad.log is not None and "no-such-flag-relocpy" in bad.log.read_text()
    assert "configure failed" in (bad.error or "") or "failed" in (bad.error or "")
    record = (cache / "specs" / f"{good.planned.digest}.json").read_text()
    assert '"verify"' in record and "false" not in record.split('"verify"')[1].split("}")[0]
    assert not (cache / "specs" / f"{bad.planned.digest}.json").exists()
    assert not list(cache.glob(".build-*"))  # the build directories are gone


def test_second_run_builds_nothing(matrix_run, capsys: pytest.CaptureFixture[str]) -> None:
    path, cache, first = matrix_run
    planned = plan_file(path, cache)
    assert [p.where for p in planned] == ["local", "missing"]
    assert [p.digest for p in planned] == [o.planned.digest for o in first]
    again = build_file(path, cache)
    assert again[0].status == "cached" and again[0].seconds < 5
    assert again[1].status == "failed"  # still failing, re-attempted
    assert main(["matrix", "build", str(path), "--cache", str(cache), "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in rows] == ["cached", "failed"]
    assert rows[1]["log"] == str(first[1].log) and rows[0]["archive"] == first[0].entry.archive
    assert main(["matrix", "build", str(path), "--cache", str(cache)]) == 1
    table = capsys.readouterr().out
    assert "cached" in table and "failed" in table  # the table (paths may wrap)


def test_cache_is_a_mirror_for_install_and_other_caches(matrix_run, tmp_path: Path) -> None:
    path, cache, first = matrix_run
    done = install("3.11", str(cache))
    result = subprocess.run(
        [str(done.executable), "-c", "import ssl, sqlite3; print(ssl.OPENSSL_VERSION)"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    assert "OpenSSL" in result.stdout
    with MirrorServer(cache) as server:
        other = tmp_path / "other-cache"
        fetched = build_file(path, other, [server.url])
        assert fetched[0].status == "fetched"
        assert (other / first[0].entry.archive).read_bytes() == (
            cache / first[0].entry.archive
        ).read_bytes()
        assert plan_file(path, other)[0].where == "local"
