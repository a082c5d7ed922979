#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, when missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
# Usage: scripts/deps.sh [bench]   (bench adds what `make bench` needs)
set -euo pipefail

# command-to-look-for:package
need=(
  "php:php-cli"
  "phpunit:phpunit"
  "valgrind:valgrind"
  "redis-server:redis-server"
  "gcc:gcc"
  "pkg-config:pkg-config"
  "objcopy:binutils"
  "make:make"
  "promtool:prometheus"
  "cgi-fcgi:libfcgi-bin"
  "php-fpm-any:php-fpm"
  "php-pdo-sqlite-any:php-sqlite3"
  "python3:python3"
  "venv-any:python3-venv"
  "chromium:chromium"
  "chromedriver:chromium-driver"
  "font-cjk-any:fonts-wqy-microhei"
  "node:nodejs"
)
if [ "${1:-}" = bench ]; then
  # php-curl and php-mbstring: the hand-written curl client (Debian's PHP has neither by default).
  need+=("wrk:wrk" "nginx:nginx"
    "php-curl-any:php-curl" "php-mbstring-any:php-mbstring")
fi

# grep reads all of `php -m`: with -q it would stop early, php would get SIGPIPE
# and pipefail would report the module missing now and then.
have() {
  case "$1" in
    php-fpm-any) compgen -G '/usr/sbin/php-fpm*' >/dev/null ;;
    venv-any) python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ;;
    php-curl-any) php -m 2>/dev/null | grep -x curl >/dev/null ;;
    php-mbstring-any) php -m 2>/dev/null | grep -x mbstring >/dev/null ;;
    # The admin's PdoSettingMappingStore is tested on SQLite through PDO.
    php-pdo-sqlite-any) php -m 2>/dev/null | grep -x pdo_sqlite >/dev/null ;;
    # The editor's screenshots need a Chinese font (chromium draws boxes without one).
    font-cjk-any) fc-list :lang=zh 2>/dev/null | grep . >/dev/null ;;
    php) command -v php >/dev/null 2>&1 && php -m 2>/dev/null | grep -x FFI >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ] ;;
  esac
}

# The fuzz targets need no cargo-fuzz: scripts/fuzz.sh builds them with cargo
# (the nightly-only sanitizer flags through RUSTC_BOOTSTRAP) and runs them itself.

missing=()
for pair in "${need[@]}"; do
  have "${pair%%:*}" || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "make deps: missing Debian packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "make deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
