"""Primitives every stage uses: errors, state directories, progress, external JSON,
checksums, running commands, the preflight, safe archives, the interpreter tree and the pure
text fix-ups of sysconfig data, Makefiles, pkg-config files and shebangs."""
