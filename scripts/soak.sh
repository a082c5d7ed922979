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
keep=$(dirname "$0")/keep-output.sh
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
declare -A store_of=()
for store in "$@"; do
  "$keep" "soak-$store" "$bin" "$secs" "$procs" "$store" >"$logs/$store" 2>&1 &
  store_of[$!]=$store
done
failed=0
while [ ${#store_of[@]} -gt 0 ]; do
  status=0
  wait -n -p done "${!store_of[@]}" || status=$?
  store=${store_of[$done]}
  unset "store_of[$done]"
  echo "== soak on $store"
  cat "$logs/$store"
  if [ "$status" != 0 ]; then
    echo "soak on $store: FAILED (exit $status)" >&2
    failed=1
  fi
done
exit $failed
