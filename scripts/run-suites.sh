#!/usr/bin/env bash
# Runs `make SUITE` for each suite in turn and prints how long each took: after
# the last one, or at the first failure (which then fails the run).
# Usage: scripts/run-suites.sh SUITE...
set -uo pipefail
make=${MAKE:-make}
names=() secs=()
report() {
  echo
  echo "suite times:"
  local total=0 i
  for i in "${!names[@]}"; do
    printf '  %-20s %5d s\n' "${names[$i]}" "${secs[$i]}"
    total=$((total + secs[i]))
  done
  printf '  %-20s %5d s\n' total "$total"
}
for suite in "$@"; do
  start=$(date +%s)
  $make --no-print-directory "$suite"
  status=$?
  names+=("$suite")
  secs+=($(($(date +%s) - start)))
  if [ $status -ne 0 ]; then
    report
    echo "make test: suite $suite failed" >&2
    exit $status
  fi
done
report
