"""Grafting host libraries into a tree and pointing every ELF file at them through $ORIGIN.

`plan_grafts` decides (pure over ELF facts); `apply_grafts` copies and patches (patchelf).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from relocpy.core.errors import RelocpyError
from relocpy.elf.ldpaths import resolve_closure
from relocpy.elf.patch import ElfPatcher
from relocpy.elf.policy import Policy
from relocpy.elf.read import ElfInfo, iter_elf_files


class UnresolvedLibraryError(RelocpyError):
    """A NEEDED library is neither in the tree nor on this machine."""


@dataclass
class GraftPlan:
    # soname -> host path of libraries to copy into the tree
    grafts: dict[str, Path] = field(default_factory=dict)
    # soname -> which tree files need it (for messages and the report)
    needed_by: dict[str, list[str]] = field(default_factory=dict)
    # soname -> files that need it although it cannot be found
    missing: dict[str, list[str]] = field(default_factory=dict)


def tree_sonames(infos: list[ElfInfo]) -> dict[str, Path]:
    """Shared libraries the tree provides itself: by SONAME and by file name."""
    provided: dict[str, Path] = {}
    for info in infos:
        if info.soname:
            provided.setdefault(info.soname, info.path)
        provided.setdefault(info.path.name, info.path)
    return provided


def plan_grafts(root: Path, infos: list[ElfInfo], policy: Policy) -> GraftPlan:
    """Which host libraries the tree's ELF files load that the policy does not allow."""
    provided = tree_sonames(infos)
    plan = GraftPlan()

    def descend(soname: str) -> bool:
        return not policy.allows_library(soname) and soname not in provided

    for info in infos:
        if not info.needed:
            continue
        # In-tree libraries are matched by name; only the others are looked up as ld.so does.
        outside = replace(info, needed=tuple(n for n in info.needed if n not in provided))
        for soname, path in resolve_closure(outside, descend=descend).items():
            if soname in provided or policy.allows_library(soname):
                continue
            rel = str(info.path.relative_to(root))
            if path is None:
                plan.missing.setdefault(soname, []).append(rel)
                continue
            plan.grafts.setdefault(soname, path)
            plan.needed_by.setdefault(soname, []).append(rel)
    return plan


def grafted_name(soname: str, content: bytes) -> str:
    """`libssl.so.3` -> `libssl-1a2b3c4d.so.3`: unique per content, as auditwheel names them."""
    digest = hashlib.sha256(content).hexdigest()[:8]
    base, dot, rest = soname.partition(".so")
    return f"{base}-{digest}{dot}{rest}"


def runpath_for(file: Path, lib_dir: Path) -> str:
    rel = os.path.relpath(lib_dir, file.parent)
    return "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"


# How an archive's metadata (`bundled_libraries[].origin`) marks a library grafted from the host.
GRAFTED_ORIGIN = "host (grafted)"


@dataclass
class GraftResult:
    grafted: dict[str, str]  # original soname -> grafted file name
    runpaths: dict[str, str]  # tree-relative file -> RUNPATH set ("" = removed)


def apply_grafts(root: Path, plan: GraftPlan, lib_dir: Path, patcher: ElfPatcher) -> GraftResult:
    """Copy planned libraries into `lib_dir`, rename them, and fix NEEDED and RUNPATH everywhere."""
    if plan.missing:
        details = "; ".join(
            f"{so} (needed by {', '.join(sorted(set(by))[:3])})"
            for so, by in sorted(plan.missing.items())
        )
        raise UnresolvedLibraryError(
            f"libraries not found on this machine: {details}",
            hint="install the packages that provide them, then repair again",
        )
    lib_dir.mkdir(parents=True, exist_ok=True)
    renamed: dict[str, str] = {}
    for soname, source in sorted(plan.grafts.items()):
        content = source.resolve().read_bytes()
        new_name = grafted_name(soname, content)
        target = lib_dir / new_name
        shutil.copyfile(source.resolve(), target)
        os.chmod(target, 0o755)
        patcher.set_soname(target, new_name)
        renamed[soname] = new_name

    infos = iter_elf_files(root)
    provided = tree_sonames(infos)
    runpaths: dict[str, str] = {}
    for info in infos:
        mapping = {old: new for old, new in renamed.items() if old in info.needed}
        if mapping:
            patcher.replace_needed(info.path, mapping)
        needs_tree = any(n in provided or n in renamed for n in info.needed)
        rel = str(info.path.relative_to(root))
        if needs_tree:
            dirs = sorted(
                {
                    runpath_for(info.path, (provided.get(n) or lib_dir / renamed[n]).parent)
                    for n in info.needed
                    if n in provided or n in renamed
                }
            )
            runpath = ":".join(dirs)
            if info.runpath != (runpath,) or info.rpath:
                patcher.set_runpath(info.path, runpath)
            runpaths[rel] = runpath
        elif info.rpath or info.runpath:
            patcher.remove_runpath(info.path)
            runpaths[rel] = ""
    return GraftResult(renamed, runpaths)
