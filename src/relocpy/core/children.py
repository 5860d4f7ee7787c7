"""Child processes that must not outlive relocpy.

A GNU tar or cp left running by a killed install would go on writing into a temporary
directory that the next install is removing, and a directory could survive it.
"""

from __future__ import annotations

import functools
import shutil
import subprocess


@functools.cache
def dies_with_us() -> list[str]:
    """A command prefix that kills the program it runs when this process dies (util-linux's
    `setpriv --pdeathsig KILL`), or none where setpriv lacks it (looked up once)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return []
    try:
        done = subprocess.run([setpriv, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [setpriv, "--pdeathsig", "KILL"] if "--pdeathsig" in done.stdout else []
