"""Packaging a repaired tree as python-build-standalone style `install_only` archives.

Names, member filters and metadata are decided here; `archive.py` does the byte work.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from relocpy.core.archive import GZIP_LEVEL_SMALLEST, iter_tree, write_archives, write_gz
from relocpy.core.checksums import sha256_file
from relocpy.core.errors import ToolFailedError
from relocpy.core.sbom import SBOM_PATH, make_sbom
from relocpy.core.targets import Target, needs_emulation
from relocpy.core.tree import InterpreterTree
from relocpy.elf.policy import policy_for_glibc
from relocpy.elf.read import iter_elf_files
from relocpy.repair.relocate import source_of_pyc

TARGET_TRIPLE = f"{platform.machine() or 'x86_64'}-unknown-linux-gnu"
_TEST_DIRS = {"test", "tests", "idle_test"}


def archive_stem(
    version: str, build: str, flavour: str = "install_only", triple: str = TARGET_TRIPLE
) -> str:
    return f"cpython-{version}+{build}-{triple}-{flavour}"


def target_triple(march: str = "x86-64") -> str:
    """python-build-standalone's triple for a CPU level: x86_64_v3-unknown-linux-gnu."""
    arch = platform.machine() or "x86_64"
    if arch == "x86_64" and march != "x86-64":
        arch = march.replace("x86-64", "x86_64").replace("-", "_")
    return f"{arch}-unknown-linux-gnu"


def _build_options(free_threaded: bool, static: bool) -> list[str]:
    return [*(["freethreaded"] if free_threaded else []), *(["static"] if static else [])]


def flavour_name(flavour: str, free_threaded: bool = False, static: bool = False) -> str:
    """`install_only`; `freethreaded+install_only` for a free-threaded build, and
    `static+install_only` for a static one (musl: every extension module built in)."""
    return "+".join([*_build_options(free_threaded, static), flavour])


def variant_name(free_threaded: bool = False, static: bool = False) -> str:
    """The metadata's and mirror index's variant: default, freethreaded, static."""
    return "+".join(_build_options(free_threaded, static)) or "default"


_PYC_FLAGS = slice(4, 8)
_PYC_MTIME = slice(8, 12)
_PYC_SIZE = slice(12, 16)
_PYC_HASH = slice(8, 16)  # in a hash-based pyc, where the mtime and size are


def pin_timestamps(root: Path, epoch: int) -> int:
    """Give every file under `root` the mtime `epoch`, and re-stamp timestamp-based `.pyc`
    headers to match their sources; returns how many `.pyc` files were re-stamped.

    Archives then carry no build time, and the bytecode stays valid: a `.pyc` records its
    source's mtime and size, and CPython recompiles when they differ from the file's.
    """
    stamped = 0
    for pyc in sorted(root.rglob("__pycache__/*.pyc")):
        source = source_of_pyc(pyc)
        data = bytearray(pyc.read_bytes())
        if len(data) < 16 or int.from_bytes(data[_PYC_FLAGS], "little") != 0:
            continue  # hash-based pycs carry no time
        if not source.is_file():
            continue
        if int.from_bytes(data[_PYC_SIZE], "little") != source.stat().st_size & 0xFFFFFFFF:
            continue  # stale already; leave it to CPython
        data[_PYC_MTIME] = (epoch & 0xFFFFFFFF).to_bytes(4, "little")
        pyc.write_bytes(bytes(data))
        stamped += 1
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*filenames, *dirnames]:
            os.utime(Path(dirpath) / name, (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))
    return stamped


_PYC_HASH_BASED = 0b01
_PYC_CHECK_SOURCE = 0b10


def _source_hash(pyc_header: bytes, source: bytes) -> bytes:
    """The hash a hash-based `.pyc` with this header holds for `source`: CPython keys it with
    the pyc's magic number. This interpreter's algorithm (SipHash-1-3 since 3.11) matches
    trees of 3.11 and later; for older ones it differs, and their bytecode stays checked."""
    import _imp

    return _imp.source_hash(int.from_bytes(pyc_header[:4], "little"), source)


def uncheck_hash_pycs(root: Path) -> int:
    """Make the checked hash-based `.pyc` files under `root` unchecked where they still match
    their source; returns how many.

    CPython's `make install` compiles the standard library with SOURCE_DATE_EPOCH set, and
    py_compile then writes checked hash-based bytecode: each import opens and reads the source
    too, and hashes it (3.13's `import json, ssl, asyncio, sqlite3`: twice the opens, +3.4%
    instructions). An unchecked one keeps its source's hash, so it stays byte-reproducible,
    stays valid after any move, copy or unpacking whatever the mtimes, and reads no source.
    A source changed after it was compiled (a static build's patched ctypes) keeps checked
    bytecode, which CPython recompiles from the source. Edits to a standard-library source
    made later are not seen until its `.pyc` is removed, or with
    `python --check-hash-based-pycs always`.
    """
    changed = 0
    for pyc in sorted(root.rglob("__pycache__/*.pyc")):
        source = source_of_pyc(pyc)
        with pyc.open("r+b") as handle:
            header = handle.read(16)
            if len(header) < 16:
                continue
            flags = int.from_bytes(header[_PYC_FLAGS], "little")
            if flags != _PYC_HASH_BASED | _PYC_CHECK_SOURCE or not source.is_file():
                continue
            if _source_hash(header, source.read_bytes()) != header[_PYC_HASH]:
                continue  # stale: CPython checks it and compiles the source
            handle.seek(_PYC_FLAGS.start)
            handle.write(_PYC_HASH_BASED.to_bytes(4, "little"))
        changed += 1
    return changed


def include_in_install_only(rel: str, short_version: str) -> bool:
    """The member filter: no test suite, no static libpython, no bytecode of tests."""
    parts = rel.split("/")
    if rel == f"lib/python{short_version}/test" or rel.startswith(
        f"lib/python{short_version}/test/"
    ):
        return False
    if re.fullmatch(r"libpython.*\.a", parts[-1]):
        return False
    return not (parts[-1] == "__pycache__" and any(p in _TEST_DIRS for p in parts[:-1]))


# Extension modules that only CPython's tests import
_TEST_MODULE = re.compile(r"(_test\w*|_ctypes_test|_xxtestfuzz|xxlimited(_35)?)\.[^/]*so$")


def is_test_only(rel: str, short_version: str) -> bool:
    """Tests inside standard-library packages (ctypes/test, idlelib/idle_test, …) and the
    extension modules only tests import (_testcapi, …); site-packages is not looked into."""
    stdlib = f"lib/python{short_version}/"
    if not rel.startswith(stdlib):
        return False
    inner = rel[len(stdlib) :].split("/")
    if inner[0] == "site-packages":
        return False
    if inner[0] == "lib-dynload":
        return len(inner) == 2 and _TEST_MODULE.fullmatch(inner[1]) is not None
    return any(part in _TEST_DIRS for part in inner)


def is_windows_launcher(rel: str, short_version: str) -> bool:
    """The Windows executables pip (distlib) and setuptools carry to make console scripts on
    Windows (t64.exe, cli-64.exe, …): 0.7 MB of a compressed 3.11 tree. They run nowhere a
    Linux tree goes; Debian's python3-pip and python3-setuptools leave them out too."""
    return rel.startswith(f"lib/python{short_version}/site-packages/") and rel.endswith(".exe")


_OPTIMISED_PYC = re.compile(r".*\.opt-[12]\.pyc$")


def include_in_stripped(rel: str, short_version: str) -> bool:
    """install_only_stripped, for deployment: install_only without debug info (`strip_tree`),
    without tests and their bytecode, without the bytecode of `-O`/`-OO` (`.opt-1.pyc`,
    `.opt-2.pyc`: a third of the bytecode, for the few who run `python -O`), and without the
    Windows launchers of pip and setuptools.

    It keeps the plain bytecode, as python-build-standalone's stripped flavour does: without
    it a tree that cannot be written (a read-only container layer, another user's install)
    compiles the standard library from source at every start (0.35-0.50 s for
    `import json, ssl, asyncio, sqlite3`, measured for issue 18), and the first start of
    every install pays the same.
    """
    return (
        _OPTIMISED_PYC.match(rel) is None
        and not is_test_only(rel, short_version)
        and not is_windows_launcher(rel, short_version)
        and include_in_install_only(rel, short_version)
    )


def include_in_test_suite(
    rel: str, short_version: str, parents: frozenset[str] = frozenset()
) -> bool:
    """The test_suite archive: CPython's own `test` package, which install_only leaves out, and
    the tests install_only_stripped leaves out; `parents` are the directories that hold them."""
    test_dir = f"lib/python{short_version}/test"
    return (
        rel in ("lib", f"lib/python{short_version}", test_dir)
        or rel in parents
        or rel.startswith(test_dir + "/")
        or is_test_only(rel, short_version)
    )


def write_test_suite(
    tree: InterpreterTree,
    out_dir: Path,
    *,
    build: str,
    mtime: int | None = None,
    triple: str = TARGET_TRIPLE,
    free_threaded: bool = False,
) -> Path:
    """`<stem>-test_suite.tar.gz`: unpacked over an install_only tree, it runs `-m test`."""
    flavour = flavour_name("test_suite", free_threaded)
    path = out_dir / f"{archive_stem(tree.version, build, flavour, triple)}.tar.gz"
    every = (p.relative_to(tree.root).as_posix() for p in iter_tree(tree.root, lambda _: True))
    frozen = frozenset(
        parent.as_posix()
        for rel in every
        if is_test_only(rel, tree.short_version)
        for parent in PurePosixPath(rel).parents
    )
    write_gz(
        tree.root,
        "python",
        path,
        lambda rel: include_in_test_suite(rel, tree.short_version, frozen),
        mtime,
    )
    (path.parent / f"{path.name}.sha256").write_text(f"{sha256_file(path)}  {path.name}\n")
    return path


@dataclass(frozen=True)
class BundledLibrary:
    soname: str
    file: str
    package: str | None
    version: str | None
    license: str | None = None  # Debian's short name for the package's main licence


def bundled_libraries(grafted: dict[str, str], host_paths: dict[str, str]) -> list[BundledLibrary]:
    """Grafted libraries with the Debian package, version and licence they came from (dpkg and
    the package's machine-readable copyright file, where present)."""
    libraries = []
    for soname, file in sorted(grafted.items()):
        package = version = None
        host = host_paths.get(soname)
        if host:
            package, version = _dpkg_owner(host)
        licence = (
            debian_license(Path("/usr/share/doc") / package / "copyright") if package else None
        )
        libraries.append(BundledLibrary(soname, file, package, version, licence))
    return libraries


def debian_license(copyright_file: Path) -> str | None:
    """The `License:` of the `Files: *` paragraph of a DEP-5 copyright file (`GPL-3+`,
    `Apache-2.0`, Debian's short names), or None where the file is not machine-readable."""
    try:
        text = copyright_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for paragraph in re.split(r"\n\s*\n", text):
        fields = dict(
            line.split(":", 1) for line in paragraph.splitlines() if re.match(r"^[A-Za-z-]+:", line)
        )
        if fields.get("Files", "").split()[:1] == ["*"] and fields.get("License", "").strip():
            return fields["License"].strip()
    return None


def _dpkg_owner(path: str) -> tuple[str | None, str | None]:
    for candidate in (path, os.path.realpath(path)):
        try:
            owner = subprocess.run(
                ["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            return None, None
        if owner.returncode == 0 and ":" in owner.stdout:
            package = owner.stdout.split(":", 2)[0].strip()
            arch_package = owner.stdout.split(": ", 1)[0].strip()
            version = (
                subprocess.run(
                    ["dpkg-query", "-W", "-f", "${Version}", arch_package],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout.strip()
                or None
            )
            return package, version
    return None, None


def measured_glibc(root: Path) -> tuple[int, ...] | None:
    """The highest GLIBC_ symbol version any ELF file in the tree needs."""
    versions = [info.max_glibc for info in iter_elf_files(root) if info.max_glibc]
    return max(versions) if versions else None


@dataclass(frozen=True)
class PackagedArchives:
    gz: Path
    zst: Path
    metadata: Path
    info: dict[str, object]
    stripped_gz: Path | None = None
    stripped_zst: Path | None = None
    sbom: Path | None = None  # the CycloneDX SBOM beside the archives (also inside the tree)


def strip_tree(root: Path, strip: str = "strip") -> int:
    """Strip debug info and local symbols from every ELF file under `root` (binutils `strip
    --strip-unneeded`: the dynamic symbol table, which extension modules and ctypes use, stays).
    `strip` is the program: this machine's, or binutils' for another CPU (`strip_program`).
    Returns the number of files stripped."""
    paths = [str(info.path) for info in iter_elf_files(root) if not info.path.is_symlink()]
    for start in range(0, len(paths), 200):
        try:
            result = subprocess.run(
                [strip, "--strip-unneeded", *paths[start : start + 200]],
                capture_output=True,
                text=True,
            )
        except FileNotFoundError:
            raise ToolFailedError(
                f"{strip} is not installed", hint=f"apt-get install -y {strip_package(strip)}"
            ) from None
        if result.returncode != 0:
            raise ToolFailedError(f"{strip} failed: {result.stderr.strip()[:500]}")
    return len(paths)


def strip_program(machine: Target) -> str:
    """binutils' strip for `machine`'s ELF files: the host's, or Debian's cross binutils."""
    return f"{machine.cross_prefix}strip" if needs_emulation(machine) else "strip"


def strip_package(program: str) -> str:
    """The Debian package with `program` (strip, aarch64-linux-gnu-strip)."""
    prefix = program.removesuffix("strip").rstrip("-")
    return f"binutils-{prefix}" if prefix else "binutils"


def package_tree(
    tree: InterpreterTree,
    out_dir: Path,
    *,
    build: str,
    metadata: dict[str, object],
    mtime: int | None = None,
    triple: str = TARGET_TRIPLE,
    free_threaded: bool = False,
    stripped: bool = True,
    strip: str = "strip",
    static: bool = False,
) -> PackagedArchives:
    """Write `.tar.gz`, `.tar.zst`, a `.sha256` beside each, and `<stem>.json` into `out_dir`;
    with `stripped`, also the `install_only_stripped` pair (ELF files without debug info, only
    the plain bytecode: see `include_in_stripped`)."""
    stem = archive_stem(
        tree.version, build, flavour_name("install_only", free_threaded, static), triple
    )
    gz = out_dir / f"{stem}.tar.gz"
    zst = out_dir / f"{stem}.tar.zst"
    sbom = out_dir / f"{stem}.cdx.json"
    source = metadata.get("source")
    text = make_sbom(
        metadata,
        tree.version,
        triple,
        mtime if mtime is not None else 0,
        source.get("url") if isinstance(source, dict) else None,
    )
    inside = tree.root / SBOM_PATH
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text(text)
    sbom.write_text(text)
    if mtime is not None:
        for path in (inside, inside.parent, inside.parent.parent):
            os.utime(path, (mtime, mtime))

    def include(rel: str) -> bool:
        return include_in_install_only(rel, tree.short_version)

    write_archives(tree.root, "python", gz, zst, include, mtime)
    written = [gz, zst]
    if stripped:
        flavour = flavour_name("install_only_stripped", free_threaded, static)
        stripped_stem = archive_stem(tree.version, build, flavour, triple)
        copy = out_dir / ".stripped-tree"

        def left_out(directory: str, names: list[str]) -> set[str]:
            # what install_only_stripped never holds is not copied (nor stripped) at all
            base = Path(directory).relative_to(tree.root).as_posix()
            prefix = "" if base == "." else base + "/"
            return {n for n in names if not include_in_stripped(prefix + n, tree.short_version)}

        try:
            shutil.copytree(tree.root, copy, symlinks=True, ignore=left_out)
            strip_tree(copy, strip)
            written += [out_dir / f"{stripped_stem}.tar.gz", out_dir / f"{stripped_stem}.tar.zst"]
            # the copy holds only what include_in_stripped lets through: it is archived whole
            write_archives(
                copy, "python", written[2], written[3], lambda _: True, mtime,
                GZIP_LEVEL_SMALLEST,
            )  # fmt: skip
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    glibc = measured_glibc(tree.root)
    libc = "musl" if triple.endswith("-musl") else "gnu"
    if libc == "musl":  # no glibc symbol versions: the policy says what the tree needs
        policy = "static" if static else "musllinux_1_2"
    else:
        policy = policy_for_glibc(glibc).name
    info: dict[str, object] = {
        "format": 1,
        "python_version": tree.version,
        "python_tag": f"cp{tree.short_version.replace('.', '')}",
        "build": build,
        "target_triple": triple,
        "flavour": "install_only",
        "variant": variant_name(free_threaded, static),
        "libc": libc,
        "glibc_floor": ".".join(map(str, glibc)) if glibc and libc == "gnu" else None,
        "policy": policy,
        **metadata,
        # what install_only_stripped holds of the bytecode: "plain" (`.pyc` of the standard
        # library, for `python` without -O). Installers prefer it where this says so.
        "stripped_bytecode": "plain" if stripped else None,
        "sbom": {"file": sbom.name, "in_tree": SBOM_PATH},
        "archives": {},
    }
    archives: dict[str, object] = {}
    for path in written:
        digest = sha256_file(path)
        (path.parent / f"{path.name}.sha256").write_text(f"{digest}  {path.name}\n")
        archives[path.name] = {"sha256": digest, "size": path.stat().st_size}
    info["archives"] = archives
    meta_path = out_dir / f"{stem}.json"
    meta_tmp = meta_path.with_name(meta_path.name + ".part")
    meta_tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    os.replace(meta_tmp, meta_path)
    return PackagedArchives(
        gz, zst, meta_path, info, *(written[2:4] if stripped else (None, None)), sbom
    )
