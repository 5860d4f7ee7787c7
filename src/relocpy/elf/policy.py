"""manylinux policies (data in `policies.json`): host libraries and glibc versions a tree may use.

Pure lookups; deciding what to graft or flag is done by the callers.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache

from relocpy.core.errors import RelocpyError


@dataclass(frozen=True)
class Policy:
    name: str
    glibc_max: tuple[int, int]
    lib_whitelist: frozenset[str]

    def allows_library(self, soname: str) -> bool:
        return soname in self.lib_whitelist

    def allows_glibc(self, version: tuple[int, ...] | None) -> bool:
        return version is None or tuple(version) <= self.glibc_max


# musl trees: no glibc symbol at all. A static tree needs no library; a dynamic one only musl's
# (libc.so is both its loader and its C library, named by its soname).
MUSL_POLICIES = (
    Policy("static", (0, 0), frozenset()),
    Policy("musllinux_1_2", (0, 0), frozenset({"libc.so"})),
)


@cache
def all_policies() -> tuple[Policy, ...]:
    from importlib import resources  # (3 ms, with tempfile: not at every `relocpy install`)

    text = resources.files("relocpy.elf").joinpath("policies.json").read_text(encoding="utf-8")
    policies = []
    for entry in json.loads(text)["policies"]:
        policy = Policy(entry["name"], tuple(entry["glibc_max"]), frozenset(entry["lib_whitelist"]))
        policies.append(policy)
        policies += [
            Policy(alias, policy.glibc_max, policy.lib_whitelist) for alias in entry["aliases"]
        ]
    return (*policies, *MUSL_POLICIES)


def get_policy(name: str) -> Policy:
    """A policy by name. PEP 600 names one for every glibc (`manylinux_2_27`); one that
    policies.json does not list takes the whitelist of the nearest listed one below it (the
    lowest glibc zig gives riscv64 is 2.27, ppc64le's 2.19)."""
    for policy in all_policies():
        if policy.name == name:
            return policy
    found = re.fullmatch(r"manylinux_(\d+)_(\d+)", name)
    if found:
        glibc = (int(found[1]), int(found[2]))
        listed = sorted(
            (p for p in all_policies() if p.name.startswith("manylinux_")),
            key=lambda p: p.glibc_max,
        )
        below = [p for p in listed if p.glibc_max <= glibc]
        if below and glibc <= listed[-1].glibc_max:  # not past every known glibc
            return Policy(name, glibc, below[-1].lib_whitelist)
    known = ", ".join(p.name for p in all_policies())
    raise RelocpyError(f"unknown policy {name!r}; known policies: {known}")


def host_glibc() -> tuple[int, int]:
    """The glibc version of the running system (`os.confstr`), e.g. (2, 36)."""
    value = os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.17"
    major, minor = value.split()[-1].split(".")[:2]
    return int(major), int(minor)


def policy_for_glibc(version: tuple[int, ...] | None) -> Policy:
    """The strictest policy whose glibc ceiling admits `version` (the lowest one if None)."""
    ordered = sorted(
        (p for p in all_policies() if p.name.startswith("manylinux_")),
        key=lambda p: p.glibc_max,
    )
    for policy in ordered:
        if policy.allows_glibc(version):
            return policy
    assert version is not None  # None is admitted by every policy
    ceiling = (version[0], version[1])
    return Policy(f"manylinux_{ceiling[0]}_{ceiling[1]}", ceiling, ordered[-1].lib_whitelist)
