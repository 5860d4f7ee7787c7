"""The CA fallback appended to a self-contained tree's ssl module, exercised in the real tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from relocpy.core.tree import clean_env
from relocpy.repair.cacerts import MARKER, add_ca_fallback

STATS = "import ssl; print(ssl.create_default_context().cert_store_stats()['x509_ca'])"


def test_fallback_is_appended_once(tmp_path: Path) -> None:
    (tmp_path / "ssl.py").write_text("import os\n")
    add_ca_fallback(tmp_path)
    add_ca_fallback(tmp_path)
    assert (tmp_path / "ssl.py").read_text().count(MARKER) == 1


@pytest.mark.real
def test_tree_finds_the_hosts_bundle_with_a_clean_environment(built_tree) -> None:
    # OpenSSL's own /etc/ssl/cert.pem does not exist on Debian; the fallback finds
    # /etc/ssl/certs/ca-certificates.crt, so certificates are loaded up front.
    assert not Path("/etc/ssl/cert.pem").exists()
    out = subprocess.run(
        [str(built_tree.executable), "-c", STATS], capture_output=True, text=True, env=clean_env()
    )
    assert int(out.stdout) > 50, out.stderr


@pytest.mark.real
def test_explicit_ssl_cert_file_wins(built_tree, tmp_path: Path) -> None:
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    first = bundle[: bundle.index("-----END CERTIFICATE-----") + 26]
    one = tmp_path / "one.pem"
    one.write_text(first)
    env = {**clean_env(), "SSL_CERT_FILE": str(one)}
    out = subprocess.run(
        [str(built_tree.executable), "-c", STATS], capture_output=True, text=True, env=env
    )
    assert out.stdout.strip() == "1", out.stderr
