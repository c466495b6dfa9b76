#!/usr/bin/env bash
# RTM fan-out benchmark, Hudong /rtm against mosquitto (MQTT 3.1.1, QoS 1),
# same load, one after the other, in one run (issue 5 item 5).
# Writes bench/results/rtm.json (numbers) and bench/results/rtm.txt (the
# printed table with the machine's description).
# Usage: bench/run_rtm.sh [rtm_bench options, e.g. --conns 10000 --fanout 10,100,1000]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || {
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mosquitto
}
cmake -S . -B build >/dev/null && cmake --build build -j2 --target hudong rtm_bench >/dev/null
ulimit -n "$(ulimit -Hn)"
mkdir -p bench/results
{
  echo "# rtm_bench $(date -u +%Y-%m-%dT%H:%MZ), hudong $(git rev-parse --short HEAD)"
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "# mosquitto: $(/usr/sbin/mosquitto -h 2>&1 | head -1)"
  ./build/rtm_bench --hudong ./build/hudong --mosquitto /usr/sbin/mosquitto --json bench/results/rtm.json "$@"
} 2>&1 | tee bench/results/rtm.txt
