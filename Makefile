# wallbounce-rollouts: every target installs what it needs, so each works on a fresh machine.
#   make test   the whole test suite against real servers (builds/reuses the control plane first)
#   make demo   the local demo (a real control plane, Prometheus, the services, the operator)
#   make lint   ruff + mypy
# The code is four distributions (api/, operator/, service/, e2e/: see pyproject.toml); `make venv` installs them.

SHELL := /bin/bash
# Go (testbin, third-party CRDs from the module cache) where this image installs it, even when a
# non-interactive shell's PATH lacks it
export PATH := $(if $(wildcard /usr/local/go/bin/go),/usr/local/go/bin:,)$(PATH)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint demo quickstart demo-down venv testbin testbin-all system-deps bench chaos clean dist images

DISTRIBUTIONS := api operator kubectl-plugin service e2e

# The workspace: the four distributions (each with its own dependencies) and the tools, all editable.
# (wallbounce-rollouts was the single distribution these replace: a venv made before the split drops it.)
$(STAMP): pyproject.toml requirements-dev.txt $(DISTRIBUTIONS:%=%/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip uninstall --quiet --yes wallbounce-rollouts 2>/dev/null || true
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests use: Prometheus (and promtool).
system-deps:
	@bash scripts/install-system-deps.sh

# etcd, kube-apiserver, kubectl from Go modules, cached by go.sum hash (a no-op when warm)
testbin:
	@bash testbin/build.sh core >/dev/null

testbin-all:
	@bash testbin/build.sh all >/dev/null

test: lint system-deps testbin-all
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy api/wallbounce_api operator/wallbounce_operator kubectl-plugin/wallbounce_kubectl service/wallbounce_service e2e/wallbounce_local

# The local demo: DEMO_ARGS="--fast|--slow --happy-only --bad errors|disagree"; the stack stays up (make demo-down)
demo: venv system-deps
	@bash testbin/build.sh core traefik >/dev/null
	$(PY) -m wallbounce_local.demo $(DEMO_ARGS)

# The README's quickstart: the local stack (no acts), left running for kubectl; `make demo-down` stops it
quickstart: venv system-deps
	@bash testbin/build.sh core traefik >/dev/null
	$(PY) -m wallbounce_local.demo --stack-only

demo-down: venv
	$(VENV)/bin/wallbounce-local down

# Long campaigns (small counts run in `make test`): 50 SIGKILLs, 1,000 generated specs each way,
# a 10-minute service soak, ~4,000 schemathesis cases
chaos: lint system-deps testbin-all
	CHAOS_KILLS=50 CHAOS_EXAMPLES=1000 CHAOS_SOAK_SECONDS=600 CHAOS_SCHEMATHESIS_EXAMPLES=1000 \
	  $(PY) -m pytest tests/robustness tests/operator/test_restart.py tests/service/test_soak.py \
	  "tests/service/test_processes.py::test_openapi_document_matches_live_behaviour" $(PYTEST_ARGS)

# Every benchmark; figures are printed (and the scale plot written to docs/benchmarks-scale.png)
bench: venv system-deps testbin-all
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) bench/decide_core.py
	$(PY) bench/verdict_power.py --runs 2000
	$(PY) bench/service_overhead.py
	$(PY) bench/service_abuse.py
	$(PY) bench/reaction.py --intervals 5 30 300 --trials 20
	rm -f .wallbounce-scale.json
	$(PY) bench/scale.py --n 1000 --interval 30 --ticks 3 --replicas 1 3 --shards 8 --failover --json .wallbounce-scale.json
	$(PY) bench/scale.py --n 3000 --interval 30 --shards 8 --json .wallbounce-scale.json
	$(PY) bench/plot.py .wallbounce-scale.json docs/benchmarks-scale.png

# The plain manifests (dist/install.yaml: operator, CRD, RBAC; dist/wallbounce-service.yaml: the example service)
# and the kubectl plugin's Krew archive, rendered from the charts. REGISTRY=… TAG=… name the images.
REGISTRY ?= ghcr.io/wallbounce-rollouts
TAG ?= $(shell sed -n 's/^appVersion: "\(.*\)"$$/\1/p' charts/wallbounce-operator/Chart.yaml)
dist: venv
	REGISTRY=$(REGISTRY) TAG=$(TAG) PYTHON=$(PY) bash scripts/dist.sh

# Build and push the two images: make images REGISTRY=registry.example.com/team [TAG=1.2.3] [PUSH=0]
images:
	docker build --target operator -t $(REGISTRY)/operator:$(TAG) .
	docker build --target service -t $(REGISTRY)/service:$(TAG) .
	@if [ "$(PUSH)" != 0 ]; then set -x; docker push $(REGISTRY)/operator:$(TAG); docker push $(REGISTRY)/service:$(TAG); fi

clean:
	-$(VENV)/bin/wallbounce-local down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
