"""The build machine's own CPython of the version being cross-compiled (`--with-build-python`).

A cross build runs Python on this machine while it builds for another: to freeze modules, to
write the sysconfig data, to byte-compile and install pip. CPython wants the same X.Y for that.
relocpy builds it once per release, from the same verified tarball, with this machine's gcc and
-dev libraries (zlib, which ensurepip's wheel needs), and keeps it in the cache. It never
ships: it is a build tool, like zig.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from relocpy.core import home
from relocpy.core.errors import BuildFailedError
from relocpy.core.preflight import Requirement, header, program
from relocpy.core.progress import Reporter, append_log
from relocpy.core.runner import build_env, run_logged, unpack_source
from relocpy.sources.catalog import SourcePin


def build_python_dir(pin: SourcePin) -> Path:
    return home.cache_dir() / "build-python" / f"{pin.version}-{pin.sha256[:16]}"


def build_python_path(pin: SourcePin) -> Path:
    major, minor = pin.version_tuple[:2]
    return build_python_dir(pin) / "bin" / f"python{major}.{minor}"


def build_python_requirements(who: str) -> list[Requirement]:
    """What building it needs: this machine's compiler, make and zlib's header."""
    return [
        Requirement("C compiler", "cc", "gcc", f"{who} (the build machine's Python)"),
        program("make", who),
        header("zlib.h", "zlib1g-dev", f"{who}: the build machine's Python (ensurepip)"),
    ]


def ensure_build_python(
    pin: SourcePin, tarball: Path, reporter: Reporter, log: Path, jobs: int
) -> Path:
    """This machine's CPython `pin.version`, built (once) from `tarball`; its executable."""
    exe = build_python_path(pin)
    if exe.is_file():
        return exe
    final = build_python_dir(pin)
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock")):
        if exe.is_file():
            return exe
        reporter.step(f"building CPython {pin.version} for this machine (the build Python, once)")
        with tempfile.TemporaryDirectory(prefix=".work-", dir=final.parent) as tmp:
            work = Path(tmp)
            source = unpack_source(tarball, work / "src")
            env = build_env()
            env["CC"] = "cc"
            for name in ("CFLAGS", "LDFLAGS", "CPPFLAGS", "CONFIG_SITE"):
                env.pop(name, None)
            label = "build Python"
            run_logged(
                ["./configure", f"--prefix={final}", "--without-ensurepip"],
                source, log, reporter, f"{label}: configure", env,
            )  # fmt: skip
            run_logged(["make", f"-j{jobs}"], source, log, reporter, f"{label}: make", env)
            stage = work / "stage"
            run_logged(
                ["make", "install", f"DESTDIR={stage}"],
                source, log, reporter, f"{label}: make install", env,
            )  # fmt: skip
            installed = stage / final.relative_to("/")
            if not (installed / exe.relative_to(final)).is_file():
                raise BuildFailedError(
                    f"the build Python {pin.version} installed no {exe.name}",
                    hint=f"its build is in the log: {log}",
                )
            shutil.rmtree(final, ignore_errors=True)
            os.rename(installed, final)
        append_log(log, f"build Python: {exe}")
    return exe


def check_build_python(executable: Path, pin: SourcePin) -> Path:
    """A given build Python, checked: it runs here and is CPython `pin.version`'s X.Y."""
    import subprocess

    from relocpy.core.errors import RelocpyError
    from relocpy.core.tree import clean_env

    wanted = ".".join(map(str, pin.version_tuple[:2]))
    try:
        result = subprocess.run(
            [str(executable), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, env=clean_env(), check=False, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RelocpyError(
            f"--build-python {executable} does not run here: {exc}",
            hint=f"give this machine's CPython {wanted} (e.g. relocpy's own build's bin/python3)",
        ) from exc
    if result.returncode != 0 or result.stdout.strip() != wanted:
        said = result.stdout.strip() or result.stderr.strip()[-200:]
        raise RelocpyError(
            f"--build-python {executable} is not CPython {wanted} ({said})",
            hint=f"a cross build of {pin.version} runs this machine's CPython {wanted}",
        )
    return Path(executable).absolute()
