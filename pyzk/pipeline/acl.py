"""ACLs and authentication, as ZooKeeper's server checks them.

Theory of operation
-------------------
A connection carries the ids it has proven (:class:`AuthInfo`): ``ip:<address>`` from
the start, then one per successful ``addauth`` (ZooKeeper's ``ServerCnxn.authInfo``).
A node's ACL is a list of ``(perms, scheme, id)``; an operation needing permission P is
allowed when some entry grants P to ``world:anyone`` or to an id the connection holds,
as the scheme's provider matches it (``ZooKeeperServer.checkACL``). The ``super`` id,
won by authenticating with the configured superDigest, passes every check, and so does
everything when ``skipACL=yes``.

The schemes are ZooKeeper's default providers (``ProviderRegistry``): ``digest``
(``user:base64(sha1(user:password))``) and ``ip`` (IPv4, with an optional ``/bits``
mask). ``world`` and ``auth`` are not providers but special cases of
:func:`fixup_acl`: ``auth`` entries expand to the connection's authenticated ids.

ZooKeeper keeps ``authInfo`` in a ``ConcurrentHashMap`` set, so whoAmI and the expansion
of ``auth`` ACLs list ids in Java's hash order, not the order they were added.
:class:`AuthInfo` reproduces that order, so clients see the same lists.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

from pyzk.jute.codes import Err
from pyzk.pipeline.errors import KeeperError
from pyzk.security import x500
from pyzk.security.sasl import SaslConfig, kerberos_name_valid
from pyzk.tree.java_order import java_string_hash
from pyzk.tree.txn import AclEntry, AclList

Id = tuple[str, str]  # (scheme, id)

SUPER: Id = ("super", "")
WORLD_ANYONE: Id = ("world", "anyone")


@dataclass(frozen=True, slots=True)
class Security:
    """The server's ACL settings, shared by every connection."""

    skip_acl: bool = False  # zookeeper.skipACL=yes: no ACL is checked at all
    super_digest: str | None = None  # DigestAuthenticationProvider.superDigest
    # Schemes beyond digest and ip: authProvider.N, and x509 with a secure client port.
    providers: frozenset[str] = frozenset()
    x509_super_user: str | None = None  # X509AuthenticationProvider.superUser
    sasl: SaslConfig | None = field(default=None, repr=False)  # None: no SASL login
    enforce_schemes: frozenset[str] = frozenset()  # enforce.auth.schemes (empty: off)

    def provider(self, scheme: str) -> Provider | None:
        """The scheme's provider, if this server has it (ProviderRegistry.getProvider)."""
        p = PROVIDERS.get(scheme)
        if p is None or (scheme not in _DEFAULT_SCHEMES and scheme not in self.providers):
            return None
        return p


# --- providers ---------------------------------------------------------------------------


def digest(user_password: str) -> str:
    """``user:base64(sha1(user:password))``, as DigestAuthenticationProvider.generateDigest."""
    user = user_password.split(":", 1)[0]
    sha = hashlib.sha1(user_password.encode()).digest()
    return f"{user}:{base64.b64encode(sha).decode()}"


def _java_split(s: str, sep: str) -> list[str]:
    """Java's ``String.split(sep)``: trailing empty strings are dropped."""
    if sep not in s:
        return [s]
    parts = s.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


_JAVA_INT = re.compile(r"[+-]?[0-9]+")


def _java_int(s: str) -> int | None:
    """``Integer.parseInt``: an optional sign and ASCII digits, in int range."""
    if not _JAVA_INT.fullmatch(s):
        return None
    n = int(s)
    return n if -(1 << 31) <= n < (1 << 31) else None


def _v4_bytes(addr: str) -> list[int] | None:
    parts = addr.split(".")  # Java's split(regex, -1) keeps empty parts: so does this
    if len(parts) != 4:
        return None
    out = []
    for p in parts:
        v = _java_int(p)
        if v is None or not 0 <= v <= 255:
            return None
        out.append(v)
    return out


def _ip_bits(expr: str) -> tuple[list[int], int] | None:
    """(address bytes, mask bits) of an ip ACL id ``a.b.c.d[/bits]``, None if invalid."""
    addr, slash, bits_s = expr.partition("/")
    b = _v4_bytes(addr)
    if b is None:
        return None
    bits = 32
    if slash:
        n = _java_int(bits_s)
        if n is None or not 0 <= n <= 32:
            return None
        bits = n
    return b, bits


def _mask(b: list[int], bits: int) -> list[int]:
    full, rest = divmod(bits, 8)
    out = b[:full]
    if full < 4:
        out.append(b[full] & (~((1 << (8 - rest)) - 1) & 0xFF))
        out += [0] * (3 - full)
    return out


def _ip_valid(expr: str) -> bool:
    return _ip_bits(expr) is not None


def _ip_matches(client: str, expr: str) -> bool:
    acl = _ip_bits(expr)
    remote = _v4_bytes(client)
    if acl is None or remote is None:  # IPv6 clients never match (as in ZooKeeper 3.8)
        return False
    addr, bits = acl
    return _mask(remote, bits) == _mask(addr, bits)


def _digest_valid(expr: str) -> bool:
    return len(_java_split(expr, ":")) == 2


def _sasl_matches(ident: str, expr: str) -> bool:
    """SASLAuthenticationProvider.matches: the user named super matches every sasl ACL."""
    return ident in ("super", expr)


_VALID = {"digest": _digest_valid, "ip": _ip_valid, "sasl": kerberos_name_valid,
          "x509": x500.is_valid}  # fmt: skip
_MATCHES = {"digest": str.__eq__, "ip": _ip_matches, "sasl": _sasl_matches, "x509": str.__eq__}


@dataclass(frozen=True, slots=True)
class Provider:
    """One authentication scheme (ZooKeeper's AuthenticationProvider)."""

    scheme: str
    authenticated: bool  # do its ids stand for a user ("auth" ACLs expand to them)?

    def is_valid(self, expr: str) -> bool:
        return _VALID[self.scheme](expr)

    def matches(self, ident: str, expr: str) -> bool:
        return bool(_MATCHES[self.scheme](ident, expr))

    def user_name(self, ident: str) -> str:
        if self.scheme == "digest":
            return (_java_split(ident, ":") or [""])[0]
        return ident


# ProviderRegistry: ip and digest always; sasl and x509 when configured (Security.providers).
PROVIDERS: dict[str, Provider] = {
    "digest": Provider("digest", authenticated=True),
    "ip": Provider("ip", authenticated=False),
    "sasl": Provider("sasl", authenticated=True),
    "x509": Provider("x509", authenticated=True),
}
_DEFAULT_SCHEMES = frozenset({"digest", "ip"})


# --- the ids of a connection ---------------------------------------------------------------


def _java_id_hash(ident: Id) -> int:
    """``Id.hashCode()`` as jute generates it, spread as ConcurrentHashMap does."""
    h = 17
    h = (37 * h + java_string_hash(ident[0])) & 0xFFFFFFFF
    h = (37 * h + java_string_hash(ident[1])) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 0x7FFFFFFF


_INITIAL_BINS = 16  # ConcurrentHashMap's default capacity


class AuthInfo:
    """The ids a connection holds, iterated in ZooKeeper's (Java hash set) order.

    Emulates a ``ConcurrentHashMap``: bins by hash, appended in a bin, the table doubled
    at three quarters full with Java's split of each bin. (Java turns a bin of 8+ into a
    tree once the table has 64 bins; no connection holds that many ids.)
    """

    __slots__ = ("_bins", "_count", "_ids", "security")

    def __init__(self, security: Security | None = None) -> None:
        self.security = security or Security()
        self._bins: list[list[tuple[int, Id]]] = [[] for _ in range(_INITIAL_BINS)]
        self._count = 0
        self._ids: list[Id] | None = None  # ids() in order, kept until the next add

    def add(self, ident: Id) -> None:
        h = _java_id_hash(ident)
        n = len(self._bins)
        bin_ = self._bins[h & (n - 1)]
        if any(i == ident for _, i in bin_):
            return
        bin_.append((h, ident))
        self._count += 1
        self._ids = None
        if self._count >= n - (n >> 2):
            self._resize()

    def _resize(self) -> None:
        n = len(self._bins)
        new: list[list[tuple[int, Id]]] = [[] for _ in range(2 * n)]
        for i in range(n - 1, -1, -1):
            f = self._bins[i]
            if not f:
                continue
            # ConcurrentHashMap.transfer: the tail run keeps its order, the rest is
            # prepended one by one (so reversed) onto the low or high list.
            run_bit, last = f[0][0] & n, 0
            for j in range(1, len(f)):
                if (f[j][0] & n) != run_bit:
                    run_bit, last = f[j][0] & n, j
            lo = list(f[last:]) if run_bit == 0 else []
            hi = list(f[last:]) if run_bit != 0 else []
            for j in range(last):
                (lo if (f[j][0] & n) == 0 else hi).insert(0, f[j])
            new[i], new[i + n] = lo, hi
        self._bins = new

    def ids(self) -> list[Id]:
        """Every id, in ZooKeeper's order (checked on every request: computed once)."""
        if self._ids is None:
            self._ids = [ident for bin_ in self._bins for _, ident in bin_]
        return self._ids

    def __contains__(self, ident: Id) -> bool:
        return any(i == ident for bin_ in self._bins for _, i in bin_)

    # --- checks -----------------------------------------------------------------------

    def allows(self, acl: AclList, perm: int) -> bool:
        """May this connection do ``perm`` on a node with ``acl``? (checkACL)"""
        if self.security.skip_acl or not acl:
            return True
        for perms, scheme, expr in acl:
            if not perms & perm:
                continue
            if scheme == "world" and expr == "anyone":
                return True
            provider = self.security.provider(scheme)
            if provider is None:
                continue
            for s, ident in self.ids():
                if s == scheme and provider.matches(ident, expr):
                    return True
        # A super user may do anything (super:"" or x509's super:<subject>); checked last,
        # as the answer is the same and most requests are granted by the ACL itself.
        return any(s == "super" for s, _ in self.ids())

    def check(self, acl: AclList, perm: int) -> None:
        if not self.allows(acl, perm):
            raise KeeperError(Err.NOAUTH)

    def client_infos(self) -> list[tuple[str, str]]:
        """(scheme, user) pairs for whoAmI (AuthUtil.getClientInfos)."""
        out = []
        for scheme, ident in self.ids():
            provider = self.security.provider(scheme)
            out.append((scheme, provider.user_name(ident) if provider else ""))
        return out

    # --- addauth ----------------------------------------------------------------------

    def authenticate(self, scheme: str, auth: bytes, client_ip: str) -> bool:
        """An auth packet: add the ids it proves; False if the scheme is unknown."""
        if scheme == "digest":
            ident = digest(auth.decode("utf-8", "replace"))
            if ident == self.security.super_digest:
                self.add(SUPER)
            self.add(("digest", ident))
            return True
        if scheme == "ip":
            self.add(("ip", client_ip))
            return True
        return False


def fixup_acl(acl: list[AclEntry], auth: AuthInfo | None) -> AclList:
    """Validate an ACL for create/setACL and expand ``auth`` entries (fixupACL).

    Duplicates are dropped first; an empty list, an unknown scheme, an id the scheme
    does not accept, or an ``auth`` entry on a connection with no authenticated id is
    INVALIDACL.
    """
    security = auth.security if auth is not None else Security()
    unique: list[AclEntry] = []
    for a in acl:
        if a not in unique:
            unique.append(a)
    if not unique:
        raise KeeperError(Err.INVALIDACL)
    out: list[AclEntry] = []
    for perms, scheme, expr in unique:
        if scheme == "world" and expr == "anyone":
            out.append((perms, scheme, expr))
        elif scheme == "auth":
            expanded = False
            for s, ident in auth.ids() if auth is not None else ():
                provider = security.provider(s)
                if provider is not None and provider.authenticated:
                    expanded = True
                    out.append((perms, s, ident))
            if not expanded:
                raise KeeperError(Err.INVALIDACL)
        else:
            provider = security.provider(scheme)
            if provider is None or not provider.is_valid(expr):
                raise KeeperError(Err.INVALIDACL)
            out.append((perms, scheme, expr))
    return tuple(out)


def masked_for_reader(acl: AclList) -> AclList:
    """getACL without ADMIN: digest ids show as ``user:x`` (FinalRequestProcessor)."""
    return tuple((p, s, re.sub(r":.*", ":x", i) if s == "digest" else i) for p, s, i in acl)
