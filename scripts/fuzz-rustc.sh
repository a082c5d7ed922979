#!/usr/bin/env bash
# The rustc wrapper of scripts/fuzz.sh's quick build (FUZZ_RUNS): the crates of
# this repository (the library and the fuzz targets) get FUZZ_RUSTFLAGS_OURS,
# the instrumentation, and leave to use its nightly-only flags
# (RUSTC_BOOTSTRAP=1); every other crate, build scripts and proc macros
# included, is compiled exactly as the debug build compiles it, so that the
# debug build's copy serves (RUSTC_BOOTSTRAP in cargo's own environment would
# change that: some build scripts rerun when it changes).
# Usage (by cargo): RUSTC_WRAPPER=scripts/fuzz-rustc.sh cargo build …
set -euo pipefail
rustc=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
crate= prev=
for arg in "$@"; do
  [ "$prev" = --crate-name ] && crate=$arg
  prev=$arg
done
ours=(fashop_notify)
for f in "$here"/fuzz/fuzz_targets/*.rs; do
  ours+=("$(basename "$f" .rs)")
done
for name in "${ours[@]}"; do
  if [ "$crate" = "$name" ]; then
    # shellcheck disable=SC2086 # a list of flags
    RUSTC_BOOTSTRAP=1 exec "$rustc" "$@" ${FUZZ_RUSTFLAGS_OURS:-}
  fi
done
exec "$rustc" "$@"
