#!/usr/bin/env python3
"""curtain's benchmark: curtain against tini, tini-static, dumb-init and
catatonit, interleaved in one run (bench/README.md says what each row
measures and how). Started by bench/run.sh, which builds what it needs;
Python's standard library only.

    bench.py --curtain BIN --probe PROBE [--quick]   measure, print, save
    bench.py --render results.json                   print a saved run again
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, command on PATH, arguments before the app's command
INITS = [
    ("curtain", None, ["--"]),
    ("tini-static", "tini-static", ["--"]),
    ("catatonit", "catatonit", ["--"]),
    ("dumb-init", "dumb-init", []),
    ("tini", "tini", ["--"]),
]
ANCHORS = [name for name, _, _ in INITS if name != "curtain"]

SETTINGS = {
    # start-up rounds, warm-up rounds, idle window s, zombies per round,
    # reap rounds, signals per round, signal rounds, shutdown rounds (x3),
    # zombies and signals under strace
    "full": dict(startup=2000, warmup=20, idle=5, zombies=5000, reap_rounds=40,
                 signals=100, signal_rounds=20, shutdown_rounds=40,
                 strace_zombies=2000, strace_signals=200),
    "quick": dict(startup=100, warmup=5, idle=5, zombies=2000, reap_rounds=2,
                  signals=100, signal_rounds=2, shutdown_rounds=2,
                  strace_zombies=2000, strace_signals=200),
}

# The targets, as data: row key, how curtain's figure is compared, bound.
#   best:   curtain / the best (lowest) anchor       <= bound
#   median: curtain / the anchors' median            <= bound
#   floor:  curtain / the anchors' median            >= bound
#   max:    curtain's figure                         <= bound
TARGETS = {
    "startup": ("best", 1.05),
    "startup_env": ("best", 1.05),
    "rss": ("max", 1024),
    "wakeups": ("max", 0),
    "sys_zombie": ("max", 1.00),
    "sys_signal": ("max", 2.00),
    "reap": ("floor", 0.9),
    "signal": ("median", 1.05),
    "shutdown": ("median", 1.05),
    "size": ("max", 1.5 * 1024 * 1024),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def rotated(items, r):
    k = r % len(items)
    return items[k:] + items[:k]


def median(xs):
    return statistics.median(xs) if xs else None


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# ---- the host --------------------------------------------------------------

def cpu_times():
    with open("/proc/stat") as f:
        text = f.read()
    cpu = [int(x) for x in text.split("\n", 1)[0].split()[1:]]
    forks = int(re.search(r"^processes (\d+)", text, re.M).group(1))
    idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)
    return forks, sum(cpu), idle


def background(seconds=1.0):
    """Forks per second and busy % of the machine while we do nothing."""
    f0, t0, i0 = cpu_times()
    time.sleep(seconds)
    f1, t1, i1 = cpu_times()
    busy = 100.0 * (1 - (i1 - i0) / (t1 - t0)) if t1 > t0 else 0.0
    return {"forks_per_s": round((f1 - f0) / seconds, 1), "busy_pct": round(busy, 1)}


def host():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": os.uname().release}


# ---- the binaries ----------------------------------------------------------

def linkage(path):
    """static, static-pie or dynamic, from the ELF header."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return "?"
        e_type = int.from_bytes(head[16:18], "little")
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        if int.from_bytes(table[i * phentsize:i * phentsize + 4], "little") == 3:  # PT_INTERP
            return "dynamic"
    return "static-pie" if e_type == 3 else "static"


def production_env():
    """The CURTAIN_* variables Dockerfile.example sets: the production path."""
    env = []
    with open(os.path.join(ROOT, "Dockerfile.example")) as f:
        for line in f:
            m = re.match(r"^ENV\s+(CURTAIN_\w+)=(\S+)", line)
            if m:
                env.append(f"{m.group(1)}={m.group(2)}")
    return env


def install(curtain, workdir):
    """Copy every init into one fresh directory: the same page-cache state
    for all (it changes RSS by tens of KiB and start-up by a few %)."""
    inits = {}
    for name, command, args in INITS:
        source = curtain if command is None else shutil.which(command)
        if not source:
            log(f"bench: {name} not found; its column stays empty")
            continue
        target = os.path.join(workdir, name)
        shutil.copy2(os.path.realpath(source), target)
        inits[name] = {"path": target, "args": args, "size": os.path.getsize(target),
                       "linkage": linkage(target), "source": os.path.realpath(source)}
    return inits


def prefix(inits, name):
    return [inits[name]["path"]] + inits[name]["args"]


# ---- the measurements ------------------------------------------------------

class Probe:
    """The probe, run with its figures on stdout. What the inits and apps
    print goes to a pipe this process reads as it comes, as a container
    runtime reads a container's output, and then to stderr.log."""

    def __init__(self, path, stderr):
        self.path = path
        self.stderr = stderr

    def run(self, *args, timeout=600):
        out = subprocess.run([self.path, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True, timeout=timeout,
                             start_new_session=True)
        self.stderr.write(out.stderr)
        return out.stdout


def measure_startup(probe, inits, s, env):
    """Start-up and exit as PID 1, paired with the bare app in each round."""
    names = list(inits)
    commands = []
    for with_env in (False, True):
        for name in [None] + names:
            cmd = (["@env"] if with_env else [])
            cmd += (prefix(inits, name) if name else []) + [probe.path, "child-true"]
            commands.append(((name, with_env), cmd))
    argv = ["startup", str(s["startup"]), str(s["warmup"])]
    for e in env:
        argv += ["-e", e]
    argv.append("--")
    for i, (_, cmd) in enumerate(commands):
        argv += ([":::"] if i else []) + cmd
    lines = probe.run(*argv).splitlines()
    raw = {}
    for (key, cmd), line in zip(commands, lines):
        fields = [int(x) for x in line.split()]
        raw[key] = (fields[0], fields[1:])
    result = {}
    for with_env in (False, True):
        base = raw[(None, with_env)][1]
        for name in names:
            failures, ns = raw[(name, with_env)]
            delta = [a - b for a, b in zip(ns, base)]
            result.setdefault(name, {})["startup_env" if with_env else "startup"] = {
                "failures": failures, "delta_ns": delta}
    return result


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else ""
    return fields


def switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        st = proc_status(f"{pid}/task/{tid}")
        total += int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"])
    return total


def uss_kib(pid):
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def measure_idle(probe, inits, s):
    """All inits at once as PID 1 of an idle app: memory, then wake-ups."""
    holds = {}
    try:
        for name in inits:
            p = subprocess.Popen([probe.path, "hold", "--", *prefix(inits, name), probe.path,
                                  "child-idle"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, text=True, start_new_session=True)
            holds[name] = [p, int(p.stdout.readline().split()[1])]
        time.sleep(1)
        result = {}
        for name, (_, pid) in holds.items():
            st = proc_status(pid)
            result[name] = {k: int(st[v]) for k, v in (
                ("rss_kib", "VmRSS"), ("hwm_kib", "VmHWM"), ("anon_kib", "RssAnon"),
                ("file_kib", "RssFile"))}
            result[name]["uss_kib"] = uss_kib(pid)
        before = {name: switches(pid) for name, (_, pid) in holds.items()}
        time.sleep(s["idle"])
        for name, (_, pid) in holds.items():
            result[name]["wakeups"] = switches(pid) - before[name]
            result[name]["window_s"] = s["idle"]
        for name, (p, pid) in holds.items():
            os.kill(pid, signal.SIGTERM)
        for name, (p, pid) in holds.items():
            line = p.stdout.readline().split()
            result[name]["stop_status"] = int(line[1]) if line else None
            probe.stderr.write(p.stderr.read())  # a few lines: the pipe never filled
        return result
    finally:
        for p, pid in holds.values():
            if p.poll() is None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()


def parse_strace(path):
    calls = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    calls[parts[-1]] = int(parts[3])
    except FileNotFoundError:
        return None
    return calls or None


def ints(text, count):
    """Exactly `count` integers from the probe's output, else None."""
    try:
        values = [int(x) for x in text.split()]
    except ValueError:
        return None
    return values if len(values) == count else None


def measure_rounds(probe, inits, s, workdir, have_strace):
    """Reaping, signal forwarding and shutdown, rounds x inits, rotated."""
    names = list(inits)
    res = {name: {"reap": [], "signal": [], "shutdown": []} for name in names}
    # A probe that fails prints nothing or "-1"s: the sample counts as
    # failed (lost, left over) and shows under the table, never a crash.
    for r in range(s["reap_rounds"]):
        for name in rotated(names, r):
            got = ints(probe.run("reap", str(s["zombies"]), "--", *prefix(inits, name)), 4)
            n, ns, left, status = got or (0, -1, -1, -1)
            res[name]["reap"].append({"zombies": n, "ns": ns, "remaining": left, "status": status})
    for r in range(s["signal_rounds"]):
        for name in rotated(names, r):
            lat = ints(probe.run("signal", str(s["signals"]), "--", *prefix(inits, name)),
                       s["signals"])
            res[name]["signal"].append(list(lat or [-1] * s["signals"]))
    for r in range(s["shutdown_rounds"]):
        for name in rotated(names, r):
            for _ in range(3):
                got = ints(probe.run("shutdown", "--", *prefix(inits, name)), 3)
                ns, to_child, status = got or (-1, -1, -1)
                res[name]["shutdown"].append({"ns": ns, "to_child_ns": to_child, "status": status})
    for name in names:
        res[name]["strace"] = None
        if not have_strace:
            continue
        zombie_out = os.path.join(workdir, f"strace-reap-{name}.txt")
        signal_out = os.path.join(workdir, f"strace-signal-{name}.txt")
        got = ints(probe.run("reap", str(s["strace_zombies"]), "-S", zombie_out, "--",
                             *prefix(inits, name)), 4)
        per_zombie = parse_strace(zombie_out)
        probe.run("signal", str(s["strace_signals"]), "-S", signal_out, "--", *prefix(inits, name))
        per_signal = parse_strace(signal_out)
        if got and got[0] > 0 and per_zombie and per_signal:
            res[name]["strace"] = {"zombies": got[0], "zombie_calls": per_zombie,
                                   "signals": s["strace_signals"], "signal_calls": per_signal}
    return res


# ---- the table -------------------------------------------------------------

def summarize(results):
    """Figures per init and row, from the raw results alone."""
    rows = {}
    for name, info in results["inits"].items():
        st, idle, rd = results["startup"][name], results["idle"][name], results["rounds"][name]
        fig = {}
        for key in ("startup", "startup_env"):
            fig[key] = median(st[key]["delta_ns"]) / 1000
            fig[key + "_p90"] = percentile(st[key]["delta_ns"], 90) / 1000
            fig[key + "_failures"] = st[key]["failures"]
        fig.update(rss=idle["rss_kib"], hwm=idle["hwm_kib"], uss=idle["uss_kib"],
                   anon=idle["anon_kib"], file=idle["file_kib"], wakeups=idle["wakeups"],
                   idle_stop=idle["stop_status"])
        clean = [x for x in rd["reap"] if x["remaining"] == 0 and x["ns"] > 0]
        rates = [x["zombies"] / x["ns"] * 1e6 for x in clean]  # per ms = k/s
        fig["reap"] = median(rates)
        fig["reap_range"] = (min(rates), max(rates)) if rates else None
        fig["reap_failed"] = len(rd["reap"]) - len(clean)
        lat = [x for rnd in rd["signal"] for x in rnd]
        got = [x / 1000 for x in lat if x >= 0]
        fig["signal"] = median(got)
        fig["signal_p99"] = percentile(got, 99)
        fig["signal_lost"] = (len(lat) - len(got), len(lat))
        per_round = [median([x / 1000 for x in rnd if x >= 0]) for rnd in rd["signal"]]
        per_round = [x for x in per_round if x is not None]
        fig["signal_rounds"] = (min(per_round), max(per_round)) if per_round else None
        stops = [x["ns"] / 1000 for x in rd["shutdown"] if x["ns"] >= 0]
        fig["shutdown"] = median(stops)
        fig["shutdown_p90"] = percentile(stops, 90)
        fig["shutdown_status"] = sorted({x["status"] for x in rd["shutdown"]})
        tr = rd["strace"]
        if tr:
            fig["sys_zombie"] = sum(tr["zombie_calls"].values()) / tr["zombies"]
            fig["sys_signal"] = sum(tr["signal_calls"].values()) / tr["signals"]
            fig["sys_zombie_calls"] = tr["zombie_calls"]
            fig["sys_signal_calls"] = tr["signal_calls"]
        else:
            fig["sys_zombie"] = fig["sys_signal"] = None
        fig["size"] = info["size"]
        fig["linkage"] = info["linkage"]
        rows[name] = fig
    return rows


def per_round_ratios(results, key):
    """curtain's median over the anchors' median, round by round: the
    rounds are interleaved, so this pairs figures taken minutes apart at
    most, and shows how far one round can move the ratio."""
    rounds = results["rounds"]
    if "curtain" not in rounds:
        return []
    anchors = [a for a in ANCHORS if a in rounds]

    def per_round(name):
        data = rounds[name][key]
        if key == "signal":
            return [median([x for x in r if x >= 0]) for r in data]
        per = 3  # shutdowns per init and round
        return [median([x["ns"] for x in data[i:i + per] if x["ns"] >= 0])
                for i in range(0, len(data), per)]

    mine = per_round("curtain")
    theirs = [per_round(a) for a in anchors]
    ratios = []
    for i, m in enumerate(mine):
        ref = [t[i] for t in theirs if i < len(t) and t[i]]
        if m and ref:
            ratios.append(m / statistics.median(ref))
    return ratios


def verdict(key, figs):
    """(ratio or None, met?) of curtain's figure against the target."""
    kind, bound = TARGETS[key]
    mine = figs.get("curtain", {}).get(key)
    anchors = [figs[a][key] for a in ANCHORS if a in figs and figs[a].get(key) is not None]
    if mine is None:
        return None, None
    if kind == "max":
        # syscall counts are judged as printed, to two decimals
        return None, (round(mine, 2) if key.startswith("sys_") else mine) <= bound
    if not anchors:
        return None, None
    ref = min(anchors) if kind == "best" else statistics.median(anchors)
    ratio = mine / ref if ref else None
    if ratio is None:
        return None, None
    return ratio, (ratio >= bound if kind == "floor" else ratio <= bound)


def target_text(key):
    kind, bound = TARGETS[key]
    if kind == "best":
        return f"≤ {bound:.2f} × best anchor"
    if kind == "median":
        return f"≤ {bound:.2f} × anchors' median"
    if kind == "floor":
        return f"≥ {bound:.2f} × anchors' median"
    if key == "size":
        return f"≤ {bound / 1048576:.1f} MiB"
    if key == "rss":
        return f"≤ {bound} KiB"
    return f"≤ {bound:g}" if bound else "0"


def fmt(v, unit="", digits=0):
    if v is None:
        return "not measured"
    return f"{v:,.{digits}f}{unit}"


def table(results):
    figs = summarize(results)
    names = [n for n, _, _ in INITS if n in figs]
    lines = ["| metric | " + " | ".join(names) + " | target (same run) | curtain |",
             "|---|" + "--:|" * len(names) + "---|---|"]

    def row(label, key, cell):
        cells = [cell(figs[n]) for n in names]
        if key:
            ratio, met = verdict(key, figs)
            if met is None:
                result = "not measured"
            else:
                result = (f"{ratio:.3f} × " if ratio is not None else "") + ("met" if met else "NOT met")
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {target_text(key)} | {result} |")
        else:
            lines.append(f"| {label} | " + " | ".join(cells) + " | | |")

    row("start-up Δ as PID 1, p50 (no variable)", "startup", lambda f: fmt(f["startup"], " µs"))
    row("start-up Δ as PID 1, p50 (production variables)", "startup_env",
        lambda f: fmt(f["startup_env"], " µs"))
    row("idle RSS", "rss", lambda f: fmt(f["rss"], " KiB"))
    row("idle RSS: file / anonymous; USS", None,
        lambda f: f"{f['file']} / {f['anon']}; {f['uss']} KiB")
    row("idle wake-ups / 5 s", "wakeups", lambda f: fmt(f["wakeups"]))
    row("syscalls per reaped zombie", "sys_zombie", lambda f: fmt(f["sys_zombie"], "", 2))
    row("syscalls per forwarded signal", "sys_signal", lambda f: fmt(f["sys_signal"], "", 2))
    row("orphans reaped / s as PID 1, p50", "reap", lambda f: fmt(f["reap"], " k/s"))
    row("signal forwarding p50 (lost)", "signal",
        lambda f: f"{fmt(f['signal'], ' µs', 1)} ({f['signal_lost'][0]})")
    row("signal p50 per round, min–max", None,
        lambda f: "–".join(f"{x:.1f}" for x in f["signal_rounds"]) + " µs" if f["signal_rounds"] else "-")
    row("signal forwarding p99", None, lambda f: fmt(f["signal_p99"], " µs", 1))
    row("shutdown latency p50", "shutdown", lambda f: fmt(f["shutdown"], " µs"))
    row("static binary size", "size",
        lambda f: fmt(f["size"], " B") if f["linkage"] != "dynamic" else f"({f['size']:,} B, dynamic)")
    paired = []
    for key, label in (("signal", "signal forwarding"), ("shutdown", "shutdown latency")):
        ratios = per_round_ratios(results, key)
        if ratios:
            paired.append(f"{label} {statistics.median(ratios):.2f} × "
                          f"({min(ratios):.2f}–{max(ratios):.2f} over {len(ratios)} rounds)")
    notes = []
    for n in names:
        f = figs[n]
        bad = []
        if f["startup_failures"] or f["startup_env_failures"]:
            bad.append(f"start-up runs that did not exit 0: {f['startup_failures']}"
                       f" / {f['startup_env_failures']}")
        if f["idle_stop"] != 143:
            bad.append(f"idle init's exit status after SIGTERM {f['idle_stop']}, expected 143")
        if f["shutdown_status"] != [143]:
            bad.append(f"shutdown exit statuses {f['shutdown_status']}, expected [143]")
        if f["reap_failed"]:
            bad.append(f"{f['reap_failed']} reap rounds left zombies or failed")
        if bad:
            notes.append(f"- {n}: " + "; ".join(bad))
    meta = results["meta"]
    h, b0, b1 = meta["host"], meta["background_before"], meta["background_after"]
    out = ["\n".join(lines), "",
           f"Run {meta['started']} ({meta['mode']}, {meta['elapsed_s']:.0f} s): {h['cpus']} × {h['cpu']}, "
           f"Linux {h['kernel']}; background before/after {b0['forks_per_s']}/{b1['forks_per_s']} forks/s, "
           f"{b0['busy_pct']}/{b1['busy_pct']} % busy. Production variables: {' '.join(meta['env'])}."]
    if paired:
        out += ["", "The same rows paired by round (curtain's median in each round over the anchors' "
                "median in that round; the median of those ratios, and their range): "
                + "; ".join(paired) + "."]
    if notes:
        out += ["", "Deviations:"] + notes
    return "\n".join(out) + "\n"


# ---- main ------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--curtain", help="curtain's binary (static build)")
    ap.add_argument("--probe", help="the compiled bench/probe.c")
    ap.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    ap.add_argument("--render", metavar="RESULTS_JSON", help="print the table of a saved run")
    opt = ap.parse_args()
    if opt.render:
        try:
            with open(opt.render) as f:
                results = json.load(f)
        except (OSError, ValueError) as e:
            log(f"bench: cannot read {opt.render}: {e}")
            return 2
        sys.stdout.write(table(results))
        return 0
    if not (opt.curtain and opt.probe):
        ap.error("--curtain and --probe are needed (bench/run.sh passes them)")
    if os.geteuid() != 0:
        log("bench: needs root (pid namespaces, strace)")
        return 2
    mode = "quick" if opt.quick else "full"
    s = SETTINGS[mode]
    stamp = datetime.datetime.now(datetime.timezone.utc)
    outdir = os.path.join(ROOT, "bench", "results", stamp.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="curtain-bench.")
    t0 = time.monotonic()
    try:
        with open(os.path.join(outdir, "stderr.log"), "w") as stderr:
            probe_path = os.path.join(workdir, "probe")
            shutil.copy2(opt.probe, probe_path)
            probe = Probe(probe_path, stderr)
            inits = install(opt.curtain, workdir)
            if "curtain" not in inits:
                log("bench: no curtain binary")
                return 2
            try:
                probe.run("hold", "--", "/bin/true", timeout=10)
            except (subprocess.SubprocessError, IndexError, OSError):
                log("bench: cannot start a process in a new pid namespace here: nothing measured")
                return 2
            have_strace = shutil.which("strace") is not None
            if not have_strace:
                log("bench: no strace: syscall rows not measured")
            env = production_env()
            results = {"meta": {"mode": mode, "settings": s, "env": env, "host": host(),
                                "started": stamp.isoformat(timespec="seconds"),
                                "background_before": background()},
                       "inits": {n: {k: v for k, v in i.items() if k != "path"}
                                 for n, i in inits.items()}}
            log(f"bench: {mode} run, results in {outdir}")
            log("bench: start-up ...")
            results["startup"] = measure_startup(probe, inits, s, env)
            log("bench: idle memory and wake-ups ...")
            results["idle"] = measure_idle(probe, inits, s)
            log("bench: reaping, signals, shutdown, syscalls ...")
            results["rounds"] = measure_rounds(probe, inits, s, workdir, have_strace)
            results["meta"]["background_after"] = background()
            results["meta"]["elapsed_s"] = time.monotonic() - t0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(results, f)
    text = table(results)
    with open(os.path.join(outdir, "table.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    log(f"bench: raw results and table in {os.path.relpath(outdir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
