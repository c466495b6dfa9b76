#!/usr/bin/env bash
# bench/forward_instr.sh — user-space instructions per forwarded packet
# (issue 17 goal: <= 5,000), counted by callgrind, so the figure does not
# depend on the machine's load:
#
#   bench/forward_instr.sh [--viewers "1 10 50"] [--seconds 2] [BUILD_DIR]
#
# For each viewer count, runs build/forward_bench once under
# `valgrind --tool=callgrind --toggle-collect=replay_into_node` (the replay of
# a recorded publisher stream into the node, tx queue drained; set-up and
# handshakes not counted) and prints Ir of the replay / datagrams out.
# valgrind hides VAES/AVX-512, so AES-GCM runs its 128-bit AES-NI path here;
# HD_SRTP_ENGINE=openssl in the environment counts the OpenSSL EVP path.
set -u
cd "$(dirname "$0")/.."
VIEWERS="1 10 50"
SECONDS_REC=2
BUILD=build
while [ $# -gt 0 ]; do
  case "$1" in
  --viewers) VIEWERS=$2; shift ;;
  --seconds) SECONDS_REC=$2; shift ;;
  -*) echo "usage: bench/forward_instr.sh [--viewers \"1 10 50\"] [--seconds S] [BUILD_DIR]" >&2; exit 2 ;;
  *) BUILD=$1 ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "bench/forward_instr.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
[ -x "$BUILD/forward_bench" ] || { echo "bench/forward_instr.sh: $BUILD/forward_bench missing: build it first (cmake --build $BUILD --target forward_bench)" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hd-finstr.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
printf "%-8s %12s %16s %14s   (%s, engine %s)\n" viewers out_pkts "Ir replay" "Ir / out pkt" "$BUILD" "${HD_SRTP_ENGINE:-default}"
for v in $VIEWERS; do
  valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$v" --toggle-collect=replay_into_node \
    "$BUILD/forward_bench" --viewers "$v" --seconds "$SECONDS_REC" --repeats 1 --json "$TMP/fwd.json" >"$TMP/out.$v" 2>"$TMP/err.$v" || {
    echo "forward_bench failed for $v viewers:"; tail -5 "$TMP/err.$v"; exit 1; }
  ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/err.$v")
  out=$(awk -v v="$v" '$1 == v {print $3}' "$TMP/out.$v")
  awk -v v="$v" -v ir="$ir" -v out="$out" 'BEGIN { printf "%-8d %12d %16d %14.0f\n", v, out, ir, ir / out }'
done
