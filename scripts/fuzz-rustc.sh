#!/usr/bin/env bash
# The rustc wrapper of scripts/fuzz.sh's quick build (FUZZ_RUNS): the crates of
# this repository (the library and the fuzz targets) get FUZZ_RUSTFLAGS_OURS,
# the instrumentation; every other crate built for the target gets
# FUZZ_RUSTFLAGS_DEPS; build scripts and proc macros (built for the host, no
# `--target`) get nothing.
# Usage (by cargo): RUSTC_WRAPPER=scripts/fuzz-rustc.sh cargo build --target …
set -euo pipefail
rustc=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
crate= prev= for_target=0
for arg in "$@"; do
  [ "$prev" = --crate-name ] && crate=$arg
  [ "$arg" = --target ] && for_target=1
  prev=$arg
done
if [ $for_target = 0 ]; then
  exec "$rustc" "$@"
fi
ours=(fashop_notify)
for f in "$here"/fuzz/fuzz_targets/*.rs; do
  ours+=("$(basename "$f" .rs)")
done
for name in "${ours[@]}"; do
  if [ "$crate" = "$name" ]; then
    # shellcheck disable=SC2086 # a list of flags
    exec "$rustc" "$@" ${FUZZ_RUSTFLAGS_OURS:-}
  fi
done
# shellcheck disable=SC2086
exec "$rustc" "$@" ${FUZZ_RUSTFLAGS_DEPS:-}
