"""GNU readline: line editing for the readline module (GPL-3.0; see libedit, the default)."""

from relocpy.recipes.library import LibraryRecipe, debian_source

RECIPE = LibraryRecipe(
    name="readline",
    version="8.2",
    source=debian_source(
        "readline",
        "8.2",
        "readline_8.2.orig.tar.gz",
        "3feb7171f16a84ee82ca18a36d7b9be109a52c04f492a053331d7d1095007c35",
        urls=("https://ftp.gnu.org/gnu/readline/readline-8.2.tar.gz",),
    ),
    license="GPL-3.0-or-later",
    purpose="readline (when chosen with --readline readline)",
    depends=("ncurses",),
    configure_args=(
        "--disable-shared",
        "--enable-static",
        "--with-curses",
        "--disable-install-examples",
    ),
)
