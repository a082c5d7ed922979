#!/usr/bin/env bash
# Runs `make SUITE` for each suite in turn and prints how long each took: after
# the last one, or at the first failure (which then fails the run).
# An argument of the form `a+b|c+d` runs its lanes side by side (scripts/lanes.sh):
# a then b in one lane, c then d in the other, each lane's output printed whole
# when it ends. Suites that keep one core busy (valgrind, one PHP process, the
# browser) share the two cores that way; a failed suite ends its lane.
# Usage: scripts/run-suites.sh SUITE|LANES...
set -uo pipefail
make=${MAKE:-make}
names=() secs=()
started=$(date +%s)
report() {
  echo
  echo "suite times (side by side where two share a group):"
  local total=0 i
  for i in "${!names[@]}"; do
    printf '  %-20s %5d s\n' "${names[$i]}" "${secs[$i]}"
    total=$((total + secs[i]))
  done
  printf '  %-20s %5d s\n' "sum of the suites" "$total"
  printf '  %-20s %5d s\n' "wall" "$(($(date +%s) - started))"
}

# run_one SUITE: `make SUITE`, its time recorded; returns its status.
run_one() {
  local start status
  start=$(date +%s)
  $make --no-print-directory "$1"
  status=$?
  names+=("$1")
  secs+=($(($(date +%s) - start)))
  return $status
}

# run_lane LANE LOG: the suites of LANE (`a+b`) in turn, output in LOG, each
# suite's name and time in LOG.times; stops at a failed suite.
run_lane() {
  local suite start status IFS=+
  for suite in $1; do
    start=$(date +%s)
    $make --no-print-directory "$suite" >>"$2" 2>&1
    status=$?
    echo "$suite $(($(date +%s) - start))" >>"$2.times"
    [ $status -eq 0 ] || return $status
  done
}

# lane_done LANE LOG STATUS: the lane's output and times, in this shell.
lane_done() {
  local name secs_taken
  echo "== lane $1"
  cat "$2"
  while read -r name secs_taken; do
    names+=("$name")
    secs+=("$secs_taken")
  done <"$2.times"
  [ "$3" = 0 ] || echo "make test: lane $1 failed" >&2
  return "$3"
}

# shellcheck source=scripts/lanes.sh
. "$(dirname "$0")/lanes.sh"
for suite in "$@"; do
  if [[ $suite == *"|"* ]]; then
    IFS='|' read -r -a lanes <<<"$suite"
    run_lanes "${#lanes[@]}" run_lane lane_done "${lanes[@]}"
  else
    run_one "$suite"
  fi
  status=$?
  if [ $status -ne 0 ]; then
    report
    echo "make test: suite $suite failed" >&2
    exit $status
  fi
done
report
