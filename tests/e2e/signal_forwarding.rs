//! Every catchable signal that reaches curtain reaches the app, through
//! --map-signal, to the app alone or its group per --signal-scope
//! (docs/behavior.md, Signals).
//!
//! A signal curtain must not pass on is checked with a later marker signal
//! of a higher number: curtain and the app each take pending signals lowest
//! number first, so once the marker is recorded, a wrongly forwarded signal
//! would have been recorded before it.

use crate::support::*;

const SIGNALS: [i32; 12] = [
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
    libc::SIGPWR,
    // Sent by another process (not raised by the kernel for curtain's own
    // terminal access), these are forwarded too, and never stop or end
    // curtain itself.
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGPIPE,
];

/// The state letter of /proc/PID/stat (R, S, T for stopped, ...).
fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .unwrap_or('?')
}

fn rt(n: i32) -> i32 {
    libc::SIGRTMIN() + n
}

#[test]
fn every_signal_reaches_the_app_but_sigchld() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("fwd");
        let run = Run::start(mode, &["--", tapp(), "record", dir.s()]).ready(&dir);
        for sig in SIGNALS.into_iter().chain([rt(1), libc::SIGRTMAX()]) {
            run.signal(sig);
            wait_recorded(&dir, sig, SECS_5);
        }
        assert_ne!(state(run.curtain_pid()), 'T', "curtain must never stop");
        run.signal(libc::SIGCHLD);
        // The marker, SIGURG (23), comes after SIGCHLD (17) both ways.
        run.signal(libc::SIGURG);
        wait_recorded(&dir, libc::SIGURG, SECS_5);
        assert!(
            recorded(&dir).iter().all(|(s, _)| *s != libc::SIGCHLD),
            "SIGCHLD must not be forwarded: {:?}",
            recorded(&dir)
        );
        let f = run.stop(libc::SIGTERM);
        f.assert_exit(0, "stopped", true);
        let got: Vec<i32> = recorded(&dir).into_iter().map(|(s, _)| s).collect();
        assert!(
            !got.contains(&libc::SIGCHLD),
            "SIGCHLD must not be forwarded: {got:?}"
        );
        assert_eq!(got.last(), Some(&libc::SIGTERM), "{got:?}");
    }
}

#[test]
fn map_signal_rewrites_and_drops() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("map");
        let run = Run::start(
            mode,
            &[
                "--map-signal",
                "HUP:USR1",
                "--map-signal",
                "USR1:0",
                "--map-signal",
                "RTMIN+2:USR2",
                "--",
                tapp(),
                "record",
                dir.s(),
            ],
        )
        .ready(&dir);
        run.signal(libc::SIGUSR1); // dropped
        run.signal(libc::SIGHUP); // arrives as USR1
        wait_recorded(&dir, libc::SIGUSR1, SECS_5);
        run.signal(rt(2));
        wait_recorded(&dir, libc::SIGUSR2, SECS_5);
        let f = run.stop(libc::SIGTERM);
        let got: Vec<i32> = recorded(&dir).into_iter().map(|(s, _)| s).collect();
        assert_eq!(got, vec![libc::SIGUSR1, libc::SIGUSR2, libc::SIGTERM], "{f:#?}");
    }
}

#[test]
fn map_signal_from_the_environment() {
    let _g = shared();
    let dir = Scratch::new("mapenv");
    let run = Run::start_with(
        Options {
            env: &[("CURTAIN_MAP_SIGNAL", "HUP:USR2,WINCH:0")],
            ..Options::default()
        },
        &[tapp(), "record", dir.s()],
    )
    .ready(&dir);
    run.signal(libc::SIGWINCH);
    run.signal(libc::SIGHUP);
    wait_recorded(&dir, libc::SIGUSR2, SECS_5);
    // The marker, a real-time signal, comes after the dropped SIGWINCH (28).
    run.signal(rt(1));
    wait_recorded(&dir, rt(1), SECS_5);
    run.signal(libc::SIGTERM);
    run.wait(SECS_10);
    let got: Vec<i32> = recorded(&dir).into_iter().map(|(s, _)| s).collect();
    assert_eq!(got, vec![libc::SIGUSR2, rt(1), libc::SIGTERM]);
}

/// The app forks a child, in the app's own process group, and both ignore
/// SIGTERM. A forwarded SIGUSR2 (default action: terminate) kills the app in
/// both scopes; with scope group it kills that child too, with scope child it
/// does not, and the child is left for curtain to stop as a leftover.
#[test]
fn signal_scope_group_reaches_the_group_and_child_spares_it() {
    let _g = shared();
    for (scope, child_dies) in [("group", true), ("child", false)] {
        let dir = Scratch::new("scope");
        let run = Run::start(
            Mode::Subreaper,
            &[
                "--signal-scope",
                scope,
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
        run.signal(libc::SIGUSR2);
        // The app dies of SIGUSR2 in both scopes; then its child is a leftover.
        let f = run.wait(SECS_10);
        let exit = f.exit();
        assert_eq!(exit["signal"], "SIGUSR2", "{f:#?}");
        assert_eq!(exit["reason"], "signaled", "{f:#?}");
        // With group scope the child dies of the same SIGUSR2; with child
        // scope it is left running, ignores the SIGTERM curtain sends to
        // leftovers, and only curtain's SIGKILL a grace period (1 s) after
        // the app's end ends it.
        let escalated = f.events().iter().any(|e| e["event"] == "grace_timeout");
        assert_eq!(escalated, !child_dies, "scope {scope}: {f:#?}");
        if !child_dies {
            assert!(exit["leftovers_killed"].as_u64() >= Some(1), "{f:#?}");
        }
        // SAFETY: probing a pid we created; 0 sends nothing.
        let alive = unsafe { libc::kill(child, 0) } == 0;
        assert!(!alive, "curtain must not leave the child running");
    }
}
