# --- relocpy: CA certificate fallback ------------------------------------------------------
# This OpenSSL looks for CA certificates in /etc/ssl (cert.pem, certs/), which is where Debian,
# Ubuntu, Arch, Alpine and SUSE keep them, but not every distribution. When neither
# SSL_CERT_FILE nor SSL_CERT_DIR is set and OpenSSL's own file is absent, the first bundle found
# at another distribution's usual place is loaded as well.
_RELOCPY_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora, RHEL 7+, CentOS
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",  # openSUSE, SLES
    "/var/lib/ca-certificates/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # Alpine, Arch, macOS-style layouts
)


def _relocpy_fallback_bundle():
    # Decided on every call: SSL_CERT_FILE/SSL_CERT_DIR may be set or unset between contexts.
    paths = get_default_verify_paths()
    if (
        os.environ.get(paths.openssl_cafile_env)
        or os.environ.get(paths.openssl_capath_env)
        or (paths.cafile and os.path.isfile(paths.cafile))
    ):
        return None
    return next((p for p in _RELOCPY_CA_BUNDLES if os.path.isfile(p)), None)


_relocpy_original_load_default_certs = SSLContext.load_default_certs


def _relocpy_load_default_certs(self, purpose=Purpose.SERVER_AUTH):
    _relocpy_original_load_default_certs(self, purpose)
    bundle = _relocpy_fallback_bundle()
    if bundle:
        self.load_verify_locations(cafile=bundle)


_relocpy_load_default_certs.__doc__ = SSLContext.load_default_certs.__doc__
SSLContext.load_default_certs = _relocpy_load_default_certs
