"""OpenSSL 3.5 (LTS): ssl and hashlib.

OPENSSLDIR is /etc/ssl, where most distributions keep (or link) their CA store; the tree's
ssl module adds a fallback over the other distributions' bundle paths at run time.
"""

from __future__ import annotations

from relocpy.recipes.library import LIBRARY_PREFIX, LibraryBuild, LibraryRecipe, debian_source


def build_openssl(build: LibraryBuild) -> None:
    build.run(
        [
            "perl",
            "./Configure",
            "linux-x86_64",
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
    tools=("perl",),
)
