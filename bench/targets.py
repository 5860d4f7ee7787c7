"""One row per target and flavour, one column per check: issue 16's table, from real runs.

Usage:
  .venv/bin/python bench/targets.py LABEL=ARCHIVE [LABEL=ARCHIVE ...] [--out FILE]
e.g.
  .venv/bin/python bench/targets.py \\
      "x86_64 glibc=dist/cpython-3.13.15+T-x86_64-unknown-linux-gnu-install_only.tar.gz" \\
      "aarch64 glibc=dist-arm/cpython-3.13.15+T-aarch64-unknown-linux-gnu-install_only.tar.gz" \\
      "3.13t=dist-ft/cpython-3.13.15+T-x86_64-unknown-linux-gnu-freethreaded+install_only.tar.gz" \\
      "musl static=dist-musl/cpython-3.13.15+T-x86_64-unknown-linux-musl-static+install_only.tar.gz"

Each archive goes through `relocpy verify` (relocpy.verify.checks.verify): unpacked under a path
with a space and non-ASCII, audited (pyelftools and readelf), run (under qemu-user for another
CPU: the C extension is then compiled with Debian's cross gcc; a static build also runs alone
in an empty root, a dynamic musl build installs a musllinux wheel in a root with only musl's
loader), moved a second time and run again. A cell is `pass` or `FAIL: reason`; a
check that does not apply to the archive (the GIL check of a default build) is `-`. The table
goes to stdout and is appended to --out (default bench/results/targets.md), with each check's
full detail below it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import report

from relocpy.verify.checks import verify

HERE = Path(__file__).resolve().parent
# The columns: issue 16's checks, by the names `relocpy verify` gives them.
COLUMNS = {
    "starts": "starts",
    "extensions-import": "every extension imports",
    "ssl-ca-store": "ssl + CA store",
    "venv-pip": "venv + pip",
    "second-move-paths": "sysconfig after 2 moves",
    "c-extension": "C extension",
    "free-threading": "GIL off",
    "empty-root": "empty root (no libc)",
    "musl-root": "musllinux wheel, musl-only root",
    "binutils-audit": "readelf audit",
    "glibc": "glibc floor",
}


def _cell(check: object | None) -> str:
    if check is None:
        return "-"
    if check.ok and check.detail.startswith("skipped"):  # type: ignore[attr-defined]
        return "skipped: " + check.detail.split(": ", 1)[1].split(" (")[0][:60]  # type: ignore[attr-defined]
    if check.ok:  # type: ignore[attr-defined]
        return "pass"
    return f"FAIL: {check.detail[:80]}"  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archives", nargs="+", metavar="LABEL=ARCHIVE")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "targets.md")
    args = parser.parse_args()
    rows, details = [], []
    for item in args.archives:
        label, _, archive = item.partition("=")
        start = time.monotonic()
        result = verify(Path(archive))
        seconds = time.monotonic() - start
        checks = {c.name: c for c in result.checks}
        failed = [c.name for c in result.checks if not c.ok]
        rows.append(
            f"| {label} | "
            + " | ".join(_cell(checks.get(name)) for name in COLUMNS)
            + f" | {len(result.checks) - len(failed)}/{len(result.checks)} | {seconds:.0f} |"
        )
        details.append(f"\n### {label}: `{Path(archive).name}`\n")
        details += [f"- {c.name}: {'pass' if c.ok else 'FAIL'}: {c.detail}" for c in result.checks]
    lines = [
        "",
        "## bench/targets.py",
        "",
        "| target / flavour | " + " | ".join(COLUMNS.values()) + " | all checks | verify s |",
        "|---" * (len(COLUMNS) + 3) + "|",
        *rows,
        *details,
    ]
    report(args.out, "Targets and flavours (issue 16)", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
