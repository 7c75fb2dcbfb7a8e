#!/usr/bin/env bash
# Install what is missing, build, and run every test twice:
#   1. build/       normal build (debugoptimized)
#   2. build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer build
# The last line of output is always "N passed, N failed, N skipped", summed over
# both runs. Exit status is non-zero if a test failed, a build failed, or no test ran.
#
# Environment:
#   ARB_TEST_SKIP_ASAN=1   skip the sanitizer run (quick local use; CI never sets it)
# Extra arguments are passed to both `meson test` runs (e.g. a test or suite name).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

# The tests use Debian's python3 and its modules (python3-jwt, python3-cryptography).
# A developer's PATH may put another python3 first (pyenv); CI machines have none.
# Put /usr/bin first so that meson's find_program() and the tests agree with CI.
export PATH="/usr/bin:/bin:$PATH"
PY=/usr/bin/python3

total_passed=0
total_failed=0
total_skipped=0
status=0

summary() {
    printf '%d passed, %d failed, %d skipped\n' "$total_passed" "$total_failed" "$total_skipped"
}

error() {
    echo "test.sh: ERROR: $*" >&2
    status=1
}

step() {
    printf '\n==> %s\n' "$*"
}

# In CI the machine is thrown away, so show the meson log when configuring fails.
show_meson_log() {
    local log="$1/meson-logs/meson-log.txt"
    if [[ -n "${CI:-}" && -f "$log" ]]; then
        echo "---- last 60 lines of $log ----" >&2
        tail -n 60 "$log" >&2
        echo "----" >&2
    fi
}

# configure_and_build DIR [meson options...]
configure_and_build() {
    local dir="$1"; shift
    step "configure $dir ${*}"
    if [[ -f "$dir/meson-private/coredata.dat" ]]; then
        # existing tree: reconfigure (picks up newly installed deps and the options);
        # if the tree is from an incompatible meson or broken, start it over
        if ! meson setup --reconfigure "$dir" "$@"; then
            echo "test.sh: reconfigure of $dir failed; wiping it" >&2
            meson setup --wipe "$dir" "$@" || { show_meson_log "$dir"; return 1; }
        fi
    else
        meson setup "$dir" "$@" || { show_meson_log "$dir"; return 1; }
    fi
    step "build $dir"
    ninja -C "$dir"
}

# count_results TESTLOG -> prints "passed failed skipped"
# testlog.json is JSON lines, one object per test, with a "result" field.
count_results() {
    "$PY" - "$1" <<'PYEOF'
import json, sys
passed = failed = skipped = 0
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for n, line in enumerate(f, 1):
        line = line.strip()
        if not line:
            continue
        try:
            result = str(json.loads(line).get("result", "")).upper()
        except (ValueError, AttributeError):
            print(f"test.sh: {sys.argv[1]}:{n}: unreadable line, counted as failed",
                  file=sys.stderr)
            failed += 1
            continue
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:  # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, anything else
            failed += 1
print(passed, failed, skipped)
PYEOF
}

# run_tests DIR [meson test args...]; uses the caller's environment
run_tests() {
    local dir="$1"; shift
    local log="$dir/meson-logs/testlog.json"
    rm -f "$dir"/meson-logs/testlog*.json

    step "meson test -C $dir $*"
    local rc=0
    meson test -C "$dir" --no-rebuild --print-errorlogs "$@" || rc=$?

    if [[ ! -f "$log" ]]; then
        error "$dir: no test ran (meson test exit $rc, no $log written; are any tests defined?)"
        return
    fi
    local counts p f s
    if ! counts=$(count_results "$log"); then
        error "$dir: could not read $log"
        return
    fi
    read -r p f s <<<"$counts"
    echo "test.sh: $dir: $p passed, $f failed, $s skipped"
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    total_skipped=$((total_skipped + s))

    if ((f > 0)); then
        status=1
    elif ((rc != 0)); then
        error "$dir: meson test exited with $rc although no test failed"
    fi
    if ((p + f == 0)); then
        error "$dir: zero tests ran ($s skipped)"
    fi
}

step "install dependencies"
if ! bash scripts/install-deps.sh </dev/null; then
    error "installing dependencies failed"
    summary
    exit 1
fi

# ---- normal build ----
if configure_and_build build -Dtests=true; then
    run_tests build "$@"
else
    error "build failed in build/"
    summary
    exit 1
fi

# ---- sanitizer build ----
if [[ "${ARB_TEST_SKIP_ASAN:-0}" == 1 ]]; then
    step "sanitizer run skipped (ARB_TEST_SKIP_ASAN=1)"
elif configure_and_build build-asan -Dtests=true \
        -Db_sanitize=address,undefined -Db_lundef=false; then
    # Leak detection is off: GLib's type system (GType class data, interned
    # strings, quarks), GIO's default TLS/proxy resolvers and libsoup's session
    # machinery keep global allocations alive until exit on purpose, so LSan
    # reports them in every test. Use-after-free, overflows and UB still abort.
    # G_SLICE=always-malloc makes GLib 2.74's slice allocator use malloc so ASan
    # sees those blocks too.
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ASAN_OPTIONS=detect_leaks=0 \
    G_SLICE=always-malloc \
        run_tests build-asan --timeout-multiplier 3 "$@"
else
    error "build failed in build-asan/"
fi

if ((status != 0)); then
    echo "test.sh: FAILED" >&2
fi
summary
exit "$status"
