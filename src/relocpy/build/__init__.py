"""Building: toolchains (zig, gcc with a glibc sysroot, the host's), third-party
libraries from their recipes, and CPython itself."""
