"""X.500 names as ZooKeeper's ``x509`` scheme sees them.

A TLS client's id is its certificate's subject as Java prints it with
``X500Principal.getName()`` (RFC 2253): the RDNs last first, ``,`` between them, ``+``
inside a multi-valued one, the keywords CN C L ST O OU STREET DC UID and dotted OIDs with
a ``#``-hex DER value for every other attribute (``1.2.840.113549.1.9.1=#16…`` for an
e-mail address). ``is_valid`` is ``new X500Principal(id)`` succeeding, which
X509AuthenticationProvider.isValid uses to accept an id in an ACL.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cryptography is imported with the first certificate: start-up time
    from cryptography import x509

# AVAKeyword's RFC 2253 keywords, by OID: the only ones getName() prints by name.
_RFC2253_KEYWORDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# The keywords X500Principal(String) accepts (AVAKeyword, RFC 1779 and RFC 2253).
_PARSE_KEYWORDS = frozenset(
    {
        "CN", "C", "L", "S", "ST", "O", "OU", "T", "IP", "STREET", "DC", "DNQUALIFIER",
        "DNQ", "SURNAME", "GIVENNAME", "INITIALS", "GENERATION", "EMAIL", "EMAILADDRESS",
        "UID", "SERIALNUMBER",
    }
)  # fmt: skip
_ESCAPED = ',=+<>#;"\\'  # AVA.toRFC2253String's escapees

# DER tags of the string types a name attribute may have.
_UTF8, _PRINTABLE, _IA5, _BMP, _UNIVERSAL = 12, 19, 22, 30, 28


def _escape(value: str) -> str:
    out = "".join("\\" + c if c in _ESCAPED else c for c in value)
    if out.startswith(" "):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_value(attr: x509.NameAttribute[str | bytes]) -> bytes:
    value = attr.value
    if isinstance(value, bytes):
        raw, tag = value, 4  # an OCTET STRING
    else:
        asn1_type = getattr(attr, "_type", None)
        tag = int(asn1_type.value) if asn1_type is not None else _UTF8
        codec = {_BMP: "utf-16-be", _UNIVERSAL: "utf-32-be"}.get(tag, "utf-8")
        raw = value.encode(codec)
    return bytes([tag]) + _der_length(len(raw)) + raw


def _ava(attr: x509.NameAttribute[str | bytes]) -> str:
    keyword = _RFC2253_KEYWORDS.get(attr.oid.dotted_string)
    if keyword is None:
        return f"{attr.oid.dotted_string}=#{_der_value(attr).hex()}"
    value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
    return f"{keyword}={_escape(value)}"


def rfc2253(name: x509.Name) -> str:
    """``X500Principal.getName()`` of a certificate's subject."""
    return ",".join("+".join(_ava(a) for a in rdn) for rdn in reversed(name.rdns))


def subject_id(der_cert: bytes) -> str:
    """The x509 id of a client certificate (X509AuthenticationProvider.getClientId)."""
    from cryptography.x509 import load_der_x509_certificate

    return rfc2253(load_der_x509_certificate(der_cert).subject)


_OID = re.compile(r"(?:OID\.)?[0-9]+(?:\.[0-9]+)+", re.IGNORECASE)


def _split(s: str, seps: str) -> list[str] | None:
    """Split on unescaped separators outside quotes; None for a dangling quote/escape."""
    parts, cur, quoted, i = [], [], False, 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s):
                return None
            cur.append(s[i : i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c in seps and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if quoted:
        return None
    parts.append("".join(cur))
    return parts


def is_valid(dn: str) -> bool:
    """Would ``new X500Principal(dn)`` accept it? (An empty name is valid.)"""
    if not dn.strip():
        return True
    rdns = _split(dn, ",;")
    if rdns is None:
        return False
    for rdn in rdns:
        avas = _split(rdn, "+")
        if avas is None:
            return False
        for ava in avas:
            key, eq, value = ava.partition("=")
            key = key.strip()
            if not eq or not key:
                return False
            if key.upper() not in _PARSE_KEYWORDS and not _OID.fullmatch(key):
                return False
            v = value.strip()
            if v.startswith("#") and not re.fullmatch(r"#(?:[0-9A-Fa-f]{2})+", v):
                return False
    return True
