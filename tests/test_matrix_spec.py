"""Matrix files: expansion, named lists, exclude/include, and errors that name the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relocpy.cli import main
from relocpy.matrix.spec import MatrixError, MatrixSpec, expand, load_matrix, parse_matrix

ROOT = Path(__file__).resolve().parent.parent


def specs_of(text: str) -> list:
    return expand(parse_matrix(text, "m.toml"))


def error_of(text: str) -> str:
    with pytest.raises(MatrixError) as caught:
        specs_of(text)
    return str(caught.value)


def test_release_example_is_pgo_lto_for_glibc_217(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "plan", "--json", str(ROOT / "examples" / "release.toml")]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["spec"]["version"][:4] for r in listed) == ["3.11", "3.13", "3.9."]
    for row in listed:
        spec = row["spec"]
        assert (spec["opt"], spec["toolchain"], spec["glibc"]) == ("pgo+lto", "gcc", "2.17")
        assert spec["pie"] is False and row["label"].endswith("no-pie")


def test_seed_example_plans_24_specs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "plan", "--json", str(ROOT / "examples" / "matrix-seed.toml")]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 24
    assert len({row["hash"] for row in listed}) == 24  # every spec is a different build
    combos = {
        (
            r["spec"]["version"],
            r["spec"]["toolchain"],
            tuple(r["spec"]["cflags"]),
            r["spec"]["march"],
        )
        for r in listed
    }
    assert len(combos) == 24
    assert {r["spec"]["version"] for r in listed} == {"3.9.2", "3.11.2", "3.13.15"}
    assert all(r["cache"] == "missing" for r in listed)
    gcc = [r for r in listed if r["spec"]["toolchain"] == "gcc"]
    assert all(r["spec"]["glibc"] is None for r in gcc)  # gcc builds for this host's glibc


def test_product_exclude_include_and_lists() -> None:
    specs = specs_of(
        """
[lists]
new = ["3.11", "3.13"]
[matrix]
versions = "@new"
opt = ["noopt", "lto"]
[defaults]
toolchain = "gcc"
[[exclude]]
version = "3.11"
opt = "lto"
[[include]]
version = "3.9"
toolchain = "gcc"
libs = "host"
"""
    )
    labels = [s.label for s in specs]
    assert labels == [
        "3.11.2 noopt gcc host-glibc x86-64",
        "3.13.15 noopt gcc host-glibc x86-64",
        "3.13.15 lto gcc host-glibc x86-64",
        "3.9.2 noopt gcc host-glibc x86-64 host-libs",
    ]


def test_duplicates_collapse_and_defaults_apply() -> None:
    specs = specs_of(
        '[matrix]\nversion = ["3.13"]\n[defaults]\nmarch = "x86-64-v3"\n'
        '[[include]]\nversion = "3.13"\nmarch = "x86-64-v3"\n'
    )
    assert len(specs) == 1
    assert specs[0].march == "x86-64-v3" and specs[0].arch == "x86_64_v3"


def test_pgo_training_is_an_axis_of_profile_guided_specs() -> None:
    specs = specs_of(
        '[matrix]\nversion = ["3.11"]\npgo_training = ["pgo", "extended"]\n'
        '[defaults]\nopt = "pgo+lto"\ntoolchain = "gcc"\nglibc = "2.17"\n'
    )
    assert [s.pgo_training for s in specs] == ["pgo", "extended"]
    assert specs[1].label.endswith("extended-training") and "training" not in specs[0].label
    assert specs[1].as_dict()["pgo_training"] == "extended"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[matrix]\nversion = ["3.13"]\ncompiler = ["gcc"]\n', 3, "unknown axis 'compiler'"),
        ('[matrix]\nversion = ["3.13", "3.7"]\n', 2, "unknown CPython version '3.7'"),
        ('[matrix]\nversion = ["3.13"]\nopt = ["noopt", "lto"]\n', 3, "opt lto needs gcc"),
        ('[matrix]\nversion = ["3.13"]\nopt = []\n', 3, "product is empty"),
        (
            '[matrix]\nversion = ["3.13"]\ntoolchain = ["gcc"]\nglibc = ["2.17"]\nlibs = "host"\n',
            5,
            "conflicting values",
        ),
        ('[matrix]\nversion = ["3.13"]\n\n[defaults]\nversion = "3.11"\n', 5, "conflicting"),
        ('[matrix]\nversion = ["3.11"]\nfree_threaded = [true]\n', 3, "from CPython 3.13 on"),
        (
            '[matrix]\nversion = ["3.13"]\npgo_training = ["extended"]\n',
            3,
            "pgo_training extended trains a profile-guided build, and opt noopt is not",
        ),
        ('[matrix]\nversion = ["3.13"]\npgo_training = ["all"]\n', 3, "unknown pgo_training"),
        ('[matrix]\nversion = ["3.13"]\npie = ["no"]\n', 3, "pie is true or false, not 'no'"),
        ('[matrix]\nversion = "@nope"\n', 2, "unknown list '@nope'"),
        (
            '[matrix]\nversion = ["3.13"]\n[[exclude]]\nversion = "3.13"\n',
            3,
            "every combination is excluded",
        ),
        ('[matrix]\nversion = ["3.13"]\n[[exclude]]\nopt = "lto"\n', 4, "does not have"),
        ('[matrix]\nversion = ["3.13"]\ncflags = [["-march=native"]]\n', 3, "march axis"),
        ('[matrix]\nversion = ["3.13"]\nglibc = ["2.5"]\n', 3, "glibc floor '2.5'"),
        ('[matrix]\nversion = ["3.13"]\nmarch = ["pentium"]\n', 3, "unknown march"),
        ('[matrix]\nversion = ["3.13", "3.13.15"]\n', 2, "twice"),
        ('[matrix]\nversion = [3.13 x]\nopt = "lto"\n', 2, "not valid TOML"),
        ("[matrix]\n", None, "no [matrix] table"),
        ('[matrix]\nversion = ["3.13"]\n[extras]\nx = 1\n', 3, "unknown table [extras]"),
        ('opt = ["pgo"]\n[matrix]\nversion = ["3.13"]\n', 1, "'opt' outside a table"),
    ],
)
def test_errors_name_the_line_and_problem(text: str, line: int | None, words: str) -> None:
    message = error_of(text)
    assert words in message, message
    if line is not None:
        assert f"m.toml:{line}" in message or f"line {line}" in message, message


def test_cli_reports_a_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[matrix]\nversion = ["3.13"]\nspeed = ["fast"]\n')
    assert main(["matrix", "plan", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad}:3: unknown axis 'speed'" in err
    assert "hint: known axes:" in err
    assert main(["matrix", "plan", str(tmp_path / "absent.toml")]) == 2
    assert "no matrix file at" in capsys.readouterr().err


def test_load_matrix_reads_examples() -> None:
    for path in (ROOT / "examples").glob("matrix-*.toml"):
        assert load_matrix(path), path


def test_a_huge_matrix_is_refused_at_once_with_its_count() -> None:
    flags = ", ".join(f'["-DX{i}"]' for i in range(100))
    levels = '["x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"]'
    text = (
        '[matrix]\nversion = ["3.9", "3.11", "3.13"]\nopt = ["noopt", "lto", "pgo", "pgo+lto"]\n'
        f'toolchain = ["gcc"]\ncflags = [{flags}]\nmarch = {levels}\n'
        'readline = ["libedit", "readline"]\nglibc = ["2.17", "2.28", "2.34"]\n'
    )
    with pytest.raises(MatrixError, match="has 28,800 combinations") as caught:
        specs_of(text)
    assert "3 version × 4 opt × 100 cflags × 4 march × 2 readline × 3 glibc" in str(caught.value)
    assert "split it into several files" in (caught.value.hint or "")


def test_a_spec_maps_onto_the_build_functions_arguments() -> None:
    """Every axis reaches `pipeline.build` by one mapping, under the parameter's own name."""
    import inspect

    from relocpy.pipeline import build, build_libraries_for

    spec = MatrixSpec("3.13.15", "pgo+lto", "gcc", "2.17", cflags=("-O2",), pie=False)
    options = spec.build_options()
    assert set(options) <= set(inspect.signature(build).parameters)
    # (as_dict names `static` only where it is set, keeping older specs' hashes)
    fields = set(spec.as_dict()) - {"version"} | {"static"}
    assert set(options) == fields  # nothing left out
    assert options["pie"] is False and options["cflags"] == ("-O2",)
    libraries = spec.library_options()
    assert set(libraries) <= set(inspect.signature(build_libraries_for).parameters)
    assert all(libraries[k] == options[k] for k in libraries)


def test_clang_bolt_specs_default_to_glibc_217_and_need_pgo() -> None:
    specs = specs_of(
        '[matrix]\nversion = ["3.13"]\n\n[defaults]\nopt = "pgo+lto"\ntoolchain = "clang"\n'
        "bolt = true\n"
    )
    assert len(specs) == 1
    spec = specs[0]
    assert (spec.toolchain, spec.glibc, spec.bolt) == ("clang", "2.17", True)
    assert spec.label.endswith("bolt") and spec.build_options()["bolt"] is True
    assert spec.as_dict()["bolt"] is True
    # BOLT trains on the PGO run, and rewrites what lld links
    for defaults in ('opt = "lto"\ntoolchain = "clang"', 'opt = "pgo+lto"\ntoolchain = "gcc"'):
        text = f'[matrix]\nversion = ["3.13"]\n\n[defaults]\n{defaults}\nbolt = true\n'
        assert "bolt needs toolchain clang and a profile-guided opt" in error_of(text)


def test_target_axis_expands_names_and_refuses_native_only_options() -> None:
    specs = specs_of(
        '[matrix]\nversion = ["3.13.5"]\n'
        'target = ["x86_64-linux-gnu", "aarch64-unknown-linux-gnu"]\n'
    )
    assert [s.target for s in specs] == ["x86_64-linux-gnu", "aarch64-linux-gnu"]
    assert [s.arch for s in specs] == ["x86_64", "aarch64"]
    assert specs[1].label.endswith("aarch64-linux-gnu") and not specs[0].cross
    assert specs[1].build_options()["target"] == "aarch64-linux-gnu"
    assert specs[0].build_options()["target"] is None
    assert specs[0].as_dict()["target"] == "x86_64-linux-gnu"  # the spec hash covers it
    gcc = '[matrix]\nversion = "3.13.5"\ntarget = "aarch64-linux-gnu"\ntoolchain = "gcc"\n'
    assert "cross-compiled with zig" in error_of(gcc)
    assert "unknown target 'mips-linux-gnu'" in error_of(
        '[matrix]\nversion = "3.13.5"\ntarget = "mips-linux-gnu"\n'
    )


def test_static_axis_goes_with_musl_targets_only() -> None:
    """static = true needs a musl target; a musl target without it is the dynamic flavour."""
    (spec,) = specs_of(
        '[matrix]\nversion = "3.13.5"\ntarget = "x86_64-linux-musl"\nstatic = true\n'
    )
    options = spec.build_options()
    assert options["static"] is True and options["target"] == "x86_64-linux-musl"
    assert options["glibc"] is None  # musl has no glibc floor
    assert spec.label.endswith("x86_64-linux-musl static") and "glibc" not in spec.label
    assert spec.as_dict()["static"] is True
    glibc_static = '[matrix]\nversion = "3.13.5"\nstatic = true\n'
    assert "a static build takes musl" in error_of(glibc_static)
    (dynamic,) = specs_of('[matrix]\nversion = "3.13.5"\ntarget = "x86_64-linux-musl"\n')
    assert dynamic.build_options()["static"] is False and "static" not in dynamic.as_dict()
