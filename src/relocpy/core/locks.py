"""Advisory file locks for the install path: fcntl.flock on a lock file, blocking.

The same lock filelock's UnixFileLock takes (flock on the file), so both can guard one file.
The install path uses this one because importing filelock costs 20-60 ms on this 2-core VM,
a fifth of a warm install; the build and cache code keeps filelock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the `with` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
