//! Pre-stop drain steps (SPEC §4): commands in order while the app still
//! runs, then the sleep, then the stop signal, all inside one budget.

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
/// its group, and the stop signal goes out on time.
#[test]
fn a_hung_command_is_killed_at_the_stop_window() {
    let _g = shared();
    let dir = Scratch::new("hung");
    let run = Run::start(
        Mode::Pid1,
        &[
            "--grace-period",
            "2s",
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
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(0, "stopped", true);
    // Budget 2 s, stop window min(2 s, 2 s / 4) = 0.5 s: the stop signal at 1.5 s.
    let term = wait_recorded(&dir, libc::SIGTERM, SECS_5);
    let after_ms = (term - t0) / 1_000_000;
    assert!(
        (1450..2200).contains(&after_ms),
        "stop signal after {after_ms}ms: {f:#?}"
    );
    let pre = f.event("pre_stop");
    assert_eq!(pre["timed_out"], true, "{pre}");
    assert_eq!(pre["exit_code"], serde_json::Value::Null);
    assert!(pre["error"].is_string());
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

/// One budget for everything: a 1.2 s pre-stop inside a 2 s grace period,
/// and an app that ignores SIGTERM, is killed at 2 s, not 3.2 s.
#[test]
fn pre_stop_steps_share_the_grace_budget() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("budget");
        let run = Run::start(
            mode,
            &[
                "--grace-period",
                "2s",
                "--pre-stop",
                &format!("{} mark {} 1200", tapp(), dir.file("p")),
                "--",
                tapp(),
                "ignore-term",
                dir.s(),
            ],
        )
        .ready(&dir);
        let sent = std::time::Instant::now();
        let f = run.stop(libc::SIGTERM);
        let after = sent.elapsed();
        f.assert_exit(137, "grace_timeout", false);
        let stop = f.event("stop_signal_sent")["elapsed_ms"].as_u64().unwrap_or(0);
        assert!((1150..1500).contains(&stop), "stop signal at {stop}ms: {f:#?}");
        let kill = f.event("grace_timeout")["elapsed_ms"].as_u64().unwrap_or(0);
        assert!((2000..2500).contains(&kill), "SIGKILL at {kill}ms: {f:#?}");
        assert!(
            after >= Duration::from_secs(2) && after < Duration::from_millis(2900),
            "{after:?}"
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
