# depthmaster_ros developer entry points. `make demo` and `make test` work on a fresh machine (set-up included).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := build/demo
# Real weights: make demo CHECKPOINT=/path/to/DepthMaster (a folder in the official layout)
CHECKPOINT ?= $(DEMO_DIR)/tiny_checkpoint
PYTEST_ARGS ?=

# Tests and demos never reach the network or the LAN: hub offline, ROS discovery on this machine only.
export HF_HUB_OFFLINE := 1
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: setup test test-fast test-system demo clean

setup: $(STAMP)

# pip prints a harmless "Location ... is ignored" line per package for this machine's extra local indexes.
$(STAMP): requirements.txt requirements-dev.txt setup.py setup.cfg package.xml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt 2>&1 \
		| { grep -v "is ignored: it is neither a file nor a directory" || true; }
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Two tiers. test/unit: in-process only (no subprocess, no node process or ROS graph, no Ray, no colcon, no
# torch.compile), about a minute; run it on every change. test/system: processes, the node, Ray, colcon, the
# commands of the README and docs/. `make test` runs the fast tier first, then the rest, and prints the slowest tests.
test-fast: setup
	$(PY) -m pytest -q test/unit --durations=10 $(PYTEST_ARGS)

test-system: setup
	$(PY) -m pytest -q test/system --durations=25 $(PYTEST_ARGS)

test: test-fast test-system

demo: setup
	@if [ "$(CHECKPOINT)" = "$(DEMO_DIR)/tiny_checkpoint" ]; then \
		echo "== No CHECKPOINT given: generating a tiny checkpoint with RANDOM weights (smoke test, not a result)"; \
		$(BIN)/depthmaster-make-tiny-checkpoint $(DEMO_DIR)/tiny_checkpoint; \
	fi
	$(BIN)/depthmaster-make-sample-image $(DEMO_DIR)/sample.png
	@echo "== 1/2 The image CLI on a generated picture"
	$(BIN)/depthmaster-infer --checkpoint $(CHECKPOINT) --output $(DEMO_DIR)/out $(DEMO_DIR)/sample.png
	@echo "== Outputs in $(DEMO_DIR)/out:"; ls -1 $(DEMO_DIR)/out
	@echo "== 2/2 The ROS 2 node on a sample bag (node, recorder, player as processes; localhost discovery) and depthmaster-bag"
	ROS_LOG_DIR=$(CURDIR)/$(DEMO_DIR)/ros_log $(BIN)/depthmaster-demo --checkpoint $(CHECKPOINT) --output $(DEMO_DIR)/node

clean:
	rm -rf build install log .pytest_cache
