"""Other Debian releases: minimal roots built once by debootstrap, and a moved tree run inside them.

Every check runs in an overlay over the cached root, so installing a compiler or a test CA into it
never changes the cache.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from relocpy.core.errors import MissingToolError, RelocpyError, SourceUnavailableError
from relocpy.core.home import cache_dir
from relocpy.core.progress import QuietReporter, Reporter, append_log
from relocpy.core.runner import run_logged
from relocpy.core.tree import InterpreterTree, clean_env, inspect_tree
from relocpy.elf.policy import Policy, get_policy, policy_for_glibc
from relocpy.elf.read import iter_elf_files
from relocpy.repair.cacerts import MARKER as CA_FALLBACK_MARKER
from relocpy.sources.debian import configured_archives
from relocpy.verify.checks import (
    MOVE_1,
    Check,
    VerifyReport,
    check_c_extension,
    check_imports,
    check_venv_pip,
    place_for_test,
)

SUITES = ("bullseye", "bookworm", "trixie", "sid")
MARKER = ".relocpy-root.json"  # written last, inside the root, before the atomic rename
_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_TIMEOUT = 1800
TEST_CA_NAME = "relocpy-test.crt"

# What a user of another distribution has: no PYTHON*/SSL_CERT_*/PIP_* settings, a UTF-8 locale.
CHROOT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "xterm-256color",
}
_APT_ENV = {"PATH": _SYSTEM_PATH, "DEBIAN_FRONTEND": "noninteractive"}


def roots_dir() -> Path:
    """Where debootstrapped roots are cached: `RELOCPY_ROOTS`, else `cache/roots`.

    A root is large and never changes once made, so several relocpy homes (each test session,
    each CI run) may share one directory of them."""
    explicit = os.environ.get("RELOCPY_ROOTS")
    return Path(explicit).expanduser() if explicit else cache_dir() / "roots"


def known_suite(suite: str) -> str:
    if suite not in SUITES:
        raise RelocpyError(
            f"unknown Debian suite {suite!r}: the distro checks know {', '.join(SUITES)}"
        )
    return suite


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=_SYSTEM_PATH)
    if found is None:
        raise MissingToolError(
            f"{name} is not installed: the --distro checks need it",
            hint=f"apt-get install -y {package}",
        )
    return found


def _need_root() -> None:
    if os.geteuid() != 0:
        raise RelocpyError(
            "the --distro checks need root: they run debootstrap, mount overlays and chroot",
            hint="run as root (a container or a throwaway VM is fine)",
        )


def _is_complete(root: Path) -> bool:
    return (root / MARKER).is_file()


# ---- mounts ---------------------------------------------------------------------------------


def _mount_points_under(path: Path) -> list[str]:
    base = os.path.realpath(path)
    found = []
    for line in Path("/proc/self/mountinfo").read_bytes().splitlines():
        # The kernel writes a space as \040 (and tab, newline, backslash alike).
        point = os.fsdecode(
            re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), line.split()[4])
        )
        if point == base or point.startswith(base + os.sep):
            found.append(point)
    return found


def _unmount(point: Path) -> None:
    done = subprocess.run(["umount", str(point)], capture_output=True, env=clean_env())
    if done.returncode != 0:  # a straggling process still holds it: detach it anyway
        subprocess.run(["umount", "--lazy", str(point)], capture_output=True, env=clean_env())


def remove_scratch(path: Path, reporter: Reporter) -> None:
    """Delete `path` unless something is still mounted below it (deleting through a mount of
    /proc or /dev would reach the host's files)."""
    left = _mount_points_under(path)
    if left:
        reporter.step(f"kept {path}: still mounted there: {', '.join(left)}")
        return
    shutil.rmtree(path, ignore_errors=True)


def _mount(args: list[str]) -> None:
    result = subprocess.run(
        ["mount", *args], capture_output=True, text=True, env=clean_env({"PATH": _SYSTEM_PATH})
    )
    if result.returncode != 0:
        raise RelocpyError(f"mount {' '.join(args)} failed: {result.stderr.strip()}")


def _ensure_localhost(merged: Path) -> None:
    hosts = merged / "etc/hosts"
    text = hosts.read_text() if hosts.exists() else ""
    if "localhost" not in text:
        hosts.write_text(text + "127.0.0.1 localhost\n::1 localhost ip6-localhost\n")


@contextlib.contextmanager
def overlay(root: Path, scratch: Path, binds: dict[str, Path] | None = None) -> Iterator[Path]:
    """Mount a writable overlay of `root` (changes go to `scratch`), with /proc and `binds`
    (path inside -> host directory) mounted in it and `localhost` resolvable; yield the merged
    directory, a root ready for chroot."""
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for directory in (upper, work, merged):
        directory.mkdir(parents=True)
    mounted: list[Path] = []
    try:
        _mount(
            [
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={root},upperdir={upper},workdir={work}",
                str(merged),
            ]
        )
        mounted.append(merged)
        _mount(["-t", "proc", "proc", str(merged / "proc")])
        mounted.append(merged / "proc")
        for inside, host in (binds or {}).items():
            point = merged / inside.lstrip("/")
            point.mkdir(parents=True, exist_ok=True)
            host.mkdir(parents=True, exist_ok=True)
            _mount(["--bind", str(host), str(point)])
            mounted.append(point)
        _ensure_localhost(merged)  # minbase has no /etc/hosts
        yield merged
    finally:
        for point in reversed(mounted):
            _unmount(point)


class ChrootRunner:
    """Runs commands chrooted into `root` with CHROOT_ENV (a `relocpy.verify.checks.Runner`)."""

    def __init__(self, root: Path, log: Path | None = None) -> None:
        self.root = root
        self.log = log
        self.chroot = _tool("chroot", "coreutils")

    def path(self, host_path: Path) -> str:
        return "/" + str(Path(host_path).relative_to(self.root))

    def run(
        self, cmd: list[str], env_extra: dict[str, str] | None = None, timeout: int = _TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        env = {**CHROOT_ENV, **(env_extra or {})}
        full = [self.chroot, str(self.root), *cmd]
        try:
            result = subprocess.run(
                full,
                capture_output=True,
                text=True,
                errors="replace",
                env=env,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            result = subprocess.CompletedProcess(full, 127, "", str(exc))
        shown = [arg if len(arg) < 200 else arg[:60] + "…" for arg in cmd]
        append_log(
            self.log, f"$ chroot {self.root} {' '.join(shown)}\n{result.stdout}{result.stderr}"
        )
        return result


def _why(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return f"exit {result.returncode}: {lines[-1][:300] if lines else 'no output'}"


# ---- roots ----------------------------------------------------------------------------------


def ensure_root(suite: str, reporter: Reporter | None = None, roots: Path | None = None) -> Path:
    """The cached minimal root of Debian `suite`, built by debootstrap on first use."""
    reporter = reporter or QuietReporter()
    suite = known_suite(suite)
    roots = (roots or roots_dir()).absolute()
    final = roots / suite
    if _is_complete(final):
        return final
    debootstrap = _tool("debootstrap", "debootstrap")
    _need_root()
    archives = configured_archives()
    if not archives:
        raise SourceUnavailableError(
            "no Debian archive is configured in /etc/apt: debootstrap has no mirror",
            hint="add a Debian archive to /etc/apt/sources.list.d/",
        )
    archive = archives[0]
    roots.mkdir(parents=True, exist_ok=True)
    with FileLock(str(roots / f".{suite}.lock")):
        if _is_complete(final):
            return final
        if final.exists():  # without the marker nothing says it is whole
            remove_scratch(final, reporter)
        building = Path(tempfile.mkdtemp(prefix=f".{suite}-building-", dir=roots))
        debs = Path(tempfile.mkdtemp(prefix=f".{suite}-debs-", dir=roots))
        log = roots / f"{suite}.log"
        log.write_text(f"debootstrap of {suite} from {archive.uri}\n")
        keyring = (
            [f"--keyring={archive.signed_by}"]
            if archive.signed_by and Path(archive.signed_by).is_file()
            else []
        )
        cmd = [
            debootstrap,
            "--variant=minbase",
            "--include=ca-certificates",
            f"--cache-dir={debs}",
            *keyring,
            suite,
            str(building),
            archive.uri,
        ]
        reporter.step(f"building a minimal Debian {suite} root with debootstrap (once: {final})")
        start = time.monotonic()
        env = {"PATH": _SYSTEM_PATH, "LC_ALL": "C", "HOME": "/root"}
        try:
            run_logged(cmd, roots, log, reporter, f"debootstrap {suite}", env)
            downloaded = sum(p.stat().st_size for p in debs.glob("*.deb"))
            record = {
                "suite": suite,
                "mirror": archive.uri,
                "seconds": round(time.monotonic() - start),
                "downloaded_bytes": downloaded,
            }
            (building / MARKER).write_text(json.dumps(record, indent=2) + "\n")
            os.rename(building, final)
            append_log(log, json.dumps(record))
            reporter.step(
                f"{suite} root ready in {record['seconds']} s "
                f"({downloaded / 2**20:.0f} MiB of packages fetched)"
            )
        finally:
            remove_scratch(building, reporter)
            shutil.rmtree(debs, ignore_errors=True)
    return final


# ---- a TLS server whose CA the chroot trusts, and one whose CA it does not ------------------

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = relocpy
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def make_test_ca(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a `localhost` certificate it signed: (ca.crt, server.crt, server.key).

    Extensions follow what OpenSSL's strict X.509 mode (Python 3.13's default) demands."""
    openssl = _tool("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG)
    ca_key, ca_crt = directory / f"{name}-ca.key", directory / f"{name}-ca.crt"
    key, csr, crt = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca = ["req", "-x509", "-config", config, "-extensions", "ca", *ec, "-days", "2"]
    leaf = ["req", "-new", "-config", config, *ec, "-keyout", key, "-out", csr]
    sign = ["x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-set_serial", "1"]
    for cmd in (
        [*ca, "-subj", f"/CN=relocpy {name} CA", "-keyout", ca_key, "-out", ca_crt],
        [*leaf, "-subj", "/CN=localhost"],
        [*sign, "-days", "2", "-extfile", config, "-extensions", "leaf", "-out", crt],
    ):
        result = subprocess.run(
            [openssl, *map(str, cmd)], capture_output=True, text=True, env=clean_env()
        )
        if result.returncode != 0:
            raise RelocpyError(f"openssl {cmd[0]} failed: {result.stderr.strip()[-300:]}")
    return ca_crt, crt, key


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"relocpy-ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the untrusted-CA client aborts the handshake: that is the point


@contextlib.contextmanager
def https_server(cert: Path, key: Path) -> Iterator[int]:
    """Serve `relocpy-ok` over TLS on 127.0.0.1; yield the port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _QuietServer(("127.0.0.1", 0), _Hello)
    # The handshake runs in the handler thread, so a stalled client cannot block accept().
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


_FETCH = r"""
import json, sys, urllib.request
out = {}
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            out[url] = [True, response.read().decode()]
    except Exception as exc:
        out[url] = [False, "%s: %s" % (type(exc).__name__, exc)]
print(json.dumps(out))
"""


def install_test_ca(runner: ChrootRunner, ca: Path) -> subprocess.CompletedProcess[str]:
    """Add `ca` to the chroot's system store the way an administrator would."""
    store = runner.root / "usr/local/share/ca-certificates"
    store.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca, store / TEST_CA_NAME)
    return runner.run(["update-ca-certificates"], env_extra={"PATH": _SYSTEM_PATH})


def fetch_https(
    tree: InterpreterTree, runner: ChrootRunner, servers: list[tuple[Path, Path]]
) -> list[tuple[bool, str]]:
    """urlopen() each server (cert, key) at https://localhost with the default context:
    (succeeded, body or error) per server."""
    with contextlib.ExitStack() as stack:
        urls = [
            f"https://localhost:{stack.enter_context(https_server(crt, key))}/"
            for crt, key in servers
        ]
        result = runner.run([runner.path(tree.executable), "-c", _FETCH, *urls])
    if result.returncode != 0:
        return [(False, _why(result))] * len(urls)
    outcome = json.loads(result.stdout)
    return [(bool(outcome[url][0]), str(outcome[url][1])) for url in urls]


def check_https(tree: InterpreterTree, runner: ChrootRunner, tls_dir: Path) -> Check:
    """urlopen() with the default context trusts the system store, and only it."""
    trusted_ca, trusted_crt, trusted_key = make_test_ca(tls_dir, "trusted")
    _, other_crt, other_key = make_test_ca(tls_dir, "untrusted")
    result = install_test_ca(runner, trusted_ca)
    if result.returncode != 0:
        return Check("https", False, "update-ca-certificates: " + _why(result))
    (good_ok, good), (bad_ok, bad) = fetch_https(
        tree, runner, [(trusted_crt, trusted_key), (other_crt, other_key)]
    )
    if not good_ok or good != "relocpy-ok":
        return Check("https", False, f"the CA in the system store is not trusted: {good[:300]}")
    if bad_ok or "CERTIFICATE_VERIFY_FAILED" not in bad:
        return Check("https", False, f"a server with an unknown CA was accepted: {bad[:300]}")
    return Check(
        "https", True, "trusts a CA added with update-ca-certificates; rejects an unknown CA"
    )


# Where other distributions keep the CA bundle (the tree's ssl fallback must find each).
CA_LAYOUTS = {
    "Fedora/RHEL": "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "openSUSE": "etc/ssl/ca-bundle.pem",
    "Alpine/Arch": "etc/ssl/cert.pem",
}


def has_ca_fallback(tree: InterpreterTree) -> bool:
    """Trees with their own OpenSSL carry the fallback (relocpy.repair.cacerts); grafted ones
    use the host distribution's OpenSSL configuration instead."""
    ssl_py = tree.stdlib / "ssl.py"
    return ssl_py.is_file() and CA_FALLBACK_MARKER in ssl_py.read_text(encoding="utf-8")


def check_ca_layouts(tree: InterpreterTree, runner: ChrootRunner, tls_dir: Path) -> Check:
    """With Debian's /etc/ssl/certs moved away and the same bundle (test CA included) put where
    another distribution keeps it, the trusted server still verifies: one layout at a time."""
    certs = runner.root / "etc/ssl/certs"
    bundle = (certs / "ca-certificates.crt").read_bytes()
    hidden = certs.with_name("certs.relocpy-hidden")
    results = []
    shutil.move(certs, hidden)  # a lower-layer directory: overlayfs cannot rename it
    try:
        for name, relative in CA_LAYOUTS.items():
            place = runner.root / relative
            place.parent.mkdir(parents=True, exist_ok=True)
            place.write_bytes(bundle)
            try:
                [(ok, body)] = fetch_https(
                    tree, runner, [(tls_dir / "trusted.crt", tls_dir / "trusted.key")]
                )
            finally:
                place.unlink()
            results.append((name, relative, ok and body == "relocpy-ok", body))
    finally:
        shutil.move(hidden, certs)
    failed = [f"{name} (/{rel}): {body[:200]}" for name, rel, ok, body in results if not ok]
    if failed:
        return Check("ca-layouts", False, "; ".join(failed))
    return Check(
        "ca-layouts",
        True,
        "verified with the bundle only at " + ", ".join(f"/{r} ({n})" for n, r, _, _ in results),
    )


# ---- the checks -----------------------------------------------------------------------------

_CURSES = "import curses; curses.setupterm('xterm-256color'); print(curses.tigetnum('colors'))"


def check_curses(tree: InterpreterTree, runner: ChrootRunner) -> Check:
    result = runner.run([runner.path(tree.executable), "-c", _CURSES])
    if result.returncode != 0:
        return Check("curses", False, _why(result))
    return Check("curses", True, f"setupterm('xterm-256color'): {result.stdout.strip()} colors")


def check_c_extension_with_gcc(
    tree: InterpreterTree, runner: ChrootRunner, scratch: Path, apt_lock: Path
) -> Check:
    """Install gcc into the overlay from the suite's own archive, then build an extension."""
    with FileLock(str(apt_lock)):  # the apt lists and .deb cache are shared per suite
        # The root was bootstrapped from this archive's Release, which debootstrap does not
        # expire; a mirror that lags behind sid's 7-day Valid-Until must not stop apt either.
        apt = ["apt-get", "-q", "-o", "Acquire::Check-Valid-Until=false"]
        for cmd in (
            [*apt, "update"],
            [*apt, "install", "-y", "--no-install-recommends", "gcc", "libc6-dev"],
        ):
            result = runner.run(cmd, env_extra=_APT_ENV)
            if result.returncode != 0:
                errors = [line for line in result.stderr.splitlines() if line.startswith("E:")]
                why = errors[0] if errors else _why(result)
                return Check("c-extension", False, f"apt-get {cmd[len(apt)]}: {why}")
    return check_c_extension(tree, scratch, runner)


def _describe(runner: ChrootRunner) -> str:
    glibc = runner.run(["getconf", "GNU_LIBC_VERSION"]).stdout.strip() or "glibc unknown"
    name = ""
    os_release = runner.root / "etc/os-release"
    for line in os_release.read_text().splitlines() if os_release.exists() else []:
        if line.startswith("PRETTY_NAME="):
            name = line.split("=", 1)[1].strip('"') + ", "
    return name + glibc


def _policy_of(tree: InterpreterTree, metadata: dict[str, object]) -> Policy:
    """The archive's recorded policy, or the one its binaries' glibc needs."""
    if metadata.get("policy"):
        return get_policy(str(metadata["policy"]))
    versions = [info.max_glibc for info in iter_elf_files(tree.root) if info.max_glibc]
    return policy_for_glibc(max(versions, default=None))


CHECKS = ("starts", "imports", "https", "ca-layouts", "curses", "venv-pip", "c-extension")


def run_checks(
    tree: InterpreterTree,
    runner: ChrootRunner,
    policy: Policy,
    scratch: Path,
    apt_lock: Path,
    reporter: Reporter,
) -> list[Check]:
    """CHECKS, in order, for `tree` placed inside the runner's chroot."""
    python = runner.path(tree.executable)
    result = runner.run([python, "-c", "import sys; print(sys.version.split()[0])"])
    if result.returncode != 0:
        skipped = [Check(name, False, "not run: python does not start") for name in CHECKS[1:]]
        return [Check("starts", False, _why(result)), *skipped]
    checks = [Check("starts", True, f"{python} runs: {result.stdout.strip()}")]
    reporter.step("  importing every extension module")
    checks.append(check_imports(tree, "imports", runner, system=policy))
    reporter.step("  https with the system CA store")
    checks.append(check_https(tree, runner, scratch / "tls"))
    if checks[-1].ok and has_ca_fallback(tree):
        reporter.step("  https with other distributions' CA bundle locations")
        checks.append(check_ca_layouts(tree, runner, scratch / "tls"))
    reporter.step("  curses")
    checks.append(check_curses(tree, runner))
    reporter.step("  venv and pip install of a local wheel")
    work = runner.root / "tmp" / "relocpy checks ü"
    checks.append(check_venv_pip(tree, work, runner))
    reporter.step("  installing gcc in the overlay; building a C extension")
    checks.append(check_c_extension_with_gcc(tree, runner, work, apt_lock))
    return checks


def verify_in_distro(
    target: Path, suite: str, reporter: Reporter | None = None, roots: Path | None = None
) -> VerifyReport:
    """Run `target` (a tree or an archive), moved under a path with spaces and non-ASCII, in an
    overlay of the cached Debian `suite` root, with a clean environment."""
    reporter = reporter or QuietReporter()
    target = Path(target)
    suite = known_suite(suite)
    if not target.exists():
        raise RelocpyError(f"{target} does not exist")
    _tool("openssl", "openssl")
    roots = (roots or roots_dir()).absolute()
    root = ensure_root(suite, reporter, roots)
    apt_cache = roots / f"{suite}.apt"  # shared by every check of this suite, outside the root
    binds = {
        "/var/lib/apt/lists": apt_cache / "lists",
        "/var/cache/apt/archives": apt_cache / "archives",
    }
    log = cache_dir() / "logs" / f"distro-{suite}.{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"relocpy-{suite}-"))
    try:
        with overlay(root, scratch / "overlay", binds) as merged:
            runner = ChrootRunner(merged, log)
            reporter.step(f"{suite}: placing {target.name} at /opt/{MOVE_1}/python in a chroot")
            placed, metadata, _ = place_for_test(target, merged / "opt")
            tree = inspect_tree(placed)
            policy = _policy_of(tree, metadata)
            report = VerifyReport(f"{target} on {_describe(runner)}", policy.name)
            lock = roots / f".{suite}.apt.lock"
            report.checks += run_checks(tree, runner, policy, scratch, lock, reporter)
            reporter.step(f"{suite}: commands and their output are logged in {log}")
            return report
    finally:
        remove_scratch(scratch, reporter)
