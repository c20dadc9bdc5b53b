#!/usr/bin/env bash
# Install libnet from a build tree into a temporary prefix, then build and
# run a small program against it twice: with pkg-config and with CMake's
# find_package. Usage: install_test.sh BUILD_DIR SOURCE_DIR [CFLAGS]
# (CFLAGS: the sanitizer flags the installed library was built with)
set -euo pipefail
build_dir=$1
src_dir=$2
extra_flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" --component libnet >/dev/null
test -f "$work/prefix/include/net/net.h"

# pkg-config (static: liburing comes through Requires.private).
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
cc -std=c11 -D_POSIX_C_SOURCE=200809L $extra_flags -o "$work/app-pkgconfig" "$src_dir/app.c" \
  $(pkg-config --cflags --static --libs ringgate-net)
"$work/app-pkgconfig"

# CMake package.
cmake -S "$src_dir" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_C_FLAGS="$extra_flags" -DCMAKE_EXE_LINKER_FLAGS="$extra_flags" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/app"
echo "install test: pkg-config and find_package builds both ran"
