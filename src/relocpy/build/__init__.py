"""Building: toolchains (zig; gcc or clang on a glibc sysroot; the host's), third-party
libraries from their recipes, CPython itself, its PGO profile and BOLT."""
