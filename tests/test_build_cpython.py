"""The real build: CPython 3.13 from its pinned source, packaged and verified (once per session)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import passed_checks
from relocpy.sources.catalog import resolve_cpython
from relocpy.sources.fetch import SourceCache, resolve_reachable
from relocpy.verify.checks import verify

RELOCPY = [sys.executable, "-m", "relocpy"]
_PATH_ONLY = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


@pytest.mark.real
def test_build_writes_archives_checksums_and_metadata(built_archive) -> None:
    archives = built_archive.archives
    pin = resolve_reachable("3.13")  # the newest 3.13 this machine can get the source of
    stem = f"cpython-{pin.version}+20260101-x86_64-unknown-linux-gnu-install_only"
    assert archives.gz.name == f"{stem}.tar.gz" and archives.zst.name == f"{stem}.tar.zst"
    for archive in (archives.gz, archives.zst):
        line = (archive.parent / f"{archive.name}.sha256").read_text()
        assert line == f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  {archive.name}\n"
    meta = json.loads(archives.metadata.read_text())
    assert meta["python_version"] == pin.version
    assert meta["build_options"]["opt"] == "noopt"
    # the default flavour says what it is for, and names the release flavour
    assert meta["flavour"].startswith("noopt: quick to build")
    assert "slower than Debian's" in meta["flavour"] and "--opt pgo+lto" in meta["flavour"]
    assert meta["build_options"]["bolt"] is False
    assert meta["source"]["sha256"] == pin.sha256
    floor = tuple(int(part) for part in meta["glibc_floor"].split("."))
    assert floor <= (2, 17) and meta["policy"] == "manylinux_2_17"
    assert meta["build_options"]["toolchain"] == "zig"
    assert meta["build_options"]["libs"] == "source"
    libraries = {lib["name"]: lib for lib in meta["bundled_libraries"]}
    assert {"openssl", "libffi", "sqlite", "zlib", "tk", "libx11", "ncurses"} <= set(libraries)
    assert all(lib["source_sha256"] and lib["license"] for lib in libraries.values())
    assert built_archive.log.is_file() and "make install" in built_archive.log.read_text()
    # Nothing else is left in the output directory (no partial files).
    names = sorted(p.name for p in archives.gz.parent.iterdir())
    assert names == sorted(
        [
            archives.gz.name,
            archives.zst.name,
            f"{archives.gz.name}.sha256",
            f"{archives.zst.name}.sha256",
            archives.stripped_gz.name,
            archives.stripped_zst.name,
            f"{archives.stripped_gz.name}.sha256",
            f"{archives.stripped_zst.name}.sha256",
            archives.metadata.name,
            f"{stem}.cdx.json",
            built_archive.log.name,
            built_archive.test_suite.name,
            f"{built_archive.test_suite.name}.sha256",
            built_archive.pybi.name,  # the session's build, like scripts/build, asks for it
        ]
    )
    with tarfile.open(built_archive.test_suite) as tar:
        assert "python/lib/python3.13/test/test_ssl.py" in tar.getnames()


@pytest.mark.real
def test_archive_layout_is_install_only(built_archive) -> None:
    with tarfile.open(built_archive.archives.gz) as tar:
        names = tar.getnames()
    assert all(name == "python" or name.startswith("python/") for name in names)
    assert "python/bin/python3" in names
    assert not [n for n in names if "/python3.13/test/" in n]
    assert not [n for n in names if n.endswith(".a")]
    assert not [n for n in names if "/tests/__pycache__" in n or "/idle_test/__pycache__" in n]


@pytest.mark.real
def test_stripped_flavour_is_smaller_and_works(built_archive, tmp_path: Path) -> None:
    from relocpy.core.archive import extract_archive
    from relocpy.core.tree import clean_env

    archives = built_archive.archives
    assert archives.stripped_gz is not None and archives.stripped_zst is not None
    assert archives.stripped_gz.name == archives.gz.name.replace(
        "-install_only.", "-install_only_stripped."
    )
    assert archives.stripped_gz.stat().st_size < 0.75 * archives.gz.stat().st_size
    meta = json.loads(archives.metadata.read_text())
    assert archives.stripped_zst.name in meta["archives"]
    extract_archive(archives.stripped_gz, tmp_path / "stripped tree")
    root = tmp_path / "stripped tree" / "python"
    sections = subprocess.run(
        ["readelf", "-S", "-W", str(root / "bin" / "python3.13")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".debug_info" not in sections and ".symtab" not in sections
    # the plain bytecode of the standard library (valid: see
    # test_stripped_bytecode_is_valid_after_extraction),
    # none of -O/-OO, none of tests
    assert (root / "lib/python3.13/__pycache__/os.cpython-313.pyc").is_file()
    assert not list(root.rglob("*.opt-?.pyc"))
    assert not list(root.glob("lib/python3.13/**/idle_test/__pycache__"))
    # nor the Windows launchers of pip and setuptools; install_only keeps them
    assert not list(root.glob("lib/python3.13/site-packages/**/*.exe"))
    with tarfile.open(archives.gz) as tar:
        assert [n for n in tar.getnames() if n.endswith("/distlib/t64.exe")]
    code = (
        "import ssl, sqlite3, ctypes, _decimal, _tkinter;"
        " print(ctypes.pythonapi.Py_IsInitialized())"
    )
    result = subprocess.run(
        [str(root / "bin" / "python3"), "-c", code], env=clean_env(), capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr
    report = verify(archives.stripped_gz, runtime=False)
    assert report.ok, [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]


@pytest.mark.real
def test_stripped_bytecode_is_valid_after_extraction(built_archive, tmp_path: Path) -> None:
    """The stripped flavour's bytecode is valid after extraction: importing the standard
    library rewrites no .pyc (CPython rewrites a stale one where it can, and compiles it at
    every start where it cannot: a read-only tree). bench/startup.py measures the times."""
    from relocpy.core.archive import extract_archive
    from relocpy.core.tree import clean_env

    extract_archive(built_archive.archives.stripped_zst, tmp_path / "t")
    root = tmp_path / "t" / "python"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.pyc")}
    assert len(before) > 500
    code = "import json, ssl, asyncio, sqlite3, decimal, email.message, venv"
    python = str(root / "bin" / "python3")
    subprocess.run([python, "-c", code], env=clean_env(), check=True)
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*.pyc")}
    assert after == before, (
        sorted(str(p) for p in after.keys() ^ before.keys())[:5]
        or [str(p) for p in after if after[p] != before[p]][:5]
    )


def _debug_strings(path: Path) -> bytes:
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        elf = ELFFile(f)
        return b"".join(
            elf.get_section_by_name(name).data()
            for name in (".debug_str", ".debug_line_str")
            if elf.get_section_by_name(name) is not None
        )


@pytest.mark.real
def test_build_output_names_no_build_directory_or_time(built_tree) -> None:
    """Reproducible builds: __DATE__/__TIME__ come from the build tag's day (SOURCE_DATE_EPOCH)
    and debug info names fixed directories, not the random work directories of this build."""
    from relocpy.core.tree import clean_env

    result = subprocess.run(
        [str(built_tree.executable), "-c", "import sys; print(sys.version)"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Jan  1 2026, 00:00:00" in result.stdout  # build tag 20260101
    dynload = built_tree.stdlib / "lib-dynload"
    for path in (built_tree.executable, next(dynload.glob("_ssl.*.so"))):
        strings = _debug_strings(path)
        assert b"/relocpy/build" in strings, path
        assert b"relocpy-build-" not in strings and b".work-" not in strings, path
    assert b"/relocpy/openssl" in _debug_strings(next(dynload.glob("_ssl.*.so")))


@pytest.mark.real
def test_ssl_and_hashlib_load_one_openssl(built_tree) -> None:
    """_hashlib is a symlink to _ssl, which holds both modules: a process that uses ssl and
    hashlib maps OpenSSL once, and no libcrypto of the host's."""
    from relocpy.core.tree import clean_env

    dynload = built_tree.stdlib / "lib-dynload"
    (ssl_so,) = dynload.glob("_ssl.*.so")
    (hashlib_so,) = dynload.glob("_hashlib.*.so")
    assert hashlib_so.is_symlink() and os.readlink(hashlib_so) == ssl_so.name
    code = (
        "import hashlib, _hashlib, json, ssl\n"
        "assert hashlib.sha256 is _hashlib.openssl_sha256, hashlib.sha256\n"
        "print(hashlib.sha3_256(b'').hexdigest()[:16],"
        " hashlib.pbkdf2_hmac('sha256', b'p', b's', 2).hex()[:8])\n"
        "print(ssl.OPENSSL_VERSION)\n"
        "assert ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED\n"
        "maps = [line.split(maxsplit=5)[-1].strip() for line in open('/proc/self/maps')]\n"
        "print(json.dumps(sorted({m for m in maps if 'ssl' in m or 'crypto' in m"
        " or 'hashlib' in m})))\n"
    )
    result = subprocess.run(
        [str(built_tree.executable), "-c", code], env=clean_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    digest, version, mapped = result.stdout.splitlines()
    assert digest == "a7ffc6f8bf1ed766 1998f3d3"
    assert version.startswith("OpenSSL 3.5.")
    assert json.loads(mapped) == [os.path.realpath(ssl_so)]


@pytest.mark.real
def test_copied_venv_runs_without_libpython(built_tree, tmp_path: Path) -> None:
    """`python` carries libpython inside it, so `venv --copies` (and EnvBuilder's default
    symlinks=False) gives a working interpreter; libpython3.13.so stays for embedding."""
    from relocpy.core.tree import clean_env
    from relocpy.elf.read import read_elf

    info = read_elf(built_tree.executable)
    assert info is not None and not [n for n in info.needed if n.startswith("libpython")]
    assert (built_tree.root / "lib" / "libpython3.13.so.1.0").is_file()
    venv = tmp_path / "copied venv ü"
    subprocess.run(
        [str(built_tree.executable), "-m", "venv", "--copies", str(venv)],
        env=clean_env(),
        check=True,
    )
    assert not (venv / "bin" / "python").is_symlink()
    code = "import sys, ssl, sqlite3, ctypes, _decimal; print(sys.prefix != sys.base_prefix)"
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
    # the embedding library still works: a C program linked with python3-config --embed
    config = built_tree.root / "bin" / "python3.13-config"
    flags = subprocess.run(
        [str(config), "--cflags", "--ldflags", "--embed"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    program = tmp_path / "embed.c"
    program.write_text(
        "#include <Python.h>\nint main(void) { Py_Initialize();"
        ' PyRun_SimpleString("import json; print(json.dumps([1]))"); return Py_FinalizeEx(); }\n'
    )
    exe = tmp_path / "embed"
    subprocess.run(
        ["gcc", str(program), "-o", str(exe), *flags, f"-Wl,-rpath,{built_tree.root / 'lib'}"],
        check=True,
    )
    ran = subprocess.run(
        [str(exe)],
        env=clean_env({"PYTHONHOME": str(built_tree.root)}),
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "[1]", ran.stderr


@pytest.mark.real
@pytest.mark.parametrize("which", ["gz", "zst"])
def test_built_archive_passes_verify(built_archive, which: str) -> None:
    report = verify(getattr(built_archive.archives, which))
    passed_checks(report)
    assert len(report.checks) >= 15
    licences = next(c for c in report.checks if c.name == "licences")
    assert "PSF-2.0" in licences.detail and "GPL: gdbm (GPL-3.0-or-later)" in licences.detail


@pytest.mark.real
def test_the_sbom_is_in_the_tree_and_beside_and_valid(built_archive) -> None:
    """CycloneDX, by the official 1.6 schema (cyclonedx-python-lib's strict validator): CPython
    and every library the metadata lists, each with version, licence, sha256 and purl."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from relocpy.core.sbom import SBOM_PATH

    archives = built_archive.archives
    assert archives.sbom is not None
    beside = archives.sbom.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(beside) is None
    for archive in (archives.gz, archives.stripped_gz):
        with tarfile.open(archive) as tar:
            member = tar.extractfile(f"python/{SBOM_PATH}")
            assert member is not None and member.read().decode() == beside
    meta = json.loads(archives.metadata.read_text())
    sbom = json.loads(beside)
    components = {c["name"]: c for c in sbom["components"]}
    assert set(components) == {"cpython"} | {lib["name"] for lib in meta["bundled_libraries"]}
    assert components["cpython"]["hashes"][0]["content"] == meta["source"]["sha256"]
    for lib in meta["bundled_libraries"]:
        component = components[lib["name"]]
        assert component["version"] == lib["version"]
        assert component["hashes"][0]["content"] == lib["source_sha256"]
        assert component["licenses"] and component["purl"].startswith("pkg:")
    assert meta["sbom"] == {"file": archives.sbom.name, "in_tree": SBOM_PATH}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RELOCPY, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_cli_unknown_version_lists_known_ones(tmp_path: Path) -> None:
    result = _cli("build", "3.99", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "unknown CPython version '3.99'; known versions: 3.8.0–3.8.20, 3.9.0" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_checksum_mismatch_on_seed(tmp_path: Path) -> None:
    fake = tmp_path / "Python-3.13.5.tar.xz"
    fake.write_bytes(b"not the release")
    result = _cli("fetch", "3.13.5", "--file", str(fake))
    assert result.returncode == 2
    assert hashlib.sha256(b"not the release").hexdigest() in result.stderr
    assert resolve_cpython("3.13.5").sha256 in result.stderr


def test_cli_no_compiler(tmp_path: Path) -> None:
    result = _cli(
        "build",
        "3.13",
        "--toolchain",
        "gcc",
        "--out",
        str(tmp_path / "out"),
        env={"CC": "relocpy-no-such-cc"},
    )
    assert result.returncode == 2
    assert "C compiler relocpy-no-such-cc, needed by CPython 3.13" in result.stderr
    assert "apt-get install -y gcc" in result.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--libs", "host"], "--libs host links this host's libraries"),
        (["--toolchain", "gcc", "--glibc", "2.17", "--libs", "host"], "need this host's glibc"),
        (["--glibc", "2.5"], "unsupported glibc floor '2.5'"),
        (["--opt", "pgo+lto"], "--opt pgo+lto needs gcc: zig cannot do profile-guided"),
        (["--opt", "lto"], "--opt lto needs gcc"),
        (["--pgo-training", "extended"], "--pgo-training extended trains a profile-guided"),
    ],
)
def test_cli_refuses_impossible_targets(tmp_path: Path, args: list[str], message: str) -> None:
    result = _cli("build", "3.13", "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 2
    assert message in result.stderr and "hint:" in result.stderr
    assert not any((tmp_path / "out").glob("*"))


def test_cli_output_dir_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _cli("build", "3.13", "--out", str(blocker / "out"))
    assert result.returncode == 2
    assert "cannot create output directory" in result.stderr


def test_cli_not_a_python_prefix(tmp_path: Path) -> None:
    result = _cli("repair", str(tmp_path), "--out", str(tmp_path.parent / "never"))
    assert result.returncode == 2 and "not an installed CPython prefix" in result.stderr


@pytest.mark.real
def test_interrupted_build_leaves_nothing(tmp_path: Path, session_home: Path) -> None:
    """SIGTERM during make: exit 143, no output dir, no build directory left."""
    pin = resolve_reachable("3.13")
    cached = SourceCache().lookup(pin)
    out = tmp_path / "out"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "RELOCPY_HOME": str(session_home)}
    proc = subprocess.Popen(
        [*RELOCPY, "build", "3.13", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + (60 if cached else 300)
    assert proc.stderr is not None
    seen = ""
    for line in proc.stderr:
        seen += line
        if "configure" in line or time.monotonic() > deadline:
            break
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, seen + rest
    assert "terminated" in rest and "Traceback" not in rest
    assert not out.exists()  # the build made it, so the build removed it
    assert list(tmp.iterdir()) == []
    assert not list((session_home / "cache" / "libs").glob(".work-*"))


@pytest.mark.real
def test_every_version_is_self_contained_for_glibc_217(mirror_of_three) -> None:
    """3.9 (setup.py, readline, _crypt), 3.11 and 3.13 all need nothing but glibc 2.17."""
    archives = sorted(mirror_of_three.glob("*-install_only.tar.gz"))
    assert len(archives) == 3
    for archive in archives:
        meta = json.loads(archive.with_name(archive.name.replace(".tar.gz", ".json")).read_text())
        assert meta["policy"] == "manylinux_2_17", archive.name
        report = verify(archive, runtime=False)
        failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
        assert not failed and "elf-glibc-only" in [c.name for c in report.checks], failed
    with tarfile.open(next(a for a in archives if "-3.9." in a.name)) as tar:
        # Python.h of 3.9 includes <crypt.h>; the tree carries it for hosts that do not.
        assert "python/include/python3.9/crypt.h" in tar.getnames()


@pytest.mark.parametrize(
    ("makefile", "opt", "missing"),
    [
        ("PGO_PROF_USE_FLAG=\nCONFIGURE_CFLAGS_NODIST= -std=c11\n", "noopt", []),
        (
            "PGO_PROF_USE_FLAG=\nCONFIGURE_CFLAGS_NODIST= -std=c11\n",
            "pgo+lto",
            ["the PGO flags", "the LTO flags"],
        ),
        (
            "PGO_PROF_USE_FLAG=-fprofile-use -fprofile-correction\n"
            "CONFIGURE_CFLAGS_NODIST= -flto -fuse-linker-plugin -ffat-lto-objects -std=c11\n",
            "pgo+lto",
            [],
        ),
        ("PGO_PROF_USE_FLAG=-fprofile-use\nCONFIGURE_CFLAGS_NODIST=\n", "lto", ["the LTO flags"]),
    ],
)
def test_a_build_fails_when_configure_drops_pgo_or_lto(
    makefile: str, opt: str, missing: list[str]
) -> None:
    """CPython's configure picks PGO/LTO flags by the compiler's name and says nothing when it
    does not know it: the build checks what configure wrote instead of trusting it."""
    from relocpy.build.cpython import missing_optimisations

    assert missing_optimisations(makefile, opt) == missing


@pytest.mark.parametrize(
    ("last_line", "opt", "again"),
    [
        ("make: *** [Makefile:906: profile-run-stamp] Error 2", "pgo+lto", True),
        ("make: *** [Makefile:906: profile-run-stamp] Error 2", "noopt", False),
        ("make: *** [Makefile:2184: Objects/longobject.o] Error 1", "pgo+lto", False),
    ],
)
def test_only_a_failed_training_is_run_again(last_line: str, opt: str, again: bool) -> None:
    """A failed --pgo test (3.13 makes that fatal) costs one more training, not the build;
    a failed compile is not retried."""
    from relocpy.build.cpython import training_failed

    assert training_failed(f"make failed (exit 2): {last_line}", opt) is again


def test_pgo_stages_show_as_steps(tmp_path: Path) -> None:
    """A profile-guided make announces its three stages; each becomes the visible step."""
    from relocpy.build.cpython import PGO_MILESTONES
    from relocpy.core.progress import QuietReporter
    from relocpy.core.runner import run_logged

    script = (
        "echo 'Running code to generate profile data (this can take a while):';"
        " echo 'Building with support for profile generation:'; echo cc -c x.c;"
        " echo 'LD_LIBRARY_PATH=/b ./python -m test --pgo --timeout=1200 || true';"
        " echo '0:00:01 [ 1/44] test_array'; echo 'Rebuilding with profile guided optimizations:'"
    )
    reporter = QuietReporter()
    log = tmp_path / "make.log"
    run_logged(["sh", "-c", script], tmp_path, log, reporter, "make", {}, PGO_MILESTONES)
    assert reporter.steps == list(PGO_MILESTONES.values())
    assert "[ 1/44] test_array" in log.read_text()


_LINK_MAKEFILE = """\
LINKCC=\tgcc
PY_CORE_LDFLAGS=
LINKFORSHARED=\t-Xlinker -export-dynamic
LIBRARY_OBJS=\tObjects/object.o
LIBS=\t-lm
"""


@pytest.mark.parametrize(("pie", "elf_type"), [(True, "ET_DYN"), (False, "ET_EXEC")])
def test_static_python_is_linked_pie_or_not(tmp_path: Path, pie: bool, elf_type: str) -> None:
    """The rule links what CPython's Makefile names, PIC objects as CPython compiles them;
    pie=False makes a position-dependent executable that still exports its API."""
    from elftools.elf.elffile import ELFFile

    from relocpy.build.cpython import MakeRun, link_static_python
    from relocpy.core.progress import QuietReporter

    source = tmp_path / "src"
    (source / "Programs").mkdir(parents=True)
    (source / "Objects").mkdir()
    (source / "Makefile").write_text(_LINK_MAKEFILE)
    (tmp_path / "object.c").write_text("int Py_Answer(void) { return 42; }\n")
    (tmp_path / "python.c").write_text(
        "int Py_Answer(void);\nint main(void) { return Py_Answer() == 42 ? 0 : 1; }\n"
    )
    for name, obj in (("object.c", "Objects/object.o"), ("python.c", "Programs/python.o")):
        subprocess.run(
            ["gcc", "-fPIC", "-O2", "-c", str(tmp_path / name), "-o", str(source / obj)],
            check=True,
        )
    log = tmp_path / "log"
    run = MakeRun(source, tmp_path, "make", log, QuietReporter(), dict(os.environ))
    exe = link_static_python(run, pie)
    with exe.open("rb") as f:
        elf = ELFFile(f)
        assert elf.header["e_type"] == elf_type
        exported = {
            sym.name
            for sym in elf.get_section_by_name(".dynsym").iter_symbols()
            if sym["st_shndx"] != "SHN_UNDEF"
        }
    assert "Py_Answer" in exported  # extension modules resolve the C API from the executable
    assert subprocess.run([str(exe)]).returncode == 0
    assert ("-no-pie" in log.read_text()) is not pie


_SLOW = "test_socket test_tools test_multiprocessing_fork test_multiprocessing_forkserver"
_SLOW += " test_multiprocessing_spawn test_concurrent_futures"
_PROFILE_MAKEFILE = """\
TESTTIMEOUT=\t1200
PROFILE_TASK=\t-m test --pgo --timeout=$(TESTTIMEOUT)
all:
\t$(MAKE) run_profile_task
run_profile_task:
\t@echo 'training:' $(PROFILE_TASK)
"""


@pytest.mark.parametrize(
    ("opt", "training", "task"),
    [
        ("pgo+lto", "pgo", "-m test --pgo --timeout=1200"),
        ("pgo+lto", "extended", f"-m test --pgo-extended -j3 --timeout=1200 -x {_SLOW}"),
        ("pgo", "extended", f"-m test --pgo-extended -j3 --timeout=1200 -x {_SLOW}"),
        ("lto", "pgo", "-m test --pgo --timeout=1200"),
    ],
)
def test_pgo_training_reaches_the_profile_run(
    tmp_path: Path, opt: str, training: str, task: str
) -> None:
    """The training task is given on make's command line, so it reaches the sub-make that
    runs it (CPython's profile-opt target recurses), with the Makefile's own test timeout."""
    from relocpy.build.cpython import BuildSpec
    from relocpy.sources.catalog import resolve_cpython

    spec = BuildSpec(resolve_cpython("3.11.2"), opt, jobs=3, pgo_training=training)
    (tmp_path / "Makefile").write_text(_PROFILE_MAKEFILE)
    out = subprocess.run(
        ["make", "-s", *spec.make_variables],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines() == [f"training: {task}"]


def test_an_unknown_pgo_training_is_refused() -> None:
    from relocpy.build.cpython import BuildSpec
    from relocpy.sources.catalog import resolve_cpython

    spec = BuildSpec(resolve_cpython("3.11.2"), "pgo+lto", pgo_training="everything")
    with pytest.raises(ValueError, match="unknown PGO training 'everything'; choose one of pgo"):
        _ = spec.make_variables


# The link variables of 3.9/3.10 (setup.py), 3.11 (both) and 3.13 (per module only)
_MAKEFILE_39 = "OPENSSL_LDFLAGS=-L.\nOPENSSL_LIBS=-lfakecrypto\n"
_MAKEFILE_311 = _MAKEFILE_39 + "MODULE__SSL_LDFLAGS=-L. -lfakecrypto\n"
_MAKEFILE_313 = "MODULE__SSL_LDFLAGS=-L. -lfakecrypto\nMODULE__HASHLIB_LDFLAGS=-L. -lfakecrypto\n"


def _fake_openssl_build(source: Path, objects_under: str, link_vars: str, prefix: Path) -> Path:
    """A build tree as CPython leaves it: a Makefile with the variables the link uses, and the
    two modules' objects, each defining its PyInit and calling one function of a static
    'OpenSSL'; and an installed lib-dynload with the two modules linked apart. Returns it."""
    (source / objects_under).mkdir(parents=True)
    (source / "Makefile").write_text(f"BLDSHARED=gcc -shared\nLIBS=-lm\n{link_vars}")
    lib = source / "crypto.c"
    lib.write_text('int fake_digest(void) { return 256; }\nconst char fake[] = "OpenSSL";\n')
    subprocess.run(["gcc", "-c", "-fPIC", str(lib), "-o", str(source / "crypto.o")], check=True)
    subprocess.run(["ar", "rcs", str(source / "libfakecrypto.a"), str(source / "crypto.o")])
    dynload = prefix / "lib" / "python3.11" / "lib-dynload"
    dynload.mkdir(parents=True)
    for name, module, init in (
        ("_ssl", "_ssl", "PyInit__ssl"),
        ("_hashopenssl", "_hashlib", "PyInit__hashlib"),
    ):
        c = source / f"{name}.c"
        c.write_text(
            f"int fake_digest(void); int PyLong_FromLong(long);\n"
            f"void *{init}(void) {{ PyLong_FromLong(fake_digest()); return 0; }}\n"
        )
        target = source / objects_under / f"{name}.o"
        subprocess.run(["gcc", "-c", "-fPIC", str(c), "-o", str(target)], check=True)
        installed = dynload / f"{module}.cpython-311-x86_64-linux-gnu.so"
        subprocess.run(
            ["gcc", "-shared", str(target), f"-L{source}", "-lfakecrypto", "-o", str(installed)],
            check=True,
        )
    return dynload


@pytest.mark.parametrize(
    ("objects_under", "link_vars"),
    [
        ("Modules", _MAKEFILE_313),
        ("Modules", _MAKEFILE_311),
        (
            "build/temp.linux-x86_64-3.9/tmp/relocpy-build-x/src/Python-3.9.2/Modules",
            _MAKEFILE_39,
        ),
    ],
)
def test_ssl_and_hashlib_become_one_module(
    tmp_path: Path, objects_under: str, link_vars: str
) -> None:
    """Each module would link its own static OpenSSL: they are linked into one file, which
    `_hashlib` names through a symlink, so the static library is in the tree once."""
    from relocpy.build.cpython import MakeRun, share_openssl
    from relocpy.core.progress import QuietReporter
    from relocpy.elf.read import undefined_symbols

    source, prefix = tmp_path / "src", tmp_path / "prefix"
    dynload = _fake_openssl_build(source, objects_under, link_vars, prefix)
    ssl = dynload / "_ssl.cpython-311-x86_64-linux-gnu.so"
    hashlib_so = dynload / "_hashlib.cpython-311-x86_64-linux-gnu.so"
    ssl.chmod(0o750)
    reporter = QuietReporter()
    log = tmp_path / "build.log"
    log.write_text("")
    assert share_openssl(MakeRun(source, tmp_path, "make", log, reporter, _PATH_ONLY), prefix)
    assert hashlib_so.is_symlink() and os.readlink(hashlib_so) == ssl.name
    assert ssl.stat().st_mode & 0o777 == 0o750
    with ssl.open("rb") as f:
        from elftools.elf.elffile import ELFFile

        symbols = {s.name for s in ELFFile(f).get_section_by_name(".dynsym").iter_symbols()}
    assert {"PyInit__ssl", "PyInit__hashlib", "fake_digest"} <= symbols
    # only the interpreter's (and the C runtime's) symbols are left to others, as before
    assert "PyLong_FromLong" in undefined_symbols(ssl)
    assert "fake_digest" not in undefined_symbols(ssl)
    assert "linking ssl and hashlib into one module (one OpenSSL)" in reporter.steps
    # done once: a second call leaves the tree as it is
    assert not share_openssl(MakeRun(source, tmp_path, "make", log, reporter, _PATH_ONLY), prefix)


def test_a_joined_module_missing_openssl_fails_the_build(tmp_path: Path) -> None:
    """A shared object may link with undefined symbols, so a link that lost the OpenSSL flags
    succeeds; the build compares what the joined module needs with what the two needed."""
    from relocpy.build.cpython import MakeRun, share_openssl
    from relocpy.core.errors import BuildFailedError
    from relocpy.core.progress import QuietReporter

    source, prefix = tmp_path / "src", tmp_path / "prefix"
    dynload = _fake_openssl_build(source, "Modules", "OPENSSL_LDFLAGS=-L.\n", prefix)
    log = tmp_path / "build.log"
    log.write_text("")
    with pytest.raises(BuildFailedError, match=r"1 symbols undefined .*: fake_digest"):
        share_openssl(MakeRun(source, tmp_path, "make", log, QuietReporter(), _PATH_ONLY), prefix)
    hashlib_so = dynload / "_hashlib.cpython-311-x86_64-linux-gnu.so"
    assert not hashlib_so.is_symlink()


def test_ssl_and_hashlib_stay_apart_without_both_objects(tmp_path: Path) -> None:
    from relocpy.build.cpython import MakeRun, openssl_module_objects, share_openssl
    from relocpy.core.progress import QuietReporter

    source, prefix = tmp_path / "src", tmp_path / "prefix"
    dynload = _fake_openssl_build(source, "Modules", _MAKEFILE_313, prefix)
    (source / "Modules" / "_hashopenssl.o").unlink()
    assert openssl_module_objects(source) is None
    log = tmp_path / "build.log"
    log.write_text("")
    run = MakeRun(source, tmp_path, "make", log, QuietReporter(), _PATH_ONLY)
    assert not share_openssl(run, prefix)
    assert not (dynload / "_hashlib.cpython-311-x86_64-linux-gnu.so").is_symlink()
    assert "stay apart" in log.read_text()


@pytest.mark.parametrize(
    ("flavour", "suite"),
    [
        ("install_only", "test_suite"),
        ("freethreaded+install_only", "freethreaded+test_suite"),
        ("static+install_only", None),  # a static build writes no test suite
    ],
)
def test_a_build_directory_is_read_back_for_each_flavour(
    tmp_path: Path, flavour: str, suite: str | None
) -> None:
    from relocpy.pipeline import read_build_output

    stem = f"cpython-3.13.15+20260101-x86_64-unknown-linux-musl-{flavour}"
    (tmp_path / f"{stem}.json").write_text(json.dumps({"build_seconds": 12.5}))
    for suffix in (".tar.gz", ".tar.zst", "_stripped.tar.gz", "_stripped.tar.zst"):
        (tmp_path / f"{stem}{suffix}").write_bytes(b"")
    if suite:
        (tmp_path / f"{stem.removesuffix(flavour)}{suite}.tar.gz").write_bytes(b"")
    result = read_build_output(tmp_path)
    assert result.archives.gz.name == f"{stem}.tar.gz" and result.seconds == 12.5
    assert result.archives.stripped_zst == tmp_path / f"{stem}_stripped.tar.zst"
    assert result.test_suite == (
        tmp_path / f"{stem.removesuffix(flavour)}{suite}.tar.gz" if suite else None
    )
