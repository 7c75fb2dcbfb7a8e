#!/usr/bin/env bash
# Installs arbiter into a scratch DESTDIR and builds the example plugin out of
# tree against it with nothing but pkg-config, as a third party would; then
# the daemon must load the result. Guards the installed header set, the .pc
# file and its plugindir variable. Prints TAP.
set -euo pipefail
build=${1:?build dir}
source_root=${2:?source dir}
tmp=$(mktemp -d)
trap '[ -n "${ARB_KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
echo "1..4"

meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log" >&2; echo "not ok 1 - meson install"; exit 1; }
pc=$(find "$tmp/root" -name arbiter-plugin-1.pc | head -n1)
[ -n "$pc" ] || { echo "not ok 1 - arbiter-plugin-1.pc installed"; exit 1; }
echo "ok 1 - installed, with $(basename "$pc")"

# point the installed .pc at the scratch root (a sysroot would also move
# GLib's own .pc files, which are not in it)
mkdir -p "$tmp/pc"
prefix=$(sed -n 's/^prefix=//p' "$pc")
sed "s|^prefix=.*|prefix=$tmp/root$prefix|" "$pc" > "$tmp/pc/arbiter-plugin-1.pc"
export PKG_CONFIG_PATH="$tmp/pc"
plugindir=$(pkg-config --variable=plugindir arbiter-plugin-1)
case "$plugindir" in
  */arbiter-1/plugins) echo "ok 2 - plugindir is $plugindir" ;;
  *) echo "not ok 2 - plugindir variable: '$plugindir'"; exit 1 ;;
esac

# the public headers must compile with only what the .pc file says
if meson setup "$tmp/b" "$source_root/plugins/examples/hello-ingest/standalone" >"$tmp/setup.log" 2>&1 \
   && ninja -C "$tmp/b" >"$tmp/ninja.log" 2>&1; then
  echo "ok 3 - example plugin built out of tree"
else
  cat "$tmp/setup.log" "$tmp/ninja.log" 2>/dev/null >&2
  echo "not ok 3 - example plugin built out of tree"; exit 1
fi

printf '[runtime]\n' > "$tmp/empty.conf"
out=$(ARBITER_PLUGIN_PATH="$tmp/b" ARB_PLUGIN_SYSTEM_PATH="" "$build/runtime/arbiterd" --config "$tmp/empty.conf" --list-plugins)
if echo "$out" | grep -q '^ingest-hello ' && echo "$out" | grep -qF "$tmp/b/libarb-ingest-hello.so"; then
  echo "ok 4 - arbiterd loads the out-of-tree plugin"
else
  echo "$out" >&2
  echo "not ok 4 - arbiterd loads the out-of-tree plugin"; exit 1
fi
