"""Build matrices: a TOML file of axes, named lists, exclude and include rules, expanded to specs.

Pure: `parse_matrix` reads and checks the text, `expand` returns the Cartesian product as
`MatrixSpec`s. Every error names the file's line and the problem.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relocpy.core.errors import RelocpyError
from relocpy.core.targets import host_target, is_cross, parse_target
from relocpy.recipes.cpython import OPT_LEVELS, PGO_TRAININGS
from relocpy.sources.catalog import SourcePin, resolve_cpython

TOOLCHAINS = ("gcc", "zig", "clang")
READLINES = ("libedit", "readline")
LIBS = ("source", "host")
# -march levels of the x86-64 psABI; the archive triple names the level (x86_64_v3), as
# python-build-standalone does.
MARCH_LEVELS = ("x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4")
ZIG_DEFAULT_GLIBC = "2.17"
HOST_TARGET = host_target().name
# The most combinations one matrix file may have (before excludes): beyond this, planning
# alone takes minutes and the builds would take years on one machine.
MAX_SPECS = 4096
_GLIBC = re.compile(r"2\.(1[7-9]|[2-9]\d)")
_FLAG = re.compile(r"-[A-Za-z0-9][A-Za-z0-9_=,.+:/-]*")


class MatrixError(RelocpyError):
    """A matrix file that cannot be expanded."""


@dataclass(frozen=True, order=True)
class MatrixSpec:
    """One interpreter to build: every axis has a value (`glibc` None means this host's)."""

    version: str  # the full pinned release, e.g. 3.13.15
    opt: str = "noopt"
    toolchain: str = "zig"
    glibc: str | None = ZIG_DEFAULT_GLIBC
    march: str = "x86-64"
    cflags: tuple[str, ...] = ()
    readline: str = "libedit"
    free_threaded: bool = False
    libs: str = "source"
    pgo_training: str = "pgo"
    pie: bool = True
    bolt: bool = False
    target: str = HOST_TARGET  # the machine it runs on (zig's name: aarch64-linux-gnu)
    static: bool = False  # musl: one executable, every extension module built in

    @property
    def musl(self) -> bool:
        return parse_target(self.target).libc == "musl"

    @property
    def cross(self) -> bool:
        return is_cross(parse_target(self.target))

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))

    @property
    def arch(self) -> str:
        """The triple's architecture: x86_64, x86_64_v2, x86_64_v3, aarch64
        (python-build-standalone's)."""
        if self.cross:
            return parse_target(self.target).arch
        return self.march.replace("x86-64", "x86_64").replace("-", "_")

    @property
    def label(self) -> str:
        parts = [self.version + ("t" if self.free_threaded else ""), self.opt, self.toolchain]
        if self.musl:
            parts.append("musl")
        else:
            parts.append(f"glibc{self.glibc}" if self.glibc else "host-glibc")
        parts.append(self.march)
        if self.cflags:
            parts.append(" ".join(self.cflags))
        if self.readline != "libedit":
            parts.append(self.readline)
        if self.libs != "source":
            parts.append(f"{self.libs}-libs")
        if self.pgo_training != "pgo":
            parts.append(f"{self.pgo_training}-training")
        if not self.pie:
            parts.append("no-pie")
        if self.bolt:
            parts.append("bolt")
        if self.cross:
            parts.append(self.target)
        if self.static:
            parts.append("static")
        return " ".join(parts)

    def build_options(self) -> dict[str, Any]:
        """`pipeline.build`'s keyword arguments for this spec (its version apart): the one
        place a spec's axes become build options."""
        return {
            "opt": self.opt,
            "toolchain": self.toolchain,
            "glibc": None if self.musl else self.glibc,
            "libs": self.libs,
            "readline": self.readline,
            "march": self.march,
            "cflags": self.cflags,
            "free_threaded": self.free_threaded,
            "pgo_training": self.pgo_training,
            "pie": self.pie,
            "bolt": self.bolt,
            "target": self.target if self.cross else None,
            "static": self.static,
        }

    def library_options(self) -> dict[str, Any]:
        """`pipeline.build_libraries_for`'s keyword arguments: what decides the libraries."""
        keys = ("toolchain", "glibc", "readline", "march", "cflags", "opt", "target")
        options = self.build_options()
        return {key: options[key] for key in keys}

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "opt": self.opt,
            "toolchain": self.toolchain,
            "glibc": self.glibc,
            "march": self.march,
            "cflags": list(self.cflags),
            "readline": self.readline,
            "free_threaded": self.free_threaded,
            "libs": self.libs,
            "pgo_training": self.pgo_training,
            "pie": self.pie,
            "bolt": self.bolt,
            "target": self.target,
            # only when set: the hashes of the specs before this axis stay what they were
            **({"static": True} if self.static else {}),
        }


@dataclass(frozen=True)
class Matrix:
    path: str
    axes: dict[str, list[object]]  # axis -> raw values, in file order
    excludes: list[dict[str, object]] = field(default_factory=list)
    includes: list[dict[str, object]] = field(default_factory=list)
    text: str = ""
    # where each axis and rule key was written: axis -> (table, key as spelled)
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)
    rule_keys: dict[tuple[str, int, str], str] = field(default_factory=dict)


# -- locating lines ---------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"-]+)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def line_of(text: str, table: str, key: str | None = None, index: int = 0) -> int | None:
    """1-based line of `key` in `[table]` (or in the `index`-th `[[table]]`), or of the header;
    table "" is the top of the file, before any header."""
    current, seen, header_line = ("" if table == "" else None), -1, None
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2).strip('"')
            if name == table:
                seen += 1 if header.group(1) == "[[" else 0
                current = name if (header.group(1) == "[" or seen == index) else None
                if current is not None:
                    header_line = number
            else:
                current = None
            continue
        if current is not None and key is not None:
            match = _KEY.match(line)
            if match and match.group(1) == key:
                return number
    return header_line


class _Where:
    """Error messages that start with FILE:LINE."""

    def __init__(self, path: str, text: str) -> None:
        self.path, self.text = path, text

    def error(
        self,
        problem: str,
        table: str,
        key: str | None = None,
        index: int = 0,
        hint: str | None = None,
    ) -> MatrixError:
        line = line_of(self.text, table, key, index)
        where = f"{self.path}:{line}" if line else self.path
        return MatrixError(f"{where}: {problem}", hint=hint)


# -- parsing ----------------------------------------------------------------------------------

AXES = (
    "version",
    "opt",
    "toolchain",
    "glibc",
    "march",
    "cflags",
    "readline",
    "free_threaded",
    "libs",
    "pgo_training",
    "pie",
    "bolt",
    "target",
    "static",
)
_PLURALS = {"versions": "version", "toolchains": "toolchain", "opts": "opt", "targets": "target"}


def parse_matrix(text: str, path: str = "<matrix>") -> Matrix:
    """Read a matrix file's text; structural problems raise `MatrixError` naming the line."""
    where = _Where(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: not valid TOML: {exc}") from exc
    unknown_tables = set(data) - {"matrix", "lists", "exclude", "include", "defaults"}
    hint = "a matrix file has [matrix], [defaults], [lists], [[exclude]] and [[include]]"
    for name in sorted(unknown_tables):
        value = data[name]
        if isinstance(value, dict) or (isinstance(value, list) and value and all(
            isinstance(item, dict) for item in value
        )):  # fmt: skip
            raise where.error(f"unknown table [{name}]", name, hint=hint)
        raise where.error(
            f"{name!r} outside a table (axes go under [matrix], settings under [defaults])",
            "",
            name,
            hint=hint,
        )
    lists = data.get("lists", {})
    if not isinstance(lists, dict):
        raise where.error("[lists] must be a table of named lists", "lists")
    for name, value in lists.items():
        if not isinstance(value, list) or not value:
            raise where.error(f"list {name!r} must be a non-empty array", "lists", name)
    matrix = data.get("matrix")
    if not isinstance(matrix, dict) or not matrix:
        raise where.error(
            "the file has no [matrix] table with at least one axis",
            "matrix",
            hint='e.g. [matrix] version = ["3.11", "3.13"]',
        )
    axes: dict[str, list[object]] = {}
    origins: dict[str, tuple[str, str]] = {}
    rule_keys: dict[tuple[str, int, str], str] = {}
    for key, value in matrix.items():
        axis = _axis_name(key, where, "matrix")
        if axis in axes:
            raise where.error(f"axis {axis!r} is given twice", "matrix", key)
        if axis == "cflags":
            values = _resolve_flag_sets(value, lists, where, key)
        else:
            values = _resolve_list(value, lists, where, "matrix", key)
        if not values:
            raise where.error(f"axis {axis!r} has no values: the product is empty", "matrix", key)
        axes[axis] = values
        origins[axis] = ("matrix", key)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise where.error("[defaults] must be a table", "defaults")
    for key, value in defaults.items():
        axis = _axis_name(key, where, "defaults")
        if axis in axes:
            raise where.error(
                f"conflicting values: {axis!r} is both an axis in [matrix] and a default",
                "defaults",
                key,
            )
        axes[axis] = [_resolve_scalar(value, lists, where, "defaults", key)]
        origins[axis] = ("defaults", key)
    rules: dict[str, list[dict[str, object]]] = {"exclude": [], "include": []}
    for kind in rules:
        entries = data.get(kind, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise where.error(f"{kind} rules are written as [[{kind}]] tables", kind)
        for index, entry in enumerate(entries):
            if not entry:
                raise where.error(f"[[{kind}]] number {index + 1} is empty", kind, index=index)
            rule: dict[str, object] = {}
            for key, value in entry.items():
                axis = _axis_name(key, where, kind, index)
                if kind == "exclude" and axis not in axes:
                    raise where.error(
                        f"exclude rule names axis {axis!r}, which the matrix does not have",
                        kind,
                        key,
                        index,
                    )
                rule[axis] = _resolve_scalar(value, lists, where, kind, key, index)
                rule_keys[(kind, index, axis)] = key
            rules[kind].append(rule)
    return Matrix(path, axes, rules["exclude"], rules["include"], text, origins, rule_keys)


def _axis_name(key: str, where: _Where, table: str, index: int = 0) -> str:
    axis = _PLURALS.get(key, key).replace("-", "_")
    if axis not in AXES:
        raise where.error(
            f"unknown axis {key!r}",
            table,
            key,
            index,
            hint=f"known axes: {', '.join(AXES)}",
        )
    return axis


def _resolve_list(
    value: object, lists: dict[str, list[object]], where: _Where, table: str, key: str
) -> list[object]:
    """An axis value: an array, a scalar, or "@name" of a [lists] entry (arrays may mix both)."""
    items = value if isinstance(value, list) else [value]
    out: list[object] = []
    for item in items:
        if isinstance(item, str) and item.startswith("@"):
            name = item[1:]
            if name not in lists:
                raise where.error(
                    f"{key} refers to an unknown list {item!r}",
                    table,
                    key,
                    hint=f"named lists: {', '.join(sorted(lists)) or 'none'}",
                )
            out.extend(lists[name])
        else:
            out.append(item)
    return out


def _resolve_flag_sets(
    value: object, lists: dict[str, list[object]], where: _Where, key: str
) -> list[object]:
    """cflags values are flag sets: `["-O3", "-g"]` is one set, `[[], "@name"]` two ("@name"
    is one set here, not spread)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return [value]
    if value and all(isinstance(v, str) and not v.startswith("@") for v in value):
        return [value]  # one flag set written as a plain list of flags
    sets: list[object] = []
    for item in value:
        if isinstance(item, str) and item.startswith("@"):
            if item[1:] not in lists:
                raise where.error(f"{key} refers to an unknown list {item!r}", "matrix", key)
            sets.append(lists[item[1:]])
        else:
            sets.append(item)
    return sets


def _resolve_scalar(
    value: object,
    lists: dict[str, list[object]],
    where: _Where,
    table: str,
    key: str,
    index: int = 0,
) -> object:
    if isinstance(value, str) and value.startswith("@"):
        if value[1:] not in lists:
            raise where.error(f"{key} refers to an unknown list {value!r}", table, key, index)
        return lists[value[1:]]
    return value


# -- checking and expanding --------------------------------------------------------------------


def _check_value(
    axis: str, value: object, resolve: Callable[[str], str], fail: Callable[[str], MatrixError]
) -> object:
    """The value in canonical form (a full version, a flag tuple); raises through `fail`."""

    def choose(options: tuple[str, ...]) -> str:
        if value not in options:
            raise fail(f"unknown {axis} {value!r}; choose one of {', '.join(options)}")
        return str(value)

    if axis == "version":
        if not isinstance(value, str):
            raise fail(f'a version is written as a string, e.g. "3.13", not {value!r}')
        try:
            return resolve(value)
        except RelocpyError as exc:
            raise fail(exc.message) from exc
    if axis == "opt":
        return choose(OPT_LEVELS)
    if axis == "toolchain":
        return choose(TOOLCHAINS)
    if axis == "readline":
        return choose(READLINES)
    if axis == "libs":
        return choose(LIBS)
    if axis == "pgo_training":
        return choose(PGO_TRAININGS)
    if axis == "march":
        return choose(MARCH_LEVELS)
    if axis == "target":
        if not isinstance(value, str):
            raise fail(f'a target is written as a string, e.g. "aarch64-linux-gnu", not {value!r}')
        try:
            return parse_target(value).name
        except RelocpyError as exc:
            raise fail(exc.message) from exc
    if axis == "glibc":
        if value in ("host", None):
            return None
        if not isinstance(value, str) or not _GLIBC.fullmatch(value):
            raise fail(f'glibc floor {value!r} is not a version from 2.17 on (e.g. "2.28")')
        return value
    if axis in ("free_threaded", "pie", "bolt", "static"):
        if not isinstance(value, bool):
            raise fail(f"{axis} is true or false, not {value!r}")
        return value
    if axis == "cflags":
        flags = value.split() if isinstance(value, str) else value
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise fail(f"a cflags set is a list of flags, not {value!r}")
        for flag in flags:
            if not _FLAG.fullmatch(flag):
                raise fail(f"{flag!r} does not look like a compiler flag")
            if flag.startswith(("-march=", "-mtune=")):
                raise fail(f"{flag} belongs in the march axis, which also names the archive")
        return tuple(flags)
    raise fail(f"unknown axis {axis!r}")  # pragma: no cover - _axis_name checked it


def _conflict(spec: dict[str, object]) -> tuple[str, tuple[str, ...]] | None:
    """Why a combination cannot be built, and the axes that clash; None if it can be."""
    if spec["libs"] == "host" and (spec["toolchain"] == "zig" or spec["glibc"] is not None):
        return (
            "libs host links this host's libraries, which need this host's glibc"
            f" (not {spec['toolchain']} for glibc {spec['glibc']}); use libs source",
            ("libs", "glibc", "toolchain"),
        )
    if spec["toolchain"] == "zig" and spec["opt"] != "noopt":
        return (
            f"opt {spec['opt']} needs gcc: zig cannot do PGO (its binaries write no profile),"
            " and CPython's configure does not take zig for a compiler it can LTO with;"
            " use toolchain gcc with glibc 2.17, or toolchain clang",
            ("opt", "toolchain"),
        )
    if spec["pgo_training"] != "pgo" and not str(spec["opt"]).startswith("pgo"):
        return (
            f"pgo_training {spec['pgo_training']} trains a profile-guided build,"
            f" and opt {spec['opt']} is not; use opt pgo+lto",
            ("pgo_training", "opt"),
        )
    if spec["bolt"] and (spec["toolchain"] != "clang" or not str(spec["opt"]).startswith("pgo")):
        return (
            "bolt needs toolchain clang and a profile-guided opt (BOLT rewrites what lld"
            " links, by a profile of the PGO training); use toolchain clang, opt pgo+lto",
            ("bolt", "toolchain", "opt"),
        )
    native = (spec["toolchain"], spec["libs"], spec["march"]) != ("zig", "source", "x86-64")
    if native and is_cross(parse_target(str(spec["target"]))):
        return (
            f"target {spec['target']} is cross-compiled with zig, its libraries built for it"
            " (toolchain zig, libs source, no x86-64 march level)",
            ("target", "toolchain", "libs", "march"),
        )
    if spec["static"] and parse_target(str(spec["target"])).libc != "musl":
        return (
            f"static with target {spec['target']}: a static build takes musl"
            " (e.g. target x86_64-linux-musl)",
            ("static", "target"),
        )
    version = tuple(int(p) for p in str(spec["version"]).split("."))
    if spec["static"] and version[:2] < (3, 11):
        return (
            f"static builds take CPython 3.11 or newer, not {spec['version']}",
            ("static", "version"),
        )
    if spec["free_threaded"] and version[:2] < (3, 13):
        return (
            f"free-threaded builds exist from CPython 3.13 on, not {spec['version']}",
            ("free_threaded", "version"),
        )
    return None


def _defaults(toolchain: object) -> dict[str, object]:
    return {
        "opt": "noopt",
        "toolchain": "zig",
        "glibc": ZIG_DEFAULT_GLIBC if toolchain in (None, "zig", "clang") else None,
        "march": "x86-64",
        "cflags": (),
        "readline": "libedit",
        "free_threaded": False,
        "libs": "source",
        "pgo_training": "pgo",
        "pie": True,
        "bolt": False,
        "target": HOST_TARGET,
        "static": False,
    }


def _matches(rule: dict[str, object], spec: dict[str, object]) -> bool:
    return all(spec[axis] == value for axis, value in rule.items())


def _resolver(pins: list[SourcePin] | None) -> Callable[[str], str]:
    if pins is None:
        from relocpy.sources.fetch import resolve_reachable

        return lambda value: resolve_reachable(value).version
    return lambda value: resolve_cpython(value, pins).version


def expand(matrix: Matrix, pins: list[SourcePin] | None = None) -> list[MatrixSpec]:
    """Every spec of the matrix: the product of the axes, less excludes, plus includes.

    Duplicates collapse; an empty result, an unknown value or an impossible combination raises.
    """
    # A partial version names the newest release whose source this machine can get (as
    # `relocpy build 3.13` does); a catalog given by the caller is resolved as it stands.
    resolve = _resolver(pins)
    where = _Where(matrix.path, matrix.text)
    if "version" not in matrix.axes and not matrix.includes:
        raise where.error("the matrix has no version axis", "matrix", hint='add version = ["3.13"]')

    checked: dict[str, list[object]] = {}
    for axis, values in matrix.axes.items():
        table, key = matrix.origins.get(axis, ("matrix", axis))
        out = []
        for value in values:
            canonical = _check_value(
                axis, value, resolve, lambda msg, t=table, k=key: where.error(msg, t, k)
            )
            if canonical in out:
                raise where.error(f"{axis} lists {value!r} twice", table, key)
            out.append(canonical)
        checked[axis] = out

    sizes = [len(checked[axis]) for axis in checked]
    combinations = math.prod(sizes) + len(matrix.includes)
    if combinations > MAX_SPECS:
        shape = " × ".join(f"{len(v)} {axis}" for axis, v in checked.items() if len(v) > 1)
        raise where.error(
            f"the matrix has {combinations:,} combinations ({shape}), more than the"
            f" {MAX_SPECS:,} relocpy plans in one file",
            "matrix",
            hint="split it into several files, or narrow its axes",
        )
    excludes = []
    for index, rule in enumerate(matrix.excludes):
        excludes.append(_checked_rule(rule, "exclude", index, matrix, resolve, where))
    names = list(checked)
    specs: list[MatrixSpec] = []
    seen: set[MatrixSpec] = set()

    def add(values: dict[str, object], fail: Callable[[str, tuple[str, ...]], MatrixError]) -> None:
        full = {**_defaults(values.get("toolchain")), **values}
        clash = _conflict(full)
        if clash:
            label = MatrixSpec(**_spec_args(full)).label
            raise fail(f"conflicting values for {label}: {clash[0]}", clash[1])
        spec = MatrixSpec(**_spec_args(full))
        if spec not in seen:
            seen.add(spec)
            specs.append(spec)

    for combo in itertools.product(*(checked[n] for n in names)):
        values = dict(zip(names, combo, strict=True))
        if "glibc" not in values and values.get("toolchain", "zig") == "gcc":
            values["glibc"] = None
        if any(
            _matches(rule, {**_defaults(values.get("toolchain")), **values}) for rule in excludes
        ):
            continue
        add(values, lambda msg, axes: where.error(msg, *_origin_of(matrix, axes)))
    for index, rule in enumerate(matrix.includes):
        values = _checked_rule(rule, "include", index, matrix, resolve, where)
        if "version" not in values:
            raise where.error("an include rule needs a version", "include", index=index)
        base = {axis: vals[0] for axis, vals in checked.items() if len(vals) == 1}
        merged = {**base, **values}
        if "glibc" not in values and merged.get("toolchain") == "gcc":
            merged["glibc"] = None
        add(merged, lambda msg, axes, i=index: where.error(msg, "include", index=i))
    if not specs:
        raise where.error(
            "the product is empty: every combination is excluded",
            "exclude",
            hint="relax [[exclude]]",
        )
    return specs


def _origin_of(matrix: Matrix, axes: tuple[str, ...]) -> tuple[str, str | None]:
    """(table, key) of the first of `axes` the file wrote, for pointing at its line."""
    for axis in axes:
        if axis in matrix.origins:
            return matrix.origins[axis]
    return ("matrix", None)


def _checked_rule(
    rule: dict[str, object],
    kind: str,
    index: int,
    matrix: Matrix,
    resolve: Callable[[str], str],
    where: _Where,
) -> dict[str, object]:
    out = {}
    for axis, value in rule.items():
        key = matrix.rule_keys.get((kind, index, axis), axis)
        out[axis] = _check_value(
            axis, value, resolve, lambda msg, k=key: where.error(msg, kind, k, index)
        )
    return out


def _spec_args(values: dict[str, object]) -> dict[str, object]:
    return {axis: values[axis] for axis in AXES}


def load_matrix(path: Path) -> list[MatrixSpec]:
    """Read and expand a matrix file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise MatrixError(f"no matrix file at {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(f"cannot read {path}: {exc}") from exc
    return expand(parse_matrix(text, str(path)))
