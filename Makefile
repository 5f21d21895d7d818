# The two commands that matter: `make run` and `make test`. Both work on a fresh machine with
# Python 3.11 and the package registries; they create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PRESET ?= quickstart
RUN_DIR ?= runs/$(PRESET)
# LeRobot's dataset package (tests/data/test_lerobot_interop.py checks lwd's LeRobot export and import
# against it) pins huggingface-hub < 0.36, packaging < 26 and setuptools < 81, which conflict with lwd's
# own dependencies, so it gets its own environment. torchvision is an undeclared dependency of it;
# 0.28.0 is the release paired with torch 2.13.0.
LEROBOT_VENV := $(VENV)/lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.installed-stamp
LEROBOT_PINS := "torch==2.13.0" "torchvision==0.28.0" "lerobot-dataset==0.4.4"

.PHONY: run test test-all test-slow bench lint setup lerobot-env clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev,scale]"
	@touch $(STAMP)

lerobot-env: $(LEROBOT_STAMP)

$(LEROBOT_STAMP): Makefile
	@test -x $(LEROBOT_VENV)/bin/python || $(PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LEROBOT_VENV)/bin/python -m pip install --quiet $(LEROBOT_PINS)
	@touch $(LEROBOT_STAMP)

run: setup
	$(VENV)/bin/lwd run --preset $(PRESET) --run-dir $(RUN_DIR)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

test: setup lint lerobot-env
	@bash scripts/ensure_redis.sh >/dev/null
	@bash scripts/ensure_chromium.sh >/dev/null
	$(VENV)/bin/pytest -q

test-slow: setup
	@bash scripts/ensure_redis.sh >/dev/null
	$(VENV)/bin/pytest -q -m "slow"

bench: setup
	@bash scripts/ensure_redis.sh >/dev/null
	$(PY) benchmarks/envs_bench.py
	$(PY) benchmarks/collect_bench.py
	$(PY) benchmarks/policy_bench.py
	$(PY) benchmarks/learner_step_bench.py
	$(PY) benchmarks/dataplane_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
