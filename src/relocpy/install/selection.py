"""Choosing among the builds a mirror offers: which run on this machine, and which is best.

Pure functions over `MirrorEntry` lists and a `Machine`; the order is documented in `rank` and
`explain` says, for every build, why it was or was not chosen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relocpy.core.errors import UnknownVersionError
from relocpy.core.versions import Request, matches, parse_request, version_key
from relocpy.elf.policy import host_glibc
from relocpy.package.mirror import install_rank

if TYPE_CHECKING:
    from relocpy.package.mirror import MirrorEntry

# x86-64 micro-architecture levels and the /proc/cpuinfo flags each needs (on top of the one
# below), as the x86-64 psABI defines them.
_LEVEL_FLAGS = {
    "v2": {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"},
    "v3": {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"},
    "v4": {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
}
LEVELS = ("", "v2", "v3", "v4")
OPT_ORDER = ("noopt", "lto", "pgo", "pgo+lto")  # worst to best; unknown ranks below noopt


def cpu_level(flags: set[str]) -> str:
    """The highest x86-64 level whose flags (and every lower level's) are all in `flags`."""
    level = ""
    for name in LEVELS[1:]:
        if not _LEVEL_FLAGS[name] <= flags:
            break
        level = name
    return level


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@dataclass(frozen=True)
class Machine:
    arch: str
    libc: str
    glibc: tuple[int, int]
    cpu_level: str = ""  # x86-64 level this CPU runs: "", "v2", "v3" or "v4"

    @classmethod
    def current(cls) -> Machine:
        arch = os.uname().machine or "x86_64"  # (platform.machine(), without importing platform)
        level = cpu_level(_cpu_flags()) if arch == "x86_64" else ""
        try:
            gnu = bool(os.confstr("CS_GNU_LIBC_VERSION"))
        except (ValueError, OSError):
            gnu = False
        return cls(arch, "gnu" if gnu else "musl", host_glibc(), level)


def why_not_here(entry: MirrorEntry, machine: Machine) -> str | None:
    """Why `entry` cannot run on `machine`, or None if it can."""
    if entry.arch != machine.arch:
        return f"built for {entry.arch}, this machine is {machine.arch}"
    if entry.libc != machine.libc:
        return f"built for {entry.libc}, this machine has {machine.libc}"
    if entry.glibc_floor:
        try:
            floor = tuple(int(p) for p in entry.glibc_floor.split(".")[:2])
        except ValueError:
            return f"its glibc floor {entry.glibc_floor!r} cannot be read"
        if floor > machine.glibc:
            have = ".".join(map(str, machine.glibc))
            return f"needs glibc {entry.glibc_floor}, this machine has {have}"
    if LEVELS.index(entry.cpu_level or "") > LEVELS.index(machine.cpu_level):
        return f"needs an x86-64-{entry.cpu_level} CPU, this one is x86-64" + (
            f"-{machine.cpu_level}" if machine.cpu_level else ""
        )
    return None


def rank(entry: MirrorEntry) -> tuple[object, ...]:
    """The documented order among builds that match a request and run here, best last:
    1. the newest release;
    2. the flavour (`install_rank`): install_only_stripped where it holds the standard
       library's bytecode (smaller, as fast to start), then install_only, then a stripped
       archive without bytecode;
    3. the most optimised build: pgo+lto, pgo, lto, noopt, then builds that do not say;
    4. the highest x86-64 level (every level that reached this point runs on this CPU);
    5. the newest build tag;
    6. .tar.zst over .tar.gz (faster to unpack: `install_rank` again);
    7. the file name, so that the choice never depends on the order of an index.
    """
    opt = OPT_ORDER.index(entry.opt) if entry.opt in OPT_ORDER else -1
    return (
        version_key(entry.version),
        install_rank(entry)[0],
        opt,
        LEVELS.index(entry.cpu_level or "") if entry.cpu_level in LEVELS else -1,
        entry.build,
        entry.compression == "zst",
        entry.name,
    )


@dataclass(frozen=True)
class Candidate:
    entry: MirrorEntry
    why_not: str | None  # None: it runs here and is eligible

    @property
    def eligible(self) -> bool:
        return self.why_not is None


def explain(
    request: str | Request, entries: list[MirrorEntry], machine: Machine
) -> list[Candidate]:
    """Every build that matches `request`, best first: eligible ones by `rank`, then the rest
    with the reason each cannot be used here."""
    wanted = parse_request(request) if isinstance(request, str) else request
    found = []
    for entry in entries:
        if not matches(entry.version, entry.variant, wanted):
            continue
        if not entry.flavour.startswith("install_only"):
            found.append(Candidate(entry, f"a {entry.flavour} archive, not install_only"))
            continue
        found.append(Candidate(entry, why_not_here(entry, machine)))
    eligible = sorted((c for c in found if c.eligible), key=lambda c: rank(c.entry), reverse=True)
    others = sorted((c for c in found if not c.eligible), key=lambda c: c.entry.name)
    return eligible + others


def select(request: str, entries: list[MirrorEntry], machine: Machine) -> MirrorEntry:
    """The best build of `request` that runs on `machine` (see `rank`)."""
    ranked = explain(request, entries, machine)
    if ranked and ranked[0].eligible:
        return ranked[0].entry
    available = sorted(
        {e.version for e in entries if why_not_here(e, machine) is None}, key=version_key
    )
    why = ""
    if ranked:
        why = f" (builds exist, but none for this machine: {ranked[0].why_not})"
    raise UnknownVersionError(
        f"no build of {request!r} on the mirror{why}; available: "
        + (", ".join(available) or "none"),
    )
