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

C_TESTS := $(patsubst tests/c/%.c,$(OUT)/ctests/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps build header demo test test-rust test-c test-php test-php-valgrind lint clean bench bench-smoke bench-deps fuzz-smoke soak leak-scan

all: build

## deps: install what the build, the tests and the demo need (Debian packages).
deps:
	scripts/deps.sh

## build: the library (cdylib + rlib) and the WeChat sandbox server.
build:
	$(CARGO) build $(CARGO_PROFILE_FLAG) --features sandbox --lib --bins

## header: regenerate include/fashop_notify.h and bindings/php/fashop_notify.ffi.h.
header:
	FASHOP_NOTIFY_UPDATE_HEADERS=1 $(CARGO) test --features sandbox --test header

$(OUT)/ctests/%: tests/c/%.c tests/c/check.h include/fashop_notify.h build
	@mkdir -p $(OUT)/ctests
	gcc $(CFLAGS) -o $@ $< -L$(OUT) -lfashop_notify -lpthread -Wl,-rpath,$(abspath $(OUT))

$(OUT)/examples/send: examples/c/send.c include/fashop_notify.h build
	@mkdir -p $(OUT)/examples
	gcc $(CFLAGS) -o $@ $< -L$(OUT) -lfashop_notify -Wl,-rpath,$(abspath $(OUT))

## demo: build, start the sandbox, run the C and PHP examples end to end.
demo: deps build $(OUT)/examples/send
	scripts/with-sandbox.sh $(SANDBOX) scripts/demo.sh $(OUT)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --features sandbox -- -D warnings

test-rust:
	$(CARGO) nextest run --features sandbox --no-fail-fast
	$(CARGO) test --features sandbox --doc

test-c: build $(C_TESTS)
	@for t in $(C_TESTS); do \
	  echo "== $$t (valgrind)"; \
	  scripts/with-sandbox.sh $(SANDBOX) $(VALGRIND) $$t; \
	done

test-php: build
	scripts/with-sandbox.sh $(SANDBOX) env FASHOP_NOTIFY_LIB=$(abspath $(LIB)) \
	  phpunit --colors=never --configuration bindings/php/phpunit.xml

## test-php-valgrind: the PHP tests that run the library in-process, under valgrind
## (PHP's own allocator off; PHP's own leaks suppressed by tests/valgrind/php.supp;
## PCRE's JIT off, its generated code confuses memcheck). LeakTest (100,000 calls, which
## checks the same by RSS) would run for many minutes under memcheck; the tests that run
## other php processes (RuntimeTest, ProcessesTest) would not be under it.
PHP_VALGRIND_TESTS ?= SmokeTest|ApiTest|ForkTest|GuideTest
test-php-valgrind: build
	scripts/with-sandbox.sh $(SANDBOX) env FASHOP_NOTIFY_LIB=$(abspath $(LIB)) USE_ZEND_ALLOC=0 \
	  $(VALGRIND) --suppressions=tests/valgrind/php.supp --num-callers=30 \
	  php -d ffi.enable=1 -d pcre.jit=0 $$(command -v phpunit) --colors=never \
	  --configuration bindings/php/phpunit.xml --filter '$(PHP_VALGRIND_TESTS)'

## fuzz-smoke: every fuzz target for FUZZ_SECS seconds each (30); `make test` runs a
## reproducible 20,000 inputs per target from seed 1 instead (FUZZ_RUNS).
FUZZ_SECS ?= 30
fuzz-smoke:
	FUZZ_RUNS=$(FUZZ_RUNS) scripts/fuzz.sh $(FUZZ_SECS)

## soak: 8 processes on one SQLite ledger through random faults, SOAK_SECS seconds
## (600; `make test` runs 60); prints and checks the invariants.
SOAK_SECS ?= 600
soak: build
	$(OUT)/fashop-notify-soak $(SOAK_SECS) 8

## leak-scan: the test suites again with their output and logs kept; any app secret or
## access token in them fails.
leak-scan: build $(C_TESTS) $(OUT)/examples/send
	scripts/leak-scan.sh $(OUT)

## test: every test: format, lint, header, Rust, C and PHP under valgrind, PHP, fuzz, soak, leak scan.
test: FUZZ_RUNS = 20000
test: SOAK_SECS = 60
test: deps lint build test-rust test-c test-php test-php-valgrind demo bench-smoke fuzz-smoke soak leak-scan
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
	bench/run.py --smoke

clean:
	$(CARGO) clean
