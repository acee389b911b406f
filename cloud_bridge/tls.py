"""TLS for the uplink: server verification always, mutual TLS when a client certificate is configured.

Relative paths are looked up in $CREDENTIALS_DIRECTORY (systemd LoadCredential=), the same rule as
edge.config.base.Secret, so the private key never has to live in /etc next to the config.
"""
from __future__ import annotations

import datetime as dt
import os
import ssl
from pathlib import Path

from edge.config.uplink import TlsConfig


class TlsProblem(Exception):
    pass


def resolve_path(path: Path | str) -> Path:
    p = Path(path)
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if not p.is_absolute() and cred_dir:
        p = Path(cred_dir) / p
    return p


class _NamedContext(ssl.SSLContext):
    """Verifies the broker certificate against `server_name` instead of the host we dial (e.g. an IP)."""

    server_name: str | None = None

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):  # type: ignore[override]
        return super().wrap_socket(sock, *args, server_hostname=self.server_name or server_hostname, **kwargs)


def build_context(tls: TlsConfig | None) -> ssl.SSLContext:
    tls = tls or TlsConfig()
    ctx = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.server_name = tls.server_name
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        if tls.ca_file:
            ctx.load_verify_locations(cafile=str(resolve_path(tls.ca_file)))
        else:
            ctx.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise TlsProblem(f"cannot load CA file {resolve_path(tls.ca_file)}: {exc}") from None
    if tls.cert_file:
        cert, key = resolve_path(tls.cert_file), resolve_path(tls.key_file)
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except FileNotFoundError as exc:
            raise TlsProblem(f"client certificate or key not found: {exc.filename}") from None
        except (OSError, ssl.SSLError) as exc:
            raise TlsProblem(f"cannot load client certificate {cert} / key {key}: {exc}") from None
    return ctx


def client_cert_facts(tls: TlsConfig | None, now: dt.datetime | None = None) -> dict | None:
    """CN and validity of the configured client certificate, to explain a refusal before the broker does."""
    if not tls or not tls.cert_file:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(resolve_path(tls.cert_file).read_bytes())
    except (OSError, ValueError) as exc:
        return {"error": str(exc)}
    now = now or dt.datetime.now(dt.timezone.utc)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    return {"cn": str(cns[0].value) if cns else None, "not_after": not_after.isoformat(),
            "not_before": not_before.isoformat(), "expired": now > not_after, "not_yet_valid": now < not_before}
