#!/usr/bin/env bash
# End-to-end tests of the real desktop app: builds the UI and the Tauri binary, then drives
# the app in a real window under Xvfb through tauri-driver (WebDriver) against the real test
# upstream, with a synthetic practice anchored on tomorrow. Screenshots and logs go to
# artifacts/e2e/. Installs what it needs first (Debian packages, tauri-driver, npm packages).
#
#   scripts/e2e.sh              # everything
#   E2E_SKIP_BUILD=1 scripts/e2e.sh   # reuse the last build (while iterating on tests)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
source scripts/setup.sh

artifacts="$repo/artifacts/e2e"
mkdir -p "$artifacts"
rm -rf "${artifacts:?}"/*

# ---- Debian packages (WebKitGTK, Xvfb, WebKitWebDriver), the UI, the app: see build-desktop.sh
# tauri-driver 2.1 (3.0 alphas exist: pinned).
if ! tauri-driver --help >/dev/null 2>&1 || [ "$(cargo install --list | grep -c '^tauri-driver v2.1.0:')" = 0 ]; then
    say "Installing tauri-driver 2.1.0"
    cargo install tauri-driver --version 2.1.0 --locked
fi

# ---- npm packages, pinned by their lock files ---------------------------------------------
# WebDriver client packages must not try to download browsers or drivers.
npm_ci "$repo/tests/e2e" --ignore-scripts

# ---- Build: the UI, then the app serving it (custom-protocol) ------------------------------
app="${CARGO_TARGET_DIR:-$repo/target}/debug/lifeboat-desktop"
if [ "${E2E_SKIP_BUILD:-}" != 1 ] || [ ! -x "$app" ]; then
    start=$(date +%s)
    bash scripts/build-desktop.sh
    echo "UI and desktop app built in $(( $(date +%s) - start )) s" >&2
    say "UI unit tests"
    (cd ui && npx vitest run)
    # The shell's own checks live here, not in the core's test run, because they need
    # GTK/WebKit (installed by build-desktop.sh).
    say "Desktop shell: format, lints, unit tests"
    cargo fmt -p lifeboat-desktop -- --check
    cargo clippy -p lifeboat-desktop --features custom-protocol --all-targets --locked -- -D warnings
    cargo test -p lifeboat-desktop --features custom-protocol --locked
fi

# ---- A practice for tomorrow, and the processes the tests need --------------------------------
work="$(mktemp -d /tmp/lifeboat-e2e.XXXXXX)"
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    exec 3>&- 2>/dev/null || true
    cp -r "$work"/*.log "$work/app-logs" "$artifacts/" 2>/dev/null || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT INT TERM

# Anchored on tomorrow (London), so the appointments the story changes (John Smith's 09:00 on
# the first working day from the anchor) are ahead of the clock whatever time the tests run:
# the core rightly refuses to change an appointment that has started.
say "Generating a practice anchored on tomorrow"
cargo run -q -p lifeboat-fixtures --locked -- --out "$work/practice" --anchor "$(TZ=Europe/London date -d tomorrow +%F)" >/dev/null

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# The test upstream: it exits when the pipe on fd 3 closes, so it never outlives this script.
mkfifo "$work/upstream.in"
upstream_port=$(free_port)
node tests/upstream/server.mjs --fixtures "$work/practice" --port "$upstream_port" --exit-with-stdin \
    <"$work/upstream.in" >"$work/upstream.ready" 2>"$work/upstream.log" &
pids+=($!)
exec 3>"$work/upstream.in"
for _ in $(seq 100); do [ -s "$work/upstream.ready" ] && break; sleep 0.1; done
[ -s "$work/upstream.ready" ] || { echo "the test upstream did not start" >&2; cat "$work/upstream.log" >&2; exit 1; }
upstream_base=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).base)' "$work/upstream.ready")

# Xvfb on a free display.
display=99
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do display=$((display + 1)); done
Xvfb ":$display" -screen 0 1280x1024x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
export DISPLAY=":$display"
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$display" ] && break; sleep 0.1; done

for port in 4444 4445; do
    if node -e 'require("net").connect(+process.argv[1],"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))' "$port"; then
        echo "port $port is in use: stop the other tauri-driver or WebKitWebDriver first" >&2
        exit 1
    fi
done

# The app's config and environment, inherited through tauri-driver: its own cache, this
# upstream, and health checks quick enough that a test can wait for Offline and back.
cat >"$work/lifeboat.toml" <<'TOML'
[health]
probe_every_seconds = 1
probe_timeout_seconds = 1
min_dwell_seconds = 3
TOML
export LIFEBOAT_CONFIG="$work/lifeboat.toml"
export LIFEBOAT_DB="$work/lifeboat.db"
export LIFEBOAT_UPSTREAM="$upstream_base"
export LIFEBOAT_LOG_DIR="$work/app-logs"
export NO_AT_BRIDGE=1
# A private D-Bus session bus (the single-instance plugin registers its name there).
eval "$(dbus-launch --sh-syntax)"
pids+=("$DBUS_SESSION_BUS_PID")
tauri-driver --port 4444 >"$work/tauri-driver.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    node -e 'fetch("http://127.0.0.1:4444/status").then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' && break
    sleep 0.2
done

say "Running the end-to-end tests (app: $app, upstream: $upstream_base, display: $DISPLAY)"
E2E_APP="$app" E2E_UPSTREAM="$upstream_base" E2E_PRACTICE="$work/practice" E2E_ARTIFACTS="$artifacts" \
    node --test --test-concurrency=1 --test-reporter=spec tests/e2e/
