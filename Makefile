# wallbounce-rollouts: every target installs what it needs, so each works on a fresh machine.
#   make test   the whole test suite against real servers (builds/reuses the control plane first)
#   make demo   the local demo (a real control plane, Prometheus, the services, the operator)
#   make lint   ruff + mypy

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint demo demo-down venv testbin testbin-all system-deps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
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
	$(VENV)/bin/mypy operator/wallbounce_operator service/wallbounce_service e2e/wallbounce_local

demo: venv system-deps testbin
	@echo "make demo: not yet — the end-to-end demo lands with the end-to-end issue."
	@echo "For now: '$(VENV)/bin/wallbounce-local up' starts a real control plane."

demo-down: venv
	$(VENV)/bin/wallbounce-local down

clean:
	-$(VENV)/bin/wallbounce-local down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
