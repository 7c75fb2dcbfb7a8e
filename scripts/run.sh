#!/usr/bin/env bash
# Install what is missing, build, and start arbiterd in the foreground on the
# default configuration (data/arbiter.conf: SQLite, replay feed, jsonl sink).
# Extra arguments go to arbiterd, e.g. `bash scripts/run.sh --check-config`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# Same PATH rule as scripts/test.sh (both configure build/): Debian's python3
# first, not a pyenv shim.
export PATH="/usr/bin:/bin:$PATH"

bash scripts/install-deps.sh </dev/null

if [[ -f build/meson-private/coredata.dat ]]; then
    meson setup --reconfigure build || meson setup --wipe build
else
    meson setup build
fi
ninja -C build

exec build/runtime/arbiterd --config data/arbiter.conf "$@"
