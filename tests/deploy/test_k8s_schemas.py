"""Offline checks of k8s/: yamllint, and the Kubernetes schemas of a pinned release.

The schemas ship with kubernetes-validate; strict mode makes a misspelt field fail
instead of being ignored. (What a schema cannot see is in test_topology.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import (
    BIN,
    K8S,
    ROOT,
    STATEFULSET,
    kubectl,
    load_all,
    render,
    resource_files,
    run_tool,
)

# The oldest Kubernetes release these manifests are meant for (policy/v1 PDBs,
# publishNotReadyAddresses, Parallel StatefulSets are all older than this).
KUBERNETES_VERSION = "1.30.0"

# The seed's pod spec, shortened: `volumes` twice, so YAML keeps only the second.
SEED_DUPLICATE_VOLUMES = """\
---
spec:
  volumes:
    - name: data
      emptyDir: {}
  containers:
    - name: server
  volumes:
    - name: zookeeper-datadir-pvc-1
"""


def test_yamllint_passes_on_the_manifests() -> None:
    out = run_tool(BIN / "yamllint", "--strict", "k8s", ".yamllint.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_yamllint_and_the_loader_catch_the_seeds_duplicate_volumes(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED_DUPLICATE_VOLUMES)
    out = run_tool(BIN / "yamllint", "-c", ROOT / ".yamllint.yaml", seed)
    assert out.returncode != 0
    assert 'duplication of key "volumes"' in out.stdout
    with pytest.raises(yaml.YAMLError, match="duplicate key 'volumes'"):
        load_all(SEED_DUPLICATE_VOLUMES)


@pytest.mark.parametrize("folder", [K8S, STATEFULSET], ids=["k8s", "statefulset"])
def test_manifests_validate_against_the_kubernetes_schemas(folder: Path) -> None:
    files = resource_files(folder)
    out = run_tool(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, *files)
    assert out.returncode == 0, out.stdout + out.stderr
    # Every object was checked against a schema (none skipped for an unknown kind).
    assert "Couldn't find schema" not in out.stdout + out.stderr
    assert out.stdout.count(" passed for resource ") == sum(
        len(load_all(f.read_text())) for f in files
    )


def test_a_misspelt_field_fails_validation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (K8S / "zookeeper.yaml").read_text().replace("readinessProbe:", "readynessProbe:", 1)
    )
    out = run_tool(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, bad)
    assert out.returncode != 0
    assert "readynessProbe" in out.stdout + out.stderr


@pytest.mark.skipif(kubectl() is None, reason="kubectl (for kustomize) not installed")
@pytest.mark.parametrize("folder", [K8S, STATEFULSET], ids=["k8s", "statefulset"])
def test_kustomize_output_validates(folder: Path, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(render(folder)))
    out = run_tool(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, rendered)
    assert out.returncode == 0, out.stdout + out.stderr
