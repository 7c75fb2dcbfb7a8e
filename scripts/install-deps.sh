#!/usr/bin/env bash
# Install the Debian packages listed in scripts/deps.txt that are not installed yet.
#
# Idempotent: when everything is present it only runs dpkg-query and prints one line.
# apt-get update runs only when something is missing. Works as root; otherwise
# uses sudo. Meant for Debian 12 (bookworm).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deps_file="${1:-$here/deps.txt}"

if [[ ! -r "$deps_file" ]]; then
    echo "install-deps: cannot read $deps_file" >&2
    exit 1
fi

# one package per line; '#' starts a comment; blank lines ignored
set -f   # no globbing when splitting lines into words
wanted=()
while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%%#*}"
    for word in $line; do
        wanted+=("$word")
    done
done < "$deps_file"
set +f

if ((${#wanted[@]} == 0)); then
    echo "install-deps: $deps_file lists no packages"
    exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: dpkg-query/apt-get not found; this script targets Debian 12." >&2
    echo "install-deps: install these packages by hand: ${wanted[*]}" >&2
    exit 1
fi

missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#wanted[@]} packages from $(basename "$deps_file") are installed"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: not root and sudo is not available; install them as root" >&2
    exit 1
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
# wait for another apt/dpkg (e.g. unattended-upgrades on a fresh machine) instead of failing
apt_opts=(-q -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get "${apt_opts[@]}" update -qq
# Recommends are installed on purpose: gcc recommends libc6-dev, libsoup
# recommends glib-networking (TLS), curl recommends ca-certificates.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get "${apt_opts[@]}" install -y -qq \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >/dev/null

# check that apt really installed everything (a typo in deps.txt is an error)
still=()
for pkg in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "installed" ]] || still+=("$pkg")
done
if ((${#still[@]} > 0)); then
    echo "install-deps: still not installed after apt-get: ${still[*]}" >&2
    exit 1
fi
echo "install-deps: done"
