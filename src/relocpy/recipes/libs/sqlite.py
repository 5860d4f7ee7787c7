"""SQLite: the sqlite3 module. Debian's orig is the full source tree (amalgamated with tclsh)."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="sqlite",
    version="3.46.1",
    source=debian_source(
        "sqlite3",
        "3.46.1",
        "sqlite3_3.46.1.orig.tar.xz",
        "d0cdd2ece271b29e7ce18095745d892517ee26d0f270065b3a25c2e9eb11639c",
    ),
    license="blessing (public domain)",
    purpose="sqlite3",
    depends=("zlib",),
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--disable-tcl",
        "--disable-readline",
        "--disable-editline",
        "--enable-threadsafe",
        "--enable-load-extension",
        "--enable-fts4",
        "--enable-fts5",
        "--enable-rtree",
        "--enable-math",
    ),
    cflags=(
        "-DSQLITE_ENABLE_DBSTAT_VTAB",
        "-DSQLITE_ENABLE_COLUMN_METADATA",
        "-DSQLITE_ENABLE_JSON1",
    ),
)
