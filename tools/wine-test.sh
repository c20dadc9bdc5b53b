#!/bin/sh
# libnet on Windows, checked under Wine (issue 7).
#
#   tools/wine-test.sh [BUILD_DIR]
#
# Cross-builds libnet, its tests and the echo examples with the mingw-w64
# toolchain (cmake/mingw-w64.cmake, RINGGATE_LIBNET_ONLY=ON), makes a
# throw-away WINEPREFIX, runs every libnet test case on the IOCP engine
# under wine64 through CTest (the toolchain sets wine64 as the crosscompiling
# emulator), then runs the seeds' echo ping-pong: echo_server.exe and
# dummy_client.exe with 100 sessions, every echo checked byte for byte, and
# prints both programs' output, including the IOCP socket-reuse counters.
#
# Every step is bounded by `timeout`; the whole run takes a minute or two.
# Exit status: 0 when everything passed, 1 otherwise (2: tools missing).
# BUILD_DIR defaults to a temporary directory, removed at exit.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "wine-test: $*" >&2; exit 1; }

wine=$(command -v wine64 || true)
[ -n "$wine" ] || [ ! -x /usr/lib/wine/wine64 ] || wine=/usr/lib/wine/wine64
wineserver=$(command -v wineserver || true)
[ -n "$wineserver" ] || [ ! -x /usr/lib/wine/wineserver64 ] || wineserver=/usr/lib/wine/wineserver64
if [ -z "$wine" ] || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
	echo "wine-test: needs wine64 and x86_64-w64-mingw32-gcc (tools/install-deps.sh)" >&2
	exit 2
fi

work=$(mktemp -d /tmp/ringgate-wine.XXXXXX)
build=${1:-$work/build}
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# Wine console programs need no display.
unset DISPLAY WAYLAND_DISPLAY || true
server_pid=
cleanup() {
	exec 3>&- 2>/dev/null || true
	[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
	[ -z "$wineserver" ] || timeout 20 "$wineserver" -k >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "== cross-build (mingw-w64) into $build"
timeout 600 cmake -S "$here" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$here/cmake/mingw-w64.cmake" \
	-DRINGGATE_LIBNET_ONLY=ON -DRINGGATE_WERROR=ON -DLIBNET_ENGINES=iocp >"$work/configure.log" 2>&1 ||
	{ cat "$work/configure.log"; die "configure failed"; }
timeout 900 cmake --build "$build" -j2 >"$work/build.log" 2>&1 ||
	{ tail -50 "$work/build.log"; die "build failed"; }

echo "== wine prefix $WINEPREFIX ($("$wine" --version 2>/dev/null || echo wine))"
# A persistent wineserver, and Wine's own services (services.exe,
# winedevice.exe, ...) started here by wineboot: otherwise the first test
# process starts them, they inherit its output pipe, and CTest waits for
# that pipe to close long after the test has ended.
mkdir -p "$WINEPREFIX"
[ -z "$wineserver" ] || "$wineserver" -p
timeout 180 "$wine" wineboot -i </dev/null >"$work/wineboot.log" 2>&1 ||
	{ tail -20 "$work/wineboot.log"; die "wineboot failed"; }

echo "== libnet tests on the IOCP engine under wine64"
# One at a time: Wine moves every socket operation through wineserver, and
# the heavier cases (100-session ping-pong, 20 MB of backpressure) slow
# each other past their bounds when they share two cores.
status=0
timeout 900 ctest --test-dir "$build" --timeout 120 --output-on-failure -L libnet ||
	status=1

echo "== echo ping-pong under wine64: echo_server.exe + dummy_client.exe, 100 sessions"
ex="$build/libnet/examples"
mkfifo "$work/stdin"
# echo_server runs until its standard input ends: fd 3 holds it open.
timeout 300 "$wine" "$ex/echo_server.exe" 0 2 <"$work/stdin" >"$work/server.out" 2>&1 &
server_pid=$!
exec 3>"$work/stdin"
port=
for _ in $(seq 300); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.out" | tr -d '\r')
	[ -n "$port" ] && break
	kill -0 "$server_pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ]; then
	cat "$work/server.out"
	die "echo_server did not start"
fi
client_status=0
timeout 240 "$wine" "$ex/dummy_client.exe" --port "$port" --sessions 100 --rounds 100 \
	>"$work/client.out" 2>&1 || client_status=$?
exec 3>&-
server_status=0
wait "$server_pid" || server_status=$?
server_pid=
tr -d '\r' <"$work/server.out"
tr -d '\r' <"$work/client.out"
if [ "$client_status" != 0 ] || [ "$server_status" != 0 ] ||
	! grep -q "100 sessions, 10000 round trips.* 0 bad echoes" "$work/client.out"; then
	echo "wine-test: echo ping-pong FAILED (client exit $client_status, server exit $server_status)" >&2
	status=1
fi

[ "$status" = 0 ] && echo "== wine-test: all passed" || echo "== wine-test: FAILED" >&2
exit "$status"
