#!/usr/bin/env bash
# curtain in a real Linux kernel booted with cgroup v2 only (qemu, software
# emulation), where every current distribution and Kubernetes node is.
#
#   tests/vm/run.sh        (as root; installs qemu, the kernel and busybox if missing)
#
# Boot 1 runs the scenarios of tests/vm/init (busybox sh as the VM's init):
# OOM kills with memory.oom.group 0 and 1, pids.max, a refused spawn, a stop
# from outside the pid namespace, a grace timeout. Boot 2 makes curtain the
# kernel's own PID 1 (rdinit=/curtain), the micro-VM case. Results come back
# on the serial console and are checked here; a scenario that does not report
# is a failure, and each boot has a hard time limit. Everything is built in a
# temporary directory, removed on exit.
set -uo pipefail
cd "$(dirname "$0")/../.."

if ! command -v qemu-system-x86_64 >/dev/null || ! [ -x /bin/busybox ] || ! ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        qemu-system-x86 linux-image-cloud-amd64 busybox-static gcc libc6-dev cpio
fi
kernel=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1)
if [ -z "$kernel" ] || ! command -v qemu-system-x86_64 >/dev/null; then
    echo "skipped: no qemu-system-x86_64 or no linux-image-cloud-amd64 kernel"
    exit 0
fi

work=$(mktemp -d /tmp/curtain-vm.XXXXXX)
trap '[ -n "${KEEP_VM:-}" ] || rm -rf "$work"' EXIT

scripts/build-static.sh --quiet || { echo "static build failed"; exit 1; }
root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp}
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cp target/x86_64-unknown-linux-gnu/release/curtain "$root/curtain"
gcc -static -O2 -o "$root/tapp" tests/helpers/tapp.c || { echo "cannot build the test app"; exit 1; }
cp tests/vm/init "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip > "$work/initrd.gz")

boot() { # APPEND LOG: boot the kernel, at most 300 s
    timeout 300 qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 512 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$work/initrd.gz" -append "console=ttyS0 cgroup_no_v1=all panic=-1 $1" \
        </dev/null >"$2" 2>&1
}
t0=$(date +%s)
boot "quiet loglevel=0 rdinit=/init" "$work/scenarios.log"
# Boot 2: curtain is the kernel's init; the app sends its parent (curtain,
# pid 1) SIGTERM. Kernel messages of level 0 show the panic when init exits.
# The kernel passes what follows its `--` to init, and stops at a second
# `--`: so no `--` before COMMAND here.
boot "quiet loglevel=1 rdinit=/curtain -- --log-format=json /tapp term-parent" "$work/pid1.log"
took=$(( $(date +%s) - t0 ))

python3 - "$work/scenarios.log" "$work/pid1.log" "$took" <<'PY'
import json, re, sys

scenarios, pid1, took = open(sys.argv[1], errors="replace").read(), open(sys.argv[2], errors="replace").read(), sys.argv[3]
results = {}
for line in scenarios.splitlines():
    # The console may prefix a line with escape codes: match anywhere.
    m = re.search(r"VMRESULT (\S+) (\S+) ?(.*)$", line)
    if m:
        results.setdefault(m.group(1), {})[m.group(2)] = m.group(3).strip()

passed = failed = 0
def check(name, cond, detail):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}\n       {detail}")

def js(text):
    try:
        return json.loads(text)
    except ValueError:
        return {}

r = lambda name: results.get(name, {})
check("the VM booted a cgroup v2 kernel and ran every scenario",
      r("boot").get("layout", "").find("memory") >= 0 and "done" in results,
      f"results: {results}\nconsole tail: {scenarios[-1500:]}")

e = js(r("oom0").get("exit", ""))
check("OOM kill, memory.oom.group=0, curtain as PID 1 of a pid namespace: oom_killed, 137, termination message",
      r("oom0").get("rc") == "137" and e.get("reason") == "oom_killed" and e.get("exit_code") == 137
      and r("oom0").get("termination", "").startswith("oom_killed: "),
      f"{r('oom0')}")
check("the counter read is memory.events.local, and it rose",
      re.fullmatch(r"oom_kill [1-9][0-9]*", r("oom0").get("counter", "")) is not None, f"{r('oom0')}")

start, last = js(r("oom1").get("start", "")), js(r("oom1").get("last", ""))
check("memory.oom.group=1: the kernel killed curtain with the app; start said oom_group true; "
      "the last word is the last log line and the termination message",
      r("oom1").get("rc") == "137" and start.get("oom_group") is True
      and last.get("event") == "last_word" and last.get("cause") == "killed_with_oom_group"
      and r("oom1").get("termination", "").startswith("killed_with_oom_group: ")
      and r("oom1").get("group_kill", "").startswith("oom_group_kill 1"),
      f"{r('oom1')}")

e = js(r("pids").get("exit", ""))
check("pids.max and an app that forks until it cannot: curtain survives, stops the leftovers, reports",
      e.get("reason") == "exited" and e.get("leftovers_killed", 0) >= 1 and r("pids").get("rc") == str(e.get("exit_code")),
      f"{r('pids')}")

e = js(r("nopids").get("exit", ""))
check("a spawn refused for lack of pids: setup_failed, 125",
      r("nopids").get("rc") == "125" and e.get("reason") == "setup_failed", f"{r('nopids')}")

e = js(r("stop").get("exit", ""))
check("SIGTERM from outside the pid namespace: stopped, 143, sender pid 0",
      r("stop").get("rc") == "143" and e.get("reason") == "stopped" and e.get("trigger_sender_pid") == 0,
      f"{r('stop')}")

e, g = js(r("grace").get("exit", "")), js(r("grace").get("timeout", ""))
check("an app ignoring SIGTERM: grace_timeout, 137, SIGKILL at the 1 s deadline",
      r("grace").get("rc") == "137" and e.get("reason") == "grace_timeout" and 1000 <= g.get("elapsed_ms", 0) < 3000,
      f"{r('grace')}")

exits = [js(l[l.find("{"):]) for l in pid1.splitlines() if '"event":"exit"' in l]
e = exits[-1] if exits else {}
check("curtain as the kernel's own PID 1: the app's SIGTERM to pid 1 is a shutdown; stopped, and the kernel saw exit 143",
      e.get("reason") == "stopped" and e.get("exit_code") == 143 and "exitcode=0x00008f00" in pid1,
      f"exit: {e}\nconsole tail: {pid1[-1500:]}")

print(f"(two boots, {took} s)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
