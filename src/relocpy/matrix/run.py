"""Running a build matrix: each spec hashed, looked up in the binary cache, built only if missing.

One spec failing does not stop the others; a spec is in the cache only once it is complete, so a
second run after an interruption builds exactly what is still missing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from relocpy.core import home
from relocpy.core.errors import RelocpyError
from relocpy.core.progress import QuietReporter, Reporter
from relocpy.matrix.bincache import (
    BinaryCache,
    CacheEntry,
    LocalBinaryCache,
    OciBinaryCache,
    build_tag,
    find,
    open_mirror,
    spec_hash,
    spec_inputs,
    toolchain_identity,
)
from relocpy.matrix.spec import MatrixSpec, load_matrix
from relocpy.pipeline import build, build_libraries_for
from relocpy.verify.checks import verify as verify_archive


@dataclass(frozen=True)
class PlannedSpec:
    spec: MatrixSpec
    digest: str
    where: str  # "local", "mirror" or "missing"
    inputs: dict[str, object]

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.spec.label,
            "hash": self.digest,
            "cache": self.where,
            "spec": self.spec.as_dict(),
        }


@dataclass(frozen=True)
class SpecOutcome:
    planned: PlannedSpec
    status: str  # "built", "cached", "fetched" or "failed"
    seconds: float
    log: Path | None
    error: str | None = None
    entry: CacheEntry | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            **self.planned.as_dict(),
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "log": str(self.log) if self.log else None,
            "error": self.error,
            "archive": self.entry.archive if self.entry else None,
        }


def plan(
    specs: list[MatrixSpec],
    cache: LocalBinaryCache,
    mirrors: list[BinaryCache] | None = None,
    remote: OciBinaryCache | None = None,
) -> list[PlannedSpec]:
    """Each spec with its hash and where it already is: "registry" (the shared `remote`
    cache), "local" (the cache directory), "mirror", or "missing". A `remote` that cannot be
    read is an error, not a miss: it is where the results go."""
    identities: dict[tuple[str, str | None], str] = {}
    planned = []
    for spec in specs:
        key = (spec.toolchain, spec.glibc)
        if key not in identities:
            identities[key] = toolchain_identity(spec)
        inputs = spec_inputs(spec, identities[key])
        digest = spec_hash(inputs)
        if remote is not None and remote.lookup(digest) is not None:
            where = "registry"
        else:
            where = find(digest, cache, mirrors or []).where
        planned.append(PlannedSpec(spec, digest, where, inputs))
    return planned


def select(planned: list[PlannedSpec], only: list[str], source: str) -> list[PlannedSpec]:
    """The specs whose hash starts with one of `only` (all if `only` is empty)."""
    if not only:
        return planned
    chosen = [p for p in planned if any(p.digest.startswith(h.lower()) for h in only)]
    unmatched = [h for h in only if not any(p.digest.startswith(h.lower()) for p in planned)]
    if unmatched or any(len(h) < 8 for h in only):
        raise RelocpyError(
            f"no spec of {source} has the hash {', '.join(unmatched or only)}"
            + (" (give at least 8 hex digits)" if any(len(h) < 8 for h in only) else ""),
            hint=f"`relocpy matrix plan {source}` lists every spec with its hash",
        )
    return chosen


def _caches(cache: str | Path | None) -> tuple[LocalBinaryCache, OciBinaryCache | None]:
    """The local cache directory and, for an oci:// cache, the registry it feeds."""
    if isinstance(cache, str) and cache.startswith("oci://"):
        return LocalBinaryCache(home.binaries_dir()), OciBinaryCache(cache)
    return LocalBinaryCache(Path(cache) if cache else home.binaries_dir()), None


def plan_file(
    path: Path,
    cache_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    only: list[str] | None = None,
) -> list[PlannedSpec]:
    local, remote = _caches(cache_dir)
    planned = plan(load_matrix(path), local, [open_mirror(m) for m in mirrors or []], remote)
    return select(planned, only or [], str(path))


class _Prefixed:
    """A reporter that tags every line with the spec it belongs to (parallel builds)."""

    def __init__(self, inner: Reporter, tag: str) -> None:
        self.inner, self.tag = inner, tag

    def step(self, message: str) -> None:
        self.inner.step(f"[{self.tag}] {message}")

    def detail(self, message: str) -> None:
        self.inner.detail(f"[{self.tag}] {message}")

    def bytes_done(self, label: str, done: int, total: int | None) -> None:
        self.inner.bytes_done(f"[{self.tag}] {label}", done, total)


def build_planned(
    planned: PlannedSpec,
    cache: LocalBinaryCache,
    mirrors: list[BinaryCache],
    *,
    jobs: int,
    verify: bool,
    reporter: Reporter,
) -> SpecOutcome:
    """Make one spec present in `cache`: found, fetched from a mirror, or built (and verified)."""
    start = time.monotonic()
    spec, digest = planned.spec, planned.digest
    tag = build_tag(digest)
    logs = home.cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"matrix-{tag}.log"
    out: Path | None = None
    try:
        with cache.lock(digest):
            lookup = find(digest, cache, mirrors)
            if lookup.where == "local":
                return SpecOutcome(
                    planned, "cached", time.monotonic() - start, None, None, lookup.entry
                )
            if lookup.where == "mirror" and lookup.entry is not None:
                source = next(m for m in mirrors if m.location == lookup.entry.location)
                reporter.step(f"fetching from {source.location}")
                entry = cache.substitute(source, lookup.entry, reporter)
                return SpecOutcome(planned, "fetched", time.monotonic() - start, None, None, entry)
            out = Path(tempfile.mkdtemp(prefix=f".build-{tag}-", dir=cache.root))
            reporter.step(f"building {spec.label}; log: {log}")
            result = build(
                spec.version,
                out,
                jobs=jobs,
                build_tag=tag,
                reporter=reporter,
                log=log,
                **spec.build_options(),
            )
            extra: dict[str, object] = {"build_seconds": round(result.seconds, 1)}
            if verify:
                reporter.step("verifying the archive")
                report = verify_archive(result.archives.gz)
                failed = [c.name for c in report.checks if not c.ok]
                extra["verify"] = {c.name: c.ok for c in report.checks}
                if failed:
                    (log.parent / f"matrix-{tag}.verify.json").write_text(report.to_json())
                    raise RelocpyError(
                        f"verify failed: {', '.join(failed)}",
                        hint=f"details in {log.parent / f'matrix-{tag}.verify.json'}",
                    )
            archives = result.archives
            stripped = [p for p in (archives.stripped_gz, archives.stripped_zst) if p is not None]
            files = [archives.gz, archives.zst, *stripped, archives.metadata]
            files += [result.test_suite] if result.test_suite else []
            files += [archives.sbom] if archives.sbom else []
            # a PGO build's profile: what a rebuild needs to repeat its bytes (--pgo-profile)
            files += [result.pgo_profile] if result.pgo_profile else []
            files.append(result.log)
            entry = cache.store(digest, spec.label, planned.inputs, files, extra)
            return SpecOutcome(planned, "built", time.monotonic() - start, log, None, entry)
    except RelocpyError as exc:
        return SpecOutcome(planned, "failed", time.monotonic() - start, log, str(exc))
    except Exception as exc:  # one spec's bug must not stop the others
        with log.open("a") as handle:
            handle.write(traceback.format_exc())
        return SpecOutcome(
            planned, "failed", time.monotonic() - start, log, f"{type(exc).__name__}: {exc}"
        )
    finally:
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)


def build_libraries_only(planned: list[PlannedSpec], reporter: Reporter | None = None) -> int:
    """Only the libraries of each spec, into the library cache (a CI pipeline's library job);
    the number of specs that link libraries built here."""
    reporter = reporter or QuietReporter()
    count = 0
    for item in planned:
        spec = item.spec
        if spec.libs != "source":
            reporter.step(f"{spec.label}: links the host's libraries; nothing to build")
            continue
        build_libraries_for(spec.version, reporter=reporter, **spec.library_options())
        count += 1
    return count


def build_matrix(
    specs: list[PlannedSpec],
    cache: LocalBinaryCache,
    mirrors: list[BinaryCache] | None = None,
    *,
    parallel: int = 1,
    verify: bool = False,
    reporter: Reporter | None = None,
) -> list[SpecOutcome]:
    """Every spec present in `cache` afterwards, or reported failed; in the order given.

    `parallel` specs build at once, sharing the machine's cores between them; library builds
    are shared through the library cache (one builder per library key).
    """
    reporter = reporter or QuietReporter()
    parallel = max(1, parallel)
    jobs = max(1, (os.cpu_count() or 1) // parallel)
    total = len(specs)
    done = 0
    lock = threading.Lock()

    def run(index: int, planned: PlannedSpec) -> SpecOutcome:
        nonlocal done
        tagged = _Prefixed(reporter, f"{index}/{total} {planned.digest[:12]}")
        outcome = build_planned(
            planned, cache, mirrors or [], jobs=jobs, verify=verify, reporter=tagged
        )
        with lock:
            done += 1
            reporter.step(
                f"[{done}/{total} done] {planned.spec.label}: {outcome.status}"
                f" ({outcome.seconds:.0f} s)" + (f": {outcome.error}" if outcome.error else "")
            )
        return outcome

    if parallel == 1:
        return [run(i, p) for i, p in enumerate(specs, 1)]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(run, i, p) for i, p in enumerate(specs, 1)]
        return [f.result() for f in futures]


def build_file(
    path: Path,
    cache_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    *,
    parallel: int = 1,
    verify: bool = False,
    reporter: Reporter | None = None,
    only: list[str] | None = None,
) -> list[SpecOutcome]:
    """Build the matrix's specs (those of `only`, if given) that the cache lacks.

    `cache_dir` is a directory, or an `oci://HOST[:PORT]/REPO` registry shared by many
    machines: then each spec the registry lacks is built (or fetched) into this machine's
    binary cache and pushed, and the registry's mirror index is rewritten.
    """
    reporter = reporter or QuietReporter()
    local, remote = _caches(cache_dir)
    sources = [open_mirror(m) for m in mirrors or []]
    planned = select(plan(load_matrix(path), local, sources, remote), only or [], str(path))
    if remote is None:
        return build_matrix(
            planned, local, sources, parallel=parallel, verify=verify, reporter=reporter
        )
    present = {p.digest for p in planned if p.where == "registry"}
    todo = [p for p in planned if p.digest not in present]
    outcomes = {
        o.planned.digest: o
        for o in build_matrix(
            todo, local, sources, parallel=parallel, verify=verify, reporter=reporter
        )
    }
    results = []
    for item in planned:
        if item.digest in present:
            results.append(SpecOutcome(item, "cached", 0.0, None, None, remote.lookup(item.digest)))
            continue
        outcome = outcomes[item.digest]
        if outcome.entry is not None and outcome.status != "failed":
            remote.push(local, outcome.entry, reporter)
        results.append(outcome)
    if len(present) < len(planned) and any(o.status != "failed" for o in outcomes.values()):
        reporter.step(f"rewriting the mirror index of {remote.location}")
        remote.reindex()
    return results
