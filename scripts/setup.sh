#!/usr/bin/env bash
# Installs what building and testing Lifeboat needs on Debian 12, idempotently.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again and again.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: a C toolchain and OpenSSL headers for SQLCipher; poppler-utils to read the
# printed PDFs back in tests; Node.js for the test upstream.
apt_packages=(build-essential pkg-config libssl-dev ca-certificates poppler-utils)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
    say "Installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The test upstream (Medplum 4.5) needs Node.js 20.19 or newer.
node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number); console.log(a>20||(a===20&&b>=19)?1:0)')
if [ "$node_ok" != 1 ]; then
    echo "Node.js $(node --version) is too old: the test upstream needs 20.19 or newer (Debian 12's own nodejs is 18)." >&2
    echo "Install Node.js 20 or 22 (e.g. from NodeSource) and run this again." >&2
    exit 1
fi

# Rust: rustup's stable toolchain (Debian 12's rustc is too old for edition 2024).
if ! command -v cargo >/dev/null 2>&1; then
    echo "Rust is not installed: install it with rustup (https://rustup.rs), then run this again." >&2
    exit 1
fi

# `npm ci` in a folder, pinned by its package-lock.json; skipped while node_modules
# matches the lock file. Extra arguments go to npm.
npm_ci() {
    local dir="$1"; shift
    local stamp="$dir/node_modules/.lifeboat-lock"
    if ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
        say "Installing npm packages in ${dir#"$repo_root"/}"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error "$@")
        cp "$dir/package-lock.json" "$stamp"
    fi
}

# The test upstream's npm packages.
npm_ci "$repo_root/tests/upstream" --ignore-scripts
