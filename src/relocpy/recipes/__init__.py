"""Declarative build knowledge: configure flags per CPython version and build option."""
