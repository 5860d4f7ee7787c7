"""Shared fixtures: an isolated RELOCPY_HOME, small ELF builders, and the session's real CPython."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PYENV_VERSIONS = {"3.8": "3.8.18", "3.10": "3.10.13", "3.12": "3.12.1", "3.13": "3.13.0"}


# Set by .ci/run: the output of `scripts/build` in a fresh Debian root (its `dist/`, and the
# `cache/` with the libraries and sources it built and fetched). The session uses that build
# instead of making its own, and starts its library and source caches from it.
FRESH_BUILD = os.environ.get("RELOCPY_TEST_FRESH_BUILD")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RELOCPY_HOME for the session so the source cache is shared between tests."""
    home = tmp_path_factory.mktemp("relocpy-home")
    os.environ["RELOCPY_HOME"] = str(home)
    if FRESH_BUILD:
        link_caches(Path(FRESH_BUILD) / "cache", home / "cache", ("libs", "sources", "apt"))
    return home


def link_caches(source: Path, dest: Path, kinds: tuple[str, ...]) -> None:
    """Seed the cache directory `dest` with hard-linked copies of `source`'s `kinds`
    (those it has), so a test starts from caches built elsewhere without building again."""
    for kind in kinds:
        if (source / kind).is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", str(source / kind), str(dest / kind)], check=True)


def passed_checks(report) -> dict[str, str]:
    """A verify report's checks by name (their details), once none of them failed."""
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    assert not failed, failed
    return {c.name: c.detail for c in report.checks}


@pytest.fixture(autouse=True)
def _isolated_home(session_home: Path) -> None:
    os.environ["RELOCPY_HOME"] = str(session_home)


def compile_c(source: str, output: Path, *args: str) -> Path:
    """Compile C `source` with the host gcc into `output` (extra gcc args appended)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    src = output.with_suffix(output.suffix + ".c")
    src.write_text(source)
    subprocess.run(["gcc", str(src), "-o", str(output), *args], check=True)
    src.unlink()
    return output


def pyenv_root() -> Path:
    found = shutil.which("pyenv")
    if found:
        result = subprocess.run([found, "root"], capture_output=True, text=True)
        if result.returncode == 0:
            return Path(result.stdout.strip())
    return Path.home() / ".pyenv"


@pytest.fixture(scope="session")
def pyenv_prefix():
    def find(short: str) -> Path:
        prefix = pyenv_root() / "versions" / PYENV_VERSIONS[short]
        if not (prefix / "bin" / f"python{short}").exists():
            pytest.fail(
                f"pyenv prefix {prefix} is missing: this machine kind is expected to have it"
            )
        return prefix

    return find


@pytest.fixture(scope="session")
def built_archive(tmp_path_factory: pytest.TempPathFactory, session_home: Path):
    """A real CPython 3.13 built from its pinned source (noopt, with its .pybi), once per
    session: in CI, the one `scripts/build` made in a fresh root (the same defaults, and tag
    20260101)."""
    from relocpy.pipeline import build, read_build_output

    out = tmp_path_factory.mktemp("dist")
    if FRESH_BUILD:
        for path in (Path(FRESH_BUILD) / "dist").iterdir():
            os.link(path, out / path.name)
        return read_build_output(out)
    return build("3.13", out, opt="noopt", build_tag="20260101", pybi=True)


@pytest.fixture(scope="session")
def installed_from_nothing(session_home: Path):
    """`relocpy install 3.11` with nothing configured and an empty binary cache: the chain
    falls through to a build from source (zig, glibc 2.17, noopt), stores it in the binary
    cache and installs it. Returns (Installed, Plan)."""
    from relocpy.install.chain import provide

    assert not os.environ.get("RELOCPY_MIRROR")
    return provide("3.11", links=False)


@pytest.fixture(scope="session")
def mirror_of_three(
    tmp_path_factory: pytest.TempPathFactory, built_archive, installed_from_nothing
):
    """A mirror with real builds of 3.9, 3.11 and 3.13 (for tox/nox/virtualenv/uv), all
    self-contained zig builds for glibc 2.17 like the session's 3.13 (3.11 is the one the
    install-from-nothing test built into the binary cache)."""
    from relocpy.core.home import binaries_dir
    from relocpy.package.mirror import write_index
    from relocpy.pipeline import build

    out = tmp_path_factory.mktemp("dist-more")
    # (no stripped pair: these serve tox, nox and uv, and CI time is counted)
    result = build("3.9", out, opt="noopt", build_tag="20260101", stripped=False)
    mirror = tmp_path_factory.mktemp("mirror")
    for path in (result.archives.gz, result.archives.zst, result.archives.metadata):
        os.link(path, mirror / path.name)
    for path in (built_archive.archives.gz, built_archive.archives.zst):
        os.link(path, mirror / path.name)
    os.link(built_archive.archives.metadata, mirror / built_archive.archives.metadata.name)
    for path in binaries_dir().glob("cpython-3.11.*-install_only.*"):
        if path.name.endswith((".tar.gz", ".tar.zst", ".json")):
            os.link(path, mirror / path.name)
    write_index(mirror)
    return mirror


@pytest.fixture(scope="session")
def built_tree(tmp_path_factory: pytest.TempPathFactory, built_archive):
    """The session's 3.13 archive unpacked (an InterpreterTree at `<tmp>/python`)."""
    from relocpy.core.archive import extract_archive
    from relocpy.core.tree import inspect_tree

    dest = tmp_path_factory.mktemp("built-tree")
    extract_archive(built_archive.archives.gz, dest)
    return inspect_tree(dest / "python")


@pytest.fixture(scope="session")
def built_free_threaded(tmp_path_factory: pytest.TempPathFactory, built_archive):
    """CPython 3.13t (free-threaded, noopt, zig for glibc 2.17), once per session; it links
    the same libraries as the session's 3.13, which the cache then holds."""
    from relocpy.pipeline import build

    out = tmp_path_factory.mktemp("dist-3.13t")
    return build("3.13", out, free_threaded=True, build_tag="20260101", stripped=False)


CROSS_BUILDS = {  # name: the build's options, besides version 3.13 and the build Python
    "aarch64": {"target": "aarch64-linux-gnu"},
    "musl-static": {"target": "x86_64-linux-musl", "static": True},
}

CROSS_JOB = """
import ctypes, json, signal, sys
from pathlib import Path
from relocpy.core.progress import PlainReporter
from relocpy.pipeline import build
signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped as by ^C: nothing left
ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: stopped if the session dies
out, build_python, options = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
build("3.13", out, build_tag="20260101", stripped=False, build_python=build_python,
      reporter=PlainReporter(), **options)
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests of the cross builds run last: the builds start in the background with the
    session's first test (`_cross_builds_started`), and every other test runs meanwhile."""
    items.sort(key=lambda item: "cross_builds" in getattr(item, "fixturenames", ()))


class _CrossBuilds:
    """The session's builds for other machines, each made by a background process in a
    RELOCPY_HOME of their own while the session's other tests run. Those mostly keep one core
    busy; these builds take only what is left (SCHED_IDLE: at nice 10 they slowed the
    session's own builds of 3.9 and 3.11 from 387 s to 1,316 s)."""

    def __init__(self, factory: pytest.TempPathFactory, session_home: Path, python: Path):
        home = factory.mktemp("relocpy-home-cross")
        link_caches(session_home / "cache", home / "cache", ("sources", "apt"))
        src = str(Path(__file__).resolve().parent.parent / "src")
        env = {**os.environ, "RELOCPY_HOME": str(home), "PYTHONPATH": src}
        self.jobs: dict[str, tuple[Path, Path, subprocess.Popen[bytes]]] = {}
        for name, options in CROSS_BUILDS.items():
            out = factory.mktemp(f"dist-{name}")
            log = home / f"{name}.log"
            with log.open("wb") as handle:
                command = [sys.executable, "-c", CROSS_JOB, str(out), str(python)]
                process = subprocess.Popen(
                    ["chrt", "--idle", "0", *command, json.dumps(options)],
                    stdout=handle, stderr=subprocess.STDOUT, env=env,
                )  # fmt: skip
            self.jobs[name] = (out, log, process)

    def results(self) -> dict[str, object]:
        from relocpy.pipeline import read_build_output

        for name, (_, log, process) in self.jobs.items():
            if process.wait() != 0:
                tail = log.read_text(errors="replace")[-4000:]
                pytest.fail(f"the {name} build failed (its whole output: {log}):\n{tail}")
        return {name: read_build_output(out) for name, (out, _, _) in self.jobs.items()}

    def stop(self) -> None:
        """Stops what still runs, as ^C stops a build: its commands, then its work files."""
        for _, _, process in self.jobs.values():
            if process.poll() is None:
                process.terminate()
        for _, _, process in self.jobs.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session", autouse=True)
def _cross_builds_started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, session_home: Path
) -> Iterator[_CrossBuilds | None]:
    """Starts the cross builds with the session's first test, if any test needs them."""
    if not any("cross_builds" in getattr(i, "fixturenames", ()) for i in request.session.items):
        yield None
        return
    built_tree = request.getfixturevalue("built_tree")
    job = _CrossBuilds(tmp_path_factory, session_home, built_tree.executable)
    yield job
    job.stop()


@pytest.fixture(scope="session")
def cross_builds(_cross_builds_started: _CrossBuilds | None) -> dict[str, object]:
    """The session's builds for other machines, once per session, with the session's own
    x86_64 3.13 as their build Python (see _CrossBuilds):
    - "aarch64": CPython 3.13 for aarch64 (zig, glibc 2.17, every library cross-compiled);
      its checks run under qemu-user;
    - "musl-static": CPython 3.13 for x86_64 musl, static: one executable with every module
      built in; its checks include a run in an empty root.
    """
    assert _cross_builds_started is not None
    return _cross_builds_started.results()


@pytest.fixture(scope="session")
def built_aarch64(cross_builds: dict[str, object]):
    """CPython 3.13 for aarch64 (see cross_builds)."""
    return cross_builds["aarch64"]


@pytest.fixture(scope="session")
def built_musl_static(cross_builds: dict[str, object]):
    """CPython 3.13 for x86_64 musl, one static executable (see cross_builds)."""
    return cross_builds["musl-static"]


@pytest.fixture(scope="session")
def built_aarch64_musl(tmp_path_factory: pytest.TempPathFactory, built_tree):
    """CPython 3.13 for aarch64 musl, dynamic, once per session (bench runs only): its checks
    run under qemu-user with Debian's arm64 musl as the loader."""
    from relocpy.pipeline import build

    out = tmp_path_factory.mktemp("dist-aarch64-musl")
    return build(
        "3.13", out, target="aarch64-linux-musl", build_tag="20260101", stripped=False,
        build_python=built_tree.executable,
    )  # fmt: skip


@pytest.fixture(scope="session")
def built_musl(tmp_path_factory: pytest.TempPathFactory, built_tree, built_musl_static):
    """CPython 3.13 for x86_64 musl, dynamic (musl's loader, extension modules), once per
    session: after the static one, whose libraries it links (the same keys)."""
    from relocpy.pipeline import build

    out = tmp_path_factory.mktemp("dist-musl")
    return build(
        "3.13", out, target="x86_64-linux-musl", build_tag="20260101", stripped=False,
        build_python=built_tree.executable,
    )  # fmt: skip


def wheel_with_a_script(directory: Path) -> Path:
    """A pure-Python wheel whose console script `relocpy-hello` prints where it runs from."""
    wheel = directory / "relocpy_hello-1.0-py3-none-any.whl"
    dist = "relocpy_hello-1.0.dist-info"
    files = {
        "relocpy_hello.py": "import sys\ndef main():\n    print('hello from', sys.prefix)\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: relocpy-hello\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: relocpy-test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\nrelocpy-hello = relocpy_hello:main\n",
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(
            f"{dist}/RECORD", "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
        )
    return wheel


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """`path` as a tmpfs of `size` (as `mount -o size=`) for the duration: a disk that fills."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    assert mounted.returncode == 0, mounted.stderr
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


SKIPPABLE_ZSTD_FRAME = bytes.fromhex("502a4d18") + (4).to_bytes(4, "little") + b"skip"


def zstd_frames(data: bytes, *cuts: int) -> list[bytes]:
    """`data` zstd-compressed as one frame per piece between `cuts` (RFC 8878 lets a stream
    hold several, as pzstd writes; concatenated, they decompress to `data`)."""
    import itertools

    import zstandard

    bounds = [0, *cuts, len(data)]
    return [zstandard.ZstdCompressor().compress(data[a:b]) for a, b in itertools.pairwise(bounds)]
