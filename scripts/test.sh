#!/usr/bin/env bash
# Runs Lifeboat's whole test suite: format and lint checks, the Rust unit and integration
# tests (against the real test upstream), the test upstream's own tests, the UI's unit
# tests and the desktop app end to end under Xvfb.
# Installs what it needs first (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

say "Checking format and lints"
cargo fmt --all -- --check
# The desktop shell needs GTK/WebKit: its checks run with the end-to-end tests below.
cargo clippy --workspace --exclude lifeboat-desktop --all-targets --locked -- -D warnings

if ! cargo nextest --version >/dev/null 2>&1; then
    say "Installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

say "Rust tests (unit, and integration against the test upstream)"
cargo nextest run --workspace --exclude lifeboat-desktop --locked --no-fail-fast

say "Test upstream tests"
(cd tests/upstream && node --test)

say "The desktop app, end to end, in a real window under Xvfb"
bash scripts/e2e.sh
