"""A moved self-contained tree at a terminal and on a display: line editing and Tk.

The REPL runs under a pseudo-terminal with TERM=xterm-256color; Tk under Xvfb. Both use only the
tree's own ncurses, libedit, Tcl/Tk and Xlib, and the script libraries found next to the tree.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from relocpy.core.tree import clean_env


def _drive_repl(python: Path, keys: list[bytes], env: dict[str, str]) -> str:
    pid, fd = pty.fork()
    if pid == 0:  # child: the interpreter on the terminal
        os.execve(str(python), [str(python), "-q", "-i"], env)
    output = b""

    def read_for(seconds: float) -> None:
        nonlocal output
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    return

    read_for(3)
    for key in keys:
        os.write(fd, key)
        read_for(1)
    os.write(fd, b"exit()\r")
    read_for(2)
    os.waitpid(pid, 0)
    return output.decode(errors="replace")


@pytest.mark.real
@pytest.mark.parametrize("basic_repl", [True, False], ids=["readline-repl", "pyrepl"])
def test_repl_line_editing(built_tree, basic_repl: bool) -> None:
    env = {**clean_env(), "TERM": "xterm-256color"}
    if basic_repl:
        env["PYTHON_BASIC_REPL"] = "1"  # 3.13's classic REPL: line editing by libedit
    # pyrepl switches the terminal to keypad mode (terminfo smkx), where xterm's arrow keys
    # send ESC O A rather than ESC [ A; each REPL gets what a real xterm would send it.
    up, left = (b"\x1b[A", b"\x1b[D") if basic_repl else (b"\x1bOA", b"\x1bOD")
    keys = [
        b"6*7\r",  # 42
        up + b"\r",  # up arrow recalls 6*7 -> 42 again
        b"12\x7f3+100\r",  # backspace: 13+100 -> 113
        b"2000" + left + left + b"9\r",  # left twice, insert: 20900
    ]
    text = _drive_repl(built_tree.executable, keys, env)
    assert text.count("42") >= 2, text
    assert "113" in text and "20900" in text, text


@pytest.mark.real
def test_tkinter_finds_its_scripts_after_a_move(built_tree, tmp_path: Path) -> None:
    xvfb = shutil.which("Xvfb")
    assert xvfb, "Xvfb is installed by scripts/setup"
    moved = tmp_path / "moved Tk ü" / "python"
    shutil.copytree(built_tree.root, moved, symlinks=True)
    display = ":73"
    server = subprocess.Popen(
        [xvfb, display, "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(2)
        code = (
            "import tkinter; root = tkinter.Tk(); "
            "tkinter.Label(root, text='relocated').pack(); root.update(); "
            "print(root.tk.eval('info library')); print(root.tk.eval('set tk_library')); "
            "root.destroy()"
        )
        env = {**clean_env(), "DISPLAY": display}
        result = subprocess.run(
            [str(moved / "bin" / "python3"), "-c", code], capture_output=True, text=True, env=env
        )
    finally:
        server.terminate()
        server.wait()
    assert result.returncode == 0, result.stderr
    tcl_library, tk_library = result.stdout.splitlines()
    assert Path(tcl_library).resolve() == (moved / "lib" / "tcl8.6").resolve()
    assert Path(tk_library).resolve() == (moved / "lib" / "tk8.6").resolve()
