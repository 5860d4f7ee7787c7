"""Repair: copy an installed CPython prefix into a tree that works wherever it is moved.

ELF files get grafted libraries and $ORIGIN RUNPATHs; sysconfig data, Makefile, pkg-config,
python-config and script shebangs stop naming the old prefix; bytecode is recompiled.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from relocpy.core.errors import OutputDirError, RelocpyError
from relocpy.core.progress import QuietReporter, Reporter, append_log
from relocpy.core.textfix import (
    PLACEHOLDER,
    python_config_libdir,
    python_config_script,
    relocatable_makefile,
    relocatable_pkgconfig,
    relocatable_sysconfigdata,
    replace_same_length,
    rewrite_shebang,
    same_length_path,
)
from relocpy.core.tree import InterpreterTree, clean_env, inspect_tree
from relocpy.elf.patch import ElfPatcher
from relocpy.elf.policy import Policy, get_policy, host_glibc
from relocpy.elf.read import ELF_MAGIC, iter_elf_files
from relocpy.repair.graft import apply_grafts, plan_grafts


@dataclass
class RepairReport:
    tree: InterpreterTree
    grafted: dict[str, str] = field(default_factory=dict)
    grafted_from: dict[str, str] = field(default_factory=dict)
    runpaths: dict[str, str] = field(default_factory=dict)
    text_files: list[str] = field(default_factory=list)
    binary_files: list[str] = field(default_factory=list)
    recompiled: int = 0


def default_policy() -> Policy:
    major, minor = host_glibc()
    try:
        return get_policy(f"manylinux_{major}_{minor}")
    except RelocpyError:
        return get_policy("manylinux_2_17")


def writable_directory(out_dir: Path) -> Path:
    """Create `out_dir` if needed and check it can be written; return its absolute path."""
    out_dir = Path(out_dir).absolute()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(
            f"cannot create output directory {out_dir}: {exc.strerror}",
            hint="choose a directory you can write to",
        ) from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"output directory {out_dir} is not writable",
            hint="choose a directory you can write to",
        )
    return out_dir


def prepare_output(dest: Path) -> Path:
    """Check `dest` can be created; return a private staging dir beside it."""
    dest = Path(dest).absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OutputDirError(
            f"output {dest} already exists and is not empty",
            hint="choose a new directory or remove it first",
        )
    parent = writable_directory(dest.parent)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=parent))
    except OSError as exc:
        raise OutputDirError(f"cannot write into {parent}: {exc.strerror}") from exc


def publish(staging: Path, dest: Path) -> None:
    """Atomically move a finished staging dir to its final name."""
    if dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()
    os.replace(staging, dest)


def repair(
    src: Path,
    dest: Path,
    *,
    policy: Policy | None = None,
    reporter: Reporter | None = None,
    log: Path | None = None,
) -> RepairReport:
    """Write a relocatable copy of the CPython installed at `src` to `dest` (src is untouched)."""
    reporter = reporter or QuietReporter()
    source = inspect_tree(Path(src).absolute())
    dest = Path(dest).absolute()
    if dest == source.root or source.root in dest.parents:
        raise OutputDirError(f"output {dest} lies inside the source prefix {source.root}")
    policy = policy or default_policy()
    # The prefix's own files first: if they break the policy, no copy is made at all (grafted
    # libraries are checked once they are in the copy).
    reporter.step(f"checking {source.root}'s ELF files against {policy.name}")
    check_glibc_policy(source.root, policy)
    staging = prepare_output(dest)
    try:
        reporter.step(f"copying {source.root} ({source.version})")
        work = staging / "tree"
        shutil.copytree(source.root, work, symlinks=True)
        report = repair_in_place(work, source, policy=policy, reporter=reporter, log=log)
        publish(work, dest)
        staging.rmdir()
        report.tree = inspect_tree(dest)
        return report
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def repair_in_place(
    root: Path,
    original: InterpreterTree,
    *,
    policy: Policy,
    reporter: Reporter,
    log: Path | None = None,
) -> RepairReport:
    """Repair the copy at `root` of the tree `original` (whose recorded paths the files hold)."""
    tree = inspect_tree(root)
    report = RepairReport(tree=tree)
    prefix = original.recorded_prefix
    # Paths the build recorded that must not survive: the prefix (if not already the
    # placeholder), the source/build directories, and where the source tree lives now.
    old_paths = [
        p
        for p in (prefix, *original.build_dirs, str(original.root))
        if p and p != PLACEHOLDER and p != "/"
    ]
    old_paths = sorted(set(old_paths), key=len, reverse=True)

    reporter.step(f"grafting libraries (policy {policy.name})")
    infos = iter_elf_files(root)
    plan = plan_grafts(root, infos, policy)
    result = apply_grafts(root, plan, root / "lib", ElfPatcher())
    report.grafted, report.runpaths = result.grafted, result.runpaths
    report.grafted_from = {soname: str(path) for soname, path in plan.grafts.items()}
    append_log(log, f"grafted: {result.grafted}\nrunpaths: {result.runpaths}")

    reporter.step("rewriting sysconfig data, Makefile, pkg-config, python-config, shebangs")
    report.text_files = _fix_text_files(root, tree, prefix, original.build_dirs)

    _ensure_python_link(root, tree)
    hooks = add_script_hooks(tree)

    reporter.step("removing recorded build paths from binaries")
    report.binary_files = _fix_binaries(root, old_paths)

    reporter.step("recompiling bytecode")
    report.recompiled = _recompile_bytecode(root, tree, old_paths, log)
    report.recompiled += recompile(tree, hooks, log)
    reporter.step(f"checking every ELF file against {policy.name}")
    check_glibc_policy(root, policy)
    return report


class PolicyViolationError(RelocpyError):
    """A repaired tree needs a newer glibc than the policy the user asked for allows."""


def glibc_violations(root: Path, policy: Policy) -> list[tuple[str, tuple[int, ...]]]:
    """(relative path, highest GLIBC version) of each ELF file under `root` that needs more
    than `policy` allows, the neediest first."""
    over = [
        (str(info.path.relative_to(root)), info.max_glibc)
        for info in iter_elf_files(root)
        if info.max_glibc and not policy.allows_glibc(info.max_glibc)
    ]
    return sorted(over, key=lambda item: (item[1], item[0]), reverse=True)  # type: ignore[return-value]


def check_glibc_policy(root: Path, policy: Policy) -> None:
    """Raise PolicyViolationError naming the files whose glibc symbol versions break `policy`.

    Grafting cannot lower what a file was linked against; only a build for an older glibc can.
    """
    over = glibc_violations(root, policy)
    if not over:
        return
    ceiling = ".".join(map(str, policy.glibc_max))
    versions = sorted({v for _, v in over})
    span = ".".join(map(str, versions[0])) + (
        f"–{'.'.join(map(str, versions[-1]))}" if len(versions) > 1 else ""
    )
    shown = ", ".join(f"{path} (GLIBC_{'.'.join(map(str, v))})" for path, v in over[:5])
    more = f", and {len(over) - 5} more" if len(over) > 5 else ""
    raise PolicyViolationError(
        f"{len(over)} files need GLIBC {span}, newer than {policy.name} allows ({ceiling}):"
        f" {shown}{more}",
        hint="a repair cannot lower a binary's glibc needs: choose a policy for this glibc, or"
        " build for the older one (`relocpy build --glibc 2.17`)",
    )


SCRIPTS_HOOK = "_relocpy_scripts.py"
SCRIPTS_PTH = "_relocpy_scripts.pth"
SITECUSTOMIZE = "sitecustomize.py"
_SITECUSTOMIZE_MARK = '"""relocpy: console scripts'
PYVENV_CFG = "relocatable = true\n"


def add_script_hooks(tree: InterpreterTree) -> list[Path]:
    """Keep console scripts that pip or uv add later working after a move: uv writes
    relocatable scripts for an interpreter whose pyvenv.cfg says `relocatable = true` (without a
    `home` key CPython does not take the tree for a virtual environment), and for pip a hook
    rewrites the scripts pip wrote when its process ends (runtime/scripts_hook.py). The hook is
    armed by a `sitecustomize.py` in site-packages, which costs the start-up less than a `.pth`
    file; where the prefix has a sitecustomize of its own, by a `.pth` file. Returns the
    modules written (to compile)."""
    from importlib import resources

    cfg = tree.root / "pyvenv.cfg"
    if not cfg.exists():
        cfg.write_text(PYVENV_CFG)
    site = tree.stdlib / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    runtime = resources.files("relocpy").joinpath("runtime")
    (site / SCRIPTS_HOOK).write_text(runtime.joinpath("scripts_hook.py").read_text())
    custom = site / SITECUSTOMIZE
    theirs = [p for p in (custom, tree.stdlib / SITECUSTOMIZE) if p.exists()]
    if any(not p.read_text(errors="replace").startswith(_SITECUSTOMIZE_MARK) for p in theirs):
        (site / SCRIPTS_PTH).write_text("import _relocpy_scripts; _relocpy_scripts.register()\n")
        return [site / SCRIPTS_HOOK]
    custom.write_text(runtime.joinpath("sitecustomize.py").read_text())
    (site / SCRIPTS_PTH).unlink(missing_ok=True)  # (a tree repaired by an older relocpy)
    return [site / SCRIPTS_HOOK, custom]


def _ensure_python_link(root: Path, tree: InterpreterTree) -> None:
    """`bin/python` -> `pythonX.Y`, as python-build-standalone trees have (runs `python ...`)."""
    link = root / "bin" / "python"
    if not (link.exists() or link.is_symlink()) and tree.executable.exists():
        link.symlink_to(tree.executable.name)


def _write_preserving_mode(path: Path, content: bytes) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    tmp = path.with_name(path.name + ".relocpy-tmp")
    tmp.write_bytes(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _fix_text_files(
    root: Path, tree: InterpreterTree, prefix: str, build_dirs: tuple[str, ...]
) -> list[str]:
    changed: list[str] = []

    def update(path: Path, new: str | bytes) -> None:
        data = new.encode() if isinstance(new, str) else new
        if path.read_bytes() != data:
            _write_preserving_mode(path, data)
            changed.append(str(path.relative_to(root)))

    for path in tree.sysconfigdata:
        update(
            path, relocatable_sysconfigdata(path.read_text(encoding="utf-8"), prefix, build_dirs)
        )
    makefile = tree.config_dir / "Makefile"
    if makefile.is_file():
        update(
            makefile,
            relocatable_makefile(makefile.read_text(errors="surrogateescape"), prefix, build_dirs),
        )
    for pc in sorted((root / "lib" / "pkgconfig").glob("*.pc")):
        if not pc.is_symlink():
            update(pc, relocatable_pkgconfig(pc.read_text(), prefix))
    for config in sorted((root / "bin").glob("python*-config")):
        if config.is_symlink() or not config.is_file():
            continue
        if config.read_bytes()[:4] == ELF_MAGIC:
            continue
        update(config, python_config_script(tree.short_version, tree.config_dir.name))
    names = tree.interpreter_names
    scripts = [p for p in sorted((root / "bin").iterdir()) if p.is_file() and not p.is_symlink()]
    for script in scripts:
        content = script.read_bytes()
        new = rewrite_shebang(content, prefix, names, tree.executable.name)
        if new is not None:
            update(script, new)
    helper = tree.config_dir / "python-config.py"
    if helper.is_file():
        # Run through bin/pythonX.Y-config; its first line only has to stop naming the prefix.
        content = helper.read_bytes()
        if content.startswith(b"#!"):
            _, _, rest = content.partition(b"\n")
            content = b"#!/usr/bin/env python3\n" + rest
        text = python_config_libdir(content.decode("utf-8", "surrogateescape"))
        update(helper, text.encode("utf-8", "surrogateescape"))
    return changed


def _fix_binaries(root: Path, old_paths: list[str]) -> list[str]:
    """Replace recorded paths inside ELF files and static archives, keeping every offset."""
    patched = []
    replacements = [(old, new) for old in old_paths if (new := same_length_path(old))]
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as handle:
            head = handle.read(8)
        if not (head.startswith(ELF_MAGIC) or head.startswith(b"!<arch>\n")):
            continue
        data = path.read_bytes()
        total = 0
        for old, new in replacements:
            data, count = replace_same_length(data, old, new)
            total += count
        if total:
            _write_preserving_mode(path, data)
            patched.append(str(path.relative_to(root)))
    return patched


_RECOMPILE = """
import importlib.util, py_compile, sys
root, placeholder, listing = sys.argv[1:4]
failed = 0
for line in open(listing, encoding="utf-8"):
    level, source = line.rstrip("\\n").split(" ", 1)
    level = int(level)
    opt = "" if level == 0 else level
    target = importlib.util.cache_from_source(source, optimization=opt)
    shown = placeholder + source[len(root):]
    try:
        py_compile.compile(source, cfile=target, dfile=shown, optimize=level, doraise=True)
    except Exception as exc:
        failed += 1
        print("not recompiled:", source, exc)
print("failed:", failed)
"""


def _recompile_bytecode(
    root: Path, tree: InterpreterTree, old_paths: list[str], log: Path | None
) -> int:
    """Recompile, with the tree's own interpreter, every `.pyc` that still names an old path."""
    needles = [p.encode() for p in old_paths]
    jobs: list[str] = []
    for pyc in sorted(tree.stdlib.rglob("*.pyc")):
        if not any(n in pyc.read_bytes() for n in needles):
            continue
        source = source_of_pyc(pyc)
        if not source.is_file():
            pyc.unlink()  # sourceless and unfixable: Python recreates it if ever needed
            continue
        level = 2 if ".opt-2." in pyc.name else 1 if ".opt-1." in pyc.name else 0
        jobs.append(f"{level} {source}")
    return _run_recompile(root, tree, jobs, log)


def recompile(tree: InterpreterTree, sources: list[Path], log: Path | None = None) -> int:
    """Compile `sources` at every optimisation level with the tree's own interpreter."""
    return _run_recompile(
        tree.root, tree, [f"{level} {src}" for src in sources for level in (0, 1, 2)], log
    )


def _run_recompile(root: Path, tree: InterpreterTree, jobs: list[str], log: Path | None) -> int:
    if not jobs:
        return 0
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as listing:
        listing.write("\n".join(jobs) + "\n")
    try:
        cmd = [
            str(tree.executable),
            "-E",
            "-s",
            "-c",
            _RECOMPILE,
            str(root),
            PLACEHOLDER,
            listing.name,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
    finally:
        os.unlink(listing.name)
    append_log(log, f"recompiled {len(jobs)} bytecode files\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise RelocpyError(
            f"recompiling bytecode with {tree.executable} failed: "
            f"{result.stderr.strip().splitlines()[-1:]}"
        )
    return len(jobs)


def source_of_pyc(pyc: Path) -> Path:
    """The source a `__pycache__` bytecode file was compiled from:
    lib/python3.X/pkg/__pycache__/mod.cpython-312.opt-1.pyc -> lib/python3.X/pkg/mod.py"""
    return pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")
