"""relocpy: make CPython relocatable on Linux.

Build it from pinned sources, repair any installed prefix, verify it after a move, package it.
"""

__version__ = "0.1.0"
