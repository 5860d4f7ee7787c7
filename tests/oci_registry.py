"""A real OCI registry on loopback: Debian's docker-registry (CNCF distribution v2) with a
basic-auth (htpasswd) realm and deletes enabled, its storage in a test directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

USER, PASSWORD = "relocpy", "s3cret-for-tests"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = root / "storage"
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, repository: str = "relocpy") -> str:
        return f"oci://{self.host}/{repository}"

    def env(self, user: str = USER, password: str = PASSWORD) -> dict[str, str]:
        return {"RELOCPY_OCI_USERNAME": user, "RELOCPY_OCI_PASSWORD": password}

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob (manifests are blobs too)."""
        hexa = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"

    def __enter__(self) -> Registry:
        binary = shutil.which("docker-registry")
        if binary is None:
            pytest.fail("docker-registry is missing: scripts/setup installs it (Debian package)")
        self.root.mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (self.root / "htpasswd").write_text(f"{USER}:{hashed}\n")
        (self.root / "config.yml").write_text(
            "version: 0.1\n"
            "log: {level: error}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}},"
            " }\n"
            f"http: {{addr: '{self.host}'}}\n"
            f"auth: {{htpasswd: {{realm: relocpy-test, path: {self.root / 'htpasswd'}}}}}\n"
        )
        log = (self.root / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [binary, "serve", str(self.root / "config.yml")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__()
        pytest.fail(f"docker-registry did not start: {(self.root / 'registry.log').read_text()}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
