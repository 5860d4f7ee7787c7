"""A real matrix: one spec builds and verifies, one fails; a second run builds nothing; the
binary cache serves `relocpy install` and another cache over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import link_caches
from mirror_server import MirrorServer
from oci_registry import Registry
from relocpy.cli import main
from relocpy.core.progress import QuietReporter
from relocpy.core.tree import clean_env
from relocpy.install.trees import install
from relocpy.matrix.bincache import OciBinaryCache
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


# a second 3.11 build (224 s in CI): left to bench runs, with bench/ci_jobs.py (CI time)
@pytest.mark.bench
def test_generated_ci_jobs_run_independently_and_equal_the_local_build(
    matrix_run, session_home: Path, tmp_path: Path
) -> None:
    """`ci generate`'s jobs, each run as its own process with its own RELOCPY_HOME (sharing
    only the registry's URL, and the pinned source tarball a runner would download), fill
    the registry with what one local `matrix build` made: the same spec hashes, records and
    archive bytes; the failing spec fails in its job too and claims nothing."""
    path, cache, first = matrix_run
    with Registry(tmp_path / "registry") as registry:
        url = registry.url()
        env = {
            **os.environ,
            **registry.env(),
            "PATH": f"{Path(sys.executable).parent}:" + os.environ["PATH"],
        }
        workflow = tmp_path / "relocpy.yml"
        generated = subprocess.run(
            [
                "relocpy",
                "ci",
                "generate",
                str(path),
                "--github",
                "--cache",
                url,
                "-o",
                str(workflow),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "2 of 2 specs to build" in generated.stdout
        jobs = yaml.safe_load(workflow.read_text())["jobs"]
        assert not [name for name in jobs if name.startswith("libs-")]  # host libraries
        runs = {
            name: job["steps"][-1]["run"] for name, job in jobs.items() if name.startswith("spec-")
        }
        assert sorted(runs) == sorted(f"spec-{o.planned.digest[:16]}" for o in first)
        processes = {}
        for number, (name, command) in enumerate(sorted(runs.items())):
            job_home = tmp_path / f"runner-{number}"
            link_caches(session_home / "cache", job_home / "cache", ("sources",))
            processes[name] = subprocess.Popen(
                command,
                shell=True,
                env={**env, "RELOCPY_HOME": str(job_home)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        status = {
            name: (p.wait(timeout=1800), p.stdout.read() if p.stdout else "")
            for name, p in processes.items()
        }
        good, bad = first
        assert status[f"spec-{good.planned.digest[:16]}"][0] == 0, status
        assert status[f"spec-{bad.planned.digest[:16]}"][0] == 1
        publish = subprocess.run(
            jobs["publish"]["steps"][-1]["run"],
            shell=True,
            env=env,
            capture_output=True,
            text=True,
        )
        assert publish.returncode == 0, publish.stderr
        with_env = {**registry.env()}
        os.environ.update(with_env)
        try:
            remote = OciBinaryCache(url)
            assert remote.lookup(bad.planned.digest) is None
            pushed = json.loads(remote.record_text(good.planned.digest) or "{}")
            local = json.loads((cache / "specs" / f"{good.planned.digest}.json").read_text())
            assert pushed["spec_hash"] == local["spec_hash"] == good.planned.digest
            assert pushed["inputs"] == local["inputs"] and pushed["label"] == local["label"]
            # every product byte-identical; the build log differs (times, temporary paths)
            files = {f["name"]: f["sha256"] for f in pushed["files"]}
            mine = {f["name"]: f["sha256"] for f in local["files"]}
            assert sorted(files) == sorted(mine)
            differ = sorted(n for n in files if files[n] != mine[n])
            run_specific = [n for n in sorted(files) if n.endswith((".log", "install_only.json"))]
            assert differ == run_specific, differ
            # the metadata differs only in what names the run: its time and its temporary dirs
            [meta] = [n for n in differ if n.endswith(".json")]
            entry = remote.lookup(good.planned.digest)
            assert entry is not None
            remote.fetch(entry, meta, tmp_path / meta, QuietReporter())
            theirs, ours = (json.loads(p.read_text()) for p in (tmp_path / meta, cache / meta))
            keys = sorted(k for k in {*theirs, *ours} if theirs.get(k) != ours.get(k))
            assert keys == ["build_paths", "build_seconds"], keys
            done = install("3.11", url)
            result = subprocess.run(
                [str(done.executable), "-c", "import ssl, sqlite3"], env=clean_env(), check=False
            )
            assert result.returncode == 0
        finally:
            for key in with_env:
                os.environ.pop(key, None)
