#!/usr/bin/env bash
# curtain as a drop-in for `docker run --init`: a dockerd of the suite's own
# (Debian's docker.io) with curtain's static binary as its --init-path, an
# unchanged FROM-scratch image (made with `docker import`: no registry), and
# the containers stopped the way Docker stops them.
#
#   tests/e2e_docker.sh        (as root; installs docker.io if missing)
#
# The daemon has its own data-root, exec-root, socket and pid file under a
# temporary directory; it is stopped by its pid and the directory removed on
# exit, even on failure, which removes every image and container with it.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! [ -x /usr/sbin/dockerd ] || ! [ -x /usr/bin/docker ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q docker.io gcc libc6-dev
fi
# Debian's client, matched to Debian's daemon (another may come first in PATH).
docker() { /usr/bin/docker "$@"; }

work=$(mktemp -d /tmp/curtain-docker.XXXXXX)
export DOCKER_HOST=unix://$work/d.sock
cleanup() {
    if [ -s "$work/d.pid" ]; then
        pid=$(cat "$work/d.pid")
        kill "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    # Container shims or mounts left behind by a daemon that died hard.
    grep -o " $work/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; shift; for line in "$@"; do echo "       $line"; done; failed=$((failed + 1)); }

scripts/build-static.sh --quiet || { echo "static build failed"; exit 1; }
curtain=$PWD/target/x86_64-unknown-linux-gnu/release/curtain
commit=$("$curtain" --version | sed -n 's/.* - git\.//p')

/usr/sbin/dockerd --data-root "$work/root" --exec-root "$work/x" -H "$DOCKER_HOST" --pidfile "$work/d.pid" \
    --iptables=false --ip6tables=false --bridge=none --exec-opt native.cgroupdriver=cgroupfs \
    --init-path "$curtain" > "$work/dockerd.log" 2>&1 &
for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
docker version >/dev/null 2>&1 || { echo "dockerd did not start:"; tail -20 "$work/dockerd.log"; exit 1; }

# An unchanged image: the static test app alone, no curtain, no shell.
mkdir -p "$work/rootfs"
gcc -static -O2 -o "$work/rootfs/myapp" tests/helpers/tapp.c || { echo "cannot build the test app"; exit 1; }
tar -C "$work/rootfs" -c . | docker import - curtain-e2e-app:1 >/dev/null || { echo "docker import failed"; exit 1; }

exit_event() { local logs; logs=$(docker logs "$1" 2>/dev/null); grep '"event":"exit"' <<<"$logs" | tail -1; }
field() { python3 -c 'import json,sys; v=json.loads(sys.stdin.read() or "{}").get(sys.argv[1]); print(json.dumps(v) if not isinstance(v,str) else v)' "$1"; }
state() { docker inspect "$1" --format "$2"; }
wait_ready() { for _ in $(seq 200); do docker cp "$1:/ready" "$work/ready" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
elapsed() { python3 -c "import time;print(round(time.time()-$1,2))"; }
run() { docker run -d --name "$1" --network none --init "${@:2}" >/dev/null; }

# 0. dockerd parsed curtain's --version and shows its commit.
shown=$(docker info --format '{{.InitCommit.ID}}' 2>/dev/null)
if [ -n "$commit" ] && [ "$shown" = "$commit" ] && ! grep -q "failed to parse" "$work/dockerd.log"; then
    ok "docker info shows curtain's commit ($shown) as the init version"
else fail "docker info: init commit '$shown', expected '$commit'" "$(grep -i init "$work/dockerd.log" | tail -3)"; fi

# 1. docker stop of an app that exits on SIGTERM: stopped, 143, explained in docker logs.
run stop curtain-e2e-app:1 /myapp pause /
if wait_ready stop; then
    t0=$(date +%s.%N); docker stop stop >/dev/null 2>&1; took=$(elapsed "$t0")
    ev=$(exit_event stop); start=$(docker logs stop 2>/dev/null | grep '"event":"start"')
    if [ "$(state stop '{{.State.ExitCode}}')" = 143 ] && [ "$(field reason <<<"$ev")" = stopped ] \
        && [ "$(field grace_period_from <<<"$start")" = runtime_init ] && [ "$(field pid <<<"$start")" = 1 ] \
        && python3 -c "exit(0 if $took < 8 else 1)"; then
        ok "docker run --init: curtain is PID 1 of an unchanged image; docker stop took ${took}s, 143, stopped (grace 8s as docker-init)"
    else fail "docker stop" "took=${took}s start: $start" "exit: $ev"; fi
else fail "docker stop: never ready"; fi

# 2. An app ignoring SIGTERM, docker stop -t 3 and a grace that fits (1 s):
#    curtain's SIGKILL comes first and is explained.
run grace -e CURTAIN_GRACE_PERIOD=1s curtain-e2e-app:1 /myapp ignore-term /
if wait_ready grace; then
    docker stop -t 3 grace >/dev/null 2>&1
    ev=$(exit_event grace)
    if [ "$(state grace '{{.State.ExitCode}}')" = 137 ] && [ "$(field reason <<<"$ev")" = grace_timeout ]; then
        ok "app ignoring SIGTERM, docker stop -t 3, grace 1s: 137, grace_timeout"
    else fail "grace timeout under docker stop -t 3" "exit: $ev"; fi
else fail "grace: never ready"; fi

# 3. --memory 32m and an app that allocates 200 MiB: oom_killed, and Docker agrees.
docker run --name oom --network none --init --memory 32m --memory-swap 32m curtain-e2e-app:1 /myapp hog 200 100 >/dev/null 2>&1
ev=$(exit_event oom)
if [ "$(state oom '{{.State.ExitCode}}')" = 137 ] && [ "$(field reason <<<"$ev")" = oom_killed ] \
    && [ "$(state oom '{{.State.OOMKilled}}')" = true ]; then
    ok "--memory 32m: 137, curtain says oom_killed, Docker's State.OOMKilled is true"
else fail "OOM kill" "exit: $ev OOMKilled=$(state oom '{{.State.OOMKilled}}')"; fi

# 4. Orphans made through docker exec are reaped by curtain.
run orphans curtain-e2e-app:1 /myapp pause /
if wait_ready orphans && docker exec orphans /myapp orphans 50; then
    docker stop orphans >/dev/null 2>&1
    reaped=$(exit_event orphans | field orphans_reaped)
    if [ "${reaped:-0}" -ge 50 ]; then ok "50 orphans made by docker exec were reaped (orphans_reaped=$reaped)"
    else fail "orphans through docker exec" "orphans_reaped=$reaped"; fi
else fail "orphans: never ready, or not reaped in 30 s"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
