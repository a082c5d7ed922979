#!/usr/bin/env bash
# The notification admin and its mapping editor against the WeChat sandbox (run by
# `make editor` inside scripts/with-sandbox.sh): php's built-in server on 127.0.0.1,
# the sandbox's demo app, a mapping file and a SQLite store under TARGET/admin-editor.
# Usage: scripts/admin-editor.sh TARGET_PROFILE_DIR [PORT]   (default 8090)
# With ADMIN_EDITOR_CHECK=1 it starts the server on a free port, checks that the API
# answers, and stops.
set -euo pipefail
out=$1
port=${2:-8090}
root=$(cd "$(dirname "$0")/.." && pwd)
: "${FASHOP_NOTIFY_SANDBOX_URL:?run inside scripts/with-sandbox.sh}"
state="$out/admin-editor"
mkdir -p "$state"
export FASHOP_NOTIFY_LIB="$out/libfashop_notify.so"
export FASHOP_NOTIFY_ADMIN_SECRET=${FASHOP_NOTIFY_ADMIN_SECRET:-demo-admin-secret}
export FASHOP_NOTIFY_APPID=wxdemo0000000001
export FASHOP_NOTIFY_APP_SECRET=demo-app-secret-0001
export FASHOP_NOTIFY_API_BASE=$FASHOP_NOTIFY_SANDBOX_URL
export FASHOP_NOTIFY_STORE="sqlite:$state/notify.db"
export FASHOP_NOTIFY_MAPPING_FILE="$state/mapping.json"

if [ "${ADMIN_EDITOR_CHECK:-0}" = 1 ]; then
  coproc SERVER { exec php -d ffi.enable=1 -S 127.0.0.1:0 "$root/bindings/php/admin/index.php" 2>&1; }
  server=$SERVER_PID
  trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
  # php -S logs one "Development Server (http://127.0.0.1:PORT) started" line once it listens.
  url=
  while read -r -t 30 line <&"${SERVER[0]}"; do
    if [[ $line =~ Development\ Server\ \((http://[^\)]*)\)\ started ]]; then
      url="${BASH_REMATCH[1]}/"
      break
    fi
  done
  [ -n "$url" ] || { echo "admin-editor: php -S did not start" >&2; exit 1; }
  answer=$(php -r '
    $ctx = stream_context_create(["http" => ["header" => "X-Admin-Secret: " . getenv("FASHOP_NOTIFY_ADMIN_SECRET"), "ignore_errors" => true, "timeout" => 10]]);
    echo file_get_contents($argv[1] . "api/events", false, $ctx);' "$url")
  php -r '$a = json_decode($argv[1], true); if (!($a["ok"] ?? false)) { fwrite(STDERR, "admin API: $argv[1]\n"); exit(1); }
    foreach ($a["data"]["events"] as $e) echo "  {$e["label"]} ({$e["event"]}): {$e["state"]}\n";' "$answer"
  exit 0
fi

echo "Mapping editor: http://127.0.0.1:$port/   (admin secret: $FASHOP_NOTIFY_ADMIN_SECRET; Ctrl-C stops it)"
exec php -d ffi.enable=1 -S "127.0.0.1:$port" "$root/bindings/php/admin/index.php"
