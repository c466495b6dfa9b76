#!/usr/bin/env bash
# bench/overlay/relay_instr.sh — instructions per packet of one relay hop vs
# a direct node-to-node forward (issue 16 goal: a relay hop costs < 20% more
# CPU per packet than a direct forward; docs/overlay.md "Cost of a relay hop"),
# counted by callgrind so that the figure does not move with the machine's load:
#
#   bench/overlay/relay_instr.sh [--sizes "100 1000"] [--packets N] [BUILD_DIR]
#
# For each RTP packet size, runs BUILD/relay_bench once under
# `valgrind --tool=callgrind` and reads the inclusive instruction counts (Ir)
# of its three parts (bench/relay_bench.c says what each does) with
# callgrind_annotate, divided by the packet count; then runs it once natively
# for ns per packet. Prints one table and writes bench/results/relay.json.
# valgrind hides VAES/AVX-512, so AES-GCM runs OpenSSL's AES-NI path here.
set -u
cd "$(dirname "$0")/../.."
. bench/lib/callgrind.sh
SIZES="100 1000"
PACKETS=4000
BUILD=build
instr_args 'bench/overlay/relay_instr.sh [--sizes "100 1000"] [--packets N] [BUILD_DIR]' \
  --sizes=SIZES --packets=PACKETS -- "$@"
instr_setup relay_instr.sh relay_bench
mkdir -p bench/results
printf "%-9s %-16s %12s %10s %10s\n" rtp_bytes part "Ir / packet" "vs direct" "ns/packet"
rows=""
for s in $SIZES; do
  instr_callgrind "$TMP/cg.$s" "$TMP/err.$s" -- "$BUILD/relay_bench" --packets "$PACKETS" --size "$s" >/dev/null
  "$BUILD/relay_bench" --packets 20000 --warmup 5000 --size "$s" --json "$TMP/ns.$s.json" >/dev/null || exit 1
  ir() { instr_inclusive "$TMP/cg.$s" relay_bench.c "$1"; }
  d=$(ir direct_forward); h=$(ir relay_hop); e=$(ir relay_ends)
  [ -n "$d" ] && [ -n "$h" ] && [ -n "$e" ] || { echo "relay_instr.sh: no counts in callgrind's output"; exit 1; }
  for part in direct_forward relay_hop relay_ends; do
    v=$(ir $part)
    ns=$(python3 -c "import json,sys; print(json.load(open('$TMP/ns.$s.json'))['ns_per_packet']['$part'])")
    awk -v s="$s" -v p="$part" -v v="$v" -v d="$d" -v n="$PACKETS" -v ns="$ns" \
      'BEGIN { printf "%-9d %-16s %12.0f %9.2fx %10.0f\n", s, p, v / n, v / d, ns }'
  done
  rows="$rows${rows:+,}{\"rtp_bytes\": $s, \"ir_per_packet\": {\"direct_forward\": $((d / PACKETS)), \"relay_hop\": $((h / PACKETS)), \"relay_ends\": $((e / PACKETS))}, \"ns_per_packet\": $(python3 -c "import json; print(json.dumps(json.load(open('$TMP/ns.$s.json'))['ns_per_packet']))")}"
done
printf '{"date": "%s", "packets": %d, "tool": "valgrind --tool=callgrind (inclusive Ir per function / packets)", "rows": [%s]}\n' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$PACKETS" "$rows" >bench/results/relay.json
echo "wrote bench/results/relay.json"
