#!/usr/bin/env bash
# RTM fan-out benchmark (issue 5 item 5, made fair in issue 17 item 1):
# Hudong /rtm against mosquitto (MQTT 3.1.1, QoS 1) and core NATS over TCP and
# over its WebSocket listener, all servers running, the same load, the steps
# alternating between them (rotating order per repeat), each step repeated
# (--repeat, default 3: median and range), server CPU per delivered message
# first, the ladder extended until every server fails.
# Writes bench/results/rtm.json (numbers) and bench/results/rtm.txt (the
# printed table with the machine's description).
# Usage: bench/run_rtm.sh [rtm_bench options, e.g. --conns 10000 --fanout 10,100,1000]
set -euo pipefail
cd "$(dirname "$0")/.."
{ [ -x /usr/sbin/mosquitto ] && [ -x /usr/sbin/nats-server ]; } || {
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mosquitto nats-server
}
cmake -S . -B build >/dev/null && cmake --build build -j2 --target hudong rtm_bench >/dev/null
ulimit -n "$(ulimit -Hn)"
mkdir -p bench/results
{
  echo "# rtm_bench $(date -u +%Y-%m-%dT%H:%MZ), hudong $(git rev-parse --short HEAD)"
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "# mosquitto: $(/usr/sbin/mosquitto -h 2>&1 | head -1); nats-server $(/usr/sbin/nats-server --version 2>&1)"
  echo "# load before: $(cat /proc/loadavg)"
  ./build/rtm_bench --hudong ./build/hudong --mosquitto /usr/sbin/mosquitto --nats /usr/sbin/nats-server \
    --json bench/results/rtm.json "$@"
  echo "# load after: $(cat /proc/loadavg)"
} 2>&1 | tee bench/results/rtm.txt
