"""ELF files: reading (pyelftools), writing (patchelf), resolving NEEDED as the loader
would, and the manylinux policies."""
