"""`relocpy install --mirror oci://…` against a real registry on loopback, timed.

Usage: .venv/bin/python bench/oci_install.py --dist DIR [--version 3.13] [--runs 7]

DIR is a `relocpy build` output directory (install_only archives and metadata). The bench
starts Debian's docker-registry on 127.0.0.1 with a basic-auth realm, pushes DIR's build as one
spec (as `matrix build --cache oci://` does), rewrites the registry's index, then times
`relocpy install VERSION --mirror oci://127.0.0.1:PORT/relocpy --no-build --no-links` into an
empty RELOCPY_HOME (cold: nothing downloaded before), and again with the download cache kept
(warm). The same archive from a plain directory mirror is timed alongside, for the ratio.
Results: stdout and bench/results/oci_install.md (appended).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _results import report

from oci_registry import Registry
from relocpy.core.progress import QuietReporter
from relocpy.matrix.bincache import LocalBinaryCache, OciBinaryCache
from relocpy.package.mirror import write_index

RELOCPY = Path(sys.executable).parent / "relocpy"
RESULTS = Path(__file__).parent / "results" / "oci_install.md"


def timed_install(version: str, mirror: str, home: Path, env: dict[str, str]) -> float:
    cmd = [str(RELOCPY), "install", version, "--mirror", mirror, "--no-build", "--no-links"]
    os.sync()  # (untimed) the earlier runs' files written back: each run on a settled disk
    start = time.perf_counter()
    subprocess.run(
        cmd, env={**env, "RELOCPY_HOME": str(home)}, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, required=True)
    parser.add_argument("--version", default="3.13")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    files = sorted(
        p
        for p in args.dist.iterdir()
        if "install_only" in p.name and p.name.endswith((".tar.gz", ".tar.zst", ".json"))
    )
    work = Path(tempfile.mkdtemp(prefix="relocpy-oci-bench-"))
    try:
        with Registry(work / "registry") as registry:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("RELOCPY_", "PYTHON"))}
            env.update(registry.env())
            os.environ.update(registry.env())
            local = LocalBinaryCache(work / "local")
            digest = hashlib.sha256(b"".join(p.read_bytes()[:4096] for p in files)).hexdigest()
            entry = local.store(digest, f"bench {args.dist.name}", {}, files)
            remote = OciBinaryCache(registry.url())
            start = time.perf_counter()
            remote.push(local, entry, QuietReporter())
            names = remote.reindex()
            push = time.perf_counter() - start
            plain = work / "plain"
            plain.mkdir()
            for path in files:
                shutil.copyfile(path, plain / path.name)
            write_index(plain)
            rows: dict[str, list[float]] = {"oci cold": [], "dir cold": [], "oci warm": []}
            warm_home = work / "warm"
            for run in range(args.runs):
                order = [("oci cold", registry.url()), ("dir cold", str(plain))]
                for label, mirror in order if run % 2 == 0 else order[::-1]:
                    home = work / f"{label.replace(' ', '-')}-{run}"
                    rows[label].append(timed_install(args.version, mirror, home, env))
                    shutil.rmtree(home)
                shutil.rmtree(warm_home / "data", ignore_errors=True)
                rows["oci warm"].append(timed_install(args.version, registry.url(), warm_home, env))
            rows["oci warm"] = rows["oci warm"][1:]  # the first one fills the download cache
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {k: statistics.median(v) for k, v in rows.items()}
    lines = [
        f"\n## relocpy install {args.version} from an OCI registry, {time.strftime('%Y-%m-%d')}\n",
        f"`{Path(sys.argv[0]).as_posix()} {' '.join(sys.argv[1:])}`: pushed {len(names)} archives"
        f" ({sum(p.stat().st_size for p in files) / 1e6:.0f} MB with metadata) in {push:.1f} s;"
        f" docker-registry {registry.host} with basic auth.",
        "",
        "| install from | median (s) | min | max | runs |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {k} | {median[k]:.3f} | {min(v):.3f} | {max(v):.3f} | {len(v)} |"
            for k, v in rows.items()
        ),
        "",
        f"oci cold / directory cold: {median['oci cold'] / median['dir cold']:.2f}×.",
    ]
    text = "\n".join(lines) + "\n"
    report(RESULTS, "relocpy install from an OCI registry", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
