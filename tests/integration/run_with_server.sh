#!/bin/sh
# Runs one integration test against a fresh `hudong serve --dev`.
# usage: run_with_server.sh <hudong binary> <test binary> [test args...]
# Picks free ports, passes them to the test as HUDONG_HTTP / HUDONG_RTC, waits
# for /healthz, runs the test, then stops the server with SIGTERM. Fails if the
# test fails, if the server does not exit 0, or if a sanitizer reported.
set -u
HUDONG=$1
TEST=$2
shift 2
LOG=$(mktemp "${TMPDIR:-/tmp}/hudong-itest.XXXXXX")
SRV=

# A port the kernel just gave out and released, free on TCP and UDP, with the
# next $1 ports free too: media worker i listens on rtc_port + i (UDP and
# ICE-TCP). The kernel hands bind(0) odd ports and outgoing connections even
# ones, so port + 1 is exactly where another process's connection sits.
# SO_REUSEADDR as libuv binds (a connection in TIME_WAIT does not block).
free_port() {
  python3 -c 'import socket, sys
n = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
held = [s]
for q in range(p, p + n + 1):
    if q != p:
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("127.0.0.1", q)); held.append(t)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", q)); held.append(u)
print(p)' "${1:-0}" 2>/dev/null
}

cleanup() {
  if [ -n "$SRV" ] && kill -0 "$SRV" 2>/dev/null; then kill -KILL "$SRV" 2>/dev/null; fi
  rm -f "$LOG"
}
trap cleanup EXIT

started=0
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  HTTP=$(free_port) || HTTP=
  RTC=$(free_port 3) || RTC=
  if [ -z "$HTTP" ] || [ -z "$RTC" ] || [ "$HTTP" = "$RTC" ]; then continue; fi
  HUDONG_LOG=${HUDONG_LOG:-info} "$HUDONG" serve --dev --room-empty-timeout 0 --listen "127.0.0.1:$HTTP" --rtc-port "$RTC" >"$LOG" 2>&1 &
  SRV=$!
  i=0
  while [ $i -lt 100 ]; do
    if curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null 2>&1; then started=1; break; fi
    if ! kill -0 "$SRV" 2>/dev/null; then break; fi
    sleep 0.1
    i=$((i + 1))
  done
  [ $started = 1 ] && break
  kill -KILL "$SRV" 2>/dev/null
  wait "$SRV" 2>/dev/null
  SRV=
done
if [ $started != 1 ]; then
  echo "run_with_server: hudong did not come up" >&2
  cat "$LOG" >&2
  exit 1
fi

HUDONG_HTTP=$HTTP HUDONG_RTC=$RTC "$TEST" "$@"
trc=$?

kill -TERM "$SRV"
i=0
while kill -0 "$SRV" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$SRV" 2>/dev/null; then
  echo "run_with_server: hudong did not stop within 15 s of SIGTERM" >&2
  kill -KILL "$SRV"
  src=137
  wait "$SRV" 2>/dev/null
else
  wait "$SRV"
  src=$?
fi
SRV=

fail=0
if [ $trc -ne 0 ]; then echo "run_with_server: test failed ($trc)" >&2; fail=1; fi
if [ $src -ne 0 ]; then echo "run_with_server: hudong exited with status $src" >&2; fail=1; fi
if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' "$LOG"; then
  echo "run_with_server: sanitizer report in the server log" >&2
  fail=1
fi
if [ $fail -ne 0 ]; then
  echo "---- server log ----" >&2
  tail -n 200 "$LOG" >&2
fi
exit $fail
