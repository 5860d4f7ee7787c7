"""CPython version requests (`3.13`, `3.15.0a2`, `3.13t`) and release ordering.

Pure functions shared by the catalog (which release to build), mirrors and installs (which
build to pick); a pre-release sorts before its final release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relocpy.core.errors import UnknownVersionError

_REQUEST = re.compile(
    r"^(?:cpython[@-])?(?P<version>\d+(?:\.\d+){0,2})(?P<pre>(?:a|b|rc)\d+)?"
    r"(?P<ft>t|\+freethreaded)?$"
)


@dataclass(frozen=True)
class Request:
    version: tuple[int, ...]
    freethreaded: bool = False
    prerelease: str = ""  # "a1", "rc2": only that pre-release matches

    def __str__(self) -> str:
        return (
            ".".join(map(str, self.version)) + self.prerelease + ("t" if self.freethreaded else "")
        )


def parse_request(text: str) -> Request:
    """`3`, `3.13`, `3.13.5`, `3.15.0a2`, `cpython@3.13`, `3.13t` (free-threaded)."""
    match = _REQUEST.match(text.strip())
    if not match:
        raise UnknownVersionError(
            f"cannot understand the version request {text!r}",
            hint="use 3, 3.13, 3.13.5, cpython@3.13 or 3.13t",
        )
    version = tuple(int(p) for p in match.group("version").split("."))
    pre = match.group("pre") or ""
    if pre and len(version) != 3:
        raise UnknownVersionError(
            f"cannot understand the version request {text!r}: a pre-release names a full version",
            hint="for example 3.15.0a2",
        )
    return Request(version, bool(match.group("ft")), pre)


def split_version(version: str) -> tuple[tuple[int, ...], str]:
    """`3.15.0a2` -> ((3, 15, 0), "a2"); `3.13.5` -> ((3, 13, 5), "")."""
    match = re.fullmatch(r"(\d+(?:\.\d+)*)((?:a|b|rc)\d+)?", version)
    if not match:
        return (), version
    return tuple(int(p) for p in match.group(1).split(".")), match.group(2) or ""


def version_key(version: str) -> tuple[tuple[int, ...], int, int]:
    """Sorts releases: a pre-release before its final release (a < b < rc < final)."""
    numbers, pre = split_version(version)
    if not pre:
        return numbers, 3, 0
    kind = re.match(r"(a|b|rc)(\d+)", pre)
    assert kind
    return numbers, ("a", "b", "rc").index(kind.group(1)), int(kind.group(2))


def matches(version: str, variant: str, request: Request) -> bool:
    """Whether a build of `version` (`variant`) satisfies `request`. A request without a
    pre-release suffix matches final releases only, as pip and uv treat pre-releases."""
    numbers, pre = split_version(version)
    if numbers[: len(request.version)] != request.version:
        return False
    if pre != request.prerelease:
        return False
    return (variant == "freethreaded") == request.freethreaded
