"""Reproducible bytes: one spec built twice from clean caches, every output compared.

Usage: .venv/bin/python bench/reproducible.py --work DIR [--version 3.13] [--opt noopt]
           [--toolchain zig] [--glibc 2.17] [--no-pie] [--keep-libraries] [--same-home]
           [--reuse-profile] [--build-tag 20260101]

Each run gets its own empty RELOCPY_HOME (the two of different path lengths; no library,
source or toolchain cache; with `--keep-libraries` the second run reuses the first run's
library cache, for a quicker check of CPython's own determinism) and its own output directory,
and builds with `relocpy build`. With `--reuse-profile` (a PGO spec), the second run is given
the profile the first one wrote (`--pgo-profile`) instead of training again. Then every
archive, the SBOM and the metadata are compared by sha256; where two differ, the members that
differ are listed, and for ELF members the sections that differ, with a likely cause.
Results: stdout and bench/results/reproducible.md (appended).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from _results import report

RELOCPY = Path(sys.executable).parent / "relocpy"
RESULTS = Path(__file__).parent / "results" / "reproducible.md"
# metadata keys that describe the run rather than the product: its duration and the temporary
# directories whose names verify looks for in the tree
RUN_FACTS = {"build_seconds", "build_paths"}

# what usually makes an ELF section differ between two builds
CAUSES = {
    ".text": "code generation (PGO profile counts, or link order)",
    ".gnu.build-id": "follows from any other difference in the file",
    ".debug_info": "debug info: build paths or ordering",
    ".debug_str": "debug strings: build paths",
    ".debug_line": "line tables: build paths",
    ".data": "initialised data (e.g. embedded timestamps or paths)",
    ".rodata": "constant data (e.g. __DATE__/__TIME__, paths)",
    ".dynstr": "dynamic strings (RUNPATH, symbol names)",
    ".note.gnu.property": "toolchain properties",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(number: int, args: argparse.Namespace) -> tuple[Path, float]:
    run = args.work / f"run-{number}"
    # homes of different lengths: a path that leaks shows as content, not only as an order
    home = run / ("home" if number == 1 else "second-home")
    dist = run / "dist"
    if run.exists():
        shutil.rmtree(run)
    home.mkdir(parents=True)
    if args.same_home and number == 2:
        home = args.work / "run-1" / "home"  # CPython's own determinism: the same paths
    elif args.keep_libraries and number == 2:
        first = args.work / "run-1" / "home" / "cache"
        for kind in ("libs", "sources", "toolchains", "apt"):
            if (first / kind).is_dir():
                (home / "cache").mkdir(exist_ok=True)
                subprocess.run(
                    ["cp", "-al", str(first / kind), str(home / "cache" / kind)], check=True
                )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PIP_", "RELOCPY_", "SSL_CERT"))
    }
    env["RELOCPY_HOME"] = str(home)
    cmd = [str(RELOCPY), "build", args.version, "--out", str(dist), "--opt", args.opt]
    cmd += ["--toolchain", args.toolchain, "--build-tag", args.build_tag]
    if args.glibc:
        cmd += ["--glibc", args.glibc]
    if args.no_pie:
        cmd += ["--no-pie"]
    if args.reuse_profile and number == 2:
        profiles = sorted((args.work / "run-1" / "dist").glob("*.pgo-profile.tar.zst"))
        if len(profiles) != 1:
            sys.exit(f"run 1 wrote {len(profiles)} PGO profiles, not one: is --opt a PGO one?")
        cmd += ["--pgo-profile", str(profiles[0])]
    print(f"run {number}: {' '.join(cmd)}", flush=True)
    start = time.monotonic()
    with (run / "build.out").open("w") as out:
        subprocess.run(cmd, env=env, check=True, stdout=out, stderr=subprocess.STDOUT)
    return dist, time.monotonic() - start


def members(path: Path) -> dict[str, bytes]:
    """Member name → content (symlink target, or file bytes) of a .tar.gz or .tar.zst."""
    if path.name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    else:
        import gzip

        data = gzip.decompress(path.read_bytes())
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                out[member.name] = handle.read() if handle else b""
            else:
                out[member.name] = f"{member.type!r} {member.linkname} {member.mode:o}".encode()
    return out


def elf_sections(data: bytes) -> dict[str, bytes]:
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(data))
    return {s.name: s.data() for s in elf.iter_sections() if s.header.sh_type != "SHT_NOBITS"}


def only_in(one: bytes, two: bytes) -> str:
    """A string run 1's bytes hold and run 2's do not: usually the cause itself (a path)."""
    found = set(re.findall(rb"[\x20-\x7e]{8,}", one)) - set(re.findall(rb"[\x20-\x7e]{8,}", two))
    if not found:
        return ""
    sample = min(found, key=len).decode()
    return f' e.g. "{sample[:90]}"'


def explain(name: str, one: bytes, two: bytes) -> str:
    if one[:4] == b"\x7fELF" and two[:4] == b"\x7fELF":
        a, b = elf_sections(one), elf_sections(two)
        differ = sorted(s for s in set(a) | set(b) if a.get(s) != b.get(s))
        return "ELF sections " + ", ".join(
            f"{s} ({CAUSES.get(s, 'see the section')}{only_in(a.get(s, b''), b.get(s, b''))})"
            for s in differ
        )
    if name.endswith(".pyc"):
        return "bytecode (a source or marshal difference)" + only_in(one, two)
    return f"{len(one)} vs {len(two)} bytes" + only_in(one, two)


def compare(one: Path, two: Path) -> list[tuple[str, str, str]]:
    rows = []
    for path in sorted(one.iterdir()):
        if path.name.endswith((".log", ".sha256")):
            continue
        other = two / path.name
        if not other.is_file():
            rows.append((path.name, "missing in run 2", ""))
            continue
        same = sha256(path) == sha256(other)
        detail = ""
        if not same and ".tar." in path.name:
            a, b = members(path), members(other)
            differ = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
            detail = "; ".join(
                f"{n}: {explain(n, a.get(n, b''), b.get(n, b''))}" for n in differ[:20]
            ) + (f"; … {len(differ) - 20} more" if len(differ) > 20 else "")
        elif not same and path.name.endswith(".json"):
            a, b = json.loads(path.read_text()), json.loads(other.read_text())
            for info in (a, b):  # whether the PGO profile was trained or given: a run's fact
                if isinstance(info.get("pgo_profile"), dict):
                    info["pgo_profile"].pop("given", None)
            keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            detail = "keys " + ", ".join(keys)
            if set(keys) <= RUN_FACTS:
                rows.append((path.name, "identical but for the run's facts", detail))
                continue
        rows.append((path.name, "identical" if same else "DIFFERS", detail or sha256(path)[:16]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--version", default="3.13")
    parser.add_argument("--opt", default="noopt")
    parser.add_argument("--toolchain", default="zig")
    parser.add_argument("--glibc")
    parser.add_argument("--no-pie", action="store_true")
    parser.add_argument("--build-tag", default="20260101")
    parser.add_argument("--keep-libraries", action="store_true")
    parser.add_argument(
        "--same-home",
        action="store_true",
        help="run 2 uses run 1's RELOCPY_HOME (its toolchain and library caches, at the same"
        " paths): what differs then is CPython's own build, PGO included",
    )
    parser.add_argument(
        "--reuse-profile",
        action="store_true",
        help="run 2 compiles with the PGO profile run 1 wrote instead of training again",
    )
    parser.add_argument("--skip-run1", action="store_true", help="keep an existing run 1")
    parser.add_argument("--compare-only", action="store_true", help="compare existing runs")
    args = parser.parse_args()
    args.work = args.work.absolute()
    times = []
    if not args.compare_only:
        for number in (2,) if args.skip_run1 else (1, 2):
            times.append(build(number, args)[1])
    rows = compare(args.work / "run-1" / "dist", args.work / "run-2" / "dist")
    spec = f"{args.version} {args.opt} {args.toolchain}" + (
        f" glibc {args.glibc}" if args.glibc else ""
    )
    spec += " no-pie" if args.no_pie else ""
    clean = (
        "run 2 given run 1's PGO profile, every cache empty"
        if args.reuse_profile and not (args.same_home or args.keep_libraries)
        else "run 2 in run 1's RELOCPY_HOME"
        if args.same_home
        else "library cache shared"
        if args.keep_libraries
        else "every cache empty"
    )
    lines = [
        f"\n## {spec} ({clean}), {time.strftime('%Y-%m-%d')}\n",
        f"`{' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`"
        + (f": builds of {', '.join(f'{s / 60:.1f}' for s in times)} min" if times else ""),
        "",
        "| file | result | sha256 or what differs |",
        "| --- | --- | --- |",
        *(f"| {n} | {r} | {d} |" for n, r, d in rows),
    ]
    same = sum(r.startswith("identical") for _, r, _ in rows)
    lines.append(f"\n{same} of {len(rows)} files identical.")
    text = "\n".join(lines) + "\n"
    report(RESULTS, "Reproducible builds: one spec built twice from clean caches", text)
    return 0 if same == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
