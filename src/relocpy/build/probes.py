"""Small artefacts the runtime checks feed to an interpreter: a wheel, a C extension, scripts.

Scripts run inside the interpreter under test, so they stay valid on every CPython 3.8+.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

PROBE_PACKAGE = "relocpy_probe"


def make_probe_wheel(directory: Path) -> Path:
    """A pure-Python wheel (`relocpy_probe-1.0-py3-none-any.whl`) built without any tool."""
    name, version = PROBE_PACKAGE, "1.0"
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"ANSWER = 42\n",
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: relocpy\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record_lines = []
    for path, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record_lines.append(f"{path},sha256={digest},{len(content)}")
    record_lines.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), content)
    return wheel


PROBE_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}

static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "add two ints"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "relocpy_cprobe", NULL, -1, methods};
PyMODINIT_FUNC PyInit_relocpy_cprobe(void) { return PyModule_Create(&module); }
"""

# The environment the interpreter was started with, as os.environ sees it and as a child started
# with the default environment sees it (both read the C library's `environ`); argv[1] names
# the variable to look for.
ENVIRONMENT = r"""
import json, os, subprocess, sys
mark = sys.argv[1]
child = subprocess.Popen([sys.executable, "-c", "import os; print(os.environ.get(%r, ''))" % mark],
                         stdout=subprocess.PIPE, universal_newlines=True)
print(json.dumps({"own": os.environ.get(mark, ""), "names": len(os.environ),
                  "child": child.communicate()[0].strip()}))
"""

# Compile PROBE_C the way distutils/setuptools do: with the compiler and flags sysconfig names.
BUILD_EXTENSION = r"""
import importlib, os, shlex, subprocess, sys, sysconfig
src, out_dir = sys.argv[1], sys.argv[2]
v = sysconfig.get_config_vars()
cc = shlex.split(os.environ.get("CC") or v["CC"])  # as setuptools: CC and LDSHARED win
cflags = shlex.split(v.get("CFLAGS") or "") + shlex.split(v.get("CCSHARED") or "")
obj = os.path.join(out_dir, "relocpy_cprobe.o")
ext = os.path.join(out_dir, "relocpy_cprobe" + v["EXT_SUFFIX"])
include = sysconfig.get_paths()["include"]
subprocess.check_call(cc + cflags + ["-I" + include, "-c", src, "-o", obj])
subprocess.check_call(shlex.split(os.environ.get("LDSHARED") or v["LDSHARED"]) + [obj, "-o", ext])
sys.path.insert(0, out_dir)
module = importlib.import_module("relocpy_cprobe")
assert module.add(2, 3) == 5
print("compiled with", cc[0], "against", include)
"""

# Report where the interpreter thinks it lives.
REPORT_LOCATIONS = r"""
import json, sys, sysconfig
v = sysconfig.get_config_vars()
keys = ["prefix", "exec_prefix", "BINDIR", "INCLUDEPY", "LIBDIR", "LIBPL", "LIBDEST",
        "CONFINCLUDEPY", "BINLIBDEST", "LIBPC"]
print(json.dumps({
    "sys.prefix": sys.prefix,
    "sys.base_prefix": sys.base_prefix,
    "sys.executable": sys.executable,
    "paths": sysconfig.get_paths(),
    "vars": {k: v.get(k) for k in keys},
    "compilers": {k: v.get(k) for k in ("CC", "CXX", "LDSHARED")},
}))
"""

# The probes below that import modules share this function: name -> why it failed.
_IMPORT_EACH = r"""
import importlib
def import_each(names):
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = "%s: %s" % (type(exc).__name__, exc)
    return failed
"""

# Import every named extension module; print the failures as JSON.
IMPORT_MODULES = (
    _IMPORT_EACH
    + r"""
import json, sys
print(json.dumps(import_each(sys.argv[1:])))
"""
)

# The modules built into the interpreter (a static build has all of them there), as JSON.
BUILTIN_MODULES = r"""
import json, sys
print(json.dumps(sorted(set(sys.builtin_module_names) - {"__main__"})))
"""

# Run as / of an empty root that holds only the tree: every built-in module imports, and the
# libraries behind them work (ssl makes a context, sqlite3 and decimal compute, ctypes calls
# into libffi). What the interpreter saw of its root is printed too.
EMPTY_ROOT = (
    _IMPORT_EACH
    + r"""
import json, os, sys, sysconfig
builtin = sorted(set(sys.builtin_module_names) - {"__main__"})
failed = import_each(builtin)
import ctypes, decimal, sqlite3, ssl, readline, curses, zlib, lzma, bz2, hashlib
work = {
    "ssl": ssl.create_default_context().protocol.name and ssl.OPENSSL_VERSION,
    "sqlite3": sqlite3.connect(":memory:").execute("select sqlite_version()").fetchone()[0],
    "decimal": str(decimal.Decimal(1) / decimal.Decimal(7))[:8],
    "ctypes": ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x * 2)(21),
    "zlib": len(zlib.compress(b"relocpy" * 100)),
    "sha256": hashlib.sha256(b"").hexdigest()[:8],
}
print(json.dumps({"failed": failed, "count": len(builtin),
                  "root": sorted(os.listdir("/")), "prefix": sys.prefix,
                  "stdlib": sysconfig.get_paths()["stdlib"], "work": work}))
"""
)

# Run in a root with only musl's loader, after pip installed the probe's musllinux wheel: every
# extension module given imports, and so does the wheel's; which musllinux tag pip accepted.
MUSL_ROOT = (
    _IMPORT_EACH
    + r"""
import json, os, sys
failed = import_each(sys.argv[1:])
import relocpy_cprobe
from pip._vendor.packaging import tags
best = next((str(t) for t in tags.sys_tags() if "musllinux" in str(t)), None)
print(json.dumps({"failed": failed, "count": len(sys.argv) - 1, "root": sorted(os.listdir("/")),
                  "add": relocpy_cprobe.add(2, 3), "file": relocpy_cprobe.__file__,
                  "best_tag": best}))
"""
)

# A free-threaded interpreter: is the GIL off, and does it stay off while every module given
# imports? (3.13t turns it back on, with a RuntimeWarning, for a C extension that does not
# declare Py_mod_gil.) The first module that turned it on is named.
FREE_THREADING = r"""
import importlib, json, sys, sysconfig, warnings
out = {"Py_GIL_DISABLED": sysconfig.get_config_var("Py_GIL_DISABLED"),
       "gil_at_start": sys._is_gil_enabled(), "enabled_by": None, "warning": None}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for name in sys.argv[1:]:
        try:
            importlib.import_module(name)
        except Exception:
            continue
        if sys._is_gil_enabled():
            out["enabled_by"] = name
            out["warning"] = str(caught[-1].message) if caught else None
            break
out["gil_at_end"] = sys._is_gil_enabled()
print(json.dumps(out))
"""

SSL_CONTEXT = r"""
import json, ssl
ctx = ssl.create_default_context()
paths = ssl.get_default_verify_paths()
print(json.dumps({"stats": ctx.cert_store_stats(), "cafile": paths.cafile,
                  "capath": paths.capath, "openssl": ssl.OPENSSL_VERSION}))
"""
