"""The CA-certificate fallback that a tree with its own OpenSSL carries in its ssl module.

The fallback text lives in `runtime/ssl_ca_fallback.py` and is appended to the tree's ssl.py once.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

MARKER = "# --- relocpy: CA certificate fallback"


def fallback_source() -> str:
    return resources.files("relocpy").joinpath("runtime/ssl_ca_fallback.py").read_text("utf-8")


def add_ca_fallback(stdlib: Path) -> Path:
    """Append the fallback to `stdlib/ssl.py` (idempotent); return the file changed."""
    ssl_py = stdlib / "ssl.py"
    text = ssl_py.read_text(encoding="utf-8")
    if MARKER not in text:
        ssl_py.write_text(text.rstrip("\n") + "\n\n\n" + fallback_source(), encoding="utf-8")
    return ssl_py
