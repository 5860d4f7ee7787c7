"""Build matrices: specs and their expansion, the content-addressed binary cache, and
building what it lacks."""
