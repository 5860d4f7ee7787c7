"""Hostile tar archives for the extraction tests: a seeded generator that mixes the known tricks,
and the sandbox check that nothing outside the destination changed.

A case is plain data, a list of members (`{"type": "file"|"dir"|"sym"|"hard", "name": ...,
"target": ..., "data": ..., "pax": {...}}`), so the cases found are kept as JSON
(`data/hostile-corpus.json`) and rebuilt byte for byte.

Members aim at `../outside/`: the sandbox is `box/outside` (canaries) beside `box/dest`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
from pathlib import Path

TOP = "python"
CORPUS = Path(__file__).parent / "data" / "hostile-corpus.json"

Member = dict[str, object]


def write_case(members: list[Member], path: Path, fmt: int = tarfile.PAX_FORMAT) -> Path:
    """The members as a tar archive (gzip-compressed when `path` ends in .gz)."""
    mode = "w:gz" if path.name.endswith(".gz") else "w"
    with tarfile.open(path, mode, format=fmt) as tar:
        for member in members:
            info = tarfile.TarInfo(str(member["name"]))
            kind = member["type"]
            data = str(member.get("data", "")).encode()
            info.mtime = 1700000000
            if kind == "file":
                info.size = len(data)
                info.mode = 0o644
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(member["target"])
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(member["target"])
            pax = member.get("pax")
            if isinstance(pax, dict):
                info.pax_headers = {str(k): str(v) for k, v in pax.items()}
            tar.addfile(info, io.BytesIO(data) if kind == "file" else None)
    return path


# ---- tricks: each returns members; together they are one archive ------------------------------


def _spell(rng: random.Random, name: str) -> str:
    """The same path spelt another way: `./` inside, doubled slashes, a trailing slash."""
    parts = name.split("/")
    out = []
    for part in parts:
        out.append(part)
        roll = rng.random()
        if roll < 0.15:
            out.append(".")
        elif roll < 0.25:
            out.append("")
    spelt = "/".join(out)
    if rng.random() < 0.2:
        spelt = "./" + spelt
    return spelt


def link_chain(rng: random.Random) -> list[Member]:
    """The issue's chain: a deep link up to the top, a second link through it that climbs
    further, and a file written through the second."""
    depth = rng.randint(2, 22)
    dirs = "/".join(f"d{i}" for i in range(1, depth + 1))
    deep = f"{TOP}/{dirs}/u"
    up = "../" * (depth + rng.choice([0, 1]))
    climb = f"{dirs}/u/" + "../" * (depth + rng.randint(0, 3))
    via = rng.choice(["w", "./w", "w/", "sub/../w"]) if rng.random() < 0.5 else "w"
    name = f"{TOP}/{via}".replace("sub/../", "")
    return [
        {"type": "sym", "name": deep, "target": up},
        {"type": "sym", "name": _spell(rng, name), "target": climb},
        {"type": "file", "name": f"{TOP}/w/outside/PWNED-chain", "data": "chain"},
        {"type": "file", "name": f"{TOP}/w/box/outside/PWNED-chain2", "data": "chain"},
    ]


def link_then_write(rng: random.Random) -> list[Member]:
    """A link out, then a file, a directory or a link written through it."""
    name = f"{TOP}/{rng.choice(['l', 'lib/x', 'a/b/c'])}"
    target = "../" * rng.randint(1, 6) + rng.choice(["outside", "box/outside", ""])
    after = rng.choice(["file", "dir", "sym"])
    inner = _spell(rng, f"{name}/PWNED-through")
    member: Member = {"type": after, "name": inner, "data": "x", "target": "../../outside"}
    return [{"type": "sym", "name": _spell(rng, name), "target": target}, member]


def hard_link_to_link(rng: random.Random) -> list[Member]:
    """A symlink out, a hard link to the symlink, then a file written at the hard link."""
    return [
        {"type": "sym", "name": f"{TOP}/s", "target": "../../outside/canary"},
        {"type": "hard", "name": f"{TOP}/h", "target": _spell(rng, f"{TOP}/s")},
        {"type": "file", "name": f"{TOP}/h", "data": "PWNED-hard"},
        {"type": "hard", "name": f"{TOP}/h2", "target": rng.choice(["../outside/canary", "/etc"])},
    ]


def link_replaces_directory(rng: random.Random) -> list[Member]:
    """A directory, then a link of the same name (or the reverse), then a file inside."""
    name = f"{TOP}/{rng.choice(['lib', 'x/y'])}"
    link: Member = {"type": "sym", "name": _spell(rng, name), "target": "../../../outside"}
    directory: Member = {"type": "dir", "name": _spell(rng, name)}
    pair = [directory, link] if rng.random() < 0.5 else [link, directory]
    return [*pair, {"type": "file", "name": f"{name}/PWNED-replaced", "data": "x"}]


def duplicate_members(rng: random.Random) -> list[Member]:
    """A name twice: a link then a file (tar's "last one wins" writes through the link)."""
    name = f"{TOP}/bin/python3"
    return [
        {"type": "file", "name": name, "data": "first"},
        {"type": "sym", "name": _spell(rng, name), "target": "../../../outside/canary"},
        {"type": "file", "name": _spell(rng, name), "data": "PWNED-duplicate"},
    ]


def long_names(rng: random.Random) -> list[Member]:
    """Names past ustar's 100 bytes (GNU long name or PAX path), with `..` far in, and a
    component longer than a file name may be."""
    filler = "/".join("n" * rng.randint(20, 60) for _ in range(rng.randint(3, 8)))
    back = "../" * (filler.count("/") + 3)
    return [
        {"type": "file", "name": f"{TOP}/{filler}/{back}outside/PWNED-long", "data": "x"},
        {"type": "file", "name": f"{TOP}/{'z' * rng.randint(256, 400)}", "data": "x"},
        {"type": "sym", "name": f"{TOP}/{filler}/l", "target": back + "outside"},
    ]


def pax_overrides(rng: random.Random) -> list[Member]:
    """PAX headers that rename a harmless-looking member or its link target."""
    return [
        {
            "type": "file",
            "name": f"{TOP}/ok",
            "data": "x",
            "pax": {"path": rng.choice(["../outside/PWNED-pax", "/tmp/relocpy-fuzz-PWNED-abs"])},
        },
        {
            "type": "sym",
            "name": f"{TOP}/okl",
            "target": "fine",
            "pax": {"linkpath": "../" * rng.randint(1, 4) + "outside"},
        },
        {"type": "file", "name": f"{TOP}/okl/PWNED-paxlink", "data": "x"},
    ]


def benign(rng: random.Random) -> list[Member]:
    """What a real tree has: files, directories, and links that stay inside."""
    return [
        {"type": "dir", "name": f"{TOP}/bin"},
        {"type": "file", "name": f"{TOP}/bin/python3.13", "data": "#!/bin/sh\n"},
        {"type": "sym", "name": f"{TOP}/bin/python3", "target": "python3.13"},
        {"type": "sym", "name": f"{TOP}/lib/up", "target": "../bin"},
        {"type": "file", "name": f"{TOP}/lib/a.py", "data": "a"},
    ][: rng.randint(1, 5)]


TRICKS = (
    link_chain,
    link_then_write,
    hard_link_to_link,
    link_replaces_directory,
    duplicate_members,
    long_names,
    pax_overrides,
)


def generate(seed: int) -> list[Member]:
    """One hostile archive: benign members and one to three tricks, shuffled a little."""
    rng = random.Random(seed)
    members = benign(rng)
    for trick in rng.sample(TRICKS, rng.randint(1, 3)):
        members += trick(rng)
    if rng.random() < 0.3:  # order matters to an extractor: links before or after their use
        i, j = rng.randrange(len(members)), rng.randrange(len(members))
        members[i], members[j] = members[j], members[i]
    return members


# ---- the sandbox ------------------------------------------------------------------------------


def make_box(root: Path) -> Path:
    """`root/box` with `outside/` (canaries) beside where archives go (`dest`)."""
    box = root / "box"
    (box / "outside").mkdir(parents=True)
    (box / "outside" / "canary").write_text("canary")
    return box


def snapshot(box: Path, skip: Path) -> dict[str, str]:
    """Every path under `box` but `skip`, with what it is (file hash, link target, dir)."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(box):
        here = Path(dirpath)
        if here == skip or skip in here.parents:
            dirnames[:] = []
            continue
        for name in [*dirnames, *filenames]:
            path = here / name
            if path == skip:
                continue
            rel = str(path.relative_to(box))
            if path.is_symlink():
                state[rel] = "link " + os.readlink(path)
            elif path.is_file():
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                state[rel] = "dir"
    return state


def escaping_links(dest: Path) -> list[str]:
    """Links under `dest` whose target resolves outside it."""
    real = os.path.realpath(dest)
    out = []
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                resolved = os.path.realpath(path)
                if resolved != real and not resolved.startswith(real + os.sep):
                    out.append(f"{path} -> {os.readlink(path)}")
    return out


def load_corpus() -> list[dict[str, object]]:
    return json.loads(CORPUS.read_text())


def case_format(case: dict[str, object]) -> int:
    """The tar format a corpus case was found in (its `format`: "pax" or "gnu")."""
    return tarfile.PAX_FORMAT if case["format"] == "pax" else tarfile.GNU_FORMAT


def issue_chain() -> list[Member]:
    """Issue 19's archive: a link up 21 levels, a link `./w` through it up 20 more, and a file
    written through `w` (it wrote /tmp/x/outside/PWNED as root before the fix)."""
    dirs = "/".join(f"d{i}" for i in range(1, 21))
    return [
        {"type": "sym", "name": f"{TOP}/{dirs}/u", "target": "../" * 21},
        {"type": "sym", "name": f"{TOP}/./w", "target": f"{dirs}/u/" + "../" * 20},
        {"type": "file", "name": f"{TOP}/w/tmp/relocpy-x/outside/PWNED", "data": "x"},
    ]
