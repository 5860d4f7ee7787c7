"""An OCI registry as the binary cache and mirror, against a real registry on loopback
(docker-registry with a basic-auth realm): push, pull, install, credentials, a deleted blob,
a tampered manifest and blob, an interrupted push, jobs pushing one spec at once, and the CI
pipelines generated against it."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml

from fake_tree import make_fake_archives
from oci_registry import PASSWORD, USER, Registry
from relocpy.cli import main
from relocpy.core import home
from relocpy.core.errors import RelocpyError
from relocpy.core.progress import QuietReporter
from relocpy.install.trees import install
from relocpy.matrix import ci
from relocpy.matrix.bincache import (
    BinaryCacheError,
    CacheEntry,
    LocalBinaryCache,
    OciBinaryCache,
    find,
)
from relocpy.matrix.run import plan_file, select
from relocpy.package.mirror import Mirror, MirrorError
from relocpy.package.oci import OciClient, OciError, parse_location

SRC = str(Path(__file__).resolve().parent.parent / "src")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    with Registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture
def logged_in(registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Registry:
    monkeypatch.delenv("RELOCPY_OCI_TOKEN", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    for key, value in registry.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RELOCPY_HOME", str(tmp_path / "home"))
    return registry


def fake_spec(tmp_path: Path, version: str = "3.99.0") -> tuple[LocalBinaryCache, CacheEntry]:
    """A spec in a local binary cache: two archives that install and print `fake VERSION`."""
    gz, zst = make_fake_archives(tmp_path / f"dist-{version}", version)
    local = LocalBinaryCache(tmp_path / f"local-{version}")
    digest = hashlib.sha256(f"{tmp_path}{version}".encode()).hexdigest()
    entry = local.store(digest, f"fake {version}", {"spec": version}, [gz, zst])
    return local, entry


def repository(request: pytest.FixtureRequest) -> str:
    """One repository per test, so tests never see each other's tags."""
    return "relocpy/" + request.node.name.lower().replace("_", "-")[:60].strip("-")


def test_locations_are_checked() -> None:
    where = parse_location("oci://127.0.0.1:5000/team/relocpy")
    assert (where.host, where.repository, where.scheme) == (
        "127.0.0.1:5000",
        "team/relocpy",
        "http",
    )
    assert parse_location("oci://ghcr.io/org/pythons").scheme == "https"
    for bad in ("oci://host", "oci://host/Upper", "oci:///repo", "http://host/repo"):
        with pytest.raises(OciError):
            parse_location(bad)


def test_a_pushed_spec_is_found_fetched_indexed_and_installed(
    logged_in: Registry, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    local, entry = fake_spec(tmp_path)
    remote = OciBinaryCache(logged_in.url(repository(request)))
    assert remote.lookup(entry.spec_hash) is None  # an empty repository is a miss
    remote.push(local, entry, QuietReporter())
    found = remote.lookup(entry.spec_hash)
    assert found is not None and found.files == entry.files and found.label == entry.label
    assert json.loads(remote.record_text(entry.spec_hash) or "")["spec_hash"] == entry.spec_hash
    # the manifest follows ORAS: empty config, artifactType, a title per layer
    manifest, _ = remote.client.manifest(entry.spec_hash) or ({}, "")
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert manifest["artifactType"] == "application/vnd.relocpy.spec.v1"
    titles = [
        layer["annotations"]["org.opencontainers.image.title"] for layer in manifest["layers"]
    ]
    assert set(titles) == {f.name for f in entry.files} | {
        "entries.json",
        f"{entry.spec_hash}.json",
    }
    # another machine's cache substitutes it, bytes checked
    other = LocalBinaryCache(tmp_path / "other")
    lookup = find(entry.spec_hash, other, [remote])
    assert lookup.where == "mirror"
    other.substitute(remote, lookup.entry, QuietReporter())  # type: ignore[arg-type]
    for stored in entry.files:
        assert (other.root / stored.name).read_bytes() == (local.root / stored.name).read_bytes()
    # the mirror view: relocpy install and uv's JSON
    assert remote.reindex() == sorted(f.name for f in entry.files)
    mirror = Mirror(remote.location)
    assert sorted(e.name for e in mirror.entries()) == sorted(f.name for f in entry.files)
    done = install("3.99", remote.location)
    result = subprocess.run([str(done.executable), "hi"], capture_output=True, text=True)
    assert result.stdout.strip() == "fake 3.99.0 hi"
    uv_layer = next(
        layer
        for layer in (remote.client.manifest("index") or ({}, ""))[0]["layers"]
        if layer["annotations"]["org.opencontainers.image.title"] == "uv-downloads.json"
    )
    uv = json.loads(remote.client.read_blob(uv_layer["digest"]))
    [(key, offer)] = uv.items()
    assert key == "cpython-3.99.0-linux-x86_64-gnu"
    assert offer["url"].startswith(f"http://{logged_in.host}/v2/{remote.client.where.repository}/")
    assert offer["url"].endswith(f"/blobs/sha256:{offer['sha256']}")


def test_the_cli_installs_from_an_oci_mirror(
    logged_in: Registry, tmp_path: Path, request: pytest.FixtureRequest, capsys
) -> None:
    local, entry = fake_spec(tmp_path, "3.99.1")
    url = logged_in.url(repository(request))
    OciBinaryCache(url).push(local, entry, QuietReporter())
    assert main(["mirror", "index", url]) == 0
    assert "indexed 2 archives" in capsys.readouterr().out
    assert main(["install", "3.99", "--mirror", url, "--no-build", "--no-links"]) == 0
    assert [p.name for p in home.pythons_dir().iterdir() if not p.name.startswith(".")] == [
        "cpython-3.99.1+20260101-linux-x86_64-gnu"
    ]


def test_wrong_or_missing_credentials_are_one_clear_error_and_store_nothing(
    logged_in: Registry,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    local, entry = fake_spec(tmp_path)
    url = logged_in.url(repository(request))
    OciBinaryCache(url).push(local, entry, QuietReporter())
    OciBinaryCache(url).reindex()
    monkeypatch.setenv("RELOCPY_OCI_PASSWORD", "wrong")
    with pytest.raises(BinaryCacheError, match="refused the credentials from RELOCPY_OCI_USER"):
        OciBinaryCache(url).lookup(entry.spec_hash)
    with pytest.raises(MirrorError, match="refused the credentials"):
        Mirror(url).entries()
    assert main(["install", "3.99", "--mirror", url, "--no-build"]) != 0
    err = capsys.readouterr().err
    assert "refused the credentials from RELOCPY_OCI_USERNAME/PASSWORD: 401" in err
    monkeypatch.delenv("RELOCPY_OCI_USERNAME")
    monkeypatch.delenv("RELOCPY_OCI_PASSWORD")
    with pytest.raises(BinaryCacheError, match="asks for credentials and none were given"):
        OciBinaryCache(url).lookup(entry.spec_hash)
    assert not home.pythons_dir().exists() or not any(
        p for p in home.pythons_dir().iterdir() if not p.name.startswith(".")
    )
    # a registry that is not there: at once, not after retries
    with pytest.raises(OciError, match="cannot reach the registry"):
        OciClient("oci://127.0.0.1:9/relocpy").tags()


def test_credentials_from_docker_config(
    logged_in: Registry, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch
) -> None:
    monkeypatch.delenv("RELOCPY_OCI_USERNAME")
    monkeypatch.delenv("RELOCPY_OCI_PASSWORD")
    config = tmp_path / "docker"
    config.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {logged_in.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    local, entry = fake_spec(tmp_path)
    remote = OciBinaryCache(logged_in.url(repository(request)))
    assert remote.client.credentials.source == "docker config.json"
    remote.push(local, entry, QuietReporter())
    assert remote.lookup(entry.spec_hash) is not None


def _delete_blob(registry: Registry, repo: str, digest: str) -> None:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/blobs/{digest}",
        method="DELETE",
        headers={"Authorization": f"Basic {auth}"},
    )
    with urllib.request.urlopen(req) as response:
        assert response.status == 202


def test_a_deleted_blob_is_a_clear_error_and_nothing_is_stored(
    logged_in: Registry, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    local, entry = fake_spec(tmp_path)
    repo = repository(request)
    remote = OciBinaryCache(logged_in.url(repo))
    remote.push(local, entry, QuietReporter())
    remote.reindex()
    gz = next(f for f in entry.files if f.name.endswith(".tar.gz"))
    zst = next(f for f in entry.files if f.name.endswith(".tar.zst"))
    for stored in (gz, zst):
        _delete_blob(logged_in, repo, f"sha256:{stored.sha256}")
    other = LocalBinaryCache(tmp_path / "other")
    found = remote.lookup(entry.spec_hash)
    assert found is not None  # the manifest still names it
    with pytest.raises(BinaryCacheError, match="404"):
        other.substitute(remote, found, QuietReporter())
    assert not other.root.exists() or not [p for p in other.root.rglob("*") if p.is_file()]
    with pytest.raises(RelocpyError, match="404"):
        install("3.99", remote.location)
    assert not home.pythons_dir().exists() or not any(
        p for p in home.pythons_dir().iterdir() if not p.name.startswith(".")
    )


def test_a_tampered_manifest_or_blob_is_refused_and_nothing_is_stored(
    logged_in: Registry, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    local, entry = fake_spec(tmp_path)
    remote = OciBinaryCache(logged_in.url(repository(request)))
    remote.push(local, entry, QuietReporter())
    remote.reindex()
    _, digest = remote.client.manifest(entry.spec_hash) or ({}, "")
    # swap the archive's layer for the other archive's bytes, in the registry's own storage
    stored = logged_in.blob_file(digest)
    gz, zst = (next(f for f in entry.files if f.name.endswith(ext)) for ext in (".gz", ".zst"))
    stored.write_text(stored.read_text().replace(gz.sha256, zst.sha256))
    with pytest.raises(BinaryCacheError, match="altered in the registry's storage"):
        remote.lookup(entry.spec_hash)
    other = LocalBinaryCache(tmp_path / "other")
    assert find(entry.spec_hash, other, [remote]).where == "missing"  # a miss, never used
    # a blob altered on disk: the digest check refuses it, and no file is left
    for stored_file in (gz, zst):
        blob = logged_in.blob_file(f"sha256:{stored_file.sha256}")
        data = bytearray(blob.read_bytes())
        data[-1] ^= 0xFF
        blob.write_bytes(bytes(data))
    target = tmp_path / "pulled.tar.gz"
    with pytest.raises(OciError, match="has digest"):
        remote.client.pull_blob(f"sha256:{gz.sha256}", gz.size, target)
    assert not target.exists() and not target.with_name(target.name + ".part").exists()
    with pytest.raises(RelocpyError, match="sha256"):
        install("3.99", remote.location)
    assert not home.pythons_dir().exists() or not any(
        p for p in home.pythons_dir().iterdir() if not p.name.startswith(".")
    )


def test_an_interrupted_push_claims_nothing(
    logged_in: Registry, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch
) -> None:
    local, entry = fake_spec(tmp_path)
    remote = OciBinaryCache(logged_in.url(repository(request)))

    def cut(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the job was cancelled after the blobs, before the tag

    monkeypatch.setattr(remote.client, "put_manifest", cut)
    with pytest.raises(KeyboardInterrupt):
        remote.push(local, entry, QuietReporter())
    assert all(remote.client.has_blob(f"sha256:{f.sha256}") for f in entry.files)
    assert remote.lookup(entry.spec_hash) is None and remote.client.tags() == []
    monkeypatch.undo()
    for key, value in logged_in.env().items():
        monkeypatch.setenv(key, value)
    OciBinaryCache(remote.location).push(local, entry, QuietReporter())  # the retry completes
    assert OciBinaryCache(remote.location).lookup(entry.spec_hash) is not None


PUSH = """
import sys
from pathlib import Path
from relocpy.core.progress import QuietReporter
from relocpy.matrix.bincache import LocalBinaryCache, OciBinaryCache
local = LocalBinaryCache(Path(sys.argv[1]))
entry = local.lookup(sys.argv[2])
OciBinaryCache(sys.argv[3]).push(local, entry, QuietReporter())
"""


def test_jobs_pushing_one_spec_at_once_are_safe(
    logged_in: Registry, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four jobs push each of five specs at once, every job from its own cache of the same
    bytes. Without the client's retries, about one push in 60 failed here: a request that read
    a blob's link while another job committed that blob (a HEAD answered 500, a manifest PUT
    400 DIGEST_INVALID)."""
    url = logged_in.url(repository(request))
    env = {**os.environ, "PYTHONPATH": SRC}
    specs = []
    for n in range(5):
        local, entry = fake_spec(tmp_path, f"3.99.{n}")
        roots = [local.root]
        for k in range(3):  # the other jobs' own caches, the same bytes
            roots.append(tmp_path / f"copy-{n}-{k}")
            shutil.copytree(local.root, roots[-1])
        jobs = [
            subprocess.Popen(
                [sys.executable, "-c", PUSH, str(root), entry.spec_hash, url],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for root in roots
        ]
        for job in jobs:
            assert job.wait(timeout=120) == 0, job.stderr.read() if job.stderr else ""
        specs.append((local, entry))
    remote = OciBinaryCache(url)
    for local, entry in specs:
        found = remote.lookup(entry.spec_hash)
        assert found is not None and found.files == entry.files
        for stored in entry.files:
            pulled = tmp_path / "pulled" / stored.name
            pulled.parent.mkdir(exist_ok=True)
            remote.fetch(found, stored.name, pulled, QuietReporter())
            assert pulled.read_bytes() == (local.root / stored.name).read_bytes()


def test_a_manifest_naming_a_blob_never_pushed_is_refused_at_once(
    logged_in: Registry, request: pytest.FixtureRequest
) -> None:
    client = OciClient(logged_in.url(repository(request)))
    absent = "sha256:" + hashlib.sha256(b"never pushed").hexdigest()
    empty, _ = client.push_blob(b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": absent, "size": 12}],
    }
    with pytest.raises(OciError, match=f"lacks the blob {absent}") as raised:
        client.put_manifest("t", manifest)
    assert raised.value.status == 400 and "MANIFEST_BLOB_UNKNOWN" in raised.value.codes
    assert client.tags() == []


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    """A stand-in registry's request handler: logs nothing, answers in one call."""

    def log_message(self, *args: object) -> None:
        pass

    def answer(self, code: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _serve(handler: type[_QuietHandler]) -> tuple[http.server.ThreadingHTTPServer, str]:
    """`handler` served on loopback in a thread; the server and its oci:// location."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"oci://127.0.0.1:{server.server_address[1]}/relocpy"


class _FlakyRegistry:
    """A registry that answers each request of `faults` (method and path prefix) with a fault
    the given number of times, then as it should; it has every blob but those under `absent`.
    Every request is recorded."""

    def __init__(
        self, faults: dict[tuple[str, str], tuple[int, int, str]], absent: str = "/none"
    ) -> None:
        self.seen: list[str] = []
        left = {key: count for key, (count, _, _) in faults.items()}
        seen = self.seen

        class Handler(_QuietHandler):
            def _handle(self) -> None:
                seen.append(f"{self.command} {self.path}")
                if length := int(self.headers.get("Content-Length") or 0):
                    self.rfile.read(length)
                for (method, prefix), (_, code, error) in faults.items():
                    key = (method, prefix)
                    if self.command == method and self.path.startswith(prefix) and left[key] > 0:
                        left[key] -= 1
                        self.answer(code, json.dumps({"errors": [{"code": error}]}).encode())
                        return
                if self.command == "HEAD" and self.path.startswith(absent):
                    self.answer(404)
                elif self.command == "POST":
                    self.answer(202, Location="/v2/relocpy/blobs/uploads/1")
                elif self.command == "PUT":
                    self.answer(201, Location=self.path)
                else:
                    self.answer(200, b"{}", Content_Type="application/json")

            do_GET = do_HEAD = do_PUT = do_POST = _handle

        self.server, self.url = _serve(Handler)


def test_a_read_meeting_a_server_error_and_a_manifest_refused_with_its_blobs_there_are_retried(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for key in ("RELOCPY_OCI_TOKEN", "RELOCPY_OCI_USERNAME", "RELOCPY_OCI_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    blob = "sha256:" + "ab" * 32
    manifest = {"schemaVersion": 2, "config": {"digest": blob}, "layers": [{"digest": blob}]}
    flaky = _FlakyRegistry(
        {
            ("HEAD", "/v2/relocpy/blobs/"): (2, 500, "UNKNOWN"),
            ("PUT", "/v2/relocpy/manifests/"): (1, 400, "DIGEST_INVALID"),
        }
    )
    try:
        client = OciClient(flaky.url)
        assert client.has_blob(blob)  # two 500s, then the answer
        assert [s.split(" ")[0] for s in flaky.seen] == ["HEAD"] * 3
        flaky.seen.clear()
        client.put_manifest("t", manifest)  # refused once while the blob is there: retried
        assert [s.split(" ")[0] for s in flaky.seen] == ["PUT", "HEAD", "HEAD", "PUT"]
    finally:
        flaky.server.shutdown()
    lasting = _FlakyRegistry(
        {
            ("HEAD", "/v2/relocpy/blobs/" + blob): (99, 503, "UNAVAILABLE"),
            ("POST", "/v2/relocpy/blobs/uploads/"): (99, 500, "UNKNOWN"),
            ("PUT", "/v2/relocpy/manifests/"): (99, 400, "MANIFEST_BLOB_UNKNOWN"),
        },
        absent="/v2/relocpy/blobs/sha256:" + hashlib.sha256(b"new").hexdigest(),
    )
    try:
        client = OciClient(lasting.url)
        with pytest.raises(OciError, match="answered 503 for HEAD"):
            client.has_blob(blob)
        assert len(lasting.seen) == 5  # a lasting fault ends the tries, in under 2 s
        lasting.seen.clear()
        with pytest.raises(OciError, match="answered 500 for POST"):
            client.push_blob(b"new")
        assert [s.split(" ")[0] for s in lasting.seen] == ["HEAD", "POST"]  # no write repeated
        lasting.seen.clear()
        other = {"config": {"digest": "sha256:" + "cd" * 32}, "layers": []}
        with pytest.raises(OciError, match="answered 400 for PUT"):
            client.put_manifest("t", other)  # every blob there, the refusal lasts
        assert [s.split(" ")[0] for s in lasting.seen] == ["PUT", "HEAD"] * 4 + ["PUT"]
    finally:
        lasting.server.shutdown()


MATRIX = """
[matrix]
version = ["3.11", "3.13"]
toolchain = ["zig"]
opt = ["noopt"]

[[include]]
version = "3.13"
toolchain = "gcc"
libs = "host"
"""


SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}


def generate_and_validate(
    matrix: Path, url: str, engine: str, tmp_path: Path
) -> tuple[Path, dict[str, object]]:
    """`relocpy ci generate` for `engine`, checked by check-jsonschema against the engine's
    official schema; the file and its jobs."""
    out = tmp_path / f"{engine}.yml"
    assert main(["ci", "generate", str(matrix), f"--{engine}", "--cache", url, "-o", str(out)]) == 0
    checked = subprocess.run(
        [Path(sys.executable).parent / "check-jsonschema", "--builtin-schema", SCHEMAS[engine],
         str(out)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    document = yaml.safe_load(out.read_text())
    return out, document["jobs"] if engine == "github" else document


def test_ci_generate_validates_and_leaves_out_what_the_cache_holds(
    logged_in: Registry, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX)
    url = logged_in.url(repository(request))
    planned = plan_file(matrix, url)
    assert [p.where for p in planned] == ["missing"] * 3
    # one spec's result is in the shared cache: its job is left out
    local, entry = fake_spec(tmp_path)
    cached = planned[0].digest
    local.store(
        cached, planned[0].spec.label, planned[0].inputs, [local.root / f.name for f in entry.files]
    )
    OciBinaryCache(url).push(local, local.lookup(cached), QuietReporter())  # type: ignore[arg-type]
    planned = plan_file(matrix, url)
    assert [p.where for p in planned] == ["registry", "missing", "missing"]
    for engine in ("github", "gitlab"):
        out, jobs = generate_and_validate(matrix, url, engine, tmp_path)
        spec_jobs = sorted(k for k in jobs if k.startswith("spec-"))
        assert spec_jobs == sorted(f"spec-{p.digest[:16]}" for p in planned[1:])
        libs = [k for k in jobs if k.startswith("libs-")]
        assert len(libs) == 1  # the zig 3.13 spec builds libraries; the host-library one none
        zig_job, host_job = (jobs[f"spec-{p.digest[:16]}"] for p in planned[1:])
        assert zig_job["needs"] == libs and "needs" not in host_job
        publish = jobs["publish"]
        assert sorted(publish["needs"]) == spec_jobs
        text = out.read_text()
        assert f"--only {planned[1].digest[:16]} --cache {url}" in text
        assert f"relocpy mirror index {url}" in text
        # a fresh runner gets every Debian package the builds need (the preflight's names)
        assert "libltdl-dev" in text and "python3-venv" in text


def test_only_selects_by_hash_prefix(tmp_path: Path) -> None:
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX)
    planned = plan_file(matrix, tmp_path / "cache")
    assert select(planned, [planned[1].digest[:12]], "m.toml") == [planned[1]]
    with pytest.raises(RelocpyError, match=r"no spec of m\.toml has the hash"):
        select(planned, ["00000000deadbeef"], "m.toml")
    with pytest.raises(RelocpyError, match="at least 8"):
        select(planned, [planned[1].digest[:4]], "m.toml")
    jobs = ci.pipeline_jobs(planned, "m.toml", "oci://h/r")
    assert [j.name for j in jobs][-1] == "publish"


class _TokenRegistry:
    """A stand-in for a registry behind a token service (as Docker Hub, GHCR and Harbor are):
    /v2/ answers 401 with a Bearer challenge; /token trades basic credentials for a token."""

    def __init__(self) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(_QuietHandler):
            def _send(self, code: int, body: dict[str, object], **headers: str) -> None:
                self.answer(code, json.dumps(body).encode(), **headers)

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                seen.append(f"{self.path} {auth.split(' ')[0]}")
                if self.path.startswith("/token"):
                    good = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                    if auth == f"Basic {good}" and "scope=repository" in self.path:
                        self._send(200, {"token": "t0k3n"})
                    else:
                        self._send(401, {})
                    return
                if auth in ("Bearer t0k3n", "Bearer given-token"):
                    self._send(200, {"name": "relocpy", "tags": ["index"]})
                    return
                port = self.server.server_address[1]
                challenge = (
                    f'Bearer realm="http://127.0.0.1:{port}/token",service="test",'
                    'scope="repository:relocpy:pull"'
                )
                self._send(401, {"errors": [{"code": "UNAUTHORIZED"}]}, WWW_Authenticate=challenge)

        self.server, self.url = _serve(Handler)


def test_token_realms_and_tokens_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    registry = _TokenRegistry()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("RELOCPY_OCI_TOKEN", raising=False)
    monkeypatch.setenv("RELOCPY_OCI_USERNAME", USER)
    monkeypatch.setenv("RELOCPY_OCI_PASSWORD", PASSWORD)
    try:
        assert OciClient(registry.url).tags() == ["index"]  # basic credentials → a token
        assert [s.split(" ")[1] for s in registry.seen] == ["", "Basic", "Bearer"]
        monkeypatch.setenv("RELOCPY_OCI_PASSWORD", "wrong")
        with pytest.raises(OciError, match=r"token service .* refused the credentials"):
            OciClient(registry.url).tags()
        monkeypatch.setenv("RELOCPY_OCI_TOKEN", "given-token")  # a token is used as it is
        registry.seen.clear()
        assert OciClient(registry.url).tags() == ["index"]
        assert registry.seen == ["/v2/relocpy/tags/list?n=1000 Bearer"]
    finally:
        registry.server.shutdown()


def test_the_release_matrix_pipelines_validate(logged_in: Registry, tmp_path: Path) -> None:
    """examples/release.toml (3 versions, gcc pgo+lto for glibc 2.17): one library job and one
    spec job per version, a publish job, each engine's file valid by its official schema."""
    release = Path(__file__).resolve().parent.parent / "examples" / "release.toml"
    url = logged_in.url("relocpy/release")
    for engine in ("github", "gitlab"):
        _, jobs = generate_and_validate(release, url, engine, tmp_path)
        names = [k for k in jobs if k.startswith(("libs-", "spec-", "publish"))]
        assert len([n for n in names if n.startswith("libs-")]) == 3
        assert len([n for n in names if n.startswith("spec-")]) == 3 and "publish" in names
