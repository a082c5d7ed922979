#!/usr/bin/env bash
# Installs the release build the way C libraries install (cargo-c's names and SONAME),
# removes exactly that again, or packs the same tree into the release tarball.
# RELEASE_DIR is cargo's target/release (`make release`); `make test` passes target/debug
# instead (INSTALL_BUILD=build in the Makefile), to which everything here applies the same.
# Usage: scripts/install.sh strip     RELEASE_DIR   (after the release build: `make release`)
#        scripts/install.sh install   RELEASE_DIR PREFIX [DESTDIR]
#        scripts/install.sh uninstall PREFIX [DESTDIR]
#        scripts/install.sh dist      RELEASE_DIR PREFIX DIST_DIR
# The installed tree under PREFIX:
#   lib/libfashop_notify.so.VERSION, and the links lib/libfashop_notify.so.ABI (the
#   SONAME: .so.MAJOR, before 1.0 .so.0.MINOR) and lib/libfashop_notify.so
#   include/fashop_notify.h, lib/pkgconfig/fashop_notify.pc, bin/fashop-notify-sandbox
#   share/fashop-notify/php/ (the PHP package with its FFI header)
#   share/fashop-notify/examples/ (the PHP scripts the integration guide names, and the example mappings)
#   share/doc/fashop-notify/ (README.md, the guides docs/*.md, the spec docs/spec/*.md and the
#   sandbox's manual sandbox/README.md, in the repository's layout so their links hold)
# The library and the sandbox are installed without their debug info; the library's
# stays in RELEASE_DIR/stripped/libfashop_notify.so.VERSION.debug (named by its .gnu_debuglink).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib=libfashop_notify
version=$(sed -n 's/^version = "\([0-9][^"]*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
[ -n "$version" ] || { echo "install: no version in Cargo.toml" >&2; exit 1; }
IFS=. read -r major minor patch <<<"${version%%[-+]*}"
if [ "$major" != 0 ]; then abi=$major; elif [ "$minor" != 0 ]; then abi=0.$minor; else abi=0.0.$patch; fi
soname=$lib.so.$abi

die() { echo "install: $*" >&2; exit 1; }

# The PHP package's files, relative to bindings/php: what a shop needs (with the admin's
# front controller and editor page), not its tests.
php_files() {
  (cd "$root/bindings/php" && printf '%s\n' autoload.php preload.php composer.json fashop_notify.ffi.h \
    admin/index.php admin/editor.html \
    && find src -type f -name '*.php' | LC_ALL=C sort)
}

# The example files, relative to examples/: what the guide tells a shop to run or read.
example_files() {
  (cd "$root/examples" && printf '%s\n' mappings.json && find php -maxdepth 1 -type f -name '*.php' | LC_ALL=C sort)
}

# The documents, relative to the repository: the README, the guides (with the editor's
# picture the integration guide shows), the spec and the sandbox's manual.
doc_files() {
  (cd "$root" && printf '%s\n' README.md sandbox/README.md \
    && find docs -maxdepth 2 -type f \( -name '*.md' -o -name '*.png' \) | LC_ALL=C sort)
}

# RELEASE_DIR/stripped/: the library without debug info, linked to its separate debug
# file, after checking its SONAME and that it exports nothing but fashop_notify_*.
# Run by the building user (`make release`), so that `make install` as root only copies.
strip_library() {
  local built=$1/$lib.so out=$1/stripped
  [ -f "$built" ] || die "$built is missing: build it with \`make release\`"
  local have
  have=$(readelf -d "$built" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
  [ "$have" = "$soname" ] || die "$built has SONAME '${have}', expected $soname (build.rs sets it)"
  local foreign
  foreign=$(nm -D --defined-only --format=posix "$built" | awk '{print $1}' | grep -v '^fashop_notify_' || true)
  [ -z "$foreign" ] || die "$built exports symbols outside fashop_notify_*: $(echo $foreign)"
  mkdir -p "$out"
  if ! [ "$out/$lib.so.$version" -nt "$built" ] || ! [ "$out/$lib.so.$version.debug" -nt "$built" ]; then
    rm -f "$out/$lib.so.$version" "$out/$lib.so.$version.debug"
    objcopy --only-keep-debug "$built" "$out/$lib.so.$version.debug"
    chmod 0644 "$out/$lib.so.$version.debug"
    # The debuglink names the file gdb looks for beside the library or under /usr/lib/debug.
    (cd "$out" && objcopy --strip-debug --add-gnu-debuglink="$lib.so.$version.debug" "$built" "$lib.so.$version")
  fi
  # The sandbox, a test tool, goes without its debug info.
  if ! [ "$out/fashop-notify-sandbox" -nt "$1/fashop-notify-sandbox" ]; then
    [ -x "$1/fashop-notify-sandbox" ] || die "$1/fashop-notify-sandbox is missing: build it with \`make release\`"
    objcopy --strip-debug "$1/fashop-notify-sandbox" "$out/fashop-notify-sandbox"
  fi
}

pc_file() {
  local prefix=$1
  cat <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: fashop_notify
Description: WeChat mini-program notifications for FaShop, loaded from PHP through FFI or from C
Version: $version
Libs: -L\${libdir} -lfashop_notify
Cflags: -I\${includedir}
EOF
}

do_install() {
  local rel=$1 prefix=$2 destdir=${3:-}
  local top=$destdir$prefix
  case "$prefix" in /*) ;; *) die "PREFIX must be an absolute path, not '$prefix'" ;; esac
  local f
  for f in "$lib.so.$version:$lib.so" fashop-notify-sandbox:fashop-notify-sandbox; do
    [ "$rel/stripped/${f%%:*}" -nt "$rel/${f#*:}" ] \
      || die "$rel/stripped/${f%%:*} is missing or older than the build: run \`make release\`"
  done
  install -d -m 0755 "$top/lib/pkgconfig" "$top/include" "$top/bin" "$top/share/fashop-notify/php"
  install -m 0755 "$rel/stripped/$lib.so.$version" "$top/lib/$lib.so.$version"
  ln -sfn "$lib.so.$version" "$top/lib/$soname"
  ln -sfn "$soname" "$top/lib/$lib.so"
  install -m 0644 "$root/include/fashop_notify.h" "$top/include/fashop_notify.h"
  pc_file "$prefix" >"$top/lib/pkgconfig/fashop_notify.pc"
  chmod 0644 "$top/lib/pkgconfig/fashop_notify.pc"
  install -m 0755 "$rel/stripped/fashop-notify-sandbox" "$top/bin/fashop-notify-sandbox"
  while read -r f; do
    install -D -m 0644 "$root/bindings/php/$f" "$top/share/fashop-notify/php/$f"
  done < <(php_files)
  while read -r f; do
    install -D -m 0644 "$root/examples/$f" "$top/share/fashop-notify/examples/${f#php/}"
  done < <(example_files)
  while read -r f; do
    install -D -m 0644 "$root/$f" "$top/share/doc/fashop-notify/$f"
  done < <(doc_files)
  # A fresh library in the loader's cache (the DESTDIR of a package build has none to update).
  if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null 2>&1; then
    ldconfig
  fi
  echo "installed fashop-notify $version into $top (library $lib.so.$version, SONAME $soname)"
}

do_uninstall() {
  local prefix=$1 destdir=${2:-}
  local top=$destdir$prefix f
  case "$prefix" in /*) ;; *) die "PREFIX must be an absolute path, not '$prefix'" ;; esac
  rm -f "$top/lib/$lib.so.$version" "$top/lib/$soname" "$top/lib/$lib.so" \
    "$top/include/fashop_notify.h" "$top/lib/pkgconfig/fashop_notify.pc" "$top/bin/fashop-notify-sandbox"
  while read -r f; do
    rm -f "$top/share/fashop-notify/php/$f"
  done < <(php_files)
  while read -r f; do
    rm -f "$top/share/fashop-notify/examples/${f#php/}"
  done < <(example_files)
  while read -r f; do
    rm -f "$top/share/doc/fashop-notify/$f"
  done < <(doc_files)
  # Only the package's own directories, once empty: share/fashop-notify, share/doc/fashop-notify and below.
  for d in "$top/share/fashop-notify" "$top/share/doc/fashop-notify"; do
    if [ -d "$d" ]; then
      find "$d" -depth -type d -empty -delete
    fi
  done
  echo "removed fashop-notify $version from $top"
}

do_dist() {
  local rel=$1 prefix=$2 dist=$3
  local triple name stage epoch
  triple=$(rustc -vV | sed -n 's/^host: //p')
  name=fashop-notify-$version-$triple
  mkdir -p "$dist"
  dist=$(cd "$dist" && pwd)
  stage=$dist/stage
  rm -rf "$stage" "$dist/$name" "$dist/$name.tar.gz" "$dist/$name.sha256" "$dist/$lib.so.$version.debug"
  do_install "$rel" "$prefix" "$stage" >/dev/null
  mv "$stage$prefix" "$dist/$name"
  rm -rf "$stage"
  # Reproducible: one owner, names in order, the last commit's time (or SOURCE_DATE_EPOCH).
  epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$dist" -cf - "$name" | gzip -n -9 >"$dist/$name.tar.gz"
  rm -rf "${dist:?}/$name"
  cp "$rel/stripped/$lib.so.$version.debug" "$dist/"
  (cd "$dist" && sha256sum "$name.tar.gz" "$lib.so.$version.debug" >"$name.sha256")
  echo "dist: $dist/$name.tar.gz ($(stat -c %s "$dist/$name.tar.gz") bytes), unpacks to $name/ (the tree \`make install\` puts under $prefix)"
  echo "dist: $dist/$lib.so.$version.debug ($(stat -c %s "$dist/$lib.so.$version.debug") bytes), the library's debug info"
  echo "dist: $dist/$name.sha256 (check with: cd $dist && sha256sum -c $name.sha256)"
  echo "dist: library $(stat -c %s "$rel/stripped/$lib.so.$version") bytes stripped, $(stat -c %s "$rel/$lib.so") bytes as built"
}

case "${1:-}" in
  strip) strip_library "${2:?RELEASE_DIR}" ;;
  install) do_install "${2:?RELEASE_DIR}" "${3:?PREFIX}" "${4:-}" ;;
  uninstall) do_uninstall "${2:?PREFIX}" "${3:-}" ;;
  dist) do_dist "${2:?RELEASE_DIR}" "${3:?PREFIX}" "${4:?DIST_DIR}" ;;
  *) sed -n '2,7p' "$0" >&2; exit 2 ;;
esac
