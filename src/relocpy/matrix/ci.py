"""`relocpy ci generate`: a build matrix as a pipeline for an existing CI engine.

As `spack ci generate` does for GitLab: one job per spec that the shared binary cache lacks
(specs it holds are left out), one job per distinct set of third-party libraries that those
specs share (the engine's own cache carries the library cache from it to the spec jobs), and a
last job that rewrites the shared cache's mirror index. Every spec job runs
`relocpy matrix build MATRIX --only HASH --cache URL`, so a job needs nothing from another but
the libraries (an optimisation: without them it builds them itself) and the cache URL.

Pure: `pipeline_jobs` decides the jobs from a plan; `github_workflow` and `gitlab_pipeline`
shape them for each engine; `render` writes YAML.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from typing import Any

import yaml

from relocpy import __version__
from relocpy.matrix.run import PlannedSpec

ENGINES = ("github", "gitlab")
# Inside the job's workspace, so that both engines' caches can carry it.
JOB_HOME = ".relocpy"
LIBRARY_CACHE = f"{JOB_HOME}/cache/libs"
# Jobs run in this image (GitHub: as the job's container), whose package names the preflight
# knows; relocpy goes into a virtual environment (Debian's Python is externally managed).
IMAGE = "debian:12"
VENV = "/opt/relocpy"
DEFAULT_SETUP = f"{VENV}/bin/pip install -q relocpy=={__version__}"


@dataclass(frozen=True)
class Job:
    name: str
    title: str
    command: str
    needs: tuple[str, ...] = ()
    cache_key: str | None = None  # the library cache this job fills (libs) or reads (specs)
    fills_cache: bool = False


def library_group(planned: PlannedSpec) -> str | None:
    """A short key for the set of libraries a spec links (None: it builds none)."""
    libraries = planned.inputs.get("libraries")
    if not libraries:
        return None
    identity = json.dumps([libraries, planned.inputs.get("toolchain")], sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def pipeline_jobs(planned: list[PlannedSpec], matrix: str, cache_url: str) -> list[Job]:
    """Library jobs, spec jobs (for what the cache lacks) and the publish job, in order."""
    todo = [p for p in planned if p.where != "registry"]
    quoted = shlex.quote(matrix)
    cache = shlex.quote(cache_url)
    jobs: list[Job] = []
    groups: dict[str, PlannedSpec] = {}
    for item in todo:
        group = library_group(item)
        if group is not None and group not in groups:
            groups[group] = item
            jobs.append(
                Job(
                    name=f"libs-{group}",
                    title=f"libraries for {item.spec.label}",
                    command=f"relocpy matrix build {quoted} --only {item.digest[:16]}"
                    " --libraries-only",
                    cache_key=f"relocpy-libs-{group}",
                    fills_cache=True,
                )
            )
    spec_jobs = []
    for item in todo:
        group = library_group(item)
        spec_jobs.append(
            Job(
                name=f"spec-{item.digest[:16]}",
                title=item.spec.label,
                command=f"relocpy matrix build {quoted} --only {item.digest[:16]}"
                f" --cache {cache} --verify",
                needs=(f"libs-{group}",) if group else (),
                cache_key=f"relocpy-libs-{group}" if group else None,
            )
        )
    jobs += spec_jobs
    jobs.append(
        Job(
            name="publish",
            title=f"index {cache_url}",
            command=f"relocpy mirror index {cache}",
            needs=tuple(j.name for j in spec_jobs),
        )
    )
    return jobs


def runner_packages(planned: list[PlannedSpec]) -> list[str]:
    """The Debian packages a fresh runner needs for these specs (every library recipe's tools,
    whatever this machine's library cache holds), plus what installing relocpy needs."""
    from relocpy.build.libraries import libraries_for
    from relocpy.core.targets import parse_target
    from relocpy.pipeline import build_needs
    from relocpy.sources.catalog import resolve_cpython

    packages = {"ca-certificates", "python3-venv"}
    for item in planned:
        spec = item.spec
        pin = resolve_cpython(spec.version)
        needs = build_needs(
            pin, spec.toolchain, spec.glibc, spec.libs, spec.readline, spec.march, spec.cflags,
            bolt=spec.bolt, opt=spec.opt, target=parse_target(spec.target),
        )  # fmt: skip
        if spec.libs == "source":
            needs += [r for recipe in libraries_for(pin.version_tuple, spec.readline)
                      for r in recipe.requirements()]  # fmt: skip
        packages |= {r.package for r in needs}
    return sorted(packages)


def setup_commands(packages: list[str], install: str) -> list[str]:
    """Shell commands that prepare a fresh `IMAGE` container to run relocpy."""
    return [
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
        " --no-install-recommends " + " ".join(packages),
        f"python3 -m venv {VENV}",
        install,
    ]


def _credentials(engine: str) -> dict[str, str]:
    if engine == "github":
        return {
            "RELOCPY_OCI_USERNAME": "${{ secrets.RELOCPY_OCI_USERNAME }}",
            "RELOCPY_OCI_PASSWORD": "${{ secrets.RELOCPY_OCI_PASSWORD }}",
        }
    return {}  # GitLab: set RELOCPY_OCI_USERNAME/PASSWORD as masked CI/CD variables


def github_workflow(
    jobs: list[Job],
    matrix: str,
    packages: list[str],
    setup: str = DEFAULT_SETUP,
    runner: str = "ubuntu-latest",
) -> dict[str, Any]:
    """A GitHub Actions workflow, each job in a `IMAGE` container; the library cache travels
    by actions/cache."""
    out: dict[str, Any] = {}
    for job in jobs:
        steps: list[dict[str, Any]] = [
            {"uses": "actions/checkout@v4"},
            {"name": "install relocpy", "run": "\n".join(setup_commands(packages, setup))},
            {"name": "relocpy on PATH", "run": f'echo "{VENV}/bin" >> "$GITHUB_PATH"'},
        ]
        if job.cache_key:
            steps.append(
                {
                    "name": "library cache",
                    "uses": "actions/cache@v4" if job.fills_cache else "actions/cache/restore@v4",
                    "with": {"path": LIBRARY_CACHE, "key": job.cache_key},
                }
            )
        steps.append({"name": job.title, "run": job.command})
        body: dict[str, Any] = {"name": job.title, "runs-on": runner, "container": IMAGE}
        if job.needs:
            body["needs"] = list(job.needs)
        if job.name == "publish":
            body["if"] = "${{ !cancelled() }}"  # publish what did build
        body["steps"] = steps
        out[job.name] = body
    return {
        "name": f"relocpy matrix {matrix}",
        "on": {"workflow_dispatch": {}, "push": {"paths": [matrix]}},
        "env": {
            "RELOCPY_HOME": "${{ github.workspace }}/" + JOB_HOME,
            **_credentials("github"),
        },
        "jobs": out,
    }


def gitlab_pipeline(
    jobs: list[Job], matrix: str, packages: list[str], setup: str = DEFAULT_SETUP
) -> dict[str, Any]:
    """A GitLab CI pipeline in three stages; the library cache travels by GitLab's cache."""
    out: dict[str, Any] = {
        "stages": ["libraries", "build", "publish"],
        "variables": {"RELOCPY_HOME": "$CI_PROJECT_DIR/" + JOB_HOME},
        "default": {
            "image": IMAGE,
            "before_script": [*setup_commands(packages, setup), f'export PATH="{VENV}/bin:$PATH"'],
        },
    }
    for job in jobs:
        stage = "publish" if job.name == "publish" else "libraries" if job.fills_cache else "build"
        body: dict[str, Any] = {"stage": stage, "script": [job.command]}
        if job.needs:
            body["needs"] = list(job.needs)
        if job.cache_key:
            body["cache"] = {
                "key": job.cache_key,
                "paths": [LIBRARY_CACHE],
                "policy": "push" if job.fills_cache else "pull",
            }
        if job.name == "publish":
            body["when"] = "always"
        out[job.name] = body
    return out


class _Dumper(yaml.SafeDumper):
    """Multi-line commands as literal blocks, as a person would write them."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def render(document: dict[str, Any], engine: str, matrix: str) -> str:
    head = (
        f"# Generated by relocpy {__version__} `ci generate {matrix} --{engine}`: one job per"
        " spec the shared cache lacks.\n"
    )
    return head + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000)


def generate(
    planned: list[PlannedSpec],
    matrix: str,
    cache_url: str,
    engine: str,
    setup: str = DEFAULT_SETUP,
) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown CI engine {engine!r}; choose one of {', '.join(ENGINES)}")
    jobs = pipeline_jobs(planned, matrix, cache_url)
    packages = runner_packages([p for p in planned if p.where != "registry"])
    document = (
        github_workflow(jobs, matrix, packages, setup)
        if engine == "github"
        else gitlab_pipeline(jobs, matrix, packages, setup)
    )
    return render(document, engine, matrix)
