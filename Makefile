# pyzk: the two quick-start commands are `make run` and `make test`.
# Both set up what they need on a fresh Debian machine (a venv with the project and its
# test tools; the test command also installs Apache ZooKeeper, the reference server, and
# podman for the container image tests: `make test PYTEST_ARGS="-m 'not container'"`
# skips those).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ZK_JAR := /usr/share/java/zookeeper.jar
PORT   ?= 2181
DATA   ?= ./data

.PHONY: run test lint typecheck unit venv zookeeper container-tools bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	@touch $@

# The reference server for the differential tests, the zkCli.sh and cli_mt clients.
zookeeper:
	@[ -f $(ZK_JAR) ] && [ -x /usr/lib/zookeeper/bin/cli_mt ] || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			zookeeper zookeeper-bin libzookeeper-mt-dev; }

# podman, runc and debootstrap for the image tests in tests/deploy/ (a no-op when present).
container-tools:
	@command -v podman >/dev/null && command -v runc >/dev/null && \
		command -v debootstrap >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			podman runc debootstrap; }

# A standalone server on 127.0.0.1:2181 with its data under ./data.
run: venv
	$(PY) -m pyzk --client-address 127.0.0.1 --client-port $(PORT) --data-dir $(DATA)

# bench/ is linted once it exists (it arrives on its own branch).
LINT_DIRS := pyzk tests $(wildcard bench)

lint: venv
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)

typecheck: venv
	$(VENV)/bin/mypy

# The whole suite: lint, types, unit, integration (pyzk and Apache ZooKeeper side by side),
# deploy (docker/ and k8s/, the image built and run with podman).
test: venv zookeeper container-tools lint typecheck
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

unit: venv
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

# pyzk and Apache ZooKeeper side by side: writes bench/results/<date>.{json,md,png}.
# BENCH_ARGS=--quick for a run of a few minutes; see bench/README.md.
bench: venv zookeeper
	$(MAKE) -s -C bench/zkload
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
