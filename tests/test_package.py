from __future__ import annotations

import pytest

from relocpy.package import archive_stem, include_in_install_only
from relocpy.policy import get_policy, policy_for_glibc


def test_archive_stem_matches_python_build_standalone() -> None:
    stem = archive_stem("3.13.5", "20260101", triple="x86_64-unknown-linux-gnu")
    assert stem == "cpython-3.13.5+20260101-x86_64-unknown-linux-gnu-install_only"


@pytest.mark.parametrize(
    ("rel", "included"),
    [
        ("lib/python3.13/test", False),
        ("lib/python3.13/test/test_os.py", False),
        ("lib/python3.13/testing.py", True),
        ("lib/libpython3.13.a", False),
        ("lib/python3.13/config-3.13-x86_64-linux-gnu/libpython3.13.a", False),
        ("lib/libpython3.13.so.1.0", True),
        ("lib/python3.13/idlelib/idle_test/__pycache__", False),
        ("lib/python3.13/unittest/test/__pycache__", False),
        ("lib/python3.13/__pycache__", True),
        ("lib/python3.13/idlelib/idle_test/htest.py", True),
    ],
)
def test_install_only_filter(rel: str, included: bool) -> None:
    assert include_in_install_only(rel, "3.13") is included


def test_policies() -> None:
    assert get_policy("manylinux2014").glibc_max == (2, 17)
    assert policy_for_glibc((2, 17)).name == "manylinux_2_17"
    assert policy_for_glibc((2, 18)).name == "manylinux_2_28"
    assert not get_policy("manylinux_2_17").allows_library("libssl.so.3")
    assert get_policy("manylinux_2_17").allows_library("libc.so.6")
    with pytest.raises(Exception, match="known policies"):
        get_policy("manylinux_9_99")
