"""relocpy: console scripts that pip writes into this tree's bin/ keep working after a move.

pip writes `#!/absolute/path/bin/python3.X` (or, for long paths, a /bin/sh line that execs that
path). When a process that used pip ends, such scripts in this tree's own bin/ get relocpy's
/bin/sh trampoline instead, which runs the interpreter beside the script wherever the tree is.
(uv reads `relocatable = true` in the tree's pyvenv.cfg and writes such scripts itself.)
Installed as `_relocpy_scripts.py` by `relocpy build` and `relocpy repair`, beside the
`sitecustomize.py` (runtime/sitecustomize.py) that calls `at_exit` when the process ends; in a
prefix that has a sitecustomize of its own, a `.pth` file calls `register` instead.
"""

import atexit
import os
import sys


def _trampoline(executable, flags):
    return (
        "#!/bin/sh\n"
        "'''exec' \"$(dirname -- \"$(readlink -f -- \"$0\")\")/" + executable + '"' + flags
        + ' "$0" "$@"\n'
        "' '''\n"
    ).encode()  # fmt: skip


def _relocatable(content, bin_dirs, executable):
    """`content` with an absolute first line that names an interpreter in `bin_dirs` replaced,
    or None when it names none."""
    first, _, rest = content.partition(b"\n")
    if first.startswith(b"#!/bin/sh") and rest.startswith(b"'''exec' "):
        line, _, after = rest.partition(b"\n")
        target = line[len(b"'''exec' ") :].split(b'"')
        path = target[1] if len(target) > 2 else b""
        if after.startswith(b"' '''\n"):
            after = after[len(b"' '''\n") :]
        flags = b""
    elif first.startswith(b"#!"):
        words = first[2:].strip().split(b" ", 1)
        path, flags, after = words[0], (b" " + words[1] if len(words) > 1 else b""), rest
    else:
        return None
    head, _, name = path.rpartition(b"/")
    if head not in bin_dirs or not name.startswith(b"python"):
        return None
    return _trampoline(executable, flags.decode("utf-8", "replace")) + after


def fix_scripts(prefix=None):
    """Rewrite absolute interpreter lines of the scripts in `prefix`/bin; return their names."""
    prefix = prefix or sys.prefix
    bin_dir = os.path.join(prefix, "bin")
    real = os.path.realpath(bin_dir)
    bin_dirs = {os.fsencode(bin_dir), os.fsencode(real)}
    suffix = "t" if "t" in getattr(sys, "abiflags", "") else ""
    executable = f"python{sys.version_info[0]}.{sys.version_info[1]}{suffix}"
    fixed = []
    try:
        names = os.listdir(bin_dir)
    except OSError:
        return fixed
    for name in names:
        path = os.path.join(bin_dir, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            if os.path.getsize(path) > 1 << 20:
                continue
            with open(path, "rb") as handle:
                content = handle.read()
            new = _relocatable(content, bin_dirs, executable)
            if new is None:
                continue
            mode = os.stat(path).st_mode & 0o7777
            tmp = path + ".relocpy-tmp"
            with open(tmp, "wb") as handle:
                handle.write(new)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
            fixed.append(name)
        except OSError:
            continue
    return fixed


def at_exit():
    # Only the tree itself (a venv made from it has its own bin/ and pyvenv.cfg), and only
    # after pip ran in this process.
    if "pip" in sys.modules and sys.prefix == sys.base_prefix:
        fix_scripts()


def register():
    atexit.register(at_exit)
