"""The `relocpy` command: argument parsing, progress display and exit codes over `pipeline`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from relocpy import __version__
from relocpy.core.errors import RelocpyError
from relocpy.recipes.cpython import OPT_LEVELS, PGO_TRAININGS

if TYPE_CHECKING:
    from rich.console import Console

    from relocpy.core.progress import Reporter
    from relocpy.verify.checks import VerifyReport

# The stages are imported by the verbs that use them: `relocpy run` must start fast.


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relocpy",
        description="Relocatable CPython for Linux: build an interpreter from its pinned source,"
        " make any installed prefix relocatable, verify it after a move, and install"
        " interpreters on demand.",
        epilog="`relocpy COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"relocpy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "versions",
        help="the CPython releases relocpy pins: which mirror serves each here, what is cached,"
        " built and installed",
    )
    p.add_argument(
        "--offline", action="store_true", help="do not ask python.org or Debian what they serve"
    )
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("fetch", help="download (or seed from --file) and verify a source tarball")
    p.add_argument("version", help="3.13 or 3.13.5 (with --file, the file's name decides)")
    p.add_argument(
        "--file", type=Path, help="a local copy of the release tarball to verify and cache"
    )

    p = sub.add_parser("build", help="build a relocatable CPython and write its archives")
    p.add_argument("version", help="3, 3.13 or 3.13.5")
    p.add_argument(
        "--out", type=Path, default=Path("dist"), help="output directory (default: dist)"
    )
    p.add_argument(
        "--opt",
        choices=OPT_LEVELS,
        default="noopt",
        help="optimisation: noopt (default), lto, pgo, pgo+lto (the last three need gcc)",
    )
    p.add_argument(
        "-j", "--jobs", type=int, default=None, help="parallel compile jobs (default: all cores)"
    )
    p.add_argument("--build-tag", help="the +BUILD part of the archive name (default: YYYYMMDD)")
    p.add_argument("--verify", action="store_true", help="verify the archive after building it")
    p.add_argument("--keep-work", action="store_true", help="keep the build directory")
    p.add_argument(
        "--toolchain",
        choices=("zig", "gcc", "clang"),
        default="zig",
        help="zig (default), gcc or clang (Debian's clang-19 and lld; PGO, ThinLTO, --bolt);"
        " gcc with --glibc and clang use zig's glibc headers and stubs",
    )
    p.add_argument(
        "--glibc",
        help="the oldest glibc to run on (zig and clang default: 2.17; gcc default: this host's)",
    )
    p.add_argument(
        "--libs",
        choices=("source", "host"),
        default="source",
        help="build every library here (default), or graft the host's (gcc only)",
    )
    p.add_argument(
        "--readline",
        choices=("libedit", "readline"),
        default="libedit",
        help="line editing library: libedit (BSD, default) or GNU readline (GPL-3.0)",
    )
    p.add_argument(
        "--march",
        default="x86-64",
        choices=("x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"),
        help="CPU level for CPython and its libraries; it names the archive's triple",
    )
    p.add_argument(
        "--cflags", default="", help="extra compiler flags for CPython and its libraries"
    )
    p.add_argument(
        "--free-threaded", action="store_true", help="build without the GIL (3.13 and later)"
    )
    p.add_argument(
        "--target",
        metavar="TARGET",
        help="the machine to build for: aarch64-linux-gnu, ppc64le-linux-gnu, s390x-linux-gnu,"
        " riscv64-linux-gnu (cross-compiled with zig, checked under qemu-user),"
        " x86_64-linux-musl or aarch64-linux-musl (dynamic, or --static); default: this one",
    )
    p.add_argument(
        "--static",
        action="store_true",
        help="musl targets: one static executable with every extension module built in; it"
        " runs with no C library on the machine, and loads no extension modules",
    )
    p.add_argument(
        "--build-python",
        type=Path,
        metavar="PATH",
        help="with --target: this machine's CPython of the same X.Y for the build to run"
        " (default: relocpy builds one, once)",
    )
    p.add_argument(
        "--pgo-training",
        choices=PGO_TRAININGS,
        default="pgo",
        help="what --opt pgo trains on: CPython's 44 --pgo tests (default, about 3 minutes)"
        " or the whole test suite (extended, as Debian does)",
    )
    p.add_argument(
        "--pgo-profile",
        type=Path,
        metavar="FILE",
        help="the .pgo-profile.tar.zst an earlier build of the same spec wrote: compile with"
        " its counts instead of training, and get that build's bytes again",
    )
    p.add_argument(
        "--pybi",
        action="store_true",
        help="also write the tree as a PEP 711 .pybi (cpython-VERSION-BUILD-PLATFORM.pybi)",
    )
    p.add_argument(
        "--bolt",
        action="store_true",
        help="with --toolchain clang and --opt pgo+lto: lay out bin/python's code by BOLT's"
        " profile of the PGO training (llvm-bolt-19)",
    )
    p.add_argument(
        "--no-pie",
        dest="pie",
        action="store_false",
        help="link bin/python position-dependent, as Debian does: faster (about 3%% with"
        " pgo+lto), at the cost of address randomisation for the executable itself",
    )

    p = sub.add_parser("matrix", help="plan or build a matrix of interpreters (a TOML file)")
    matrix_sub = p.add_subparsers(dest="matrix_command", required=True, metavar="{plan,build}")
    for verb, text in (
        ("plan", "list every spec of FILE, its hash, and whether the binary cache has it"),
        ("build", "build every spec the binary cache lacks (one failure does not stop the rest)"),
    ):
        m = matrix_sub.add_parser(verb, help=text)
        m.add_argument("file", type=Path, help="the matrix, a TOML file")
        m.add_argument("--json", action="store_true", help="print JSON")
        m.add_argument(
            "--cache",
            help="binary cache: a directory, also a mirror (default: ~/.cache/relocpy/binaries),"
            " or a registry shared by many machines, oci://HOST[:PORT]/REPO",
        )
        m.add_argument(
            "--only",
            action="append",
            default=[],
            metavar="HASH",
            help="only the spec whose hash starts with HASH (8+ hex digits; repeatable)",
        )
        m.add_argument(
            "--mirror",
            action="append",
            default=[],
            help="a binary cache to read from: directory, file:// or http(s):// (repeatable)",
        )
        if verb == "build":
            m.add_argument("-j", "--parallel", type=int, default=1, help="specs built at once")
            m.add_argument(
                "--verify", action="store_true", help="verify each product before storing it"
            )
            m.add_argument(
                "--libraries-only",
                action="store_true",
                help="build only the specs' third-party libraries, into the library cache",
            )

    p = sub.add_parser("pybi", help="PEP 711 interpreter files (.pybi)")
    pybi_sub = p.add_subparsers(dest="pybi_command", required=True, metavar="{install}")
    g = pybi_sub.add_parser("install", help="unpack a .pybi into a new directory, checked")
    g.add_argument("file", type=Path, help="a cpython-*.pybi (relocpy build --pybi)")
    g.add_argument("dest", type=Path, help="a directory that does not exist yet")

    p = sub.add_parser("ci", help="CI pipelines for a build matrix")
    ci_sub = p.add_subparsers(dest="ci_command", required=True, metavar="{generate}")
    g = ci_sub.add_parser(
        "generate",
        help="a GitHub Actions or GitLab CI pipeline: one job per spec the shared cache lacks",
    )
    g.add_argument("file", type=Path, help="the matrix, a TOML file (as the pipeline names it)")
    engine = g.add_mutually_exclusive_group(required=True)
    engine.add_argument("--github", dest="engine", action="store_const", const="github")
    engine.add_argument("--gitlab", dest="engine", action="store_const", const="gitlab")
    g.add_argument("--cache", required=True, help="the shared binary cache, oci://HOST[:PORT]/REPO")
    g.add_argument(
        "--setup",
        help="the command that installs relocpy into the runner's /opt/relocpy virtualenv"
        " (default: /opt/relocpy/bin/pip install relocpy==VERSION)",
    )
    g.add_argument("-o", "--output", type=Path, help="write the pipeline here (default: stdout)")

    p = sub.add_parser("repair", help="make an installed CPython prefix relocatable (copy)")
    p.add_argument("prefix", type=Path, help="an installed CPython 3.8+ (its root directory)")
    p.add_argument("--out", type=Path, required=True, help="where the repaired tree is written")
    p.add_argument(
        "--policy", help="manylinux policy deciding what is grafted (default: host glibc)"
    )

    p = sub.add_parser("mirror", help="manage a mirror directory of interpreter archives")
    mirror_sub = p.add_subparsers(dest="mirror_command", required=True, metavar="{index}")
    m = mirror_sub.add_parser("index", help="write index.json and uv-downloads.json for DIR")
    m.add_argument(
        "directory",
        help="a directory of cpython-*.tar.gz/.tar.zst, or a registry oci://HOST[:PORT]/REPO",
    )
    m.add_argument("--base-url", help="URL the directory is served at (default: its file:// URL)")

    mirror_help = (
        "a mirror to install from: a directory or URL with relocpy's index.json or"
        " python-build-standalone's SHA256SUMS, or a uv downloads .json (repeatable; tried"
        " before $RELOCPY_MIRROR and the config file's mirrors)"
    )
    p = sub.add_parser(
        "install",
        help="install interpreters: from a mirror, the binary cache, or a build from source",
        description="Install each VERSION (default: the one .python-version names) from the"
        " first source that has it: already installed, each mirror in order, the local binary"
        " cache, or a build from source that is stored in the binary cache.",
    )
    p.add_argument(
        "versions",
        nargs="*",
        metavar="VERSION",
        help="3, 3.13, 3.13.5, 3.13t (free-threaded) or cpython@3.13",
    )
    p.add_argument("--mirror", action="append", default=[], help=mirror_help)
    only = p.add_mutually_exclusive_group()
    only.add_argument(
        "--no-build", action="store_true", help="never build: fail if no mirror or cache has it"
    )
    only.add_argument(
        "--build-only",
        action="store_true",
        help="skip mirrors and the binary cache: build from source (or reuse that build)",
    )
    p.add_argument("--dry-run", action="store_true", help="say where each would come from, and why")
    p.add_argument(
        "--build-opt",
        choices=OPT_LEVELS,
        help="what a build on a miss optimises (default: noopt, or the config file's)",
    )
    p.add_argument("--no-links", action="store_true", help="do not add pythonX.Y launchers")

    p = sub.add_parser("list", help="installed interpreters (--available: what mirrors offer)")
    p.add_argument("--available", action="store_true", help="also list what the mirrors offer")
    p.add_argument("--mirror", action="append", default=[], help=mirror_help)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("find", help="print the path of an installed interpreter")
    p.add_argument("version", help="3, 3.13, 3.13.5 or 3.13t")
    p.add_argument("--json", action="store_true", help="print the install record as JSON")

    p = sub.add_parser("uninstall", help="remove installed interpreters matching VERSION")
    p.add_argument("version", help="3, 3.13, 3.13.5 or 3.13t")

    p = sub.add_parser(
        "run",
        help="run a command with an interpreter's bin/ first on PATH (installed first if needed)",
        usage="relocpy run [VERSION] [--mirror M] [--no-build] -- COMMAND [ARGS...]",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="[VERSION] -- COMMAND [ARGS...]")

    p = sub.add_parser("pin", help="write .python-version (read by install, run, uv and pyenv)")
    p.add_argument("version", help="3, 3.13, 3.13.5 or 3.13t")

    p = sub.add_parser("cache", help="sizes of relocpy's caches per kind; prune or clean them")
    p.add_argument("--json", action="store_true", help="print JSON")
    cache_sub = p.add_subparsers(dest="cache_command", metavar="{prune,clean}")
    cache_sub.add_parser(
        "prune",
        help="remove what nothing uses: unpacked stores no install links to, downloaded"
        " archives, stale temporary files and old logs",
    )
    c = cache_sub.add_parser("clean", help="remove one kind of cache entirely")
    c.add_argument("kind", help="sources, libs, binaries, unpacked, archives, logs or roots")

    p = sub.add_parser("verify", help="audit an archive or tree and prove it runs after a move")
    p.add_argument("target", type=Path, help="an archive (.tar.gz/.tar.zst) or a tree")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--policy", help="e.g. manylinux_2_17 (default: the archive's own, or measured)")
    p.add_argument(
        "--forbid",
        action="append",
        default=[],
        metavar="PATH",
        help="a path no file may contain (repeatable)",
    )
    p.add_argument("--static-only", action="store_true", help="skip the runtime checks")
    p.add_argument(
        "--elf-table",
        type=Path,
        metavar="FILE",
        help="write readelf's reading of every ELF file (NEEDED, RUNPATH, highest GLIBC_) to"
        " FILE, as Markdown",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument(
        "--in-place",
        action="store_true",
        help="check an installed tree where it is (no copy, no move)",
    )
    p.add_argument(
        "--test-suite",
        nargs="?",
        const="auto",
        metavar="ARCHIVE",
        help="also run a subset of CPython's own tests from the moved tree "
        "(default: the -test_suite.tar.gz beside the archive)",
    )
    p.add_argument(
        "--distro",
        action="append",
        default=[],
        metavar="SUITE",
        help="also run the tree in a chroot of this Debian release (bullseye, bookworm, trixie, "
        "sid; repeatable; needs root and debootstrap)",
    )
    return parser


def print_report(report: VerifyReport, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"verify {report.target} (policy {report.policy})", show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        result = "[green]pass[/]" if check.ok else "[red]FAIL[/]"
        table.add_row(check.name, result, escape(check.detail))
    console.print(table)
    failed = sum(not c.ok for c in report.checks)
    console.print(f"{len(report.checks) - failed} passed, {failed} failed")


def _print_link(result: object) -> None:
    problem = getattr(result, "problem", None)
    if problem:
        print(f"warning: {problem}", file=sys.stderr)


def _interpreters(args: argparse.Namespace) -> int:
    from relocpy.install import trees as inst

    if args.command == "install":
        return _install(args)
    if args.command == "list":
        return _list(args)
    if args.command == "find":
        found = inst.find(args.version)
        print(json.dumps(inst.as_json(found), indent=2) if args.json else found.executable)
    elif args.command == "uninstall":
        for gone in inst.uninstall(args.version):
            print(f"removed {gone.key}")
    elif args.command == "pin":
        from relocpy.install.pinfile import write_pin

        print(write_pin(args.version))
    elif args.command == "cache":
        return _cache(args)
    return 0


def _requests(versions: list[str]) -> list[str]:
    """The versions asked for, or the one the nearest .python-version names."""
    if versions:
        return versions
    from relocpy.install.pinfile import find_pin

    pin = find_pin()
    if pin is None:
        raise RelocpyError(
            "no version given, and no .python-version here or above",
            hint="name one (relocpy install 3.13), or write one with `relocpy pin 3.13`",
        )
    return [pin.request]


def _install(args: argparse.Namespace) -> int:
    import dataclasses

    from relocpy.core.progress import console_reporter
    from relocpy.install.chain import plan, provide
    from relocpy.install.config import load_config

    mode = "no-build" if args.no_build else "build-only" if args.build_only else "auto"
    config = load_config()
    if args.build_opt:
        config = dataclasses.replace(
            config, build=dataclasses.replace(config.build, opt=args.build_opt)
        )
    for request in _requests(args.versions):
        if args.dry_run:
            chosen = plan(
                request, mirrors=args.mirror, mode=mode, config=config, reporter=console_reporter()
            )
            print("\n".join(chosen.describe()))
            continue
        done, _ = provide(
            request,
            mirrors=args.mirror,
            mode=mode,
            config=config,
            reporter=console_reporter(),
            links=not args.no_links,
        )
        if done.link is not None:
            _print_link(done.link)
        print(done.installation.executable)
    return 0


def _list(args: argparse.Namespace) -> int:
    from relocpy.install import trees as inst

    rows = [inst.as_json(i) for i in inst.installed()]
    available: list[dict[str, object]] = []
    notes: list[str] = []
    if args.available:
        from relocpy.core.home import binaries_dir
        from relocpy.core.records import RecordError
        from relocpy.install.config import load_config, mirrors_in_order
        from relocpy.install.selection import Machine, explain
        from relocpy.package.mirror import Mirror, MirrorError

        machine = Machine.current()
        sources = mirrors_in_order(args.mirror, load_config())
        if (binaries_dir() / "index.json").is_file():
            sources.append(str(binaries_dir()))
        for location in sources:
            try:
                entries = Mirror(location).entries()
            except (MirrorError, RecordError) as exc:
                notes.append(f"{location}: {exc.message}")
                continue
            for candidate in explain("3", entries, machine) + explain("3t", entries, machine):
                available.append(
                    {
                        "mirror": location,
                        "name": candidate.entry.name,
                        "version": candidate.entry.version,
                        "runs_here": candidate.eligible,
                        "why_not": candidate.why_not,
                    }
                )
    if args.json:
        print(json.dumps({"installed": rows, "available": available, "notes": notes}, indent=2))
        return 0
    for row in rows:
        print(f"{row['key']}  {row['executable']}")
    if not rows:
        print("no interpreters installed")
    for item in available:
        mark = "available" if item["runs_here"] else f"not here ({item['why_not']})"
        print(f"{mark}  {item['name']}  ({item['mirror']})")
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return 0


def _cache(args: argparse.Namespace) -> int:
    from relocpy.install import cachedirs

    if args.cache_command == "prune":
        freed = cachedirs.prune()
        print(f"pruned {freed.count} entries, {freed.bytes / 2**20:.1f} MiB freed")
        return 0
    if args.cache_command == "clean":
        freed = cachedirs.clean(args.kind)
        print(f"removed the {args.kind} cache, {freed.bytes / 2**20:.1f} MiB freed")
        return 0
    usage = cachedirs.usage()
    if args.json:
        print(json.dumps([u.as_dict() for u in usage], indent=2))
        return 0
    for item in usage:
        print(
            f"{item.kind:10} {item.bytes / 2**20:10.1f} MiB  {item.entries:6} entries  {item.path}"
        )
    print(f"{'total':10} {sum(u.bytes for u in usage) / 2**20:10.1f} MiB")
    return 0


def _split_run(rest: list[str]) -> tuple[list[str], list[str]]:
    """`[VERSION] [OPTIONS] -- CMD...` -> (the part before `--`, the command)."""
    if "--" in rest:
        cut = rest.index("--")
        return rest[:cut], rest[cut + 1 :]
    if rest and not rest[0].startswith("-"):  # `relocpy run 3.13 python -V`
        return rest[:1], rest[1:]
    return [], rest


def run_command(rest: list[str]) -> int:
    """`relocpy run`: exec COMMAND with the interpreter's bin/ first on PATH. Kept light (no
    argparse tree, no rich): an installed interpreter costs a few file reads."""
    head, cmd = _split_run(rest)
    parser = argparse.ArgumentParser(prog="relocpy run", add_help=False)
    parser.add_argument("version", nargs="?")
    parser.add_argument("--mirror", action="append", default=[])
    parser.add_argument("--no-build", action="store_true")
    options = parser.parse_args(head)
    if not cmd:
        raise RelocpyError("nothing to run", hint="relocpy run 3.13 -- python -c 'print(1)'")
    from relocpy.install import trees as inst

    [request] = _requests([options.version] if options.version else [])
    matches = inst.matching_installs(request)
    if matches:
        target = matches[0]
    else:
        from relocpy.core.progress import console_reporter
        from relocpy.install.chain import provide

        done, _ = provide(
            request,
            mirrors=options.mirror,
            mode="no-build" if options.no_build else "auto",
            reporter=console_reporter(),
        )
        target = done.installation
    env = dict(os.environ)
    env["PATH"] = f"{target.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    sys.stdout.flush()
    try:
        os.execvpe(cmd[0], cmd, env)
    except FileNotFoundError:
        print(f"error: {cmd[0]}: command not found (PATH starts with {target.root / 'bin'})",
              file=sys.stderr)  # fmt: skip
        return 127
    except OSError as exc:
        print(f"error: cannot run {cmd[0]}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached


def _stages(args: argparse.Namespace) -> int:
    """Verbs that build, repair, package or verify (they may run for minutes)."""
    from rich.console import Console
    from rich.table import Table

    from relocpy import pipeline
    from relocpy.core.progress import console_reporter
    from relocpy.install import releases
    from relocpy.verify.checks import test_suite_for, verify, verify_needs

    console = Console(highlight=False)
    reporter = console_reporter()
    if args.command == "matrix":
        return _matrix(args, console, reporter)
    if args.command == "pybi":
        from relocpy.package.pybi import install_pybi

        info = install_pybi(args.file, args.dest)
        print(f"installed CPython {info.version} into {args.dest}: {args.dest}/bin/python")
        return 0
    if args.command == "ci":
        from relocpy.matrix import ci
        from relocpy.matrix.run import plan_file

        planned = plan_file(args.file, args.cache)
        text = ci.generate(
            planned, str(args.file), args.cache, args.engine, args.setup or ci.DEFAULT_SETUP
        )
        if args.output:
            args.output.write_text(text)
            todo = sum(p.where != "registry" for p in planned)
            print(f"wrote {args.output}: {todo} of {len(planned)} specs to build")
        else:
            print(text, end="")
        return 0
    if args.command == "versions":
        rows = releases.versions(probe=not args.offline)
        if args.json:
            print(json.dumps([{**vars(r), "status": r.status} for r in rows], indent=2))
            return 0
        table = Table(title=f"CPython releases pinned by relocpy ({len(rows)})")
        for column in ("version", "status", "source served by", "cached", "built", "installed"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row.version + (" (pre-release)" if row.prerelease else ""),
                row.status,
                row.served_by or ("-" if not args.offline else "(not asked)"),
                "yes" if row.cached else "",
                "yes" if row.built else "",
                "yes" if row.installed else "",
            )
        console.print(table)
    elif args.command == "fetch":
        if args.file:
            path = pipeline.seed_cache(args.version, args.file)
        else:
            from relocpy.sources.catalog import resolve_cpython
            from relocpy.sources.fetch import fetch

            path = fetch(resolve_cpython(args.version), reporter=reporter)
        print(path)
    elif args.command == "build":
        result = pipeline.build(
            args.version,
            args.out,
            opt=args.opt,
            jobs=args.jobs,
            build_tag=args.build_tag,
            reporter=reporter,
            keep_work=args.keep_work,
            toolchain=args.toolchain,
            glibc=args.glibc,
            libs=args.libs,
            readline=args.readline,
            march=args.march,
            cflags=tuple(args.cflags.split()),
            free_threaded=args.free_threaded,
            pgo_training=args.pgo_training,
            pie=args.pie,
            pybi=args.pybi,
            pgo_profile=args.pgo_profile,
            bolt=args.bolt,
            target=args.target,
            build_python=args.build_python,
            static=args.static,
            also_needs=tuple(verify_needs()) if args.verify else (),
        )
        for path in (result.archives.gz, result.archives.zst, result.archives.metadata, result.log):
            print(path)
        if result.pgo_profile is not None:
            print(result.pgo_profile)
        if args.verify:
            report = verify(result.archives.gz, reporter=reporter)
            print_report(report, console)
            return 0 if report.ok else 1
    elif args.command == "repair":
        from relocpy.elf.policy import get_policy
        from relocpy.repair.relocate import repair

        policy = get_policy(args.policy) if args.policy else None
        outcome = repair(args.prefix, args.out, policy=policy, reporter=reporter)
        print(
            f"repaired {outcome.tree.version} into {outcome.tree.root}: "
            f"{len(outcome.grafted)} libraries grafted, "
            f"{len(outcome.text_files)} text files and "
            f"{len(outcome.binary_files)} binaries rewritten, "
            f"{outcome.recompiled} bytecode files recompiled"
        )
    elif args.command == "mirror":
        from relocpy.package.mirror import write_index

        if args.directory.startswith("oci://"):
            from relocpy.matrix.bincache import OciBinaryCache

            names = OciBinaryCache(args.directory).reindex()
            print(f"indexed {len(names)} archives in {args.directory}")
        else:
            entries = write_index(Path(args.directory), args.base_url)
            print(f"indexed {len(entries)} archives in {args.directory}")
    elif args.command == "verify":
        from relocpy.verify.distro import known_suite, verify_in_distro

        suites = [known_suite(suite) for suite in args.distro]  # fail before the long work
        from relocpy.core.preflight import require

        require(verify_needs(not args.static_only), f"verify {args.target}")
        report = verify(
            args.target,
            policy=args.policy,
            forbid=tuple(args.forbid),
            runtime=not args.static_only,
            reporter=reporter,
            keep=args.keep,
            in_place=args.in_place,
            test_suite=(
                None
                if args.test_suite is None
                else test_suite_for(args.target)
                if args.test_suite == "auto"
                else Path(args.test_suite)
            ),
        )
        if args.elf_table:
            args.elf_table.write_text(report.elf_table)
        reports = [report]
        reports += [verify_in_distro(args.target, suite, reporter) for suite in suites]
        if args.json and suites:
            print(json.dumps([json.loads(r.to_json()) for r in reports], indent=2))
        elif args.json:
            print(report.to_json())
        else:
            for each in reports:
                print_report(each, console)
        return 0 if all(r.ok for r in reports) else 1
    return 0


def _matrix(args: argparse.Namespace, console: Console, reporter: Reporter) -> int:
    from rich.markup import escape
    from rich.table import Table

    from relocpy.matrix import run as matrixbuild

    if args.matrix_command == "plan":
        planned = matrixbuild.plan_file(args.file, args.cache, args.mirror, args.only)
        if args.json:
            print(json.dumps([p.as_dict() for p in planned], indent=2))
            return 0
        table = Table(title=f"{args.file}: {len(planned)} specs")
        for column in ("#", "spec", "hash", "cache"):
            table.add_column(column)
        for number, each in enumerate(planned, 1):
            table.add_row(str(number), escape(each.spec.label), each.digest[:16], each.where)
        console.print(table)
        return 0
    if args.libraries_only:
        chosen = matrixbuild.plan_file(args.file, args.cache, args.mirror, args.only)
        count = matrixbuild.build_libraries_only(chosen, reporter)
        print(f"the libraries of {count} of {len(chosen)} specs are in the library cache")
        return 0
    outcomes = matrixbuild.build_file(
        args.file,
        args.cache,
        args.mirror,
        parallel=args.parallel,
        verify=args.verify,
        reporter=reporter,
        only=args.only,
    )
    if args.json:
        print(json.dumps([o.as_dict() for o in outcomes], indent=2))
    else:
        table = Table(title=f"{args.file}: {len(outcomes)} specs")
        for column in ("spec", "hash", "result", "time", "archive or log"):
            table.add_column(column, overflow="fold")
        for o in outcomes:
            where = o.entry.archive if o.entry else str(o.log)
            result = (
                o.status if o.status != "failed" else f"[red]failed[/]: {escape(o.error or '')}"
            )
            table.add_row(
                escape(o.planned.spec.label),
                o.planned.digest[:16],
                result,
                f"{o.seconds:.0f} s",
                escape(where),
            )
        console.print(table)
    return 0 if all(o.status != "failed" for o in outcomes) else 1


class _Terminated(KeyboardInterrupt):
    """SIGTERM, told apart from Ctrl-C for the exit status (143 against 130)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def _crash_report(exc: BaseException) -> str:
    """Write the traceback of an unexpected exception to a log file; return its path."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    try:
        from relocpy.core.home import cache_dir

        logs = cache_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"crash-{os.getpid()}.log"
        path.write_text(text)
    except OSError:
        fd, name = tempfile.mkstemp(prefix="relocpy-crash-", suffix=".log")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        path = Path(name)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if argv[:1] == ["run"]:  # the fast path: no parser tree, no rich
            return run_command(argv[1:])
        args = _parser().parse_args(argv)
        if args.command in ("install", "list", "find", "uninstall", "pin", "cache"):
            return _interpreters(args)
        return _stages(args)
    except RelocpyError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except _Terminated:
        print("error: terminated; nothing half-made was left in place", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-made was left in place", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line, keep the traceback in a file
        where = _crash_report(exc)
        print(f"error: relocpy failed unexpectedly: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"hint: this is a bug in relocpy; the traceback is in {where}", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
