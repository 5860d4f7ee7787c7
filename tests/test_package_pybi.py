"""PyBI (PEP 711): what `write_pybi` writes follows the PEP's rules, the reader installs it,
and refuses a .pybi that breaks them; a real interpreter runs from its installed .pybi."""

from __future__ import annotations

import csv
import email.parser
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from relocpy.cli import main
from relocpy.core.tree import clean_env
from relocpy.package.archives import include_in_install_only
from relocpy.package.pybi import (
    PybiError,
    install_pybi,
    read_info,
    wheel_tags,
    write_pybi,
)


def small_tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    exe = root / "bin" / "python3.13"
    exe.write_text("#!/bin/sh\necho small\n")
    exe.chmod(0o755)
    (root / "bin" / "python3").symlink_to("python3.13")
    (root / "lib" / "python3.13" / "test").mkdir(parents=True)
    (root / "lib" / "python3.13" / "os.py").write_text("# os\n")
    (root / "lib" / "python3.13" / "test" / "test_os.py").write_text("# left out\n")
    return root


def write(tmp_path: Path, build: str = "20260101") -> Path:
    root = small_tree(tmp_path / "tree")
    out = tmp_path / "out"
    out.mkdir()
    return write_pybi(
        root,
        out,
        version="3.13.15",
        glibc=(2, 17),
        include=lambda rel: include_in_install_only(rel, "3.13"),
        mtime=1767225600,
        build=build,
    )


def test_the_pybi_follows_pep_711(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert path.name == "cpython-3.13.15-20260101-manylinux_2_17_x86_64.pybi"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        meta = email.parser.Parser().parsestr(archive.read("pybi-info/METADATA").decode())
        pybi = email.parser.Parser().parsestr(archive.read("pybi-info/PYBI").decode())
        record = list(csv.reader(io.StringIO(archive.read("pybi-info/RECORD").decode())))
        link = archive.getinfo("bin/python3")
        assert (link.external_attr >> 16) & 0xF000 == 0xA000  # Info-Zip symlink
        assert archive.read(link) == b"python3.13"
    assert "lib/python3.13/test/test_os.py" not in names  # install_only's content
    assert (pybi["Pybi-Version"], pybi["Tag"], pybi["Build"]) == (
        "1.0", "manylinux_2_17_x86_64", "20260101"
    )  # fmt: skip
    assert (meta["Name"], meta["Version"]) == ("cpython", "3.13.15")
    for forbidden in ("Requires-Dist", "Provides-Extra", "Requires-Python"):
        assert forbidden not in meta
    markers = json.loads(meta["Pybi-Environment-Marker-Variables"])
    assert markers["python_full_version"] == "3.13.15" and markers["python_version"] == "3.13"
    assert "platform_release" not in markers and "platform_version" not in markers
    paths = json.loads(meta["Pybi-Paths"])
    assert paths["scripts"] == "bin" and paths["purelib"] == "lib/python3.13/site-packages"
    tags = meta.get_all("Pybi-Wheel-Tag")
    assert tags[:3] == ["cp313-cp313-PLATFORM", "cp313-abi3-PLATFORM", "cp313-none-PLATFORM"]
    assert tags[-1] == "py30-none-any" and "py3-none-any" in tags
    rows = {r[0]: r[1:] for r in record}
    assert rows["bin/python3"] == ["symlink=python3.13", ""]
    assert rows["bin/python"] == ["symlink=python3.13", ""]  # `{scripts}/python` must exist
    assert rows["pybi-info/RECORD"] == ["", ""]
    assert set(rows) == set(names)
    # the same inputs give the same bytes
    again = write(tmp_path / "again")
    assert again.read_bytes() == path.read_bytes()


def test_wheel_tags_of_a_free_threaded_build() -> None:
    tags = wheel_tags("3.13", free_threaded=True)
    assert tags[0] == "cp313-cp313t-PLATFORM" and not [t for t in tags if "abi3" in t]


def test_the_reader_installs_it(tmp_path: Path) -> None:
    path = write(tmp_path)
    info = install_pybi(path, tmp_path / "installed")
    assert info.version == "3.13.15" and info.paths["scripts"] == "bin"
    run = subprocess.run([tmp_path / "installed" / "bin" / "python"], capture_output=True)
    assert run.stdout == b"small\n"
    assert (tmp_path / "installed" / "bin" / "python3").readlink() == Path("python3.13")
    with pytest.raises(PybiError, match="exists"):
        install_pybi(path, tmp_path / "installed")
    assert main(["pybi", "install", str(path), str(tmp_path / "by-cli")]) == 0
    assert (tmp_path / "by-cli" / "pybi-info" / "METADATA").is_file()
    assert main(["pybi", "install", str(path), str(tmp_path / "by-cli")]) == 2  # exists


def rewrite(path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the .pybi whose members `change` edits: (ZipInfo, bytes) -> list of them."""
    out = path.parent / "bad" / path.name
    out.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            for new_item, data in change(item, src.read(item)):
                dst.writestr(new_item, data)
    return out


def _link(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    info.create_system = 3
    return info


def _record_add(data: bytes, *rows: str) -> bytes:
    return data + "".join(f"{r}\n" for r in rows).encode()


HOSTILE = {
    "a symlink out of the tree": lambda i, d: (
        [(i, d), (_link("bin/evil", "../../etc"), b"../../etc")]
        if i.filename == "bin/python3"
        else [(i, _record_add(d, "bin/evil,symlink=../../etc,"))]
        if i.filename == "pybi-info/RECORD"
        else [(i, d)]
    ),
    "an absolute symlink": lambda i, d: (
        [(i, d), (_link("bin/abs", "/etc/passwd"), b"/etc/passwd")]
        if i.filename == "bin/python3"
        else [(i, _record_add(d, "bin/abs,symlink=/etc/passwd,"))]
        if i.filename == "pybi-info/RECORD"
        else [(i, d)]
    ),
    "a file beneath a symlink": lambda i, d: (
        [(i, d), (zipfile.ZipInfo("bin/python3/x"), b"x")]
        if i.filename == "bin/python3"
        else [
            (
                i,
                _record_add(
                    d, "bin/python3/x,sha256=LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564,1"
                ),
            )
        ]
        if i.filename == "pybi-info/RECORD"
        else [(i, d)]
    ),
    "a path with ..": lambda i, d: (
        [(i, d), (zipfile.ZipInfo("../outside"), b"x")] if i.filename == "bin/python3" else [(i, d)]
    ),
    "a file changed after RECORD": lambda i, d: (
        [(i, b"# changed\n")] if i.filename == "lib/python3.13/os.py" else [(i, d)]
    ),
    "a file RECORD does not list": lambda i, d: (
        [(i, d), (zipfile.ZipInfo("lib/extra.py"), b"x")]
        if i.filename == "bin/python3"
        else [(i, d)]
    ),
    "Requires-Python in METADATA": lambda i, d: (
        [(i, d + b"Requires-Python: >=3\n")] if i.filename == "pybi-info/METADATA" else [(i, d)]
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_the_reader_refuses_what_pep_711_forbids(tmp_path: Path, kind: str) -> None:
    bad = rewrite(write(tmp_path), HOSTILE[kind])
    with pytest.raises(PybiError):
        install_pybi(bad, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dest")]
    assert not (tmp_path.parent / "outside").exists()


@pytest.mark.real
def test_a_real_interpreter_runs_from_its_installed_pybi(
    built_archive, built_tree, tmp_path: Path
) -> None:
    """The .pybi `relocpy build --pybi` wrote (in CI: the README's first command's) installs
    and runs."""
    path = built_archive.pybi
    assert path is not None and path.name == (
        f"cpython-{built_tree.version}-20260101-manylinux_2_17_x86_64.pybi"
    )
    info, record = read_info(path)
    assert info.marker_variables["python_full_version"] == built_tree.version
    dest = tmp_path / "pybi tree ü"
    install_pybi(path, dest)
    assert len(record) > 1000
    code = (
        "import json, ssl, sqlite3, sysconfig, sys;"
        "print(json.dumps([sys.prefix, sysconfig.get_paths()['purelib']]))"
    )
    result = subprocess.run(
        [dest / info.paths["scripts"] / "python", "-c", code],
        capture_output=True, text=True, env=clean_env(), check=True,
    )  # fmt: skip
    prefix, purelib = json.loads(result.stdout)
    assert prefix == str(dest) and purelib == str(dest / info.paths["purelib"])
