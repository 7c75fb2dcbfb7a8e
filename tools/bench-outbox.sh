#!/usr/bin/env bash
# The outbox relay's cost (doc/outbox.md): arbiterd on SQLite, POST /orders
# with arb-bench, once with no sink at all, once with a sink-jsonl instance
# that takes every ledger event from the outbox (fsync=never, so that the
# figure is the relay's and not the disk's). For each: the order latency,
# closed loop and open loop, and for the sink the time from an event's
# creation (the order's reservation, before its commit) to the sink's
# acknowledgement, from the arb_sink_publish_latency_seconds histogram.
#
#   tools/bench-outbox.sh BUILD_DIR [CONNECTIONS] [DURATION] [RATE]
#
# Defaults: 16 connections, 10s, open loop at 500 orders/s.
set -euo pipefail
build=${1:?usage: bench-outbox.sh BUILD_DIR [CONNECTIONS] [DURATION] [RATE]}
conns=${2:-16}
duration=${3:-10s}
rate=${4:-500}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench="$build/tools/arb-bench"
arbiterd="$build/runtime/arbiterd"
tmp=$(mktemp -d)
pid=
servers=()
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${pgbin:-}" ] && [ -f "$tmp/pg/data/postmaster.pid" ]; then
    runas "$pgbin/pg_ctl" -D "$tmp/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
runas() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
trap cleanup EXIT
export ARBITER_PLUGIN_PATH="$build/plugins" ARB_PLUGIN_SYSTEM_PATH=""
printf 'a-very-long-benchmark-secret-of-at-least-32-bytes\n' > "$tmp/secret"

# p50 and p99 of a Prometheus histogram, interpolated within its buckets
quantiles() {
  /usr/bin/python3 -c '
import sys, re
name, text = sys.argv[1], sys.stdin.read()
b = [(float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2)))
     for m in re.finditer(r"^" + name + r"_bucket\{[^}]*le=\"([^\"]+)\"\} (\S+)$", text, re.M)]
if not b or b[-1][1] == 0:
    print("no events"); sys.exit()
total = b[-1][1]
def q(p):
    want, lo, prev = p * total, 0.0, 0.0
    for le, c in b:
        if c >= want:
            if le == float("inf"): return lo
            return lo + (le - lo) * (want - prev) / max(c - prev, 1)
        lo, prev = le, c
print("events %d, p50 %.2f ms, p99 %.2f ms" % (total, q(.5) * 1e3, q(.99) * 1e3))
' "$1"
}

run() {
  local label=$1 sink=$2
  rm -rf "$tmp/state" "$tmp/events.jsonl"
  cat > "$tmp/arbiter.conf" <<EOF
[runtime]
listen=127.0.0.1:0
state_dir=$tmp/state
log_level=notice
[api]
jwt_alg=HS256
jwt_secret_file=$tmp/secret
[program:bench]
starting_balance=1000000000
leverage=100
[ingest:replay]
plugin=ingest-replay
dir=$root/data/replay
files=session-10m.jsonl
speed=1
loop=true
$sink
EOF
  "$arbiterd" --config "$tmp/arbiter.conf" 2> "$tmp/log" &
  pid=$!
  local api=
  for _ in $(seq 100); do
    api=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/log" | grep -o '[0-9]*$' || true)
    [ -n "$api" ] && break
    sleep 0.1
  done
  [ -n "$api" ] || { cat "$tmp/log" >&2; exit 1; }
  local base="http://127.0.0.1:$api"
  local admin user
  admin=$("$arbiterd" --config "$tmp/arbiter.conf" --mint-token ops --admin --ttl 86400)
  user=$("$arbiterd" --config "$tmp/arbiter.conf" --mint-token bench --ttl 86400)
  sleep 2 # the replay's first quotes
  : > "$tmp/accounts"
  for _ in $(seq "$conns"); do
    curl -sf -X POST "$base/assessments" -H "Authorization: Bearer $admin" -d '{"userId":"bench","program":"bench"}' \
      | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' >> "$tmp/accounts"
  done
  local body='{"assessmentId":"{{value}}","market":"crypto:BTC-USD","side":"buy","quantity":"0.0001"}'
  echo "## $label: POST /orders, closed loop, $conns connections, $duration"
  "$bench" --url "$base/orders" -m POST -c "$conns" -d "$duration" -w 2s -H "Authorization: Bearer $user" \
    --values "$tmp/accounts" -b "$body" | grep -E '^(requests|latency|  p)' || true
  echo "## $label: POST /orders, open loop at $rate/s, $conns connections, $duration"
  "$bench" --url "$base/orders" -m POST -c "$conns" -d "$duration" -w 2s -R "$rate" -H "Authorization: Bearer $user" \
    --values "$tmp/accounts" -b "$body" | grep -E '^(requests|latency|  p)' || true
  # the daemon's CPU time per order: steadier than latency on a shared machine
  local ticks orders
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  orders=$(curl -sf "$base/metrics" | awk '/^arb_http_request_duration_seconds_count/ && /POST/ && /orders/ {n += $2} END {print n + 0}')
  if [ "$orders" -gt 0 ]; then
    echo "## $label: arbiterd CPU $(awk -v t="$ticks" -v n="$orders" -v hz="$(getconf CLK_TCK)"       'BEGIN {printf "%.0f us per order (%d orders)", t / hz * 1e6 / n, n}')"
  fi
  if [ -n "$sink" ]; then
    sleep 2
    local metrics
    metrics=$(curl -sf "$base/metrics")
    echo "## $label: event created -> acknowledged by the sink: $(quantiles arb_sink_publish_latency_seconds <<< "$metrics")"
    echo "$metrics" | grep -E '^arb_(sink_outbox_pending|outbox_lag_seconds|outbox_delivered_total|outbox_redelivered_total|sink_published_total)\{' || true
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

echo "# machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
run "no sink" ""
run "sink-jsonl, ledger events" "[sink:events]
plugin=sink-jsonl
path=$tmp/events.jsonl
fsync=never
events=ledger"

# every sink at once: jsonl, Kafka (librdkafka's mock cluster), Redis and
# PostgreSQL (servers started here on loopback), each taking every event
if [ -x "$build/tests/kafka-mock" ] && command -v redis-server >/dev/null; then
  mkfifo "$tmp/kafka-in"
  "$build/tests/kafka-mock" --topics arb < "$tmp/kafka-in" > "$tmp/kafka-out" &
  servers+=($!)
  exec 7> "$tmp/kafka-in"
  for _ in $(seq 50); do grep -q '^bootstrap' "$tmp/kafka-out" 2>/dev/null && break; sleep 0.1; done
  kafka=$(sed -n 's/^bootstrap //p' "$tmp/kafka-out")
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --daemonize no > "$tmp/redis.log" 2>&1 &
  servers+=($!)
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | tail -n1)
  mkdir -p "$tmp/pg" && chmod 777 "$tmp" && { [ "$(id -u)" != 0 ] || chown postgres "$tmp/pg"; }
  pport=$(free_port)
  runas "$pgbin/initdb" -D "$tmp/pg/data" -A trust -U postgres >/dev/null
  runas "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w \
    -o "-k $tmp/pg -p $pport -c listen_addresses=127.0.0.1" start >/dev/null
  runas "$pgbin/createdb" -h 127.0.0.1 -p "$pport" -U postgres archive
  sleep 0.5
  run "every sink (jsonl, kafka, redis, postgres)" "[sink:events]
plugin=sink-jsonl
path=$tmp/events.jsonl
fsync=never
[sink:kafka]
plugin=sink-kafka
brokers=$kafka
topic_prefix=arb
[sink:redis]
plugin=sink-redis
port=$rport
[sink:postgres]
plugin=sink-postgres
conninfo=postgresql://postgres@127.0.0.1:$pport/archive
archive_events=true"
  exec 7>&-
fi
