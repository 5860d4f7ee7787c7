"""CI on a fresh machine: the README's first command inside a new Debian 12 minbase root.

The untouched debootstrap output is cached (`RELOCPY_ROOTS`); each run works in a new overlay
over it, so every package, venv, download and build after debootstrap is made afresh. Then the
preflight must name a package that was taken away. What the build produced (its archives, and
the library and source caches) is moved to `--out`, for the test session on this host.

Any failure exits non-zero and says which step failed and why.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from relocpy.core.progress import console_reporter
from relocpy.verify.distro import ensure_root, overlay, remove_scratch, roots_dir

REPO = Path(__file__).resolve().parent.parent
INSIDE = "/root/relocpy"  # where the checkout goes in the root
SUITE = "bookworm"
# SOURCE_DATE_EPOCH of the build: 2026-01-01, the tag the test session's archive has always had
EPOCH = "1767225600"
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
}
# What the preflight check removes, and what it must then say.
REMOVED = "libltdl-dev"
EXPECTED = ("LT_SYS_SYMBOL_USCORE", "apt-get install -y libltdl-dev")


class StepFailed(Exception):
    pass


def machine_cas() -> list[Path]:
    """CA certificates this machine's administrator added (its TLS egress goes through them):
    /usr/local/share/ca-certificates, and certificates in /etc/ssl/certs no package owns."""
    found = sorted(p for p in Path("/usr/local/share/ca-certificates").rglob("*.crt"))
    for pem in sorted(Path("/etc/ssl/certs").glob("*.pem")):
        if pem.is_symlink() or not pem.is_file():
            continue
        owned = subprocess.run(["dpkg", "-S", str(pem)], capture_output=True).returncode == 0
        if not owned:
            found.append(pem)
    return found


def machine_config(merged: Path) -> list[str]:
    """What a fresh machine of this kind has before anything is installed: its apt sources and
    apt settings, its administrator's CA certificates, and a resolver. (No package, no pip
    configuration, no environment.) Returns the commands that apply it inside the root."""
    shutil.copyfile("/etc/resolv.conf", merged / "etc/resolv.conf")
    store = merged / "usr/local/share/ca-certificates"
    store.mkdir(parents=True, exist_ok=True)
    for ca in machine_cas():
        shutil.copyfile(ca, store / f"machine-{ca.stem}.crt")
    apt = Path("/etc/apt")
    for sub in ("sources.list.d", "apt.conf.d"):
        for path in sorted((apt / sub).glob("*")):
            if path.is_file() and path.suffix in (".sources", ".list", ""):
                shutil.copyfile(path, merged / "etc/apt" / sub / path.name)
    if (apt / "sources.list").is_file():
        shutil.copyfile(apt / "sources.list", merged / "etc/apt/sources.list")
    else:  # deb822 sources only: debootstrap's one-line file would list the archive twice
        (merged / "etc/apt/sources.list").write_text("")
    return ["update-ca-certificates"]


@contextlib.contextmanager
def pseudo_terminals(merged: Path) -> Iterator[None]:
    """A devpts of its own in the root (apt and pty-based checks want /dev/pts)."""
    point = merged / "dev/pts"
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts", str(point)],
        check=True,
    )
    try:
        yield
    finally:
        subprocess.run(["umount", str(point)], check=False)


def copy_checkout(dest: Path) -> int:
    """The files of this checkout git knows (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    count = 0
    for raw in filter(None, listed):
        rel = os.fsdecode(raw)
        source = REPO / rel
        if not source.is_file():  # deleted in the work tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        count += 1
    return count


def run_inside(
    merged: Path, script: str, log: Path, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    """Run `script` (bash) chrooted into `merged`, streaming its output to stdout and `log`;
    return its exit status and the lines that say what went wrong (relocpy's `error:`,
    `hint:` and listed items, apt's `E:`)."""
    start = time.monotonic()
    said: list[str] = []
    with log.open("a", encoding="utf-8", errors="replace") as handle:
        handle.write(f"\n$ {script}\n")
        process = subprocess.Popen(
            ["chroot", str(merged), "/bin/bash", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**ENV, **(env or {})},
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        for line in process.stdout:
            handle.write(line)
            elapsed = time.monotonic() - start
            print(f"  [{elapsed / 60:4.1f} min] {line.rstrip()[:200]}", flush=True)
            if line.startswith(("error:", "hint:", "  - ", "E: ")):
                said.append(line.rstrip())
        return process.wait(), said


def check_preflight(merged: Path, log: Path) -> dict[str, object]:
    """Take REMOVED away, then `relocpy build` must refuse at once and name it."""
    code, _ = run_inside(merged, f"apt-get remove -y -qq {REMOVED}", log)
    if code != 0:
        raise StepFailed(f"apt-get remove {REMOVED} failed (exit {code})")
    out = merged / "tmp/preflight.out"
    start = time.monotonic()
    # A new RELOCPY_HOME: with the library cache warm, libffi is not rebuilt and needs nothing.
    code, _ = run_inside(
        merged,
        f"cd {INSIDE} && RELOCPY_HOME=/tmp/preflight-home .venv/bin/relocpy build 3.13"
        " --out /tmp/preflight-dist > /tmp/preflight.out 2>&1",
        log,
    )
    seconds = time.monotonic() - start
    said = out.read_text(errors="replace")
    print(said, flush=True)
    problems = []
    if code == 0:
        problems.append("the build went ahead")
    problems += [f"the message does not say {text!r}" for text in EXPECTED if text not in said]
    if (merged / "tmp/preflight-dist").exists():
        problems.append("--out was created")
    if list((merged / "tmp/preflight-home").glob("cache/libs/*")):
        problems.append("something was built")
    if problems:
        raise StepFailed(f"preflight without {REMOVED}: " + "; ".join(problems))
    return {"exit_code": code, "seconds": round(seconds, 1), "message": said.strip()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the products go")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: the fresh-root CI step needs root (debootstrap, mount, chroot)")
        return 1
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "fresh-root.log"
    reporter = console_reporter()
    record: dict[str, object] = {"suite": SUITE, "roots": str(roots_dir())}
    start = time.monotonic()
    root = ensure_root(SUITE, reporter)
    record["debootstrap_seconds"] = round(time.monotonic() - start, 1)
    scratch = Path(tempfile.mkdtemp(prefix="relocpy-ci-fresh-", dir="/var/tmp"))
    failed = None
    try:
        with overlay(root, scratch / "overlay") as merged, pseudo_terminals(merged):
            for command in machine_config(merged):
                code, said = run_inside(merged, command, log)
                if code != 0:
                    raise StepFailed(f"{command} failed in the fresh root: {said}")
            files = copy_checkout(merged / INSIDE.lstrip("/"))
            print(f"fresh {SUITE} root at {merged}; {files} files of the checkout in {INSIDE}")
            steps = (
                ("setup", f"cd {INSIDE} && scripts/setup"),
                ("build", f"cd {INSIDE} && scripts/build 3.13"),
            )
            for name, script in steps:
                print(f"== {name}: {script}", flush=True)
                began = time.monotonic()
                code, said = run_inside(merged, script, log, {"SOURCE_DATE_EPOCH": EPOCH})
                record[f"{name}_seconds"] = round(time.monotonic() - began, 1)
                if code != 0:
                    why = "\n".join(said[-30:]) or "(no error line; see the log)"
                    raise StepFailed(
                        f"`{script}` failed with exit {code} in the fresh root:\n{why}"
                    )
            print("== preflight: remove libltdl-dev, build again", flush=True)
            record["preflight"] = check_preflight(merged, log)
    except StepFailed as exc:
        failed = str(exc)
    finally:
        upper = scratch / "overlay" / "upper"
        moves = {
            "dist": upper / INSIDE.lstrip("/") / "dist",
            "cache": upper / "root/.cache/relocpy",
        }
        for name, source in moves.items():
            if source.is_dir():
                shutil.rmtree(out / name, ignore_errors=True)
                shutil.move(str(source), out / name)
        remove_scratch(scratch, reporter)
    record["total_seconds"] = round(time.monotonic() - start, 1)
    record["ok"] = failed is None
    (out / "fresh-root.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "preflight"}, indent=2))
    if failed:
        print(f"error: {failed}\nThe whole log: {log}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
