#!/usr/bin/env bash
# Runs a test suite's command. Under `make test`, LEAK_SCAN_RECORD names the scan
# directory: the command's output is then also appended to DIR/NAME.out and its
# TMPDIR is DIR/tmp, so the files its tests leave stay there too, and the leak
# scan at the end searches what this one run left instead of running it again.
# Usage: scripts/keep-output.sh NAME COMMAND [ARGS...]
set -euo pipefail
name=${1:?usage: scripts/keep-output.sh NAME COMMAND [ARGS...]}
shift
dir=${LEAK_SCAN_RECORD:-}
if [ -z "$dir" ]; then
  exec "$@"
fi
mkdir -p "$dir/tmp"
export TMPDIR=$dir/tmp
"$@" 2>&1 | tee -a "$dir/$name.out"
