#!/usr/bin/env bash
# The secret-leak scan: runs the test suites again with every output kept
# (Rust tests with the output of passing tests too, C tests, PHP tests, the demo,
# a short soak whose workers write the structured log and every error message),
# with TMPDIR pointing into the scan so the logs and files the tests write land
# there too, then searches all of it for the app secrets the tests use and for
# any access token the sandbox issued (`86_` + 133 characters). Any hit fails.
# Usage: scripts/leak-scan.sh TARGET_PROFILE_DIR
set -euo pipefail
out=$(cd "${1:?usage: scripts/leak-scan.sh TARGET_PROFILE_DIR}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sandbox=$out/fashop-notify-sandbox
scan=$(mktemp -d "${TMPDIR:-/tmp}/fashop-leak-scan.XXXXXX")
mkdir -p "$scan/tmp"
# Like /tmp: some tests run a command as another user (php-fpm, preload as nobody).
chmod 0755 "$scan"
chmod 1777 "$scan/tmp"
export TMPDIR=$scan/tmp

# The secrets: the sandbox's demo secret and every secret the tests register.
secrets=$scan/secrets.txt
{
  echo demo-app-secret-0001
  # JSON in Rust, PHP and C sources ("secret": "…", \"secret\":\"…\"), PHP arrays, Rust constants.
  grep -rhoE '\\?"secret\\?"[[:space:]]*:[[:space:]]*\\?"[A-Za-z0-9_./+-]{6,}' tests bindings/php/tests examples |
    sed -E 's/.*"([^"]+)$/\1/'
  grep -rhoE "'secret'[[:space:]]*=>[[:space:]]*'[A-Za-z0-9_./+-]{6,}'" bindings/php/tests examples |
    sed -E "s/.*'([^']+)'$/\1/"
  grep -rhoE 'const [A-Z_]*SECRET[A-Z_]*: &str = "[^"]{6,}"' tests src/sandbox |
    sed -E 's/.*"([^"]+)"$/\1/'
} | grep -vxE '[a-z]+' | sort -u >"$secrets"   # a plain word ("another") would match prose
echo "leak-scan: $(wc -l <"$secrets") known secrets, output in $scan"

status=0
run() {
  local name=$1
  shift
  echo "== leak-scan: $name"
  if ! "$@" >"$scan/$name.out" 2>&1; then
    tail -30 "$scan/$name.out"
    echo "leak-scan: $name failed" >&2
    status=1
  fi
}
run rust cargo nextest run --features sandbox --no-fail-fast --success-output final --failure-output final
for t in "$out"/ctests/test_*; do
  run "c-$(basename "$t")" scripts/with-sandbox.sh "$sandbox" "$t"
done
run php scripts/with-sandbox.sh "$sandbox" env FASHOP_NOTIFY_LIB="$out/libfashop_notify.so" \
  phpunit --colors=never --debug --configuration bindings/php/phpunit.xml
run demo scripts/with-sandbox.sh "$sandbox" scripts/demo.sh "$out"
run soak env FASHOP_SOAK_KEEP=1 "$out/fashop-notify-soak" "${LEAK_SCAN_SOAK_SECS:-15}" 4
[ $status -eq 0 ] || exit 1

# Text files only (-I): SQLite files are the store and hold permits by design.
hits=$scan/hits.txt
{
  grep -rIaF -f "$secrets" --exclude=secrets.txt --exclude=hits.txt "$scan" || true
  grep -rIaE '86_[A-Za-z0-9_-]{40,}' --exclude=secrets.txt --exclude=hits.txt "$scan" || true
} >"$hits"
files=$(find "$scan" -type f | wc -l)
if [ -s "$hits" ]; then
  echo "leak-scan: FAILED, a secret or token in $(wc -l <"$hits") lines:" >&2
  cut -c1-300 "$hits" | head -40 >&2
  exit 1
fi
echo "leak-scan: no secret or token in $files files ($(du -sh "$scan" | cut -f1))"
rm -rf "$scan"
