"""Package: the reproducible archives and their metadata, and mirrors that serve them."""
