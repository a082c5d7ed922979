#!/usr/bin/env bash
# The install as a shop's server sees it (`make test-install`, after `make release`, or under
# `make test` after the debug build, INSTALL_BUILD=build):
# `make install` into a temporary DESTDIR; then, outside the repository, examples/c/send.c
# built with `pkg-config --cflags --libs fashop_notify` and a PHP script that loads the
# installed package with no library path, both run against the installed sandbox; the
# SONAME, the exported symbols, the separate debug info; `make dist`'s tarball unpacks
# to the same tree; `make uninstall` removes exactly what was installed.
# Usage: scripts/install-test.sh TARGET_DIR BUILD_DIR   (cargo's target directory, and the
#        build installed: TARGET_DIR/release or TARGET_DIR/debug)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
target=$(cd "${1:?usage: scripts/install-test.sh TARGET_DIR BUILD_DIR}" && pwd -P)
built=$(cd "${2:?usage: scripts/install-test.sh TARGET_DIR BUILD_DIR}" && pwd -P)
make=${MAKE:-make}
prefix=/usr/local
umask 022

fail() { echo "test-install: FAIL: $*" >&2; exit 1; }
ok() { echo "test-install: ok: $*"; }

# Outside the repository, even when TMPDIR points into it (`make test` keeps its TMPDIR
# under target/): nothing below may find the repository's header or build.
base=$(cd "${TMPDIR:-/tmp}" && pwd -P)
case "$base/" in "$root"/*) base=/tmp ;; esac
tmp=$(mktemp -d "$base/fashop-notify-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
top=$dest$prefix

version=$(sed -n 's/^version = "\([0-9][^"]*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
soname=$(php -r 'require $argv[1]; echo FaShop\Notify\LibraryFinder::SONAME;' "$root/bindings/php/src/LibraryFinder.php")
triple=$(rustc -vV | sed -n 's/^host: //p')
lib=libfashop_notify.so.$version

# Things of other packages in the same prefix: uninstall must leave them.
mkdir -p "$top/lib/pkgconfig" "$top/share/other" "$top/include"
echo other >"$top/lib/libother.so.1"
echo other >"$top/share/other/README"
echo other >"$top/include/other.h"

echo "== make install DESTDIR=$dest"
$make -C "$root" --no-print-directory install DESTDIR="$dest" PREFIX="$prefix"

# One line per entry: type, mode, path, link target or content hash.
manifest() {
  (cd "$1" && find . -mindepth 1 -printf '%y %m %p %l\n' | LC_ALL=C sort | while read -r type mode path link; do
    case "$type" in
      f) echo "f $mode $path $(sha256sum <"$path" | cut -d' ' -f1)" ;;
      l) echo "l $path -> $link" ;;
      *) echo "$type $mode $path" ;;
    esac
  done)
}

# --- the tree
expected=$(
  printf '%s\n' ./bin/fashop-notify-sandbox ./include/fashop_notify.h ./include/other.h \
    "./lib/$lib" "./lib/$soname" ./lib/libfashop_notify.so ./lib/libother.so.1 ./lib/pkgconfig/fashop_notify.pc \
    ./share/other/README
  for f in autoload.php preload.php composer.json fashop_notify.ffi.h admin/index.php admin/editor.html; do
    echo "./share/fashop-notify/php/$f"
  done
  (cd "$root/bindings/php" && find src -name '*.php' -printf './share/fashop-notify/php/%p\n')
  echo ./share/fashop-notify/examples/mappings.json
  (cd "$root/examples/php" && find . -maxdepth 1 -name '*.php' -printf './share/fashop-notify/examples/%P\n')
  for f in README.md sandbox/README.md docs/fashop-integration.md docs/security.md; do
    echo "./share/doc/fashop-notify/$f"
  done
  (cd "$root" && find docs -maxdepth 2 -type f \( -name '*.md' -o -name '*.png' \) \
    ! -name fashop-integration.md ! -name security.md -printf './share/doc/fashop-notify/%p\n')
)
have=$(cd "$top" && find . ! -type d)
diff <(LC_ALL=C sort <<<"$expected") <(LC_ALL=C sort <<<"$have") || fail "the installed files differ from the expected list (< expected, > installed)"
[ "$(readlink "$top/lib/$soname")" = "$lib" ] || fail "$soname does not point to $lib"
[ "$(readlink "$top/lib/libfashop_notify.so")" = "$soname" ] || fail "libfashop_notify.so does not point to $soname"
cmp "$root/include/fashop_notify.h" "$top/include/fashop_notify.h"
cmp "$root/bindings/php/fashop_notify.ffi.h" "$top/share/fashop-notify/php/fashop_notify.ffi.h"
cmp "$root/bindings/php/src/Notifier.php" "$top/share/fashop-notify/php/src/Notifier.php"
[ -d "$top/share/fashop-notify/php/tests" ] && fail "the PHP package's tests were installed"
for f in README.md sandbox/README.md docs/fashop-integration.md docs/security.md docs/spec/wechat.md; do
  cmp "$root/$f" "$top/share/doc/fashop-notify/$f"
done
# The sandbox's manual as its --help: exit 0, the control API in it.
help=$("$top/bin/fashop-notify-sandbox" --help) || fail "fashop-notify-sandbox --help exited $?"
for word in /sandbox/taps /sandbox/pushes/flush /sandbox/revoke /sandbox/faults /sandbox/clock /sandbox/delivered /sandbox/counters --state; do
  grep -qF -- "$word" <<<"$help" || fail "fashop-notify-sandbox --help does not mention $word"
done
ok "the manuals: share/doc/fashop-notify/ (README, guides, spec, the sandbox's) and fashop-notify-sandbox --help"
ok "the tree: $lib, its links $soname and libfashop_notify.so, header, pkg-config file, sandbox, PHP package"

# --- SONAME, exports, debug info
got=$(readelf -d "$top/lib/$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$got" = "$soname" ] || fail "SONAME is '$got', expected $soname"
ok "readelf -d: SONAME $got"

exported=$(nm -D --defined-only --format=posix "$top/lib/$lib" | awk '{print $1}' | LC_ALL=C sort)
foreign=$(grep -v '^fashop_notify_' <<<"$exported" || true)
[ -z "$foreign" ] || fail "symbols outside fashop_notify_* exported: $(echo $foreign)"
declared=$(grep -o '\bfashop_notify_[a-z0-9_]*(' "$root/include/fashop_notify.h" | tr -d '(' | LC_ALL=C sort -u)
[ -n "$declared" ] || fail "no function found in include/fashop_notify.h"
diff <(echo "$declared") <(echo "$exported") || fail "exported functions differ from the header's (< header, > exported)"
ok "nm -D --defined-only: exactly the header's $(wc -l <<<"$exported") fashop_notify_* functions"
# The sandbox is a crate of its own: none of its code is in the library a shop installs.
sandboxed=$(nm "$top/lib/$lib" | grep -c sandbox || true)
[ "$sandboxed" = 0 ] || fail "the library holds $sandboxed sandbox symbols (nm)"
ok "nm: no sandbox symbol in the library"

sections() { readelf -S -W "$1" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\./) { print $i; break }}'; }
sections "$top/lib/$lib" | grep -qx '.debug_info' && fail "the installed library still has .debug_info"
sections "$top/lib/$lib" | grep -qx '.gnu_debuglink' || fail "the installed library has no .gnu_debuglink"
link=$(readelf -p .gnu_debuglink "$top/lib/$lib" | sed -n 's/^ *\[ *0\] *//p')
[ "$link" = "$lib.debug" ] || fail "the debug link names '$link', expected $lib.debug"
debug=$built/stripped/$lib.debug
sections "$debug" | grep -qx '.debug_info' || fail "$debug has no .debug_info"
build_id() { readelf -n "$1" | sed -n 's/.*Build ID: //p'; }
[ -n "$(build_id "$debug")" ] && [ "$(build_id "$debug")" = "$(build_id "$top/lib/$lib")" ] || fail "the debug file's build id differs from the library's"
ok "debug info apart: the library links $link (same build id)"

# --- C, outside the repository, through pkg-config
mkdir "$tmp/c"
cp "$root/examples/c/send.c" "$root/examples/mappings.json" "$tmp/c/"
pc() { env PKG_CONFIG_PATH="$top/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config "$@" fashop_notify; }
[ "$(pc --modversion)" = "$version" ] || fail "pkg-config --modversion says $(pc --modversion), expected $version"
flags=$(pc --cflags --libs)
echo "pkg-config --cflags --libs fashop_notify: $flags"
(cd "$tmp/c" && gcc -std=c11 -Wall -Wextra -Werror -o send send.c $flags)
needed=$(readelf -d "$tmp/c/send" | sed -n 's/.*Shared library: \[\(libfashop_notify[^]]*\)\]/\1/p')
[ "$needed" = "$soname" ] || fail "send needs '$needed', expected $soname"
ok "send.c built with pkg-config; it needs $needed"

# --- PHP: the installed package, no library path, no FASHOP_NOTIFY_LIB, no pkg-config
mkdir "$tmp/php"
cat >"$tmp/php/shop.php" <<'PHP'
<?php
// A shop's script: the package from where `make install` put it, the library found by it.
declare(strict_types=1);

$prefix = $argv[1];
require "$prefix/share/fashop-notify/php/autoload.php";

use FaShop\Notify\LibraryFinder;
use FaShop\Notify\Notifier;

$n = Notifier::load();
$found = Notifier::findLibrary();
$expected = "$prefix/lib/" . LibraryFinder::SONAME;
if ($found !== $expected) {
    fwrite(STDERR, "loaded $found, expected $expected\n");
    exit(1);
}
echo "PHP: Notifier::load() found $found, version ", $n->version(), "\n";
$appid = 'wxdemo0000000001';
$openid = 'oDemoBuyer_php_0001';
$n->configure(['api_base' => (string) getenv('FASHOP_NOTIFY_SANDBOX_URL')]);
$n->registerApp(['appid' => $appid, 'secret' => 'demo-app-secret-0001']);
$n->loadMappings($appid, (string) file_get_contents($argv[2]));
$tpl = $n->getMappings($appid)['events']['order_pay_success']['template_id'];
sandbox_tap($appid, $openid, $tpl);
$n->addPermit($appid, ['openid' => $openid, 'kind' => 'subscribe', 'template_id' => $tpl]);
$sent = $n->send($appid, 'order_pay_success', ['touser' => $openid, 'fields' => [
    'order_id' => 7, 'order_sn' => 'SN2026112300000007', 'order_amount' => '12.50',
    'order_total_goods_name' => '保温杯', 'order_total_goods_num' => 1,
    'order_create_time' => 1795426200, 'pay_time' => 1795426265,
]]);
echo "PHP: send order_pay_success: {$sent->status}\n";
exit($sent->status === 'sent' ? 0 : 1);
PHP

# Against the installed sandbox: the C host, then the PHP script.
clients() {
  tpl=$(php -r 'echo json_decode(file_get_contents($argv[1]), true)["events"]["order_pay_success"]["template_id"];' \
    "$tmp/c/mappings.json")
  php "$root/examples/php/sandbox_tap.php" wxdemo0000000001 oDemoBuyer_c_0001 "$tpl"
  out=$(cd "$tmp/c" && env -u FASHOP_NOTIFY_LIB LD_LIBRARY_PATH="$top/lib" ./send mappings.json "$tpl")
  grep -qx 'C demo: OK' <<<"$out" || { echo "$out"; fail "send.c against the installed library"; }
  ok "send.c ran against the installed library and sandbox: $(grep -m1 '^fashop-notify' <<<"$out")"
  (cd "$tmp/php" && env -u FASHOP_NOTIFY_LIB -u PKG_CONFIG_PATH -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR \
    php -d ffi.enable=1 -d auto_prepend_file="$root/examples/php/sandbox_tap.php" shop.php "$top" "$tmp/c/mappings.json") \
    || fail "the PHP script with the installed package"
  ok "the installed PHP package found the installed library by itself and sent"
  # The guide's examples run from where they are installed, with the installed package.
  out=$(cd "$tmp" && env -u FASHOP_NOTIFY_LIB php -d ffi.enable=1 "$top/share/fashop-notify/examples/shop_demo.php") \
    || { echo "$out"; fail "the installed shop_demo.php"; }
  ok "the installed examples/shop_demo.php ran against the installed package and sandbox"
}
export -f clients fail ok
export tmp top root
"$root/scripts/with-sandbox.sh" "$top/bin/fashop-notify-sandbox" bash -eu -o pipefail -c clients

# --- make dist: the same tree
echo "== make dist"
$make -C "$root" --no-print-directory dist PREFIX="$prefix"
dist=$target/dist
name=fashop-notify-$version-$triple
[ -f "$dist/$name.tar.gz" ] || fail "no $dist/$name.tar.gz"
(cd "$dist" && sha256sum --quiet -c "$name.sha256") || fail "$name.sha256 does not match"
grep -q " $name.tar.gz\$" "$dist/$name.sha256" || fail "$name.sha256 does not cover the tarball"
mkdir "$tmp/unpack"
tar -C "$tmp/unpack" -xzf "$dist/$name.tar.gz"
[ "$(ls -A "$tmp/unpack")" = "$name" ] || fail "the tarball does not unpack to the single directory $name"
others='^(f [0-9]+ \./lib/libother\.so\.1 |f [0-9]+ \./include/other\.h |d [0-9]+ \./share/other$|f [0-9]+ \./share/other/README )'
diff <(manifest "$top" | grep -Ev "$others") <(manifest "$tmp/unpack/$name") || fail "the tarball's tree differs from the installed one (< installed, > tarball)"
cmp "$debug" "$dist/$lib.debug" || fail "the dist's debug file is not the build's"
ok "$name.tar.gz unpacks to the installed tree ($(stat -c %s "$dist/$name.tar.gz") bytes; library $(stat -c %s "$top/lib/$lib") bytes stripped)"

# --- make uninstall: exactly that removed
echo "== make uninstall DESTDIR=$dest"
$make -C "$root" --no-print-directory uninstall DESTDIR="$dest" PREFIX="$prefix"
left=$(cd "$top" && find . ! -type d | LC_ALL=C sort | tr '\n' ' ')
[ "$left" = "./include/other.h ./lib/libother.so.1 ./share/other/README " ] || fail "after uninstall, left: $left (expected only the other package's three files)"
[ -e "$top/share/fashop-notify" ] && fail "share/fashop-notify is still there"
[ -e "$top/share/doc/fashop-notify" ] && fail "share/doc/fashop-notify is still there"
ok "make uninstall removed what make install put, and nothing else"
echo "test-install: all checks passed"
