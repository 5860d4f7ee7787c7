"""Verify: a static audit of a tree or archive, and proof that it runs after being moved.

The tree is placed under a path with a space and non-ASCII characters, exercised with a clean
environment, moved a second time, and exercised again. Each check yields pass/fail and why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

from relocpy.build import probes
from relocpy.core.archive import extract_archive
from relocpy.core.errors import RelocpyError
from relocpy.core.preflight import Requirement, program
from relocpy.core.progress import QuietReporter, Reporter
from relocpy.core.targets import Target, host_target, needs_emulation, target_of_elf
from relocpy.core.tree import InterpreterTree, clean_env, inspect_tree
from relocpy.elf.ldpaths import resolve_needed
from relocpy.elf.policy import Policy, get_policy, policy_for_glibc
from relocpy.elf.read import ElfInfo, iter_elf_files, read_hardening
from relocpy.recipes.cpython import modules_of
from relocpy.repair.graft import GRAFTED_ORIGIN
from relocpy.sources.loaders import enable_emulation, musl_loader
from relocpy.verify import binutils
from relocpy.verify.roots import root_with_tree, write_extension_wheel

MOVE_1 = "moved here ü ñ"
MOVE_2 = "moved again é ß"
C_EXTENSION_DIR = "c ext ü"  # where check_c_extension builds its module, under the scratch
_TIMEOUT = 600


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    target: str
    policy: str
    checks: list[Check] = field(default_factory=list)
    elf_table: str = ""  # readelf's reading of every ELF file (verify.binutils), Markdown

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def to_json(self) -> str:
        return json.dumps(
            {
                "target": self.target,
                "policy": self.policy,
                "ok": self.ok,
                "checks": [asdict(c) for c in self.checks],
            },
            indent=2,
        )


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def _short(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


# ---- static audit (pure over the tree's files) ---------------------------------------------


def audit_elf(root: Path, infos: list[ElfInfo], policy: Policy) -> list[Check]:
    checks = []
    bad_needed: list[str] = []
    bad_runpath: list[str] = []
    for info in infos:
        rel = str(info.path.relative_to(root))
        for entry in (*info.rpath, *info.runpath):
            if not entry.startswith(("$ORIGIN", "${ORIGIN}")):
                bad_runpath.append(f"{rel}: {entry}")
        if info.rpath:
            bad_runpath.append(f"{rel}: uses DT_RPATH")
        if not info.needed:
            continue
        origin_only = replace(info, rpath=())
        resolution = resolve_needed(origin_only)
        for soname, found in resolution.libraries.items():
            inside = found is not None and root.resolve() in found.resolve().parents
            if not inside and not policy.allows_library(soname):
                where = f"host {found}" if found else "not found"
                bad_needed.append(f"{rel} needs {soname} ({where})")
    checks.append(
        Check(
            "elf-needed",
            not bad_needed,
            f"{len(infos)} ELF files; every NEEDED is in the tree or on the {policy.name} whitelist"
            if not bad_needed
            else _short(bad_needed),
        )
    )
    checks.append(
        Check(
            "elf-runpath",
            not bad_runpath,
            "all RPATH/RUNPATH entries are $ORIGIN-relative"
            if not bad_runpath
            else _short(bad_runpath),
        )
    )
    per_file = [
        (info.max_glibc, str(info.path.relative_to(root))) for info in infos if info.max_glibc
    ]
    overall = max((v for v, _ in per_file), default=None)
    over = [
        f"{rel} needs GLIBC_{'.'.join(map(str, v))}"
        for v, rel in sorted(per_file, reverse=True)
        if not policy.allows_glibc(v)
    ]
    floor = ".".join(map(str, overall)) if overall else "none"
    checks.append(
        Check(
            "glibc",
            not over,
            f"highest GLIBC_{floor} (policy {policy.name} allows {_dotted(policy.glibc_max)})"
            + ("" if not over else "; " + _short(over)),
        )
    )
    return checks


# What a tree that built its own libraries may need from the host: glibc's own libraries.
GLIBC_LIBRARIES = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "ld-linux-x86-64.so.2",
        # the loaders: TLS (Tcl's thread-locals) resolves in them on aarch64, ppc64le, s390x
        # and riscv64 (__tls_get_addr, TLS descriptors)
        "ld-linux-aarch64.so.1",
        "ld64.so.2",
        "ld64.so.1",
        "ld-linux-riscv64-lp64d.so.1",
    }
)


# musl's one library: the C library, which is also its dynamic loader
MUSL_LIBRARIES = frozenset({"libc.so"})


def audit_binutils(root: Path, infos: list[ElfInfo]) -> tuple[Check, str]:
    """readelf's reading of every ELF file against pyelftools' (verify.binutils), and its
    per-file table: NEEDED, RUNPATH and the highest GLIBC_ version."""
    try:
        rows = binutils.read_rows(root, infos)
    except FileNotFoundError:
        return Check(
            "binutils-audit", False, "readelf is not installed (apt-get install -y binutils)"
        ), ""
    table = binutils.format_rows(rows)
    differ = binutils.disagreements(root, rows, infos)
    if differ:
        return Check("binutils-audit", False, "readelf disagrees: " + _short(differ, 4)), table
    machines = sorted({row.machine for row in rows})
    if len(machines) > 1:
        return Check("binutils-audit", False, f"ELF files of several CPUs: {machines}"), table
    glibc = max((row.max_glibc for row in rows if row.max_glibc), default=None)
    highest = "GLIBC_" + ".".join(map(str, glibc)) if glibc else "no GLIBC_ version"
    machine = machines[0] if machines else "-"
    detail = f"readelf reads the {len(rows)} ELF files as pyelftools does: {machine}, {highest}"
    return Check("binutils-audit", True, detail), table


def audit_self_contained(root: Path, infos: list[ElfInfo]) -> Check:
    """Every NEEDED is one of the C library's (glibc's, or musl's libc.so) or the tree's
    libpython: nothing else, and so nothing grafted."""
    problems = sorted(
        {
            f"{info.path.relative_to(root)} needs {soname}"
            for info in infos
            for soname in info.needed
            if soname not in GLIBC_LIBRARIES | MUSL_LIBRARIES and not soname.startswith("libpython")
        }
    )
    return Check(
        "elf-glibc-only",
        not problems,
        f"{len(infos)} ELF files need only the C library's libraries and libpython"
        if not problems
        else _short(problems),
    )


def find_leftovers(root: Path, forbidden: list[str]) -> dict[str, list[str]]:
    """Files under `root` that contain any forbidden path (as UTF-8 or as UTF-32 wchar_t)."""
    needles = [(p, p.encode()) for p in forbidden if p]
    needles += [(p, p.encode("utf-32-le")) for p in forbidden if p]
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        for text, needle in needles:
            if needle in data:
                found.setdefault(text, []).append(str(path.relative_to(root)))
    return {k: sorted(set(v)) for k, v in found.items()}


def audit_hardening(
    root: Path,
    infos: list[ElfInfo],
    flags: str,
    own_build: bool,
    pie: bool = True,
    grafted: Collection[str] = (),
) -> Check:
    """Exploit mitigations per ELF file, as python-build-standalone validates them: RELRO and
    BIND_NOW, a non-executable stack, no segment both writable and executable, no text
    relocations, and stack-protector and fortify references where `flags` (the build's
    CFLAGS) promise them. A position-dependent executable passes only where the build says it
    asked for one (`--no-pie`, recorded as `build_options.pie = false`).

    Missing RELRO or BIND_NOW fails relocpy's own builds (`own_build`); in a tree some other
    builder made, and in the libraries a build grafted from the host (`grafted`, paths relative
    to `root`), they are reported but are that builder's choice."""
    serious: list[str] = []
    weak: list[str] = []
    borrowed: list[str] = []
    notes: list[str] = []
    wants_ssp = "-fstack-protector" in flags and "-fno-stack-protector" not in flags
    wants_fortify = "_FORTIFY_SOURCE=" in flags
    for info in infos:
        facts = read_hardening(info.path)
        if facts is None:
            continue
        rel = str(info.path.relative_to(root))
        if facts.exec_stack:
            serious.append(f"{rel}: executable stack")
        if facts.writable_and_executable:
            serious.append(f"{rel}: a segment both writable and executable")
        if facts.textrel:
            serious.append(f"{rel}: text relocations")
        lacks = "no RELRO" if not facts.relro else None if facts.bind_now else "no BIND_NOW"
        if lacks:
            (borrowed if rel in grafted else weak).append(f"{rel}: {lacks}")
        if facts.elf_type == "ET_EXEC":
            if pie:
                serious.append(f"{rel}: position-dependent executable, but the build asked for PIE")
            else:
                notes.append(f"{rel} is position-dependent (--no-pie, as the build asked)")
        is_core = info.path.name.startswith(("python3", "libpython3"))
        if wants_ssp and is_core and not facts.stack_protector:
            serious.append(f"{rel}: no __stack_chk_fail although CFLAGS ask -fstack-protector")
        if wants_fortify and is_core and not facts.fortified:
            serious.append(f"{rel}: no fortified calls although CFLAGS set _FORTIFY_SOURCE")
    failed = serious + (weak if own_build else [])
    if failed:
        return Check("hardening", False, f"{len(failed)} problems: {_short(failed, 6)}")
    detail = f"{len(infos)} ELF files: RELRO, non-executable stack, W^X, no text relocations"
    if weak:
        detail += f"; this tree's builder left {len(weak)} weaker: {_short(weak, 3)}"
    if borrowed:
        detail += f"; {len(borrowed)} grafted from the host are weaker: {_short(borrowed, 3)}"
    if notes:
        detail += "; " + "; ".join(notes)
    return Check("hardening", True, detail)


def audit_leftovers(root: Path, forbidden: list[str]) -> Check:
    found = find_leftovers(root, forbidden)
    if not found:
        if not forbidden:
            return Check("leftover-paths", True, "no build paths recorded to look for")
        return Check("leftover-paths", True, f"no file names {_short(forbidden, 3)}")
    details = "; ".join(f"{text} in {_short(files, 4)}" for text, files in found.items())
    return Check("leftover-paths", False, details)


# ---- runtime checks (run the tree's interpreter) -------------------------------------------


def _run(
    cmd: list[str], cwd: Path | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            env=clean_env(env_extra),
            timeout=_TIMEOUT,
            errors="replace",
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(cmd, 127, "", str(exc))


class Runner(Protocol):
    """Runs commands with a clean environment in one view of the file system (the host's, or a
    chroot's) and says how a host path is seen from there."""

    def run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]: ...

    def path(self, host_path: Path) -> str: ...


@dataclass(frozen=True)
class HostRunner:
    env_extra: tuple[tuple[str, str], ...] = ()  # added to the clean environment

    def run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return _run(cmd, env_extra=dict(self.env_extra))

    def path(self, host_path: Path) -> str:
        return str(host_path)


HOST = HostRunner()


def _why(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return f"exit {result.returncode}: {text[-1][:300] if text else 'no output'}"


def extension_modules(tree: InterpreterTree) -> list[str]:
    dynload = tree.stdlib / "lib-dynload"
    return sorted({p.name.split(".", 1)[0] for p in dynload.glob("*.so")})


def _under(path: str | None, root: Path) -> bool:
    if not path:
        return False
    real = os.path.realpath(path)
    base = os.path.realpath(root)
    return real == base or real.startswith(base + os.sep)


_NOT_INSTALLED = re.compile(r"^ImportError: (\S+): cannot open shared object file")


def check_imports(
    tree: InterpreterTree, name: str, runner: Runner = HOST, system: Policy | None = None
) -> Check:
    """Every extension module imports. With a `system` policy, a module whose only problem is
    that a library the policy leaves to the system (libX11) is not installed does not fail."""
    modules = extension_modules(tree)
    builtin = not modules  # a static build: its modules are built in
    if builtin:
        listing = runner.run([runner.path(tree.executable), "-c", probes.BUILTIN_MODULES])
        if listing.returncode != 0:
            return Check(name, False, _why(listing))
        modules = json.loads(listing.stdout)
    result = runner.run([runner.path(tree.executable), "-c", probes.IMPORT_MODULES, *modules])
    if result.returncode != 0:
        return Check(name, False, _why(result))
    failed = json.loads(result.stdout or "{}")
    absent: dict[str, str] = {}
    for module, why in list(failed.items()):
        match = _NOT_INSTALLED.match(why)
        if system is not None and match and system.allows_library(match.group(1)):
            absent[module] = match.group(1)
            del failed[module]
    if failed:
        return Check(name, False, _short([f"{k} ({v})" for k, v in sorted(failed.items())], 4))
    detail = f"{len(modules) - len(absent)} {'built-in' if builtin else 'extension'} modules import"
    if absent and system is not None:
        listing = [f"{k} needs {v}" for k, v in sorted(absent.items())]
        detail += f"; not installed here ({system.name} leaves them to the system): "
        detail += _short(listing, 4)
    return Check(name, True, detail)


_ENVIRONMENT_MARK = "RELOCPY_ENVIRONMENT_PROBE"


def check_environment(python: str) -> Check:
    """os.environ holds the environment the interpreter was started with, and a child started
    with the default environment gets it too. Both read the C library's `environ`; an
    executable linked against stubs that lost glibc's aliases reads a copy glibc never fills
    (relocpy.elf.aliases), and its os.environ is empty."""
    mark = "seen"
    result = _run(
        [python, "-c", probes.ENVIRONMENT, _ENVIRONMENT_MARK], env_extra={_ENVIRONMENT_MARK: mark}
    )
    if result.returncode != 0:
        return Check("environment", False, _why(result))
    data = json.loads(result.stdout)
    if data["own"] == mark and data["child"] == mark:
        return Check(
            "environment",
            True,
            f"os.environ has the {data['names']} variables it was given; a child gets them",
        )
    seen = "os.environ is empty" if not data["names"] else f"os.environ lacks {_ENVIRONMENT_MARK}"
    child = "a child gets it" if data["child"] == mark else "a child does not get it either"
    return Check(
        "environment",
        False,
        f"{seen}, {child}: the executable reads a copy of the C library's `environ` that the"
        " library never fills (a copy relocation without glibc's aliases; see relocpy.elf.aliases)",
    )


def is_free_threaded(tree: InterpreterTree) -> bool:
    """A free-threaded build: its ABI flags carry a `t` (python3.13t, lib/python3.13t)."""
    return tree.ldversion.endswith("t")


def check_free_threading(tree: InterpreterTree, runner: Runner = HOST) -> Check:
    """A free-threaded tree runs without the GIL, and no extension module of its own turns the
    GIL back on when imported (each must declare Py_mod_gil; 3.13t re-enables it otherwise)."""
    modules = extension_modules(tree)
    result = runner.run([runner.path(tree.executable), "-c", probes.FREE_THREADING, *modules])
    if result.returncode != 0:
        return Check("free-threading", False, _why(result))
    data = json.loads(result.stdout)
    if str(data["Py_GIL_DISABLED"]) != "1":
        return Check("free-threading", False, f"Py_GIL_DISABLED={data['Py_GIL_DISABLED']}")
    if data["gil_at_start"]:
        return Check("free-threading", False, "sys._is_gil_enabled() is True at start-up")
    if data["enabled_by"]:
        why = f"importing {data['enabled_by']} turned the GIL on"
        return Check("free-threading", False, f"{why}: {data['warning'] or 'no warning'}")
    return Check(
        "free-threading",
        True,
        f"sys._is_gil_enabled() is False, and stays so after importing {len(modules)} modules",
    )


# Extension modules a complete CPython has on Linux: a build that silently skipped one (because a
# -dev package was missing) must not pass. (name, first version that has it)
def required_modules(short_version: str) -> list[str]:
    version = tuple(int(part) for part in short_version.rstrip("t").split("."))
    return modules_of(version)


def check_required_modules(tree: InterpreterTree) -> Check:
    """Every module a complete build has imports (used for relocpy's own builds)."""
    names = required_modules(tree.short_version)
    result = _run([str(tree.executable), "-c", probes.IMPORT_MODULES, *names])
    if result.returncode != 0:
        return Check("required-modules", False, _why(result))
    failed = json.loads(result.stdout or "{}")
    if failed:
        listing = [f"{k} ({v})" for k, v in sorted(failed.items())]
        return Check("required-modules", False, "missing: " + _short(listing, 6))
    return Check("required-modules", True, f"all {len(names)} import: " + " ".join(names))


def _locations(tree: InterpreterTree) -> tuple[dict | None, str]:
    """Where the interpreter thinks it lives (probes.REPORT_LOCATIONS), or None and why not."""
    result = _run([str(tree.executable), "-c", probes.REPORT_LOCATIONS])
    if result.returncode != 0:
        return None, _why(result)
    return json.loads(result.stdout), ""


def check_locations(tree: InterpreterTree, name: str, data: dict | None = None) -> Check:
    if data is None:
        data, why = _locations(tree)
        if data is None:
            return Check(name, False, why)
    values = {
        "sys.prefix": data["sys.prefix"],
        "sys.base_prefix": data["sys.base_prefix"],
        **{f"paths[{k}]": v for k, v in data["paths"].items()},
        **{k: v for k, v in data["vars"].items() if v},
    }
    outside = [f"{k}={v}" for k, v in values.items() if not _under(v, tree.root)]
    if outside:
        return Check(name, False, "outside the tree: " + _short(outside, 4))
    return Check(name, True, f"sys.prefix and {len(values) - 2} sysconfig paths lie in the tree")


def check_compilers(data: dict) -> Check:
    """CC, CXX and LDSHARED name a compiler found on PATH, not a build-only path."""
    compilers = data["compilers"]
    odd = [
        f"{k}={v}"
        for k, v in compilers.items()
        if v and (("/" in v.split()[0]) or shutil.which(v.split()[0]) is None)
    ]
    if odd:
        return Check("compiler-vars", False, "not a usable compiler: " + _short(odd))
    named = ", ".join(f"{k}={(v or '').split()[0]}" for k, v in compilers.items())
    return Check("compiler-vars", True, "CC/CXX/LDSHARED name compilers on PATH: " + named)


def cross_compiler_runner(machine: Target) -> HostRunner | Check:
    """A runner whose CC and LDSHARED are Debian's cross gcc for `machine` (a C extension for
    a tree of another CPU), or the failed check that says which package is missing."""
    gcc = f"{machine.cross_prefix}gcc"
    if shutil.which(gcc) is None:
        return Check(
            "c-extension",
            False,
            f"not run: no {gcc} to compile a {machine.arch} extension with"
            f" (apt-get install -y {machine.cross_gcc_package})",
        )
    if not (Path(machine.cross_libc_root) / "include" / "stdio.h").is_file():
        return Check(
            "c-extension",
            False,
            f"not run: {gcc} has no {machine.arch} C headers in {machine.cross_libc_root}/include"
            f" (apt-get install -y libc6-dev-{machine.debian_arch}-cross)",
        )
    return HostRunner((("CC", gcc), ("LDSHARED", f"{gcc} -shared")))


def runtime_checks(
    tree: InterpreterTree,
    scratch: Path,
    reporter: Reporter,
    complete_build: bool = False,
    machine: Target | None = None,
    static: bool = False,
) -> list[Check]:
    """Run the tree: start-up, locations, imports, ssl, venv and pip, a C extension, scripts.
    A tree of another CPU (`machine`) runs under qemu-user (core.emulation, enabled by the
    caller); its C extension is compiled with Debian's cross gcc. A `static` tree (one
    executable, every module built in) is also run in an empty root, and loads no C
    extension."""
    checks: list[Check] = []
    python = str(tree.executable)
    if machine is not None and machine.libc == "musl" and not static:
        loader = musl_loader(machine.arch)
        if not loader.exists():  # what the kernel would say: "No such file or directory"
            why = f"not run: this machine has no musl loader {loader} (apt-get install -y musl)"
            return [Check("starts", False, why)]
    reporter.step("runtime: start-up and locations")
    result = _run([python, "-c", "import sys; print(sys.version.split()[0])"])
    checks.append(
        Check(
            "starts",
            result.returncode == 0,
            f"python {result.stdout.strip()}" if result.returncode == 0 else _why(result),
        )
    )
    if result.returncode != 0:
        return checks
    checks.append(check_environment(python))
    data, why = _locations(tree)
    if data is None:
        checks.append(Check("sysconfig-paths", False, why))
    else:
        checks.append(check_locations(tree, "sysconfig-paths", data))
        checks.append(check_compilers(data))

    reporter.step("runtime: importing every extension module")
    checks.append(check_imports(tree, "extensions-import"))
    if static:
        reporter.step("runtime: in an empty root (no C library, nothing but the tree)")
        checks.append(check_empty_root(tree, scratch))
    if is_free_threaded(tree):
        checks.append(check_free_threading(tree))
    if complete_build:
        checks.append(check_required_modules(tree))

    reporter.step("runtime: ssl default context")
    result = _run([python, "-c", probes.SSL_CONTEXT])
    if result.returncode == 0:
        data = json.loads(result.stdout)
        count = data["stats"].get("x509_ca", 0)
        checks.append(
            Check(
                "ssl-ca-store",
                count > 0,
                f"{count} CA certificates loaded ({data['cafile'] or data['capath']}, "
                f"{data['openssl']})"
                if count
                else f"no CA certificate loaded (cafile={data['cafile']}, capath={data['capath']})",
            )
        )
    else:
        checks.append(Check("ssl-ca-store", False, _why(result)))

    if machine is not None and machine.libc == "musl" and not static and needs_emulation(machine):
        # pip runs musl's loader (/lib/ld-musl-<arch>.so.1) to read musl's version, and qemu-user
        # hands a program's exec to this machine as it is: only a root holding the loader has it
        reporter.step("runtime: venv and pip of a local wheel, in a root with musl's loader")
        checks.append(check_venv_pip_in_root(tree, scratch, musl_loader(machine.arch)))
    else:
        reporter.step("runtime: venv and pip install of a local wheel")
        checks.append(check_venv_pip(tree, scratch))

    if static:
        checks.append(
            Check(
                "c-extension",
                True,
                "skipped: a static interpreter loads no extension module (musl's static"
                " dlopen always fails); every standard module is built in",
            )
        )
    elif machine is not None and machine.libc == "musl":
        reporter.step(f"runtime: building a C extension for {machine.name}")
        compiler = musl_compiler_runner(machine)
        checks.append(
            compiler if isinstance(compiler, Check) else check_c_extension(tree, scratch, compiler)
        )
        reporter.step("runtime: a musllinux wheel in a root with only musl's loader")
        checks.append(check_musl_root(tree, scratch, machine.arch))
    elif machine is not None and needs_emulation(machine):
        reporter.step(f"runtime: building a C extension with {machine.cross_prefix}gcc")
        compiler = cross_compiler_runner(machine)
        checks.append(
            compiler if isinstance(compiler, Check) else check_c_extension(tree, scratch, compiler)
        )
    else:
        reporter.step("runtime: building a C extension with the host compiler")
        checks.append(check_c_extension(tree, scratch))

    reporter.step("runtime: bin/ scripts")
    pip = tree.root / "bin" / "pip3"
    result = _run([str(pip), "--version"])
    checks.append(
        Check(
            "pip3-script",
            result.returncode == 0
            and _under(result.stdout.split(" from ", 1)[-1].split(" (python")[0], tree.root),
            result.stdout.strip() if result.returncode == 0 else _why(result),
        )
    )
    config = tree.root / "bin" / f"python{tree.short_version}-config"
    result = _run([str(config), "--includes"])
    include = str(tree.root / "include")
    checks.append(
        Check(
            "python-config",
            result.returncode == 0 and include in result.stdout,
            result.stdout.strip()[:200] if result.returncode == 0 else _why(result),
        )
    )
    return checks


def check_venv_pip(tree: InterpreterTree, scratch: Path, runner: Runner = HOST) -> Check:
    """A venv made by the tree's interpreter installs a local wheel offline and imports it."""
    venv = scratch / "venv ü"
    result = runner.run([runner.path(tree.executable), "-m", "venv", runner.path(venv)])
    if result.returncode != 0:
        return Check("venv-pip", False, "venv: " + _why(result))
    wheel = probes.make_probe_wheel(scratch)
    vpython = runner.path(venv / "bin" / "python")
    result = runner.run(
        [
            vpython,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            runner.path(wheel),
        ]
    )
    if result.returncode != 0:
        return Check("venv-pip", False, "pip install: " + _why(result))
    result = runner.run([vpython, "-c", f"import {probes.PROBE_PACKAGE} as m; print(m.ANSWER)"])
    ok = result.returncode == 0 and result.stdout.strip() == "42"
    return Check(
        "venv-pip",
        ok,
        "venv created; pip installed a local wheel; it imports"
        if ok
        else "import: " + _why(result),
    )


@dataclass(frozen=True)
class RootRunner:
    """Runs commands chrooted into `root` (a `verify.roots.make_root` root: the tree of
    `tree_root` at /python) with an empty environment; a host path is seen from inside."""

    root: Path
    tree_root: Path

    def run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return _in_root(self.root, cmd)

    def path(self, host_path: Path) -> str:
        if Path(host_path).is_relative_to(self.tree_root):
            return f"/python/{Path(host_path).relative_to(self.tree_root).as_posix()}"
        return f"/{Path(host_path).relative_to(self.root).as_posix()}"


def check_venv_pip_in_root(tree: InterpreterTree, scratch: Path, loader: Path) -> Check:
    """`check_venv_pip` in a root that holds the tree and musl's `loader` only (a dynamic musl
    tree of another CPU, run under qemu-user: see runtime_checks)."""
    if os.geteuid() != 0:
        return Check("venv-pip", False, "not run: a root with musl's loader needs chroot (root)")
    root = scratch / "venv root"
    with root_with_tree(tree.root, tree.executable, root, loader):
        (root / "work").mkdir()
        check = check_venv_pip(tree, root / "work", RootRunner(root, tree.root))
    return replace(check, detail=f"{check.detail} (in a root with only {loader.name})")


def _in_root(root: Path, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `cmd` chrooted into `root`, with an empty environment (nothing of this machine's:
    no PATH, no locale, no PYTHON*)."""

    def enter() -> None:  # in the child, before the program starts
        os.chroot(root)
        os.chdir("/")

    try:
        return subprocess.run(
            cmd,
            preexec_fn=enter,  # one child, and no lock of ours held in it
            env={},
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(cmd, 127, "", str(exc))


def check_empty_root(tree: InterpreterTree, scratch: Path) -> Check:
    """A static tree, alone in a directory made `/` by chroot (no C library, no /etc, /dev or
    /proc): every built-in module imports, and ssl, sqlite3, decimal and ctypes work."""
    if os.geteuid() != 0:
        return Check("empty-root", False, "not run: chroot needs root")
    root = scratch / "empty root"
    with root_with_tree(tree.root, tree.executable, root) as executable:
        result = _in_root(root, [executable, "-c", probes.EMPTY_ROOT])
    if result.returncode != 0:
        return Check("empty-root", False, _why(result))
    data = json.loads(result.stdout)
    problems = [f"{k} ({v})" for k, v in sorted(data["failed"].items())]
    if data["root"] != ["python"]:
        problems.append(f"the root held {data['root']}")
    if not data["prefix"].startswith("/python") or not data["stdlib"].startswith("/python"):
        problems.append(f"prefix {data['prefix']}, stdlib {data['stdlib']}")
    if problems:
        return Check("empty-root", False, _short(problems, 4))
    work = data["work"]
    return Check(
        "empty-root",
        True,
        f"alone in an empty root: {data['count']} built-in modules import; {work['ssl']},"
        f" SQLite {work['sqlite3']}, decimal 1/7={work['decimal']}, ctypes callback"
        f" {work['ctypes']}",
    )


def musl_compiler_runner(machine: Target) -> HostRunner | Check:
    """A runner whose CC and LDSHARED compile a C extension for a musl tree: Debian's musl-gcc
    for this machine's CPU; for another CPU, for which Debian has no musl cross compiler,
    zig's cc for `<arch>-linux-musl` (the compiler the tree was built with). Or the failed
    check that names the package."""
    if needs_emulation(machine):
        from relocpy.build.zig import zig_toolchain

        cc = zig_toolchain(target=machine).cc
        return HostRunner((("CC", cc), ("LDSHARED", f"{cc} -shared")))
    if shutil.which("musl-gcc") is None:
        return Check(
            "c-extension",
            False,
            "not run: no musl-gcc to compile a musl extension with (apt-get install -y musl-tools)",
        )
    return HostRunner((("CC", "musl-gcc"), ("LDSHARED", "musl-gcc -shared")))


def check_musl_root(tree: InterpreterTree, scratch: Path, arch: str) -> Check:
    """A dynamic musl tree in a root that holds only musl's loader (its libc.so) besides the
    tree: pip installs a musllinux wheel of the C extension the c-extension check compiled,
    and it imports, as does every extension module of the tree."""
    if os.geteuid() != 0:
        return Check("musl-root", False, "not run: chroot needs root")
    loader = musl_loader(arch)
    if not loader.exists():
        return Check("musl-root", False, f"not run: no musl loader {loader} (apt-get install musl)")
    built = sorted((scratch / C_EXTENSION_DIR).glob("relocpy_cprobe*.so"))
    if not built:
        return Check("musl-root", False, "not run: no C extension was built (see c-extension)")
    abi = tree.short_version.replace(".", "")
    tag = f"cp{abi}-cp{abi}-musllinux_1_2_{arch}"
    root = scratch / "musl root"
    with root_with_tree(tree.root, tree.executable, root, loader) as executable:
        wheel = write_extension_wheel(built[0], root / "wheels", tag)
        install = [
            executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-cache-dir",
            "--disable-pip-version-check", f"/wheels/{wheel.name}",
        ]  # fmt: skip
        result = _in_root(root, install)
        if result.returncode != 0:
            return Check("musl-root", False, f"pip install {wheel.name}: {_why(result)}")
        modules = extension_modules(tree)
        result = _in_root(root, [executable, "-c", probes.MUSL_ROOT, *modules])
    if result.returncode != 0:
        return Check("musl-root", False, _why(result))
    data = json.loads(result.stdout)
    problems = [f"{k} ({v})" for k, v in sorted(data["failed"].items())]
    extra = set(data["root"]) - {"python", "lib", "wheels"}
    if extra:
        problems.append(f"the root held {sorted(extra)}")
    if data["add"] != 5:
        problems.append(f"the wheel's module added 2 and 3 to {data['add']}")
    if problems:
        return Check("musl-root", False, _short(problems, 4))
    return Check(
        "musl-root",
        True,
        f"in a root with only {loader}: pip installed {wheel.name} (best tag {data['best_tag']})"
        f" and it imports; {data['count']} extension modules import",
    )


def check_c_extension(tree: InterpreterTree, scratch: Path, runner: Runner = HOST) -> Check:
    """A C extension compiled with the tree's sysconfig CC/CFLAGS/LDSHARED imports."""
    build = scratch / C_EXTENSION_DIR
    build.mkdir(parents=True, exist_ok=True)
    source = build / "relocpy_cprobe.c"
    source.write_text(probes.PROBE_C)
    result = runner.run(
        [
            runner.path(tree.executable),
            "-c",
            probes.BUILD_EXTENSION,
            runner.path(source),
            runner.path(build),
        ]
    )
    return Check(
        "c-extension",
        result.returncode == 0,
        result.stdout.strip().splitlines()[-1] if result.returncode == 0 else _why(result),
    )


# ---- the verb -------------------------------------------------------------------------------


def _build_cflags(tree: InterpreterTree) -> str:
    """The CFLAGS the tree's sysconfig data records (what its build promised)."""
    text = ""
    for path in tree.sysconfigdata:
        text += path.read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"'(?:CONFIGURE_)?CFLAGS(?:_NODIST)?': '([^']*)'", text)
    return " ".join(found)


def verify_needs(runtime: bool = True) -> list[Requirement]:
    """What the runtime checks need from the host (the static audit needs nothing)."""
    if not runtime:
        return []
    return [program("gcc", "verify's C extension check"), program("c++", "verify's CXX check")]


_METADATA_FIELDS: dict[str, object] = {
    "relocpy_version": str,
    "policy": str | None,
    "glibc_floor": str | None,
    "build_paths": list[str],
    "build_options": dict[str, object],
    "bundled_libraries": list[dict[str, object]],
}


def audit_licences(root: Path, own: bool) -> Check:
    """The licences the tree's SBOM names, copyleft ones flagged (gdbm, and readline where a
    build chose it, are GPL: whoever ships the tree takes on the GPL's terms). A tree that
    relocpy built must carry its SBOM; another (a repaired prefix) need not."""
    from relocpy.core.sbom import SBOM_PATH, read_sbom

    path = root / SBOM_PATH
    if not path.is_file():
        return Check(
            "licences", not own, f"no SBOM at python/{SBOM_PATH}" + (": missing" if own else "")
        )
    try:
        found = read_sbom(path)
    except (ValueError, KeyError, TypeError) as exc:
        return Check("licences", False, f"python/{SBOM_PATH} is malformed: {exc}")
    # a library grafted from the build host is a Debian package: its licence is Debian's
    # copyright file, which the SBOM names by purl; built components must say theirs
    host = [c for c in found if c.purl.startswith("pkg:deb/") and "arch=source" not in c.purl]
    unknown = [c.name for c in found if not c.license and c not in host]
    if unknown:
        return Check("licences", False, f"no licence for {', '.join(unknown)} in the SBOM")
    counts: dict[str, int] = {}
    for component in found:
        key = component.license or "not recorded (grafted from the host)"
        counts[key] = counts.get(key, 0) + 1
    listed = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in sorted(counts.items()))
    gpl = [f"{c.name} ({c.license})" for c in found if c.copyleft]
    flag = f"; GPL: {', '.join(gpl)}" if gpl else "; no GPL component"
    return Check("licences", True, f"{len(found)} components: {listed}{flag}")


def grafted_files(metadata: dict[str, object]) -> frozenset[str]:
    """The tree's files that a build grafted from the host, as its metadata lists them."""
    bundled = metadata.get("bundled_libraries")
    return frozenset(
        str(item["file"])
        for item in (bundled if isinstance(bundled, list) else [])
        if isinstance(item, dict) and item.get("origin") == GRAFTED_ORIGIN and "file" in item
    )


def _metadata_for(archive: Path) -> dict[str, object]:
    """The metadata JSON written beside an archive (relocpy's), checked; {} if there is none.
    A stripped archive has none of its own: the install_only one describes both flavours."""
    from relocpy.core.records import RecordError, expect, read_json

    name = archive.name
    for suffix in (".tar.gz", ".tar.zst", ".tgz"):
        if not name.endswith(suffix):
            continue
        stem = name[: -len(suffix)]
        for meta in (
            archive.with_name(stem + ".json"),
            archive.with_name(stem.removesuffix("_stripped") + ".json"),
        ):
            if meta.is_file():
                data = read_json(meta)
                if not isinstance(data, dict):
                    raise RecordError(f"{meta}: the top level: expected an object")
                for key, hint in _METADATA_FIELDS.items():
                    if key in data:
                        expect(data[key], hint, str(meta), key)
                if data.get("policy"):
                    get_policy(str(data["policy"]))
                return data
    return {}


def place_for_test(target: Path, scratch: Path) -> tuple[Path, dict[str, object], list[str]]:
    """Put a copy of the tree at `scratch/MOVE_1/python`; return it, metadata, forbidden paths."""
    first = scratch / MOVE_1
    first.mkdir(parents=True)
    if target.is_dir():
        inspect_tree(target)  # a directory that is no CPython prefix is not copied at all
        shutil.copytree(target, first / "python", symlinks=True)
        return first / "python", {}, [str(target.absolute())]
    metadata = _metadata_for(target)  # a bad metadata file fails before the extraction
    extract_archive(target, first, top="python")
    if not (first / "python").is_dir():
        raise RelocpyError(f"{target.name} has no top-level python/ directory")
    forbidden = [str(p) for p in metadata.get("build_paths", [])]  # type: ignore[union-attr]
    return first / "python", metadata, forbidden


def _executable_info(tree: InterpreterTree, infos: list[ElfInfo]) -> ElfInfo | None:
    executable = tree.executable.resolve()
    return next((i for i in infos if i.path.resolve() == executable), None)


def is_static_executable(info: ElfInfo | None) -> bool:
    """A program with no dynamic loader and no library to load: relocpy's static musl build."""
    return info is not None and not info.has_interp and not info.needed


def tree_target(tree: InterpreterTree, infos: list[ElfInfo]) -> Target:
    """The machine a tree's interpreter runs on, from its executable's ELF header: its CPU,
    and musl where it is static or needs musl's libc.so (glibc's is libc.so.6)."""
    info = _executable_info(tree, infos)
    if info is None:
        return host_target()
    musl = is_static_executable(info) or "libc.so" in info.needed
    return target_of_elf(info.machine, "musl" if musl else "gnu")


def test_suite_for(archive: Path) -> Path:
    """The `test_suite` archive written beside an install_only archive."""
    # (the flavour follows a dash, or a "+" after build options: freethreaded+install_only)
    name = re.sub(
        r"([-+])install_only(_stripped)?\.tar\.(gz|zst)$", r"\1test_suite.tar.gz", archive.name
    )
    return archive.with_name(name)


def _check_test_suite(
    tree: InterpreterTree, archive: Path, scratch: Path, reporter: Reporter
) -> Check:
    from relocpy.verify.testsuite import run_test_suite, suite_check, unpack_test_suite

    if not archive.is_file():
        return Check("test-suite", False, f"{archive} does not exist")
    reporter.step(f"running CPython's own tests from {archive.name} (minutes)")
    unpack_test_suite(archive, tree, scratch / "test-suite")
    result = run_test_suite(tree)
    (scratch / "test-suite.log").write_text(result.output)
    ok, detail = suite_check(result)
    return Check("test-suite", ok, detail)


def verify(
    target: Path,
    *,
    policy: str | None = None,
    forbid: tuple[str, ...] = (),
    runtime: bool = True,
    reporter: Reporter | None = None,
    keep: bool = False,
    in_place: bool = False,
    test_suite: Path | None = None,
) -> VerifyReport:
    """Audit and exercise `target` (an install_only archive or a tree).

    `in_place` checks an installed tree where it is, without moving it (for trees another tool
    installed and rewrote with absolute paths, as uv does).
    """
    reporter = reporter or QuietReporter()
    target = Path(target)
    if not target.exists():
        raise RelocpyError(f"{target} does not exist")
    if test_suite is not None and not runtime:
        raise RelocpyError(
            "--test-suite runs CPython's own tests, which --static-only leaves out",
            hint="drop one of the two options",
        )
    if in_place and not target.is_dir():
        raise RelocpyError(f"--in-place needs an installed tree, not {target.name}")
    scratch = Path(tempfile.mkdtemp(prefix="relocpy-verify-"))
    try:
        if in_place:
            root, metadata, forbidden = target.absolute(), {}, []
        else:
            reporter.step(f"placing {target.name} under a path with spaces and non-ASCII")
            root, metadata, forbidden = place_for_test(target, scratch)
        try:
            tree = inspect_tree(root)
        except RelocpyError as exc:  # name what the user gave, not the scratch copy
            raise type(exc)(
                exc.message.replace(str(root), f"{target}: python/"), hint=exc.hint
            ) from None
        forbidden = sorted({*forbidden, *forbid})
        infos = iter_elf_files(root)
        chosen = (
            get_policy(policy)
            if policy
            else (
                get_policy(str(metadata["policy"]))
                if metadata.get("policy")
                else policy_for_glibc(
                    max((i.max_glibc for i in infos if i.max_glibc), default=None)
                )
            )
        )
        report = VerifyReport(str(target), chosen.name)
        reporter.step("static audit: ELF dependencies, RUNPATHs, glibc, leftover paths")
        report.checks += audit_elf(root, infos, chosen)
        check, report.elf_table = audit_binutils(root, infos)
        report.checks.append(check)
        options = metadata.get("build_options")
        if isinstance(options, dict) and options.get("libs") == "source":
            report.checks.append(audit_self_contained(root, infos))
        report.checks.append(audit_leftovers(root, forbidden))
        own = bool(metadata.get("relocpy_version"))
        report.checks.append(audit_licences(root, own))
        pie = not (isinstance(options, dict) and options.get("pie") is False)
        report.checks.append(
            audit_hardening(root, infos, _build_cflags(tree), own, pie, grafted_files(metadata))
        )
        if runtime:
            machine = tree_target(tree, infos)
            static = is_static_executable(_executable_info(tree, infos))
            if needs_emulation(machine):
                reporter.step(f"runtime: {machine.arch} programs run under qemu-user here")
                enable_emulation(machine, reporter, static)
            # relocpy's own builds (they carry metadata) must also have every standard module.
            complete = bool(metadata.get("relocpy_version"))
            report.checks += runtime_checks(
                tree, scratch / "work", reporter, complete, machine, static
            )
            if test_suite is not None:
                report.checks.append(_check_test_suite(tree, test_suite, scratch, reporter))
            if in_place:
                return report
            reporter.step("moving the tree a second time")
            second = scratch / MOVE_2
            second.mkdir()
            os.rename(root, second / "python")
            moved = inspect_tree(second / "python")
            report.checks.append(check_imports(moved, "second-move-imports"))
            report.checks.append(check_locations(moved, "second-move-paths"))
        return report
    finally:
        if keep:
            reporter.step(f"kept the scratch directory {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
