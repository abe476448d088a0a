"""zkCli.sh sessions per feature, run against pyzk and Apache ZooKeeper: same transcripts.

Each script exercises one feature of this issue the way an operator types it; the two
servers' transcripts must match once ids and times are masked (see test_zkcli.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import TARGETS
from tests.integration.test_zkcli import ZKCLI, normalise, run_zkcli
from tests.servers import ServerProcess, make_server

pytestmark = pytest.mark.skipif(not ZKCLI.exists(), reason="zkCli.sh not installed")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    found = {
        k: make_server(
            k,
            tmp_path_factory.mktemp(f"cli-{k}"),
            extra={"extendedTypesEnabled": "true"},
            jvm_flags=["-Dzookeeper.enforceQuota=true"],
        )
        for k in TARGETS
    }
    for s in found.values():
        s.start()
    yield found
    for s in found.values():
        s.stop()


SCRIPTS = {
    "acl": """create {r} top
addauth digest alice:secret
create {r}/a data auth::cdrwa
getAcl {r}/a
setAcl {r}/a world:anyone:r
getAcl {r}/a
set {r}/a denied
setAcl -v 5 {r}/a world:anyone:cdrwa
create {r}/b b digest:bob:nMQlcTc7IiBKPUdmmrZr6Hr6ASY=:r
getAcl {r}/b
get {r}/b
setAcl {r}/c world:anyone:r
create {r}/bad x foo:bar:r
whoami
addauth digest bob:pw
whoami
get {r}/b
""",
    "nodetypes": """create {r}
create -c {r}/container
stat {r}/container
create -t 100000 {r}/ttl data
stat {r}/ttl
create -t 0 {r}/ttl0 data
create -s -t 100000 {r}/seqttl x
ls {r}
create -e {r}/eph
create -e {r}/container/eph
getEphemerals {r}
getEphemerals /nothing
getAllChildrenNumber {r}
getAllChildrenNumber /
""",
    "watches": """create {r}
addWatch {r}
addWatch -m PERSISTENT_RECURSIVE {r}
addWatch -m BOGUS {r}
create {r}/x
set {r}/x 1
removewatches {r} -d
removewatches {r} -c
removewatches {r} -a
get -w {r}
removewatches {r} -d
removewatches /nowhere -a
""",
    "quota": """create {r}
create {r}/a 12345
setquota -n 5 {r}
listquota {r}
setquota -N 3 -B 100 {r}
listquota {r}
create {r}/b x
create {r}/c y
listquota {r}
delquota -n {r}
listquota {r}
delquota {r}
listquota {r}
""",
    "config": """config
reconfig -add server.5=127.0.0.1:1234:1235;1236
get /zookeeper/config
""",
}


@pytest.mark.parametrize("feature", sorted(SCRIPTS))
def test_zkcli_feature_transcripts_match(servers: dict[str, ServerProcess], feature: str) -> None:
    root = f"/cli{feature}{time.monotonic_ns()}"
    text = SCRIPTS[feature].format(r=root) + "quit\n"
    transcripts = {
        k: [line.replace(root, "/ROOT") for line in normalise(run_zkcli(s, text))]
        for k, s in servers.items()
    }
    for kind, lines in transcripts.items():
        assert lines, (kind, lines)
    if len(transcripts) == 2:
        assert transcripts["pyzk"] == transcripts["zookeeper"]
