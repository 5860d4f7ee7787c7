"""The verbs as library functions: build, repair, verify, versions.

Each composes the stages; the CLI only parses arguments and prints what these return.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from relocpy import __version__, home
from relocpy.build import BuildSpec, build_cpython
from relocpy.catalog import SourcePin, load_cpython_pins, resolve_cpython
from relocpy.errors import BuildFailedError
from relocpy.package import PackagedArchives, archive_stem, bundled_libraries, package_tree
from relocpy.progress import QuietReporter, Reporter
from relocpy.recipes.cpython import OPT_LEVELS
from relocpy.repair import default_policy, repair_in_place, writable_directory
from relocpy.sources import LocalFileMirror, Mirror, SourceCache, fetch
from relocpy.toolchain import host_toolchain
from relocpy.tree import inspect_tree
from relocpy.verify import check_required_modules


@dataclass(frozen=True)
class VersionRow:
    version: str
    filename: str
    sha256: str
    cached: bool


def versions(cache: SourceCache | None = None) -> list[VersionRow]:
    """Every release the catalog pins, and whether its tarball is in the download cache."""
    cache = cache or SourceCache()
    return [
        VersionRow(p.version, p.filename, p.sha256, cache.lookup(p) is not None)
        for p in load_cpython_pins()
    ]


def seed_cache(request: str, file: Path, cache: SourceCache | None = None) -> Path:
    """Put a local copy of a release tarball into the cache, after checking it against its pin."""
    return fetch(resolve_cpython(request), mirrors=[LocalFileMirror(file)], cache=cache)


def default_build_tag() -> str:
    """YYYYMMDD of SOURCE_DATE_EPOCH if set (reproducible), else of today (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (
        _dt.datetime.fromtimestamp(int(epoch), _dt.UTC)
        if epoch and epoch.isdigit()
        else _dt.datetime.now(_dt.UTC)
    )
    return moment.strftime("%Y%m%d")


@dataclass(frozen=True)
class BuildResult:
    archives: PackagedArchives
    log: Path
    seconds: float


def _compiler_version(cc: str) -> str:
    result = subprocess.run([*cc.split(), "--version"], capture_output=True, text=True)
    return result.stdout.splitlines()[0] if result.stdout else cc


def build(
    request: str,
    out_dir: Path,
    *,
    opt: str = "noopt",
    jobs: int | None = None,
    build_tag: str | None = None,
    mirrors: list[Mirror] | None = None,
    reporter: Reporter | None = None,
    keep_work: bool = False,
) -> BuildResult:
    """Build CPython `request` from its pinned source and write relocatable archives to `out_dir`.

    Nothing appears in `out_dir` unless every step succeeded.
    """
    reporter = reporter or QuietReporter()
    start = time.monotonic()
    pin = resolve_cpython(request)
    if opt not in OPT_LEVELS:
        raise ValueError(f"unknown --opt {opt!r}; choose one of {', '.join(OPT_LEVELS)}")
    out_dir = writable_directory(out_dir)
    toolchain = host_toolchain()
    tag = build_tag or default_build_tag()
    stem = archive_stem(pin.version, tag)
    logs = home.cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{stem}.{os.getpid()}.log"
    log.write_text(f"relocpy {__version__} build of {pin.version} ({opt})\n")
    reporter.step(f"building CPython {pin.version} ({opt}); log: {log}")

    tarball = fetch(pin, mirrors=mirrors, reporter=reporter, log=log)
    workdir = Path(tempfile.mkdtemp(prefix=f"relocpy-build-{pin.version}-"))
    partial = Path(tempfile.mkdtemp(prefix=".relocpy-partial-", dir=out_dir))
    try:
        spec = BuildSpec(pin, opt, jobs or max(1, os.cpu_count() or 1))
        staged = build_cpython(spec, tarball, workdir, toolchain, reporter, log)
        original = inspect_tree(staged.prefix_dir)
        report = repair_in_place(
            staged.prefix_dir, original, policy=default_policy(), reporter=reporter, log=log
        )
        missing = check_required_modules(inspect_tree(staged.prefix_dir))
        if not missing.ok:
            raise BuildFailedError(
                f"CPython {pin.version} built without standard modules; {missing.detail}",
                hint=f"a -dev package was probably missing (the log says which): {log}",
            )
        reporter.step("writing archives (.tar.gz, .tar.zst)")
        metadata = _build_metadata(
            pin,
            spec,
            toolchain.cc,
            report.grafted,
            report.grafted_from,
            [str(staged.source_dir), str(staged.stage_dir), str(workdir)],
            staged.seconds,
        )
        packaged = package_tree(
            inspect_tree(staged.prefix_dir), partial, build=tag, metadata=metadata
        )
        shutil.copyfile(log, partial / f"{stem}.log")
        final = _publish(packaged, partial, out_dir)
        reporter.step(f"done in {time.monotonic() - start:.0f} s: {final.gz.name}")
        return BuildResult(final, out_dir / f"{stem}.log", time.monotonic() - start)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        if keep_work:
            reporter.step(f"kept the build directory {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _build_metadata(
    pin: SourcePin,
    spec: BuildSpec,
    cc: str,
    grafted: dict[str, str],
    grafted_from: dict[str, str],
    build_paths: list[str],
    seconds: float,
) -> dict[str, object]:
    libraries = bundled_libraries(grafted, grafted_from)
    return {
        "relocpy_version": __version__,
        "source": {"filename": pin.filename, "sha256": pin.sha256},
        "build_options": {
            "opt": spec.opt,
            "configure_args": spec.configure_args,
            "toolchain": "gcc",
            "compiler": _compiler_version(cc),
        },
        "bundled_libraries": [
            {
                "soname": lib.soname,
                "file": f"lib/{lib.file}",
                "package": lib.package,
                "version": lib.version,
                "origin": "host (grafted)",
            }
            for lib in libraries
        ],
        "build_paths": build_paths,
        "build_seconds": round(seconds, 1),
    }


def _publish(packaged: PackagedArchives, partial: Path, out_dir: Path) -> PackagedArchives:
    """Move finished files out of the partial dir; the metadata JSON goes last."""
    names = sorted(p.name for p in partial.iterdir() if p != packaged.metadata)
    for name in [*names, packaged.metadata.name]:
        os.replace(partial / name, out_dir / name)
    return PackagedArchives(
        out_dir / packaged.gz.name,
        out_dir / packaged.zst.name,
        out_dir / packaged.metadata.name,
        packaged.info,
    )
