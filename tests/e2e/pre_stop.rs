//! Pre-stop drain steps: commands in order while the app still runs, then
//! the sleep, then the stop signal, all inside the one grace period budget
//! (docs/behavior.md, Shutdown sequence).
//!
//! The exact instants (the stop window of min(2 s, grace / 4), the cut of a
//! hung command or of the sleep at that window) are checked with a fake clock
//! by the unit tests in src; here the checks are about what happens and in
//! which order, with lower bounds curtain guarantees and upper bounds wide
//! enough for a loaded machine.

use std::time::Duration;

use crate::support::*;

fn mark(path: &std::path::Path) -> i64 {
    wait_file(path, SECS_5).trim().parse().expect("mono ns")
}

#[test]
fn commands_run_in_order_while_the_app_runs_before_the_stop_signal() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("prestop");
        let (p1, p2) = (dir.file("p1"), dir.file("p2"));
        let run = Run::start(
            mode,
            &[
                "--pre-stop",
                &format!("{} mark {p1} 100", tapp()),
                "--pre-stop",
                &format!("{} mark {p2}", tapp()),
                "--",
                tapp(),
                "record",
                dir.s(),
            ],
        )
        .ready(&dir);
        let t0 = mono_ns();
        let f = run.stop(libc::SIGTERM);
        f.assert_exit(0, "stopped", true);
        let (m1, m2) = (mark(&dir.path("p1")), mark(&dir.path("p2")));
        let term = recorded(&dir)
            .into_iter()
            .find(|r| r.0 == libc::SIGTERM)
            .expect("TERM")
            .1;
        assert!(
            t0 < m1 && m1 + 100_000_000 <= m2 && m2 < term,
            "order: {t0} {m1} {m2} {term}"
        );
        let pre: Vec<_> = f
            .events()
            .into_iter()
            .filter(|e| e["event"] == "pre_stop")
            .collect();
        assert_eq!(pre.len(), 2, "{f:#?}");
        for e in &pre {
            assert_eq!(e["exit_code"], 0, "{e}");
            assert_eq!(e["timed_out"], false);
            assert_eq!(e["command"], tapp(), "program name only");
        }
        // A command's duration runs from before curtain starts it to its
        // reaping, so it is never below the first one's own 100 ms sleep.
        assert!(pre[0]["duration_ms"].as_u64() >= Some(100), "{}", pre[0]);
        assert!(f.exit()["pre_stop_ms"].as_u64() >= Some(100), "{f:#?}");
    }
}

/// Shell-word splitting without a shell: the static curtain in a root that
/// holds nothing but it and the test app.
#[test]
fn quoted_arguments_run_without_a_shell() {
    // Alone: the first call builds the static release binary (a minute of
    // both cores), which must not run beside the timing-sensitive tests.
    let _g = exclusive();
    let dir = Scratch::new("noshell");
    let root = empty_root(&dir);
    let root_s = root.to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--root",
        &root_s,
        "/curtain",
        "--log-format",
        "json",
    ])
    .args([
        "--pre-stop",
        r#"/tapp args /out 'a b' "c d" e\ f"#,
        "--",
        "/tapp",
        "record",
        "/",
    ])
    .stdout(std::process::Stdio::piped());
    let mut child = Guard(cmd.spawn().expect("unshare"));
    wait_file(&root.join("ready"), SECS_10);
    let unshare = child.id();
    let curtain: i32 = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
        .expect("children")
        .split_whitespace()
        .next()
        .expect("curtain")
        .parse()
        .expect("pid");
    // SAFETY: plain kill(2) to curtain, alive.
    unsafe { libc::kill(curtain, libc::SIGTERM) };
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("stdout"), &mut text).expect("read");
    assert_eq!(child.wait().expect("wait").code(), Some(0), "{text}");
    assert_eq!(
        std::fs::read_to_string(root.join("out")).expect("out"),
        "a b\nc d\ne f\n"
    );
    assert!(!root.join("bin/sh").exists());
}

/// A command still running when the stop window is reached is killed with
/// its group, and the stop signal goes out all the same, long before the
/// hung command would have ended by itself.
#[test]
fn a_hung_command_is_killed_at_the_stop_window() {
    let _g = shared();
    let dir = Scratch::new("hung");
    // Budget 8 s, stop window min(2 s, 8 s / 4) = 2 s: the pre-stop steps
    // end 6 s after the SIGTERM, and the app has 2 s to stop, a margin wide
    // enough for a loaded machine. The command would run for 60 s.
    let run = Run::start(
        Mode::Pid1,
        &[
            "--grace-period",
            "8s",
            "--pre-stop",
            &format!("{} mark {} 60000", tapp(), dir.file("hung")),
            "--",
            tapp(),
            "record",
            dir.s(),
        ],
    )
    .ready(&dir);
    let t0 = mono_ns();
    run.signal(libc::SIGTERM);
    let f = run.wait(SECS_10 * 3);
    // The app got the stop signal and exited on it, before any SIGKILL.
    f.assert_exit(0, "stopped", true);
    f.assert_order(&["shutdown", "stop_signal_sent", "exit"]);
    let pre = f.event("pre_stop");
    assert_eq!(pre["timed_out"], true, "{pre}");
    assert_eq!(pre["exit_code"], serde_json::Value::Null);
    assert!(pre["error"].is_string(), "{pre}");
    let started = mark(&dir.path("hung"));
    let term = wait_recorded(&dir, libc::SIGTERM, SECS_5);
    let after_ms = (term - t0) / 1_000_000;
    // Not before the stop window: the command had its 6 s (curtain counts
    // them from its own receipt of the SIGTERM, after t0).
    assert!(
        started < term && after_ms >= 6000,
        "stop signal after {after_ms}ms: {f:#?}"
    );
    // curtain's own count: from 6 s on, and before the 8 s deadline, which
    // leaves the app its stop window (a curtain that cut the command only at
    // the deadline would send the stop signal at 8 s).
    let stop = f.event("stop_signal_sent")["elapsed_ms"].as_u64().unwrap_or(0);
    assert!((6000..8000).contains(&stop), "stop signal at {stop}ms: {f:#?}");
    // Not after the hung command: 6 s plus a 10 s margin is far below its 60 s.
    assert!(after_ms < 16_000, "stop signal after {after_ms}ms: {f:#?}");
}

#[test]
fn a_missing_command_is_logged_and_the_sequence_goes_on() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("missing");
        let run = Run::start(
            mode,
            &[
                "--pre-stop",
                "/no/such/drain --now",
                "--pre-stop",
                &format!("{} mark {}", tapp(), dir.file("p2")),
                "--",
                tapp(),
                "record",
                dir.s(),
            ],
        )
        .ready(&dir);
        let f = run.stop(libc::SIGTERM);
        f.assert_exit(0, "stopped", true);
        assert!(dir.path("p2").exists(), "the next command still runs");
        let first = f
            .events()
            .into_iter()
            .find(|e| e["event"] == "pre_stop")
            .expect("pre_stop");
        assert_eq!(first["command"], "/no/such/drain");
        assert_eq!(first["exit_code"], serde_json::Value::Null);
        assert!(
            first["error"].as_str().unwrap_or("").contains("No such file"),
            "{first}"
        );
        assert!(
            !f.lines.iter().any(|l| l.contains("--now")),
            "arguments are never logged"
        );
    }
}

#[test]
fn pre_stop_sleep_delays_the_stop_signal() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("sleep");
        let run = Run::start(
            mode,
            &["--pre-stop-sleep", "500ms", "--", tapp(), "record", dir.s()],
        )
        .ready(&dir);
        let t0 = mono_ns();
        run.signal(libc::SIGTERM);
        let term = wait_recorded(&dir, libc::SIGTERM, SECS_5);
        let f = run.wait(SECS_10);
        f.assert_exit(0, "stopped", true);
        assert!(
            term - t0 >= 500_000_000,
            "stop signal after {}ms",
            (term - t0) / 1_000_000
        );
        assert!(f.event("stop_signal_sent")["elapsed_ms"].as_u64() >= Some(500));
    }
}

/// One budget for everything: a 3 s pre-stop command inside a 5 s grace
/// period, and an app that ignores SIGTERM. The SIGKILL comes 5 s after the
/// shutdown request, not 5 s after the stop signal (8 s or more): the
/// pre-stop time came out of the same budget. The 3 s gap between the two is
/// the margin the upper bounds below leave for a loaded machine.
#[test]
fn pre_stop_steps_share_the_grace_budget() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("budget");
        // Stop window min(2 s, 5 s / 4) = 1.25 s: the command (3 s) ends
        // before the pre-stop steps must (3.75 s); were it late on a loaded
        // machine, it would be cut there, which changes nothing below.
        let run = Run::start(
            mode,
            &[
                "--grace-period",
                "5s",
                "--pre-stop",
                &format!("{} mark {} 3000", tapp(), dir.file("p")),
                "--",
                tapp(),
                "ignore-term",
                dir.s(),
            ],
        )
        .ready(&dir);
        let sent = std::time::Instant::now();
        run.signal(libc::SIGTERM);
        let f = run.wait(SECS_10 * 2);
        let after = sent.elapsed();
        f.assert_exit(137, "grace_timeout", false);
        f.assert_order(&["shutdown", "pre_stop", "grace_timeout", "exit"]);
        f.assert_order(&["shutdown", "stop_signal_sent", "grace_timeout"]);
        let stop = f.event("stop_signal_sent")["elapsed_ms"].as_u64().unwrap_or(0);
        let kill = f.event("grace_timeout")["elapsed_ms"].as_u64().unwrap_or(0);
        // The stop signal waited for the command (3 s, or the 3.75 s cut);
        // SIGKILL never before the deadline, and after the stop signal.
        assert!(stop >= 3000, "stop signal at {stop}ms: {f:#?}");
        assert!(kill >= 5000 && kill >= stop, "SIGKILL at {kill}ms: {f:#?}");
        // As the test saw it: at least the 5 s budget, and less than the
        // command plus a whole grace period after it (3 s + 5 s).
        assert!(
            after >= Duration::from_secs(5) && after < Duration::from_secs(8),
            "{mode:?}: ended {after:?} after the SIGTERM: {f:#?}"
        );
    }
}

/// Pre-stop commands from the environment; run in curtain's original working
/// directory with stdin /dev/null, their output on curtain's stdout.
#[test]
fn environment_cwd_stdin_and_output() {
    let _g = shared();
    let dir = Scratch::new("env");
    let cmd = "sh -c 'pwd > pwd.out; readlink /proc/self/fd/0 > stdin.out; echo PRE-STOP-SAYS-HI'";
    let mut child = Guard(
        std::process::Command::new(CURTAIN)
            .args(["--log-format", "json", "--", tapp(), "record", dir.s()])
            .env("CURTAIN_PRE_STOP", cmd)
            .env("CURTAIN_PRE_STOP_SLEEP", "100ms")
            .current_dir(&dir.0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("curtain"),
    );
    wait_file(&dir.path("ready"), SECS_10);
    // SAFETY: plain kill(2) to our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("stdout"), &mut out).expect("read");
    assert_eq!(child.wait().expect("wait").code(), Some(0), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path("pwd.out")).expect("pwd").trim(),
        dir.s()
    );
    assert_eq!(
        std::fs::read_to_string(dir.path("stdin.out"))
            .expect("stdin")
            .trim(),
        "/dev/null"
    );
    assert!(out.lines().any(|l| l == "PRE-STOP-SAYS-HI"), "{out}");
    assert!(out.contains("\"stop_signal_sent\""), "{out}");
}
