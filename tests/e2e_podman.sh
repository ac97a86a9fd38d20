#!/usr/bin/env bash
# curtain in a real container runtime: podman 4.3 + runc + buildah (Debian 12),
# curtain's own image (the root Dockerfile) and a FROM-scratch app image made
# from it by Dockerfile.example, stopped the way Kubernetes and Docker stop
# containers (SIGTERM -> grace -> SIGKILL), and podman's --init.
#
#   tests/e2e_podman.sh        (as root; installs podman/buildah/runc if missing)
#
# Host specifics: crun cannot run on a host with the hybrid cgroup layout (v1
# controllers plus cgroup2 at /sys/fs/cgroup/unified), and podman's default
# rlimits are refused where the hard RLIMIT_NOFILE is low and CAP_SYS_RESOURCE
# is missing, so a containers.conf pins runc, cgroupfs and the ulimits. No
# registry: the image is FROM scratch. Everything this suite creates has a
# unique name and is removed on exit, even on failure.
#
# Timings: exact deadlines are checked by curtain's unit tests. Here a lower
# bound is what curtain guarantees, and an upper bound only separates "curtain
# acted" from "podman's own 10 s timeout ran out", with seconds to spare for
# podman's overhead on a loaded machine.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if ! command -v podman >/dev/null || ! command -v buildah >/dev/null || ! command -v runc >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        podman buildah runc gcc libc6-dev
fi

work=$(mktemp -d /tmp/curtain-podman.XXXXXX)
tag="localhost/curtain-e2e:$$"
curtain_tag="localhost/curtain-e2e-curtain:$$"
apptag="localhost/curtain-e2e-app:$$"
tinitag="localhost/curtain-e2e-tini:$$"
prefix="curtain-e2e-$$"
containers=()
cleanup() {
    for c in "${containers[@]}"; do podman rm -f "$c" >/dev/null 2>&1; done
    podman rmi -f "$tag" "$apptag" "$curtain_tag" "$tinitag" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

n=$(ulimit -Hn)
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
    "$n" "$n" > "$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf

passed=0
failed=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; shift; for line in "$@"; do echo "       $line"; done; failed=$((failed + 1)); }

# --- images, built as the README says: curtain's own image from the root
# Dockerfile (its binary taken from the context: the Rust build stage needs a
# registry), then the user's image from Dockerfile.example, with the test app
# as `myapp` ---
scripts/build-static.sh --quiet || { echo "static build failed"; exit 1; }
buildah bud -q --build-arg CURTAIN_BINARY=prebuilt -t "$curtain_tag" . >/dev/null \
    || { echo "buildah bud of the Dockerfile failed"; exit 1; }
mkdir "$work/ctx"
cp target/x86_64-unknown-linux-gnu/release/curtain "$work/ctx/curtain"
gcc -static -O2 -o "$work/ctx/myapp" tests/helpers/tapp.c || { echo "cannot build the test app"; exit 1; }
buildah bud -q -f Dockerfile.example --build-arg CURTAIN_IMAGE="$curtain_tag" -t "$tag" "$work/ctx" >/dev/null \
    || { echo "buildah bud of Dockerfile.example failed"; exit 1; }
if [ "$(podman image inspect "$curtain_tag" --format '{{len .RootFS.Layers}}')" != 1 ] \
    || ! podman run --rm --network=none "$curtain_tag" /curtain --version >/dev/null 2>&1; then
    echo "curtain's image is not one layer holding /curtain"; exit 1
fi

# The image's defaults (25 s grace, 5 s pre-stop sleep) are for production;
# the cases below set what they test.
run() { # NAME [podman run options...] -- ARGS...
    local name=$prefix-$1; shift
    containers+=("$name")
    podman run -d --name "$name" --network=none "$@" >/dev/null
}
# (logs are captured before grep: `podman logs | grep -q` fails under pipefail
# when grep stops reading early)
exit_event() { local logs; logs=$(podman logs "$1" 2>/dev/null); grep '"event":"exit"' <<<"$logs" | tail -1; }
field() { python3 -c 'import json,sys; v=json.loads(sys.stdin.read() or "{}").get(sys.argv[1]); print(json.dumps(v) if not isinstance(v,str) else v)' "$1"; }
state() { podman inspect "$1" --format "$2"; }
wait_ready() { # until the container's app has written /ready
    for _ in $(seq 200); do podman cp "$1:/ready" "$work/ready" >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}
elapsed() { python3 -c "import time;print(round(time.time()-$1,2))"; }

# 1. An app that exits on SIGTERM: a quick, expected stop, well before
#    podman's 10 s timeout (and the image's 25 s grace period).
c=$prefix-stop
run stop -e CURTAIN_PRE_STOP_SLEEP=0 -- "$tag" /myapp pause /
if wait_ready "$c"; then
    t0=$(date +%s.%N); podman stop -t 10 "$c" >/dev/null 2>&1; took=$(elapsed "$t0")
    ev=$(exit_event "$c"); code=$(state "$c" '{{.State.ExitCode}}')
    if [ "$code" = 143 ] && [ "$(field reason <<<"$ev")" = stopped ] && [ "$(field expected <<<"$ev")" = true ] \
        && python3 -c "exit(0 if $took < 8 else 1)"; then
        ok "SIGTERM-handling app: podman stop took ${took}s, exit 143, reason stopped, expected true"
    else fail "SIGTERM-handling app" "exit=$code took=${took}s" "event: $ev"; fi
else fail "SIGTERM-handling app: never ready"; fi

# 2. An app that ignores SIGTERM, curtain's grace (2 s) shorter than podman's (10 s):
#    curtain's SIGKILL comes first (not before 2 s, and before podman's 10 s)
#    and is explained; podman never escalates.
c=$prefix-grace
run grace -e CURTAIN_PRE_STOP_SLEEP=0 -e CURTAIN_GRACE_PERIOD=2s -- "$tag" /myapp ignore-term /
if wait_ready "$c"; then
    t0=$(date +%s.%N); out=$(podman stop -t 10 "$c" 2>&1); took=$(elapsed "$t0")
    ev=$(exit_event "$c"); code=$(state "$c" '{{.State.ExitCode}}')
    if [ "$code" = 137 ] && [ "$(field reason <<<"$ev")" = grace_timeout ] && ! grep -q "resorting to SIGKILL" <<<"$out" \
        && python3 -c "exit(0 if 1.9 < $took < 9 else 1)" && grep -q '"event":"grace_timeout"' <<<"$(podman logs "$c" 2>/dev/null)"; then
        ok "app ignoring SIGTERM: curtain killed it after ${took}s (grace 2s < podman's 10s), exit 137, grace_timeout, no podman escalation"
    else fail "app ignoring SIGTERM" "exit=$code took=${took}s podman: $out" "event: $ev"; fi
else fail "app ignoring SIGTERM: never ready"; fi

# 3. The opposite: curtain's grace (10 s) longer than podman's (2 s). podman
#    SIGKILLs curtain itself: 137 and no exit event. curtain's last word,
#    written 100 ms into the shutdown, explains it: it is the last log line,
#    and the termination message holds it.
c=$prefix-late
: > "$work/late-termination-log"
run late -e CURTAIN_PRE_STOP_SLEEP=0 -e CURTAIN_GRACE_PERIOD=10s -v "$work/late-termination-log:/dev/termination-log" \
    -- "$tag" /myapp ignore-term /
if wait_ready "$c"; then
    t0=$(date +%s.%N); out=$(podman stop -t 2 "$c" 2>&1); took=$(elapsed "$t0")
    ev=$(exit_event "$c"); code=$(state "$c" '{{.State.ExitCode}}')
    logs=$(podman logs "$c" 2>/dev/null); last=$(tail -1 <<<"$logs")
    msg=$(head -1 "$work/late-termination-log")
    if [ "$code" = 137 ] && [ -z "$ev" ] && [ "$(field event <<<"$last")" = last_word ] \
        && [ "$(field cause <<<"$last")" = killed_during_shutdown ] \
        && grep -q "^killed_during_shutdown: .*runtime's own deadline is shorter than curtain's grace period" <<<"$msg"; then
        ok "grace longer than podman's: podman SIGKILLed curtain after ${took}s, exit 137; the last log line and the termination message say the runtime cut the grace short"
    else fail "grace longer than podman's" "exit=$code took=${took}s podman: $out" "last line: $last" "termination message: $msg"; fi
else fail "grace longer than podman's: never ready"; fi

# 4. A pre-stop command with quoted arguments and --pre-stop-sleep, in an
#    image that has no shell.
c=$prefix-prestop
run prestop -e CURTAIN_PRE_STOP_SLEEP=1s -e "CURTAIN_PRE_STOP=/myapp args /proc/self/fd/1 'drain step' done" -- "$tag" /myapp record /
if wait_ready "$c"; then
    podman stop -t 10 "$c" >/dev/null 2>&1
    logs=$(podman logs "$c" 2>/dev/null); ev=$(exit_event "$c")
    stop_ms=$(grep '"event":"stop_signal_sent"' <<<"$logs" | field elapsed_ms)
    if grep -qx 'drain step' <<<"$logs" && grep -q '"event":"pre_stop".*"exit_code":0' <<<"$logs" \
        && [ "${stop_ms:-0}" -ge 1000 ] && [ "$(field reason <<<"$ev")" = stopped ] && [ "$(state "$c" '{{.State.ExitCode}}')" = 0 ] \
        && ! podman run --rm --network=none --entrypoint /bin/sh "$tag" -c true >/dev/null 2>&1; then
        ok "pre-stop command ran without a shell, stop signal after ${stop_ms}ms of pre-stop steps, exit 0"
    else fail "pre-stop in a shell-less image" "stop_ms=$stop_ms" "$logs"; fi
else fail "pre-stop: never ready"; fi

# 5. Zombies: orphans made through `podman exec` are reaped by curtain.
c=$prefix-zombies
run zombies -e CURTAIN_PRE_STOP_SLEEP=0 -- "$tag" /myapp pause /
if wait_ready "$c"; then
    if podman exec "$c" /myapp orphans 50; then
        podman stop -t 10 "$c" >/dev/null 2>&1
        reaped=$(exit_event "$c" | field orphans_reaped)
        if [ "${reaped:-0}" -ge 50 ]; then ok "50 orphans made by podman exec were reaped by curtain (orphans_reaped=$reaped)"
        else fail "orphans through podman exec" "orphans_reaped=$reaped"; fi
    else fail "orphans through podman exec: still there after 30 s"; fi
else fail "zombies: never ready"; fi

# 6. OOM: --memory 32m, an app that allocates 200 MiB. curtain says oom_killed;
#    podman's own OOMKilled needs the StaticDir cwd trick on podman 4.3.
c=$prefix-oom
containers+=("$c")
podman create --name "$c" --network=none --memory 32m --memory-swap 32m "$tag" /myapp hog 200 100 >/dev/null
(cd "$(podman inspect "$c" --format '{{.StaticDir}}')" && podman start -a "$c" >/dev/null 2>&1)
ev=$(exit_event "$c"); code=$(state "$c" '{{.State.ExitCode}}'); podman_oom=$(state "$c" '{{.State.OOMKilled}}')
if [ "$code" = 137 ] && [ "$(field reason <<<"$ev")" = oom_killed ]; then
    ok "--memory 32m: exit 137, curtain says oom_killed (podman's OOMKilled: $podman_oom)"
else fail "OOM kill" "exit=$code podman OOMKilled=$podman_oom" "event: $ev"; fi

# 7. The termination message, where Kubernetes reads it.
c=$prefix-termlog
: > "$work/termination-log"
run termlog -e CURTAIN_PRE_STOP_SLEEP=0 -e CURTAIN_GRACE_PERIOD=1s -v "$work/termination-log:/dev/termination-log" -- "$tag" /myapp ignore-term /
if wait_ready "$c"; then
    podman stop -t 10 "$c" >/dev/null 2>&1
    msg=$(head -1 "$work/termination-log")
    if [[ "$msg" == "grace_timeout: app ignored SIGTERM for "*"s and was killed (137)" ]] \
        && sed -n 2p "$work/termination-log" | python3 -c 'import json,sys; assert json.load(sys.stdin)["reason"]=="grace_timeout"'; then
        ok "termination message in /dev/termination-log: '$msg'"
    else fail "termination message" "$(cat "$work/termination-log")"; fi
else fail "termination log: never ready"; fi

echo
# 8. A drop-in for `podman run --init`: an unchanged image (the test app
#    alone, imported: no curtain in it), curtain as the --init-path, which
#    podman runs as /run/podman-init: PID 1, the runtime-init grace (8 s).
mkdir -p "$work/approot"
cp "$work/ctx/myapp" "$work/approot/myapp"
tar -C "$work/approot" -c . | podman import -q - "$apptag" >/dev/null
c=$prefix-init
containers+=("$c")
podman run -d --name "$c" --network=none --init --init-path "$work/ctx/curtain" "$apptag" /myapp pause / >/dev/null
if wait_ready "$c"; then
    podman stop -t 10 "$c" >/dev/null 2>&1
    logs=$(podman logs "$c" 2>/dev/null); ev=$(exit_event "$c"); start=$(grep '"event":"start"' <<<"$logs")
    if [ "$(state "$c" '{{.State.ExitCode}}')" = 143 ] && [ "$(field reason <<<"$ev")" = stopped ] \
        && [ "$(field pid <<<"$start")" = 1 ] && [ "$(field grace_period_from <<<"$start")" = runtime_init ]; then
        ok "podman run --init --init-path: curtain is PID 1 of an unchanged image, 143, stopped, grace 8s as podman-init"
    else fail "podman run --init" "start: $start" "exit: $ev"; fi
else fail "podman run --init: never ready"; fi

# 9. The restricted Pod Security profile, as examples/kubernetes.yaml runs it:
#    non-root, read-only root, no capabilities, no privilege escalation.
#    curtain stops the app and writes its termination message.
c=$prefix-restricted
containers+=("$c")
install -m 666 /dev/null "$work/restricted-termination-log"
podman run -d --name "$c" --network=none --user 65532:65532 --read-only --cap-drop=ALL \
    --security-opt no-new-privileges --tmpfs /run -e CURTAIN_PRE_STOP_SLEEP=0 \
    -v "$work/restricted-termination-log:/dev/termination-log" "$tag" /myapp pause /run >/dev/null
ready=
for _ in $(seq 200); do podman exec "$c" /myapp exit 0 >/dev/null 2>&1 && podman cp "$c:/run/ready" "$work/ready" >/dev/null 2>&1 && { ready=1; break; }; sleep 0.05; done
if [ -n "$ready" ]; then
    podman stop -t 10 "$c" >/dev/null 2>&1
    ev=$(exit_event "$c"); msg=$(head -1 "$work/restricted-termination-log")
    if [ "$(state "$c" '{{.State.ExitCode}}')" = 143 ] && [ "$(field reason <<<"$ev")" = stopped ] \
        && [[ "$msg" == "stopped: "* ]]; then
        ok "restricted profile (uid 65532, read-only root, no capabilities): 143, stopped, termination message '$msg'"
    else fail "restricted profile" "exit: $ev" "termination message: $msg"; fi
else fail "restricted profile: never ready" "$(podman logs "$c" 2>&1 | tail -3)"; fi

# 10. An image made for tini, unchanged but for the binary: curtain installed
#     as /tini under ENTRYPOINT ["/tini", "-g", "--"].
mkdir "$work/tini"
cp "$work/ctx/curtain" "$work/tini/tini"
cp "$work/ctx/myapp" "$work/tini/myapp"
printf 'FROM scratch\nCOPY tini myapp /\nENTRYPOINT ["/tini", "-g", "--"]\nCMD ["/myapp", "pause", "/"]\n' > "$work/tini/Dockerfile"
c=$prefix-tini
if buildah bud -q -t "$tinitag" "$work/tini" >/dev/null; then
    containers+=("$c")
    podman run -d --name "$c" --network=none "$tinitag" >/dev/null
    if wait_ready "$c"; then
        version=$(podman exec "$c" /tini --version 2>&1)
        podman stop -t 10 "$c" >/dev/null 2>&1
        logs=$(podman logs "$c" 2>/dev/null); ev=$(exit_event "$c"); start=$(grep '"event":"start"' <<<"$logs")
        if [ "$(state "$c" '{{.State.ExitCode}}')" = 143 ] && [ "$(field reason <<<"$ev")" = stopped ] \
            && [ "$(field pid <<<"$start")" = 1 ] && [[ "$version" == "curtain version "* ]]; then
            ok "an image built for tini (ENTRYPOINT [\"/tini\", \"-g\", \"--\"]) runs curtain unchanged: PID 1, 143, stopped"
        else fail "tini's ENTRYPOINT" "version: $version" "start: $start" "exit: $ev"; fi
    else fail "tini's ENTRYPOINT: never ready" "$(podman logs "$c" 2>&1 | tail -3)"; fi
else fail "tini's ENTRYPOINT: buildah bud failed"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
