//! An idle curtain sleeps in the kernel: no wake-up at all.

use std::time::Duration;

use crate::support::*;

fn switches(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    text.lines()
        .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn an_idle_curtain_does_not_wake_up() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("idle");
        let run = Run::start(mode, &["--", tapp(), "pause", dir.s()]).ready(&dir);
        let pid = run.curtain_pid();
        // Let curtain finish logging its start-up before counting.
        run.wait_line("spawned", SECS_5, |l| l.contains("\"spawned\""));
        std::thread::sleep(Duration::from_millis(100));
        let before = switches(pid);
        std::thread::sleep(Duration::from_secs(2));
        let after = switches(pid);
        assert_eq!(
            after,
            before,
            "{mode:?}: curtain woke up {} times while idle",
            after - before
        );
        run.signal(libc::SIGTERM);
        run.wait(SECS_10).assert_exit(143, "stopped", true);
    }
}
