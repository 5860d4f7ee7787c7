"""Child processes that must not outlive relocpy (`relocpy.core.children`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from relocpy.core.children import dies_with_us


def test_a_child_dies_with_the_process_that_started_it() -> None:
    """A killed install must leave no GNU tar or cp writing on into its temporary directory
    (which the next install removes): they run under `setpriv --pdeathsig KILL`."""
    assert dies_with_us(), "util-linux's setpriv is on every supported machine"
    code = (
        "import subprocess, time\n"
        "from relocpy.core.children import dies_with_us\n"
        "child = subprocess.Popen([*dies_with_us(), 'sleep', '60'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    # setpriv arms the signal, then runs the program: a parent killed before that (the first
    # millisecond) leaves it alive, so wait for `sleep` (a tar or cp then has its input's end
    # or 30 ms of work left)
    comm = Path(f"/proc/{child}/comm")
    deadline = time.monotonic() + 10
    while comm.read_text().strip() != "sleep":
        assert time.monotonic() < deadline, "setpriv did not run its program"
        time.sleep(0.01)
    parent.kill()
    parent.wait()
    stat = Path(f"/proc/{child}/stat")
    deadline = time.monotonic() + 10
    while stat.exists() and stat.read_text().split(") ")[-1][0] != "Z":  # gone, or a zombie
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
