#!/usr/bin/env bash
# Install what ringgate needs to build, run and test, from Debian 12's
# packages. Idempotent: when everything is present it changes nothing and
# does not touch the network. Run as root (or with sudo).
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  # libnet, the cluster
  liburing-dev libssl-dev openssl libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev libsodium-dev libinih-dev
  # dbproxy's PostgreSQL backend (libpq), and the server its tests and
  # benchmark start privately (initdb into a temporary directory)
  libpq-dev postgresql
  # the gateway's WebSocket port: libwslay (frames; libssl-dev's libcrypto
  # does the handshake's SHA-1 and base64)
  libwslay-dev
  # tests, tools and the Python client; curl for `deploy/ringgate status`,
  # systemd for `systemd-analyze verify` of the service units; faketime for
  # a gamesrv restarted with its clock behind (the fault campaign,
  # tests/test_earn_ids.py)
  python3 python3-protobuf protobuf-compiler procps iproute2 util-linux curl systemd faketime
  # packet captures of the cluster's links (tests/test_link_seal.py)
  tshark
  # the SQLite to PostgreSQL copy (tools/db-copy) and the tests reading
  # PostgreSQL (deploy's private server is the postgresql package above)
  python3-psycopg2
  # the world page's browser test (tests/test_browser.py)
  chromium chromium-driver python3-selenium
  # fuzzing: clang-14 and its libFuzzer runtime
  clang-14 libclang-rt-14-dev
  # benchmarks (libuv baseline, plots)
  libuv1-dev gnuplot-nox
  # Windows: libnet's IOCP engine, cross-built and run under Wine
  gcc-mingw-w64-x86-64 wine64
)

# The world page's JavaScript (protobufjs) comes from the npm registry, at
# the versions web/package-lock.json pins; Debian's npm only if there is no
# npm at all (one installed otherwise, e.g. with Node.js, is used as is).
command -v npm >/dev/null || packages+=(npm)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: every package is installed"
else
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# web/node_modules from the lock file (npm ci), unless it was made from this
# very lock file already (a stamp beside it): then no network is touched.
web=$(cd "$(dirname "$0")/../web" && pwd)
stamp=$web/node_modules/.ringgate-lock
if ! cmp -s "$web/package-lock.json" "$stamp"; then
  echo "install-deps: npm ci in $web"
  (cd "$web" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
  cp "$web/package-lock.json" "$stamp"
fi
echo "install-deps: done"
