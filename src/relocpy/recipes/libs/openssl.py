"""OpenSSL 3.5 (LTS): ssl and hashlib.

OPENSSLDIR is /etc/ssl, where most distributions keep (or link) their CA store; the tree's
ssl module adds a fallback over the other distributions' bundle paths at run time.
"""

from __future__ import annotations

from pathlib import Path

from relocpy.core.textfix import strip_prefix_maps
from relocpy.recipes.library import LIBRARY_PREFIX, LibraryBuild, LibraryRecipe, debian_source


def compiler_string(cc: str, cflags: str) -> str:
    """What `OpenSSL_version(OPENSSL_CFLAGS)` reports: the compiler's name and the flags, with
    no path (a work directory or RELOCPY_HOME would make the bytes differ per build)."""
    return " ".join([Path(cc).name, *strip_prefix_maps(cflags).split()])


def build_openssl(build: LibraryBuild) -> None:
    build.run(
        [
            "perl",
            "./Configure",
            build.target.openssl,
            *build.recipe.configure_args,  # a CPU's own (arch_configure_args)
            "no-shared",
            "no-tests",
            "no-docs",
            "no-apps",
            f"--prefix={LIBRARY_PREFIX}",
            "--libdir=lib",
            "--openssldir=/etc/ssl",
            *build.env["CFLAGS"].split(),
        ]
    )
    # OpenSSL generates crypto/buildinf.h from "$(CC) $(LIB_CFLAGS) $(CPPFLAGS_Q)": the
    # wrapper's path, the prefix maps and -I of the work directory. Written first, with the
    # same generator, make keeps it (it is newer than configdata.pm).
    build.run(
        [
            "sh",
            "-c",
            'perl util/mkbuildinf.pl "$1" "$2" > crypto/buildinf.h',
            "mkbuildinf",
            compiler_string(build.env.get("CC", "cc"), build.env["CFLAGS"]),
            build.target.openssl,
        ]
    )
    build.run(["make", f"-j{build.jobs}", "build_libs"])
    build.run(["make", "install_dev", f"DESTDIR={build.stage}"])


RECIPE = LibraryRecipe(
    name="openssl",
    version="3.5.7",
    source=debian_source(
        "openssl",
        "3.5.7",
        "openssl_3.5.7.orig.tar.gz",
        "a8c0d28a529ca480f9f36cf5792e2cd21984552a3c8e4aa11a24aa31aeac98e8",
        urls=(
            "https://github.com/openssl/openssl/releases/download/openssl-3.5.7/"
            "openssl-3.5.7.tar.gz",
        ),
    ),
    license="Apache-2.0",
    purpose="ssl, hashlib",
    depends=("zlib",),
    build=build_openssl,
    # riscv64: the perlasm AES (aes-riscv64.s) reaches AES_set_encrypt_key by a `jal`, which
    # lld cannot relocate against a global symbol once libcrypto.a is linked into _ssl's
    # shared object ("R_RISCV_JAL cannot be used against symbol"): OpenSSL's C code instead
    arch_configure_args=(("riscv64", ("no-asm",)),),
    tools=("perl",),
)
