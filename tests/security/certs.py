"""Certificates for the TLS tests, made fresh in a temp folder with ``cryptography``.

One CA signs the server's certificate (for 127.0.0.1 and localhost) and the clients';
a second, unrelated CA signs an "untrusted" client; one client certificate has expired.
Files are PEM, laid out as ZooKeeper's PEM key stores want them (the private key and
the certificate chain in one file), plus a PKCS#12 copy of the server's key store.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

KEYSTORE_PASSWORD = "keystore-secret"
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Pair:
    """A certificate with its key: separate files for clients, one file as a key store."""

    cert: Path  # the certificate (then the CA's)
    key: Path  # the private key, unencrypted
    keystore: Path  # key + chain in one PEM file (ZooKeeper's PEM key store)
    subject: str  # as Java's X500Principal.getName() prints it


@dataclass(frozen=True)
class Certs:
    ca: Path  # the trusted CA (a PEM trust store)
    server: Pair
    server_p12: Path  # the server's key store as PKCS#12, password KEYSTORE_PASSWORD
    client: Pair
    other_client: Pair  # a second trusted client
    expired: Pair  # trusted CA, but no longer valid
    untrusted: Pair  # signed by a CA the server does not trust


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    name = _name((NameOID.ORGANIZATION_NAME, "pyzk tests"), (NameOID.COMMON_NAME, common_name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    subject: x509.Name,
    expired: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    start, end = (now - 10 * _DAY, now - _DAY) if expired else (now - _DAY, now + 30 * _DAY)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .sign(ca[1], hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_pair(
    folder: Path,
    name: str,
    leaf: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    ca: x509.Certificate,
) -> Pair:
    cert, key = leaf
    paths = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}-keystore.pem"
    paths[0].write_bytes(_pem(cert) + _pem(ca))
    paths[1].write_bytes(_key_pem(key))
    paths[2].write_bytes(_key_pem(key) + _pem(cert) + _pem(ca))
    for p in paths:
        p.chmod(0o600)
    return Pair(paths[0], paths[1], paths[2], cert.subject.rfc4514_string())


def make_certs(folder: Path) -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca("pyzk test CA")
    rogue = _ca("rogue CA")
    (folder / "ca.pem").write_bytes(_pem(ca[0]))
    server = _leaf(ca, _name((NameOID.ORGANIZATION_NAME, "pyzk"), (NameOID.COMMON_NAME, "server")))
    p12 = folder / "server.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"server",
            server[1],
            server[0],
            [ca[0]],
            serialization.BestAvailableEncryption(KEYSTORE_PASSWORD.encode()),
        )
    )

    def client(cn: str, expired: bool = False, signer: object = ca) -> Pair:
        subject = _name(
            (NameOID.ORGANIZATION_NAME, "pyzk"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "tests"),
            (NameOID.COMMON_NAME, cn),
        )
        return _write_pair(folder, cn, _leaf(signer, subject, expired), signer[0])  # type: ignore[index,arg-type]

    return Certs(
        ca=folder / "ca.pem",
        server=_write_pair(folder, "server", server, ca[0]),
        server_p12=p12,
        client=client("alice"),
        other_client=client("bob"),
        expired=client("expired", expired=True),
        untrusted=client("mallory", signer=rogue),
    )
