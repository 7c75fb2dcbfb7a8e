#!/usr/bin/env bash
# The REST benchmark behind doc/benchmarks.md: arbiterd on SQLite or on a
# PostgreSQL it starts itself, POST /orders over several assessments, GET
# /positions, GET /trades on an account with many trades, and, for
# PostgreSQL, `pgbench -N` on the same server at the same client count.
#
#   tools/bench-api.sh BUILD_DIR sqlite|postgresql [CONNECTIONS] [DURATION] [TRADES] [ROUNDS]
#
# Defaults: 16 connections, 10s, 100000 trades for the history account.
# ROUNDS (PostgreSQL, default 0): at the end, pgbench and the closed-loop
# orders take turns that many more times on the same server, and each
# round prints the ratio of the two; then both at 1,000/s, and the round
# prints the p99 of each. This VM's speed moves by up to 40 %
# between runs, so one pair decides little; the rounds give the spread.
# Each endpoint is measured closed loop (every connection sends its next
# request when the last is answered: the most the machine does, and the
# latency of a saturated machine) and open loop at a fixed rate (latency
# counted from when each request was due, so a stall is not hidden): orders
# at 1,000/s and, on PostgreSQL, at pgbench's own rate; reads at 1,000/s.
# On PostgreSQL, pgbench also runs open loop at 1,000/s, with its latency
# percentiles counted from its log: the database's own tail at that rate.
set -euo pipefail
build=${1:?usage: bench-api.sh BUILD_DIR sqlite|postgresql [CONNECTIONS] [DURATION] [TRADES]}
backend=${2:?sqlite or postgresql}
conns=${3:-16}
duration=${4:-10s}
trades=${5:-100000}
rounds=${6:-0}
case $rounds in
  '' | *[!0-9]*) echo "bench-api.sh: ROUNDS (the sixth argument) must be a whole number, not '$rounds'" >&2; exit 2 ;;
esac
if [ "$backend" != postgresql ] && [ "$rounds" -gt 0 ]; then
  echo "bench-api.sh: ROUNDS takes turns with pgbench, so it needs postgresql, not $backend" >&2
  exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench="$build/tools/arb-bench"
arbiterd="$build/runtime/arbiterd"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${pgbin:-}" ] && [ -f "$tmp/pg/data/postmaster.pid" ]; then
    runas "$pgbin/pg_ctl" -D "$tmp/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
runas() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# pgbench -N on the same server; extra arguments go to pgbench (-R RATE).
# Every transaction is logged (-l), and the latency line is counted from the
# log in arb-bench's format, leaving out the first 2 s as arb-bench's warm-up
# does. pgbench's log time is from when a transaction was due (with -R), so
# both tools count a stall the same way.
run_pgbench() {
  local secs=${duration%s} log="$tmp/pg/pgbench-log"
  rm -f "$log".*
  runas "$pgbin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -N -c "$conns" -j 2 -T "$secs" \
    -l --log-prefix="$log" "$@" pgbench 2>/dev/null \
    | grep -E "^(tps|latency average|number of transactions actually)"
  # log lines: client, transaction, latency (µs), script, epoch s, µs[, lag]
  cat "$log".* | awk '{ printf "%d%06d %d\n", $5, $6, $3 }' | sort -n \
    | awk 'NR == 1 { t0 = $1 } $1 >= t0 + 2000000 { print $2 }' | sort -n \
    | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit
        printf "latency p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms (%d after 2 s, from the log)\n",
          v[int(NR * .50) + 1] / 1e3, v[int(NR * .90) + 1] / 1e3, v[int(NR * .99) + 1] / 1e3,
          v[int(NR * .999) + 1] / 1e3, v[NR] / 1e3, NR }'
  rm -f "$log".*
}

echo "# machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
store="sqlite:arbiter.db"
if [ "$backend" = postgresql ]; then
  pgbin=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -n1)
  [ -x "$pgbin/initdb" ] || pgbin=$(ls -d /usr/lib/postgresql/*/bin | tail -n1)
  mkdir -p "$tmp/pg" && chmod 777 "$tmp" && [ "$(id -u)" = 0 ] && chown postgres "$tmp/pg"
  port=$(free_port)
  runas "$pgbin/initdb" -D "$tmp/pg/data" -A trust -U postgres >/dev/null
  runas "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w \
    -o "-k $tmp/pg -p $port -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=100" start >/dev/null
  runas "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U postgres bench
  runas "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U postgres pgbench
  runas "$pgbin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s 10 -q pgbench >/dev/null 2>&1
  # A fresh cluster creates and zero-fills each 16 MB WAL segment in the
  # committing backend (17-22 ms each, every 2 s at the orders' write rate);
  # a server that has run a while renames old segments instead. So: about
  # 500 MB of WAL once, and a checkpoint before pgbench and before each run
  # of orders, which recycles the segments written since; both meet the
  # server as it runs, not as initdb left it (doc/benchmarks.md).
  runas "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -q pgbench \
    -c "CREATE TABLE wal_warmup AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 2000000) g" \
    -c "DROP TABLE wal_warmup" -c CHECKPOINT
  echo "## pgbench -N -c $conns -j 2 -T ${duration%s} (same server)"
  run_pgbench | tee "$tmp/pgbench"
  pgbench_tps=$(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$tmp/pgbench")
  store="postgresql://postgres@127.0.0.1:$port/bench"
fi

printf 'a-very-long-benchmark-secret-of-at-least-32-bytes\n' > "$tmp/secret"
cat > "$tmp/arbiter.conf" <<EOF
[runtime]
listen=127.0.0.1:0
state_dir=$tmp/state
log_level=notice
store=$store
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
EOF
export ARBITER_PLUGIN_PATH="$build/plugins" ARB_PLUGIN_SYSTEM_PATH=""
"$arbiterd" --config "$tmp/arbiter.conf" 2> "$tmp/log" &
pids+=($!)
for _ in $(seq 100); do
  api=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/log" | grep -o '[0-9]*$' || true)
  [ -n "$api" ] && break
  sleep 0.1
done
[ -n "$api" ] || { cat "$tmp/log" >&2; exit 1; }
base="http://127.0.0.1:$api"
admin=$("$arbiterd" --config "$tmp/arbiter.conf" --mint-token ops --admin --ttl 86400)
user=$("$arbiterd" --config "$tmp/arbiter.conf" --mint-token bench --ttl 86400)
new_assessment() {
  curl -sf -X POST "$base/assessments" -H "Authorization: Bearer $admin" \
    -d '{"userId":"bench","program":"bench"}' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
sleep 2   # the replay's first quotes
: > "$tmp/accounts"
for _ in $(seq "$conns"); do new_assessment >> "$tmp/accounts"; done

# PostgreSQL: the WAL segments of the run before go back into use
checkpoint() {
  if [ "$backend" = postgresql ]; then
    runas "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c CHECKPOINT bench
  fi
}
# POST /orders over the assessments; closed loop, or with "-R RATE" open loop
orders() {
  "$bench" --url "$base/orders" -m POST -c "$conns" -d "$duration" -w 2s "$@" \
    -H "Authorization: Bearer $user" -H "Idempotency-Key: {{uuid}}" --values "$tmp/accounts" \
    -b '{"assessmentId":"{{value}}","market":"crypto:BTC-USD","side":"buy","quantity":"0.0001"}' | sed -n '/^requests/,$p'
}
checkpoint
echo "## POST /orders, $conns connections over $conns assessments, $duration ($backend)"
orders
for rate in 1000 ${pgbench_tps:-}; do
  checkpoint
  echo "## POST /orders, open loop at $rate/s, $conns connections over $conns assessments, $duration ($backend)"
  orders -R "$rate"
done
if [ "$backend" = postgresql ]; then
  # the database's own floor for a durable transaction at that rate
  checkpoint
  echo "## pgbench -N -c $conns -j 2 -T ${duration%s} -R 1000 (same server, while arbiterd is idle)"
  run_pgbench -R 1000
fi

acct=$(new_assessment)
for i in $(seq 10); do
  curl -sf -X POST "$base/orders" -H "Authorization: Bearer $user" \
    -d "{\"assessmentId\":\"$acct\",\"market\":\"crypto:ETH-USD\",\"side\":\"buy\",\"quantity\":\"0.01\"}" >/dev/null
done
echo "## GET /positions (10 open), $conns connections, $duration"
"$bench" --url "$base/positions?assessmentId=$acct" -c "$conns" -d "$duration" -w 2s \
  -H "Authorization: Bearer $user" | sed -n '/^requests/,$p'
echo "## GET /positions (10 open), 1 connection, $duration"
"$bench" --url "$base/positions?assessmentId=$acct" -c 1 -d "$duration" -w 1s \
  -H "Authorization: Bearer $user" | sed -n '/^requests/,$p'
echo "## GET /positions (10 open), open loop at 1000/s, $conns connections, $duration"
"$bench" --url "$base/positions?assessmentId=$acct" -c "$conns" -R 1000 -d "$duration" -w 1s \
  -H "Authorization: Bearer $user" | sed -n '/^requests/,$p'

# the history account: orders until it has $trades trades (counted in the store)
hist=$(new_assessment)
count_trades() {
  if [ "$backend" = postgresql ]; then
    runas "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -tA -c "SELECT count(*) FROM trades WHERE assessment_id = '$hist'" bench
  else
    /usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect('$tmp/state/arbiter.db').execute('select count(*) from trades where assessment_id=?', (sys.argv[1],)).fetchone()[0])" "$hist"
  fi
}
echo "# filling an account with $trades trades"
while [ "$(count_trades)" -lt "$trades" ]; do
  "$bench" --url "$base/orders" -m POST -c "$conns" -d 10s -H "Authorization: Bearer $user" \
    -b "{\"assessmentId\":\"$hist\",\"market\":\"crypto:SOL-USD\",\"side\":\"buy\",\"quantity\":\"0.001\"}" >/dev/null
done
echo "# the account has $(count_trades) trades (at least $trades)"
echo "## GET /trades?limit=50 on an account with $trades trades, $conns connections, $duration"
"$bench" --url "$base/trades?assessmentId=$hist&limit=50" -c "$conns" -d "$duration" -w 2s \
  -H "Authorization: Bearer $user" | sed -n '/^requests/,$p'
echo "## GET /trades?limit=50 on an account with $trades trades, 1 connection, $duration"
"$bench" --url "$base/trades?assessmentId=$hist&limit=50" -c 1 -d "$duration" -w 1s \
  -H "Authorization: Bearer $user" | sed -n '/^requests/,$p'
echo "## GET /trades?limit=50 on an account with $trades trades, open loop at 1000/s, $conns connections, $duration"
"$bench" --url "$base/trades?assessmentId=$hist&limit=50" -c "$conns" -R 1000 -d "$duration" -w 1s \
  -H "Authorization: Bearer $user" | sed -n '/^requests/,$p'

if [ "$backend" = postgresql ] && [ "$rounds" -gt 0 ]; then
  echo "# pgbench -N and POST /orders taking turns, $rounds rounds: closed loop ($conns connections, $duration each), then at 1000/s"
  p99() { sed -n 's/^latency .* p99 \([0-9.]* [µm]*s\) .*/\1/p'; }
  for r in $(seq "$rounds"); do
    checkpoint
    tps=$(run_pgbench | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    checkpoint
    ops=$(orders | sed -n 's/^requests [0-9]*  throughput \([0-9.]*\) req\/s.*/\1/p')
    echo "## round $r: pgbench $tps tps, orders $ops/s, orders/pgbench $(awk -v a="$ops" -v b="$tps" 'BEGIN { printf "%.2f", a / b }')"
    checkpoint
    pg99=$(run_pgbench -R 1000 | p99)
    checkpoint
    or99=$(orders -R 1000 | p99)
    echo "## round $r at 1000/s: p99 pgbench $pg99, orders $or99"
  done
fi
