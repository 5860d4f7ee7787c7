"""gcc and clang against zig's glibc 2.17 headers and stubs: old symbol versions, PGO, LTO,
BOLT, no host dirs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from relocpy.build.bolt import LINK_FLAGS as BOLT_LINK_FLAGS
from relocpy.build.bolt import BoltRun, bolt_executable
from relocpy.build.sysroot import clang_glibc_toolchain, gcc_glibc_toolchain, sysroot_identity
from relocpy.core.progress import QuietReporter
from relocpy.elf.patch import ElfPatcher
from relocpy.elf.read import read_elf

pytestmark = pytest.mark.real  # assembles the sysroot once (zig builds its glibc stubs)

LIBRARY = """#include <stdio.h>
#include <string.h>
int shout(const char *s) { char b[64]; strncpy(b, s, 63); b[63] = 0; return printf("%s!\\n", b); }
"""
PROGRAM = """#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
static void *work(void *arg) { return arg; }
int main(int argc, char **argv) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  pthread_t th; pthread_create(&th, 0, work, 0); pthread_join(th, 0);
  void *h = dlopen(argv[1], RTLD_NOW); if (!h) { puts(dlerror()); return 1; }
  int (*shout)(const char *) = (int (*)(const char *))dlsym(h, "shout");
  printf("%.3f\\n", exp((double)argc - 1));
  return shout("hi") > 0 ? 0 : 2;
}
"""


def test_gcc_builds_for_glibc_217_with_pgo_and_lto(tmp_path: Path) -> None:
    toolchain = gcc_glibc_toolchain("2.17")
    assert toolchain.name == "gcc" and toolchain.glibc == "2.17"
    assert toolchain.identity == sysroot_identity("2.17")
    (tmp_path / "shout.c").write_text(LIBRARY)
    (tmp_path / "main.c").write_text(PROGRAM)
    library = tmp_path / "libshout.so"
    cc = [toolchain.cc, "-O2"]
    subprocess.run(
        [*cc, "-fPIC", "-shared", "shout.c", "-o", str(library)], cwd=tmp_path, check=True
    )
    # a profile-generating build whose run writes the profile, then a PGO+LTO build using it;
    # a host -I/usr/include (as CPython's setup.py adds) must not reach the compiler
    link = ["main.c", "-o", "main", "-ldl", "-lm", "-lpthread", "-I/usr/include"]
    subprocess.run([*cc, "-fprofile-generate", *link], cwd=tmp_path, check=True)
    first = subprocess.run(["./main", str(library)], cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0 and first.stdout == "2.718\nhi!\n", first.stderr
    assert (tmp_path / "main.gcda").is_file()
    subprocess.run(
        [*cc, "-fprofile-use", "-Werror=missing-profile", "-flto", *link], cwd=tmp_path, check=True
    )
    second = subprocess.run(["./main", str(library)], cwd=tmp_path, capture_output=True, text=True)
    assert second.returncode == 0 and second.stdout == "2.718\nhi!\n", second.stderr
    for path in (library, tmp_path / "main"):
        info = read_elf(path)
        assert info is not None and info.max_glibc <= (2, 17), (path, info)
        assert not [n for n in info.needed if n.startswith("libgcc_s")]


def test_static_libraries_link_without_naming_libpthread(tmp_path: Path) -> None:
    """A static library that uses threads and dlopen (libcrypto.a, libsqlite3.a) links with
    just its own -l, as it does with zig: configure checks such as CPython's OpenSSL and SQLite
    ones pass."""
    toolchain = gcc_glibc_toolchain("2.17")
    (tmp_path / "threads.c").write_text(PROGRAM.replace("int main(", "int run_threads("))
    (tmp_path / "main.c").write_text(
        "int run_threads(int, char **);\n"
        "int main(int c, char **v) { return c > 9 ? run_threads(c, v) : 0; }\n"
    )
    subprocess.run([toolchain.cc, "-c", "threads.c"], cwd=tmp_path, check=True)
    subprocess.run(["ar", "rcs", "libthreads.a", "threads.o"], cwd=tmp_path, check=True)
    # -lm before the library, as CPython's configure puts a library's flags in LDFLAGS
    subprocess.run(
        [toolchain.cc, "-lm", "main.c", "-o", "main", "-L.", "-lthreads"], cwd=tmp_path, check=True
    )
    info = read_elf(tmp_path / "main")
    assert info is not None and {"libpthread.so.0", "libdl.so.2"} <= set(info.needed)
    assert subprocess.run(["./main"], cwd=tmp_path).returncode == 0


def test_clang_builds_for_glibc_217_with_pgo_thinlto_and_bolt(tmp_path: Path) -> None:
    """clang-19 against the same sysroot: PGO (llvm-profdata of its own release), ThinLTO
    through lld, then BOLT's three steps on the linked program; the result needs glibc 2.17
    and still runs after patchelf gives it a RUNPATH, as repair does."""
    toolchain = clang_glibc_toolchain("2.17")
    assert toolchain.name == "clang" and toolchain.glibc == "2.17"
    assert toolchain.identity == sysroot_identity("2.17", "clang")
    assert toolchain.identity != sysroot_identity("2.17")
    env = {**os.environ, **toolchain.env()}
    (tmp_path / "shout.c").write_text(LIBRARY)
    (tmp_path / "main.c").write_text(PROGRAM)
    library = tmp_path / "libshout.so"
    cc = [toolchain.cc, "-O2"]
    # -Werror as configure's flag checks use it: the link flags must not reach compiles
    subprocess.run(
        [*cc, "-Werror", "-fPIC", "-c", "shout.c", "-o", "shout.o"], cwd=tmp_path, check=True
    )
    subprocess.run([*cc, "-shared", "shout.o", "-o", str(library)], cwd=tmp_path, check=True)
    link = ["main.c", "-o", "main", "-ldl", "-lm", "-lpthread", "-I/usr/include", "-no-pie"]
    subprocess.run([*cc, "-fprofile-instr-generate", *link], cwd=tmp_path, check=True)
    first = subprocess.run(
        ["./main", str(library)], cwd=tmp_path, capture_output=True, text=True,
        env={**env, "LLVM_PROFILE_FILE": str(tmp_path / "main-%p.profraw")},
    )  # fmt: skip
    assert first.returncode == 0 and first.stdout == "2.718\nhi!\n", first.stderr
    raw = sorted(tmp_path.glob("main-*.profraw"))
    assert raw, "the instrumented program wrote no profile"
    subprocess.run(
        [env["LLVM_PROFDATA"], "merge", "-o", "main.profdata", *map(str, raw)],
        cwd=tmp_path, check=True,
    )  # fmt: skip
    subprocess.run(
        [*cc, "-fprofile-instr-use=main.profdata", "-Werror=profile-instr-missing",
         "-flto=thin", f"-Wl,{BOLT_LINK_FLAGS.removeprefix('-Wl,')}", *link],
        cwd=tmp_path, check=True,
    )  # fmt: skip
    program = tmp_path / "main"
    log = tmp_path / "bolt.log"
    run = BoltRun(tmp_path, log, QuietReporter(), env)
    fdata = bolt_executable(run, program, [str(library)])
    assert fdata.is_file() and fdata.stat().st_size > 0
    assert (tmp_path / "main.prebolt").is_file()
    assert "BOLT-INFO" in log.read_text()
    assert program.read_bytes() != (tmp_path / "main.prebolt").read_bytes()
    info = read_elf(program)
    assert info is not None and info.max_glibc <= (2, 17), info
    assert not [n for n in info.needed if n.startswith("libgcc_s")]
    # BOLT's new segment must not take the PT_GNU_STACK header (an executable stack)
    with program.open("rb") as handle:
        stacks = [s for s in ELFFile(handle).iter_segments() if s["p_type"] == "PT_GNU_STACK"]
    assert len(stacks) == 1 and not stacks[0]["p_flags"] & 1  # PF_X
    ElfPatcher().set_runpath(program, "$ORIGIN/lib")
    after = subprocess.run(["./main", str(library)], cwd=tmp_path, capture_output=True, text=True)
    assert after.returncode == 0 and after.stdout == "2.718\nhi!\n", after.stderr
    assert read_elf(program).runpath == ("$ORIGIN/lib",)  # type: ignore[union-attr]
    # the counts of an earlier run lay the program out again without training
    again = tmp_path / "again"
    shutil.copy2(tmp_path / "main.prebolt", again)
    bolt_executable(run, again, [], fdata)
    assert subprocess.run(["./again", str(library)], cwd=tmp_path).returncode == 0


ENVIRONMENT = """#include <stdio.h>
#include <time.h>
extern char **environ;
int main(void) {
  tzset();
  printf("%s %s/%s %ld %d\\n", environ && environ[0] ? environ[0] : "-", tzname[0], tzname[1],
         timezone, daylight);
  return 0;
}
"""


@pytest.mark.parametrize("pie", ["-no-pie", "-pie"])
def test_gcc_programs_read_the_environment_glibc_fills(tmp_path: Path, pie: str) -> None:
    """gcc reads `environ` and `tzname` of an executable through a copy in the executable;
    the stubs' aliases make glibc fill that copy. Against zig's stubs as they come, the
    environment was empty and the time zone GMT (CPython's os.environ was empty)."""
    toolchain = gcc_glibc_toolchain("2.17")
    (tmp_path / "env.c").write_text(ENVIRONMENT)
    subprocess.run([toolchain.cc, "-O2", pie, "env.c", "-o", "env"], cwd=tmp_path, check=True)
    result = subprocess.run(
        ["./env"], cwd=tmp_path, capture_output=True, text=True,
        env={"FOO": "1", "TZ": "America/New_York"},
    )  # fmt: skip
    assert result.stdout.split() == ["FOO=1", "EST/EDT", "18000", "1"], result.stderr
