#!/usr/bin/env bash
# The secret-leak scan: searches the output of the test suites and the files
# their tests left behind (their TMPDIR) for the app secrets the tests use and
# for any access token the sandbox issued (`86_` + 133 characters). Any hit fails.
#
# Under `make test` every suite keeps its output and points TMPDIR into one scan
# directory as it runs (see the Makefile's LEAK_SCAN_DIR); this script is then
# given that directory and only searches it. Without one, it runs the suites
# itself first (Rust with the output of passing tests too, C, PHP, the demo and
# a short soak whose workers write the structured log and every error message).
# Either way it first proves that the search finds a planted secret and token.
# Usage: scripts/leak-scan.sh TARGET_PROFILE_DIR [RECORDED_SCAN_DIR]
set -euo pipefail
out=$(cd "${1:?usage: scripts/leak-scan.sh TARGET_PROFILE_DIR [RECORDED_SCAN_DIR]}" && pwd)
recorded=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sandbox=$out/fashop-notify-sandbox
work=$(mktemp -d "${TMPDIR:-/tmp}/fashop-leak-scan.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The secrets: the sandbox's demo secret and every secret the tests register.
secrets=$work/secrets.txt
{
  echo demo-app-secret-0001
  # JSON in Rust, PHP and C sources ("secret": "…", \"secret\":\"…\"), PHP arrays, Rust constants.
  grep -rhoE '\\?"secret\\?"[[:space:]]*:[[:space:]]*\\?"[A-Za-z0-9_./+-]{6,}' tests sandbox/tests bindings/php/tests examples |
    sed -E 's/.*"([^"]+)$/\1/'
  grep -rhoE "'secret'[[:space:]]*=>[[:space:]]*'[A-Za-z0-9_./+-]{6,}'" bindings/php/tests examples |
    sed -E "s/.*'([^']+)'$/\1/"
  grep -rhoE 'const [A-Z_]*SECRET[A-Z_]*: &str = "[^"]{6,}"' tests sandbox |
    sed -E 's/.*"([^"]+)"$/\1/'
} | grep -vxE '[a-z]+' | sort -u >"$secrets"   # a plain word ("another") would match prose

token_re='86_[A-Za-z0-9_-]{40,}'

# The stores hold permits and the shared access token by design (docs/security.md):
# SQLite databases with their -wal, -shm and -journal files, Redis's persistence files.
is_store() {
  local f=$1 base
  case $f in
    *.aof | *.rdb | */appendonlydir/*) return 0 ;;
    *-wal | *-shm | *-journal) base=${f%-*} ;;
    *) base=$f ;;
  esac
  [ -f "$base" ] && [ "$(head -c 15 "$base")" = "SQLite format 3" ]
}

# Every line holding a secret or a token in the files under DIR; a store may
# hold the token, never a secret (-a: a log with a stray byte that is not UTF-8
# is searched all the same).
search() {
  local f
  { grep -rlaF -f "$secrets" "$1" || true; grep -rlaE "$token_re" "$1" || true; } | sort -u |
    while IFS= read -r f; do
      grep -HaF -f "$secrets" "$f" || true
      is_store "$f" || grep -HaE "$token_re" "$f" || true
    done
}

# The search must find what it is looking for: a secret and a token planted
# among harmless lines, each in a file of its own, and nothing else.
planted=$work/planted
mkdir -p "$planted/logs"
printf '{"level":"info","msg":"token fetched"}\nGET /cgi-bin/token?appid=wx1&secret=%s\n' \
  "$(tail -1 "$secrets")" >"$planted/logs/app.log"
printf 'access_token=86_%s\n' "$(printf 'Ab9_-%.0s' $(seq 27))" >"$planted/out.txt"
printf 'nothing to see\n' >"$planted/clean.txt"
# A store holding the token is no leak.
printf 'SQLite format 3\0\0\0access_token 86_%s\n' "$(printf 'Ab9_-%.0s' $(seq 27))" >"$planted/notify.db"
cp "$planted/notify.db" "$planted/notify.db-wal"
# A store holding a secret is one.
printf 'SQLite format 3\0\0\0secret %s\n' "$(tail -1 "$secrets")" >"$planted/other.db"
found=$(search "$planted" | cut -d: -f1 | sort -u | tr '\n' ' ')
if [ "$found" != "$planted/logs/app.log $planted/other.db $planted/out.txt " ]; then
  echo "leak-scan: the search missed a planted secret or token (found in: ${found:-nothing})" >&2
  exit 1
fi
rm -rf "$planted"

if [ -n "$recorded" ]; then
  scan=$(cd "$recorded" && pwd)
  # Every suite `make test` runs must have left its output: a suite that
  # stopped recording would otherwise pass the scan unseen.
  soaks=()
  for store in ${SOAK_STORES:-sqlite}; do soaks+=("soak-$store.out"); done
  for name in rust.out rust-junit.xml rust-doc.out c.out php.out php-valgrind.out demo.out \
    bench-smoke.out "${soaks[@]}"; do
    if [ ! -s "$scan/$name" ]; then
      echo "leak-scan: nothing recorded for $name in $scan" >&2
      exit 1
    fi
  done
  echo "leak-scan: $(wc -l <"$secrets") known secrets, searching what the suites left in $scan"
else
  scan=$work/run
  mkdir -p "$scan/tmp"
  # Like /tmp: some tests run a command as another user (php-fpm, preload as nobody).
  chmod 0755 "$work" "$scan"
  chmod 1777 "$scan/tmp"
  export TMPDIR=$scan/tmp
  echo "leak-scan: $(wc -l <"$secrets") known secrets, running the suites, output in $scan"
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
  run rust cargo nextest run --workspace --no-fail-fast --success-output final --failure-output final
  for t in "$out"/ctests/test_*; do
    run "c-$(basename "$t")" scripts/with-sandbox.sh "$sandbox" "$t"
  done
  run php scripts/with-sandbox.sh "$sandbox" env FASHOP_NOTIFY_LIB="$out/libfashop_notify.so" \
    phpunit --colors=never --debug --configuration bindings/php/phpunit.xml
  run demo scripts/with-sandbox.sh "$sandbox" scripts/demo.sh "$out"
  run soak env FASHOP_SOAK_KEEP=1 "$out/fashop-notify-soak" "${LEAK_SCAN_SOAK_SECS:-15}" 4
  [ $status -eq 0 ] || exit 1
fi

hits=$work/hits.txt
search "$scan" >"$hits"
files=$(find "$scan" -type f | wc -l)
if [ -s "$hits" ]; then
  echo "leak-scan: FAILED, a secret or token in $(wc -l <"$hits") lines:" >&2
  cut -c1-300 "$hits" | head -40 >&2
  exit 1
fi
echo "leak-scan: no secret or token in $files files ($(du -sh "$scan" | cut -f1))"
