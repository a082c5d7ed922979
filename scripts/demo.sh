#!/usr/bin/env bash
# The end-to-end demo (run by `make demo` inside scripts/with-sandbox.sh):
# the C host, then the PHP shop, both against the WeChat sandbox, memory store.
# Usage: scripts/demo.sh TARGET_PROFILE_DIR
set -euo pipefail
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)
export FASHOP_NOTIFY_LIB="$out/libfashop_notify.so"
appid=wxdemo0000000001

tpl=$(php -r 'echo json_decode(file_get_contents($argv[1]), true)["events"]["order_pay_success"]["template_id"];' \
  "$root/examples/mappings.json")

echo "### C host (examples/c/send.c)"
# The buyer's tap in the mini program, played against the sandbox.
php "$root/examples/php/sandbox_tap.php" "$appid" oDemoBuyer_c_0001 "$tpl"
"$out/examples/send" "$root/examples/mappings.json" "$tpl"

echo
echo "### PHP shop (examples/php/shop_demo.php)"
php -d ffi.enable=1 "$root/examples/php/shop_demo.php"

echo
echo "### Service cards for a buyer with no grant (examples/php/card_demo.php)"
php -d ffi.enable=1 "$root/examples/php/card_demo.php"

echo
echo "### Notification admin (bindings/php/admin/index.php)"
# Started on a free port, asked for the events through its JSON API, stopped again.
ADMIN_EDITOR_CHECK=1 "$root/scripts/admin-editor.sh" "$out"
echo "Mapping editor: run \`make editor\`, then open http://127.0.0.1:8090/ (admin secret: demo-admin-secret)."
