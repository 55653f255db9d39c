# kybernetes: `make run` starts a one-node cluster, `make test` runs the tests.
# Both prepare everything first on a fresh machine (Debian packages as root, a virtualenv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEB_PACKAGES := ca-certificates iproute2 sqlite3 containerd runc containernetworking-plugins busybox-static iptables conntrack

.PHONY: run test deps venv lint bench clean

deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: deps $(STAMP)

run: venv
	$(BIN)/kyb server $(ARGS)

test: venv
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests benchmarks tools

bench: venv
	$(BIN)/python benchmarks/apiserver.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
