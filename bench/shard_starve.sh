#!/usr/bin/env bash
# bench/shard_starve.sh — one room on 2 workers with shards, the shard
# worker's thread starved on demand (docs/performance.md "Where the sequence
# gaps went"): after 3 s of the join, the media worker that does not hold the
# room (the shard) is reniced to <renice> (19, or "none"); run it at priority
# beside a competing load to see the ring to the shard overflow. Prints the
# shard counters (whole run) and the generator's loss, gaps and kernel drops.
#   flock /tmp/bench.lock nice -n -15 bench/shard_starve.sh build/hudong 400 19
set -u
H=$1; N=$2; RN=$3
W=$(mktemp -d /tmp/hd-starve.XXXXXX)
port() { python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(port)
echo '{"max_sessions": 100000, "max_viewers_per_room": 100000, "ice_tcp": {"enabled": false}}' >"$W/h.json"
HUDONG_LOG=warn "$H" serve --dev --config "$W/h.json" --room-empty-timeout 0 --rtm-db :memory: \
  --listen "127.0.0.1:$http" --rtc-port 0 --media-workers 2 --media-shard-min 1 >"$W/srv.log" 2>&1 &
SRV=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
tok=$("$H" token --key devkey --secret devsecret --admin --identity bench)
curl -sf -XPOST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -d '{"name":"big","max_participants":100000,"empty_timeout_s":600}' "http://127.0.0.1:$http/admin/rooms" >/dev/null
"$H" bench load --target hudong --url "ws://127.0.0.1:$http/rtc" --key devkey --secret devsecret --room big \
  --rooms 1 --publishers 1 --subscribers "$N" --count-only --server-pid "$SRV" --duration 8 --warmup 2 \
  --join-timeout 20 --quiet --threads 2 --join-rate 25 --json "$W/r.json" >"$W/gen.out" 2>&1 &
GEN=$!
sleep 3
# the room's worker hands packets; the other one is the shard (consumer)
m=$(curl -sf "http://127.0.0.1:$http/metrics")
room=$(echo "$m" | grep '^hudong_shard_handed_total' | sort -t' ' -k2 -n | tail -1 | sed 's/.*worker="\([0-9]\)".*/\1/')
shard=$((1 - room))
for t in /proc/$SRV/task/*; do
  [ "$(cat $t/comm)" = "hd-media-$shard" ] && tid=${t##*/}
done
echo "room worker $room, shard worker $shard (tid $tid)"
[ "$RN" = none ] || renice -n "$RN" -p "$tid" >/dev/null
wait $GEN
curl -sf "http://127.0.0.1:$http/metrics" >"$W/m.txt"
kill $SRV; wait $SRV 2>/dev/null
grep -E '^hudong_shard_(dropped|full_waits|handed|sent)_total' "$W/m.txt" | tr '\n' ' '; echo
python3 -c "
import json; d=json.load(open('$W/r.json'))
print('loss %.3f%% seq_loss %.3f%% gaps %d legs %d/%d gen-sock %s node-sock %s threads %s' % (d['loss']*100, d['seq_loss']*100, d['seq_expected']-d['seq_received'], d['sub_legs_up'], d['sub_legs_total'], d['gen_sock_drops'], d['server_sock_drops'], [(t['name'], round(t['cpu_pct'])) for t in d['server_threads'] if t['name'].startswith('hd-media')]))"
rm -rf "$W"
