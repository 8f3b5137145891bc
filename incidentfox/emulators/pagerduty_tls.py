"""A throwaway certificate authority and a 127.0.0.1 server certificate for the PagerDuty emulator.

The ``pagerduty`` client refuses any base URL that is not ``https://`` (``ApiClient.url``), so the
emulator has to speak TLS for the real client to reach it unchanged. Each emulator gets its own CA
(made in memory, never written outside its temporary directory) and a leaf certificate for
``127.0.0.1`` and ``localhost`` signed by it. A client trusts the emulator by loading ``ca_pem``,
e.g. ``ssl.create_default_context(cadata=ca_pem)`` or the toolset's ``ca_cert_content`` setting.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_FOR = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class LocalCertificate:
    """PEM texts: the CA a client must trust, and the server's certificate chain and key."""

    ca_pem: str
    cert_pem: str
    key_pem: str

    def server_context(self, directory: Path) -> ssl.SSLContext:
        """A server-side context; ``load_cert_chain`` only reads files, so they go in ``directory``."""
        cert_file, key_file = directory / "server.crt", directory / "server.key"
        cert_file.write_text(self.cert_pem + self.ca_pem, encoding="ascii")
        key_file.write_text(self.key_pem, encoding="ascii")
        key_file.chmod(0o600)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA only (hostname checking stays on)."""
        return ssl.create_default_context(cadata=self.ca_pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "IncidentFox emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def issue_local_certificate() -> LocalCertificate:
    """A fresh CA and a leaf for 127.0.0.1/localhost, valid from an hour ago for two days."""
    now = datetime.now(UTC)
    not_before, not_after = now - timedelta(hours=1), now + _VALID_FOR
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("IncidentFox emulator CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return LocalCertificate(ca_pem=_pem(ca_cert), cert_pem=_pem(leaf), key_pem=key_pem)
