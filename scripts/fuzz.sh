#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECS seconds each, libFuzzer
# (libfuzzer-sys) under AddressSanitizer. The targets are built here with the
# flags `cargo fuzz build` uses (coverage instrumentation for libFuzzer,
# AddressSanitizer, `--cfg fuzzing`, debug assertions), so a fresh machine does
# not first build cargo-fuzz itself; `cargo fuzz run TARGET` works the same on a
# machine that has it. The sanitizer flags are nightly-only, so the project's
# stable toolchain is told to accept them (RUSTC_BOOTSTRAP=1; in the quick
# build only where they are used, scripts/fuzz-rustc.sh). New inputs go to
# a scratch copy of each corpus unless FUZZ_GROW=1 (then into fuzz/corpus, to be
# minimized with `cargo fuzz cmin` before a commit). Any crash, timeout or leak
# fails the run; its input is kept in fuzz/artifacts/TARGET/.
# The targets run two at a time (FUZZ_JOBS), each a single-threaded process.
# Usage: scripts/fuzz.sh SECS [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz.sh SECS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  # The slowest first, so that the lanes end close together.
  targets=(wechat_answer abi_json placeholder push)
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# The instrumentation cargo-fuzz adds: coverage for libFuzzer, AddressSanitizer,
# `--cfg fuzzing`, debug assertions.
sancov="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
sancov+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
sancov+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
sancov+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Zsanitizer=address"
plain="--cfg fuzzing -Cdebug-assertions"

# seed_dependencies: the debug build's compiled dependencies (target/debug, when
# it is there), hard-linked into the fuzz build's directory. Nothing of this
# repository's own crates is linked: those are built here with other flags.
# Each side keeps its files: rustc and the linker replace an output by renaming
# a new file over it, never by writing into the old one. A file that cannot be
# linked (another file system) is compiled here instead: nothing is lost.
seed_dependencies() {
  local from=${CARGO_TARGET_DIR:-target}/debug to=fuzz/target/debug d
  [ -d "$from/deps" ] || return 0
  for d in deps build .fingerprint; do
    mkdir -p "$to/$d"
    find "$from/$d" -mindepth 1 -maxdepth 1 ! -name '*fashop*' -print0 |
      xargs -0 -r cp -al --no-clobber -t "$to/$d" 2>/dev/null || true
  done
}
if [ -n "${FUZZ_RUNS:-}" ]; then
  # A fixed number of inputs (FUZZ_RUNS, what `make test` sets) runs in
  # seconds, while a build like cargo-fuzz's takes minutes. This build differs
  # in three ways. Only this crate and the fuzz targets are instrumented
  # (scripts/fuzz-rustc.sh), at opt-level 1 with debug assertions: the unsafe
  # code, the C boundary and every generic the library instantiates are
  # checked by AddressSanitizer and guide the fuzzer, while the dependencies
  # run as plain code, as the standard library always does (AddressSanitizer's
  # allocator still guards their allocations). The dependencies are the debug
  # build's own: same profile, same flags, same versions (fuzz/Cargo.lock
  # keeps the main lock's versions; scripts/check-fuzz-deps.py checks all
  # three in `make lint`), so
  # they are hard-linked from target/debug (seed_dependencies) instead of
  # compiled a second time. And no `--target`: the debug build has none, so
  # build scripts and proc macros are told apart by the wrapper instead.
  # Before: every crate compiled here at opt-level 1, 250 CPU seconds; now
  # the library, libFuzzer and the targets, about 110.
  profile=debug
  seed_dependencies
  export CARGO_TARGET_DIR=$PWD/fuzz/target
  # libFuzzer's own C++ (built only here) optimized as its makers build it: at
  # the debug profile's -O0 its comparison hooks took most of a run's time.
  build_mode=(--config 'profile.dev.package.fashop-notify.opt-level=1'
    --config 'profile.dev.package.fashop-notify-fuzz.opt-level=1'
    --config 'profile.dev.package.libfuzzer-sys.opt-level=3')
  export RUSTC_WRAPPER=$PWD/scripts/fuzz-rustc.sh
  # A warning in the library or a target fails this build, as it fails clippy.
  export FUZZ_RUSTFLAGS_OURS="$plain $sancov -Cunsafe-allow-abi-mismatch=sanitizer -Dwarnings"
  target=()
  flags=
else
  # A run for a time wants cargo-fuzz's own build: optimized, one codegen
  # unit, every crate instrumented; --target keeps these flags away from build
  # scripts and proc macros.
  profile=release
  build_mode=(--release --config 'profile.release.debug="line-tables-only"')
  target=(--target "$triple")
  flags="$plain $sancov -Ccodegen-units=1"
  export RUSTC_BOOTSTRAP=1
fi
RUSTFLAGS="$flags${RUSTFLAGS:+ $RUSTFLAGS}" \
  cargo build --manifest-path fuzz/Cargo.toml "${target[@]}" "${build_mode[@]}" --bins
# FUZZ_BUILD_ONLY=1: the build alone (`make test` starts it early, see scripts/prebuild.sh).
if [ "${FUZZ_BUILD_ONLY:-0}" = 1 ]; then
  exit 0
fi
if [ ${#target[@]} -gt 0 ]; then bin_dir=fuzz/target/$triple/$profile; else bin_dir=fuzz/target/$profile; fi

# fuzz_one TARGET LOG: one target's run, its output in LOG.
fuzz_one() {
  local t=$1 log=$2 dict scratch=
  local dirs
  case $t in
    placeholder) dict=fuzz/dict/placeholder.dict ;;
    *) dict=fuzz/dict/json.dict ;;
  esac
  if [ "${FUZZ_GROW:-0}" = 1 ]; then
    dirs=(fuzz/corpus/"$t")
  else
    scratch=$(mktemp -d)
    dirs=("$scratch" fuzz/corpus/"$t")
  fi
  mkdir -p fuzz/artifacts/"$t"
  # FUZZ_RUNS (what `make test` sets) makes the run reproducible: a fixed seed
  # and a fixed number of inputs, so the test command fails only when the code
  # changed, never because a random run went further this time.
  local budget
  if [ -n "${FUZZ_RUNS:-}" ]; then
    budget=(-runs="$FUZZ_RUNS" -seed=1)
    echo "== fuzz $t: $FUZZ_RUNS inputs from seed 1" >"$log"
  else
    budget=(-max_total_time="$secs")
    echo "== fuzz $t for ${secs}s" >"$log"
  fi
  local status=0
  "$bin_dir/$t" -artifact_prefix=fuzz/artifacts/"$t"/ "${budget[@]}" -timeout=10 \
    -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1 "${dirs[@]}" >>"$log" 2>&1 || status=$?
  if [ -n "$scratch" ]; then rm -rf "$scratch"; fi
  return $status
}

# report TARGET LOG STATUS: the summary lines, or the end of the log on failure.
report() {
  local t=$1 log=$2 status=$3
  head -1 "$log"
  if [ "$status" != 0 ]; then
    tail -60 "$log"
    echo "fuzz $t: FAILED (input in fuzz/artifacts/$t/)" >&2
    return 1
  fi
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
}

# shellcheck source=scripts/lanes.sh
. scripts/lanes.sh
run_lanes "${FUZZ_JOBS:-2}" fuzz_one report "${targets[@]}"
