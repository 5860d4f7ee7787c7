"""Building CPython from a verified source tarball into a staging prefix.

configure / make / make install DESTDIR=..., with every line in the log and the current step shown.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relocpy.catalog import SourcePin
from relocpy.progress import Reporter
from relocpy.recipes.cpython import INSTALL_PREFIX, configure_args, library_configuration
from relocpy.runner import build_env, run_logged, unpack_source
from relocpy.toolchain import Toolchain

if TYPE_CHECKING:
    from relocpy.deps import BuiltLibrary


@dataclass(frozen=True)
class BuildSpec:
    """What to build: `libs` is "source" (every library built here, static) or "host"
    (the host's -dev libraries, grafted into the tree by repair)."""

    pin: SourcePin
    opt: str = "noopt"
    jobs: int = max(1, os.cpu_count() or 1)
    libs: str = "source"
    readline: str = "libedit"

    @property
    def configure_args(self) -> list[str]:
        return configure_args(self.pin.version_tuple, self.opt)


@dataclass(frozen=True)
class StagedBuild:
    """The result of `make install DESTDIR=stage`: the prefix lives at `stage/install`."""

    spec: BuildSpec
    source_dir: Path
    stage_dir: Path
    log: Path
    seconds: float

    @property
    def prefix_dir(self) -> Path:
        return self.stage_dir / INSTALL_PREFIX.lstrip("/")


def build_cpython(
    spec: BuildSpec,
    tarball: Path,
    workdir: Path,
    toolchain: Toolchain,
    reporter: Reporter,
    log: Path,
    libraries: list[BuiltLibrary] | None = None,
) -> StagedBuild:
    """Unpack, configure, make and install into `workdir/stage`.

    With `libraries`, CPython links those static builds instead of the host's libraries.
    """
    start = time.monotonic()
    reporter.step(f"unpacking {tarball.name}")
    source = unpack_source(tarball, workdir / "src")
    stage = workdir / "stage"
    env = build_env()
    env.update(toolchain.env())
    args = list(spec.configure_args)
    deps = None
    if libraries is not None:
        from relocpy.deps import assemble

        deps = assemble(libraries, workdir / "deps")
        extra_args, extra_env = library_configuration(
            spec.pin.version_tuple, str(deps), spec.readline, exclude_libs=toolchain.name != "zig"
        )
        args += extra_args
        env.update(extra_env)
    if toolchain.name == "zig":
        # CPython stamps __DATE__ into its build info; zig makes that an error by default.
        env["CFLAGS"] = "-Wno-error=date-time"
    # Compiler temp files live in the work dir, so nothing outlives an interrupted build.
    env["TMPDIR"] = str(workdir / "tmp")
    (workdir / "tmp").mkdir(exist_ok=True)
    reporter.step(f"configure ({spec.opt})")
    run_logged(["./configure", *args], source, log, reporter, "configure", env)
    reporter.step(f"make -j{spec.jobs}")
    run_logged([toolchain.make, f"-j{spec.jobs}"], source, log, reporter, "make", env)
    reporter.step("make install")
    run_logged(
        [toolchain.make, "install", f"DESTDIR={stage}"], source, log, reporter, "make install", env
    )
    staged = StagedBuild(spec, source, stage, log, time.monotonic() - start)
    if deps is not None:
        install_tcltk_scripts(deps, staged.prefix_dir)
        install_included_headers(deps, staged.prefix_dir)
    return staged


def install_included_headers(deps: Path, prefix: Path) -> None:
    """Headers that Python.h itself includes but a host may lack go next to Python.h.

    Python.h before 3.10 includes <crypt.h> when the build had it; hosts whose libc6-dev no
    longer carries it (Debian sid) could not compile any extension against the tree.
    """
    pyconfig = next(prefix.glob("include/python3*/pyconfig.h"), None)
    crypt_h = deps / "include" / "crypt.h"
    if pyconfig is None or not crypt_h.is_file():
        return
    python_h = pyconfig.with_name("Python.h").read_text(errors="replace")
    if "#include <crypt.h>" in python_h:
        shutil.copy2(crypt_h, pyconfig.with_name("crypt.h"))


def install_tcltk_scripts(deps: Path, prefix: Path) -> None:
    """Tcl/Tk's script libraries go to lib/tcl8.6 and lib/tk8.6 of the tree, where Tcl looks
    relative to the executable once the compiled-in path is not there."""
    for name in ("tcl8.6", "tk8.6"):
        source = deps / "lib" / name
        if source.is_dir():
            shutil.copytree(source, prefix / "lib" / name, dirs_exist_ok=True)
