# pyzk: the two quick-start commands are `make run` and `make test`.
# Both set up what they need on a fresh Debian machine (a venv with the project and its
# test tools; the test command also installs Apache ZooKeeper, the reference server).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ZK_JAR := /usr/share/java/zookeeper.jar
PORT   ?= 2181
DATA   ?= ./data

.PHONY: run test lint typecheck unit venv zookeeper bench clean

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

# A standalone server on 127.0.0.1:2181 with its data under ./data.
run: venv
	$(PY) -m pyzk --client-address 127.0.0.1 --client-port $(PORT) --data-dir $(DATA)

lint: venv
	$(VENV)/bin/ruff check pyzk tests bench
	$(VENV)/bin/ruff format --check pyzk tests bench

typecheck: venv
	$(VENV)/bin/mypy

# The whole suite: lint, types, unit, integration (pyzk and Apache ZooKeeper side by side).
test: venv zookeeper lint typecheck
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
