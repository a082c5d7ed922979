# fashop-notify: `make demo` runs the end-to-end demo, `make test` runs every test.
# Both install what is missing first (`make deps`).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
PROFILE ?= debug
TARGET_DIR := $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
ifeq ($(TARGET_DIR),)
TARGET_DIR := target
endif
OUT := $(TARGET_DIR)/$(PROFILE)
LIB := $(OUT)/libfashop_notify.so
SANDBOX := $(OUT)/fashop-notify-sandbox
CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
CFLAGS := -std=c11 -Wall -Wextra -Werror -g -Iinclude
VALGRIND := valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --quiet

# CI builds everything once, from a fresh clone: incremental compilation would only add
# work there (a quarter of the crate's own build time).
ifneq ($(CI),)
export CARGO_INCREMENTAL := 0
endif

C_TESTS := $(patsubst tests/c/%.c,$(OUT)/ctests/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps build header demo editor test test-rust test-c test-php test-js test-php-valgrind test-browser lint clean bench bench-smoke bench-deps fuzz-smoke soak leak-scan leak-scan-reset
.PHONY: release install-build install uninstall dist test-install wait-fuzz

## Under `make test` every suite keeps its output and the files its tests leave
## (their TMPDIR) in LEAK_SCAN_DIR, and `leak-scan` at the end searches that: each
## suite runs once. KEEP is how a suite's command is run (scripts/keep-output.sh).
LEAK_SCAN_DIR ?= $(TARGET_DIR)/leak-scan
KEEP := scripts/keep-output.sh

all: build

## deps: install what the build, the tests and the demo need (Debian packages).
deps:
	scripts/deps.sh

## build: the library (cdylib + rlib), the WeChat sandbox server (sandbox/, its own
## crate), the test workers and the soak. The library carries its SONAME (build.rs);
## the link of that name beside it is what programs linked against it load.
build:
	$(CARGO) build $(CARGO_PROFILE_FLAG) --workspace --lib --bins
	$(call soname_link,$(OUT))

# soname_link DIR: DIR/<the library's SONAME> -> libfashop_notify.so.
# Left alone when it is there (suites side by side each make `build`).
soname_link = soname=$$(readelf -d $(1)/libfashop_notify.so | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'); \
  [ -z "$$soname" ] || [ "$$(readlink $(1)/$$soname)" = libfashop_notify.so ] || ln -sfn libfashop_notify.so $(1)/$$soname

## release: the release library (with its SONAME, stripped, its debug info apart) and
## sandbox, built once for install, dist and test-install. The library is built from its
## own package, which has no sandbox code in it.
PREFIX ?= /usr/local
DESTDIR ?=
RELEASE_OUT := $(TARGET_DIR)/release
release:
	$(CARGO) build --release -p fashop-notify --lib -p fashop-notify-sandbox --bin fashop-notify-sandbox
	scripts/install.sh strip $(RELEASE_OUT)

## INSTALL_BUILD: what install, dist and test-install ship: `release` (the default), or
## `build`, the build of PROFILE, stripped the same way (scripts/install.sh strip runs the
## same checks on it). `make test` installs its debug build: the release profile would be
## a third compilation of every crate (330 CPU seconds, a quarter of the whole run) for
## no file, check or code path the debug build lacks; `make test-install` alone, and every
## `make install` and `make dist`, ship the release build.
INSTALL_BUILD ?= release
INSTALL_OUT := $(if $(filter release,$(INSTALL_BUILD)),$(RELEASE_OUT),$(OUT))
install-build: $(INSTALL_BUILD)
	$(if $(filter release,$(INSTALL_BUILD)),,scripts/install.sh strip $(INSTALL_OUT))

## install / uninstall: the library, header, pkg-config file, sandbox and PHP package
## under $(DESTDIR)$(PREFIX) (see scripts/install.sh), and exactly those removed again.
install: install-build
	scripts/install.sh install $(INSTALL_OUT) "$(PREFIX)" "$(DESTDIR)"

uninstall:
	scripts/install.sh uninstall "$(PREFIX)" "$(DESTDIR)"

## dist: the same tree as a tarball named with version and target triple, its SHA-256
## and the library's debug info, in $(TARGET_DIR)/dist.
dist: install-build
	scripts/install.sh dist $(INSTALL_OUT) "$(PREFIX)" $(TARGET_DIR)/dist

## test-install: install into a temporary DESTDIR, build and run the C example with
## pkg-config and the PHP package with no path, check SONAME, exports, dist and uninstall.
test-install: install-build
	$(KEEP) install scripts/install-test.sh $(TARGET_DIR) $(INSTALL_OUT)

wait-fuzz:
	scripts/prebuild.sh wait $(PREBUILD_DIR) fuzz

## header: regenerate include/fashop_notify.h and bindings/php/fashop_notify.ffi.h.
header:
	FASHOP_NOTIFY_UPDATE_HEADERS=1 $(CARGO) test -p fashop-notify --test integration -- header::

$(OUT)/ctests/%: tests/c/%.c tests/c/check.h include/fashop_notify.h build
	@mkdir -p $(OUT)/ctests
	gcc $(CFLAGS) -o $@ $< -L$(OUT) -lfashop_notify -lpthread -Wl,-rpath,$(abspath $(OUT))

$(OUT)/examples/send: examples/c/send.c include/fashop_notify.h build
	@mkdir -p $(OUT)/examples
	gcc $(CFLAGS) -o $@ $< -L$(OUT) -lfashop_notify -Wl,-rpath,$(abspath $(OUT))

## demo: build, start the sandbox, run the C and PHP examples end to end.
demo: deps build $(OUT)/examples/send
	$(KEEP) demo scripts/with-sandbox.sh $(SANDBOX) scripts/demo.sh $(OUT)

## editor: the notification admin and its mapping editor against the sandbox, until Ctrl-C
## (php -S on 127.0.0.1:EDITOR_PORT; admin secret demo-admin-secret).
EDITOR_PORT ?= 8090
editor: deps build
	scripts/with-sandbox.sh $(SANDBOX) scripts/admin-editor.sh $(OUT) $(EDITOR_PORT)

## lint: format, clippy, and the layout rules of README's layout table.
lint:
	python3 scripts/check-layout.py
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --all -- --check
	python3 scripts/check-fuzz-deps.py
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Recording, nextest's `leak-scan` profile also keeps the output of passing tests
# (in its junit.xml), which the leak scan searches too.
test-rust:
	$(KEEP) rust $(CARGO) nextest run --workspace --no-fail-fast \
	  $(if $(LEAK_SCAN_RECORD),--profile leak-scan)
	$(if $(LEAK_SCAN_RECORD),cp $(TARGET_DIR)/nextest/leak-scan/junit.xml $(LEAK_SCAN_RECORD)/rust-junit.xml)
	$(KEEP) rust-doc $(CARGO) test --workspace --doc

test-c: build $(C_TESTS)
	@for t in $(C_TESTS); do \
	  echo "== $$t (valgrind)"; \
	  $(KEEP) c scripts/with-sandbox.sh $(SANDBOX) $(VALGRIND) $$t; \
	done

test-php: build
	$(KEEP) php scripts/with-sandbox.sh $(SANDBOX) env FASHOP_NOTIFY_LIB=$(abspath $(LIB)) \
	  phpunit --colors=never --configuration bindings/php/phpunit.xml

## test-js: the mini program package's tests (node --test, a scripted wx object), then the
## end-to-end grant test: the package against GrantEndpoint under `php -S` and the library.
test-js: build
	$(KEEP) js node --test bindings/miniprogram/test/
	$(KEEP) js-e2e scripts/with-sandbox.sh $(SANDBOX) env FASHOP_NOTIFY_LIB=$(abspath $(LIB)) \
	  node --test tests/miniprogram/

## test-browser: the mapping editor in Debian's headless chromium, driven by selenium (from
## PyPI, in a venv under the target directory) through Debian's chromedriver; SE_OFFLINE
## keeps selenium from looking for or downloading any browser or driver.
BROWSER_VENV := $(TARGET_DIR)/browser-venv
$(BROWSER_VENV)/.installed: tests/browser/requirements.txt
	python3 -m venv $(BROWSER_VENV)
	$(BROWSER_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/browser/requirements.txt
	touch $@

test-browser: deps build $(BROWSER_VENV)/.installed
	$(KEEP) browser scripts/with-sandbox.sh $(SANDBOX) env SE_OFFLINE=true \
	  $(BROWSER_VENV)/bin/python tests/browser/test_editor.py $(abspath $(OUT))

## test-php-valgrind: the PHP tests that run the library in-process, under valgrind
## (PHP's own allocator off; PHP's own leaks suppressed by tests/valgrind/php.supp;
## PCRE's JIT off, its generated code confuses memcheck). LeakTest (100,000 calls, which
## checks the same by RSS) would run for many minutes under memcheck; the tests that run
## other php processes (RuntimeTest, ProcessesTest) would not be under it.
PHP_VALGRIND_TESTS ?= SmokeTest|ApiTest|ForkTest|GuideTest
test-php-valgrind: build
	$(KEEP) php-valgrind scripts/with-sandbox.sh $(SANDBOX) env FASHOP_NOTIFY_LIB=$(abspath $(LIB)) USE_ZEND_ALLOC=0 \
	  $(VALGRIND) --suppressions=tests/valgrind/php.supp --num-callers=30 \
	  php -d ffi.enable=1 -d pcre.jit=0 $$(command -v phpunit) --colors=never \
	  --configuration bindings/php/phpunit.xml --filter '$(PHP_VALGRIND_TESTS)'

## fuzz-smoke: every fuzz target for FUZZ_SECS seconds each (30); `make test` runs a
## reproducible 20,000 inputs per target from seed 1 instead (FUZZ_RUNS; built at opt-level 1).
FUZZ_SECS ?= 30
fuzz-smoke: $(if $(PREBUILT),wait-fuzz)
	FUZZ_RUNS=$(FUZZ_RUNS) scripts/fuzz.sh $(FUZZ_SECS)

## soak: 8 processes on one ledger through random faults, SOAK_SECS seconds (600;
## `make test` runs 30 on SQLite and on Redis side by side); STORE=sqlite (default) or
## STORE=redis (its own redis-server); prints and checks the invariants.
## Recording, its workers' structured logs are kept for the leak scan.
SOAK_SECS ?= 600
STORE ?= sqlite
SOAK_STORES ?= $(STORE)
soak: build
	$(if $(LEAK_SCAN_RECORD),FASHOP_SOAK_KEEP=1) scripts/soak.sh $(OUT)/fashop-notify-soak $(SOAK_SECS) 8 $(SOAK_STORES)

## leak-scan: any app secret or access token in the suites' output and logs fails. Under
## `make test` it searches what the run recorded; alone, it runs the suites itself.
leak-scan: build $(C_TESTS) $(OUT)/examples/send
	scripts/leak-scan.sh $(OUT) $(LEAK_SCAN_RECORD)
	$(if $(LEAK_SCAN_RECORD),rm -rf $(LEAK_SCAN_RECORD))

# An empty scan directory, open to the tests that run a command as another user
# (php-fpm, preload as nobody), as /tmp is.
leak-scan-reset:
	rm -rf $(LEAK_SCAN_DIR)
	mkdir -p $(LEAK_SCAN_DIR)/tmp
	chmod 0755 $(LEAK_SCAN_DIR)
	chmod 1777 $(LEAK_SCAN_DIR)/tmp

## test: every test: format, lint, header, Rust, C and PHP under valgrind, PHP, the editor in a
## browser, fuzz, soak, install (of the debug build, INSTALL_BUILD above), leak scan. The fuzz
## build starts in the background first (scripts/prebuild.sh) and uses what the suites leave
## of the two cores; it takes the debug build's compiled dependencies (scripts/fuzz.sh), so
## on a fresh clone it makes the debug build first (after `make demo` that is there).
## Each suite's time is printed at the end.
# Two lanes side by side in the quoted group (scripts/run-suites.sh): the C tests under
# valgrind, the node tests and the browser in one, PHP in the other; each keeps about one
# core busy, and no two share a port, a file or a sandbox.
TEST_SUITES := lint build test-rust 'test-c+test-js+test-browser|test-php+test-php-valgrind' demo bench-smoke fuzz-smoke soak test-install leak-scan
PREBUILD_DIR := $(TARGET_DIR)/prebuild
test: export FUZZ_RUNS = 20000
test: export SOAK_SECS = 30
test: export SOAK_STORES = sqlite redis
test: export LEAK_SCAN_RECORD = $(abspath $(LEAK_SCAN_DIR))
test: export PREBUILT = 1
test: export INSTALL_BUILD = build
test: deps leak-scan-reset
	scripts/prebuild.sh start $(PREBUILD_DIR) fuzz \
	  sh -c '{ [ -e $(LIB) ] || $(MAKE) --no-print-directory build; } && FUZZ_BUILD_ONLY=1 scripts/fuzz.sh 0'
	MAKE="$(MAKE)" scripts/run-suites.sh $(TEST_SUITES)
	@echo "make test: all suites passed"

## bench-deps: what the performance suite needs besides the build (nginx, wrk, php-curl, venv).
bench-deps:
	scripts/deps.sh bench

## bench: the performance suite of docs/performance.md (release build, ~10 min;
## run it on a quiet machine). Results in $(TARGET_DIR)/bench/results/.
bench: deps bench-deps
	bench/run.py

## bench-smoke: the whole suite with a tiny N on the debug build: proves it still runs.
bench-smoke: deps bench-deps
	$(KEEP) bench-smoke bench/run.py --smoke

clean:
	$(CARGO) clean
