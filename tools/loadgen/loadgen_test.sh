#!/bin/bash
# Runs loadgen against real peers on 127.0.0.1 and checks its exit status and JSON results:
# raw mode against //tools/echo_server, framed mode against framed_echo_peer.py (pushes,
# corrupted replies, disconnects, server_id encoding, source-IP ranges), --ws against the
# real gateway (websocket -> framing -> session -> upstream -> backend_sim; a wrong path is a
# counted handshake failure), connect failures and flag validation.
set -uo pipefail

LOADGEN="tools/loadgen/loadgen"
ECHO_SERVER="tools/echo_server/echo_server"
PEER="tools/loadgen/framed_echo_peer.py"
BACKEND_SIM="tools/backend_sim/backend_sim"
GATEWAY="core/gateway"
TMP="${TEST_TMPDIR:-$(mktemp -d)}"
FAILS=0
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  FAILS=$((FAILS + 1))
}

# start NAME CMD... : starts a server writing to $TMP/NAME.out, waits for its "listening on"
# line and sets PORT.
start() {
  local name="$1"
  shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PIDS+=($!)
  for _ in $(seq 100); do
    PORT=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP/$name.out")
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  echo "$name did not start: $(cat "$TMP/$name.err")"
  exit 1
}

# field FILE EXPR : evaluates a Python expression over the JSON object `r` in FILE.
field() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# expect FILE EXPR WHAT : fails with WHAT unless the Python expression is true.
expect() {
  if [ "$(field "$1" "$2" 2>&1)" != "True" ]; then
    fail "$3 ($2) in: $(cat "$1")"
  fi
}

# run NAME WANT_RC ARGS... : runs loadgen --json, saves stdout to $TMP/NAME.json.
run() {
  local name="$1" want="$2"
  shift 2
  "$LOADGEN" --json "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    fail "$name: exit $rc, want $want; stdout: $(cat "$TMP/$name.json") stderr: $(cat "$TMP/$name.err")"
  fi
}

echo "== raw pingpong and rate against echo_server"
start echo "$ECHO_SERVER" --address 127.0.0.1:0
ECHO_PORT=$PORT
run raw_pp 0 --target "127.0.0.1:$ECHO_PORT" --raw --connections 8 --pipeline 4 \
  --duration 1s --warmup 200ms --size 100
expect "$TMP/raw_pp.json" 'r["msg_per_s"] > 0 and r["received"] > 0' "raw pingpong moves messages"
expect "$TMP/raw_pp.json" 'r["connections_ok"] == 8 and r["errors"]["total"] == 0' "raw clean"
expect "$TMP/raw_pp.json" '0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]' \
  "latency percentiles are ordered"
expect "$TMP/raw_pp.json" 'r["latency_ms"]["samples"] == r["received"]' "one RTT per reply"

run raw_rate 0 --target "127.0.0.1:$ECHO_PORT" --raw --mode rate --rate 5000 --connections 5 \
  --duration 1s --warmup 200ms
expect "$TMP/raw_rate.json" '4500 <= r["sent"] <= 5500' "open loop sends ~--rate messages per second"
expect "$TMP/raw_rate.json" 'r["received"] >= 4000' "open loop replies counted"

# Text output names the figures.
"$LOADGEN" --target "127.0.0.1:$ECHO_PORT" --raw --connections 2 --duration 300ms --warmup 0 \
  >"$TMP/text.out" 2>&1 || fail "text run failed: $(cat "$TMP/text.out")"
for want in "connections: 2 ok, 0 failed" "msg/s" "MB/s" "p99.9" "errors:      0"; do
  grep -qF "$want" "$TMP/text.out" || fail "text output lacks '$want': $(cat "$TMP/text.out")"
done

echo "== framed mode against framed_echo_peer.py (server_id, pushes)"
# server_type 10, world 3 -> server_id = 3<<16 | 10<<8 = 199168.
start peer python3 "$PEER" --push-every 10 --expect-server-id 199168
run framed 0 --target "127.0.0.1:$PORT" --connections 4 --duration 1s --warmup 200ms \
  --server-type 10 --world-id 3 --msg-id 77 --size 32
expect "$TMP/framed.json" 'r["received"] > 0 and r["errors"]["total"] == 0' "framed echo clean"
expect "$TMP/framed.json" 'r["pushes"] > 0' "pushes counted"

echo "== wrong server_id is noticed (peer closes -> disconnect errors)"
run framed_badsid 1 --target "127.0.0.1:$PORT" --connections 2 --duration 500ms --warmup 0 \
  --server-type 200
expect "$TMP/framed_badsid.json" 'r["errors"]["disconnect"] == 2' "disconnects counted"

echo "== corrupted reply is an error"
start corrupt python3 "$PEER" --corrupt-after 50
run corrupt 1 --target "127.0.0.1:$PORT" --connections 2 --duration 1s --warmup 0
expect "$TMP/corrupt.json" 'r["errors"]["mismatch"] == 1' "one mismatch"
grep -q "does not match" "$TMP/corrupt.err" || fail "first error not printed: $(cat "$TMP/corrupt.err")"

echo "== gateway error frames are errors, and the sequence carries on"
start errpeer python3 "$PEER" --error-every 10
run errframes 1 --target "127.0.0.1:$PORT" --connections 2 --pipeline 3 --duration 500ms \
  --warmup 0
expect "$TMP/errframes.json" 'r["errors"]["error_frames"] > 0 and r["received"] > 0' "error frames"
expect "$TMP/errframes.json" 'r["errors"]["mismatch"] == 0' "no mismatch after an error frame"
grep -q "circuit_open" "$TMP/errframes.err" || fail "error frame name not printed"

echo "== replies that never come (later ones do) are errors"
start droppeer python3 "$PEER" --drop-every 25
run dropped 1 --target "127.0.0.1:$PORT" --connections 2 --mode rate --rate 1000 \
  --duration 500ms --warmup 0
expect "$TMP/dropped.json" 'r["errors"]["mismatch"] >= 10 and r["received"] > 0' "lost replies"
grep -q "never answered" "$TMP/dropped.err" || fail "lost replies not reported"

echo "== peer closing mid-run is an error"
start closer python3 "$PEER" --close-after 20
run closer 1 --target "127.0.0.1:$PORT" --connections 3 --duration 1s --warmup 0
expect "$TMP/closer.json" 'r["errors"]["disconnect"] == 3' "three disconnects"

echo "== source IP range"
start srcpeer python3 "$PEER"
run source 0 --target "127.0.0.1:$PORT" --connections 8 --duration 300ms --warmup 0 \
  --source-ip-range 127.0.0.2-127.0.0.5
# The peer prints a line when it accepts, which a loaded machine delays past loadgen's exit:
# wait up to 10 s for the four addresses rather than a fixed 0.2 s.
want="127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 "
for _ in $(seq 200); do
  ips=$(sed -n 's/^accepted from //p' "$TMP/srcpeer.out" | sort -u | tr '\n' ' ')
  [ "$ips" = "$want" ] && break
  sleep 0.05
done
[ "$ips" = "$want" ] || fail "source IPs: '$ips'"

echo "== --backend (server frames) against backend_sim, with pushes"
start sim "$BACKEND_SIM" --address 127.0.0.1:0 --push-interval 20ms --quiet
run backend 0 --target "127.0.0.1:$PORT" --backend --connections 4 --pipeline 2 --size 40 \
  --duration 500ms --warmup 100ms
expect "$TMP/backend.json" 'r["received"] > 0 and r["errors"]["total"] == 0' "backend echo clean"
expect "$TMP/backend.json" 'r["pushes"] > 0 and r["framing"] == "backend"' "backend pushes counted"
start simprefix "$BACKEND_SIM" --address 127.0.0.1:0 --reply-prefix X --quiet
run backend_prefix 1 --target "127.0.0.1:$PORT" --backend --connections 1 --duration 300ms \
  --warmup 0
expect "$TMP/backend_prefix.json" 'r["errors"]["malformed"] > 0' "altered replies are errors"

echo "== --ws against the gateway (websocket in the chain), pushes inside binary messages"
start wssim "$BACKEND_SIM" --address 127.0.0.1:0 --push-interval 20ms --quiet
cat >"$TMP/ws_gateway.json" <<EOF
{"workers": 1, "admin": {"address": "127.0.0.1:0"},
 "listeners": [{"name": "game", "address": "127.0.0.1:0", "filters": [
   {"name": "ip_limiter", "config": {"connection_rate_limit": 1000, "connection_burst": 1000}},
   {"name": "websocket", "config": {"path": "/game"}},
   {"name": "framing", "config": {}},
   {"name": "session", "config": {"store": "memory"}},
   {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
 "clusters": [{"name": "game", "hosts": ["127.0.0.1:$PORT"]}]}
EOF
"$GATEWAY" --config "$TMP/ws_gateway.json" >"$TMP/ws_gateway.log" 2>&1 &
PIDS+=($!)
GW_PORT=""
for _ in $(seq 200); do
  GW_PORT=$(sed -n "s/.*listener 'game' listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p" "$TMP/ws_gateway.log")
  [ -n "$GW_PORT" ] && break
  sleep 0.05
done
[ -n "$GW_PORT" ] || { echo "gateway did not start: $(cat "$TMP/ws_gateway.log")"; exit 1; }
run ws 0 --target "127.0.0.1:$GW_PORT" --ws --ws-path /game --connections 8 --pipeline 2 \
  --duration 1s --warmup 200ms
expect "$TMP/ws.json" 'r["received"] > 0 and r["errors"]["total"] == 0' "ws echo clean"
expect "$TMP/ws.json" 'r["framing"] == "client+ws" and r["connections_ok"] == 8' "ws connected"
expect "$TMP/ws.json" 'r["pushes"] > 0' "pushes unwrapped from binary messages"
# Each message: 8 + 64 bytes of client frame in a 6-byte masked WebSocket header.
expect "$TMP/ws.json" 'r["bytes_out"] == r["sent"] * 78' "one masked binary message per frame"
run ws_badpath 1 --target "127.0.0.1:$GW_PORT" --ws --ws-path /nope --connections 3 --duration 1s
expect "$TMP/ws_badpath.json" 'r["connections_failed"] == 3 and r["errors"]["ws_handshake"] == 3' \
  "refused upgrades are counted handshake failures"
grep -q "WebSocket upgrade failed: status 'HTTP/1.1 404" "$TMP/ws_badpath.err" ||
  fail "refused upgrade not reported: $(cat "$TMP/ws_badpath.err")"
run ws_raw_to_tcp 1 --target "127.0.0.1:$ECHO_PORT" --ws --raw --connections 1 --duration 1s \
  --connect-timeout 1s
expect "$TMP/ws_raw_to_tcp.json" 'r["connections_failed"] == 1' \
  "a server that echoes the upgrade request back is no 101"

echo "== connect failures"
# A port nobody listens on: bind a socket, note its port, close it.
DEAD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run dead 1 --target "127.0.0.1:$DEAD_PORT" --connections 3 --duration 5s
expect "$TMP/dead.json" 'r["connections_failed"] == 3 and r["errors"]["connect"] == 3' "failed connects"
expect "$TMP/dead.json" 'r["duration_s"] == 0' "no window when nothing connected"

echo "== connect rate and many connections"
run many 0 --target "127.0.0.1:$ECHO_PORT" --raw --connections 300 --connect-rate 1000/s \
  --duration 300ms --warmup 0
expect "$TMP/many.json" 'r["connections_ok"] == 300' "300 connections"

echo "== flag validation"
"$LOADGEN" --target 127.0.0.1:1 --size 8 >/dev/null 2>&1
[ $? = 2 ] || fail "--size 8 must be refused"
"$LOADGEN" --target localhost:1 >/dev/null 2>&1
[ $? = 2 ] || fail "host names must be refused"
"$LOADGEN" --target 127.0.0.1:1 --mode rate >/dev/null 2>&1
[ $? = 2 ] || fail "--mode rate without --rate must be refused"
"$LOADGEN" --target 127.0.0.1:1 --size 70000 >/dev/null 2>&1
[ $? = 2 ] || fail "framed --size above 65535 must be refused"
"$LOADGEN" --target 127.0.0.1:1 --ws --ws-path nope >/dev/null 2>&1
[ $? = 2 ] || fail "--ws-path without a leading / must be refused"

if [ "$FAILS" != 0 ]; then
  echo "$FAILS check(s) failed"
  exit 1
fi
echo "all loadgen checks passed"
