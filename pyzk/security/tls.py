"""TLS contexts from ZooKeeper's ``ssl.*`` settings, with the standard library's ``ssl``.

ZooKeeper's X509Util builds a JDK SSLContext from a key store (this server's private key
and certificate chain) and a trust store (the CAs whose certificates it accepts). Here:

* **PEM key store** (``ssl.keyStore.type=PEM`` or a ``.pem`` file), as ZooKeeper 3.8's
  PemReader takes it: one file holding the private key (PKCS#8, optionally encrypted
  with ``ssl.keyStore.password``) and the certificate chain, in any order.
* **PKCS#12 key store** (``PKCS12``, ``.p12``/``.pfx``): read with ``cryptography`` and
  handed to OpenSSL through a temporary file readable only by us, whose key is encrypted
  with a one-time random password and which is removed at once.
* **Trust stores**: a PEM file of CA certificates, or a PKCS#12 file's certificates;
  without one, the system's CAs (as the JDK's cacerts).
* ``protocol``/``enabledProtocols`` bound the TLS versions (TLSv1.2 only by default, as
  ZooKeeper 3.8); ``ciphersuites`` takes Java's names; ``clientAuth`` none/want/need is
  CERT_NONE/CERT_OPTIONAL/CERT_REQUIRED.

JKS and BCFKS stores are refused with a message saying how to convert them.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from pyzk.security import ciphers
from pyzk.security.settings import SecurityConfigError, TlsSettings, read_password, store_type

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {"none": ssl.CERT_NONE, "want": ssl.CERT_OPTIONAL, "need": ssl.CERT_REQUIRED}


def server_context(t: TlsSettings) -> ssl.SSLContext:
    """The context a listener wraps accepted connections in (this side is the server)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _common(ctx, t)
    if t.keystore is None:
        raise SecurityConfigError(
            f"{t.key('keyStore.location')}: a TLS listener needs this server's key store"
        )
    ctx.verify_mode = _CLIENT_AUTH[t.client_auth]
    return ctx


def client_context(t: TlsSettings) -> ssl.SSLContext:
    """The context for connections this server opens (quorum peers), with its own cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = t.hostname_verification
    ctx.verify_mode = ssl.CERT_REQUIRED
    _common(ctx, t)
    return ctx


def _common(ctx: ssl.SSLContext, t: TlsSettings) -> None:
    _versions(ctx, t)
    _ciphers(ctx, t)
    if t.keystore is not None:
        _load_keystore(ctx, t)
    if t.truststore is not None:
        _load_truststore(ctx, t)
    else:
        ctx.load_default_certs(
            ssl.Purpose.CLIENT_AUTH if ctx.protocol == ssl.PROTOCOL_TLS_SERVER
            else ssl.Purpose.SERVER_AUTH
        )  # fmt: skip
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # jdk.tls.rejectClientInitiatedRenegotiation


def _versions(ctx: ssl.SSLContext, t: TlsSettings) -> None:
    names = t.enabled_protocols or (t.protocol,)
    key = t.key("enabledProtocols") if t.enabled_protocols else t.key("protocol")
    if names == ("TLS",):  # the JDK's "TLS": every version it supports
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return
    try:
        versions = sorted(_VERSIONS[n] for n in names)
    except KeyError as e:
        raise SecurityConfigError(f"{key}: {e.args[0]!r} is not a TLS version pyzk has") from None
    ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]


def _ciphers(ctx: ssl.SSLContext, t: TlsSettings) -> None:
    cipher_string, unknown = ciphers.cipher_string(t.ciphersuites)
    if unknown:
        raise SecurityConfigError(
            f"{t.key('ciphersuites')}: unsupported cipher suites {', '.join(unknown)}"
        )
    if not cipher_string:
        if ctx.maximum_version != ssl.TLSVersion.TLSv1_3:
            raise SecurityConfigError(f"{t.key('ciphersuites')}: no TLS 1.2 suite left")
        return
    try:
        ctx.set_ciphers(cipher_string)
    except ssl.SSLError:
        raise SecurityConfigError(f"{t.key('ciphersuites')}: no usable cipher suite") from None


def _load_keystore(ctx: ssl.SSLContext, t: TlsSettings) -> None:
    assert t.keystore is not None
    key = t.key("keyStore.location")
    kind = store_type(t.key("keyStore.type"), t.keystore, t.keystore_type)
    password = read_password(
        t.key("keyStore.password"), t.keystore_password, t.keystore_password_path
    )
    if not t.keystore.is_file():
        raise SecurityConfigError(f"{key}: no such file {t.keystore}")
    if kind == "PKCS12":
        _load_pkcs12_keystore(ctx, key, t.keystore, password)
        return
    try:
        # Always a password callback: OpenSSL would otherwise prompt on the terminal.
        ctx.load_cert_chain(str(t.keystore), password=lambda: password.encode())
    except (ssl.SSLError, OSError) as e:
        raise SecurityConfigError(
            f"{key}: cannot load the key and certificate chain from {t.keystore} "
            f"({_reason(e)}; is {t.key('keyStore.password')} right?)"
        ) from None


def _load_pkcs12_keystore(ctx: ssl.SSLContext, key: str, path: Path, password: str) -> None:
    try:
        p12 = pkcs12.load_pkcs12(path.read_bytes(), password.encode() or None)
    except (ValueError, OSError) as e:
        raise SecurityConfigError(f"{key}: cannot read the PKCS#12 store {path} ({e})") from None
    if p12.key is None or p12.cert is None:
        raise SecurityConfigError(f"{key}: {path} holds no private key with its certificate")
    one_time = secrets.token_urlsafe(24).encode()
    pem = p12.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time),
    )
    pem += p12.cert.certificate.public_bytes(serialization.Encoding.PEM)
    for extra in p12.additional_certs:
        pem += extra.certificate.public_bytes(serialization.Encoding.PEM)
    fd, tmp = tempfile.mkstemp(prefix="pyzk-keystore-", suffix=".pem")
    try:
        os.write(fd, pem)
        os.close(fd)
        ctx.load_cert_chain(tmp, password=one_time)
    finally:
        os.unlink(tmp)


def _load_truststore(ctx: ssl.SSLContext, t: TlsSettings) -> None:
    assert t.truststore is not None
    key = t.key("trustStore.location")
    if not t.truststore.is_file():
        raise SecurityConfigError(f"{key}: no such file {t.truststore}")
    kind = store_type(t.key("trustStore.type"), t.truststore, t.truststore_type)
    try:
        if kind == "PEM":
            ctx.load_verify_locations(cafile=str(t.truststore))
            return
        password = read_password(
            t.key("trustStore.password"), t.truststore_password, t.truststore_password_path
        )
        p12 = pkcs12.load_pkcs12(t.truststore.read_bytes(), password.encode() or None)
        certs = ([p12.cert] if p12.cert else []) + list(p12.additional_certs)
        if not certs:
            raise SecurityConfigError(f"{key}: {t.truststore} holds no certificate")
        pem = b"".join(c.certificate.public_bytes(serialization.Encoding.PEM) for c in certs)
        ctx.load_verify_locations(cadata=pem.decode())
    except (ssl.SSLError, ValueError, OSError) as e:
        if isinstance(e, SecurityConfigError):
            raise
        raise SecurityConfigError(
            f"{key}: cannot load trusted certificates from {t.truststore} ({_reason(e)})"
        ) from None


def _reason(e: Exception) -> str:
    if isinstance(e, ssl.SSLError):
        return e.reason or str(e)
    return getattr(e, "strerror", None) or str(e)
