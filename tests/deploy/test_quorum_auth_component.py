"""k8s/quorum-auth/: the opt-in component that makes members authenticate each other.

Rendered (``kubectl kustomize``) over both topologies, as an overlay of the user's own
would: the result must validate against the Kubernetes schemas, and every server must get
the JAAS file from the Secret and the quorum.auth.* switches. The Secret is not in the
repository: its content is the operator's (k8s/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import (
    BIN,
    K8S,
    STATEFULSET,
    Obj,
    container,
    env,
    kubectl,
    pod_spec,
    render,
    run_tool,
)
from tests.deploy.test_k8s_schemas import KUBERNETES_VERSION

COMPONENT = K8S / "quorum-auth"
pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl (for kustomize) not installed")


def with_component(base: Path, tmp_path: Path) -> list[Obj]:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    rel = os.path.relpath(base, overlay)
    component = os.path.relpath(COMPONENT, overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {rel}\ncomponents:\n  - {component}\n"
    )
    return render(overlay)


@pytest.mark.parametrize("base", [K8S, STATEFULSET], ids=["k8s", "statefulset"])
def test_every_server_gets_the_secret_and_the_switches(base: Path, tmp_path: Path) -> None:
    objs = with_component(base, tmp_path)
    workloads = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]
    assert workloads
    for w in workloads:
        c = container(w)
        e = env(c)
        jaas = "/usr/local/zookeeper/secrets/jaas.conf"
        assert e["SERVER_JVMFLAGS"] == f"-Djava.security.auth.login.config={jaas}"
        extra = dict(kv.split("=", 1) for kv in e["ZOO_CFG_EXTRA"].split())
        assert extra == {
            "quorum.auth.enableSasl": "true",
            "quorum.auth.learnerRequireSasl": "true",
            "quorum.auth.serverRequireSasl": "true",
        }
        assert "MYID" in e or "ZOO_MYID_FROM_ORDINAL" in e  # the rest of env is kept
        volumes = {v["name"]: v for v in pod_spec(w)["volumes"]}
        assert volumes["quorum-auth"]["secret"]["secretName"] == "zookeeper-quorum-auth"
        assert volumes["quorum-auth"]["secret"]["defaultMode"] == 0o440
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts["quorum-auth"]["mountPath"] == str(Path(jaas).parent)
        assert mounts["quorum-auth"]["readOnly"] is True


@pytest.mark.parametrize("base", [K8S, STATEFULSET], ids=["k8s", "statefulset"])
def test_the_rendered_component_validates(base: Path, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(with_component(base, tmp_path)))
    out = run_tool(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, rendered)
    assert out.returncode == 0, out.stdout + out.stderr
