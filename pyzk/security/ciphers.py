"""Java (IANA) TLS cipher suite names, as ``ssl.ciphersuites`` takes them, to OpenSSL's.

ZooKeeper passes ``ssl.ciphersuites`` to the JDK, which names suites as the IANA registry
does (``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256``); OpenSSL, which Python's ``ssl`` wraps,
names them its own way (``ECDHE-RSA-AES128-GCM-SHA256``). The rename is regular for the
suites a ZooKeeper deployment uses (ECDHE/DHE/RSA key exchange, AES, CAMELLIA, CHACHA20).

TLS 1.3 suites (``TLS_AES_128_GCM_SHA256`` ...) keep their IANA names; Python cannot
restrict them, so they are accepted and always on when TLS 1.3 is.
"""

from __future__ import annotations

import ssl

# ZooKeeper 3.8's defaults on Java 9+ (X509Util.DEFAULT_CIPHERS_JAVA9): GCM, then CBC.
ZK_DEFAULT_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
)

TLS13_SUITES = frozenset(
    {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    }
)

_KEY_EXCHANGE = {
    "ECDHE_ECDSA": "ECDHE-ECDSA-",
    "ECDHE_RSA": "ECDHE-RSA-",
    "DHE_RSA": "DHE-RSA-",
    "DHE_DSS": "DHE-DSS-",
    "RSA": "",
}


def _openssl_cipher(rest: str) -> str | None:
    """``AES_128_GCM_SHA256`` -> ``AES128-GCM-SHA256``; ``AES_128_CBC_SHA`` -> ``AES128-SHA``."""
    parts = rest.split("_")
    if parts[:2] == ["CHACHA20", "POLY1305"]:
        return "CHACHA20-POLY1305"
    if len(parts) < 3 or parts[0] not in ("AES", "CAMELLIA", "ARIA"):
        return None
    cipher = parts[0] + parts[1]
    mode, mac = parts[2], parts[3:]
    if mode == "CBC":
        return "-".join([cipher, *mac])
    return "-".join([cipher, mode, *mac])


def to_openssl(name: str) -> str | None:
    """OpenSSL's name for a Java/IANA suite name, None when there is no such rename."""
    name = name.strip()
    if not name.startswith("TLS_") or "_WITH_" not in name:
        return None
    kx, _, rest = name[4:].partition("_WITH_")
    prefix = _KEY_EXCHANGE.get(kx)
    cipher = _openssl_cipher(rest)
    if prefix is None or cipher is None:
        return None
    return prefix + cipher


def available() -> frozenset[str]:
    """The TLS 1.2 suites this OpenSSL build has, by OpenSSL name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return frozenset(c["name"] for c in ctx.get_ciphers())


def cipher_string(suites: tuple[str, ...]) -> tuple[str, list[str]]:
    """(OpenSSL cipher string, the names it cannot use) for ``ssl.ciphersuites``."""
    have = available()
    names, unknown = [], []
    for suite in suites:
        if suite in TLS13_SUITES:
            continue
        openssl = to_openssl(suite)
        if openssl is None or openssl not in have:
            unknown.append(suite)
        else:
            names.append(openssl)
    return ":".join(names), unknown
