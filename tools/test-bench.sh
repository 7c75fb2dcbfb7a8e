#!/usr/bin/env bash
# TAP test of arb-bench against a small local keep-alive server (bench-test-server.py).
# usage: test-bench.sh ARB_BENCH SERVER_PY
# Every run is short (well under a second of load) and talks to 127.0.0.1/::1 only.
set -uo pipefail

bench=${1:?usage: test-bench.sh ARB_BENCH SERVER_PY}
server_py=${2:?usage: test-bench.sh ARB_BENCH SERVER_PY}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift
    local l; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}

# start_server NAME [--ipv6] -> sets $port
start_server() {
    local name=$1; shift
    "$PY" "$server_py" --port-file "$tmp/$name.port" --lifetime 60 "$@" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        [[ -s $tmp/$name.port ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    port=$(cat "$tmp/$name.port" 2>/dev/null)
    [[ -n $port ]]
}

# check NAME JSONFILE PYTHON-EXPRESSION... (each over `r`, the parsed output)
check() {
    local name=$1 file=$2; shift 2
    local msg
    if msg=$("$PY" - "$file" "$@" 2>&1 <<'PYEOF'
import json, sys
text = open(sys.argv[1]).read()
try:
    r = json.loads(text)
except ValueError as e:
    sys.exit(f"output is not one JSON object ({e}): {text[:400]!r}")
s = r.get("status", {})
for expr in sys.argv[2:]:
    if not eval(expr, {"r": r, "s": s}):
        sys.exit(f"failed: {expr}\n{json.dumps(r)}")
PYEOF
    ); then
        ok "$name"
    else
        not_ok "$name" "$msg"
    fi
}

# run NAME ARGS... -> output in $tmp/NAME.json, stderr in $tmp/NAME.err
run() {
    local name=$1; shift
    timeout 30 "$bench" --json "$@" >"$tmp/$name.json" 2>"$tmp/$name.err"
    local rc=$?
    if ((rc != 0)); then
        echo "# $name: exit $rc: $(head -c 400 "$tmp/$name.err")"
    fi
    return $rc
}

echo "1..19"

if ! start_server v4; then
    echo "Bail out! test server did not start"
    exit 1
fi
base="http://127.0.0.1:$port"

sums='s["1xx"] + s["2xx"] + s["3xx"] + s["4xx"] + s["5xx"] + s["other"] == r["requests"]'
codes='sum(r["status_codes"].values()) == r["requests"] - s["other"]'

# 1. Content-Length responses, closed loop
run len --url "$base/len" -c 4 -d 400ms -w 100ms
check "content-length: requests counted, all 2xx, no errors" "$tmp/len.json" \
    'r["requests"] > 0' 's["2xx"] == r["requests"]' 'r["errors"] == 0' "$sums" "$codes" \
    'r["throughput_rps"] > 0' 'r["latency_us"]["p50"] > 0' \
    'r["latency_us"]["p50"] <= r["latency_us"]["p90"] <= r["latency_us"]["p99"] <= r["latency_us"]["p99_9"] <= r["latency_us"]["max"]' \
    'r["connects"] == 4' 'r["mode"] == "closed"' 'r["method"] == "GET"' 'r["connections"] == 4'

# 2. chunked responses, two threads
run chunked --url "$base/chunked" -c 4 -t 2 -d 300ms
check "chunked: keep-alive, all 2xx, no errors" "$tmp/chunked.json" \
    'r["requests"] > 0' 's["2xx"] == r["requests"]' 'r["errors"] == 0' 'r["connects"] == 4' \
    'r["threads"] == 2'

# 2b. responses split into many reads, interim 100, large bodies
for path in split big bigchunked; do
    run "$path" --url "$base/$path" -c 2 -d 200ms
    check "/$path: parsed across reads, all 2xx, no errors" "$tmp/$path.json" \
        'r["requests"] > 0' 's["2xx"] == r["requests"]' 'r["errors"] == 0' 'r["connects"] == 2'
done
check "/big: every body byte read" "$tmp/big.json" 'r["bytes_read"] >= r["requests"] * 262144'

# 3. a 500 is a completed request, reported as 5xx, not an error
run err --url "$base/err" -c 2 -d 200ms
check "500s counted as 5xx" "$tmp/err.json" \
    'r["requests"] > 0' 's["5xx"] == r["requests"]' 'r["status_codes"].get("500") == r["requests"]' \
    'r["errors"] == 0' "$sums"

# 4. a mix of lengths, chunks, 404s and 500s adds up
run mix --url "$base/mix" -c 3 -d 300ms
check "mixed responses: status classes add up" "$tmp/mix.json" \
    'r["requests"] >= 8' 's["2xx"] > 0' 's["4xx"] > 0' 's["5xx"] > 0' 'r["errors"] == 0' \
    "$sums" "$codes"

# 5. the server closing after every response: reconnect, no errors
run close --url "$base/close" -c 2 -d 200ms
check "Connection: close: reconnects without errors" "$tmp/close.json" \
    'r["requests"] > 0' 's["2xx"] == r["requests"]' 'r["errors"] == 0' 'r["connects"] > 2'

# 6. a body delimited by the end of the connection
run eof --url "$base/eof" -c 2 -d 200ms
check "body until close: counted as complete" "$tmp/eof.json" \
    'r["requests"] > 0' 's["2xx"] == r["requests"]' 'r["errors"] == 0'

# 7. POST with {{seq}} and {{uuid}}: one unique key per request, same in header and body
run echo --url "$base/echo" -c 3 -d 200ms --seq-start 1000 \
    -H 'Content-Type: application/json' -H 'Idempotency-Key: {{uuid}}' \
    --body '{"seq":{{seq}},"key":"{{uuid}}"}'
check "POST with a body template" "$tmp/echo.json" \
    'r["method"] == "POST"' 'r["requests"] > 0' 's["2xx"] == r["requests"]' 'r["errors"] == 0'
curl -s "$base/stats" >"$tmp/stats.json"
check "templates: unique {{uuid}} and {{seq}} per request, equal within one" "$tmp/stats.json" \
    'r["echo"] >= 1' 'r["echo_unique_keys"] == r["echo"]' 'r["echo_unique_seq"] == r["echo"]' \
    'r["echo_bad_bodies"] == 0' 'r["echo_seq_ints"]' 'r["echo_key_matches_body"]' 'r["echo_key_is_uuid"]' \
    'r["counts"]["/echo"] == r["echo"]'

# 8. open loop: about --rate requests per second, latency from the schedule
run rate --url "$base/len" -c 4 -d 500ms -w 100ms --rate 400
check "open loop at 400 req/s" "$tmp/rate.json" \
    'r["mode"] == "open"' 'r["rate"] == 400' '160 <= r["requests"] <= 240' 'r["errors"] == 0' \
    'r["unsent"] == 0'

# 9. nothing listening: connection errors, no requests, still ends on time
dead=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run dead --url "http://127.0.0.1:$dead/" -c 2 -d 200ms
check "connection refused: errors, no requests" "$tmp/dead.json" \
    'r["requests"] == 0' 'r["errors"] > 0' 'r["error_kinds"]["connect"] == r["errors"]'

# 9b. not HTTP: parse errors; too slow: timeouts
run garbage --url "$base/garbage" -c 1 -d 200ms
check "garbage response: parse errors, no requests" "$tmp/garbage.json" \
    'r["requests"] == 0' 'r["error_kinds"]["parse"] > 0' 'r["errors"] == r["error_kinds"]["parse"]'
run slow --url "$base/slow" -c 1 -d 300ms --timeout 100ms
check "slow response: timeouts" "$tmp/slow.json" \
    'r["requests"] == 0' 'r["error_kinds"]["timeout"] >= 1' 'r["errors"] == r["error_kinds"]["timeout"]'

# 10. IPv6 literal (skipped where ::1 is not configured)
if start_server v6 --ipv6 2>/dev/null; then
    run v6 --url "http://[::1]:$port/len" -c 2 -d 200ms
    check "IPv6 literal" "$tmp/v6.json" 'r["requests"] > 0' 'r["errors"] == 0'
else
    n=$((n + 1)); echo "ok $n # SKIP no ::1"
fi

# 11. text output has the documented lines
timeout 30 "$bench" --url "$base/mix" -c 2 -d 200ms >"$tmp/text.out" 2>&1
if grep -q '^target  *http://127.0.0.1' "$tmp/text.out" && grep -q '^method  *GET' "$tmp/text.out" \
    && grep -q '^connections  *2' "$tmp/text.out" && grep -q '^threads  *1' "$tmp/text.out" \
    && grep -q '^duration ' "$tmp/text.out" \
    && grep -Eq '^requests [0-9]+  throughput [0-9.]+ req/s' "$tmp/text.out" \
    && grep -Eq '^latency p50 [0-9.]+ (µs|ms|s)  p90 .* p99 .* p99\.9 .* max ' "$tmp/text.out" \
    && grep -Eq '^status 2xx [0-9]+, 4xx [0-9]+, 5xx [0-9]+, errors 0' "$tmp/text.out"; then
    ok "text output"
else
    not_ok "text output" "$(cat "$tmp/text.out")"
fi

# 12. bad options are refused with exit 2
bad=0
for args in "--url https://127.0.0.1/" "--url http://example.com/" "--url $base/ --duration 5x" \
            "--url $base/ --body a --body-file /dev/null" "--url $base/ -H NoColon" \
            "--url $base/ -c 1 -t 2" "--url $base/ -H Content-Length:3"; do
    # shellcheck disable=SC2086
    timeout 10 "$bench" $args >/dev/null 2>&1
    rc=$?
    if ((rc != 2)); then bad=1; echo "# $args: exit $rc, wanted 2"; fi
done
if ((bad == 0)); then ok "bad options refused"; else not_ok "bad options refused"; fi

echo "# $((n - failed)) of $n passed"
exit $((failed > 0))
