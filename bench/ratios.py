#!/usr/bin/env python3
"""Print curtain's row of a harness run against the anchors and issue #5's targets.

Usage: bench/ratios.py RESULTS_JSON 'CURTAIN_PREFIX'
Ratios are to the best anchor (or the anchors' median where the target says so),
all from the same run.
"""
import json
import statistics
import sys

ANCHORS = ["tini --", "tini-static --", "dumb-init", "catatonit --"]


def main() -> None:
    results = json.load(open(sys.argv[1]))
    me = sys.argv[2]
    b = results["benchmarks"]
    rows = []

    def row(metric, mine, anchors, target, ok, note=""):
        rows.append((metric, mine, anchors, target, "yes" if ok else "NO", note))

    def p50(d):
        return d["p50"] if d else None

    if "startup" in b:
        s = b["startup"]["pid1"]["inits"]
        best = min(p50(s[a]["delta_us"]) for a in ANCHORS if a in s)
        mine = p50(s[me]["delta_us"])
        row("start-up Δ as PID 1, p50", f"{mine:.0f} µs", f"best {best:.0f} µs", "≤ 1.10× best", mine <= 1.10 * best, f"{mine / best:.2f}×")
    if "idle" in b:
        rss = b["idle"][me]["VmRSS_kB"]
        row("idle RSS", f"{rss} KiB", ", ".join(f"{b['idle'][a]['VmRSS_kB']}" for a in ANCHORS if a in b["idle"]) + " KiB", "≤ 1536 KiB", rss <= 1536)
        w = b["idle"][me].get("wakeups")
        if w is not None:
            row("idle wake-ups / 5 s", str(w), ", ".join(str(b["idle"][a].get("wakeups")) for a in ANCHORS if a in b["idle"]), "0", w == 0)
    if "syscalls" in b:
        z = b["syscalls"][me]["reap"]["per_event"]
        sg = b["syscalls"][me]["signal"]["per_event"]
        row("syscalls per reaped zombie", f"{z:.2f}", "1.00", "1.00", round(z, 2) <= 1.0)
        row("syscalls per forwarded signal", f"{sg:.2f}", "2.00-3.00", "≤ 2.00", round(sg, 2) <= 2.0)
    if "reap" in b:
        def rate(a):
            r = b["reap"][a]
            d = r.get("rate_clean_per_s") or r.get("rate_per_s")
            return d["p50"] if d else None
        med = statistics.median(x for x in (rate(a) for a in ANCHORS if a in b["reap"]) if x)
        mine = rate(me)
        row("orphans reaped / s as PID 1", f"{mine / 1000:.0f} k/s", f"median {med / 1000:.0f} k/s", "≥ 0.9× median", mine >= 0.9 * med, f"{mine / med:.2f}×")
    if "signal" in b:
        med = statistics.median(b["signal"][a]["latency_us"]["p50"] for a in ANCHORS if a in b["signal"])
        mine = b["signal"][me]["latency_us"]["p50"]
        lost = b["signal"][me]["lost"]
        row("signal forwarding p50", f"{mine:.1f} µs, lost {lost}", f"median {med:.1f} µs", "≤ 1.15× median, none lost", mine <= 1.15 * med and lost == 0, f"{mine / med:.2f}×")
    if "shutdown" in b:
        med = statistics.median(b["shutdown"][a]["total_us"]["p50"] for a in ANCHORS if a in b["shutdown"])
        mine = b["shutdown"][me]["total_us"]["p50"]
        row("shutdown latency p50", f"{mine:.0f} µs", f"median {med:.0f} µs", "≤ 1.10× median", mine <= 1.10 * med, f"{mine / med:.2f}×")
    if "size" in b:
        size = b["size"][me]["bytes"]
        row("static binary size", f"{size:,} B", ", ".join(f"{b['size'][a]['bytes']:,}" for a in ["tini-static --", "catatonit --"]) + " B", "≤ 1.5 MiB", size <= 1.5 * 1024 * 1024)

    print(f"\ncurtain vs the anchors, one run ({results['date']}, {results['host'].get('cpu', '')})\n")
    print("| metric | curtain | anchors | target | met | ratio |")
    print("|---|--:|--:|--:|:-:|--:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
