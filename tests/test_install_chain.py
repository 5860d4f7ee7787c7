"""The resolution chain: installed, each mirror in order, the binary cache, a build; plus
.python-version and the config file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fake_tree import make_fake_archives, write_unchecked_index
from mirror_server import MirrorServer
from relocpy.core.errors import ChecksumMismatchError, RelocpyError
from relocpy.core.progress import QuietReporter
from relocpy.install import chain
from relocpy.install.config import (
    BuildChoice,
    ConfigError,
    load_config,
    mirrors_in_order,
    parse_config,
)
from relocpy.install.pinfile import PinFileError, find_pin, write_pin
from relocpy.install.selection import Machine
from relocpy.install.trees import installed
from relocpy.package.mirror import write_index

HERE = Machine("x86_64", "gnu", (2, 36), "v3")
RELOCPY = [sys.executable, "-m", "relocpy"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELOCPY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RELOCPY_MIRROR", raising=False)
    return tmp_path / "home"


def _mirror(tmp_path: Path, name: str, *versions: str) -> Path:
    mirror = tmp_path / name
    mirror.mkdir()
    for version in versions:
        make_fake_archives(mirror, version)
    write_index(mirror)
    return mirror


def test_each_mirror_in_order_then_installed(home: Path, tmp_path: Path) -> None:
    first = _mirror(tmp_path, "first", "3.98.0")
    second = _mirror(tmp_path, "second", "3.99.0")
    done, plan = chain.provide("3.99", mirrors=[str(first), str(second)], machine=HERE)
    assert plan.source == "mirror" and plan.location == str(second)
    assert any("no build of 3.99" in note and "it has 3.98.0" in note for note in plan.notes)
    assert done.installation.version == "3.99.0"
    again = chain.plan("3.99", mirrors=[str(first)], machine=HERE)
    assert again.source == "installed" and again.installation == done.installation


def test_mirrors_come_from_the_flag_the_environment_then_the_config(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = home / "config.toml"
    home.mkdir(parents=True)
    config.write_text('mirrors = ["/c1", "/shared"]\n[build]\nopt = "noopt"\n')
    monkeypatch.setenv("RELOCPY_MIRROR", "/e1 /shared")
    assert mirrors_in_order(["/f1"], load_config()) == ["/f1", "/e1", "/shared", "/c1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mirrors = 3", "mirrors must be a list"),
        ("mirror = []", "unknown setting 'mirror'"),
        ('[build]\nopt = "fast"', "[build] opt = 'fast': choose noopt, lto, pgo, pgo+lto"),
        ('[build]\ncolour = "red"', "[build] has an unknown key 'colour'"),
        ("mirrors = [", "not valid TOML"),
        ('[build]\nglibc = "1.0"', "unsupported glibc floor"),
    ],
)
def test_a_bad_config_is_named(text: str, message: str) -> None:
    with pytest.raises(RelocpyError, match=message.replace("[", r"\[").replace("+", r"\+")):
        parse_config(text, "/etc/cfg.toml")
    assert isinstance(ConfigError("x"), RelocpyError)


def test_config_picks_the_flavour_built_on_a_miss() -> None:
    config = parse_config('[build]\nopt = "pgo+lto"\ntoolchain = "gcc"\n', "c.toml")
    assert config.build == BuildChoice(opt="pgo+lto", toolchain="gcc", glibc=None)
    spec = chain.build_spec("3.13", config.build)
    assert (spec.opt, spec.toolchain, spec.glibc) == ("pgo+lto", "gcc", None)  # type: ignore[attr-defined]
    assert chain.build_spec("3.13t", BuildChoice()).free_threaded  # type: ignore[attr-defined]


def test_the_binary_cache_comes_after_the_mirrors(home: Path, tmp_path: Path) -> None:
    cache = home / "cache" / "binaries"
    cache.mkdir(parents=True)
    make_fake_archives(cache, "3.99.0", "0123456789abcdef")
    write_index(cache)
    mirror = _mirror(tmp_path, "mirror", "3.98.0")
    plan = chain.plan("3.99", mirrors=[str(mirror)], machine=HERE)
    assert plan.source == "binary cache" and plan.chosen is not None
    lines = "\n".join(plan.describe())
    assert "would install cpython-3.99.0+0123456789abcdef" in lines and "1. " in lines
    with pytest.raises(chain.NotAvailableError, match=r"no mirror and no cached build has '3\.98"):
        chain.plan("3.98.1", mirrors=[str(mirror)], mode="no-build", machine=HERE)


def test_build_only_skips_mirrors_and_says_what_it_will_cost(home: Path, tmp_path: Path) -> None:
    mirror = _mirror(tmp_path, "mirror", "3.99.0")
    plan = chain.plan("3.13", mirrors=[str(mirror)], mode="build-only", machine=HERE)
    assert plan.source == "build"
    assert "mirrors and binary cache: skipped (--build-only)" in plan.notes
    assert plan.estimate is not None and "libraries to build" in plan.estimate
    assert "about" in plan.estimate and "min on" in plan.estimate


def test_a_mirror_that_lies_about_a_checksum_installs_nothing(home: Path, tmp_path: Path) -> None:
    mirror = _mirror(tmp_path, "mirror", "3.99.0")
    index = json.loads((mirror / "index.json").read_text())
    for item in index["archives"]:
        item["sha256"] = "e" * 64
    (mirror / "index.json").write_text(json.dumps(index))
    with pytest.raises(ChecksumMismatchError, match="e" * 64):
        chain.provide("3.99", mirrors=[str(mirror)], machine=HERE)
    assert installed() == []
    assert not [p for p in (home / "data" / "pythons").iterdir() if p.name != ".locks"]


def test_a_hostile_mirror_entry_is_refused(home: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "m"
    mirror.mkdir()
    make_fake_archives(mirror, "3.99.0")
    write_unchecked_index(mirror)
    index = json.loads((mirror / "index.json").read_text())
    index["archives"][0]["name"] = "../elsewhere/" + index["archives"][0]["name"]
    (mirror / "index.json").write_text(json.dumps(index))
    with pytest.raises(chain.NotAvailableError, match="must be a plain file name"):
        chain.plan("3.99", mirrors=[str(mirror)], mode="no-build", machine=HERE)


@pytest.mark.parametrize(
    "index", ["{not json", '{"archives": 5}', "[]", '{"archives": [{"name": 3}]}', None]
)
def test_a_broken_mirror_given_on_the_command_line_does_not_turn_into_a_build(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: str | None
) -> None:
    """A mirror named with --mirror whose index cannot be read (not JSON, not an index, not
    there) is an error that says why, not a miss: no build of several minutes starts."""
    broken = tmp_path / "broken"
    broken.mkdir()
    if index is not None:
        (broken / "index.json").write_text(index)

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a build started")

    monkeypatch.setattr(chain, "_build_into_cache", no_build)
    with pytest.raises(chain.NotAvailableError, match="the mirror given with --mirror") as caught:
        chain.provide("3.99", mirrors=[str(broken)], machine=HERE)
    assert f"{broken}: not used: " in caught.value.message
    assert "--build-only" in (caught.value.hint or "")
    assert installed() == []
    # another mirror that has it is still used
    good = _mirror(tmp_path, "good", "3.99.0")
    done, plan = chain.provide("3.99", mirrors=[str(broken), str(good)], machine=HERE)
    assert plan.location == str(good) and done.installation.version == "3.99.0"
    assert len(plan.unusable) == 1 and plan.unusable[0].startswith(f"mirror {broken}: not used")


def test_a_broken_mirror_of_the_environment_is_named_before_a_build(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mirrors of RELOCPY_MIRROR or the config are tried in passing: one that is down does not
    stop the chain, but the progress says so before the build it leads to."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.json").write_text("{not json")
    monkeypatch.setenv("RELOCPY_MIRROR", str(broken))
    reporter = QuietReporter()  # (records the steps)

    def stop_at_the_build(chosen: chain.Plan, reporter: object) -> str:
        raise RuntimeError("the build would start here")

    monkeypatch.setattr(chain, "_build_into_cache", stop_at_the_build)
    with pytest.raises(RuntimeError, match="the build would start here"):
        chain.provide("3.13", machine=HERE, reporter=reporter)
    assert reporter.steps and reporter.steps[0].startswith(f"mirror {broken}: not used: ")


def test_python_version_files(tmp_path: Path) -> None:
    project = tmp_path / "project" / "src" / "deep"
    project.mkdir(parents=True)
    assert find_pin(project) is None
    pin = write_pin("3.11", tmp_path / "project")
    assert pin.read_text() == "3.11\n"
    found = find_pin(project)
    assert found is not None and (found.request, found.path) == ("3.11", pin)
    pin.write_text("# a comment\n\n  3.13t  # free-threaded\n")
    assert find_pin(project).request == "3.13t"  # type: ignore[union-attr]
    pin.write_text("# only\n\nthree-eleven\n")
    with pytest.raises(PinFileError, match=r"line 3: 'three-eleven' is not a CPython version"):
        find_pin(project)
    pin.write_text("\n# nothing\n")
    with pytest.raises(PinFileError, match="names no version"):
        find_pin(project)


def test_install_and_run_read_python_version(home: Path, tmp_path: Path) -> None:
    mirror = _mirror(tmp_path, "mirror", "3.98.0", "3.99.0")
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "RELOCPY_HOME": str(home)}
    (project / ".python-version").write_text("3.98\n")
    run = subprocess.run(
        [*RELOCPY, "run", "--mirror", str(mirror), "--", "python3.98", "-V"],
        cwd=project, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "fake 3.98.0 -V"
    (project / ".python-version").write_text("3.x\n")
    bad = subprocess.run(
        [*RELOCPY, "install", "--mirror", str(mirror)],
        cwd=project, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert bad.returncode == 2 and ".python-version, line 1: '3.x'" in bad.stderr
    nothing = subprocess.run(
        [*RELOCPY, "install"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert nothing.returncode == 2 and "no .python-version here or above" in nothing.stderr
    pinned = subprocess.run(
        [*RELOCPY, "pin", "3.99"], cwd=project, capture_output=True, text=True, env=env
    )
    assert pinned.returncode == 0 and (project / ".python-version").read_text() == "3.99\n"


def test_dry_run_and_list_available_explain_the_choice(home: Path, tmp_path: Path) -> None:
    mirror = _mirror(tmp_path, "mirror", "3.99.0", "3.99.1")
    env = {**os.environ, "RELOCPY_HOME": str(home)}
    dry = subprocess.run(
        [*RELOCPY, "install", "3.99", "--dry-run", "--mirror", str(mirror)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "would install cpython-3.99.1+20260101" in dry.stdout
    assert installed() == []
    listed = subprocess.run(
        [*RELOCPY, "list", "--available", "--json", "--mirror", str(mirror)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    data = json.loads(listed.stdout)
    assert data["installed"] == []
    assert {a["version"] for a in data["available"]} == {"3.99.0", "3.99.1"}


def test_cache_sizes_and_prune(home: Path, tmp_path: Path) -> None:
    from relocpy.install import cachedirs

    mirror = _mirror(tmp_path, "mirror", "3.99.0", "3.98.0")
    chain.provide("3.99", mirrors=[str(mirror)], machine=HERE, links=False)
    usage = {u.kind: u for u in cachedirs.usage()}
    # a local mirror's archive is unpacked as it is read: no copy in the cache
    assert usage["unpacked"].entries == 1 and usage["archives"].entries == 0
    with MirrorServer(mirror) as server:  # a remote one's download is kept
        chain.provide("3.98", mirrors=[server.url], machine=HERE, links=False)
    usage = {u.kind: u for u in cachedirs.usage()}
    assert usage["unpacked"].entries == 2 and usage["archives"].bytes > 0
    from relocpy.install.trees import uninstall

    uninstall("3.98")
    freed = cachedirs.prune()
    assert freed.count >= 1
    usage = {u.kind: u for u in cachedirs.usage()}
    assert usage["unpacked"].entries == 1 and usage["archives"].entries == 0
    done, plan = chain.provide("3.99", mirrors=[str(mirror)], machine=HERE, links=False)
    assert plan.source == "installed" and done.installation.executable.exists()
    with pytest.raises(RelocpyError, match="unknown cache kind 'everything'"):
        cachedirs.clean("everything")
