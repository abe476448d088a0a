"""Offline checks of docker/: hadolint, shellcheck, and what the Dockerfile promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import BIN, DOCKER, ROOT, dockerfile_exposed, run_tool, zoo_cfg

SCRIPTS = [DOCKER / "entrypoint.sh", DOCKER / "ready.sh", DOCKER / "build.sh"]
SCRIPTS += sorted((ROOT / "tests" / "deploy").glob("*.sh"))
LIBRARIES = [DOCKER / "zoo-cfg.sh"]  # sourced by the scripts, not run


def test_hadolint_passes_on_the_dockerfile() -> None:
    out = run_tool(BIN / "hadolint", DOCKER / "Dockerfile")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("script", SCRIPTS + LIBRARIES, ids=lambda p: p.name)
def test_shellcheck_passes(script: Path) -> None:
    out = run_tool(BIN / "shellcheck", "--external-sources", script)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_bash(script: Path) -> None:
    assert script.stat().st_mode & 0o111
    assert script.read_text().startswith("#!/usr/bin/env bash\n")


# --- the Dockerfile's promises --------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_base_image_is_pinned_to_a_release() -> None:
    (arg,) = [
        rest for word, rest in _instructions() if word == "ARG" and rest.startswith("PYTHON_IMAGE=")
    ]
    image = arg.split("=", 1)[1]
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-bookworm", image), image
    froms = [rest for word, rest in _instructions() if word == "FROM"]
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    ins = _instructions()
    args = dict(rest.split("=", 1) for word, rest in ins if word == "ARG" and "=" in rest)
    (user,) = [rest for word, rest in ins if word == "USER"]
    uid = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], user).split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_the_image_exposes_declares_volumes_checks_health_and_enters() -> None:
    ins = _instructions()
    assert dockerfile_exposed() == {2181, 2888, 3888, 7000, 8080}
    (volume,) = [rest for word, rest in ins if word == "VOLUME"]
    cfg = zoo_cfg()
    assert set(yaml.safe_load(volume)) == {cfg["dataDir"], cfg["dataLogDir"]}
    (health,) = [rest for word, rest in ins if word == "HEALTHCHECK"]
    assert health.endswith('CMD ["ready.sh"]')
    assert ("ENTRYPOINT", '["entrypoint.sh"]') in ins


def test_the_seed_zoo_cfg_settings_carry_over() -> None:
    assert zoo_cfg() == {
        "tickTime": "2000",
        "initLimit": "10",
        "syncLimit": "5",
        "dataDir": "/usr/local/zookeeper/data",
        "dataLogDir": "/usr/local/zookeeper/wal",
        "autopurge.purgeInterval": "1",
        "clientPort": "2181",
        "quorumListenOnAllIPs": "true",
    }


def test_the_build_context_sends_only_what_the_image_uses() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines  # everything is left out, but for what is named after it
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copies = [rest.split() for word, rest in _instructions() if word == "COPY"]
    sources = [src for args in copies if not args[0].startswith("--from") for src in args[:-1]]
    assert sources
    for src in sources:
        assert src.split("/")[0] in allowed, src
        assert (ROOT / src).exists(), src
