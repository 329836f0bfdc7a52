#!/usr/bin/env bash
# The demo: a local synthetic upstream FHIR server with a synthetic practice for today, and
# Lifeboat against it. With a display, the desktop app opens (log-ins and the commands that
# pull the plug on the upstream are printed); without one, the outage story plays in the
# terminal: sync, the upstream fails, offline booking, the upstream returns, reconciliation.
# Installs what it needs first (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "${1:-}" != "--headless" ]; then
    bash scripts/build-desktop.sh
    say "Starting the demo with the desktop app"
    cargo run -q -p lifeboat-cli --locked -- demo
else
    say "No display here: playing the outage story in the terminal"
    cargo run -q -p lifeboat-cli --locked -- demo --headless
fi
