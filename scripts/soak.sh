#!/usr/bin/env bash
# The soak on each store given, side by side: each run is its own processes,
# sandbox, ledger (and redis-server), so the stores' runs share nothing but the
# CPU, and `make test` spends SECS once instead of once per store. Each run's
# output is printed whole when it ends; any failed run fails this one.
# Usage: scripts/soak.sh SOAK_BINARY SECS PROCS STORE...
set -euo pipefail
bin=${1:?usage: scripts/soak.sh SOAK_BINARY SECS PROCS STORE...}
secs=${2:?soak: SECS missing}
procs=${3:?soak: PROCS missing}
shift 3
[ $# -gt 0 ] || { echo "soak: no store given" >&2; exit 2; }
here=$(dirname "$0")

# soak_one STORE LOG: one store's run, its output in LOG.
soak_one() {
  "$here/keep-output.sh" "soak-$1" "$bin" "$secs" "$procs" "$1" >"$2" 2>&1
}

# report STORE LOG STATUS
report() {
  echo "== soak on $1"
  cat "$2"
  if [ "$3" != 0 ]; then
    echo "soak on $1: FAILED (exit $3)" >&2
    return 1
  fi
}

# shellcheck source=scripts/lanes.sh
. "$here/lanes.sh"
run_lanes $# soak_one report "$@"
