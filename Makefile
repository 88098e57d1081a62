# annexd — build, run, test on a fresh Debian 12 machine.
# Every target first installs what is missing (apt packages; a venv for tests).

SHELL := /bin/bash
PREFIX ?= /usr/local
SWIFT ?= swift
CONFIG ?= debug
BUILD_DIR := .build/$(CONFIG)
VENV := .venv
APT_PACKAGES := libsodium-dev libjansson-dev git git-annex tor socat jq python3-venv pkg-config time iproute2 openssl libdbus-1-dev dbus python3-dbusmock emacs-nox
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Tests and benchmarks make commits in scratch repositories; a clean CI machine has no git identity.
export GIT_AUTHOR_NAME ?= annexd tests
export GIT_AUTHOR_EMAIL ?= tests@annexd.invalid
export GIT_COMMITTER_NAME ?= annexd tests
export GIT_COMMITTER_EMAIL ?= tests@annexd.invalid

.PHONY: all deps test-deps build release run demo demo-stdio test test-fast test-integration test-sanitizers bench fuzz fuzz-build install install-tor-helper openrpc clean

all: build

# System packages, installed only when one is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6 toolchain not found: install it from swift.org (or put it in PATH)"; exit 1; }

# PyPI's current git-annex and magic-wormhole (CLI, mailbox server, transit relay), for interop tests.
test-deps: deps
	@if [ -L $(VENV) ] && [ ! -e $(VENV) ]; then rm $(VENV); fi
	@[ -x $(VENV)/bin/git-annex ] && [ -x $(VENV)/bin/wormhole ] && [ -x $(VENV)/bin/twist ] || { \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --upgrade git-annex magic-wormhole==0.24.0 \
	    magic-wormhole-mailbox-server magic-wormhole-transit-relay; }

build: deps
	$(SWIFT) build -c $(CONFIG)

release:
	$(MAKE) build CONFIG=release

# The daemon in the foreground with its embedded tor (--tor auto: system tor's
# control port if there is one, else its own tor). Ctrl-C stops it.
run: build
	$(BUILD_DIR)/annexd --tor auto

# Offline, on any machine: a private Tor network, two daemons, a file over onions.
demo: build
	@ANNEXD=$(CURDIR)/$(BUILD_DIR)/annexd scripts/demo-tor

# A stock `git annex get` served by `annexd p2p-stdio` (git-annex-shell's stand-in).
demo-stdio: build
	@ANNEXD=$(CURDIR)/$(BUILD_DIR)/annexd scripts/demo-p2p-stdio

test-fast: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter 'SharedTests|ClientKitTests'

# Suites whose tests are async and wait on real servers with timeouts run in a second
# pass: in one pass, the many blocking tests fill Swift's cooperative pool (one thread
# per core) and starve them.
ASYNC_SUITES := WormholeInteropTests|WormholeReconnectTests|WormholeFileInteropTests|PairingTests|TorControlClientTests|NetworkIsolationTests|WakeSignalTests
# As root, that pass runs in a fresh network namespace whose only interface is lo (up):
# the transit and pairing suites run only there (elsewhere they say why not), so no hint
# they or the Python CLI advertise or dial can reach anything but this machine's loopback.
# ANNEXD_TESTS_ONLY_LO=1 makes NetworkIsolationTests check that the namespace is so.
ONLY_LO := $(if $(filter 0,$(shell id -u)),ANNEXD_TESTS_ONLY_LO=1 unshare --net sh -c 'ip link set lo up && exec "$$0" "$$@"')

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(ASYNC_SUITES)'
	$(ONLY_LO) $(SWIFT) test --skip-build --filter '$(ASYNC_SUITES)'

# The suite under AddressSanitizer, then ThreadSanitizer (scripts/test-sanitizers says how).
test-sanitizers: test-deps
	ASYNC_SUITES='$(ASYNC_SUITES)' SWIFT=$(SWIFT) scripts/test-sanitizers

bench: test-deps
	$(SWIFT) build -c release
	scripts/bench
	scripts/bench-rpc
	scripts/bench-tor
	$(if $(filter 0,$(shell id -u)),scripts/bench-pair,$(SUDO) env ANNEXD=$(CURDIR)/.build/release/annexd scripts/bench-pair)
	$(if $(filter 0,$(shell id -u)),scripts/bench-transfers,$(SUDO) env ANNEXD=$(CURDIR)/.build/release/annexd scripts/bench-transfers)
	$(if $(filter 0,$(shell id -u)),scripts/bench-sync,$(SUDO) env ANNEXD=$(CURDIR)/.build/release/annexd scripts/bench-sync)
	scripts/bench-load

# libFuzzer over the pure parsers and machines (Sources/FuzzTargets), address sanitizer on,
# in its own scratch path. `make fuzz` runs each of FUZZ_TARGETS for FUZZ_SECONDS from its
# committed corpus fuzz/corpus/<target>; new inputs go to $(FUZZ_OUT)/<target>/new (into the
# committed corpus only with FUZZ_MERGE=1), the first crash stops it and says where its
# reproducer is. `make test` runs every committed corpus once (FuzzCorpusTests).
FUZZ_SECONDS ?= 60
# More libFuzzer flags, e.g. FUZZ_FLAGS=-max_len=8192 or -jobs=2.
FUZZ_FLAGS ?=
FUZZ_TARGETS ?= p2p-codec p2p-server-preauth p2p-server-authed annex-key rpc tor-control torrc helper-args mailbox spake2 transit
FUZZ_BUILD := .build-fuzz
FUZZ_OUT ?= $(FUZZ_BUILD)/runs
FUZZ_BIN := $(FUZZ_BUILD)/debug/annexd-fuzz
FUZZER_LIB = $(firstword $(wildcard $(dir $(realpath $(shell command -v $(SWIFT))))../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-$(shell uname -m).a))
fuzz-build: deps
	@[ -n "$(FUZZER_LIB)" ] || { echo "libclang_rt.fuzzer_no_main not found next to $(SWIFT): a swift.org toolchain has it"; exit 1; }
	$(SWIFT) build --scratch-path $(FUZZ_BUILD) --product annexd-fuzz --sanitize=address \
	  -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table -Xswiftc -DANNEXD_FUZZ \
	  -Xlinker $(FUZZER_LIB) -Xlinker -lstdc++

fuzz: fuzz-build
	@set -o pipefail; for t in $(FUZZ_TARGETS); do \
	  out=$(FUZZ_OUT)/$$t; mkdir -p $$out/new $$out/crashes; \
	  echo "== $$t: $(FUZZ_SECONDS) s (log: $$out/log)"; \
	  if ! ANNEXD_FUZZ_TARGET=$$t ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no $(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) \
	      -print_final_stats=1 $(FUZZ_FLAGS) -artifact_prefix=$$out/crashes/ $$out/new fuzz/corpus/$$t > $$out/log 2>&1; then \
	    grep -E 'ERROR|SUMMARY|Fatal error|Test unit written' $$out/log | head -5; \
	    echo "$$t: crash; reproducer in $$out/crashes/ (replay: ANNEXD_FUZZ_TARGET=$$t $(FUZZ_BIN) FILE)"; exit 1; fi; \
	  grep -E '^#[0-9]+[[:space:]]+DONE|stat::(number_of_executed_units|peak_rss_mb)' $$out/log; \
	  if [ "$(FUZZ_MERGE)" = 1 ]; then ANNEXD_FUZZ_TARGET=$$t $(FUZZ_BIN) -merge=1 fuzz/corpus/$$t $$out/new > $$out/merge.log 2>&1 \
	    || { echo "$$t: merge failed, see $$out/merge.log"; exit 1; }; fi; \
	done

# contrib/openrpc.json and docs/API.md from the RPC method registry and the event catalogue
# (a test fails when they differ).
openrpc: deps
	$(SWIFT) build -c $(CONFIG) --product annexd
	$(BUILD_DIR)/annexd openrpc > contrib/openrpc.json.tmp && mv contrib/openrpc.json.tmp contrib/openrpc.json
	$(BUILD_DIR)/annexd openrpc --markdown > docs/API.md.tmp && mv docs/API.md.tmp docs/API.md

# make install PREFIX=... [DESTDIR=...]: binaries, the systemd user unit (with the real
# binary paths: annexd and annex-notify), shell completions and man pages, all generated by the installed tools
# themselves. SKIP_BUILD=1 installs what is already built (the tests use it after their build).
BINDIR = $(PREFIX)/bin
DATADIR = $(PREFIX)/share
UNITDIR = $(PREFIX)/lib/systemd/user
TOOLS := annexd annex-cli annex-notify
UNITS := annexd annex-notify
INSTALL_DEPS := $(if $(SKIP_BUILD),,build)
install: $(INSTALL_DEPS)
	@for t in $(TOOLS); do [ -x $(BUILD_DIR)/$$t ] || { echo "$(BUILD_DIR)/$$t is missing: run make build (or drop SKIP_BUILD)"; exit 1; }; done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DATADIR)/man/man1 \
	  $(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/site-functions \
	  $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	install -m 0755 $(addprefix $(BUILD_DIR)/,$(TOOLS)) $(DESTDIR)$(BINDIR)/
	set -e; for u in $(UNITS); do \
	  sed 's|@bindir@|$(BINDIR)|g' contrib/systemd/$$u.service > $(DESTDIR)$(UNITDIR)/$$u.service.tmp; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service.tmp && mv $(DESTDIR)$(UNITDIR)/$$u.service.tmp $(DESTDIR)$(UNITDIR)/$$u.service; done
	set -e; for t in $(TOOLS); do \
	  $(BUILD_DIR)/$$t --generate-completion-script bash > $(DESTDIR)$(DATADIR)/bash-completion/completions/$$t; \
	  $(BUILD_DIR)/$$t --generate-completion-script zsh > $(DESTDIR)$(DATADIR)/zsh/site-functions/_$$t; \
	  $(BUILD_DIR)/$$t --generate-completion-script fish > $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/$$t.fish; \
	  scripts/gen-man $(BUILD_DIR)/$$t $(DESTDIR)$(DATADIR)/man/man1; done
	chmod 0644 $(DESTDIR)$(DATADIR)/man/man1/*.1 $(DESTDIR)$(DATADIR)/bash-completion/completions/* \
	  $(DESTDIR)$(DATADIR)/zsh/site-functions/_* $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/*

# make install-tor-helper PREFIX=... [DESTDIR=...]: the privileged helper (0755, never setuid)
# in $(PREFIX)/libexec and its polkit action (exec.path set to that binary). Needs root.
LIBEXECDIR = $(PREFIX)/libexec
POLKITDIR = /usr/share/polkit-1/actions
install-tor-helper: $(INSTALL_DEPS)
	@[ -x $(BUILD_DIR)/annex-tor-helper ] || { echo "$(BUILD_DIR)/annex-tor-helper is missing: run make build"; exit 1; }
	install -d $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(POLKITDIR)
	install -m 0755 $(BUILD_DIR)/annex-tor-helper $(DESTDIR)$(LIBEXECDIR)/annex-tor-helper
	sed 's|/usr/local/libexec/annex-tor-helper|$(LIBEXECDIR)/annex-tor-helper|' contrib/polkit/org.annexd.tor-helper.policy \
	  > $(DESTDIR)$(POLKITDIR)/org.annexd.tor-helper.policy
	chmod 0644 $(DESTDIR)$(POLKITDIR)/org.annexd.tor-helper.policy

clean:
	rm -rf .build
