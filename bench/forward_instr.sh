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
. bench/lib/callgrind.sh
VIEWERS="1 10 50"
SECONDS_REC=2
BUILD=build
instr_args 'bench/forward_instr.sh [--viewers "1 10 50"] [--seconds S] [BUILD_DIR]' \
  --viewers=VIEWERS --seconds=SECONDS_REC -- "$@"
instr_setup bench/forward_instr.sh forward_bench
printf "%-8s %12s %16s %14s   (%s, engine %s)\n" viewers out_pkts "Ir replay" "Ir / out pkt" "$BUILD" "${HD_SRTP_ENGINE:-default}"
for v in $VIEWERS; do
  instr_callgrind "$TMP/cg.$v" "$TMP/err.$v" --toggle-collect=replay_into_node -- \
    "$BUILD/forward_bench" --viewers "$v" --seconds "$SECONDS_REC" --repeats 1 --json "$TMP/fwd.json" >"$TMP/out.$v"
  ir=$(instr_collected "$TMP/err.$v")
  out=$(awk -v v="$v" '$1 == v {print $3}' "$TMP/out.$v")
  awk -v v="$v" -v ir="$ir" -v out="$out" 'BEGIN { printf "%-8d %12d %16d %14.0f\n", v, out, ir, ir / out }'
done
