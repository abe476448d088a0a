"""Helpers for tests/deploy: the manifests as a kustomization lists them, the image's
files, and the check tools installed in this venv.

The loader rejects a mapping with a duplicate key (the seed's pod specs declared
``volumes`` twice, and YAML silently keeps the last one). ``render`` goes through
``kubectl kustomize`` when kubectl is installed, for what a plain load cannot show
(components, image overrides).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
STATEFULSET = K8S / "statefulset"
DOCKER = ROOT / "docker"

# The venv's console scripts: yamllint, kubernetes-validate, hadolint, shellcheck.
BIN = Path(sys.executable).parent
TOOL_TIMEOUT_S = 60

Obj = dict[str, Any]


def run_tool(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    """A check tool, from the repository root, its output captured."""
    return subprocess.run(
        [str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S
    )


# PyYAML ships no type information (and types-PyYAML is not a dependency), so its
# SafeLoader is Any to mypy.
class _StrictLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A SafeLoader that refuses duplicate keys instead of keeping the last."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_all(text: str) -> list[Obj]:
    return [d for d in yaml.load_all(text, Loader=_StrictLoader) if d]


def kustomization(folder: Path) -> Obj:
    doc: Obj = yaml.load((folder / "kustomization.yaml").read_text(), Loader=_StrictLoader)
    return doc


def resource_files(folder: Path) -> list[Path]:
    return [folder / r for r in kustomization(folder)["resources"]]


def load_folder(folder: Path) -> list[Obj]:
    """Every object the folder's kustomization lists, read from its files."""
    objs: list[Obj] = []
    for f in resource_files(folder):
        objs.extend(load_all(f.read_text()))
    return objs


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render(folder: Path) -> list[Obj]:
    """``kubectl kustomize folder``, parsed (the caller skips when kubectl is absent)."""
    exe = kubectl()
    assert exe is not None
    out = subprocess.run(
        [exe, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=True
    )
    return load_all(out.stdout)


def by_kind(objs: Iterable[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def container(workload: Obj, name: str = "server") -> Obj:
    matches: list[Obj] = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    (c,) = matches
    return c


def env(c: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether an equality selector matches a label set (an empty one matches nothing)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def zoo_cfg() -> dict[str, str]:
    """docker/zoo.cfg, the template (plain key=value lines)."""
    lines = (DOCKER / "zoo.cfg").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def dockerfile_exposed() -> set[int]:
    text = (DOCKER / "Dockerfile").read_text()
    ports: set[int] = set()
    for line in text.splitlines():
        if line.startswith("EXPOSE "):
            ports |= {int(p.split("/")[0]) for p in line.split()[1:]}
    return ports


def entrypoint_default_servers() -> list[str]:
    m = re.search(
        r'^readonly DEFAULT_SERVERS="([^"]*)"', (DOCKER / "entrypoint.sh").read_text(), re.M
    )
    assert m, "entrypoint.sh has no DEFAULT_SERVERS"
    return m[1].split()


def quantity_bytes(q: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    m = re.fullmatch(r"(\d+)([KMGT]i)?", q)
    assert m, f"unexpected quantity {q!r}"
    return int(m[1]) * units.get(m[2] or "", 1)
