"""A throwaway "county CA" for demos, benchmarks and tests: signs gateway CSRs and issues a broker certificate.

Never for production — the real county CA keeps its key offline. It exists so the TLS paths (mosquitto with
require_certificate, `edge provision --install-cert`, `edge doctor`) run for real without a county.
"""
from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .certs import key_pem


class DevCA:
    def __init__(self, name: str = "Demo County IoT CA", days: int = 3650):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def _issue(self, subject: x509.Name, public_key, *, days: float, not_before: dt.datetime | None,
               eku, san: list | None = None) -> bytes:
        start = not_before or dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject).public_key(public_key)
             .serial_number(x509.random_serial_number()).not_valid_before(start)
             .not_valid_after(start + dt.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([eku]), critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def sign_csr(self, csr_pem: bytes, *, days: float = 365, not_before: dt.datetime | None = None) -> bytes:
        """What the county does with a gateway's CSR: check its signature, keep its subject, sign for clientAuth."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("CSR signature is invalid")
        return self._issue(csr.subject, csr.public_key(), days=days, not_before=not_before,
                           eku=ExtendedKeyUsageOID.CLIENT_AUTH)

    def issue_server(self, names: list[str], days: float = 365) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for a broker reachable under `names` (host names or IP addresses)."""
        key = ec.generate_private_key(ec.SECP256R1())
        san: list = []
        for n in names:
            try:
                san.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                san.append(x509.DNSName(n))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        return self._issue(subject, key.public_key(), days=days, not_before=None,
                           eku=ExtendedKeyUsageOID.SERVER_AUTH, san=san), key_pem(key)
