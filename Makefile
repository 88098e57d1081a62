# annexd — build, run, test on a fresh Debian 12 machine.
# Every target first installs what is missing (apt packages; a venv for tests).

SHELL := /bin/bash
PREFIX ?= /usr/local
SWIFT ?= swift
CONFIG ?= debug
BUILD_DIR := .build/$(CONFIG)
VENV := .venv
APT_PACKAGES := libsodium-dev libjansson-dev git git-annex tor socat python3-venv pkg-config time iproute2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Tests and benchmarks make commits in scratch repositories; a clean CI machine has no git identity.
export GIT_AUTHOR_NAME ?= annexd tests
export GIT_AUTHOR_EMAIL ?= tests@annexd.invalid
export GIT_COMMITTER_NAME ?= annexd tests
export GIT_COMMITTER_EMAIL ?= tests@annexd.invalid

.PHONY: all deps test-deps build release run demo test test-fast test-integration bench install openrpc clean

all: build

# System packages, installed only when one is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6 toolchain not found: install it from swift.org (or put it in PATH)"; exit 1; }

# PyPI's current git-annex, for interoperability tests against the newest release.
test-deps: deps
	@[ -x $(VENV)/bin/git-annex ] || { python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --upgrade git-annex; }

build: deps
	$(SWIFT) build -c $(CONFIG)

release:
	$(MAKE) build CONFIG=release

# Until the daemon lands, `run` shows the main job of what exists: a stock
# `git annex get` served by `annexd p2p-stdio`.
run: build
	@ANNEXD=$(CURDIR)/$(BUILD_DIR)/annexd scripts/demo-p2p-stdio

demo: run

test-fast: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter SharedTests

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: test-deps
	$(SWIFT) build -c release
	scripts/bench

# contrib/openrpc.json from the RPC method registry (a test fails when they differ).
openrpc: deps
	$(SWIFT) build -c $(CONFIG) --product annexd
	$(BUILD_DIR)/annexd openrpc > contrib/openrpc.json.tmp && mv contrib/openrpc.json.tmp contrib/openrpc.json

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD_DIR)/annexd $(BUILD_DIR)/annex-cli $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf .build
