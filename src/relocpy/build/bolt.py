"""BOLT: lay out the interpreter's machine code by a profile of it running.

CPython's own `--enable-bolt` rewrites the `python` that its Makefile links, and relocpy ships
another one (the executable relinked with libpython's objects inside, see
build.cpython.link_static_python). So the same three steps run here, on that executable:
instrument it (`llvm-bolt -instrument`), run the PGO training with the instrumented copy
(each process appends its own `.fdata`), merge the counts (`merge-fdata`) and rewrite the
executable with them. The link keeps its relocations (`-Wl,--emit-relocs`) so BOLT may move
functions, not only blocks inside them. The flags are CPython 3.13's defaults but three
(below); the executable BOLT writes has no debug info.

BOLT only moves code within the executable: it adds no dependency and no newer glibc symbol,
and the repair that follows (RUNPATH, patchelf) works on its output like on any other.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from relocpy.build.sysroot import LLVM_BIN
from relocpy.core.errors import BuildFailedError
from relocpy.core.progress import Reporter
from relocpy.core.runner import run_logged

# CPython 3.13's BOLT_COMMON_FLAGS: LLVM 19 cannot follow computed gotos in PIC code, so the
# functions that use them (the eval loop, the regex matcher) keep their layout.
# Not its -update-debug-sections: llvm-bolt 19.1.7 segfaults rewriting the DWARF of the
# ThinLTO-linked executable (after all its passes, in the output stage); the executable's
# debug info is dropped before BOLT instead (it would describe the old layout).
COMMON_FLAGS = (
    "-skip-funcs=_PyEval_EvalFrameDefault,sre_ucs1_match/1,sre_ucs2_match/1,sre_ucs4_match/1",
)
# CPython 3.13's BOLT_APPLY_FLAGS, less two: with -frame-opt=hot (shrink wrapping) the
# rewritten 3.13.5 executable crashed at start-up in the cold part of gc_collect_main, and
# -use-gnu-stack puts BOLT's new segment in the PT_GNU_STACK header's slot, so the
# executable loses that header and the kernel gives it an executable stack (`relocpy
# verify`'s hardening check caught it). Without it BOLT moves the header table instead.
APPLY_FLAGS = (
    *COMMON_FLAGS,
    "-reorder-blocks=ext-tsp",
    "-reorder-functions=cdsort",
    "-split-functions",
    "-icf=1",
    "-inline-all",
    "-split-eh",
    "-reorder-functions-use-hot-size",
    "-peepholes=none",
    "-jump-tables=aggressive",
    "-inline-ap",
    "-indirect-call-promotion=all",
    "-dyno-stats",
)
# What the executable's link needs for BOLT to reorder functions
LINK_FLAGS = "-Wl,--emit-relocs"
FDATA_SUFFIX = ".fdata"
# `python -m test`'s exit status when a test failed (and every test ran)
REGRTEST_TESTS_FAILED = 2


@dataclass(frozen=True)
class BoltRun:
    """Where BOLT runs: the configured build tree (training runs there), a log and a reporter."""

    build_dir: Path
    log: Path
    reporter: Reporter
    env: dict[str, str]


def instrument(run: BoltRun, executable: Path) -> tuple[Path, Path]:
    """An instrumented copy of `executable` beside it, and the prefix its counts go to
    (`<prefix>.<pid>.fdata`, one per process)."""
    instrumented = executable.with_name(executable.name + ".bolt_inst")
    counts = executable.with_name(executable.name + ".bolt")
    for stale in counts.parent.glob(f"{counts.name}.*{FDATA_SUFFIX}"):
        stale.unlink()
    run.reporter.step("BOLT 1/3: instrumenting python")
    run_logged(
        [str(LLVM_BIN / "llvm-bolt"), str(executable), "-instrument",
         "-instrumentation-file-append-pid", f"-instrumentation-file={counts}",
         "-o", str(instrumented), *COMMON_FLAGS],
        run.build_dir, run.log, run.reporter, "llvm-bolt -instrument", run.env,
    )  # fmt: skip
    return instrumented, counts


def train(run: BoltRun, instrumented: Path, counts: Path, task: list[str]) -> Path:
    """Run `task` (python's arguments) with the instrumented executable in the build tree and
    merge what every process counted into `<executable>.fdata`; returns that file."""
    run.reporter.step(f"BOLT 2/3: training run ({' '.join(task)})")
    # the instrumented program stands where python does: the build tree's landmark
    # (pybuilddir.txt) is beside it, so it runs the tree's standard library and modules
    # regrtest's exit status 2: a test failed (3.13.5's test_generators does in every
    # training run here). Every other test ran and counted; anything else (a crash) fails.
    status = run_logged(
        [str(instrumented), *task], run.build_dir, run.log, run.reporter, "BOLT training",
        run.env, accept=(0, REGRTEST_TESTS_FAILED),
    )  # fmt: skip
    if status == REGRTEST_TESTS_FAILED:
        run.reporter.step("BOLT: a training test failed (the log has it); using the counts")
    parts = sorted(counts.parent.glob(f"{counts.name}.*{FDATA_SUFFIX}"))
    if not parts:
        raise BuildFailedError(
            "the BOLT training run wrote no profile",
            hint=f"its output in the build log says why: {run.log}",
        )
    merged = counts.with_name(counts.name.removesuffix(".bolt") + FDATA_SUFFIX)
    run_logged(
        [str(LLVM_BIN / "merge-fdata"), "-q", "-o", str(merged), *map(str, parts)],
        run.build_dir, run.log, run.reporter, "merge-fdata", run.env,
    )  # fmt: skip
    for part in parts:
        part.unlink()
    instrumented.unlink()
    return merged


def strip_debug_info(run: BoltRun, executable: Path) -> None:
    """Drop `executable`'s DWARF (not its symbols, not the relocations BOLT reads)."""
    run_logged(
        [str(LLVM_BIN / "llvm-objcopy"), "--strip-debug", str(executable)],
        run.build_dir, run.log, run.reporter, "llvm-objcopy --strip-debug", run.env,
    )  # fmt: skip


def optimise(run: BoltRun, executable: Path, fdata: Path) -> None:
    """Rewrite `executable` in place by the counts in `fdata`; the executable as linked stays
    beside it as `<name>.prebolt` (kept with the work directory: what BOLT gained is measured
    against it)."""
    run.reporter.step("BOLT 3/3: laying out python by its profile")
    shutil.copy2(executable, executable.with_name(executable.name + ".prebolt"))
    optimised = executable.with_name(executable.name + ".bolt_out")
    run_logged(
        [str(LLVM_BIN / "llvm-bolt"), str(executable), "-o", str(optimised),
         f"-data={fdata}", *APPLY_FLAGS],
        run.build_dir, run.log, run.reporter, "llvm-bolt", run.env,
    )  # fmt: skip
    shutil.copymode(executable, optimised)
    os.replace(optimised, executable)


def bolt_executable(
    run: BoltRun, executable: Path, task: list[str], fdata: Path | None = None
) -> Path:
    """Instrument, train and rewrite `executable`; with `fdata` (an earlier build's merged
    counts) skip straight to the rewrite. Returns the counts used."""
    strip_debug_info(run, executable)
    if fdata is None:
        instrumented, counts = instrument(run, executable)
        fdata = train(run, instrumented, counts, task)
    optimise(run, executable, fdata)
    return fdata
