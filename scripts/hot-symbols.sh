#!/bin/sh
# Regenerate scripts/hot-symbols.txt, the functions scripts/build-static.sh
# links first: every function the static binary executes, as PID 1 of a pid
# namespace under valgrind's callgrind, while it
#   1. runs `curtain -- true` with no CURTAIN_* variable,
#   2. does the same with the production variables of Dockerfile.example,
#   3. supervises a shell that leaves an orphan, forwards SIGUSR1, and stops
#      on SIGTERM (the settle read, reaping, the shutdown and the exit event),
#   4. runs `curtain -- true` as an ordinary process (a subreaper),
#   5. stops an idle app on SIGTERM; the profile is cut (a dump) where the
#      stop signal is about to go out (Sequencer::deliver_stop), and the part
#      after the cut is the shutdown path, from the stop signal to the exit
#      (the few functions between SIGTERM and the cut are not in it).
# The list is ordered so that each path's code is contiguous: start-up only,
# then what start-up and the shutdown share, then shutdown only, then the
# rest (the settle read, reaping orphans, forwarding). A stop touches 28
# pages of text instead of the 36 it touched with one order for all, which
# made it 7-30 us faster (README, Performance).
# Run it (as root, with valgrind) after a change that renames or adds
# functions on those paths; a stale list only costs speed, never behaviour.
set -eu
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "hot-symbols: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
work=$(mktemp -d /tmp/curtain-hot.XXXXXX)
# On any exit, also stop what a failed run left behind: the profiled curtain
# (as PID 1 its namespace, and the app, die with it).
trap 'pkill -KILL -f "callgrind-out-file=$work/" 2>/dev/null || :; rm -rf "$work"' EXIT
# dash runs no EXIT trap when a signal ends it: make the signals exits.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
export CARGO_TARGET_DIR="$PWD/target/hot-symbols" CARGO_PROFILE_RELEASE_STRIP=false
RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
    cargo build --release --locked --quiet --target x86_64-unknown-linux-gnu
bin=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/curtain

# grind LOG [VAR=VALUE...] valgrind curtain ARGS...: as PID 1, clean env.
# LOG is where curtain's lines go, each with its own write path: a pipe (a
# container runtime's), a file (the benchmark's), or /dev/null.
grind() {
    log=$1; shift
    set -- unshare --pid --fork --mount-proc env -i PATH=/usr/bin:/bin "$@"
    case $log in
    pipe) "$@" 2>&1 | cat >/dev/null ;;
    file) "$@" >"$work/log" 2>&1 ;;
    *) "$@" >/dev/null 2>&1 ;;
    esac
}
# profiled MARKER OUT: once the app has written MARKER (and a second more),
# the pid of the valgrind that profiles into OUT: the newest process naming
# it (the older one is unshare).
profiled() {
    i=0
    until [ -e "$1" ]; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "hot-symbols: the app never started" >&2; exit 1; }
        sleep 0.1
    done
    sleep 1
    pgrep -n -f "callgrind-out-file=$2"
}
vg="valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file"
grind file $vg="$work/1.out" "$bin" -- /bin/true
grind pipe CURTAIN_GRACE_PERIOD=25s CURTAIN_PRE_STOP_SLEEP=5s $vg="$work/2.out" "$bin" -- /bin/true
# 3: the app ignores SIGUSR1 (it is forwarded), leaves an orphan for curtain
# to reap, and writes a marker once it runs; SIGTERM then ends it.
grind pipe $vg="$work/3.out" "$bin" -- /bin/sh -c \
    "trap '' USR1; (/bin/true &); : >$work/ready; exec /bin/sleep 60" &
pid=$(profiled "$work/ready" "$work/3.out")
kill -USR1 "$pid"; sleep 1; kill -TERM "$pid"
wait
# 4: not PID 1 (a subreaper under another init).
env -i PATH=/usr/bin:/bin $vg="$work/4.out" "$bin" -- /bin/true >/dev/null 2>&1
# 5: the shutdown path alone.
grind pipe $vg="$work/5.out" --dump-before='*Sequencer12deliver_stop*' \
    "$bin" -- /bin/sh -c ": >$work/ready5; exec /bin/sleep 60" &
pid=$(profiled "$work/ready5" "$work/5.out")
kill -TERM "$pid"
wait

# names FILE...: the functions of callgrind profiles, in first-use order.
# fn=(id) name on a name's first use ('N marks recursion). Rust names lose
# what changes between builds and toolchains: a legacy name's hash, a v0
# name's crate disambiguators (Cs<base 62>_), as scripts/build-static.sh
# does. glibc picks a string function's variant by CPU (valgrind's CPU is
# not the host's): every variant of those used.
names() {
    for f in "$@"; do
        sed -n 's/^c\{0,1\}fn=([0-9]*) \(.*\)$/\1/p' "$f"
    done | grep -v -e '^0x' -e '^(below main)' |
        sed -E -e "s/'[0-9]+$//" -e 's/17h[0-9a-f]{16}E$/E/' -e 's/Cs[0-9A-Za-z]+_/C/g' \
            -e 's/^(__[a-z0-9]+(_l|_chk)?)_(sse|ssse|avx|evex|erms|unaligned)[a-z0-9_]*$/\1_*/' |
        awk '!seen[$0]++'
}
for f in 1 2 3 4 5; do
    [ -s "$work/$f.out" ] || { echo "hot-symbols: scenario $f left no profile" >&2; exit 1; }
done
# Without the cut (deliver_stop renamed or inlined) 5.out would hold the whole run.
[ -s "$work/5.out.1" ] || { echo "hot-symbols: scenario 5 was never cut at Sequencer::deliver_stop" >&2; exit 1; }
names "$work/1.out" "$work/2.out" "$work/4.out" >"$work/start"
# The exit, which valgrind does not show, is on the shutdown path too.
{ names "$work/5.out"; printf '%s\n' _exit _Exit; } >"$work/stop"
names "$work/3.out" >"$work/other"
grep -q report6finish "$work/stop" || { echo "hot-symbols: the shutdown profile lacks report::finish" >&2; exit 1; }
# grep's 1 (no line) is an answer, its 2 (an error) is not.
pick() { grep "$@" || [ $? -eq 1 ]; }
{
    echo "# Generated by scripts/hot-symbols.sh: the functions the static binary runs"
    echo "# on its common paths, hot first; read by scripts/build-static.sh. A name"
    echo "# ending in * stands for every function whose name starts with the rest."
    # Start-up only.
    pick -vxF -f "$work/stop" "$work/start"
    # What valgrind does not show, all of it start-up: the CPU's cache
    # sizes, read at start-up by vendor (valgrind runs one); memset and
    # memmove, which it replaces; the C runtime's constructor and
    # destructor; the spawn's child, which valgrind runs as a fork it does
    # not follow; the setup of the vDSO, which valgrind does not give its
    # guest.
    printf '%s\n' '__memset_*' '__memmove_*' '__strcmp_*' frame_dummy __do_global_dtors_aux 'handle_amd*' 'handle_intel*' 'handle_zhaoxin*' 'intel_check_word*' 'get_common_cache_info*' \
        '_ZN7curtain3sys11spawn_child*' '_ZN7curtain3sys22child_prepare_and_exec*' sigismember __libc_sigaction __sigaction sigaction \
        __setpgid setpgid tcsetpgrp __getpid getpid __sigprocmask sigprocmask __chdir chdir __dup2 dup2 __close close \
        __libc_open64 open64 __execve execve \
        _dl_new_object _dl_add_to_namespace_list _dl_setup_hash _dl_lookup_symbol_x do_lookup_x check_match \
        _dl_name_match_p __minimal_malloc __minimal_calloc ___pthread_mutex_lock __pthread_mutex_lock \
        pthread_mutex_lock ___pthread_mutex_unlock __pthread_mutex_unlock pthread_mutex_unlock \
        __pthread_mutex_unlock_usercnt
    # Start-up and shutdown, then shutdown only, then the rest.
    pick -xF -f "$work/stop" "$work/start"
    pick -vxF -f "$work/start" "$work/stop"
    pick -vxF -f "$work/start" -f "$work/stop" "$work/other"
} >"$work/list"
# Not a pipe: under set -e a failing grep in the group must stop the script.
awk '/^#/ || !seen[$0]++' "$work/list" >scripts/hot-symbols.txt.new
mv scripts/hot-symbols.txt.new scripts/hot-symbols.txt
echo "hot-symbols: $(grep -vc '^#' scripts/hot-symbols.txt) functions in scripts/hot-symbols.txt"
