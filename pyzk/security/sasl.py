"""The server's SASL configuration: who may log in, and the id a login becomes.

ZooKeeper's SaslServerCallbackHandler, without I/O: the users of the JAAS ``Server``
section (``user_NAME="password"``), ``zookeeper.SASLAuthenticationProvider.superPassword``
for the user ``super``, and the authorized id a login is given, as its KerberosName rules
shorten it (``bob`` stays ``bob``; ``zk/host@REALM`` keeps host and realm unless
``kerberos.removeHostFromPrincipal`` / ``removeRealmFromPrincipal``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyzk.security.digest_md5 import DigestMD5Server

# KerberosName's parser: service[/host]@realm.
_KERBEROS_NAME = re.compile(r"([^/@]*)(/([^/@]*))?@([^/@]*)")


def kerberos_name_valid(name: str) -> bool:
    """``new KerberosName(name)`` succeeds (SASLAuthenticationProvider.isValid)."""
    return "@" not in name or _KERBEROS_NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class SaslConfig:
    """A server with a JAAS ``Server`` section: DIGEST-MD5 logins are possible."""

    users: Mapping[str, str] = field(repr=False)  # user -> password
    super_users: frozenset[str] = frozenset()  # zookeeper.superUser[.N]
    super_password: str | None = field(default=None, repr=False)
    allow_failed: bool = False  # zookeeper.allowSaslFailedClients
    remove_host: bool = False
    remove_realm: bool = False

    def password_of(self, user: str) -> str | None:
        if user == "super" and self.super_password is not None:
            return self.super_password
        return self.users.get(user)

    def authorized_id(self, user: str, authzid: str) -> str:
        """SaslServerCallbackHandler.handleAuthorizeCallback's canonical name."""
        m = _KERBEROS_NAME.fullmatch(user)
        if m is None:
            return user  # no realm: the short name is the name
        service, host, realm = m[1], m[3], m[4]
        out = service
        if host is not None and not self.remove_host:
            out += "/" + host
        if realm and not self.remove_realm:
            out += "@" + realm
        return out

    def new_server(self) -> DigestMD5Server:
        return DigestMD5Server(self.password_of, self.authorized_id)
