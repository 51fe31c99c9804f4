#!/usr/bin/env bash
# End-to-end tests of the web_drop client: builds and starts the real example
# server on a free port (2-second holds, an admin token, no rate limit, no
# demo data), then drives Debian's Chromium through playwright-core against it.
#
#   examples/web_drop/client/e2e/run.sh
#
# Environment: CHROMIUM_PATH (default /usr/bin/chromium), CARGO_TARGET_DIR
# (default <repo>/target). Screenshots and the server log land in
# examples/web_drop/client/e2e/screenshots/ (git-ignored).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENT="$(dirname "$HERE")"
ROOT="$(cd "$CLIENT/../../.." && pwd)"
OUT="$HERE/screenshots"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
TOKEN="e2e-admin-token"
HOLD_SECONDS=2

if [ ! -x "$CHROMIUM" ]; then
  echo "error: Chromium not found at $CHROMIUM; install it with 'apt-get install -y chromium' or set CHROMIUM_PATH" >&2
  exit 1
fi
if ! command -v node >/dev/null; then
  echo "error: node is not installed (Node.js 20.19 or newer is needed)" >&2
  exit 1
fi
if [ ! -d "$CLIENT/node_modules/playwright-core" ]; then
  (cd "$CLIENT" && npm ci --no-audit --no-fund)
fi

mkdir -p "$OUT"
cd "$ROOT"
cargo build --example web_drop
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/web_drop"
if [ ! -x "$BIN" ]; then
  echo "error: example binary not found at $BIN" >&2
  exit 1
fi

PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
BASE="http://127.0.0.1:$PORT"
LOG="$OUT/server.log"

"$BIN" --bind "127.0.0.1:$PORT" --hold-seconds "$HOLD_SECONDS" --admin-token "$TOKEN" --rate-limit 0 --sign-ins-per-minute 0 --no-demo >"$LOG" 2>&1 &
SERVER_PID=$!
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT

# Wait up to 60 s for the health check; fail loudly with the log otherwise.
if ! node -e "
  const deadline = Date.now() + 60000;
  (async () => {
    while (Date.now() < deadline) {
      try { const r = await fetch('$BASE/api/health'); if (r.ok) process.exit(0); } catch {}
      await new Promise((r) => setTimeout(r, 250));
    }
    process.exit(1);
  })();
"; then
  echo "error: web_drop did not become healthy on $BASE; server log:" >&2
  cat "$LOG" >&2
  exit 1
fi

cd "$CLIENT"
WEB_DROP_URL="$BASE" ADMIN_TOKEN="$TOKEN" HOLD_SECONDS="$HOLD_SECONDS" CHROMIUM_PATH="$CHROMIUM" \
  node --test --test-concurrency=1 e2e/web_drop.test.mjs
