"""`relocpy run` of an installed interpreter, importing nothing but os, sys, re and json.

A tool that runs `relocpy run 3.13 -- python ...` for every command must pay little more than
the interpreter's own start. Anything this path does not handle (no install matches yet, an
option it does not know, a broken record) returns None, and the full command line takes over
and explains. Its request matching is `relocpy.install.selection.matches`, kept equal by a test.
"""

from __future__ import annotations

import json
import os
import re
import sys

_REQUEST = re.compile(r"^(?:cpython[@-])?(\d+(?:\.\d+){0,2})((?:a|b|rc)\d+)?(t|\+freethreaded)?$")
_VERSION = re.compile(r"^(\d+(?:\.\d+)*)((?:a|b|rc)\d+)?$")


def _pythons_dir() -> str:
    home = os.environ.get("RELOCPY_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), "data", "pythons")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(data, "relocpy", "pythons")


def pinned_request(start: str) -> str | None:
    """The first version line of the nearest .python-version, or None."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, ".python-version")
        if os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8") as handle:
                    for line in handle:
                        text = line.split("#", 1)[0].strip()
                        if text:
                            return text
            except (OSError, UnicodeDecodeError):
                return None
            return None
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def matches(version: str, variant: str, request: str) -> bool | None:
    """Whether an installed `version` satisfies `request`; None if `request` is malformed."""
    wanted = _REQUEST.match(request.strip())
    have = _VERSION.match(version)
    if not wanted or not have:
        return None
    numbers = tuple(int(p) for p in wanted.group(1).split("."))
    installed = tuple(int(p) for p in have.group(1).split("."))
    if installed[: len(numbers)] != numbers or (have.group(2) or "") != (wanted.group(2) or ""):
        return False
    return (variant == "freethreaded") == bool(wanted.group(3))


def _sort_key(record: dict[str, str]) -> tuple[tuple[int, ...], int, str]:
    have = _VERSION.match(record["version"])
    assert have
    numbers = tuple(int(p) for p in have.group(1).split("."))
    pre = have.group(2) or ""
    rank = {"a": 0, "b": 1, "r": 2}.get(pre[:1], 3)
    return numbers, rank, record["build"]


def find_installed(request: str) -> str | None:
    """The root of the newest installed interpreter matching `request`, or None."""
    pythons = _pythons_dir()
    try:
        names = os.listdir(pythons)
    except OSError:
        return None
    found = []
    for name in names:
        if name.startswith("."):
            continue
        try:
            with open(os.path.join(pythons, name, ".relocpy-install.json"), encoding="utf-8") as f:
                record = json.load(f)
            ok = matches(str(record["version"]), str(record["variant"]), request)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if ok is None:
            return None
        if ok:
            found.append((_sort_key(record), os.path.join(pythons, name)))
    return max(found)[1] if found else None


def run(argv: list[str]) -> int | None:
    """Exec the command of `relocpy run ARGV` if an installed interpreter matches; else None."""
    if "--" not in argv:
        return None
    cut = argv.index("--")
    head, cmd = argv[:cut], argv[cut + 1 :]
    if len(head) > 1 or (head and head[0].startswith("-")) or not cmd:
        return None  # options (--mirror, --no-build) and errors: the full command line
    request = head[0] if head else pinned_request(os.getcwd())
    if request is None:
        return None
    root = find_installed(request)
    if root is None:
        return None
    bin_dir = os.path.join(root, "bin")
    env = dict(os.environ)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    try:
        os.execvpe(cmd[0], cmd, env)
    except FileNotFoundError:
        print(f"error: {cmd[0]}: command not found (PATH starts with {bin_dir})", file=sys.stderr)
        return 127
    except OSError as exc:
        print(f"error: cannot run {cmd[0]}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached


def main() -> int:
    """The `relocpy` console script: the fast path for `run`, else the full command line."""
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        code = run(argv[1:])
        if code is not None:
            return code
    from relocpy.cli import main as full

    return full(argv)
