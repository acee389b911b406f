"""Device identity with `cryptography`: the private key is generated on the gateway and never leaves it;
the county CA gets a CSR and returns a certificate, which is checked before it is installed."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

RENEW_WARN_DAYS = 30  # doctor marks ✗ below this many days left: renewal takes a round trip to the county


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file atomically, created with `mode` from the first byte (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have removed bits we asked for
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def generate_key() -> ec.EllipticCurvePrivateKey:
    # P-256: fast on a Pi, supported by every MQTT broker's TLS stack, small handshakes on slow uplinks.
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def subject_for(gateway_id: str, compound_id: str, county_code: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, gateway_id),  # the broker maps CN to the MQTT username/ACL
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, compound_id),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, county_code),
    ])


def make_csr(key, gateway_id: str, compound_id: str, county_code: str) -> x509.CertificateSigningRequest:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(subject_for(gateway_id, compound_id, county_code))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))


def csr_matches(csr: x509.CertificateSigningRequest, key, subject: x509.Name) -> bool:
    return _spki(csr.public_key()) == _spki(key.public_key()) and csr.subject == subject


def load_pem_certs(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError("not a PEM certificate (expected -----BEGIN CERTIFICATE-----)") from None


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":")[:47]


@dataclasses.dataclass
class CertReport:
    problems: list[str]
    fixes: list[str]
    subject_cn: str | None = None
    issuer: str | None = None
    not_after: dt.datetime | None = None
    days_left: float | None = None
    fingerprint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, Exception):  # InvalidSignature, unsupported algorithm: not this issuer
        return False


def check_certificate(cert_pem: bytes, key, *, ca_pem: bytes | None, gateway_id: str,
                      now: dt.datetime | None = None, warn_days: float = RENEW_WARN_DAYS) -> CertReport:
    """Everything an installer needs to know about a client certificate, with the fix for each problem."""
    now = now or dt.datetime.now(dt.timezone.utc)
    problems: list[str] = []
    fixes: list[str] = []
    try:
        chain = load_pem_certs(cert_pem)
    except ValueError as exc:
        return CertReport([str(exc)], ["ask the county CA for the certificate in PEM format"])
    leaf = chain[0]
    cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    rep = CertReport(problems, fixes, subject_cn=cn, issuer=leaf.issuer.rfc4514_string(),
                     not_after=leaf.not_valid_after_utc, fingerprint=fingerprint(leaf))
    rep.days_left = (leaf.not_valid_after_utc - now).total_seconds() / 86400
    if key is not None and _spki(leaf.public_key()) != _spki(key.public_key()):
        problems.append("certificate does not belong to this gateway's private key")
        fixes.append("send this gateway's own CSR (/etc/edge-gateway/gateway.csr) to the county CA; "
                     "a certificate made for another key or box cannot work")
    if cn != gateway_id:
        problems.append(f"certificate is for {cn!r}, this gateway is {gateway_id!r}")
        fixes.append("the CA must keep the CSR's subject (CN = gateway id); re-run `edge provision` if the id changed")
    if now < leaf.not_valid_before_utc:
        problems.append(f"certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
                        f"(clock says {now:%Y-%m-%d %H:%M})")
        fixes.append("check the clock (`timedatectl`); if the clock is right, wait or ask the CA to re-issue")
    elif rep.days_left < 0:
        problems.append(f"certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
        fixes.append("renew: `edge provision --new-csr`, send the CSR to the county CA, install the answer")
    elif rep.days_left < warn_days:
        problems.append(f"certificate expires in {rep.days_left:.0f} days ({leaf.not_valid_after_utc:%Y-%m-%d})")
        fixes.append("renew now: `edge provision --new-csr`, send the CSR to the county CA, install the answer")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            problems.append("certificate is not allowed for TLS client authentication (extendedKeyUsage)")
            fixes.append("ask the county CA for a client certificate (extendedKeyUsage = clientAuth)")
    except x509.ExtensionNotFound:
        pass
    if ca_pem is not None:
        try:
            roots = load_pem_certs(ca_pem)
        except ValueError as exc:
            problems.append(f"county CA file unusable: {exc}")
            fixes.append("copy the county CA certificate (PEM) to /etc/edge-gateway/county-ca.pem")
            return rep
        node, intermediates, ok = leaf, list(chain[1:]), False
        for _ in range(len(chain) + 1):
            if any(_issued_by(node, r) for r in roots):
                ok = True
                break
            parent = next((i for i in intermediates if _issued_by(node, i)), None)
            if parent is None:
                break
            intermediates.remove(parent)
            node = parent
        if not ok:
            problems.append(f"certificate was not issued by the county CA in the CA file (issuer: {rep.issuer})")
            fixes.append("install the certificate the county CA returned for this CSR, or the right CA file")
    return rep
