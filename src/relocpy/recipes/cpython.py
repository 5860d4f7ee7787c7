"""How CPython is configured, per version and optimisation level (data plus one small function)."""

from __future__ import annotations

OPT_LEVELS = ("noopt", "lto", "pgo", "pgo+lto")

# The prefix every build is configured with; repair maps it to the tree's location at run time.
INSTALL_PREFIX = "/install"

BASE_ARGS = (
    f"--prefix={INSTALL_PREFIX}",
    "--enable-shared",
    "--with-ensurepip=install",
    "--enable-loadable-sqlite-extensions",
)

# (minimum version, flag): flags that only exist from some release on.
VERSIONED_ARGS = (((3, 10), "--without-static-libpython"),)

OPT_ARGS = {
    "noopt": (),
    "lto": ("--with-lto",),
    "pgo": ("--enable-optimizations",),
    "pgo+lto": ("--enable-optimizations", "--with-lto"),
}


def configure_args(version: tuple[int, ...], opt: str) -> list[str]:
    if opt not in OPT_ARGS:
        raise ValueError(
            f"unknown optimisation level {opt!r}; choose one of {', '.join(OPT_LEVELS)}"
        )
    args = list(BASE_ARGS)
    args += [flag for minimum, flag in VERSIONED_ARGS if version[:2] >= minimum]
    args += OPT_ARGS[opt]
    return args
