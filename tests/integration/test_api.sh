#!/usr/bin/env bash
# Integration test of the node's HTTP API (docs/operations.md): WHIP/WHEP
# (RFC 9725) happy path and every documented error, each checked for its status
# AND a body that says what went wrong; bearer-token auth (docs/tokens.md);
# tenant isolation between two apps; CORS; limits; /metrics; /healthz; the CLI's
# usage errors; the --dev start notice; the default ports 7880/7881 (when
# free); clean exit on SIGTERM. Runs its own `hudong serve` on free
# 127.0.0.1 ports. No media flows: sessions are created and torn down well
# inside the 30 s ICE connect timeout.
#
# usage: test_api.sh /path/to/hudong
set -u

HUDONG=${1:?usage: test_api.sh /path/to/hudong}
DATA="$(cd "$(dirname "$0")" && pwd)/data"
OFFER="$DATA/chrome_offer.sdp"
TMP=$(mktemp -d)
SRV_PID=""
FAILS=0
PASSES=0

cleanup() {
  if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then kill -KILL "$SRV_PID" 2>/dev/null; fi
  if [ "$FAILS" != 0 ]; then # the server's side of the story (sanitizer reports included)
    for log in "$TMP"/*.log; do
      [ -f "$log" ] || continue
      echo "# ---- $(basename "$log") (last 60 lines)"
      tail -n 60 "$log" | sed 's/^/# /'
    done
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

pass() { PASSES=$((PASSES + 1)); echo "ok   - $1"; }
fail() {
  FAILS=$((FAILS + 1))
  echo "FAIL - $1"
  shift
  for line in "$@"; do echo "       $line"; done
}

command -v curl >/dev/null || { echo "curl is required"; exit 1; }

# ---------------------------------------------------------------- helpers

# A port free on TCP and UDP (with the next $1 free too), outside the kernel's
# ephemeral range: tests/integration/hdtest.py free_port says why.
free_port() {
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import hdtest; print(hdtest.free_port(span=int(sys.argv[2])))' \
    "$(cd "$(dirname "$0")" && pwd)" "${1:-0}" 2>/dev/null
}

# start_server LOGFILE ARGS... : starts `hudong serve ARGS --listen/--rtc-port`
# on fresh ports, waits for /healthz; sets SRV_PID and URL.
start_server() {
  local log=$1
  shift
  local try hp rp
  for try in 1 2 3 4 5; do
    hp=$(free_port) && rp=$(free_port 3) || continue
    [ "$hp" = "$rp" ] && continue
    "$HUDONG" serve "$@" --listen "127.0.0.1:$hp" --rtc-port "$rp" >"$log" 2>&1 &
    SRV_PID=$!
    URL="http://127.0.0.1:$hp"
    for _ in $(seq 1 50); do
      if ! kill -0 "$SRV_PID" 2>/dev/null; then break; fi
      if curl -s -o /dev/null --max-time 1 "$URL/healthz"; then return 0; fi
      sleep 0.1
    done
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=""
    echo "# server start attempt $try failed:"
    sed 's/^/#   /' "$log"
  done
  return 1
}

# stop_server NAME: SIGTERM, expect exit status 0 within 10 s.
stop_server() {
  local name=$1 rc
  kill -TERM "$SRV_PID"
  for _ in $(seq 1 100); do
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SRV_PID" 2>/dev/null; then
    fail "$name: server still running 10 s after SIGTERM"
    kill -KILL "$SRV_PID"
    wait "$SRV_PID" 2>/dev/null
  else
    wait "$SRV_PID"
    rc=$?
    if [ "$rc" = 0 ]; then pass "$name: server exits 0 on SIGTERM"; else fail "$name: exit status $rc after SIGTERM"; fi
  fi
  SRV_PID=""
}

# http METHOD PATH [curl args...]: one request; sets STATUS, BODY, and HDRS (file).
HDRS="$TMP/headers"
http() {
  local method=$1 path=$2
  shift 2
  STATUS=$(curl -sS --max-time 10 -X "$method" -D "$HDRS" -o "$TMP/body" -w '%{http_code}' "$@" "$URL$path" 2>"$TMP/curl_err")
  BODY=$(tr -d '\r' <"$TMP/body" 2>/dev/null)
  [ -n "$STATUS" ] || STATUS=000
  if [ -n "$SRV_PID" ] && ! kill -0 "$SRV_PID" 2>/dev/null; then
    fail "the server died (during $method $path)"
    exit 1
  fi
}

# post_sdp PATH TOKEN FILE [curl args...]: POST an SDP offer with a bearer token.
post_sdp() {
  local path=$1 tok=$2 file=$3
  shift 3
  http POST "$path" -H "Authorization: Bearer $tok" -H 'Content-Type: application/sdp' --data-binary "@$file" "$@"
}

# header NAME: value of response header NAME (case-insensitive), CR stripped.
header() { grep -i "^$1:" "$HDRS" | head -n1 | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'; }

# expect NAME STATUS BODY_REGEX: checks the last response (ERE, case-insensitive).
expect() {
  local name=$1 want=$2 re=$3
  if [ "$STATUS" != "$want" ]; then
    fail "$name" "want HTTP $want, got $STATUS" "body: $(echo "$BODY" | head -c 300)" "$(cat "$TMP/curl_err")"
  elif ! echo "$BODY" | grep -Eqi -- "$re"; then
    fail "$name" "HTTP $STATUS as wanted, but body does not match /$re/" "body: $(echo "$BODY" | head -c 300)"
  else
    pass "$name ($STATUS: $(echo "$BODY" | head -n1 | head -c 90))"
  fi
}

# check NAME COMMAND...: passes if COMMAND succeeds.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

token() { "$HUDONG" token "$@"; }

# ---------------------------------------------------------------- CLI usage errors

out=$("$HUDONG" token 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "usage: hudong token" && echo "$out" | grep -q -- "--key"; then
  pass "hudong token without flags: exit 2 with usage"
else
  fail "hudong token without flags" "exit $rc, output: $out"
fi
out=$("$HUDONG" token --key appA --secret secretA --identity u 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "required"; then pass "hudong token without --room: exit 2"; else
  fail "hudong token without --room" "exit $rc, output: $out"; fi
out=$("$HUDONG" serve --bogus 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "unknown option '--bogus'" && echo "$out" | grep -q "usage: hudong serve"; then
  pass "hudong serve --bogus: exit 2 with usage"
else
  fail "hudong serve --bogus" "exit $rc, output: $out"
fi
echo '{"apps": [{"key": "k"}]}' >"$TMP/bad.json"
out=$("$HUDONG" serve --config "$TMP/bad.json" 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "apps\[0\]"; then pass "hudong serve with a bad config: exit 2 naming the key"; else
  fail "hudong serve with a bad config" "exit $rc, output: $out"; fi
echo '{"apps": [{"key": "k", "secret": "s"}], "max_viewers": 3}' >"$TMP/typo.json"
out=$("$HUDONG" serve --config "$TMP/typo.json" 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "unknown key 'max_viewers'"; then pass "hudong serve with a misspelt config key: exit 2 naming it"; else
  fail "hudong serve with a misspelt config key" "exit $rc, output: $out"; fi
echo '{"apps": [{"key": "k", "secret": "s"}], "webhooks": {"urls": ["https://h/x"]}}' >"$TMP/whs.json"
out=$("$HUDONG" serve --config "$TMP/whs.json" 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "webhooks.urls\[0\]: only http://"; then pass "webhook https URL: exit 2"; else
  fail "webhook https URL" "exit $rc, output: $out"; fi
echo '{"apps": [{"key": "k", "secret": "s", "webhook_urls": ["http://h/x"]}], "webhooks": {"retries": 3}}' >"$TMP/whk.json"
out=$("$HUDONG" serve --config "$TMP/whk.json" 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "unknown key 'webhooks.retries'"; then pass "webhook config typo: exit 2"; else
  fail "webhook config typo" "exit $rc, output: $out"; fi
echo '{"apps": [{"key": "k", "secret": "s"}], "room_empty_timeout_s": -1}' >"$TMP/rto.json"
out=$("$HUDONG" serve --config "$TMP/rto.json" 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "'room_empty_timeout_s' must be an integer in \[0, 86400\]"; then
  pass "room_empty_timeout_s -1: exit 2 naming the key and range"; else
  fail "room_empty_timeout_s -1" "exit $rc, output: $out"; fi
echo '{"apps": [{"key": "k", "secret": "s"}], "max_publish_bitrate_kbps": "300"}' >"$TMP/mpb.json"
out=$("$HUDONG" serve --config "$TMP/mpb.json" 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "'max_publish_bitrate_kbps' must be an integer"; then
  pass "max_publish_bitrate_kbps as a string: exit 2"; else
  fail "max_publish_bitrate_kbps as a string" "exit $rc, output: $out"; fi
out=$("$HUDONG" serve --dev --room-empty-timeout 100000 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "room-empty-timeout is an integer in 0..86400"; then
  pass "--room-empty-timeout 100000: exit 2"; else
  fail "--room-empty-timeout 100000" "exit $rc, output: $out"; fi
out=$("$HUDONG" serve --dev --max-publish-bitrate -5 2>&1)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "max-publish-bitrate in 0..1000000"; then
  pass "--max-publish-bitrate -5: exit 2"; else
  fail "--max-publish-bitrate -5" "exit $rc, output: $out"; fi
out=$("$HUDONG" serve --listen 127.0.0.1:1 --rtc-port 0 2>&1 </dev/null)
rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "no apps configured"; then pass "hudong serve without apps: exit 2"; else
  fail "hudong serve without apps" "exit $rc, output: $out"; fi

# ---------------------------------------------------------------- the server

MAXBODY=8192
cat >"$TMP/config.json" <<EOF
{
  "apps": [{"key": "appA", "secret": "secretA"}, {"key": "appB", "secret": "secretB"}],
  "cors_origins": ["https://app.example.com"],
  "max_request_body": $MAXBODY,
  "max_viewers_per_room": 1,
  "token_leeway_seconds": 0,
  "room_empty_timeout_s": 0,
  "webhooks": {"urls": [], "max_queue": 100, "max_attempts": 3, "max_age_seconds": 60, "timeout_ms": 2000}
}
EOF
if ! start_server "$TMP/server.log" --config "$TMP/config.json"; then
  echo "FAIL - could not start hudong serve"
  exit 1
fi
echo "# server at $URL"

# Tokens. The short-lived one is minted first so the later check needs no long sleep.
T_EXPIRING=$(token --key appA --secret secretA --room r --identity u --publish --ttl 1)
T_EXPIRING_AT=$(date +%s)
TA=$(token --key appA --secret secretA --room r --identity alice --publish --subscribe)
TA_PUB=$(token --key appA --secret secretA --room r --identity alice --publish)
TA_SUB=$(token --key appA --secret secretA --room r --identity bob --subscribe)
TA_R2=$(token --key appA --secret secretA --room r2 --identity alice --publish --subscribe)
TA_R3=$(token --key appA --secret secretA --room r3 --identity alice --publish)
TA_OTHER=$(token --key appA --secret secretA --room other --identity alice --publish --subscribe)
TB=$(token --key appB --secret secretB --room r --identity carol --publish --subscribe)
T_WRONG=$(token --key appA --secret notthesecret --room r --identity mallory --publish)
T_UNKNOWN=$(token --key appZ --secret secretZ --room r --identity mallory --publish)

# A WHEP offer as Chrome makes it for recvonly transceivers (no msid/ssrc).
sed -e 's/^a=sendonly/a=recvonly/' -e '/^a=ssrc/d' -e '/^a=msid:/d' "$OFFER" >"$TMP/recvonly.sdp"
OFFER_UFRAG=$(grep -m1 '^a=ice-ufrag:' "$OFFER" | cut -d: -f2 | tr -d '\r')
OFFER_PWD=$(grep -m1 '^a=ice-pwd:' "$OFFER" | cut -d: -f2 | tr -d '\r')

# -- basics
http GET /healthz
expect "GET /healthz" 200 '^ok'
http GET /no/such/path
expect "unknown path" 404 'not found: /no/such/path'
http GET /api/dev-token?room=r
expect "dev token endpoint without --dev" 404 'only .*--dev'
http POST /whip -H 'Content-Type: application/sdp' --data-binary "@$OFFER"
expect "POST /whip without a room" 400 'whip/\{room\}'

# -- WHEP on a room where nothing is published
post_sdp /whep/r2 "$TA_R2" "$TMP/recvonly.sdp"
expect "WHEP on an empty room" 404 "nothing is published in room 'r2'"

# -- authentication: 401 with WWW-Authenticate, and a reason
http POST /whip/r -H 'Content-Type: application/sdp' --data-binary "@$OFFER"
expect "no Authorization" 401 'missing Authorization'
check "401 carries WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$HDRS"
post_sdp /whip/r "not-a-jwt" "$OFFER"
expect "garbage token" 401 'invalid token'
http POST /whip/r -H 'Authorization: Basic YTpi' -H 'Content-Type: application/sdp' --data-binary "@$OFFER"
expect "non-Bearer Authorization" 401 "malformed Authorization"
post_sdp /whip/r "$T_WRONG" "$OFFER"
expect "token signed with the wrong secret" 401 'bad signature'
post_sdp /whip/r "$T_UNKNOWN" "$OFFER"
expect "token of an unknown app key" 401 'unknown API key'

# -- authorization: 403 with the missing grant or wrong room
post_sdp /whip/r "$TA_OTHER" "$OFFER"
expect "token for another room" 403 'token is for room other'
post_sdp /whip/r "$TA_SUB" "$OFFER"
expect "WHIP with a token without --publish" 403 'lacks canPublish'

# -- request shape: 415, 413, 411, bad room name
# (rooms r2/r3, so that an offer wrongly accepted here cannot upset the publish tests in room r)
http POST /whip/r2 -H "Authorization: Bearer $TA_R2" -H 'Content-Type: text/plain' --data-binary "@$OFFER"
expect "WHIP with Content-Type text/plain" 415 'must be application/sdp'
http POST /whip/r3 -H "Authorization: Bearer $TA_R3" -H 'Content-Type: application/sdpx' --data-binary "@$OFFER"
expect "WHIP with Content-Type application/sdpx" 415 'must be application/sdp'
http POST /whip/r2 -H "Authorization: Bearer $TA_R2" --data-binary "@$OFFER" -H 'Content-Type:'
expect "WHIP without Content-Type" 415 'must be application/sdp'
head -c $((MAXBODY + 1)) /dev/zero | tr '\0' 'a' >"$TMP/big.sdp"
post_sdp /whip/r2 "$TA_R2" "$TMP/big.sdp"
expect "body one byte over max_request_body (Expect: 100-continue)" 413 "exceeds $MAXBODY bytes"
post_sdp /whip/r2 "$TA_R2" "$TMP/big.sdp" -H 'Expect:'
expect "body one byte over max_request_body (body sent)" 413 "exceeds $MAXBODY bytes"
post_sdp /whip/r2 "$TA_R2" "$OFFER" -H 'Transfer-Encoding: chunked'
expect "chunked request body" 411 'send a Content-Length'
# the connection is still usable after a 413 whose body was sent: two requests on one connection
STATUS=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} ' -X POST -H 'Expect:' -H 'Content-Type: application/sdp' \
  --data-binary "@$TMP/big.sdp" "$URL/whip/r2" --next -o /dev/null -w '%{http_code}' "$URL/healthz")
check "after a 413 the next request on the connection is parsed cleanly ($STATUS)" test "$STATUS" = "413 200"
post_sdp '/whip/bad$room' "$TA" "$OFFER"
expect "bad room name (character)" 400 'bad room name'
post_sdp "/whip/$(printf 'x%.0s' $(seq 1 65))" "$TA" "$OFFER"
expect "bad room name (65 characters)" 400 'bad room name'
post_sdp /whip/ "$TA" "$OFFER"
expect "empty room name" 400 'bad room name'

# -- unusable offers: 400 naming the problem
printf 'this is not sdp\r\n' >"$TMP/garbage.sdp"
post_sdp /whip/r2 "$TA_R2" "$TMP/garbage.sdp"
expect "malformed SDP" 400 'line 1'
printf 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio\r\n' >"$TMP/badm.sdp"
post_sdp /whip/r2 "$TA_R2" "$TMP/badm.sdp"
expect "SDP with a broken m= line" 400 'line 5: .*m= line'
http POST /whip/r2 -H "Authorization: Bearer $TA_R2" -H 'Content-Type: application/sdp'
expect "empty offer" 400 'empty SDP'
grep -v '^a=group:BUNDLE' "$OFFER" >"$TMP/nobundle.sdp"
post_sdp /whip/r2 "$TA_R2" "$TMP/nobundle.sdp"
expect "offer without BUNDLE" 400 'BUNDLE is required'
grep -v '^a=fingerprint' "$OFFER" >"$TMP/nofp.sdp"
post_sdp /whip/r2 "$TA_R2" "$TMP/nofp.sdp"
expect "offer without fingerprint" 400 'no sha-256 a=fingerprint'
grep -v '^a=ice-pwd' "$OFFER" >"$TMP/nopwd.sdp"
post_sdp /whip/r2 "$TA_R2" "$TMP/nopwd.sdp"
expect "offer without ICE credentials" 400 'ice-pwd'
sed -e 's/^a=sendonly/a=recvonly/' "$OFFER" >"$TMP/whip_recvonly.sdp"
post_sdp /whip/r2 "$TA_R2" "$TMP/whip_recvonly.sdp"
expect "WHIP offer that sends nothing" 400 'no media section can be served'

# -- publish
post_sdp /whip/r "$TA" "$OFFER" -H 'Origin: https://app.example.com'
expect "WHIP publish" 201 '^v=0'
PUB_LOC=$(header Location)
check "WHIP answer Content-Type is application/sdp" test "$(header Content-Type)" = "application/sdp"
check "WHIP Location is /whip/r/<id> ($PUB_LOC)" eval 'echo "$PUB_LOC" | grep -Eq "^/whip/r/[A-Za-z0-9_-]+$"'
check "WHIP answer has a=ice-lite" grep -q '^a=ice-lite' "$TMP/body"
check "WHIP answer has a=fingerprint:sha-256" grep -Eq '^a=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}' "$TMP/body"
check "WHIP answer is recvonly" grep -q '^a=recvonly' "$TMP/body"
check "WHIP answer has a host candidate" grep -q '^a=candidate:.* typ host' "$TMP/body"
check "WHIP answer uses CRLF line ends" grep -q $'\r$' "$TMP/body"
check "201 from an allowed origin carries Access-Control-Allow-Origin" \
  test "$(header Access-Control-Allow-Origin)" = "https://app.example.com"
check "201 exposes Location to scripts" eval 'header Access-Control-Expose-Headers | grep -q Location'

post_sdp /whip/r "$(token --key appA --secret secretA --room r --identity carl --publish)" "$OFFER"
expect "second publisher (another identity) in the same room" 409 "room 'r' already has a publisher"

# -- tenant isolation: appB's room "r" is not appA's room "r"
post_sdp /whep/r "$TB" "$TMP/recvonly.sdp"
expect "appB plays room r (appA publishes there)" 404 "nothing is published in room 'r'"
http DELETE "$PUB_LOC" -H "Authorization: Bearer $TB"
expect "appB deletes appA's session" 404 'no such session'
post_sdp /whip/r "$TB" "$OFFER"
expect "appB publishes its own room r" 201 '^v=0'
B_LOC=$(header Location)
http DELETE "$B_LOC" -H "Authorization: Bearer $TB"
expect "appB ends its session" 200 'session ended'

# -- play
post_sdp /whep/r "$TA_PUB" "$TMP/recvonly.sdp"
expect "WHEP with a token without --subscribe" 403 'lacks canSubscribe'
post_sdp /whep/r "$TA_SUB" "$OFFER"
expect "WHEP offer that receives nothing" 400 'WHEP needs recvonly or sendrecv'
post_sdp /whep/r "$TA_SUB" "$TMP/recvonly.sdp"
expect "WHEP play" 201 '^v=0'
PLAY_LOC=$(header Location)
check "WHEP Location is /whep/r/<id> ($PLAY_LOC)" eval 'echo "$PLAY_LOC" | grep -Eq "^/whep/r/[A-Za-z0-9_-]+$"'
check "WHEP answer is sendonly" grep -q '^a=sendonly' "$TMP/body"
check "WHEP answer has a=ice-lite" grep -q '^a=ice-lite' "$TMP/body"
post_sdp /whep/r "$TA_SUB" "$TMP/recvonly.sdp"
expect "WHEP beyond max_viewers_per_room" 503 'viewer limit \(1\)'

# -- trickle ICE (RFC 8840 fragment) on the live sessions
printf 'a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host\r\na=end-of-candidates\r\n' \
  "$OFFER_UFRAG" "$OFFER_PWD" >"$TMP/trickle.frag"
http PATCH "$PUB_LOC" -H "Authorization: Bearer $TA" -H 'Content-Type: application/trickle-ice-sdpfrag' \
  --data-binary "@$TMP/trickle.frag"
check "PATCH trickle on the WHIP session: 204 ($STATUS)" test "$STATUS" = 204
http PATCH "$PLAY_LOC" -H "Authorization: Bearer $TA_SUB" -H 'Content-Type: application/trickle-ice-sdpfrag' \
  --data-binary "@$TMP/trickle.frag"
check "PATCH trickle on the WHEP session: 204 ($STATUS)" test "$STATUS" = 204
http PATCH "$PUB_LOC" -H "Authorization: Bearer $TA" -H 'Content-Type: application/sdp' --data-binary "@$TMP/trickle.frag"
expect "PATCH with the wrong Content-Type" 415 'trickle-ice-sdpfrag'
sed "s/^a=ice-ufrag:.*/a=ice-ufrag:newUfrag1/" "$TMP/trickle.frag" >"$TMP/restart.frag"
http PATCH "$PUB_LOC" -H "Authorization: Bearer $TA" -H 'Content-Type: application/trickle-ice-sdpfrag' \
  --data-binary "@$TMP/restart.frag"
expect "PATCH asking for an ICE restart" 422 'ICE restart is not supported'
http PATCH "/whip/r/NoSuchSession123" -H "Authorization: Bearer $TA" \
  -H 'Content-Type: application/trickle-ice-sdpfrag' --data-binary "@$TMP/trickle.frag"
expect "PATCH on an unknown session" 404 'no such session'
http PATCH "/whep/r/${PUB_LOC##*/}" -H "Authorization: Bearer $TA" \
  -H 'Content-Type: application/trickle-ice-sdpfrag' --data-binary "@$TMP/trickle.frag"
expect "PATCH on a WHIP session id under /whep" 404 'no such session'
http PATCH "$PUB_LOC" -H 'Content-Type: application/trickle-ice-sdpfrag' --data-binary "@$TMP/trickle.frag"
expect "PATCH without a token" 401 'missing Authorization'
http PATCH "$PUB_LOC" -H "Authorization: Bearer $TB" \
  -H 'Content-Type: application/trickle-ice-sdpfrag' --data-binary "@$TMP/trickle.frag"
expect "PATCH on appA's session with an appB token (tenant isolation)" 404 'no such session'
http GET "$PUB_LOC"
expect "GET on a session resource" 405 'not allowed'
check "405 names the allowed methods" eval 'header Allow | grep -q DELETE'

# -- an expired token (minted with --ttl 1 at the start; leeway is 0)
now=$(date +%s)
[ $((now - T_EXPIRING_AT)) -ge 2 ] || sleep $((2 - (now - T_EXPIRING_AT)))
post_sdp /whip/r2 "$T_EXPIRING" "$OFFER"
expect "expired token" 401 'expired'

# -- a token that is not valid yet (nbf 2 minutes ahead; `hudong token` mints
# nbf = now, so this one is signed here: RFC 7519 JWT, HS256, RFC 7515 §3.1)
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
jwt_h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
jwt_p=$(printf '{"iss":"appA","sub":"u","nbf":%d,"exp":%d,"grants":{"room":"r2","roomJoin":true,"canPublish":true}}' \
  $((now + 120)) $((now + 600)) | b64url)
jwt_s=$(printf '%s.%s' "$jwt_h" "$jwt_p" | openssl dgst -sha256 -hmac secretA -binary | b64url)
post_sdp /whip/r2 "$jwt_h.$jwt_p.$jwt_s" "$OFFER"
expect "token not valid yet (nbf in the future)" 401 'not yet valid'

# -- CORS
http OPTIONS /whip/r -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: authorization, content-type'
check "preflight from the configured origin: 204 ($STATUS)" test "$STATUS" = 204
check "preflight echoes Access-Control-Allow-Origin" test "$(header Access-Control-Allow-Origin)" = "https://app.example.com"
check "preflight allows POST" eval 'header Access-Control-Allow-Methods | grep -q POST'
check "preflight allows Authorization" eval 'header Access-Control-Allow-Headers | grep -qi authorization'
check "preflight says Accept-Post: application/sdp" test "$(header Accept-Post)" = "application/sdp"
http OPTIONS /whip/r -H 'Origin: https://evil.example.net' -H 'Access-Control-Request-Method: POST'
check "preflight from another origin: 204 ($STATUS)" test "$STATUS" = 204
check "preflight from another origin has no Access-Control-Allow-Origin" test -z "$(header Access-Control-Allow-Origin)"
post_sdp /whep/r2 "$TA_R2" "$TMP/recvonly.sdp" -H 'Origin: https://evil.example.net'
check "error response to another origin has no Access-Control-Allow-Origin" test -z "$(header Access-Control-Allow-Origin)"
post_sdp '/whip/bad$room' "$TA" "$OFFER" -H 'Origin: https://app.example.com'
check "a 400 to an allowed origin carries Access-Control-Allow-Origin (readable by the page)" \
  test "$(header Access-Control-Allow-Origin)" = "https://app.example.com"

# -- metrics while a publisher and a viewer are live
http GET /metrics
check "GET /metrics: 200 ($STATUS)" test "$STATUS" = 200
check "/metrics is Prometheus text" eval 'header Content-Type | grep -q "^text/plain"'
for m in 'hudong_sessions{kind="publish"} 1' 'hudong_sessions{kind="play"} 1' 'hudong_rooms 1' \
  'hudong_sessions_created_total 3' 'hudong_packets_in_total ' 'hudong_bytes_out_total ' \
  'hudong_packets_dropped_total{reason="unknown_source"} ' 'hudong_packets_dropped_total{reason="srtp_auth"} ' \
  '# TYPE hudong_packets_dropped_total counter' 'hudong_http_requests_total ' 'hudong_http_errors_total ' \
  'hudong_rtm_delivery_seconds_count '; do
  check "/metrics has '$m'" grep -qF -- "$m" "$TMP/body"
done
# the text is larger than the first buffer the node renders it into (16 KiB):
# nothing may be cut off
check "/metrics is whole ($(wc -c <"$TMP/body") bytes, ends with a newline)" eval 'test "$(tail -c1 "$TMP/body" | od -An -c | tr -d " ")" = "\\n"'
af=$(grep '^hudong_auth_failures_total ' "$TMP/body" | awk '{print $2}')
check "/metrics counts auth failures (${af:-none})" test "${af:-0}" -ge 10

# -- teardown: DELETE 200, again 404
http DELETE "$PUB_LOC"
expect "DELETE without a token" 401 'missing Authorization'
http DELETE "$PUB_LOC" -H "Authorization: Bearer $TA_OTHER"
expect "DELETE with a token for another room" 403 'token is for room other'
http DELETE "$PLAY_LOC" -H "Authorization: Bearer $TA_SUB"
expect "DELETE the WHEP session" 200 'session ended'
http DELETE "$PUB_LOC" -H "Authorization: Bearer $TA"
expect "DELETE the WHIP session" 200 'session ended'
http DELETE "$PUB_LOC" -H "Authorization: Bearer $TA"
expect "DELETE it again" 404 'no such session'
post_sdp /whep/r "$TA_SUB" "$TMP/recvonly.sdp"
expect "WHEP after the publisher left" 404 "nothing is published in room 'r'"

# -- a publisher gone without DELETE (tab closed) does not block its room
# (issue 12 item 12): the same identity replaces it at once; another identity
# once it has sent nothing for 5 s (HD_NODE_WHIP_STALE; no media flows here)
post_sdp /whip/rr "$(token --key appA --secret secretA --room rr --identity dora --publish)" "$OFFER"
OLD_LOC=$(header Location)
post_sdp /whip/rr "$(token --key appA --secret secretA --room rr --identity dora --publish)" "$OFFER"
expect "WHIP again with the same identity replaces the old publisher" 201 '^v=0'
NEW_LOC=$(header Location)
http DELETE "$OLD_LOC" -H "Authorization: Bearer $(token --key appA --secret secretA --room rr --identity dora --publish)"
expect "the replaced session is gone" 404 'no such session'
post_sdp /whip/rr "$(token --key appA --secret secretA --room rr --identity eve --publish)" "$OFFER"
expect "another identity while the publisher is fresh" 409 "already has a publisher"
sleep 5.2
post_sdp /whip/rr "$(token --key appA --secret secretA --room rr --identity eve --publish)" "$OFFER"
expect "another identity after 5 s of silence from the publisher replaces it" 201 '^v=0'
http DELETE "$(header Location)" -H "Authorization: Bearer $(token --key appA --secret secretA --room rr --identity eve --publish)"
expect "DELETE the replacing session" 200 'session ended'
http GET /metrics
check "/metrics shows no sessions after DELETE" grep -qF 'hudong_sessions{kind="publish"} 0' "$TMP/body"

stop_server "configured node"
check "server log says stopped" grep -q 'hudong: stopped' "$TMP/server.log"

# ---------------------------------------------------------------- session caps

# Issue 12 item 7: one token (identity) or one app cannot take the node's
# sessions; every capacity refusal is 503 with Retry-After (WHIP/WHEP) or
# 503 node_full with retry_after (/rtc), and another app still gets in.
cat >"$TMP/caps.json" <<EOF
{
  "apps": [{"key": "appA", "secret": "secretA"}, {"key": "appB", "secret": "secretB"}],
  "max_sessions": 8, "max_sessions_per_app": 4, "max_sessions_per_identity": 2,
  "room_empty_timeout_s": 0
}
EOF
if start_server "$TMP/caps.log" --config "$TMP/caps.json" --media-workers 3; then
  for rm in c1 c2 c3; do
    post_sdp "/whip/$rm" "$(token --key appA --secret secretA --room $rm --identity viewer --publish)" "$OFFER"
    eval "ST_$rm=$STATUS"
  done
  check "one identity: 2 sessions (rooms on different workers), the third refused: $ST_c1 $ST_c2 $ST_c3" \
    test "$ST_c1 $ST_c2 $ST_c3" = "201 201 503"
  expect "per-identity cap: 503 naming the identity and the key" 503 \
    "identity 'viewer' is at its session limit \(2, max_sessions_per_identity\)"
  check "per-identity 503 carries Retry-After: 5 ($(header Retry-After))" test "$(header Retry-After)" = 5
  post_sdp /whip/c3 "$(token --key appA --secret secretA --room c3 --identity w --publish)" "$OFFER"
  post_sdp /whip/c4 "$(token --key appA --secret secretA --room c4 --identity w --publish)" "$OFFER"
  expect "another identity of the same app" 201 '^v=0'
  post_sdp /whip/c5 "$(token --key appA --secret secretA --room c5 --identity x --publish)" "$OFFER"
  expect "per-app cap (4 of the node's 8)" 503 "app 'appA' is at its session limit \(4, max_sessions_per_app\)"
  check "per-app 503 carries Retry-After: 5" test "$(header Retry-After)" = 5
  post_sdp /whip/c5 "$(token --key appB --secret secretB --room c5 --identity y --publish)" "$OFFER"
  expect "another app is not starved" 201 '^v=0'
  # /rtc: a join of the full app gets 503 node_full with retry_after and close 1013
  WSDIR="$(cd "$(dirname "$0")" && pwd)"
  out=$(python3 - "${URL##*:}" "$(token --key appA --secret secretA --room c6 --identity z --publish)" "$WSDIR" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[3])
from wsclient import WS
ws = WS(int(sys.argv[1]), "/rtc")
ws.send_text(json.dumps({"type": "join", "id": "1", "token": sys.argv[2]}))
m = ws.recv()
c = ws.recv()
print(m[1] if m[0] == "text" else m)
print("close %s" % (c[1] if c[0] == "close" else c))
PY
)
  if echo "$out" | grep -q '"code":503' && echo "$out" | grep -q '"reason":"node_full"' &&
    echo "$out" | grep -q '"retry_after":5' && echo "$out" | grep -q 'close 1013'; then
    pass "/rtc join of the full app: 503 node_full with retry_after 5, closed 1013"
  else
    fail "/rtc join of the full app: 503 node_full with retry_after 5, closed 1013" "$out"
  fi
  stop_server "capped node"
else
  fail "could not start hudong serve with session caps"
fi

# ---------------------------------------------------------------- a first-time user's CLI

# Issue 12 item 11: what a new user following the README runs.
out=$("$HUDONG" --version 2>/dev/null)
rc=$?
if [ $rc = 0 ] && echo "$out" | grep -Eq '^hudong [0-9]+\.[0-9]+\.[0-9]+$'; then pass "hudong --version: '$out', exit 0"; else
  fail "hudong --version" "exit $rc, output: $out"; fi
for cmd in "" serve token pub sub netem "bench load"; do
  # shellcheck disable=SC2086
  out=$("$HUDONG" $cmd --help 2>/dev/null)
  rc=$?
  if [ $rc = 0 ] && echo "$out" | grep -q '^usage: hudong'; then pass "hudong $cmd --help: usage on stdout, exit 0"; else
    fail "hudong $cmd --help: usage on stdout, exit 0" "exit $rc, stdout: $(echo "$out" | head -2)"; fi
done
out=$("$HUDONG" serve --bogus 2>&1 >/dev/null)
if echo "$out" | grep -q "unknown option '--bogus'"; then pass "a usage error goes to stderr"; else
  fail "a usage error goes to stderr" "$out"; fi
out=$("$HUDONG" serve --config "$TMP/no-such-config.json" 2>&1)
rc=$?
if [ $rc != 0 ] && echo "$out" | grep -q "cannot open config $TMP/no-such-config.json: No such file or directory" &&
  ! echo "$out" | grep -q 'line -1'; then pass "a missing config file: 'cannot open config FILE: No such file...'"; else
  fail "a missing config file" "exit $rc, output: $out"; fi
# the HTTP port is taken: an error and exit 1, not "serving" without a listener
BUSY=$(free_port)
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("up", flush=True); time.sleep(20)' "$BUSY" >"$TMP/busy.out" &
BUSY_PID=$!
for _ in $(seq 1 50); do grep -q up "$TMP/busy.out" 2>/dev/null && break; sleep 0.1; done
out=$(timeout 10 "$HUDONG" serve --dev --listen "127.0.0.1:$BUSY" --rtc-port 0 --rtm-db :memory: 2>&1)
rc=$?
kill "$BUSY_PID" 2>/dev/null
wait "$BUSY_PID" 2>/dev/null
if [ $rc = 1 ] && echo "$out" | grep -q "cannot listen on 127.0.0.1:$BUSY: Address already in use" &&
  ! echo "$out" | grep -q 'serving'; then pass "serve on a taken HTTP port: 'cannot listen on HOST:PORT: <reason>', exit 1"; else
  fail "serve on a taken HTTP port" "exit $rc, output: $out"; fi
if start_server "$TMP/cli.log" --dev --media-workers 1 --rtm-db :memory:; then
  HP=${URL##*:}
  TPUB=$(token --key devkey --secret devsecret --room cli --identity u1 --publish --subscribe)
  for u in "http://127.0.0.1:$HP" "http://127.0.0.1:$HP/" "http://127.0.0.1:$HP/rtc" "ws://127.0.0.1:$HP" \
    "ws://127.0.0.1:$HP/rtc"; do
    out=$(timeout 30 "$HUDONG" pub --url "$u" --token "$TPUB" --tone 440 --duration 0.5 2>&1)
    rc=$?
    if [ $rc = 0 ] && echo "$out" | grep -q joined; then pass "pub --url $u: joins and publishes, exit 0"; else
      fail "pub --url $u" "exit $rc, output: $(echo "$out" | tail -3)"; fi
  done
  out=$(timeout 30 "$HUDONG" sub --url "http://127.0.0.1:$HP" --token "$TPUB" --out "$TMP/subout" --duration 0.5 2>&1)
  rc=$?
  if [ $rc = 0 ] && echo "$out" | grep -q joined; then pass "sub --url http://host:port: exit 0"; else
    fail "sub --url http://host:port" "exit $rc, output: $(echo "$out" | tail -3)"; fi
  out=$(timeout 60 "$HUDONG" bench load --target hudong --url "http://127.0.0.1:$HP" --key devkey --secret devsecret \
    --room clib --publishers 1 --subscribers 1 --duration 1 --warmup 0 --audio-only --quiet 2>&1)
  rc=$?
  if [ $rc = 0 ] && echo "$out" | grep -q 'subscriber legs 1/1 up'; then pass "bench load --url http://host:port: exit 0"; else
    fail "bench load --url http://host:port" "exit $rc, output: $(echo "$out" | tail -3)"; fi
  out=$("$HUDONG" pub --url "gopher://127.0.0.1:$HP" --token "$TPUB" --tone 440 2>&1)
  rc=$?
  if [ $rc = 2 ] && echo "$out" | grep -q "unknown scheme 'gopher'"; then pass "pub --url with an unknown scheme: exit 2 naming it"; else
    fail "pub --url with an unknown scheme" "exit $rc, output: $out"; fi
  TSUB=$(token --key devkey --secret devsecret --room cli --identity u2 --subscribe)
  out=$(timeout 30 "$HUDONG" pub --url "http://127.0.0.1:$HP" --token "$TSUB" --tone 440 --duration 1 2>&1)
  rc=$?
  if [ $rc = 1 ] && echo "$out" | grep -q "this token cannot publish (it lacks canPublish)" &&
    echo "$out" | grep -q -- '--publish'; then pass "pub with a token without publish rights: says so, exit 1"; else
    fail "pub with a token without publish rights" "exit $rc, output: $out"; fi
  stop_server "CLI node"
else
  fail "could not start hudong serve --dev for the CLI checks"
fi

# ---------------------------------------------------------------- --dev mode

if start_server "$TMP/dev.log" --dev; then
  check "--dev says so on start (API key devkey / secret devsecret)" \
    grep -q "DEVELOPMENT MODE: API key 'devkey', secret 'devsecret'" "$TMP/dev.log"
  http OPTIONS /whip/r -H 'Origin: http://anything.example:1234' -H 'Access-Control-Request-Method: POST'
  check "--dev: preflight from any origin: 204 ($STATUS)" test "$STATUS" = 204
  check "--dev: any origin is allowed ($(header Access-Control-Allow-Origin))" \
    test -n "$(header Access-Control-Allow-Origin)"
  http GET '/api/dev-token?room=r&identity=dev'
  expect "--dev: GET /api/dev-token" 200 '^\{"token":"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"\}$'
  DEV_TOK=$(echo "$BODY" | sed -E 's/^\{"token":"([^"]+)"\}$/\1/')
  http GET '/api/dev-token?identity=dev'
  expect "--dev: /api/dev-token without a room" 400 'room='
  post_sdp /whip/r "$DEV_TOK" "$OFFER"
  expect "--dev: the dev token publishes" 201 '^v=0'
  post_sdp /whip/r "$(token --key devkey --secret devsecret --room r --identity x --subscribe)" "$OFFER"
  expect "--dev: devkey/devsecret tokens are checked too" 403 'lacks canPublish'
  stop_server "--dev node (with a live session)"
else
  fail "could not start hudong serve --dev"
fi

# ---------------------------------------------------------------- defaults

# The documented defaults (README, `hudong serve --help`): HTTP on
# 127.0.0.1:7880, UDP media on 7881. Only when nothing else listens on 7880
# (another node on this machine would answer our curl instead).
out=$("$HUDONG" serve --help 2>&1)
if echo "$out" | grep -q 'defaults: --listen 127.0.0.1:7880, UDP media on --rtc-port 7881'; then
  pass "serve --help states the defaults"; else fail "serve --help states the defaults" "$out"; fi
if (exec 3<>/dev/tcp/127.0.0.1/7880) 2>/dev/null; then
  echo "ok   - # SKIP default ports: something already listens on 127.0.0.1:7880"
else
  (cd "$TMP" && exec "$HUDONG" serve --dev --rtm-db :memory:) >"$TMP/defaults.log" 2>&1 &
  SRV_PID=$!
  URL="http://127.0.0.1:7880"
  up=0
  for _ in $(seq 1 50); do
    kill -0 "$SRV_PID" 2>/dev/null || break
    if curl -s -o /dev/null --max-time 1 "$URL/healthz"; then up=1; break; fi
    sleep 0.1
  done
  if [ "$up" = 1 ] && kill -0 "$SRV_PID" 2>/dev/null; then
    http GET /healthz
    expect "no --listen: GET 127.0.0.1:7880/healthz" 200 'ok'
    check "no --rtc-port: media on UDP 127.0.0.1:7881 (worker 0)" grep -q 'media UDP 127.0.0.1 ports 7881' "$TMP/defaults.log"
    stop_server "node on default ports"
  elif grep -q 'cannot bind' "$TMP/defaults.log"; then
    echo "ok   - # SKIP default ports busy: $(grep -m1 'cannot bind' "$TMP/defaults.log")"
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=""
  else
    fail "hudong serve on default ports did not come up" "$(tail -5 "$TMP/defaults.log")"
  fi
fi

echo "# $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
