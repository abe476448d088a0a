"""Every jute record of the client protocol, declared once (``zookeeper.jute``).

Field order is the wire order. ``@record`` makes each class a slotted record whose codec is
compiled on first use (see codec.py). The annotations are evaluated as the classes are
defined (no ``from __future__ import annotations``): ``@record`` reads them as objects,
with no string to evaluate at import.
The connect handshake's trailing ``readOnly`` byte is not part of the jute records; the
connection layer handles it, as ZooKeeper's ServerCnxn does.
"""

from typing import Annotated

from pyzk.jute.codec import (
    STR,
    Bool,
    Buffer,
    Int,
    Long,
    Record,
    UString,
    Vector,
    record,
)


@record
class Id(Record):
    scheme: UString
    id: UString


@record
class ACL(Record):
    perms: Int
    id: Id


ACLs = Annotated[list[ACL], Vector(ACL)]
Strings = Annotated[list[str], Vector(STR)]


@record
class Stat(Record):
    czxid: Long
    mzxid: Long
    ctime: Long
    mtime: Long
    version: Int
    cversion: Int
    aversion: Int
    ephemeralOwner: Long
    dataLength: Int
    numChildren: Int
    pzxid: Long


@record
class ClientInfo(Record):
    authScheme: UString
    user: UString


# --- handshake ---------------------------------------------------------------------------


@record
class ConnectRequest(Record):
    protocolVersion: Int
    lastZxidSeen: Long
    timeOut: Int
    sessionId: Long
    passwd: Buffer


@record
class ConnectResponse(Record):
    protocolVersion: Int
    timeOut: Int
    sessionId: Long
    passwd: Buffer


# --- headers -----------------------------------------------------------------------------


@record
class RequestHeader(Record):
    xid: Int
    type: Int


@record
class ReplyHeader(Record):
    xid: Int
    zxid: Long
    err: Int


@record
class MultiHeader(Record):
    type: Int
    done: Bool
    err: Int


@record
class WatcherEvent(Record):
    type: Int
    state: Int
    path: UString


@record
class AuthPacket(Record):
    type: Int
    scheme: UString
    auth: Buffer


# --- requests ----------------------------------------------------------------------------


@record
class PathRequest(Record):
    """Requests that carry only a path: sync, getACL, getAllChildrenNumber, getEphemerals."""

    path: UString


@record
class PathWatchRequest(Record):
    """exists, getData, getChildren and getChildren2 requests: a path and a watch flag."""

    path: UString
    watch: Bool


@record
class CreateRequest(Record):
    path: UString
    data: Buffer
    acl: ACLs
    flags: Int


@record
class CreateTTLRequest(Record):
    path: UString
    data: Buffer
    acl: ACLs
    flags: Int
    ttl: Long


@record
class DeleteRequest(Record):
    path: UString
    version: Int


@record
class SetDataRequest(Record):
    path: UString
    data: Buffer
    version: Int


@record
class SetACLRequest(Record):
    path: UString
    acl: ACLs
    version: Int


@record
class CheckVersionRequest(Record):
    path: UString
    version: Int


@record
class SetWatches(Record):
    relativeZxid: Long
    dataWatches: Strings
    existWatches: Strings
    childWatches: Strings


@record
class SetWatches2(Record):
    relativeZxid: Long
    dataWatches: Strings
    existWatches: Strings
    childWatches: Strings
    persistentWatches: Strings
    persistentRecursiveWatches: Strings


@record
class AddWatchRequest(Record):
    path: UString
    mode: Int


@record
class WatchesRequest(Record):
    """checkWatches and removeWatches: a path and a WatcherType."""

    path: UString
    type: Int


@record
class ReconfigRequest(Record):
    joiningServers: UString
    leavingServers: UString
    newMembers: UString
    curConfigId: Long


@record
class GetSASLRequest(Record):
    token: Buffer


# --- responses ---------------------------------------------------------------------------


@record
class StatResponse(Record):
    """exists, setData and setACL responses: one Stat."""

    stat: Stat


@record
class PathResponse(Record):
    """create and sync responses: one path."""

    path: UString


@record
class Create2Response(Record):
    path: UString
    stat: Stat


@record
class GetDataResponse(Record):
    data: Buffer
    stat: Stat


@record
class GetChildrenResponse(Record):
    children: Strings


@record
class GetChildren2Response(Record):
    children: Strings
    stat: Stat


@record
class GetACLResponse(Record):
    acl: ACLs
    stat: Stat


@record
class GetAllChildrenNumberResponse(Record):
    totalNumber: Int


@record
class GetEphemeralsResponse(Record):
    ephemerals: Strings


@record
class WhoAmIResponse(Record):
    clientInfo: Annotated[list[ClientInfo], Vector(ClientInfo)]


@record
class ErrorResponse(Record):
    err: Int


@record
class SetSASLResponse(Record):
    token: Buffer
