"""Fault injection: kill -9, a full disk and a dropped connection at random points, and the
hostile-archive corpus through the real command line.

Usage: .venv/bin/python bench/fault_injection.py [--kills 40] [--disks 12] [--drops 12]
       [--matrix-kills 4] [--repair-kills 8] [--seed 1]
Needs root (tmpfs mounts). Every case checks that the next run either recovers or names the
problem, that no record claims a half-written result, and that nothing prints a traceback.
Results: stdout and bench/results/fault_injection.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import hostile_archives as hostile  # noqa: E402
from fake_tree import make_fake_archives, write_unchecked_index  # noqa: E402
from mirror_server import MirrorServer  # noqa: E402

RELOCPY = [sys.executable, "-m", "relocpy"]


class Tally:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, int]] = {}
        self.problems: list[str] = []

    def add(self, kind: str, outcome: str) -> None:
        row = self.rows.setdefault(kind, {})
        row[outcome] = row.get(outcome, 0) + 1

    def check(self, kind: str, result: subprocess.CompletedProcess[str] | None) -> None:
        if result is not None and "Traceback" in (result.stderr or ""):
            self.add(kind, "traceback")
            self.problems.append(f"{kind}: traceback: {result.stderr[-500:]}")

    def fail(self, kind: str, why: str) -> None:
        self.add(kind, "broken")
        self.problems.append(f"{kind}: {why}")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELOCPY_", "XDG_"))}
    return {**env, "RELOCPY_HOME": str(home), **extra}


def _run(
    args: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RELOCPY, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def _installs_consistent(home: Path) -> str | None:
    """None if every install that has a record is complete (its files match the store's
    manifest); else what is wrong."""
    pythons = home / "data" / "pythons"
    if not pythons.is_dir():
        return None
    for root in pythons.iterdir():
        if root.name.startswith("."):
            continue
        record = root / ".relocpy-install.json"
        if not record.is_file():
            return f"{root.name} exists without a record"
        data = json.loads(record.read_text())
        manifest = home / "cache" / "unpacked" / data["sha256"] / "manifest.json"
        if manifest.is_file():
            expected = set(json.loads(manifest.read_text()))
            have = {
                str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and
                not p.is_symlink() and p.name != ".relocpy-install.json"
            }  # fmt: skip
            if not expected <= have:
                return f"{root.name} lacks {sorted(expected - have)[:3]}"
    return None


def kill_installs(tally: Tally, mirror: Path, cases: int, rng: random.Random) -> None:
    """kill -9 `relocpy install` at a random moment (a slow mirror spreads it over the download,
    the extraction and the linking); the next install must complete."""
    kind = "kill -9 during install"
    with MirrorServer(mirror) as server:
        server.delay_per_chunk = 0.002
        for _ in range(cases):
            home = Path(tempfile.mkdtemp(prefix="fi-home-"))
            env = _env(home)
            proc = subprocess.Popen(
                [*RELOCPY, "install", "3.99", "--mirror", server.url, "--no-links"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(rng.uniform(0.05, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            problem = _installs_consistent(home)
            if problem:
                tally.fail(kind, problem)
                continue
            again = _run(["install", "3.99", "--mirror", server.url, "--no-links"], env)
            tally.check(kind, again)
            if again.returncode != 0:
                tally.fail(kind, f"the next install failed: {again.stderr[-300:]}")
            elif _installs_consistent(home):
                tally.fail(kind, "inconsistent after the next install")
            else:
                tally.add(kind, "recovered")
            shutil.rmtree(home, ignore_errors=True)


def full_disks(tally: Tally, mirror: Path, cases: int, rng: random.Random) -> None:
    """RELOCPY_HOME on a tmpfs too small for the install, by a random margin."""
    kind = "full disk during install"
    for _ in range(cases):
        mount = Path(tempfile.mkdtemp(prefix="fi-disk-"))
        size_kib = rng.randint(300, 9000)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mount)],
                       check=True)  # fmt: skip
        try:
            result = _run(["install", "3.99", "--mirror", str(mirror), "--no-links"], _env(mount))
            tally.check(kind, result)
            problem = _installs_consistent(mount)
            if problem:
                tally.fail(kind, problem)
            elif result.returncode == 0:
                tally.add(kind, "fitted")
            elif "no space left" in result.stderr:
                tally.add(kind, "named the full disk")
            else:
                tally.fail(kind, f"unclear error: {result.stderr[-300:]}")
        finally:
            subprocess.run(["umount", str(mount)], check=False)
            mount.rmdir()


def dropped_connections(tally: Tally, mirror: Path, cases: int, rng: random.Random) -> None:
    """The mirror drops the connection mid-file; the next run resumes the download."""
    kind = "connection dropped mid-file"
    size = max(p.stat().st_size for p in mirror.glob("*.tar.zst"))
    with MirrorServer(mirror) as server:
        for _ in range(cases):
            home = Path(tempfile.mkdtemp(prefix="fi-drop-"))
            env = _env(home)
            server.cut_after = rng.randint(1, size - 1)
            first = _run(["install", "3.99", "--mirror", server.url, "--no-links"], env)
            tally.check(kind, first)
            server.cut_after = None
            if first.returncode == 0:
                tally.fail(kind, "a cut download installed")
                continue
            if "resume" not in first.stderr:
                tally.fail(kind, f"unclear error: {first.stderr[-300:]}")
                continue
            again = _run(["install", "3.99", "--mirror", server.url, "--no-links"], env)
            tally.check(kind, again)
            ok = again.returncode == 0 and not _installs_consistent(home)
            if ok:
                tally.add(kind, "resumed")
            else:
                tally.fail(kind, again.stderr[-300:])
            shutil.rmtree(home, ignore_errors=True)


def kill_repairs(tally: Tally, prefix: Path, cases: int, rng: random.Random) -> None:
    """kill -9 `relocpy repair` at a random moment: the output is whole or absent."""
    kind = "kill -9 during repair"
    for _ in range(cases):
        work = Path(tempfile.mkdtemp(prefix="fi-repair-"))
        out = work / "out"
        proc = subprocess.Popen([*RELOCPY, "repair", str(prefix), "--out", str(out)],
                                env=_env(work / "home"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(rng.uniform(0.2, 20))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if out.exists() and not (out / "bin").is_dir():
            tally.fail(kind, "a half-made output under the final name")
            continue
        if out.exists():
            tally.add(kind, "finished before the kill")
            shutil.rmtree(work, ignore_errors=True)
            continue
        again = _run(["repair", str(prefix), "--out", str(out)], _env(work / "home"))
        tally.check(kind, again)
        if again.returncode == 0 and (out / "bin").is_dir():
            tally.add(kind, "recovered")
        else:
            tally.fail(kind, again.stderr[-300:])
        shutil.rmtree(work, ignore_errors=True)


def kill_matrix_builds(tally: Tally, cases: int, rng: random.Random) -> None:
    """kill -9 `relocpy matrix build` of one spec during its library builds: no spec record
    and no library under its final name without its manifest; the last run completes."""
    kind = "kill -9 during matrix build"
    work = Path(tempfile.mkdtemp(prefix="fi-matrix-"))
    matrix = work / "m.toml"
    matrix.write_text('[matrix]\nversion = ["3.13"]\n')
    env = _env(work / "home")
    for _ in range(cases):
        proc = subprocess.Popen([*RELOCPY, "matrix", "build", str(matrix), "--cache",
                                 str(work / "cache")], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(rng.uniform(5, 120))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        libs = work / "home" / "cache" / "libs"
        broken = [p.name for p in libs.glob("*-*") if p.is_dir() and not p.name.startswith(".")
                  and not (p / "library.json").is_file()]  # fmt: skip
        records = list((work / "cache" / "specs").glob("*.json"))
        plan = _run(["matrix", "plan", str(matrix), "--cache", str(work / "cache"), "--json"], env)
        tally.check(kind, plan)
        if broken or records:
            tally.fail(kind, f"half-made: {broken} {records}")
        elif json.loads(plan.stdout)[0]["cache"] != "missing":
            tally.fail(kind, "plan claims the spec")
        else:
            tally.add(kind, "nothing claimed")
    final = _run(["matrix", "build", str(matrix), "--cache", str(work / "cache")], env, 3600)
    tally.check(kind, final)
    tally.add(kind, "then built") if final.returncode == 0 else tally.fail(
        kind, final.stderr[-300:]
    )
    shutil.rmtree(work, ignore_errors=True)


def hostile_corpus(tally: Tally) -> None:
    """Every corpus archive through `relocpy install` (a hostile mirror's own index) and
    `relocpy verify`: nothing outside its destination may change."""
    kind = "hostile archive (install, verify)"
    for number, case in enumerate(hostile.load_corpus()):
        work = Path(tempfile.mkdtemp(prefix="fi-hostile-"))
        box = hostile.make_box(work)
        mirror = box / "mirror"
        mirror.mkdir()
        name = "cpython-3.99.0+20260101-x86_64-unknown-linux-gnu-install_only.tar.gz"
        fmt = hostile.case_format(case)
        try:
            hostile.write_case(case["members"], mirror / name, fmt)  # type: ignore[arg-type]
        except (ValueError, tarfile.TarError):
            continue
        write_unchecked_index(mirror)
        before = hostile.snapshot(box, box / "home")
        for args in (["install", "3.99", "--mirror", str(mirror)], ["verify", str(mirror / name)]):
            result = _run(args, _env(box / "home"))
            tally.check(kind, result)
        after = hostile.snapshot(box, box / "home")
        escaped = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        escaped -= {k for k in escaped if k.startswith("mirror/")}  # the index rewrite is ours
        leaked = [str(p) for p in Path("/tmp").glob("*PWNED*")] + [str(p) for p in
                  Path("/").glob("*PWNED*")]  # fmt: skip
        if escaped or leaked:
            tally.add(kind, "ESCAPE")
            tally.problems.append(f"corpus case {number}: {sorted(escaped)} {leaked}")
        else:
            tally.add(kind, "contained")
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--disks", type=int, default=12)
    parser.add_argument("--drops", type=int, default=12)
    parser.add_argument("--repair-kills", type=int, default=8)
    parser.add_argument("--matrix-kills", type=int, default=4)
    parser.add_argument(
        "--repair-prefix", type=Path, default=Path.home() / ".pyenv/versions/3.12.1"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tally = Tally()
    work = Path(tempfile.mkdtemp(prefix="fi-mirror-"))
    make_fake_archives(work, "3.99.0", files=3000, payload=4_000_000)
    from relocpy.package.mirror import write_index

    write_index(work)
    start = time.monotonic()
    hostile_corpus(tally)
    kill_installs(tally, work, args.kills, rng)
    full_disks(tally, work, args.disks, rng)
    dropped_connections(tally, work, args.drops, rng)
    if args.repair_kills:
        kill_repairs(tally, args.repair_prefix, args.repair_kills, rng)
    if args.matrix_kills:
        kill_matrix_builds(tally, args.matrix_kills, rng)
    seconds = time.monotonic() - start
    lines = ["| fault | cases | outcomes |", "| --- | --- | --- |"]
    total = escapes = tracebacks = 0
    for kind, row in tally.rows.items():
        count = sum(v for k, v in row.items() if k != "traceback")
        total += count
        escapes += row.get("ESCAPE", 0)
        tracebacks += row.get("traceback", 0)
        lines.append(f"| {kind} | {count} | {', '.join(f'{k} {v}' for k, v in row.items())} |")
    summary = (
        f"{total} cases in {seconds / 60:.1f} min: {escapes} escapes, {tracebacks} tracebacks,"
        f" {len(tally.problems) - escapes - tracebacks} other problems"
    )
    text = "\n".join(["### fault injection", "", *lines, "", summary, "", *tally.problems])
    print(text)
    (HERE / "results" / "fault_injection.md").write_text(text + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not tally.problems else 1


if __name__ == "__main__":
    sys.exit(main())
