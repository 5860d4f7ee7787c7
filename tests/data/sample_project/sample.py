"""A tiny library whose tests run under tox and nox with relocpy-installed interpreters."""


def mean(values):
    values = list(values)
    if not values:
        raise ValueError("mean of nothing")
    return sum(values) / len(values)
