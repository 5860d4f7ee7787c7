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
from relocpy.errors import RelocpyError
from relocpy.recipes.cpython import OPT_LEVELS, PGO_TRAININGS

if TYPE_CHECKING:
    from rich.console import Console

    from relocpy.progress import Reporter
    from relocpy.verify import VerifyReport

# The stages are imported by the verbs that use them: `relocpy run` must start fast.


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relocpy", description=__doc__)
    parser.add_argument("--version", action="version", version=f"relocpy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("versions", help="list the CPython releases relocpy knows, and what is cached")

    p = sub.add_parser("fetch", help="download (or seed from --file) and verify a source tarball")
    p.add_argument("version")
    p.add_argument(
        "--file", type=Path, help="a local copy of the release tarball to verify and cache"
    )

    p = sub.add_parser("build", help="build a relocatable CPython and write its archives")
    p.add_argument("version", help="3, 3.13 or 3.13.5")
    p.add_argument(
        "--out", type=Path, default=Path("dist"), help="output directory (default: dist)"
    )
    p.add_argument("--opt", choices=OPT_LEVELS, default="noopt")
    p.add_argument("-j", "--jobs", type=int, default=None)
    p.add_argument("--build-tag", help="the +BUILD part of the archive name (default: YYYYMMDD)")
    p.add_argument("--verify", action="store_true", help="verify the archive after building it")
    p.add_argument("--keep-work", action="store_true", help="keep the build directory")
    p.add_argument(
        "--toolchain",
        choices=("zig", "gcc"),
        default="zig",
        help="zig (default) or gcc; with --glibc, gcc uses zig's glibc headers and stubs",
    )
    p.add_argument(
        "--glibc",
        help="the oldest glibc to run on (zig default: 2.17; gcc default: this host's)",
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
        "--pgo-training",
        choices=PGO_TRAININGS,
        default="pgo",
        help="what --opt pgo trains on: CPython's 44 --pgo tests (default, about 3 minutes)"
        " or the whole test suite (extended, as Debian does)",
    )
    p.add_argument(
        "--no-pie",
        dest="pie",
        action="store_false",
        help="link bin/python position-dependent, as Debian does: faster (about 3%% with"
        " pgo+lto), at the cost of address randomisation for the executable itself",
    )

    p = sub.add_parser("matrix", help="plan or build a matrix of interpreters (a TOML file)")
    matrix_sub = p.add_subparsers(dest="matrix_command", required=True)
    for verb, text in (
        ("plan", "list every spec of FILE, its hash, and whether the binary cache has it"),
        ("build", "build every spec the binary cache lacks (one failure does not stop the rest)"),
    ):
        m = matrix_sub.add_parser(verb, help=text)
        m.add_argument("file", type=Path)
        m.add_argument("--json", action="store_true")
        m.add_argument(
            "--cache",
            type=Path,
            help="binary cache directory, also a mirror (default: ~/.cache/relocpy/binaries)",
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

    p = sub.add_parser("repair", help="make an installed CPython prefix relocatable (copy)")
    p.add_argument("prefix", type=Path)
    p.add_argument("--out", type=Path, required=True, help="where the repaired tree is written")
    p.add_argument(
        "--policy", help="manylinux policy deciding what is grafted (default: host glibc)"
    )

    p = sub.add_parser("mirror", help="manage a mirror directory of interpreter archives")
    mirror_sub = p.add_subparsers(dest="mirror_command", required=True)
    m = mirror_sub.add_parser("index", help="write index.json and uv-downloads.json for DIR")
    m.add_argument("directory", type=Path)
    m.add_argument("--base-url", help="URL the directory is served at (default: its file:// URL)")

    mirror_help = "mirror directory or URL (default: $RELOCPY_MIRROR)"
    p = sub.add_parser("install", help="install interpreters from a mirror")
    p.add_argument("versions", nargs="+", metavar="VERSION")
    p.add_argument("--mirror", help=mirror_help)
    p.add_argument("--no-links", action="store_true", help="do not add pythonX.Y links")

    p = sub.add_parser("list", help="installed interpreters (and, with a mirror, available ones)")
    p.add_argument("--mirror", help=mirror_help)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("find", help="print the path of an installed interpreter")
    p.add_argument("version")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("uninstall", help="remove installed interpreters matching VERSION")
    p.add_argument("version")

    p = sub.add_parser("run", help="run a command with an interpreter (installed first if needed)")
    p.add_argument("version")
    p.add_argument("--mirror", help=mirror_help)
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")

    p = sub.add_parser("verify", help="audit an archive or tree and prove it runs after a move")
    p.add_argument("target", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--policy", help="e.g. manylinux_2_17 (default: the archive's own, or measured)")
    p.add_argument(
        "--forbid",
        action="append",
        default=[],
        metavar="PATH",
        help="a path no file may contain (repeatable)",
    )
    p.add_argument("--static-only", action="store_true", help="skip the runtime checks")
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


def _mirror(value: str | None) -> str:
    mirror = value or os.environ.get("RELOCPY_MIRROR")
    if not mirror:
        raise RelocpyError("no mirror given", hint="pass --mirror DIR_OR_URL or set RELOCPY_MIRROR")
    return mirror


def _interpreters(args: argparse.Namespace) -> int:
    from relocpy import install as inst

    def reporter() -> Reporter:
        from relocpy.progress import console_reporter

        return console_reporter()

    if args.command == "install":
        mirror = _mirror(args.mirror)
        for version in args.versions:
            done = inst.install(version, mirror, reporter=reporter(), links=not args.no_links)
            print(done.executable)
    elif args.command == "list":
        rows = [inst.as_json(i) for i in inst.installed()]
        available = []
        if args.mirror or os.environ.get("RELOCPY_MIRROR"):
            from relocpy.mirror import Mirror

            available = [e.name for e in Mirror(_mirror(args.mirror)).entries()]
        if args.json:
            print(json.dumps({"installed": rows, "available": available}, indent=2))
        else:
            for row in rows:
                print(f"{row['key']}  {row['executable']}")
            for name in available:
                print(f"available  {name}")
    elif args.command == "find":
        found = inst.find(args.version)
        print(json.dumps(inst.as_json(found), indent=2) if args.json else found.executable)
    elif args.command == "uninstall":
        for gone in inst.uninstall(args.version):
            print(f"removed {gone.key}")
    elif args.command == "run":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            raise RelocpyError("nothing to run", hint="relocpy run 3.13 -- python -c 'print(1)'")
        matches = inst.matching_installs(args.version)
        target = (
            matches[0]
            if matches
            else inst.install(args.version, _mirror(args.mirror), reporter=reporter())
        )
        env = dict(os.environ)
        env["PATH"] = f"{target.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        sys.stdout.flush()
        try:
            os.execvpe(cmd[0], cmd, env)
        except OSError as exc:
            raise RelocpyError(f"cannot run {cmd[0]}: {exc.strerror}") from exc
    return 0


def _stages(args: argparse.Namespace) -> int:
    """Verbs that build, repair, package or verify (they may run for minutes)."""
    from rich.console import Console
    from rich.table import Table

    from relocpy import pipeline
    from relocpy.progress import console_reporter
    from relocpy.verify import test_suite_for, verify

    console = Console(highlight=False)
    reporter = console_reporter()
    if args.command == "matrix":
        return _matrix(args, console, reporter)
    if args.command == "versions":
        table = Table(title="CPython releases")
        for column in ("version", "file", "sha256", "cached"):
            table.add_column(column)
        for row in pipeline.versions():
            table.add_row(
                row.version, row.filename, row.sha256[:16] + "…", "yes" if row.cached else "no"
            )
        console.print(table)
    elif args.command == "fetch":
        if args.file:
            path = pipeline.seed_cache(args.version, args.file)
        else:
            from relocpy.catalog import resolve_cpython
            from relocpy.sources import fetch

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
        )
        for path in (result.archives.gz, result.archives.zst, result.archives.metadata, result.log):
            print(path)
        if args.verify:
            report = verify(result.archives.gz, reporter=reporter)
            print_report(report, console)
            return 0 if report.ok else 1
    elif args.command == "repair":
        from relocpy.policy import get_policy
        from relocpy.repair import repair

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
        from relocpy.mirror import write_index

        entries = write_index(args.directory, args.base_url)
        print(f"indexed {len(entries)} archives in {args.directory}")
    elif args.command == "verify":
        from relocpy.distro import known_suite, verify_in_distro

        suites = [known_suite(suite) for suite in args.distro]  # fail before the long work
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

    from relocpy import matrixbuild

    if args.matrix_command == "plan":
        planned = matrixbuild.plan_file(args.file, args.cache, args.mirror)
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
    outcomes = matrixbuild.build_file(
        args.file,
        args.cache,
        args.mirror,
        parallel=args.parallel,
        verify=args.verify,
        reporter=reporter,
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


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if args.command in ("install", "list", "find", "uninstall", "run"):
            return _interpreters(args)
        return _stages(args)
    except RelocpyError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written to the output directory", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
