# coalmine — the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need on a fresh machine (apt packages, a virtualenv, the Kubernetes
# binaries built from the Go module proxy into a cache), and are quick when it is all there.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export COALMINE_CACHE ?= $(HOME)/.cache/coalmine
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: test demo deps test-deps node-deps python-deps system-deps kube-binaries seaweedfs helm promtool lint unit integration e2e e2e-kind bench crd lock clean

# `make test WORKERS=2` runs the unit and integration tiers on pytest-xdist workers, each with
# its own control plane, Prometheus and S3 server (session fixtures are per worker) and its own
# ports and pod addresses. One process stays the default until a second whole two-worker run
# on a quiet machine has passed (docs/e2e.md: the first, 36.5 min against 46-47, lost one test
# to the load).
WORKERS ?=
XDIST ?= $(if $(WORKERS),-n $(WORKERS) --dist worksteal)

# Everything CI runs: lint, unit and integration tiers, then (as root, which a node needs)
# the e2e tier on a single-node cluster built here, the demo on real pods included.
test: test-deps lint
	$(BIN)/pytest -m "not e2e" $(XDIST) --durations=40
	@if [[ $$(id -u) == 0 ]]; then bash e2e/run.sh --durations=10; \
	else echo "make: e2e tier NOT run: it needs root (a bridge, iptables, cgroups): make e2e"; fi

# On real pods (a single-node cluster built here) when run as root; otherwise on the kubelet
# stand-in of the integration tier. The demo says which, and why, before it starts.
demo: deps node-deps  ## A real canary rollout and an automatic rollback, live.
	$(BIN)/python -m e2e.devcluster demo

# The node's parts: containerd, runc, buildah, CNI plugins, crictl and a Prometheus with
# Kubernetes discovery. Only root can run a node, so only root installs them.
node-deps:
	@if [[ $$(id -u) == 0 ]]; then bash e2e/cluster/node-deps.sh; \
	else echo "make: not root, so no node parts: the demo will use the kubelet stand-in"; fi

deps: python-deps system-deps kube-binaries helm

# What only the tests use, kept out of the demo's cold start: a real S3 server (SeaweedFS, a
# long cold build) for the s3:// fetch tests, and promtool for the chart's alert tests.
test-deps: deps seaweedfs promtool

# Reinstall only when pyproject.toml changes.
python-deps: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,onnx,skops,joblib]'
	touch $@

system-deps:
	bash e2e/cluster/install-deps.sh

# Prints where the binaries are; builds only what is missing (cold: see docs/cluster.md).
kube-binaries:
	bash e2e/cluster/build.sh

# The S3 server the s3:// fetch is tested against (SeaweedFS), built once from the Go module
# proxy into the cache; prints its bin dir (cold: see docs/serving.md).
seaweedfs:
	bash e2e/cluster/seaweedfs.sh

helm:
	bash charts/install-helm.sh

# promtool checks and unit-tests the chart's alerts (tests/charts/test_prometheusrule.py): the
# e2e Prometheus' own release and build, cached beside it.
promtool:
	bash e2e/cluster/prometheus-build.sh promtool

lint: python-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: python-deps
	$(BIN)/pytest -m "not integration and not e2e" $(XDIST)

integration: test-deps
	$(BIN)/pytest -m integration $(XDIST)

# A real single-node cluster (containerd, kubelet, kube-proxy) on this machine; needs root.
e2e: python-deps
	bash e2e/run.sh

# The same suite on a three-node kind cluster built here (root; docs/e2e.md, "kind").
e2e-kind: python-deps kube-binaries helm
	bash e2e/kind/run.sh

bench: python-deps
	bash bench/run.sh

crd: python-deps  ## Regenerate crds/ and the chart's copy from the API models.
	$(BIN)/coalmine crd --write crds/modeldeployment.yaml
	cp crds/modeldeployment.yaml charts/coalmine/crds/modeldeployment.yaml

# The images' lock files (docker/*.lock.txt): exact versions with sha256 hashes, resolved by uv
# for the images' Python 3.11 on x86_64 Linux. uv lives in its own cached venv (pinned, so the
# same version writes the locks everywhere), not in the project's. Existing pins are kept while
# pyproject.toml allows them; `make lock UPGRADE=1` moves every pin to the newest release.
UV_VERSION := 0.13.9
LOCK_TOOLS := $(COALMINE_CACHE)/uv-$(UV_VERSION)
lock: python-deps  ## Re-lock the images' dependencies after a change to pyproject.toml.
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) \
	  && $(LOCK_TOOLS)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(BIN)/python docker/locks.py write --uv $(LOCK_TOOLS)/bin/uv $(if $(UPGRADE),--upgrade)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
