//! The shutdown sequence (docs/behavior.md, Signals; Shutdown sequence):
//! SIGTERM/SIGINT start it, the stop signal goes out, SIGKILL at the grace
//! deadline, nothing left behind.
//!
//! Exact deadlines are checked with a fake clock by the unit tests in src.
//! Here: which events happen and in which order, "never before the deadline"
//! (which curtain guarantees), and upper bounds several seconds wide, or
//! relative to a period curtain must not wait for, so that a loaded machine
//! cannot break them.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::support::*;

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[test]
fn app_that_exits_on_sigterm_is_stopped() {
    let _g = shared();
    for mode in MODES {
        // Dies of SIGTERM: 143, still a graceful stop.
        let dir = Scratch::new("stop");
        let run = Run::start(mode, &["--", tapp(), "pause", dir.s()]).ready(&dir);
        let f = run.stop(libc::SIGTERM);
        f.assert_exit(143, "stopped", true);
        let exit = f.exit();
        assert_eq!(exit["trigger_signal"], "SIGTERM");
        assert_eq!(exit["shutdown_requested"], true);
        assert!(exit["stop_ms"].as_u64().is_some(), "{f:#?}");
        // Catches SIGTERM and exits 0.
        let dir = Scratch::new("stop0");
        let run = Run::start(mode, &["--", tapp(), "record", dir.s()]).ready(&dir);
        let f = run.stop(libc::SIGINT);
        f.assert_exit(0, "stopped", true);
        // With no --stop-signal the app gets the signal that started it.
        assert_eq!(recorded(&dir).first().map(|r| r.0), Some(libc::SIGINT));
        assert_eq!(f.event("shutdown")["signal"], "SIGINT");
    }
}

/// The app and a child in its group ignore SIGTERM: curtain SIGKILLs both at
/// the deadline, never before the 1 s grace period, and long before the 25 s
/// default would run out.
#[test]
fn app_ignoring_sigterm_is_killed_at_the_deadline() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("grace");
        let run = Run::start(
            mode,
            &[
                "--grace-period",
                "1s",
                "--",
                tapp(),
                "ignore-term",
                dir.s(),
                "child",
            ],
        )
        .ready(&dir);
        let child: i32 = wait_file(&dir.path("child"), SECS_5).trim().parse().expect("pid");
        let sent = std::time::Instant::now();
        let f = run.stop(libc::SIGTERM);
        let after = sent.elapsed();
        f.assert_exit(137, "grace_timeout", false);
        f.assert_order(&["shutdown", "stop_signal_sent", "grace_timeout", "exit"]);
        assert!(
            after >= Duration::from_millis(1000),
            "{mode:?}: killed too early, after {}ms",
            ms(after)
        );
        // The configured 1 s, with a 5 s margin; not the 25 s default.
        assert!(
            after < Duration::from_secs(6),
            "{mode:?}: killed too late, after {}ms",
            ms(after)
        );
        let timeout = f.event("grace_timeout");
        let elapsed = timeout["elapsed_ms"].as_u64().unwrap_or(0);
        // curtain's own count runs from its receipt of the SIGTERM, within
        // the test's.
        assert!(
            elapsed >= 1000 && u128::from(elapsed) <= ms(after),
            "{timeout} after {}ms",
            ms(after)
        );
        assert!(timeout["killed_pids"].is_array(), "{timeout}");
        assert!(
            f.exit()["message"]
                .as_str()
                .unwrap_or("")
                .contains("ignored SIGTERM"),
            "{f:#?}"
        );
        if mode == Mode::Subreaper {
            // SAFETY: probing a pid of ours; 0 sends nothing.
            assert_ne!(
                unsafe { libc::kill(child, 0) },
                0,
                "the child in the app's group must be gone"
            );
        }
    }
}

#[test]
fn stop_signal_replaces_sigterm_and_scope_child_spares_the_group() {
    let _g = shared();
    for (scope, group_gets_it) in [("group", true), ("child", false)] {
        let dir = Scratch::new("stopsig");
        let run = Run::start(
            Mode::Pid1,
            &[
                "--stop-signal",
                "QUIT",
                "--signal-scope",
                scope,
                "--grace-period",
                "1s",
                "--",
                tapp(),
                "record",
                dir.s(),
                "child",
                "keep",
            ],
        )
        .ready(&dir);
        wait_file(&dir.path("child-ready"), SECS_10);
        let f = run.stop(libc::SIGTERM);
        // The app got SIGQUIT, never SIGTERM; it keeps running and is killed.
        let got: Vec<i32> = recorded(&dir).into_iter().map(|r| r.0).collect();
        assert_eq!(got, vec![libc::SIGQUIT], "{f:#?}");
        f.assert_exit(137, "grace_timeout", false);
        let sent = f.event("stop_signal_sent");
        assert_eq!(sent["signal"], "SIGQUIT");
        assert_eq!(sent["scope"], scope);
        let child = std::fs::read_to_string(dir.path("child-signals")).unwrap_or_default();
        assert_eq!(
            child.contains(&format!("{} ", libc::SIGQUIT)),
            group_gets_it,
            "scope {scope}: {child:?}"
        );
    }
}

#[test]
fn the_stop_signal_itself_starts_a_shutdown() {
    let _g = shared();
    let dir = Scratch::new("stopsig2");
    let run = Run::start(
        Mode::Subreaper,
        &["--stop-signal", "USR2", "--", tapp(), "record", dir.s()],
    )
    .ready(&dir);
    run.signal(libc::SIGUSR2);
    wait_recorded(&dir, libc::SIGUSR2, SECS_5);
    run.signal(libc::SIGTERM); // a repeat: passed on, the app exits 0
    let f = run.wait(SECS_10);
    f.assert_exit(0, "stopped", true);
    assert_eq!(f.exit()["trigger_signal"], "SIGUSR2");
}

/// A second SIGTERM during the shutdown is passed on at once (here during
/// a 30 s pre-stop sleep, before the stop signal), and the sequence does not
/// restart.
#[test]
fn a_repeated_sigterm_reaches_the_app() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("repeat");
        let run = Run::start(
            mode,
            &[
                "--pre-stop-sleep",
                "30s",
                "--grace-period",
                "60s",
                "--",
                tapp(),
                "record",
                dir.s(),
            ],
        )
        .ready(&dir);
        let first = std::time::Instant::now();
        run.signal(libc::SIGTERM);
        run.wait_line("shutdown", SECS_5, |l| l.contains("\"event\":\"shutdown\""));
        run.signal(libc::SIGTERM);
        let f = run.wait(SECS_10 * 2);
        f.assert_exit(0, "stopped", true);
        // The app exited on the repeat, a third of the way into the sleep at
        // most: curtain did not wait for it.
        assert!(
            first.elapsed() < Duration::from_secs(10),
            "the repeat must not wait for the 30 s sleep: {f:#?}"
        );
        // Logged as a repeat (a `signal` event at info), after the one
        // `shutdown`; the app got SIGTERM once, and no stop signal was sent.
        f.assert_order(&["shutdown", "signal", "exit"]);
        let repeat = f.event("signal");
        assert_eq!(
            (repeat["signal"].as_str(), repeat["forwarded_as"].as_str()),
            (Some("SIGTERM"), Some("SIGTERM")),
            "{f:#?}"
        );
        assert_eq!(f.events().iter().filter(|e| e["event"] == "shutdown").count(), 1);
        assert_eq!(
            recorded(&dir).iter().map(|r| r.0).collect::<Vec<_>>(),
            [libc::SIGTERM]
        );
        assert!(
            f.events().iter().all(|e| e["event"] != "stop_signal_sent"),
            "{f:#?}"
        );
    }
}

/// The sender of the shutdown signal is named: a process inside the
/// namespace by pid and command name; one outside a pid namespace as pid 0.
#[test]
fn the_sender_is_recorded() {
    let _g = shared();
    for mode in MODES {
        // The app itself sends SIGTERM to curtain, and stays alive until the
        // stop signal, so its name can be read.
        let f = Run::start(mode, &["--", tapp(), "term-parent"]).wait(SECS_10);
        f.assert_exit(143, "stopped", true);
        let app = f.event("spawned")["child_pid"].clone();
        let shutdown = f.event("shutdown");
        assert_eq!(shutdown["sender_pid"], app, "{f:#?}");
        assert_eq!(shutdown["sender_comm"], "tapp", "{f:#?}");
        assert_eq!(shutdown["sender_uid"], 0);
        assert_eq!(f.exit()["trigger_sender_pid"], app);
    }
    // From the test, outside curtain's pid namespace.
    let dir = Scratch::new("outside");
    let run = Run::start(Mode::Pid1, &["--", tapp(), "pause", dir.s()]).ready(&dir);
    let f = run.stop(libc::SIGTERM);
    assert_eq!(f.event("shutdown")["sender_pid"], 0);
    assert_eq!(f.event("shutdown")["sender_comm"], serde_json::Value::Null);
    assert_eq!(f.exit()["trigger_sender_pid"], 0);
}

/// The app exits by itself and leaves a child that ignores SIGTERM: the child
/// gets SIGTERM, then SIGKILL at the deadline; curtain exits with the app's
/// code, and says the exit was not clean.
#[test]
fn leftovers_are_stopped_then_killed() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("leftover");
        let f = Run::start(mode, &["--grace-period", "1s", "--", tapp(), "leave-bg", dir.s()]).wait(SECS_10);
        f.assert_exit(0, "exited", false);
        let exit = f.exit();
        assert!(exit["leftovers_killed"].as_u64() >= Some(1), "{f:#?}");
        assert!(
            f.events()
                .iter()
                .any(|e| e["event"] == "leftovers" && e["level"] == "WARN"),
            "{f:#?}"
        );
        // Stopped first (the warning comes as they get SIGTERM), then killed.
        f.assert_order(&["leftovers", "grace_timeout", "exit"]);
        // Never before the 1 s deadline, counted from the app's end (which
        // comes after curtain's start); the configured 1 s, not the 25 s
        // default, with a margin of several seconds.
        let kill = f.event("grace_timeout")["elapsed_ms"].as_u64().unwrap_or(0);
        assert!(kill >= 1000, "SIGKILL {kill}ms after the app's end: {f:#?}");
        assert!(
            f.elapsed >= Duration::from_millis(1000) && f.elapsed < Duration::from_secs(8),
            "{f:#?}"
        );
        let bg: i32 = std::fs::read_to_string(dir.path("bg"))
            .expect("bg")
            .trim()
            .parse()
            .expect("pid");
        if mode == Mode::Subreaper {
            // SAFETY: probing a pid of ours; 0 sends nothing.
            assert_ne!(unsafe { libc::kill(bg, 0) }, 0, "the leftover must be gone");
        }
    }
}

/// A SIGTERM while curtain waits for leftovers: they get it at once, the
/// shutdown is recorded, the app's own earlier exit stays `exited`, and the
/// leftovers' deadline, counted from the app's end, does not move later.
#[test]
fn a_sigterm_while_waiting_for_leftovers() {
    let _g = shared();
    // The late SIGTERM comes at least GAP after the app's end, so that "a
    // grace period after the app's end" and "a grace period after the late
    // SIGTERM" lie GAP apart: the margin of the check below.
    const GRACE: Duration = Duration::from_secs(6);
    const GAP: Duration = Duration::from_secs(3);
    for mode in MODES {
        let dir = Scratch::new("late-term");
        let mut run = Run::start(mode, &["--grace-period", "6s", "--", tapp(), "leave-bg", dir.s()]);
        run.wait_line("leftovers", SECS_5, |l| l.contains("\"event\":\"leftovers\""));
        // Not a synchronisation: the sleep only spaces the late SIGTERM from
        // the app's end. Sleeping longer only widens the gap, as long as the
        // leftover's SIGKILL is still to come, which is checked.
        std::thread::sleep(GAP);
        assert!(
            run.child.try_wait().expect("try_wait").is_none(),
            "curtain ended within {GAP:?} of the app's end, before the 6 s grace"
        );
        let late = std::time::Instant::now();
        run.signal(libc::SIGTERM);
        let f = run.wait(SECS_10 * 2);
        let since_late = late.elapsed();
        f.assert_exit(0, "exited", false);
        f.assert_order(&["leftovers", "shutdown", "grace_timeout", "exit"]);
        let exit = f.exit();
        assert_eq!(exit["shutdown_requested"], true, "{f:#?}");
        assert_eq!(exit["trigger_signal"], "SIGTERM");
        assert_eq!(
            exit["pre_stop_ms"],
            serde_json::Value::Null,
            "no pre-stop phase for the app"
        );
        assert!(exit["leftovers_killed"].as_u64() >= Some(1), "{f:#?}");
        // The leftover ignores SIGTERM: SIGKILL at the deadline, 6 s after
        // the app ended (so not before 6 s after curtain's start), which is
        // less than a whole grace period after the late SIGTERM.
        assert!(f.elapsed >= GRACE, "SIGKILL before the deadline: {f:#?}");
        assert!(
            since_late < GRACE,
            "{mode:?}: the late SIGTERM pushed the deadline back: ended {since_late:?} after it: {f:#?}"
        );
    }
}

/// Leftovers that stop on SIGTERM end the wait at once: curtain never sleeps
/// out the grace period.
#[test]
fn leftovers_that_stop_end_the_wait_early() {
    let _g = shared();
    for mode in MODES {
        let f = Run::start(
            mode,
            &["--grace-period", "30s", "--", "sh", "-c", "sleep 100 & exit 5"],
        )
        .wait(SECS_10 * 2);
        assert_eq!(f.code, Some(5), "{f:#?}");
        assert_eq!(f.exit()["leftovers_killed"], 1, "{f:#?}");
        f.assert_order(&["leftovers", "exit"]);
        // A third of the 30 s grace period at most: it was not slept out.
        assert!(f.elapsed < Duration::from_secs(10), "{f:#?}");
        assert!(f.events().iter().all(|e| e["event"] != "grace_timeout"), "{f:#?}");
    }
}

#[test]
fn remap_exit_turns_a_stop_into_success() {
    let _g = shared();
    let dir = Scratch::new("remap");
    let run = Run::start(
        Mode::Pid1,
        &["--remap-exit", "143:0", "--", tapp(), "pause", dir.s()],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    assert_eq!(f.code, Some(0));
    assert_eq!(f.exit()["exit_code"], 0);
    assert_eq!(f.exit()["original_exit_code"], 143);
    assert_eq!(f.exit()["reason"], "stopped");
}

/// A SIGTERM that is already pending when curtain starts is held until the
/// app runs, then acted on.
#[test]
fn a_sigterm_before_the_app_runs_is_not_lost() {
    let _g = shared();
    let dir = Scratch::new("early");
    let mut cmd = std::process::Command::new(CURTAIN);
    cmd.args(["--log-format", "json", "--", tapp(), "record", dir.s()]);
    // SAFETY: async-signal-safe calls only: block SIGTERM and make it
    // pending; pending signals survive exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::raise(libc::SIGTERM);
            Ok(())
        });
    }
    let out = cmd.output().expect("curtain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("\"event\":\"shutdown\""), "{text}");
    assert_eq!(recorded(&dir).first().map(|r| r.0), Some(libc::SIGTERM));
}

/// A storm of 10 000 SIGUSR1: curtain and the app stay up, curtain's memory
/// does not grow, and the shutdown afterwards is clean. Runs alone.
#[test]
fn survives_a_signal_storm() {
    let _g = exclusive();
    let dir = Scratch::new("storm");
    let run = Run::start(Mode::Pid1, &["--", tapp(), "record", dir.s()]).ready(&dir);
    let pid = run.curtain_pid();
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status.lines().find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix(" kB")?
                .parse::<u64>()
                .ok()
        })
    };
    run.signal(libc::SIGUSR1);
    wait_recorded(&dir, libc::SIGUSR1, SECS_5);
    let before = rss().expect("rss");
    for _ in 0..10_000 {
        // SAFETY: plain kill(2) to curtain, alive.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
    run.signal(libc::SIGUSR2);
    wait_recorded(&dir, libc::SIGUSR2, SECS_10);
    let after = rss().expect("rss");
    assert!(after <= before + 64, "RSS grew from {before} to {after} kB");
    run.signal(libc::SIGTERM);
    run.wait(SECS_10).assert_exit(0, "stopped", true);
}
