#!/usr/bin/env bash
# Usage: scripts/with-sandbox.sh SANDBOX_BINARY COMMAND [ARGS...]
# Starts the WeChat sandbox on 127.0.0.1 with an ephemeral port, exports its URL as
# FASHOP_NOTIFY_SANDBOX_URL, runs COMMAND, and stops the sandbox whatever happens.
set -euo pipefail
bin=$1
shift
coproc SANDBOX { exec "$bin" --host 127.0.0.1 --port 0; }
sandbox_pid=$SANDBOX_PID
trap 'kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true' EXIT
# The sandbox prints exactly one line on stdout once it accepts connections.
if ! read -r -t 30 line <&"${SANDBOX[0]}"; then
  echo "with-sandbox: the sandbox did not start" >&2
  exit 1
fi
export FASHOP_NOTIFY_SANDBOX_URL=${line#listening on }
"$@"
