#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECS seconds each with
# cargo-fuzz. The sanitizer flags are nightly-only, so the project's stable
# toolchain is told to accept them (RUSTC_BOOTSTRAP=1). New inputs go to a
# scratch copy of each corpus unless FUZZ_GROW=1 (then into fuzz/corpus, to be
# minimized with `cargo fuzz cmin` before a commit). Any crash, timeout or
# leak fails the run; its input is kept in fuzz/artifacts/TARGET/.
# Usage: scripts/fuzz.sh SECS [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz.sh SECS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(abi_json placeholder wechat_answer push)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# A fixed number of inputs (FUZZ_RUNS, what `make test` sets) runs in seconds,
# while the sanitized build of the crate and its dependencies takes minutes: it
# is then built at opt-level 1 (still with AddressSanitizer and debug
# assertions), which builds in about a third of the time of the optimized
# build and runs the inputs within a few times its speed. A run for a time
# wants the optimized build.
build_mode=()
if [ -n "${FUZZ_RUNS:-}" ]; then
  build_mode=(--dev)
  export CARGO_PROFILE_DEV_OPT_LEVEL=1
  # Line tables are enough to symbolize a crash; full debug info of every
  # sanitized dependency would double the build.
  export CARGO_PROFILE_DEV_DEBUG=line-tables-only
fi
cargo fuzz build "${build_mode[@]}"
# FUZZ_BUILD_ONLY=1: the build alone (`make test` starts it early, see scripts/prebuild.sh).
if [ "${FUZZ_BUILD_ONLY:-0}" = 1 ]; then
  exit 0
fi
for t in "${targets[@]}"; do
  case $t in
    placeholder) dict=fuzz/dict/placeholder.dict ;;
    *) dict=fuzz/dict/json.dict ;;
  esac
  scratch=
  if [ "${FUZZ_GROW:-0}" = 1 ]; then
    dirs=(fuzz/corpus/"$t")
  else
    scratch=$(mktemp -d)
    dirs=("$scratch" fuzz/corpus/"$t")
  fi
  log=$(mktemp)
  # FUZZ_RUNS (what `make test` sets) makes the run reproducible: a fixed seed
  # and a fixed number of inputs, so the test command fails only when the code
  # changed, never because a random run went further this time.
  if [ -n "${FUZZ_RUNS:-}" ]; then
    budget=(-runs="$FUZZ_RUNS" -seed=1)
    echo "== fuzz $t: $FUZZ_RUNS inputs from seed 1"
  else
    budget=(-max_total_time="$secs")
    echo "== fuzz $t for ${secs}s"
  fi
  if ! cargo fuzz run "${build_mode[@]}" "$t" "${dirs[@]}" -- "${budget[@]}" -timeout=10 \
      -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1 >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz $t: FAILED (input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  rm -f "$log"
  if [ -n "$scratch" ]; then rm -rf "$scratch"; fi
done
