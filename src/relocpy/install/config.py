"""The user's settings: mirrors to install from, and what to build when none has a release.

`$RELOCPY_HOME/config.toml`, else `$XDG_CONFIG_HOME/relocpy/config.toml` (~/.config/...):

    mirrors = ["https://pythons.example.org", "/srv/pythons"]   # tried in this order
    [build]                                                      # the build made on a miss
    opt = "noopt"          # noopt, lto, pgo, pgo+lto (need toolchain = "gcc" or "clang")
    toolchain = "zig"      # zig, gcc or clang
    glibc = "2.17"         # the oldest glibc the build runs on
    march = "x86-64"       # x86-64, x86-64-v2, x86-64-v3, x86-64-v4
    readline = "libedit"   # libedit or readline

An unknown key or a value of the wrong type is an error naming the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from relocpy.core import home
from relocpy.core.errors import RelocpyError

_BUILD_KEYS = {
    "opt": ("noopt", "lto", "pgo", "pgo+lto"),
    "toolchain": ("zig", "gcc", "clang"),
    "march": ("x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"),
    "readline": ("libedit", "readline"),
    "glibc": None,  # any "2.N"; relocpy.build.zig.parse_glibc checks it
}


class ConfigError(RelocpyError):
    """A config file that cannot be read or holds a bad setting."""


@dataclass(frozen=True)
class BuildChoice:
    """What `relocpy install` builds when no mirror has a release: by default what `relocpy
    build` builds (zig, glibc 2.17, no PGO): the most portable tree, and the quickest build
    (about 16 minutes on 2 cores with nothing cached, 5 with the libraries cached)."""

    opt: str = "noopt"
    toolchain: str = "zig"
    glibc: str | None = "2.17"
    march: str = "x86-64"
    readline: str = "libedit"


@dataclass(frozen=True)
class Config:
    path: Path | None
    mirrors: tuple[str, ...] = ()
    build: BuildChoice = field(default_factory=BuildChoice)


def config_path() -> Path:
    base = home.home()
    if base is not None:
        return base / "config.toml"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "relocpy" / "config.toml"


def parse_config(text: str, source: str) -> Config:
    """The settings in `text` (a config.toml), checked."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"mirrors", "build"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown setting {unknown[0]!r}", hint="known: mirrors, [build]"
        )
    mirrors = data.get("mirrors", [])
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    if not isinstance(mirrors, list) or not all(isinstance(m, str) and m for m in mirrors):
        raise ConfigError(f"{source}: mirrors must be a list of directories or URLs")
    build = data.get("build", {})
    if not isinstance(build, dict):
        raise ConfigError(f"{source}: [build] must be a table")
    values: dict[str, str] = {}
    for key, value in build.items():
        if key not in _BUILD_KEYS:
            raise ConfigError(
                f"{source}: [build] has an unknown key {key!r}",
                hint="known: " + ", ".join(_BUILD_KEYS),
            )
        allowed = _BUILD_KEYS[key]
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            choices = ", ".join(allowed) if allowed else "a version such as 2.17"
            raise ConfigError(f"{source}: [build] {key} = {value!r}: choose {choices}")
        values[key] = value
    if "glibc" in values:
        from relocpy.build.zig import parse_glibc

        values["glibc"] = parse_glibc(values["glibc"])
    choice = BuildChoice(**values)  # type: ignore[arg-type]
    if choice.toolchain == "gcc" and "glibc" not in values:
        choice = BuildChoice(**{**values, "glibc": None})  # type: ignore[arg-type]
    return Config(Path(source), tuple(mirrors), choice)


def load_config(path: Path | None = None) -> Config:
    """The user's config, or the defaults when there is no config file."""
    path = path or config_path()
    if not path.exists():
        return Config(None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return parse_config(text, str(path))


def mirrors_in_order(given: list[str] | None, config: Config) -> list[str]:
    """`--mirror` values, then `RELOCPY_MIRROR` (several separated by spaces), then the
    config file's `mirrors`: each once, in that order."""
    ordered = [*(given or []), *os.environ.get("RELOCPY_MIRROR", "").split(), *config.mirrors]
    return list(dict.fromkeys(m for m in ordered if m))
