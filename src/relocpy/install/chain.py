"""Where an interpreter comes from: one resolution chain for `relocpy install` and `run`.

Already installed -> each configured mirror in order -> the local binary cache -> a build from
source, stored in the binary cache and installed from there. `mode` picks one end of the chain:
"no-build" stops before the build, "build-only" skips the mirrors and the binary cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from relocpy.core import home
from relocpy.core.errors import RelocpyError, SourceUnavailableError, UnknownVersionError
from relocpy.core.progress import QuietReporter, Reporter
from relocpy.core.versions import parse_request
from relocpy.install.config import BuildChoice, Config, load_config, mirrors_in_order
from relocpy.install.selection import Candidate, Machine, explain
from relocpy.install.trees import Installation, Installed, install_entry, matching_installs

MODES = ("auto", "no-build", "build-only")


class NotAvailableError(UnknownVersionError):
    """No source in the chain can provide the requested interpreter."""


@dataclass
class Plan:
    """What `install` would do for a request, and what each source of the chain offered."""

    request: str
    source: str  # "installed", "mirror", "binary cache" or "build"
    location: str | None = None  # the mirror or cache it comes from
    installation: Installation | None = None  # when already installed
    candidates: list[Candidate] = field(default_factory=list)  # of that source, best first
    spec: object | None = None  # the MatrixSpec a build would make
    estimate: str | None = None  # what the build will cost
    notes: list[str] = field(default_factory=list)  # per source tried, what it had
    unusable: list[str] = field(default_factory=list)  # mirrors that could not be read, and why

    @property
    def chosen(self) -> Candidate | None:
        return self.candidates[0] if self.candidates and self.candidates[0].eligible else None

    def describe(self) -> list[str]:
        """The plan in words, as `install --dry-run` prints it."""
        lines = [f"{self.request}: sources tried, in order:"]
        lines += [f"  {note}" for note in self.notes]
        if self.source == "installed" and self.installation:
            lines.append(f"already installed: {self.installation.root}")
        elif self.source == "build":
            lines.append(f"would build: {self.estimate}")
        elif self.chosen:
            lines.append(f"would install {self.chosen.entry.name} from {self.location}")
        for number, candidate in enumerate(self.candidates, 1):
            mark = "chosen" if number == 1 and candidate.eligible else "ranked"
            why = candidate.why_not or mark
            lines.append(f"  {number:2}. {candidate.entry.name}: {why}")
        return lines


class _Unusable(Exception):
    """A mirror or cache whose index cannot be read (unreachable, not JSON, not an index)."""


def _offers(location: str, request: str, machine: Machine) -> tuple[list[Candidate], str]:
    """The candidates a mirror has for `request`, and a note saying what it had; _Unusable
    (with the note) if its index cannot be read."""
    from relocpy.core.records import RecordError
    from relocpy.package.mirror import Mirror, MirrorError

    try:
        entries = Mirror(location).entries()
    except (MirrorError, RecordError) as exc:
        why = exc.message.removeprefix(f"{location}: ")
        raise _Unusable(f"{location}: not used: {why}") from None
    candidates = explain(request, entries, machine)
    eligible = sum(c.eligible for c in candidates)
    if eligible:
        return candidates, f"{location}: {eligible} builds of {request} run here"
    versions = sorted({e.version for e in entries})
    has = ", ".join(versions[-8:]) or "nothing"
    why = f" ({candidates[0].why_not})" if candidates else ""
    return candidates, f"{location}: no build of {request} for this machine{why}; it has {has}"


def _say(unusable: list[str], reporter: Reporter | None) -> None:
    """Name the sources that could not be read (a mirror of the config that is down), once the
    plan does not end in an error that names them anyway."""
    if reporter is not None:
        for note in unusable:
            reporter.step(note)


def build_spec(request: str, choice: BuildChoice, reporter: Reporter | None = None) -> object:
    """The MatrixSpec a build on a miss makes: the newest release matching `request` whose
    source this machine can get (see `relocpy.sources.fetch.resolve_reachable`)."""
    from relocpy.matrix.spec import MatrixSpec
    from relocpy.sources.fetch import resolve_reachable

    wanted = parse_request(request)
    pin = resolve_reachable(str(wanted).removesuffix("t"), reporter)
    return MatrixSpec(
        version=pin.version,
        opt=choice.opt,
        toolchain=choice.toolchain,
        glibc=choice.glibc if choice.toolchain == "zig" or choice.glibc else None,
        march=choice.march,
        readline=choice.readline,
        free_threaded=wanted.freethreaded,
    )


def estimate(spec: object) -> str:
    """What building `spec` will cost on this machine: libraries to build, and minutes."""
    from relocpy.build.libraries import (
        TYPICAL_SECONDS,
        libraries_for,
        library_cflags,
        spec_cflags,
        uncached,
    )
    from relocpy.matrix.spec import MatrixSpec
    from relocpy.pipeline import toolchain_identity
    from relocpy.sources.catalog import resolve_cpython

    assert isinstance(spec, MatrixSpec)
    pin = resolve_cpython(spec.version)
    recipes = libraries_for(pin.version_tuple, spec.readline)
    flags = library_cflags(spec_cflags(spec.march, spec.cflags))
    missing = uncached(recipes, toolchain_identity(spec.toolchain, spec.glibc), flags)
    cores = os.cpu_count() or 1
    seconds = sum(TYPICAL_SECONDS.get(r.name, 30) for r in missing)
    seconds += TYPICAL_SECONDS["cpython-" + ("pgo" if spec.opt.startswith("pgo") else "noopt")]
    seconds = seconds * 2 / max(cores, 1)  # measured on 2 cores
    return (
        f"CPython {spec.label} from source: {len(missing)} of {len(recipes)} libraries to build"
        f" ({len(recipes) - len(missing)} cached), about {max(1, round(seconds / 60))} min on"
        f" {cores} cores"
    )


def plan(
    request: str,
    *,
    mirrors: list[str] | None = None,
    mode: str = "auto",
    config: Config | None = None,
    machine: Machine | None = None,
    reporter: Reporter | None = None,
) -> Plan:
    """Where `request` would come from (nothing is downloaded or built; `reporter` hears of
    the probes of where sources can be fetched, before a build)."""
    if mode not in MODES:
        raise RelocpyError(f"unknown mode {mode!r}", hint=f"choose one of {', '.join(MODES)}")
    parse_request(request)  # a bad request fails before anything else
    config = config or load_config()
    machine = machine or Machine.current()
    notes: list[str] = []
    have = matching_installs(request)
    if have:
        return Plan(request, "installed", installation=have[0], notes=["installed: yes"])
    notes.append("installed: none")
    unusable: list[str] = []
    named: list[str] = []  # unusable mirrors named on the command line
    if mode != "build-only":
        sources = [("mirror", location) for location in mirrors_in_order(mirrors, config)]
        cache = home.binaries_dir()
        cached = (cache / "index.json").is_file()
        if cached:
            sources.append(("binary cache", str(cache)))
        for kind, location in sources:
            try:
                candidates, note = _offers(location, request, machine)
            except _Unusable as exc:
                candidates, note = [], str(exc)
                unusable.append(f"{kind} {note}")
                if kind == "mirror" and location in (mirrors or []):
                    named.append(note)
            notes.append(f"{kind} {note}")
            if candidates and candidates[0].eligible:
                _say(unusable, reporter)
                return Plan(
                    request, kind, location, None, candidates, notes=notes, unusable=unusable
                )
        if not cached:
            notes.append(f"binary cache {cache}: empty")
    else:
        notes.append("mirrors and binary cache: skipped (--build-only)")
    if named and mode == "auto":  # not a miss: a broken mirror must not turn into a long build
        raise NotAvailableError(
            f"{request}: the mirror given with --mirror cannot be used, and no other source"
            " has a build, so nothing was installed or built:\n  " + "\n  ".join(named),
            hint="fix the mirror or name another; to build from source instead, drop --mirror"
            " or pass --build-only",
        )
    if mode == "no-build":
        raise NotAvailableError(
            f"no mirror and no cached build has {request!r} for this machine:\n  "
            + "\n  ".join(notes),
            hint="add a mirror (--mirror, RELOCPY_MIRROR or the config file), or let relocpy"
            " build it (drop --no-build)",
        )
    _say(unusable, reporter)
    spec = build_spec(request, config.build, reporter)
    return Plan(
        request, "build", notes=notes, unusable=unusable, spec=spec, estimate=estimate(spec)
    )


def _check_source(spec: object, plan_notes: list[str], reporter: Reporter) -> None:
    """Fetch the CPython tarball before hours of library builds, or say who would serve it."""
    from relocpy.sources.catalog import resolve_cpython
    from relocpy.sources.fetch import fetch

    pin = resolve_cpython(spec.version)  # type: ignore[attr-defined]
    try:
        fetch(pin, reporter=reporter)
    except SourceUnavailableError as exc:
        urls = ", ".join(pin.urls) or "none pinned"
        raise NotAvailableError(
            f"cannot build CPython {pin.version}: its source is not reachable from here."
            f"\n  {exc.message}\n  it is served by: {urls}"
            + (f" and Debian's {pin.debian_package} source package" if pin.debian_package else "")
            + "\n  and no installed interpreter, mirror or cached build has it:\n    "
            + "\n    ".join(plan_notes),
            hint=f"download {pin.filename} elsewhere and run `relocpy fetch {pin.version}"
            f" --file {pin.filename}`, or add a mirror that has a build",
        ) from None


def provide(
    request: str,
    *,
    mirrors: list[str] | None = None,
    mode: str = "auto",
    config: Config | None = None,
    machine: Machine | None = None,
    reporter: Reporter | None = None,
    links: bool = True,
) -> tuple[Installed, Plan]:
    """Install `request` from the first source of the chain that has it (see `plan`)."""
    from relocpy.package.mirror import Mirror

    reporter = reporter or QuietReporter()
    chosen = plan(
        request, mirrors=mirrors, mode=mode, config=config, machine=machine, reporter=reporter
    )
    if chosen.source == "installed":
        assert chosen.installation is not None
        reporter.step(f"{request}: already installed at {chosen.installation.root}")
        from relocpy.install.trees import link_interpreter

        installation = chosen.installation
        return Installed(installation, link_interpreter(installation) if links else None), chosen
    if chosen.source == "build":
        location = _build_into_cache(chosen, reporter)
        source = Mirror(location)
        entries = source.entries()
        candidates = explain(request, entries, machine or Machine.current())
        if not candidates or not candidates[0].eligible:
            raise RelocpyError(
                f"the build of {request} is in the binary cache, but does not run here",
                hint=candidates[0].why_not if candidates else None,
            )
        entry = candidates[0].entry
    else:
        assert chosen.chosen is not None and chosen.location is not None
        entry = chosen.chosen.entry
        source = Mirror(chosen.location)
    reporter.step(f"{request}: installing {entry.name} from {chosen.source} {source.location}")
    return install_entry(entry, source, reporter=reporter, links=links), chosen


def _build_into_cache(chosen: Plan, reporter: Reporter) -> str:
    """Build the plan's spec (or find it built) in the binary cache; return the cache's path."""
    from relocpy.matrix.bincache import LocalBinaryCache
    from relocpy.matrix.run import build_planned
    from relocpy.matrix.run import plan as plan_specs
    from relocpy.matrix.spec import MatrixSpec

    spec = chosen.spec
    assert isinstance(spec, MatrixSpec)
    reporter.step(f"no mirror has {chosen.request}: building {chosen.estimate}")
    _check_source(spec, chosen.notes, reporter)
    cache = LocalBinaryCache(home.binaries_dir())
    [planned] = plan_specs([spec], cache)
    outcome = build_planned(
        planned, cache, [], jobs=os.cpu_count() or 1, verify=False, reporter=reporter
    )
    if outcome.status == "failed":
        raise RelocpyError(
            f"the build of {spec.label} failed: {outcome.error}; nothing was installed",
            hint=f"the build log is {outcome.log}" if outcome.log else None,
        )
    reporter.step(f"stored in the binary cache {cache.root} ({outcome.seconds:.0f} s)")
    return str(cache.root)
