"""relocpy: console scripts that pip writes into this tree keep working after a move.

`site` imports this module at every start, so it only registers a function for the end of the
process, which imports `_relocpy_scripts` if pip ran. (A `.pth` file did this before: it made
every start of 3.13 about 5% slower, since `site` decodes .pth files with a codec it must
import first.) `relocpy repair` writes this file again; a prefix with a sitecustomize of its
own gets a `.pth` file instead.
"""

import atexit
import sys


def _relocpy_scripts_at_exit():
    if "pip" in sys.modules:  # (the hook's own `at_exit` decides the rest)
        import _relocpy_scripts

        _relocpy_scripts.at_exit()


atexit.register(_relocpy_scripts_at_exit)
