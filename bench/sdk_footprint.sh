#!/usr/bin/env bash
# Footprint of the native SDK (issue 6 §5; docs/sdk.md "Footprint"):
#  1. code size: examples/hello_room linked against the static hudong_core
#     library (the linker pulls in only the objects the client uses: client/,
#     media/, proto/, rtc/, io/ws_client, base/) and stripped; system shared
#     libraries (libuv, OpenSSL, libsrtp2, libopus, libvpx, ...) are not counted.
#  2. memory: peak RSS (VmHWM) of `hudong pub --pattern 640x360@30 --tone 440`
#     and of `hudong sub` receiving it, one audio + one 640x360 video session
#     each, through a local `hudong serve --dev`.
# Writes bench/results/sdk_footprint.json. Targets: < 500 KB, < 10 MB.
#   usage: bench/sdk_footprint.sh [seconds]   (BUILD=dir to reuse a build, default build-rel)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
BUILD=${BUILD:-build-rel}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target hudong hello_room >/dev/null
HUDONG=$BUILD/hudong
TMP=$(mktemp -d)
SRV=
cleanup() {
  [ -n "$SRV" ] && kill "$SRV" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

cp "$BUILD/hello_room" "$TMP/hello_room"
strip "$TMP/hello_room"
STRIPPED=$(stat -c %s "$TMP/hello_room")
read -r TEXT DATA BSS _ < <(size "$TMP/hello_room" | tail -1)
# the same, compiled for size with unused sections dropped (what an embedded build would do)
gcc -Os -ffunction-sections -fdata-sections -Wl,--gc-sections -D_GNU_SOURCE -Iinclude -Isrc \
  examples/hello_room.c src/client/*.c src/media/*.c src/proto/*.c src/rtc/*.c src/io/ws_client.c \
  src/base/*.c -o "$TMP/hello_room_os" $(pkg-config --cflags --libs libuv libsrtp2 jansson openssl opus vpx usrsctp) \
  -lm -lpthread 2>"$TMP/os.log" && strip "$TMP/hello_room_os" && OS_SIZE=$(stat -c %s "$TMP/hello_room_os") || OS_SIZE=0

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
HP=$(free_port)
RP=$(free_port)
"$HUDONG" serve --dev --listen "127.0.0.1:$HP" --rtc-port "$RP" >"$TMP/serve.log" 2>&1 &
SRV=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done
tok() { "$HUDONG" token --key devkey --secret devsecret --room footprint --identity "$1" --publish --subscribe; }
URL=ws://127.0.0.1:$HP/rtc
"$HUDONG" pub --url "$URL" --token "$(tok pub)" --pattern 640x360@30 --tone 440 --duration $((SECS + 2)) --quiet \
  2>"$TMP/pub.log" &
PUB=$!
sleep 0.5
"$HUDONG" sub --url "$URL" --token "$(tok sub)" --out "$TMP/out" --duration "$SECS" --json --quiet \
  >"$TMP/sub.json" 2>"$TMP/sub.log" &
SUB=$!
PUB_HWM=0 SUB_HWM=0 PUB_ANON=0 SUB_ANON=0 PUB_PSS=0 SUB_PSS=0
field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/$3" 2>/dev/null || true; }
max() { local v=${2:-0}; [ "$v" -gt "${!1}" ] && printf -v "$1" '%s' "$v"; return 0; }
while kill -0 "$SUB" 2>/dev/null; do
  max PUB_HWM "$(field $PUB VmHWM status)"; max SUB_HWM "$(field $SUB VmHWM status)"
  max PUB_ANON "$(field $PUB RssAnon status)"; max SUB_ANON "$(field $SUB RssAnon status)"
  max PUB_PSS "$(field $PUB Pss smaps_rollup)"; max SUB_PSS "$(field $SUB Pss smaps_rollup)"
  sleep 0.5
done
wait "$SUB" || true
wait "$PUB" || true
FRAMES=$(python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));print(sum(t.get("frames_decoded",0) for t in d["tracks"]))' "$TMP/sub.json")

mkdir -p bench/results
cat >bench/results/sdk_footprint.json <<EOF
{"date":"$(date -u +%FT%TZ)","hello_room_stripped_bytes":$STRIPPED,"text":$TEXT,"data":$DATA,"bss":$BSS,
 "hello_room_Os_gc_stripped_bytes":$OS_SIZE,"pub_peak_rss_kb":$PUB_HWM,"sub_peak_rss_kb":$SUB_HWM,
 "pub_rss_anon_kb":$PUB_ANON,"sub_rss_anon_kb":$SUB_ANON,"pub_pss_kb":$PUB_PSS,"sub_pss_kb":$SUB_PSS,
 "session":"audio + 640x360@30 video, ${SECS} s","sub_frames_decoded":$FRAMES}
EOF
printf '%-44s %10s\n' "client code, stripped (hello_room, -O2)" "$((STRIPPED / 1024)) KB"
printf '%-44s %10s\n' "  text / data / bss" "$TEXT / $DATA / $BSS"
printf '%-44s %10s\n' "client code, stripped (-Os, gc-sections)" "$((OS_SIZE / 1024)) KB"
printf '%-44s %10s\n' "hudong pub peak RSS (send 640x360 + audio)" "$((PUB_HWM / 1024)) MB ($PUB_HWM kB)"
printf '%-44s %10s\n' "hudong sub peak RSS (recv 640x360 + audio)" "$((SUB_HWM / 1024)) MB ($SUB_HWM kB)"
printf '%-44s %10s\n' "  of which private (RssAnon) pub / sub" "$((PUB_ANON / 1024)) / $((SUB_ANON / 1024)) MB"
printf '%-44s %10s\n' "  PSS (shared libs split) pub / sub" "$((PUB_PSS / 1024)) / $((SUB_PSS / 1024)) MB"
printf '%-44s %10s\n' "frames decoded by sub" "$FRAMES"
echo "wrote bench/results/sdk_footprint.json"
