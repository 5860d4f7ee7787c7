"""An OCI registry as a store of files: `oci://HOST[:PORT]/REPO`, the distribution v2 API.

Files are pushed as ORAS artifacts: blobs named by their sha256, one manifest per group of
files with each layer's `org.opencontainers.image.title` its file name, an empty config, and
an `artifactType`; a manifest is found by its tag. Everything pulled is checked: a manifest
against the digest the registry names for it, a blob against its own digest.

Written on the standard library rather than oras-py: oras-py's request layer retries every
failure (wrong credentials and refused connections included) with sleeps that add up to about
two minutes before an error reaches the user, and it writes pulled blobs without checking
their digests. Here a refusal is one clear error at once, and nothing unchecked is kept.

Two answers are retried, briefly (`_RETRY_DELAYS`, under 2 s in all): a server error (5xx) to a
read, and a manifest refused because a layer it names is "unknown" while every such blob is
there. docker-registry 2.8 (Debian's) answers so when jobs push the same blobs at once: while
one job commits a blob, another job's request that reads the repository's link to that blob
fails (HEAD 500; a manifest PUT 400 DIGEST_INVALID, MANIFEST_BLOB_UNKNOWN), and succeeds a
moment later.

Credentials, first found wins: `RELOCPY_OCI_TOKEN` (a bearer token), `RELOCPY_OCI_USERNAME`
with `RELOCPY_OCI_PASSWORD`, or the registry's entry in docker's `config.json`
(`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`). Basic credentials answer both a
Basic challenge and a token realm's (exchanged for a token, as `docker login` does). Loopback
registries are spoken to over plain HTTP, others over HTTPS unless `RELOCPY_OCI_PLAIN_HTTP=1`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from relocpy.core.errors import RelocpyError
from relocpy.core.progress import QuietReporter, Reporter

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
TITLE = "org.opencontainers.image.title"
_CHUNK = 1 << 20
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_RETRY_DELAYS = (0.1, 0.3, 0.6, 0.9)  # seconds, between the tries of a transient failure
_SERVER_ERRORS = frozenset({500, 502, 503, 504})
_LAYER_RACE = frozenset({"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "DIGEST_INVALID"})


class OciError(RelocpyError):
    """A registry that cannot be reached, refuses us, or serves something inconsistent."""

    def __init__(
        self, message: str, *, hint: str | None = None, status: int = 0, codes: Iterable[str] = ()
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status  # the HTTP status, 0 if the registry did not answer
        self.codes = frozenset(codes)  # the distribution error codes of the answer


class OciNotFound(OciError):
    """The registry answered 404: no such manifest or blob."""


@dataclass(frozen=True)
class OciLocation:
    """A parsed `oci://HOST[:PORT]/REPO`."""

    host: str  # with the port, as the registry is addressed
    repository: str

    @property
    def url(self) -> str:
        return f"oci://{self.host}/{self.repository}"

    @property
    def scheme(self) -> str:
        hostname = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else self.host
        plain = os.environ.get("RELOCPY_OCI_PLAIN_HTTP") == "1" or hostname in _LOOPBACK
        return "http" if plain else "https"

    @property
    def api(self) -> str:
        return f"{self.scheme}://{self.host}/v2/{self.repository}"


def parse_location(location: str) -> OciLocation:
    """`oci://HOST[:PORT]/REPO` checked, or OciError naming what is wrong."""
    if not location.startswith("oci://"):
        raise OciError(f"{location!r} is not an oci:// location")
    rest = location.removeprefix("oci://").rstrip("/")
    host, _, repository = rest.partition("/")
    if not host or not repository or not _REPO.match(repository):
        raise OciError(
            f"{location!r} is not a registry repository",
            hint="write oci://HOST[:PORT]/REPO, REPO in lower case (e.g. oci://127.0.0.1:5000/relocpy)",
        )
    return OciLocation(host, repository)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _docker_config_auth(host: str) -> tuple[str, str] | None:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    path = Path(base) / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        name = re.sub(r"^https?://", "", key).split("/", 1)[0]
        if name != host or not isinstance(entry, dict):
            continue
        if isinstance(entry.get("auth"), str):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
        if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
            return entry["username"], entry["password"]
    return None


@dataclass(frozen=True)
class Credentials:
    basic: tuple[str, str] | None = None
    token: str | None = None
    source: str = "none"

    @classmethod
    def from_environment(cls, host: str) -> Credentials:
        if os.environ.get("RELOCPY_OCI_TOKEN"):
            return cls(token=os.environ["RELOCPY_OCI_TOKEN"], source="RELOCPY_OCI_TOKEN")
        user = os.environ.get("RELOCPY_OCI_USERNAME")
        if user is not None:
            password = os.environ.get("RELOCPY_OCI_PASSWORD", "")
            return cls(basic=(user, password), source="RELOCPY_OCI_USERNAME/PASSWORD")
        found = _docker_config_auth(host)
        if found is not None:
            return cls(basic=found, source="docker config.json")
        return cls()


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class OciClient:
    """One repository of one registry."""

    def __init__(
        self, location: str | OciLocation, credentials: Credentials | None = None, timeout=30.0
    ) -> None:
        self.where = parse_location(location) if isinstance(location, str) else location
        self.credentials = credentials or Credentials.from_environment(self.where.host)
        self.timeout = timeout
        self._authorization: str | None = (
            f"Bearer {self.credentials.token}" if self.credentials.token else None
        )

    # ---- requests --------------------------------------------------------------------------

    def _open(
        self,
        method: str,
        url: str,
        data: bytes | IO[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The response to one request, authenticating once if challenged and retrying a read
        that meets a server error."""
        authenticated, delays = False, iter(_RETRY_DELAYS if method in ("GET", "HEAD") else ())
        while True:
            request = urllib.request.Request(url, data=data, method=method)
            for key, value in (headers or {}).items():
                request.add_header(key, value)
            if self._authorization:
                request.add_header("Authorization", self._authorization)
            try:
                return urllib.request.urlopen(request, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and not authenticated and self._authenticate(exc):
                    authenticated = True
                    if hasattr(data, "seek"):
                        data.seek(0)  # type: ignore[union-attr]
                    continue
                delay = next(delays, None) if exc.code in _SERVER_ERRORS else None
                if delay is None:
                    raise self._http_error(exc, method, url) from None
                exc.close()
                time.sleep(delay)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise OciError(
                    f"cannot reach the registry {self.where.host}: {reason}",
                    hint="check the host and port of the oci:// location, and that the registry"
                    " runs",
                ) from None

    def _http_error(self, exc: urllib.error.HTTPError, method: str, url: str) -> OciError:
        path = urllib.parse.urlsplit(url).path
        try:
            body = json.loads(exc.read() or b"{}")
            codes = [str(e.get("code", "?")) for e in body.get("errors", [])]
        except (ValueError, AttributeError, OSError):
            codes = []
        detail = f" ({', '.join(codes)})" if codes else ""
        if exc.code in (401, 403):
            said = (
                "refused the credentials from " + self.credentials.source
                if self.credentials.source != "none"
                else "asks for credentials and none were given"
            )
            return OciError(
                f"the registry {self.where.host} {said}: {exc.code} for {method} {path}{detail}",
                hint="set RELOCPY_OCI_USERNAME and RELOCPY_OCI_PASSWORD, or RELOCPY_OCI_TOKEN,"
                f" or log in with `docker login {self.where.host}`",
                status=exc.code,
                codes=codes,
            )
        kind = OciNotFound if exc.code == 404 else OciError
        return kind(
            f"the registry {self.where.host} answered {exc.code} for {method} {path}{detail}",
            status=exc.code,
            codes=codes,
        )

    def _authenticate(self, exc: urllib.error.HTTPError) -> bool:
        """Answer a 401 challenge; False if there is nothing to answer it with."""
        scheme, params = _challenge(exc.headers.get("Www-Authenticate", ""))
        basic = self.credentials.basic
        if scheme == "basic" and basic:
            encoded = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            self._authorization = f"Basic {encoded}"
            return True
        if scheme == "bearer" and "realm" in params:
            query = {k: v for k, v in params.items() if k in ("service", "scope")}
            url = params["realm"] + ("?" + urllib.parse.urlencode(query) if query else "")
            request = urllib.request.Request(url)
            if basic:
                encoded = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
                request.add_header("Authorization", f"Basic {encoded}")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = json.loads(response.read())
            except urllib.error.HTTPError as token_exc:
                raise OciError(
                    f"the token service {params['realm']} refused the credentials from"
                    f" {self.credentials.source}: {token_exc.code}",
                    hint="check RELOCPY_OCI_USERNAME/RELOCPY_OCI_PASSWORD or docker's config.json",
                ) from None
            except (urllib.error.URLError, OSError, ValueError) as token_exc:
                raise OciError(f"cannot get a token from {params['realm']}: {token_exc}") from None
            token = answer.get("token") or answer.get("access_token")
            if not token:
                raise OciError(f"the token service {params['realm']} sent no token")
            self._authorization = f"Bearer {token}"
            return True
        return False

    # ---- manifests ---------------------------------------------------------------------------

    def manifest(self, reference: str) -> tuple[dict[str, Any], str] | None:
        """The manifest tagged `reference` (or with that digest) and its digest, checked; None
        if the registry has no such tag."""
        if not (_TAG.match(reference) or _DIGEST.match(reference)):
            raise OciError(f"{reference!r} is neither a tag nor a digest")
        url = f"{self.where.api}/manifests/{reference}"
        try:
            with self._open("GET", url, headers={"Accept": MANIFEST_TYPE}) as response:
                body = response.read()
                said = response.headers.get("Docker-Content-Digest")
        except OciNotFound:
            return None
        digest = sha256_digest(body)
        expected = reference if _DIGEST.match(reference) else said
        if expected and digest != expected:
            raise OciError(
                f"the manifest {self.where.url}:{reference} has digest {digest}, but the registry"
                f" names it {expected}: it was altered in the registry's storage",
                hint="push the spec again (or delete the tag); nothing from it was used",
            )
        try:
            manifest = json.loads(body)
            layers = manifest["layers"]
            for layer in layers:
                if not _DIGEST.match(layer["digest"]) or not isinstance(layer["size"], int):
                    raise ValueError(f"bad layer {layer!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise OciError(
                f"the manifest {self.where.url}:{reference} is malformed: {exc}"
            ) from None
        return manifest, digest

    def put_manifest(self, tag: str, manifest: dict[str, Any]) -> str:
        if not _TAG.match(tag):
            raise OciError(f"{tag!r} is not a valid tag")
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        url = f"{self.where.api}/manifests/{tag}"
        delays = iter(_RETRY_DELAYS)
        while True:
            try:
                with self._open("PUT", url, body, {"Content-Type": MANIFEST_TYPE}):
                    return sha256_digest(body)
            except OciError as exc:
                raced = exc.status == 400 and exc.codes & _LAYER_RACE
                delay = next(delays, None) if raced else None
                if delay is None:
                    raise
                named = [manifest.get("config", {}), *manifest.get("layers", [])]
                digests = [d["digest"] for d in named if "digest" in d]
                missing = [digest for digest in digests if not self.has_blob(digest)]
                if missing:
                    raise OciError(
                        f"the registry {self.where.host} refused the manifest {tag}: it lacks"
                        f" the blob{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                        hint="push the blobs before the manifest",
                        status=exc.status,
                        codes=exc.codes,
                    ) from None
                time.sleep(delay)  # every blob is there: another push was committing one

    def tags(self) -> list[str]:
        found: list[str] = []
        url: str | None = f"{self.where.api}/tags/list?n=1000"
        while url:
            try:
                with self._open("GET", url) as response:
                    data = json.loads(response.read())
                    link = response.headers.get("Link")
            except OciNotFound:
                return []  # a repository nobody pushed to yet
            found += data.get("tags") or []
            match = re.match(r"<([^>]+)>", link or "")
            url = urllib.parse.urljoin(url, match.group(1)) if match else None
        return found

    def delete_manifest(self, digest: str) -> None:
        with self._open("DELETE", f"{self.where.api}/manifests/{digest}"):
            pass

    # ---- blobs -------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        try:
            with self._open("HEAD", f"{self.where.api}/blobs/{digest}"):
                return True
        except OciNotFound:
            return False

    def push_blob(self, data: bytes | Path, digest: str | None = None) -> tuple[str, int]:
        """Upload a blob (monolithic POST then PUT) unless the registry has it already."""
        if isinstance(data, Path):
            digest = digest or file_digest(data)
            size = data.stat().st_size
        else:
            digest = digest or sha256_digest(data)
            size = len(data)
        if self.has_blob(digest):
            return digest, size
        with self._open("POST", f"{self.where.api}/blobs/uploads/", b"") as response:
            location = response.headers["Location"]
        url = urllib.parse.urljoin(f"{self.where.api}/", location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if isinstance(data, Path):
            with data.open("rb") as handle, self._open("PUT", url, handle, headers):
                pass
        else:
            with self._open("PUT", url, data, headers):
                pass
        return digest, size

    def open_blob(self, digest: str, offset: int = 0) -> Any:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self._open("GET", f"{self.where.api}/blobs/{digest}", headers=headers)

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as response:
            body = response.read()
        if sha256_digest(body) != digest:
            raise OciError(
                f"the blob {digest} from {self.where.url} has digest {sha256_digest(body)}:"
                " it was altered in the registry's storage",
                hint="push it again; it was not used",
            )
        return body

    def pull_blob(
        self, digest: str, size: int, target: Path, reporter: Reporter | None = None, name=""
    ) -> Path:
        """Write the blob to `target` (via `target.part`) after checking its digest."""
        reporter = reporter or QuietReporter()
        part = target.with_name(target.name + ".part")
        hasher = hashlib.sha256()
        done = 0
        try:
            with self.open_blob(digest) as response, part.open("wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    hasher.update(chunk)
                    done += len(chunk)
                    reporter.bytes_done(name or digest[:19], done, size or None)
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest or (size and done != size):
                raise OciError(
                    f"{name or digest} from {self.where.url} has digest {actual} ({done} bytes),"
                    f" but its manifest says {digest} ({size} bytes)",
                    hint="the registry's copy is damaged; push it again. Nothing was kept.",
                )
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        return target


def layer(name: str, digest: str, size: int, media_type: str) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": digest,
        "size": size,
        "annotations": {TITLE: name},
    }


def artifact_manifest(
    artifact_type: str, layers: Iterable[dict[str, Any]], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """An OCI image manifest for an ORAS artifact (empty config, `artifactType` set)."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": sha256_digest(EMPTY_BLOB), "size": 2},
        "layers": list(layers),
    }
    if annotations:
        manifest["annotations"] = annotations
    return manifest


def titled_layers(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Layers by their title (file name); an untitled layer or a title that is not a plain
    file name is an error, so a manifest can never name a path outside a directory."""
    out = {}
    for item in manifest.get("layers", []):
        title = (item.get("annotations") or {}).get(TITLE)
        if not isinstance(title, str) or not title or "/" in title or title.startswith("."):
            raise OciError(f"a manifest layer has no plain file name as its title: {title!r}")
        out[title] = item
    return out
