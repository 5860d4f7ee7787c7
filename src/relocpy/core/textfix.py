"""Text and byte fix-ups that make an installed prefix independent of its location.

Pure functions over file contents: the placeholder prefix `/install` (the convention that
python-build-standalone and uv use) stands for "wherever the tree lives now".
"""

from __future__ import annotations

import ast
import pprint
import re
import shlex

PLACEHOLDER = "/install"
SYSCONFIG_HEADER = "# system configuration generated and used by the sysconfig module\n"

# Variables that name the C compiler/linker a user's extension build will run.
COMPILER_VARS = ("CC", "CXX", "LDSHARED", "LDCXXSHARED", "BLDSHARED", "LINKCC", "CPP", "MAINCC")
_DEFAULT_COMPILERS = {"CXX": "c++", "LDCXXSHARED": "c++", "CPP": "cc"}

# Runs inside the shipped `_sysconfigdata_*.py`: maps the placeholder to `sys.base_prefix` when
# the module is imported. uv and similar tools read the dict literal above it as data and drop
# this tail when they rewrite the file with absolute paths, which is also correct.
_SYSCONFIG_TAIL = """

# relocpy: values above name the installation prefix as {placeholder!r}; point them at the place
# this interpreter lives now, so sysconfig follows the tree wherever it is moved.
def _relocpy_relocate(values, placeholder={placeholder!r}):
    import sys
    here = sys.base_prefix
    if here == placeholder:
        return
    for key, value in values.items():
        if isinstance(value, str) and placeholder in value:
            pieces = value.split(placeholder)
            out = pieces[0]
            for piece in pieces[1:]:
                boundary = piece[:1] in ("", "/", " ", ":", "'", '"')
                out += (here if boundary else placeholder) + piece
            values[key] = out


_relocpy_relocate(build_time_vars)
del _relocpy_relocate
"""


class SysconfigFormatError(ValueError):
    """A `_sysconfigdata_*.py` that is not a plain `build_time_vars = {...}` literal."""


def parse_sysconfigdata(text: str) -> dict[str, str | int]:
    """The `build_time_vars` literal of a `_sysconfigdata_*.py` file (code after it ignored)."""
    match = re.search(r"^build_time_vars\s*=\s*", text, re.MULTILINE)
    if not match:
        raise SysconfigFormatError("no `build_time_vars = {...}` assignment")
    start = match.end()
    # The literal ends at the first top-level line that starts a new statement.
    tree = None
    end_candidates = [m.start() for m in re.finditer(r"^\S", text[start:], re.MULTILINE)]
    for end in [*end_candidates[1:], len(text) - start]:
        try:
            tree = ast.literal_eval(text[start : start + end].strip())
            break
        except (SyntaxError, ValueError):
            continue
    if not isinstance(tree, dict):
        raise SysconfigFormatError("`build_time_vars` is not a dict literal")
    return tree


def replace_path(value: str, old: str, new: str) -> str:
    """Replace `old` where it is a whole path or a leading path component in `value`."""
    if not old:
        return value
    pattern = re.escape(old) + r"(?=[/\s:'\"]|$)"
    return re.sub(pattern, lambda _m: new, value)


# after a space, or after the `=` of a Makefile assignment (CONFIGURE_CFLAGS_NODIST=-ff…)
_PREFIX_MAP = re.compile(r"(?:^|(?<=[\s=]))-f(?:file|debug|macro|profile)-prefix-map=\S*\s?")


def strip_prefix_maps(value: str) -> str:
    """Drop `-ffile-prefix-map=OLD=NEW` (and its debug/macro/profile kin) from a flags string:
    they name the build machine's directories and mean nothing to an extension's build."""
    return _PREFIX_MAP.sub("", value)


def strip_prefix_link_flags(value: str, prefix: str) -> str:
    """Drop `-L`, `-I` and rpath flags that point into `prefix` from a flags string.

    A user's extension finds the tree's headers through INCLUDEPY and its libraries through
    $ORIGIN; these flags would bake the current location into what the user builds, and break
    once the location contains a space.
    """
    try:
        tokens = shlex.split(value)
    except ValueError:
        return value
    inside = (prefix, f"{prefix}/lib", f"{prefix}/include")
    kept = []
    for token in tokens:
        target = None
        for flag in ("-L", "-I", "-Wl,-rpath,", "-Wl,-rpath=", "-Wl,-R", "-R"):
            if token.startswith(flag):
                target = token[len(flag) :]
                break
        if target is not None and target.rstrip("/") in inside:
            continue
        kept.append(token)
    if len(kept) == len(tokens):
        return value
    return " ".join(shlex.quote(t) if t and " " in t else t for t in kept)


# Variables that name a build tool, possibly by absolute path; and those whose tool paths are
# rewritten: these and CONFIG_ARGS, which repeats the CC=/AR=... that configure was given.
TOOL_VARS = (*COMPILER_VARS, "AR", "RANLIB", "LLVM_AR", "LLVM_PROFDATA")
_NAMING_TOOLS = (*TOOL_VARS, "CONFIG_ARGS")


def tool_dirs(values: dict[str, str | int], prefix: str) -> tuple[str, ...]:
    """Directories that build tools were named in by absolute path (a toolchain's wrappers,
    `/usr/bin/gcc`), outside `prefix`; longest first."""
    found = set()
    for key in TOOL_VARS:
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        word = value.split()[0]
        directory = word.rsplit("/", 1)[0]
        if word.startswith("/") and directory and not (word + "/").startswith(prefix + "/"):
            found.add(directory)
    return tuple(sorted(found, key=len, reverse=True))


def drop_tool_dirs(value: str, dirs: tuple[str, ...]) -> str:
    """`/build/machine/bin/ar` -> `ar` for each of `dirs`: on another machine the tool is
    found on PATH by its name, and the build machine's directory means nothing there."""
    for directory in dirs:
        value = re.sub(re.escape(directory) + r"/(?=[^/\s'\"]+(?:[\s'\"]|$))", "", value)
    return value


def portable_compiler(key: str, value: str) -> str:
    """`/opt/zig/zig cc -target ...` -> `cc`; keep the arguments that are plain flags."""
    try:
        tokens = shlex.split(value)
    except ValueError:
        return value
    if not tokens:
        return value
    program = tokens[0]
    rest = tokens[1:]
    name = program.rsplit("/", 1)[-1]
    is_zig = name.startswith("zig")
    # a clang build names clang, which few hosts have: extension builds get the host's cc
    # (as uv rewrites python-build-standalone's sysconfig); the flags are gcc's as well
    is_clang = name.startswith("clang")
    if not is_zig and not is_clang and "/" not in program:
        return value
    if is_zig:
        # `zig cc -target x86_64-linux-gnu.2.17 ...`: drop the driver word and its target.
        if rest and rest[0] in ("cc", "c++"):
            rest = rest[1:]
        cleaned = []
        skip = False
        for token in rest:
            if skip:
                skip = False
                continue
            if token == "-target":
                skip = True
                continue
            if token.startswith("-target="):
                continue
            cleaned.append(token)
        rest = cleaned
    replacement = _DEFAULT_COMPILERS.get(key, "cc")
    if key == "CPP":
        return " ".join([replacement, *rest]) if "-E" in rest else f"{replacement} -E"
    return " ".join([replacement, *rest])


def relocate_sysconfig_vars(
    values: dict[str, str | int], prefix: str, build_dirs: tuple[str, ...] = ()
) -> dict[str, str | int]:
    """Map `prefix` and `build_dirs` to the placeholder and make compiler entries portable."""
    out: dict[str, str | int] = {}
    tools = tool_dirs(values, prefix)
    for key, value in values.items():
        if isinstance(value, str):
            value = strip_prefix_maps(value)
            if key in _NAMING_TOOLS:
                value = drop_tool_dirs(value, tools)
            if prefix != PLACEHOLDER:
                value = replace_path(value, prefix, PLACEHOLDER)
            for build_dir in build_dirs:
                value = replace_path(value, build_dir, PLACEHOLDER)
            if value.startswith("-") or " -" in value:  # a command line or a list of flags
                value = strip_prefix_link_flags(value, PLACEHOLDER)
            if key in COMPILER_VARS:
                value = portable_compiler(key, value)
        out[key] = value
    return out


def render_sysconfigdata(values: dict[str, str | int]) -> str:
    """A `_sysconfigdata_*.py` with the standard header, the literal, and the relocation tail."""
    body = pprint.pformat(values, indent=1, width=100, sort_dicts=True)
    return (
        SYSCONFIG_HEADER
        + f"build_time_vars = {body}\n"
        + _SYSCONFIG_TAIL.format(placeholder=PLACEHOLDER)
    )


def relocatable_sysconfigdata(text: str, prefix: str, build_dirs: tuple[str, ...] = ()) -> str:
    return render_sysconfigdata(
        relocate_sysconfig_vars(parse_sysconfigdata(text), prefix, build_dirs)
    )


def relocatable_makefile(text: str, prefix: str, build_dirs: tuple[str, ...] = ()) -> str:
    """`config-X.Y/Makefile`: prefix computed from the Makefile's own location by GNU make."""
    lines = []
    assigned = dict(re.findall(r"^(\w+)\s*=[ \t]*(\S[^\n]*)?$", text, re.MULTILINE))
    tools = tool_dirs(assigned, prefix)
    for line in text.splitlines(keepends=True):
        if re.match(r"^prefix\s*=", line):
            lines.append("prefix=\t\t$(abspath $(dir $(lastword $(MAKEFILE_LIST)))../../..)\n")
            continue
        name = re.match(r"^(\w+)\s*=", line)
        if name and name.group(1) in _NAMING_TOOLS:
            line = drop_tool_dirs(line, tools)
        if re.match(
            r"^(LDFLAGS|CONFIGURE_LDFLAGS|LDSHARED|BLDSHARED|LIBS|SHLIBS|CPPFLAGS|"
            r"CONFIGURE_CPPFLAGS|PY_LDFLAGS|PY_LDFLAGS_NOLTO|PY_CORE_LDFLAGS)\s*=",
            line,
        ):
            key, _, value = line.partition("=")
            line = key + "=" + " " + strip_prefix_link_flags(value.strip(), prefix) + "\n"
        line = replace_path(strip_prefix_maps(line), prefix, "$(prefix)")
        for build_dir in build_dirs:
            line = replace_path(line, build_dir, "$(prefix)")
        lines.append(line)
    return "".join(lines)


def relocatable_pkgconfig(text: str, prefix: str) -> str:
    """`lib/pkgconfig/*.pc`: prefix derived from the .pc file's own directory."""
    lines = []
    for line in text.splitlines(keepends=True):
        if re.match(r"^prefix\s*=", line):
            lines.append("prefix=${pcfiledir}/../..\n")
            continue
        lines.append(replace_path(line, prefix, "${prefix}"))
    return "".join(lines)


def python_config_script(version: str, config_dir_name: str) -> str:
    """`bin/pythonX.Y-config`: run python-config.py with the tree's interpreter, wherever it is."""
    return f"""#!/bin/sh
# relocpy: locate the tree from this script's real path; no absolute path is recorded.
self=$(readlink -f -- "$0" 2>/dev/null || realpath -- "$0")
bindir=$(dirname -- "$self")
exec "$bindir/python{version}" -E -s \\
  "$bindir/../lib/python{version}/{config_dir_name}/python-config.py" "$@"
"""


_STATIC_ONLY_L = re.compile(
    r"^(?P<indent>[ \t]+)if not getvar\('Py_ENABLE_SHARED'\):\n"
    r"(?P=indent)[ \t]+libs\.insert\(0, '-L' \+ getvar\('LIBPL'\)\)\n"
    r"(?!(?P=indent)else:)",
    re.MULTILINE,
)


def python_config_libdir(text: str) -> str:
    """python-config.py: `--ldflags` names the tree's lib/ for a shared libpython too.

    Upstream's Python helper gives -L only for static builds (the shell one always does); a
    relocatable tree's lib/ is on no linker's search path, so `--embed` links would fail.
    """

    def add_else(match: re.Match[str]) -> str:
        indent = match.group("indent")
        return (
            match.group(0)
            + f"{indent}else:  # relocpy: the tree's lib/, where libpython is\n"
            + f"{indent}    libs.insert(0, '-L' + getvar('LIBDIR'))\n"
        )

    return _STATIC_ONLY_L.sub(add_else, text, count=1)


_SHEBANG = re.compile(rb"^#!\s*(?P<path>\S+)(?P<args>[^\n]*)\n")


def rewrite_shebang(
    content: bytes, prefix: str, interpreter_names: set[str], executable: str
) -> bytes | None:
    """Replace an absolute `#!<prefix>/bin/python...` line by a relocatable sh trampoline.

    The trampoline runs `executable` (`python3.X`, which every tree has) from the script's own
    directory, whichever of `interpreter_names` the old line named. Returns None when `content`
    is not a script of this tree's interpreter.
    """
    match = _SHEBANG.match(content)
    if not match:
        return None
    path = match.group("path").decode(errors="replace")
    name = path.rsplit("/", 1)[-1]
    in_tree = path.startswith(prefix.rstrip("/") + "/") or path.startswith(PLACEHOLDER + "/")
    if not in_tree or name not in interpreter_names:
        return None
    args = match.group("args").decode(errors="replace").strip()
    flags = f" {args}" if args else ""
    # sh runs the first two lines; Python sees a string literal and ignores it.
    header = (
        "#!/bin/sh\n"
        f'\'\'\'exec\' "$(dirname -- "$(readlink -f -- "$0")")/{executable}"{flags} "$0" "$@"\n'
        "' '''\n"
    )
    return header.encode() + content[match.end() :]


def same_length_path(old: str, placeholder: str = PLACEHOLDER) -> str | None:
    """A path of exactly `old`'s length that names no part of `old` but its last component.

    `/root/.pyenv/versions/3.12.1` -> `/install//////////////3.12.1`. Compilers merge string
    literals that are suffixes of longer ones (PY_VERSION "3.12.1" may live at the end of the
    prefix string), so a binary edit must keep every byte after the replaced head in place; the
    last component is kept for that reason. Where the whole last component does not fit (a
    temporary directory right under /tmp), its longest tail that does is kept. None if `old` is
    too short to fit the placeholder and one character of it.
    """
    head, _, last = old.rstrip("/").rpartition("/")
    room = len(old) - len(placeholder) - 1  # one "/" at least
    if not head or room < 1:
        return None
    kept = last[-room:] if len(last) > room else last
    return placeholder + "/" * (len(old) - len(placeholder) - len(kept)) + kept


def replace_same_length(data: bytes, old: str, new: str) -> tuple[bytes, int]:
    """Replace `old` by the equally long `new`, as UTF-8 and as UTF-32LE (wchar_t) strings.

    Offsets and sizes inside the file stay unchanged, so ELF files, static archives and
    marshalled data remain valid. Returns the new bytes and the number of replacements.
    """
    if len(old) != len(new):
        raise ValueError("binary replacement must keep the length")
    count = 0
    for encoding in ("utf-8", "utf-32-le"):
        needle, replacement = old.encode(encoding), new.encode(encoding)
        found = data.count(needle)
        if found:
            data = data.replace(needle, replacement)
            count += found
    return data, count
