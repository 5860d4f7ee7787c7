"""Build matrices report: plan the seed, build a 4-spec matrix twice, check reproducibility.

Usage: .venv/bin/python bench/issue5_report.py [--matrix examples/matrix-4.toml] [--repro 1]
1. `matrix plan` of examples/matrix-seed.toml: the number of specs.
2. `matrix build --verify` of the 4-spec matrix into an empty binary cache (the library cache is
   the user's, so libraries already built are shared), timed per spec.
3. The same command again: what it built (nothing, if the cache works) and how long it took.
4. Reproducibility: spec number `--repro` built again with empty caches (a fresh RELOCPY_HOME:
   libraries, zig's libc stubs and CPython all rebuilt) and its archives compared with step 2's;
   differing members are listed, with the ELF sections that differ.
Results go to stdout and to bench/results/issue5.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from relocpy.core import home
from relocpy.matrix.bincache import LocalBinaryCache
from relocpy.matrix.run import build_matrix, plan
from relocpy.matrix.spec import load_matrix


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _elf_sections_differing(a: bytes, b: bytes, workdir: Path) -> str:
    """Which ELF sections differ (each dumped with `objcopy --dump-section`), diffoscope-style."""
    (workdir / "a").write_bytes(a)
    (workdir / "b").write_bytes(b)
    listing = subprocess.run(
        ["readelf", "-SW", str(workdir / "a")], capture_output=True, text=True
    ).stdout
    sections = []
    for line in listing.splitlines():
        head, _, rest = line.partition("]")
        if head.strip().startswith("[") and rest.split() and rest.split()[0].startswith("."):
            sections.append(rest.split()[0])
    differ = []
    for section in sections:
        dumps = []
        for side in ("a", "b"):
            out = workdir / f"{side}.section"
            out.unlink(missing_ok=True)
            subprocess.run(
                ["objcopy", "--dump-section", f"{section}={out}", str(workdir / side),
                 str(workdir / f"{side}.ignored")],
                capture_output=True,
            )  # fmt: skip
            dumps.append(out.read_bytes() if out.exists() else b"")
        if dumps[0] != dumps[1]:
            differ.append(section)
    return ", ".join(differ) or "headers only"


def _compare(a: Path, b: Path) -> list[str]:
    if _sha(a) == _sha(b):
        return [f"- {a.name}: identical, sha256 {_sha(a)}"]
    lines = [f"- {a.name}: differs ({_sha(a)[:16]} vs {_sha(b)[:16]})"]
    with tarfile.open(a) as ta, tarfile.open(b) as tb, tempfile.TemporaryDirectory() as tmp:
        ma = {m.name: m for m in ta.getmembers()}
        mb = {m.name: m for m in tb.getmembers()}
        for name in sorted(set(ma) | set(mb)):
            x, y = ma.get(name), mb.get(name)
            if x is None or y is None:
                lines.append(f"  - {name}: only in {'second' if x is None else 'first'}")
                continue
            if (x.mode, x.mtime, x.linkname, x.type) != (y.mode, y.mtime, y.linkname, y.type):
                lines.append(f"  - {name}: metadata (mode/mtime/link)")
            if x.isreg() and y.isreg():
                fx, fy = ta.extractfile(x), tb.extractfile(y)
                da = fx.read() if fx else b""
                db = fy.read() if fy else b""
                if da != db:
                    detail = (
                        f"ELF sections {_elf_sections_differing(da, db, Path(tmp))}"
                        if da[:4] == b"\x7fELF"
                        else f"{len(da)} vs {len(db)} bytes"
                    )
                    lines.append(f"  - {name}: {detail}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--matrix", type=Path, default=Path("examples/matrix-4.toml"))
    parser.add_argument("--seed", type=Path, default=Path("examples/matrix-seed.toml"))
    parser.add_argument(
        "--repro", type=int, default=1, help="1-based spec to rebuild (0: skip this step)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/issue5.md"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="relocpy-bench5-"))
    cache = LocalBinaryCache(work / "binaries")
    lines = ["# Build matrices and the binary cache (issue 5)", ""]
    lines.append(
        f"Machine: {os.cpu_count()} cores. Command: `.venv/bin/python bench/issue5_report.py`."
    )

    seed = plan(load_matrix(args.seed), cache)
    lines += ["", f"`relocpy matrix plan {args.seed}`: {len(seed)} specs.", ""]

    specs = load_matrix(args.matrix)
    runs = []
    for attempt in ("first", "second"):
        start = time.monotonic()
        planned = plan(specs, cache)
        outcomes = build_matrix(planned, cache, verify=True)
        runs.append((attempt, time.monotonic() - start, outcomes))
    lines += [f"`relocpy matrix build {args.matrix} --verify`, twice:", ""]
    lines += ["| spec | hash | first run | second run |", "| --- | --- | --- | --- |"]
    for first, second in zip(runs[0][2], runs[1][2], strict=True):
        lines.append(
            f"| {first.planned.spec.label} | {first.planned.digest[:16]} "
            f"| {first.status} in {first.seconds:.0f} s "
            f"| {second.status} in {second.seconds:.1f} s |"
        )
    lines += [
        "",
        f"Wall time: first run {runs[0][1]:.0f} s, second run {runs[1][1]:.1f} s.",
        "",
    ]

    if args.repro == 0:
        return _write(args.out, lines)
    # Reproducibility: the chosen spec once more, with empty caches (sources shared).
    chosen = runs[0][2][args.repro - 1]
    sources = home.downloads_dir()
    zig = home.cache_dir() / "toolchains" / "ziglang-0.17.1"
    os.environ["RELOCPY_HOME"] = str(work / "fresh-home")
    (work / "fresh-home" / "cache" / "toolchains").mkdir(parents=True)
    (work / "fresh-home" / "cache" / "sources").symlink_to(sources)
    if zig.exists():
        (work / "fresh-home" / "cache" / "toolchains" / zig.name).symlink_to(zig)
    fresh = LocalBinaryCache(work / "binaries-again")
    again_plan = plan([chosen.planned.spec], fresh)
    assert again_plan[0].digest == chosen.planned.digest, "same inputs must give the same hash"
    again = build_matrix(again_plan, fresh)[0]
    lines += [
        f"Reproducibility: `{chosen.planned.spec.label}` built again with empty caches "
        f"({again.status}, {again.seconds:.0f} s):",
        "",
    ]
    if chosen.entry and again.entry:
        for stored in chosen.entry.files:
            if stored.name.endswith((".tar.gz", ".tar.zst")):
                lines += _compare(cache.root / stored.name, fresh.root / stored.name)
    else:
        lines.append(f"- a build failed: {chosen.error or again.error}")
    return _write(args.out, lines)


def _write(out: Path, lines: list[str]) -> int:
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
