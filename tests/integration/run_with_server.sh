#!/bin/sh
# Runs one integration test against a fresh `hudong serve --dev`.
# usage: run_with_server.sh <hudong binary> <test binary> [test args...]
# HUDONG_SERVE_ARGS: extra `hudong serve` arguments (split on spaces).
# Picks free ports, passes them to the test as HUDONG_HTTP / HUDONG_RTC, waits
# for /healthz, runs the test, then stops the server with SIGTERM. Fails if the
# test fails, if the server does not exit 0, or if a sanitizer reported.
set -u
HUDONG=$1
TEST=$2
shift 2
LOG=$(mktemp "${TMPDIR:-/tmp}/hudong-itest.XXXXXX")
SRV=

# A port free on TCP and UDP with the next $1 ports free too (media worker i
# listens on rtc_port + i, UDP and ICE-TCP), picked outside the kernel's
# ephemeral range so no other process's bind(0) or outgoing connection is
# handed it before the server binds (tests/integration/hdtest.py free_port).
HERE=$(cd "$(dirname "$0")" && pwd)
free_port() {
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import hdtest; print(hdtest.free_port(span=int(sys.argv[2])))' \
    "$HERE" "${1:-0}" 2>/dev/null
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
  HUDONG_LOG=${HUDONG_LOG:-info} "$HUDONG" serve --dev --room-empty-timeout 0 --listen "127.0.0.1:$HTTP" --rtc-port "$RTC" ${HUDONG_SERVE_ARGS:-} >"$LOG" 2>&1 &
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
