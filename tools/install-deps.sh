#!/usr/bin/env bash
# Idempotent install of everything Hudong builds and tests with (Debian 12).
# Uses sudo when not root; runs `apt-get update` at most once per invocation,
# and only when something is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PKGS=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev llvm clang-format
  # libraries (DESIGN §4)
  libuv1-dev libwebsockets-dev libwebsockets-evlib-uv libssl-dev libsrtp2-dev
  libjansson-dev libcmocka-dev libopus-dev libvpx-dev libsqlite3-dev libusrsctp-dev
  # quality store on PostgreSQL (libpq) and a real server for its tests (docs/quality.md)
  libpq-dev postgresql
  # cluster control plane (docs/overlay.md): hiredis with its libuv adapter, and a
  # real Redis for the cluster tests
  libhiredis-dev redis-server
  # interop peers and test tooling
  chromium gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-nice python3-gi gir1.2-gstreamer-1.0
  gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 curl openssl
  # media with UDP blocked (tests/e2e/udp_blocked_chromium.test.mjs): network
  # namespaces and a firewall in them, and a TURN server (docs/turn.md)
  iproute2 iptables coturn
  # recording, live push and RTMP ingest (src/egress/, docs/egress.md): FFmpeg's
  # libraries (libx264 through libavcodec), ffprobe/ffmpeg for the tests, and an
  # RTMP server (nginx + its RTMP module) as the ingest front and test receiver
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev ffmpeg
  nginx libnginx-mod-rtmp
)

updated=0
apt_update() { # at most once per invocation
  if [ "$updated" = 0 ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
}

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt_update
  # the tests start their own coturn/nginx/redis on free ports: keep the
  # packages' system services from starting (port 80 may be taken, and a failed
  # start would fail the install); policy-rc.d exit 101 = "action forbidden"
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && own_policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  [ "$own_policy" = 1 ] && $SUDO rm -f "$policy"
  [ "$rc" = 0 ] || exit "$rc"
fi

# Node.js is needed for the browser tests (playwright-core drives Debian's chromium).
# (the package lists may be empty on a fresh machine even when everything above
# was already installed, hence apt_update here too)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$here/tests/e2e/node_modules/playwright-core" ] && [ -f "$here/tests/e2e/package.json" ]; then
  (cd "$here/tests/e2e" && npm install --no-audit --no-fund --silent)
fi
echo "install-deps: ok"
