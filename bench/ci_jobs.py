"""A matrix's CI pipeline run here as runners would run it, against a real registry on loopback.

Usage: .venv/bin/python bench/ci_jobs.py MATRIX --work DIR [--parallel 2] [--bin DIR]
           [--install 3.13] [--installs 5] [--port N] [--resume]

1. Starts Debian's docker-registry on 127.0.0.1 (basic-auth realm, storage under DIR).
2. `relocpy ci generate MATRIX --github --cache oci://127.0.0.1:PORT/relocpy` (and --gitlab),
   both checked against the engines' JSON schemas by check-jsonschema.
3. Runs the GitHub workflow's jobs in the order of their `needs`, each as its own process in its
   own workspace with its own RELOCPY_HOME (`.relocpy` in the workspace, as the workflow sets
   it), sharing nothing but the registry's URL. A job runs its own step (the runner set-up,
   apt-get and pip, is what `scripts/setup` did to this machine). `actions/cache` is played by
   copying the library job's `.relocpy/cache/libs` into the workspaces of the spec jobs that
   restore its key. Spec jobs run `--parallel` at a time.
4. The publish job; then `relocpy install --mirror oci://… VERSION` into fresh homes, cold
   (`--installs` times, each from an empty home) and warm (the same home again).
The relocpy that runs is the one in `--bin` (default: this interpreter's), so a long run can
use a snapshot of the code. `--resume --port N` starts the registry again on its stored
data: the regenerated pipeline then holds only the jobs for specs it still lacks.
Results: stdout and bench/results/ci_jobs.md (appended).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from _results import report  # noqa: E402

from oci_registry import Registry  # noqa: E402

RESULTS = HERE / "results" / "ci_jobs.md"
LIBRARY_CACHE = ".relocpy/cache/libs"


def clean_env(bindir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PIP_", "RELOCPY_", "SSL_CERT", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{bindir}:{env['PATH']}"
    return env


def generate(args: argparse.Namespace, url: str, env: dict[str, str]) -> dict[str, dict]:
    """Both pipelines, validated; the GitHub one's jobs."""
    documents = {}
    for engine, schema in (("github", "github-workflows"), ("gitlab", "gitlab-ci")):
        out = args.work / f"pipeline-{engine}.yml"
        cmd = ["relocpy", "ci", "generate", str(args.matrix), f"--{engine}", "--cache", url]
        done = subprocess.run([*cmd, "-o", str(out)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"ci generate --{engine} failed:\n{done.stdout}{done.stderr}")
        print(done.stdout.strip(), flush=True)
        checker = Path(sys.executable).parent / "check-jsonschema"
        check = subprocess.run(
            [str(checker), "--builtin-schema", f"vendor.{schema}", str(out)],
            capture_output=True,
            text=True,
        )
        print(f"{engine}: {check.stdout.strip() or check.stderr.strip()}", flush=True)
        if check.returncode != 0:
            sys.exit(f"the generated {engine} pipeline does not validate")
        documents[engine] = yaml.safe_load(out.read_text())
    return documents["github"]["jobs"]


def run_job(
    name: str, job: dict, args: argparse.Namespace, env: dict[str, str], registry_env: dict
) -> dict[str, object]:
    workspace = args.work / "jobs" / name
    shutil.rmtree(workspace, ignore_errors=True)
    (workspace / args.matrix.parent).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.matrix, workspace / args.matrix)  # actions/checkout
    cache_step = next((s for s in job["steps"] if "actions/cache" in s.get("uses", "")), None)
    saved = args.work / "actions-cache" / cache_step["with"]["key"] if cache_step else None
    restores = cache_step is not None and cache_step["uses"].startswith("actions/cache/restore")
    if restores and saved is not None and saved.is_dir():
        (workspace / LIBRARY_CACHE).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(saved), str(workspace / LIBRARY_CACHE)], check=True)
    command = job["steps"][-1]["run"]
    job_env = {**env, **registry_env, "RELOCPY_HOME": str(workspace / ".relocpy")}
    start = time.monotonic()
    with (workspace / "job.log").open("w") as log:
        log.write(f"$ {command}\n")
        log.flush()
        status = subprocess.run(
            command, shell=True, cwd=workspace, env=job_env, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    seconds = time.monotonic() - start
    if cache_step and cache_step["uses"] == "actions/cache@v4" and status == 0 and saved:
        shutil.rmtree(saved, ignore_errors=True)
        saved.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(workspace / LIBRARY_CACHE), str(saved)], check=True)
    print(f"{name}: exit {status} in {seconds / 60:.1f} min ({job['name']})", flush=True)
    return {"job": name, "title": job["name"], "status": status, "seconds": seconds}


def run_pipeline(
    jobs: dict[str, dict], args: argparse.Namespace, env: dict[str, str], registry_env: dict
) -> list[dict[str, object]]:
    """Jobs in waves: every job whose `needs` have finished, `--parallel` at a time."""
    done: dict[str, dict[str, object]] = {}
    while len(done) < len(jobs):
        ready = [
            n
            for n, j in jobs.items()
            if n not in done and all(need in done for need in j.get("needs", []))
        ]
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            futures = {n: pool.submit(run_job, n, jobs[n], args, env, registry_env) for n in ready}
            for n, future in futures.items():
                done[n] = future.result()
    return list(done.values())


def installs(args: argparse.Namespace, url: str, env: dict[str, str], registry_env: dict):
    cold, warm = [], []
    for number in range(args.installs):
        home = args.work / "install" / f"home-{number}"
        shutil.rmtree(home, ignore_errors=True)
        cmd = ["relocpy", "install", args.install, "--mirror", url, "--no-build"]
        job_env = {**env, **registry_env, "RELOCPY_HOME": str(home)}
        for times in (cold, warm):  # the second: the same home, the tree already there
            start = time.monotonic()
            done = subprocess.run(cmd, env=job_env, capture_output=True, text=True)
            times.append(time.monotonic() - start)
            if done.returncode != 0:
                sys.exit(f"install failed:\n{done.stdout}{done.stderr}")
        python = done.stdout.split()[0]  # install prints the interpreter it installed
        probe = subprocess.run(
            [python, "-c", "import ssl, sqlite3, sys; print(sys.version.split()[0])"],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        print(f"install {number}: {python} -> {probe.stdout.strip()}", flush=True)
    return cold, warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--install", default="3.13")
    parser.add_argument("--installs", type=int, default=5)
    parser.add_argument("--port", type=int, help="the registry's port (default: a free one)")
    parser.add_argument("--resume", action="store_true", help="keep the jobs already run")
    args = parser.parse_args()
    if args.matrix.is_absolute():
        sys.exit("give the matrix as a path relative to the repository, as a workflow names it")
    args.work = args.work.absolute()
    args.work.mkdir(parents=True, exist_ok=True)
    env = clean_env(args.bin.absolute())
    start = time.monotonic()
    record = args.work / "results.json"
    earlier = json.loads(record.read_text()) if args.resume and record.is_file() else []
    registry = Registry(args.work / "registry")
    if args.port:
        registry.port, registry.host = args.port, f"127.0.0.1:{args.port}"
    print(f"registry on {registry.host}", flush=True)
    with registry:
        url = registry.url()
        jobs = generate(args, url, {**env, **registry.env()})
        results = [*earlier, *run_pipeline(jobs, args, env, registry.env())]
        record.write_text(json.dumps(results, indent=1))
        pipeline_minutes = (time.monotonic() - start) / 60
        again = subprocess.run(
            ["relocpy", "matrix", "plan", str(args.matrix), "--cache", url],
            env={**env, **registry.env(), "RELOCPY_HOME": str(args.work / "plan-home")},
            capture_output=True,
            text=True,
        )
        cold, warm = installs(args, url, env, registry.env())
    lines = [
        f"\n## `{args.matrix}` as a GitHub pipeline, {time.strftime('%Y-%m-%d')}\n",
        f"`{' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`: "
        f"{len(results)} jobs in {pipeline_minutes:.0f} min, {args.parallel} at a time, on "
        f"{os.cpu_count()} cores",
        "",
        "| job | what | exit | minutes |",
        "| --- | --- | --- | --- |",
        *(
            f"| {r['job']} | {r['title']} | {r['status']} | {float(r['seconds']) / 60:.1f} |"
            for r in results
        ),
        "",
        "`relocpy matrix plan` against the registry afterwards:",
        "",
        "```",
        again.stdout.strip() or again.stderr.strip(),
        "```",
        "",
        f"`relocpy install {args.install} --mirror oci://127.0.0.1:PORT/relocpy`, "
        f"{args.installs} fresh homes: cold median {statistics.median(cold):.2f} s "
        f"(min {min(cold):.2f}, max {max(cold):.2f}); warm (already installed) median "
        f"{statistics.median(warm):.2f} s",
    ]
    text = "\n".join(lines) + "\n"
    report(RESULTS, "A matrix's CI jobs run as independent processes", text)
    return 0 if all(r["status"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
