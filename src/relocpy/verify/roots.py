"""Minimal roots to run a tree in, and a wheel to install there.

An empty root holds the tree alone (a static build needs nothing else); a musl root adds musl's
loader, which is also its C library, and nothing more (`sources.loaders` finds it, for another
CPU too). The wheel wraps a C extension built for the tree into a binary wheel with a platform
tag (musllinux_1_2_x86_64), as a wheel from an index would come.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

WHEEL_NAME = "relocpy_cprobe"
WHEEL_VERSION = "1.0"


def make_root(tree_root: Path, root: Path, loader: Path | None = None) -> str:
    """`root` with the tree at /python (hard links) and, if given, `loader` at musl's loader
    path, /lib/<its name> (a copy: the host's may be a link into its multiarch directory).
    Returns the tree's path inside the root."""
    root.mkdir(parents=True)
    shutil.copytree(tree_root, root / "python", symlinks=True, copy_function=os.link)
    if loader is not None:
        inside = root / "lib" / loader.name
        inside.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(loader.resolve(), inside)
    return "/python"


@contextlib.contextmanager
def root_with_tree(
    tree_root: Path, executable: Path, root: Path, loader: Path | None = None
) -> Iterator[str]:
    """`make_root` for the time of the `with`, then removed; yields the path `executable` (a
    file of the tree) has inside the root."""
    try:
        inside = make_root(tree_root, root, loader)
        yield f"{inside}/{executable.relative_to(tree_root).as_posix()}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def write_extension_wheel(extension: Path, out_dir: Path, tag: str) -> Path:
    """A wheel holding the compiled `extension` (relocpy_cprobe<EXT_SUFFIX>) with the wheel
    tag `tag` (cp313-cp313-musllinux_1_2_x86_64); its RECORD has every file's hash."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info = f"{WHEEL_NAME}-{WHEEL_VERSION}.dist-info"
    files = {
        extension.name: extension.read_bytes(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {WHEEL_NAME}\nVersion: {WHEEL_VERSION}\n"
        ).encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: relocpy\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ).encode(),
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    wheel = out_dir / f"{WHEEL_NAME}-{WHEEL_VERSION}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel
