//! An idle curtain sleeps in the kernel: no wake-up at all.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

/// How long curtain is watched once it has settled: longer than the period
/// of any timer-driven loop (tini wakes once a second), so a curtain that
/// woke up periodically, even every 3 s, shows it here at least once.
const QUIET: Duration = Duration::from_secs(3);

/// curtain's state letter (S: asleep) and its context switches, voluntary
/// plus involuntary, from /proc/PID/status. A task asleep in the kernel makes
/// no context switch at all; each wake-up costs at least one.
fn sched(pid: i32) -> (char, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let state = text
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|s| s.trim().chars().next())
        .unwrap_or('?');
    let switches = text
        .lines()
        .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    (state, switches)
}

/// Wait until curtain is asleep and its switch count has held still for
/// 200 ms, and return that count. A curtain that wakes up more often than
/// that never settles, and fails here (10 s at most).
fn settled(pid: i32) -> u64 {
    let deadline = Instant::now() + SECS_10;
    let mut last = sched(pid);
    let mut still_since = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(20));
        let now = sched(pid);
        if now != last || now.0 != 'S' {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= Duration::from_millis(200) {
            return now.1;
        }
        assert!(
            Instant::now() < deadline,
            "curtain never went quiet: state {}, {} context switches",
            now.0,
            now.1
        );
    }
}

/// curtain's only timed wake-up is the one it makes about 1 ms after the
/// spawn, to take the OOM baseline and log `start` and `spawned`. Counting
/// starts after that line, once curtain is asleep and its counters hold
/// still (on a loaded machine it may still be finishing that write, or
/// waiting for a CPU, well after the line is out); from then on, over the
/// quiet interval, not a single context switch is allowed.
#[test]
fn an_idle_curtain_does_not_wake_up() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("idle");
        let run = Run::start(mode, &["--", tapp(), "pause", dir.s()]).ready(&dir);
        let pid = run.curtain_pid();
        run.wait_line("spawned", SECS_5, |l| l.contains("\"spawned\""));
        let before = settled(pid);
        thread::sleep(QUIET);
        let (state, after) = sched(pid);
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        assert_eq!(
            after,
            before,
            "{mode:?}: curtain woke up {} times in {QUIET:?} while idle (state {state}, in {wchan})",
            after - before
        );
        // Still alive and listening: the stop works as ever.
        run.signal(libc::SIGTERM);
        run.wait(SECS_10 * 2).assert_exit(143, "stopped", true);
    }
}
