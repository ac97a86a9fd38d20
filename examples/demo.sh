#!/usr/bin/env bash
# Build curtain and run it as PID 1 of a fresh pid namespace around a small
# app that drains for half a second on SIGTERM; then stop it the way
# Kubernetes does and show curtain's log. Needs root (for unshare).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== building curtain (cargo build --release: a minute the first time)"
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The app: a shell script that traps SIGTERM, "drains", and exits 0.
cat > "$work/app.sh" <<'APP'
#!/bin/sh
trap 'echo "app: got SIGTERM, draining"; sleep 0.5; echo "app: bye"; exit 0' TERM
echo "app: serving"
while :; do sleep 1 & wait $!; done
APP
chmod +x "$work/app.sh"

echo "== curtain as PID 1, with a pre-stop command and a 5 s grace period"
unshare --pid --fork --mount-proc target/release/curtain \
    --log-format json --grace-period 5s \
    --pre-stop "echo 'pre-stop: deregistering from the load balancer'" \
    -- "$work/app.sh" > "$work/log" 2>&1 &
sleep 1
curtain_pid=$(cat "/proc/$!/task/$!/children")
echo "== kubelet-style stop: SIGTERM to curtain (pid $curtain_pid on the host)"
kill -TERM "$curtain_pid"
wait $! && code=0 || code=$?
cat "$work/log"
echo "== curtain exited $code; its exit event, pretty-printed:"
grep '"event":"exit"' "$work/log" | python3 -m json.tool
