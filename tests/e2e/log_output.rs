//! Every line curtain writes is one JSON object with the fields its event
//! must have (docs/behavior.md, Log); the app's arguments are never logged; a
//! closed, broken or stalled stdout never stops curtain from forwarding,
//! reaping and exiting with the app's code.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const COMMON: [&str; 5] = ["timestamp", "level", "target", "event", "message"];

/// Each event's fields beyond the common five, written out here on purpose
/// rather than taken from `src/logging.rs`: the test states the contract, so
/// a change to the code's schema cannot quietly redefine it.
fn schema(event: &str) -> &'static [&'static str] {
    match event {
        "start" => &[
            "version",
            "pid",
            "command",
            "argc",
            "grace_period_ms",
            "grace_period_from",
            "stop_signal",
            "subreaper",
            "oom_group",
        ],
        "spawned" => &["child_pid"],
        "signal" => &["signal", "forwarded_as", "sender_pid", "sender_uid"],
        "shutdown" => &[
            "signal",
            "sender_pid",
            "sender_uid",
            "sender_comm",
            "grace_period_ms",
        ],
        "pre_stop" => &["command", "exit_code", "duration_ms", "timed_out", "error"],
        "stop_signal_sent" => &["signal", "scope", "elapsed_ms"],
        "grace_timeout" => &["elapsed_ms", "killed_pids"],
        "reaped" => &["pid", "status"],
        "stage" => &["stage", "elapsed_ms", "kill_in_ms"],
        "progress" => &["stage", "elapsed_ms", "waiting_for", "kill_in_ms"],
        "last_word" => &[
            "cause",
            "signal",
            "sender_pid",
            "grace_period_ms",
            "kill_in_ms",
            "oom_group",
        ],
        "warning" => &["kind"],
        "exit" => &[
            "exit_code",
            "original_exit_code",
            "reason",
            "expected",
            "signal",
            "shutdown_requested",
            "trigger_signal",
            "trigger_sender_pid",
            "uptime_ms",
            "stop_ms",
            "pre_stop_ms",
            "orphans_reaped",
            "leftovers_killed",
        ],
        other => panic!("unknown event {other}"),
    }
}

fn check_schema(e: &Value) {
    let obj = e.as_object().unwrap_or_else(|| panic!("not an object: {e}"));
    for key in COMMON {
        assert!(obj.contains_key(key), "{key} missing in {e}");
    }
    assert!(e["target"].as_str().unwrap_or("").starts_with("curtain"), "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    let ts = e["timestamp"].as_str().unwrap_or("");
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {ts}"
    );
    for key in schema(e["event"].as_str().unwrap_or("")) {
        assert!(obj.contains_key(*key), "{key} missing in {e}");
        assert!(!e[key].is_object(), "fields are flat: {e}");
    }
}

#[test]
fn every_line_is_json_with_the_schema_and_no_arguments() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("schema");
        let run = Run::start(
            mode,
            &[
                "--log-level",
                "debug",
                "--grace-period",
                "2s",
                "--pre-stop",
                "true --token=hunter2",
                "--",
                tapp(),
                "record",
                dir.s(),
                "--password=hunter2",
            ],
        )
        .ready(&dir);
        run.signal(libc::SIGUSR1);
        wait_recorded(&dir, libc::SIGUSR1, SECS_5);
        let f = run.stop(libc::SIGTERM);
        let events = f.events();
        for e in &events {
            check_schema(e);
        }
        let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
        for name in [
            "start",
            "spawned",
            "signal",
            "shutdown",
            "pre_stop",
            "stop_signal_sent",
            "reaped",
            "exit",
        ] {
            assert!(names.contains(&name), "{name} missing: {names:?}");
        }
        assert!(
            !f.lines.iter().any(|l| l.contains("hunter2")),
            "arguments must never be logged"
        );
        let start = f.event("start");
        assert_eq!(start["argc"], 4);
        assert_eq!(start["command"], tapp());
        assert_eq!(start["subreaper"], mode == Mode::Subreaper);
        assert_eq!(start["pid"] == 1, mode == Mode::Pid1, "{start}");
        let sig = events.iter().find(|e| e["event"] == "signal").expect("signal");
        assert_eq!(sig["signal"], "SIGUSR1");
        assert_eq!(sig["forwarded_as"], "SIGUSR1");
        assert_eq!(f.exit()["reason"], "stopped");
    }
}

#[test]
fn text_format_and_exit_event_at_any_level() {
    let _g = shared();
    let f = Run::start(
        Mode::Subreaper,
        &[
            "--log-format",
            "text",
            "--log-level",
            "error",
            "--",
            tapp(),
            "exit",
            "4",
        ],
    )
    .wait(SECS_10);
    assert_eq!(f.code, Some(4));
    assert_eq!(f.lines.len(), 1, "only the exit event at level error: {f:#?}");
    assert!(
        f.lines[0].contains(" event=exit ") && f.lines[0].contains(" reason=exited"),
        "{f:#?}"
    );
    let f = Run::start_with(
        Options {
            env: &[("CURTAIN_LOG_LEVEL", "error")],
            ..Options::default()
        },
        &["--log-format", "json", tapp(), "exit", "0"],
    )
    .wait(SECS_10);
    assert_eq!(f.events().len(), 1);
    assert_eq!(f.exit()["event"], "exit");
}

/// Forward, reap and exit normally with stdout `stdout`.
fn survives_with_stdout(stdout: Stdio, what: &str) {
    let dir = Scratch::new("stdout");
    let run = Run::start_with(
        Options {
            mode: Mode::Pid1,
            stdout: Some(stdout),
            ..Options::default()
        },
        &[
            "--log-level",
            "trace",
            "--log-format",
            "json",
            "--",
            tapp(),
            "record",
            dir.s(),
        ],
    )
    .ready(&dir);
    for _ in 0..50 {
        run.signal(libc::SIGUSR1);
        run.signal(libc::SIGUSR2);
    }
    wait_recorded(&dir, libc::SIGUSR2, SECS_5);
    run.signal(libc::SIGHUP);
    wait_recorded(&dir, libc::SIGHUP, SECS_5);
    let sent = Instant::now();
    let f = run.stop(libc::SIGTERM);
    assert_eq!(f.code, Some(0), "{what}: {f:#?}");
    // The exit event waits about 1 s for room, never for good: the bound is
    // that second plus a 5 s margin, counted from the stop.
    assert!(
        sent.elapsed() < Duration::from_secs(6),
        "{what}: {:?} from SIGTERM to exit: {f:#?}",
        sent.elapsed()
    );
}

#[test]
fn a_closed_broken_or_stalled_stdout_never_stops_curtain() {
    let _g = shared();
    // Broken: nobody will ever read (SIGPIPE/EPIPE on each write).
    let (r, w) = pipe();
    drop(r);
    survives_with_stdout(Stdio::from(w), "broken pipe");

    // Stalled: a one-page pipe, already full, that nobody reads.
    let (r, w) = pipe();
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl/write on descriptors we own.
    unsafe {
        libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 4096);
        let page = [b'x'; 4096];
        assert_eq!(libc::write(w.as_raw_fd(), page.as_ptr().cast(), page.len()), 4096);
    }
    survives_with_stdout(Stdio::from(w), "stalled pipe");
    drop(r);
}

#[test]
fn a_closed_stdout_never_stops_curtain() {
    let _g = shared();
    let dir = Scratch::new("closed");
    let script = format!(
        "exec 1>&-; exec {CURTAIN} --log-level debug -- {} record {}",
        tapp(),
        dir.s()
    );
    let mut child = Guard(
        std::process::Command::new("sh")
            .args(["-c", &script])
            .spawn()
            .expect("sh"),
    );
    wait_file(&dir.path("ready"), SECS_10);
    let pid = child.id() as i32;
    for sig in [libc::SIGUSR1, libc::SIGTERM] {
        // SAFETY: plain kill of our child.
        unsafe { libc::kill(pid, sig) };
        wait_recorded(&dir, sig, SECS_5);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}
