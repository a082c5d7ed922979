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
APT_PACKAGES := php-cli phpunit valgrind redis-server gcc make

C_TESTS := $(patsubst tests/c/%.c,$(OUT)/ctests/%,$(wildcard tests/c/test_*.c))

.PHONY: all deps build header demo test test-rust test-c test-php lint clean

all: build

## deps: install what the build, the tests and the demo need (Debian packages).
deps:
	@missing=""; \
	for tool in php:php-cli phpunit:phpunit valgrind:valgrind redis-server:redis-server gcc:gcc; do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool#*:}"; \
	done; \
	if [ -n "$$missing" ] && command -v php >/dev/null 2>&1 && ! php -m 2>/dev/null | grep -qi '^ffi$$'; then missing="$$missing php-cli"; fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "make deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "make deps: missing$$missing. Install them with:"; \
	  echo "  sudo apt-get update && sudo apt-get install -y$$missing"; \
	  exit 1; \
	fi

## build: the library (cdylib + rlib) and the WeChat sandbox server.
build:
	$(CARGO) build $(CARGO_PROFILE_FLAG) --features sandbox --lib --bins

## header: regenerate include/fashop_notify.h and bindings/php/fashop_notify.ffi.h.
header:
	FASHOP_NOTIFY_UPDATE_HEADERS=1 $(CARGO) test --features sandbox --test header

$(OUT)/ctests/%: tests/c/%.c tests/c/check.h include/fashop_notify.h build
	@mkdir -p $(OUT)/ctests
	gcc $(CFLAGS) -o $@ $< -L$(OUT) -lfashop_notify -lpthread -Wl,-rpath,$(abspath $(OUT))

## demo: build, start the sandbox, run the C and PHP examples end to end.
demo: deps build
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

## test: every test: format, lint, header, Rust, C under valgrind, PHP.
test: deps lint build test-rust test-c test-php
	@echo "make test: all suites passed"

clean:
	$(CARGO) clean
