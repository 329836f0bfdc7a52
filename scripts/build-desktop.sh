#!/usr/bin/env bash
# Builds the desktop app: installs (idempotently) the Debian packages for GTK/WebKit, the
# UI's npm packages, builds ui/dist and then the app binary serving it
# (target/debug/lifeboat-desktop). Used by scripts/demo.sh and scripts/e2e.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

desktop_packages=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libssl-dev pkg-config build-essential
    file xvfb xauth webkit2gtk-driver dbus-x11)
missing=()
for p in "${desktop_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "Installing Debian packages for the desktop app: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

npm_ci "$repo_root/ui"
say "Building the UI and the desktop app"
(cd ui && npm run build)
cargo build -p lifeboat-desktop --features custom-protocol --locked
