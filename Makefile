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
# 0.28.0 is the release paired with torch 2.13.0. The same environment runs LeRobot's SmolVLA model
# code for tests/policy/test_lerobot_real.py (lwd's src on PYTHONPATH): lerobot 0.4.4 itself pins
# torch < 2.11 and transformers < 5, so it goes in with --no-deps, after transformers 4.57 and the few
# packages that `lerobot.policies.smolvla.modeling_smolvla` imports (LEROBOT_MODEL_PINS; safetensors is
# also what lwd's checkpoints need there; numpy and pyarrow come with lerobot-dataset). torch stays 2.13.0.
LEROBOT_VENV := $(VENV)/lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.installed-stamp
LEROBOT_PINS := "torch==2.13.0" "torchvision==0.28.0" "lerobot-dataset==0.4.4"
LEROBOT_MODEL_PINS := "transformers==4.57.6" "accelerate==1.16.0" "draccus==0.10.0" "einops==0.8.2" \
	"diffusers==0.35.2" "pyserial==3.5" "safetensors==0.8.0"

.PHONY: run test test-all test-slow bench lint setup lerobot-env clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev,scale,ogbench]"
	@touch $(STAMP)

lerobot-env: $(LEROBOT_STAMP)

$(LEROBOT_STAMP): Makefile
	@test -x $(LEROBOT_VENV)/bin/python || $(PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LEROBOT_VENV)/bin/python -m pip install --quiet --no-warn-conflicts $(LEROBOT_PINS) $(LEROBOT_MODEL_PINS)
	$(LEROBOT_VENV)/bin/python -m pip install --quiet --no-warn-conflicts --no-deps "lerobot==0.4.4"
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
