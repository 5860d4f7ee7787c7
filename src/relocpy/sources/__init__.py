"""Pinned sources: the catalog of CPython releases, and fetching verified tarballs from
the cache, upstream URLs or Debian's archive."""
