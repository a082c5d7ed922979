#!/usr/bin/env bash
# Builds that `make test` needs late (the release build for the install test, the
# sanitized fuzz targets) started in the background at the beginning, at low
# priority, so they use the CPU the test suites leave idle (valgrind, PHP and the
# sandbox mostly keep one core busy) instead of adding their time at the end.
# Each build holds an flock on DIR/NAME.lock while it runs; `wait` takes that lock
# (so it returns when the build ended, without polling) and fails with the
# build's log when the build failed.
# Usage: scripts/prebuild.sh start DIR NAME COMMAND [ARGS...]
#        scripts/prebuild.sh wait DIR NAME
set -euo pipefail
what=${1:?usage: scripts/prebuild.sh start|wait DIR NAME [COMMAND...]}
dir=${2:?prebuild: DIR missing}
name=${3:?prebuild: NAME missing}
shift 3
mkdir -p "$dir"
lock=$dir/$name.lock log=$dir/$name.log rc=$dir/$name.rc
case $what in
  start)
    [ $# -gt 0 ] || { echo "prebuild: COMMAND missing" >&2; exit 2; }
    rm -f "$rc"
    : >"$log"
    # The lock is taken here, before this script returns, so a `wait` that
    # follows at once cannot find it free before the build started.
    exec 9>"$lock"
    flock 9
    (
      status=0
      nice -n 10 "$@" >>"$log" 2>&1 </dev/null 9>&- || status=$?
      echo "$status" >"$rc"
    ) &
    echo "prebuild: $name started in the background (log: $log)"
    ;;
  wait)
    [ -e "$lock" ] || { echo "prebuild: $name was never started" >&2; exit 2; }
    flock "$lock" true
    status=$(cat "$rc" 2>/dev/null || echo missing)
    if [ "$status" != 0 ]; then
      tail -80 "$log" >&2
      echo "prebuild: $name failed (exit $status); its log: $log" >&2
      exit 1
    fi
    echo "prebuild: $name done"
    ;;
  *) echo "usage: scripts/prebuild.sh start|wait DIR NAME [COMMAND...]" >&2; exit 2 ;;
esac
