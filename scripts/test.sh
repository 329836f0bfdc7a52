#!/usr/bin/env bash
# Runs Lifeboat's whole test suite: format and lint checks, the Rust unit and integration
# tests (against the real test upstream), and the test upstream's own tests.
# Installs what it needs first (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

say "Checking format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

if ! cargo nextest --version >/dev/null 2>&1; then
    say "Installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

say "Rust tests (unit, and integration against the test upstream)"
cargo nextest run --workspace --locked --no-fail-fast

say "Test upstream tests"
(cd tests/upstream && node --test)
