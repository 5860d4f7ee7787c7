"""ncurses (wide): curses, and the terminal layer of libedit/readline.

The terminfo search list covers where Debian, Fedora, SUSE, Arch and Alpine keep their
databases; common terminals are compiled in (`--with-fallbacks`) for hosts that have none.
"""

from relocpy.recipes.library import LibraryRecipe, debian_source

TERMINFO_DIRS = "/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo"
FALLBACK_TERMINALS = "xterm-256color,xterm,screen-256color,screen,tmux-256color,vt100,linux,dumb"

RECIPE = LibraryRecipe(
    name="ncurses",
    version="6.5-20250216",
    source=debian_source(
        "ncurses",
        "6.5-20250216",
        "ncurses_6.5+20250216.orig.tar.gz",
        "b37baafa436e7133bb12a185cb8f60e1599b1947e9f0181c76f3190acf28b6eb",
        debian_version="6.5+20250216",
    ),
    license="X11 (MIT-style)",
    purpose="curses, readline/libedit terminal handling",
    tools=("tic",),  # compiles the --with-fallbacks terminal descriptions
    configure_args=(
        "--without-shared",
        "--with-normal",
        "--without-debug",
        "--without-cxx",
        "--without-cxx-binding",
        "--without-ada",
        "--without-progs",
        "--without-tests",
        "--without-manpages",
        "--enable-widec",
        "--enable-pc-files",
        "--with-pkg-config-libdir=/install/lib/pkgconfig",
        "--disable-db-install",
        "--disable-termcap",
        "--disable-stripping",
        f"--with-terminfo-dirs={TERMINFO_DIRS}",
        "--with-default-terminfo-dir=/usr/share/terminfo",
        f"--with-fallbacks={FALLBACK_TERMINALS}",
    ),
    # libedit's configure looks for -lncurses; the wide library is a superset.
    symlinks=(("lib/libncurses.a", "libncursesw.a"),),
)
