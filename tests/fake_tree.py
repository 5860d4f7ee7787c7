"""Small interpreter-shaped archives for install fault tests (the real one is in conftest)."""

from __future__ import annotations

import os
from pathlib import Path

from relocpy.core.archive import write_archives
from relocpy.package.archives import archive_stem

SYSCONFIG = (
    "# system configuration generated and used by the sysconfig module\n"
    "build_time_vars = {'VERSION': '3.99', 'prefix': '/install', 'LDVERSION': '3.99'}\n"
)


def make_fake_archives(
    directory: Path,
    version: str = "3.99.0",
    build: str = "20260101",
    payload: int = 0,
    files: int = 0,
) -> tuple[Path, Path]:
    """A `python/` tree that inspect_tree accepts; `payload` random bytes, `files` extra files."""
    short = ".".join(version.split(".")[:2])
    root = directory / f"tree-{version}-{build}"
    (root / "bin").mkdir(parents=True)
    exe = root / "bin" / f"python{short}"
    exe.write_text(f'#!/bin/sh\necho fake {version} "$@"\n')
    exe.chmod(0o755)
    stdlib = root / "lib" / f"python{short}"
    (stdlib / f"config-{short}-x86_64-linux-gnu").mkdir(parents=True)
    (stdlib / "_sysconfigdata__linux_x86_64-linux-gnu.py").write_text(
        SYSCONFIG.replace("3.99", short)
    )
    (root / "include" / f"python{short}").mkdir(parents=True)
    (root / "include" / f"python{short}" / "patchlevel.h").write_text(
        f'#define PY_VERSION "{version}"\n'
    )
    if payload:
        (root / "payload.bin").write_bytes(os.urandom(payload))
    for index in range(files):
        (stdlib / f"module_{index}.py").write_text(f"VALUE = {index}\n" * 50)
    stem = archive_stem(version, build, triple="x86_64-unknown-linux-gnu")
    gz, zst = directory / f"{stem}.tar.gz", directory / f"{stem}.tar.zst"
    write_archives(root, "python", gz, zst, lambda rel: True)
    return gz, zst


def write_unchecked_index(directory: Path) -> None:
    """An `index.json` for every archive in `directory`, written as a careless or hostile mirror
    would: from the file names alone, without opening anything (`relocpy mirror index` refuses
    archives that do not hold what their names say)."""
    import json
    from dataclasses import asdict

    from relocpy.core.checksums import sha256_file
    from relocpy.package.mirror import INDEX_FORMAT, _entry_from_fields, parse_archive_name

    archives = []
    for path in sorted(directory.iterdir()):
        fields = parse_archive_name(path.name)
        if fields is not None:
            entry = _entry_from_fields(path.name, fields, sha256_file(path))
            archives.append({**asdict(entry), "size": path.stat().st_size, "glibc_floor": None})
    (directory / "index.json").write_text(
        json.dumps({"format": INDEX_FORMAT, "archives": archives})
    )
