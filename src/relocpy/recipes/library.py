"""What a third-party library recipe is: pinned source, configure flags, dependencies, a hook.

Recipes are data (one module each under `recipes/libs/`); `relocpy.build.libraries` builds
them.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from relocpy.core.preflight import Requirement, macro, program
from relocpy.core.progress import Reporter
from relocpy.core.runner import CommandGroup, run_logged
from relocpy.core.targets import Target, host_target
from relocpy.sources.catalog import SourcePin
from relocpy.sources.catalog import debian_binary as debian_binary  # for recipes/libs/

# Libraries are configured for the same placeholder prefix as CPython (see recipes/cpython.py).
LIBRARY_PREFIX = "/install"


def debian_source(
    package: str,
    version: str,
    filename: str,
    sha256: str,
    *,
    debian_version: str | None = None,
    urls: tuple[str, ...] = (),
) -> SourcePin:
    """A pin on a release tarball that Debian also carries as `PACKAGE_VERSION.orig.tar.*`.

    `urls` are upstream locations of the byte-identical file; leave them out where Debian
    repacked the tarball (`+dfsg`) or ships a git snapshot, since their hashes differ.
    """
    return SourcePin(
        package, version, filename, sha256, urls, package, debian_version, debian_kind="source"
    )


@dataclass
class LibraryBuild:
    """What a recipe hook sees: the unpacked source, where to install, and how to run things."""

    recipe: LibraryRecipe
    source: Path
    stage: Path  # DESTDIR; the library installs into stage/install
    deps: Path  # the merged install trees of its dependencies
    env: dict[str, str]
    jobs: int
    log: Path
    reporter: Reporter
    target: Target = field(default_factory=host_target)  # the machine the library runs on
    group: CommandGroup | None = None  # the commands of the build this one is part of

    @property
    def prefix(self) -> Path:
        return self.stage / LIBRARY_PREFIX.lstrip("/")

    def run(self, cmd: list[str], cwd: Path | None = None) -> None:
        label = f"{self.recipe.name}: {Path(cmd[0]).name}"
        run_logged(
            cmd, cwd or self.source, self.log, self.reporter, label, self.env, group=self.group
        )


@dataclass(frozen=True)
class LibraryRecipe:
    """One library: where its source comes from and how it is configured.

    `build` is a hook for libraries that are not `./configure && make && make install`.
    `python` limits the CPython versions that use it (min inclusive, max exclusive).
    """

    name: str
    version: str
    source: SourcePin
    license: str
    purpose: str
    depends: tuple[str, ...] = ()
    configure_args: tuple[str, ...] = ()
    subdir: str = ""
    autoreconf: bool = False
    make_targets: tuple[str, ...] = ()
    install_targets: tuple[str, ...] = ("install",)
    cflags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    python: tuple[tuple[int, int], tuple[int, int]] = ((3, 0), (4, 0))
    # For a Debian binary package: (path in the package, path in the prefix) to take from it.
    copy_tree: tuple[tuple[str, str], ...] = ()
    extra_sources: tuple[SourcePin, ...] = ()
    # A Debian binary package per CPU (arch, pin) where the CPU's build differs from `source`
    # (this machine's); `copy_tree` paths may say {multiarch} (lib/{multiarch}/libXau.a).
    arch_sources: tuple[tuple[str, SourcePin], ...] = ()
    # (arch, args) configure arguments for one CPU only, added to configure_args by for_target
    arch_configure_args: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (link, target) symlinks made in the prefix after installing, e.g. compatibility names.
    symlinks: tuple[tuple[str, str], ...] = ()
    # Host programs the build runs besides make and the compiler (perl, tclsh, tic, ...), and
    # aclocal macros `autoreconf` needs from the host beyond libtool's and automake's own.
    # Neither changes what the build produces, so neither enters the fingerprint.
    tools: tuple[str, ...] = ()
    aclocal_macros: tuple[str, ...] = ()
    # Whether ./configure is autoconf's and so takes --host/--build in a cross build (zlib's
    # own script refuses them, and reads the target from CC alone).
    autoconf_host: bool = True
    # What configure cannot find out in a cross build, where it cannot run a test program on
    # the machine it builds for (given the answer a Linux C library gives).
    cross_configure_args: tuple[str, ...] = ()
    # Flags a build for musl adds (what glibc's headers define and musl's leave to the program)
    musl_cflags: tuple[str, ...] = ()
    build: Callable[[LibraryBuild], None] | None = field(default=None, compare=False)
    # Runs after a standard configure/make/install (where `build` would replace all of it).
    after_install: Callable[[LibraryBuild], None] | None = field(default=None, compare=False)

    def for_target(self, target: Target) -> LibraryRecipe:
        """This recipe for a build that runs on `target`: its CPU's package, its paths."""
        source = dict(self.arch_sources).get(target.arch, self.source)
        tree = tuple(
            (inside.replace("{multiarch}", target.multiarch), dest)
            for inside, dest in self.copy_tree
        )
        args = (*self.configure_args, *dict(self.arch_configure_args).get(target.arch, ()))
        return dataclasses.replace(
            self,
            source=source,
            copy_tree=tree,
            configure_args=args,
            arch_sources=(),
            arch_configure_args=(),
        )

    def used_by(self, version: tuple[int, ...]) -> bool:
        low, high = self.python
        return low <= version[:2] < high

    def requirements(self) -> list[Requirement]:
        """What building this recipe needs from the host (see relocpy.core.preflight)."""
        who = self.name
        if self.source.debian_kind == "deb":
            needs = [program("apt-get", who), program("dpkg-deb", who)]
        else:
            needs = [program("make", who)]
        if self.autoreconf:
            who = f"{self.name}'s autoreconf"
            needs += [
                program(name, who) for name in ("autoreconf", "autoconf", "aclocal", "libtoolize")
            ]
            needs += [macro(name, who) for name in ("AM_INIT_AUTOMAKE", "LT_INIT")]
            needs += [macro(name, who) for name in self.aclocal_macros]
        needs += [program(name, self.name) for name in self.tools]
        return needs

    def fingerprint(self) -> str:
        """Everything about the recipe that affects its output, as canonical JSON."""
        data = {
            "name": self.name,
            "version": self.version,
            "sha256": self.source.sha256,
            "configure_args": self.configure_args,
            "subdir": self.subdir,
            "autoreconf": self.autoreconf,
            "make_targets": self.make_targets,
            "install_targets": self.install_targets,
            "cflags": self.cflags,
            "env": self.env,
            "copy_tree": self.copy_tree,
            "extra_sources": [pin.sha256 for pin in self.extra_sources],
            "hook": inspect.getsource(self.build) if self.build else None,
        }
        if not self.autoconf_host:
            data["autoconf_host"] = False
        if self.cross_configure_args:
            data["cross_configure_args"] = self.cross_configure_args
        if self.musl_cflags:
            data["musl_cflags"] = self.musl_cflags
        if self.symlinks:  # fields added later enter only when used, keeping older keys valid
            data["symlinks"] = self.symlinks
        if self.after_install:
            data["after_install"] = inspect.getsource(self.after_install)
        return json.dumps(data, sort_keys=True)
