"""Verify: the static audit and the runtime proof after a move, in other Debian
releases, and with CPython's own tests."""
