"""The seed's topology is in k8s/, with the seed's defects fixed; k8s/statefulset/ too.

What a schema cannot check: names, ports and NodePorts, selectors matching the pods
they are meant for (and only those), MYID per server, claims bound to their volumes,
the WAL on the persistent volume, container ports matching the image's EXPOSE.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from tests.deploy.manifests import (
    K8S,
    STATEFULSET,
    Obj,
    by_kind,
    container,
    dockerfile_exposed,
    entrypoint_default_servers,
    env,
    kubectl,
    load_folder,
    pod_labels,
    pod_spec,
    quantity_bytes,
    render,
    selects,
)

SERVERS = (1, 2, 3)
NAMESPACE = "test"
NODE_PORTS = {1: 32181, 2: 32182, 3: 32183}
NODE_PORT_RANGE = range(30000, 32768)  # the API server's default service-node-port-range
SEED_PORTS = {"client": 2181, "followers": 2888, "election": 3888}
DATA_DIR = "/usr/local/zookeeper/data"


@pytest.fixture(scope="module")
def objs() -> list[Obj]:
    return load_folder(K8S)


@pytest.fixture(scope="module")
def deployments(objs: list[Obj]) -> dict[str, Obj]:
    return by_kind(objs, "Deployment")


@pytest.fixture(scope="module")
def services(objs: list[Obj]) -> dict[str, Obj]:
    return by_kind(objs, "Service")


def _is_under(path: str, mount: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(mount))


def _claim_mount(workload: Obj, claim_volume: str) -> str:
    (m,) = [m for m in container(workload)["volumeMounts"] if m["name"] == claim_volume]
    assert "subPath" not in m, "a subPath directory is created root-owned; the server is not root"
    return str(m["mountPath"])


def _wal_dir(workload: Obj) -> str:
    return env(container(workload)).get("ZOO_DATA_LOG_DIR", "/usr/local/zookeeper/wal")


# --- k8s/: the seed's objects, one for one -----------------------------------------------


def test_the_seed_objects_are_all_there(objs: list[Obj]) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    expected = {("Namespace", NAMESPACE), ("Service", "zookeeper")}
    for n in SERVERS:
        expected |= {
            ("PersistentVolume", f"zookeeper-datadir-pv-{n}"),
            ("PersistentVolumeClaim", f"zookeeper-datadir-pvc-{n}"),
            ("Service", f"zookeeper{n}"),
            ("Deployment", f"zookeeper{n}"),
        }
    assert names == expected


def test_every_namespaced_object_is_in_namespace_test(objs: list[Obj]) -> None:
    for o in objs:
        if o["kind"] not in ("Namespace", "PersistentVolume"):
            assert o["metadata"].get("namespace") == NAMESPACE, o["metadata"]["name"]


def test_each_claim_is_bound_to_its_own_volume(objs: list[Obj]) -> None:
    pvs = by_kind(objs, "PersistentVolume")
    pvcs = by_kind(objs, "PersistentVolumeClaim")
    for n in SERVERS:
        pv, pvc = pvs[f"zookeeper-datadir-pv-{n}"], pvcs[f"zookeeper-datadir-pvc-{n}"]
        assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
        assert pv["spec"]["claimRef"] == {"namespace": NAMESPACE, "name": pvc["metadata"]["name"]}
        assert set(pvc["spec"]["accessModes"]) <= set(pv["spec"]["accessModes"])
        assert quantity_bytes(pvc["spec"]["resources"]["requests"]["storage"]) <= quantity_bytes(
            pv["spec"]["capacity"]["storage"]
        )
        # The same (empty) class on both, so a default StorageClass cannot step in.
        assert pvc["spec"].get("storageClassName") == pv["spec"].get("storageClassName", "")
        assert pv["spec"]["nfs"]["path"].endswith(f"zookeeper-datadir-{n}")
    paths = [pv["spec"]["nfs"]["path"] for pv in pvs.values()]
    assert len(set(paths)) == len(paths)


def test_the_client_service_selects_every_server(
    services: dict[str, Obj], deployments: dict[str, Obj]
) -> None:
    svc = services["zookeeper"]
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("client", 2181)]
    selected = {
        n for n, d in deployments.items() if selects(svc["spec"]["selector"], pod_labels(d))
    }
    assert selected == {f"zookeeper{n}" for n in SERVERS}


@pytest.mark.parametrize("n", SERVERS)
def test_each_server_service_is_a_nodeport_selecting_only_its_server(
    n: int, services: dict[str, Obj], deployments: dict[str, Obj]
) -> None:
    svc = services[f"zookeeper{n}"]
    spec = svc["spec"]
    assert spec["type"] == "NodePort"
    ports = {p["name"]: p for p in spec["ports"]}
    assert {k: p["port"] for k, p in ports.items()} == SEED_PORTS
    assert ports["client"]["nodePort"] == NODE_PORTS[n]
    assert ports["client"]["nodePort"] in NODE_PORT_RANGE
    assert spec["selector"] == {"app": "zookeeper", "server-id": str(n)}
    selected = [d for d, dep in deployments.items() if selects(spec["selector"], pod_labels(dep))]
    assert selected == [f"zookeeper{n}"]
    # Peers must reach each other before any is ready (readiness needs a quorum).
    assert spec["publishNotReadyAddresses"] is True
    named = {p["name"]: p["containerPort"] for p in container(deployments[selected[0]])["ports"]}
    for p in spec["ports"]:
        assert named[p["targetPort"]] == p["port"], p


def test_node_ports_are_distinct(services: dict[str, Obj]) -> None:
    node_ports = [
        p["nodePort"] for s in services.values() for p in s["spec"]["ports"] if "nodePort" in p
    ]
    assert sorted(node_ports) == sorted(NODE_PORTS.values())


def test_the_entrypoint_default_ensemble_is_the_server_services(services: dict[str, Obj]) -> None:
    assert entrypoint_default_servers() == [f"zookeeper{n}" for n in SERVERS]
    for host in entrypoint_default_servers():
        assert {p["port"] for p in services[host]["spec"]["ports"]} >= {2888, 3888}


@pytest.mark.parametrize("n", SERVERS)
def test_each_deployment_runs_server_n_with_its_id(n: int, deployments: dict[str, Obj]) -> None:
    dep = deployments[f"zookeeper{n}"]
    spec = dep["spec"]
    assert spec["replicas"] == 1
    # Never two pods with one id and one volume: the old one stops before the new starts.
    assert spec["strategy"]["type"] == "Recreate"
    assert spec["selector"]["matchLabels"] == {"app": "zookeeper", "server-id": str(n)}
    assert pod_labels(dep) == spec["selector"]["matchLabels"]
    c = container(dep)
    assert env(c)["MYID"] == str(n)
    assert len({e["name"] for e in c["env"]}) == len(c["env"])
    assert c["image"].startswith("pyzk:")


def test_deployment_selectors_do_not_overlap(deployments: dict[str, Obj]) -> None:
    """The seed's Deployments all selected app=zookeeper, each claiming the others' pods."""
    for name, dep in deployments.items():
        sel = dep["spec"]["selector"]["matchLabels"]
        claimed = [other for other, o in deployments.items() if selects(sel, pod_labels(o))]
        assert claimed == [name]


@pytest.mark.parametrize("n", SERVERS)
def test_volumes_are_declared_once_and_every_mount_has_one(
    n: int, deployments: dict[str, Obj]
) -> None:
    """The seed declared `volumes` twice (the loader refuses duplicate keys) and mounted
    a volume that the surviving declaration did not have."""
    spec = pod_spec(deployments[f"zookeeper{n}"])
    names = [v["name"] for v in spec["volumes"]]
    assert len(set(names)) == len(names)
    for m in container(deployments[f"zookeeper{n}"])["volumeMounts"]:
        assert m["name"] in names, m


@pytest.mark.parametrize("n", SERVERS)
def test_data_and_wal_are_on_the_servers_persistent_volume(
    n: int, deployments: dict[str, Obj]
) -> None:
    dep = deployments[f"zookeeper{n}"]
    volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    (claim_volume,) = [k for k, v in volumes.items() if "persistentVolumeClaim" in v]
    assert (
        volumes[claim_volume]["persistentVolumeClaim"]["claimName"] == f"zookeeper-datadir-pvc-{n}"
    )
    mount = _claim_mount(dep, claim_volume)
    assert mount == DATA_DIR
    assert _is_under(_wal_dir(dep), mount)
    assert not any(v.get("emptyDir", {}).get("medium") == "Memory" for v in volumes.values())


@pytest.mark.parametrize("n", SERVERS)
def test_readiness_is_the_ready_script(n: int, deployments: dict[str, Obj]) -> None:
    c = container(deployments[f"zookeeper{n}"])
    probe = c["readinessProbe"]
    assert probe["exec"]["command"] == ["ready.sh"]
    # ready.sh gives up on the server after 3 s; the probe must wait longer than that.
    assert probe["timeoutSeconds"] > 3
    assert c["livenessProbe"]["tcpSocket"]["port"] == "client"


@pytest.mark.parametrize("n", SERVERS)
def test_container_ports_are_the_images(n: int, deployments: dict[str, Obj]) -> None:
    ports = {p["containerPort"] for p in container(deployments[f"zookeeper{n}"])["ports"]}
    assert ports == dockerfile_exposed()
    assert ports >= set(SEED_PORTS.values())


@pytest.mark.parametrize("n", SERVERS)
def test_pods_run_as_the_images_non_root_user(n: int, deployments: dict[str, Obj]) -> None:
    ctx = pod_spec(deployments[f"zookeeper{n}"])["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == ctx["fsGroup"] == 1000


# --- the opt-in in-memory WAL -------------------------------------------------------------


needs_kubectl = pytest.mark.skipif(
    kubectl() is None, reason="kubectl (for kustomize) not installed"
)


@needs_kubectl
def test_kustomize_renders_what_the_files_say() -> None:
    rendered = {(o["kind"], o["metadata"]["name"]) for o in render(K8S)}
    assert rendered == {(o["kind"], o["metadata"]["name"]) for o in load_folder(K8S)}


@needs_kubectl
def test_the_in_memory_wal_component_moves_only_the_wal(tmp_path: Path) -> None:
    # An overlay of the user's own that turns the component on (kustomize wants relative paths).
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    base = os.path.relpath(K8S, overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {base}\ncomponents:\n  - {base}/wal-in-memory\n"
    )
    for name, dep in by_kind(render(overlay), "Deployment").items():
        volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container(dep)["volumeMounts"]}
        wal = _wal_dir(dep)
        assert volumes[mounts[wal]]["emptyDir"]["medium"] == "Memory", name
        assert "sizeLimit" in volumes[mounts[wal]]["emptyDir"]
        assert volumes[mounts[DATA_DIR]]["persistentVolumeClaim"]["claimName"].startswith(
            "zookeeper-datadir-pvc-"
        )


# --- k8s/statefulset/ ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sts_objs() -> list[Obj]:
    return load_folder(STATEFULSET)


@pytest.fixture(scope="module")
def sts(sts_objs: list[Obj]) -> Obj:
    (only,) = by_kind(sts_objs, "StatefulSet").values()
    return only


def test_statefulset_has_a_headless_service_for_stable_names(sts_objs: list[Obj], sts: Obj) -> None:
    services = by_kind(sts_objs, "Service")
    headless = services[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert {p["name"]: p["port"] for p in headless["spec"]["ports"]} == SEED_PORTS
    for svc in services.values():
        assert selects(svc["spec"]["selector"], pod_labels(sts)), svc["metadata"]["name"]
    assert [p["port"] for p in services["zookeeper"]["spec"]["ports"]] == [2181]


def test_statefulset_of_three_starts_all_at_once(sts: Obj) -> None:
    spec = sts["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    assert selects(spec["selector"]["matchLabels"], pod_labels(sts))


def test_statefulset_ids_come_from_the_ordinal_and_match_the_server_list(sts: Obj) -> None:
    e = env(container(sts))
    assert e["ZOO_MYID_FROM_ORDINAL"] == "true"
    name, headless = sts["metadata"]["name"], sts["spec"]["serviceName"]
    expected = [f"{name}-{i}.{headless}:2888:3888" for i in range(sts["spec"]["replicas"])]
    # Entry k (from 1) is server.k, and pod name-(k-1) takes id k from its ordinal.
    assert e["ZOO_SERVERS"].split() == expected


def test_statefulset_keeps_data_and_wal_on_its_claim(sts: Obj) -> None:
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mount = _claim_mount(sts, claim["metadata"]["name"])
    assert mount == DATA_DIR
    assert _is_under(_wal_dir(sts), mount)
    declared = {v["name"] for v in pod_spec(sts)["volumes"]} | {claim["metadata"]["name"]}
    assert {m["name"] for m in container(sts)["volumeMounts"]} <= declared


def test_statefulset_pdb_allows_one_server_down(sts_objs: list[Obj], sts: Obj) -> None:
    (pdb,) = by_kind(sts_objs, "PodDisruptionBudget").values()
    assert pdb["spec"]["maxUnavailable"] == 1
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(sts))


def test_statefulset_probes_resources_and_anti_affinity(sts: Obj) -> None:
    c = container(sts)
    assert c["readinessProbe"]["exec"]["command"] == ["ready.sh"]
    assert c["livenessProbe"]["tcpSocket"]["port"] == "client"
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    terms = pod_spec(sts)["affinity"]["podAntiAffinity"]
    (term,) = terms["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert selects(term["podAffinityTerm"]["labelSelector"]["matchLabels"], pod_labels(sts))
    assert {p["containerPort"] for p in c["ports"]} == dockerfile_exposed()


def test_statefulset_pods_do_not_match_the_deployments_selectors(
    sts: Obj, deployments: dict[str, Obj]
) -> None:
    for dep in deployments.values():
        assert not selects(dep["spec"]["selector"]["matchLabels"], pod_labels(sts))
        assert not selects(sts["spec"]["selector"]["matchLabels"], pod_labels(dep))
