//! No stop left unexplained (docs/behavior.md, Log; Termination message):
//! a last word written in advance survives curtain's own death, a long
//! shutdown shows its progress, levels and words say what happened, and
//! every log format is read by a parser that is not curtain's.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// SIGKILL curtain and everything under it at once, as a runtime whose own
/// deadline ran out does (or an OOM group kill), and wait for it.
fn kill_everything(run: Run) -> Finished {
    let pid = run.curtain_pid();
    let mut all = descendants(pid);
    all.push(pid);
    for p in all {
        // SAFETY: kill(2) of our own test processes.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    run.wait(SECS_10 * 3)
}

#[test]
fn curtain_killed_during_a_shutdown_leaves_its_last_word() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("last-word");
        let tl = dir.file("termination-log");
        let run = Run::start(
            mode,
            &[
                "--grace-period",
                "10s",
                "--termination-log",
                &tl,
                "--",
                tapp(),
                "ignore-term",
                dir.s(),
            ],
        )
        .ready(&dir);
        run.signal(libc::SIGTERM);
        run.wait_line("last_word", SECS_10, |l| l.contains("\"event\":\"last_word\""));
        let f = kill_everything(run);
        let last = f.events().last().cloned().expect("lines");
        assert_eq!(last["event"], "last_word", "{mode:?}: {f:#?}");
        assert_eq!(last["cause"], "killed_during_shutdown");
        assert_eq!(last["signal"], "SIGTERM");
        assert_eq!(last["level"], "WARN");
        let text = std::fs::read_to_string(&tl).expect("termination log");
        assert!(
            text.starts_with(
                "killed_during_shutdown: if this is curtain's last word, it was killed during a shutdown"
            ),
            "{text}"
        );
        assert!(text.contains("runtime's own deadline"), "{text}");
        // The shutdown went on: the stop signal went out before the last word.
        f.assert_order(&["shutdown", "stop_signal_sent", "last_word"]);
    }
}

/// A stop that ends by itself replaces the last word with the summary, and
/// one that ends within 100 ms never writes a last word at all.
#[test]
fn a_normal_stop_leaves_the_final_summary() {
    let _g = shared();
    let dir = Scratch::new("final");
    let tl = dir.file("termination-log");
    // Slow to stop: the last word is written, then replaced.
    let run = Run::start(
        Mode::Pid1,
        &[
            "--grace-period",
            "1s",
            "--termination-log",
            &tl,
            "--",
            tapp(),
            "ignore-term",
            dir.s(),
        ],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(137, "grace_timeout", false);
    f.assert_order(&["last_word", "grace_timeout", "exit"]);
    let text = std::fs::read_to_string(&tl).expect("termination log");
    assert!(text.starts_with("grace_timeout: "), "{text}");
    // Fast: no last word.
    let dir = Scratch::new("fast");
    let run = Run::start(
        Mode::Pid1,
        &["--termination-log", &tl, "--", tapp(), "pause", dir.s()],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(143, "stopped", true);
    assert!(f.events().iter().all(|e| e["event"] != "last_word"), "{f:#?}");
}

/// A 12 s shutdown of an app that ignores SIGTERM is not silent.
#[test]
fn a_long_shutdown_shows_its_progress() {
    let _g = shared();
    let dir = Scratch::new("progress");
    let run = Run::start(
        Mode::Subreaper,
        &["--grace-period", "12s", "--", tapp(), "ignore-term", dir.s()],
    )
    .ready(&dir);
    run.signal(libc::SIGTERM);
    let f = run.wait(Duration::from_secs(40));
    f.assert_exit(137, "grace_timeout", false);
    let events = f.events();
    let at = |name: &str| events.iter().position(|e| e["event"] == name).expect(name);
    let progress: Vec<_> = events.iter().filter(|e| e["event"] == "progress").collect();
    // Every 5 s: at 5 s and 10 s of a 12 s wait.
    assert_eq!(progress.len(), 2, "{f:#?}");
    for p in &progress {
        assert_eq!(p["stage"], "stopping");
        assert_eq!(p["waiting_for"], "the app to exit after SIGTERM");
        let left = p["kill_in_ms"].as_u64().expect("kill_in_ms");
        let elapsed = p["elapsed_ms"].as_u64().expect("elapsed_ms");
        // Each is whole milliseconds, rounded down.
        assert!((11_999..=12_000).contains(&(left + elapsed)), "{p}");
    }
    let first = events
        .iter()
        .position(|e| e["event"] == "progress")
        .expect("progress");
    assert!(
        at("stop_signal_sent") < first && first < at("grace_timeout"),
        "{f:#?}"
    );
}

#[test]
fn the_exit_level_follows_expected() {
    let _g = shared();
    let dir = Scratch::new("levels");
    // (app, exit code, reason, level)
    let cases: [(&[&str], i32, &str, &str); 3] = [
        (&["exit", "0"], 0, "exited", "INFO"),
        (&["exit", "3"], 3, "exited", "WARN"),
        (&["segv"], 139, "signaled", "WARN"),
    ];
    for (app, code, reason, level) in cases {
        let mut args = vec!["--", tapp()];
        args.extend(app);
        let f = Run::start(Mode::Subreaper, &args).wait(SECS_10);
        f.assert_exit(code, reason, level == "INFO");
        assert_eq!(f.exit()["level"], level, "{f:#?}");
    }
    let run = Run::start(Mode::Subreaper, &["--", tapp(), "pause", dir.s()]).ready(&dir);
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(143, "stopped", true);
    assert_eq!(f.exit()["level"], "INFO");
}

#[test]
fn settings_that_cannot_work_are_said_at_start() {
    let _g = shared();
    let f = Run::start(
        Mode::Subreaper,
        &[
            "--grace-period",
            "4s",
            "--pre-stop-sleep",
            "10s",
            "--",
            tapp(),
            "exit",
            "0",
        ],
    )
    .wait(SECS_10);
    let kinds: Vec<_> = f
        .events()
        .into_iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, ["sleep_cut", "short_stop_window"], "{f:#?}");
    let cut = f.event("warning");
    assert!(cut["message"].as_str().unwrap_or("").contains("3000ms"), "{cut}");
    f.assert_order(&["start", "warning", "exit"]);
}

/// `--grace-period 0`: SIGKILL at once, no stop signal racing it, reported
/// as such.
#[test]
fn grace_period_zero_is_an_immediate_sigkill() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("grace0");
        let run = Run::start(mode, &["--grace-period", "0", "--", tapp(), "record", dir.s()]).ready(&dir);
        let f = run.stop(libc::SIGTERM);
        f.assert_exit(137, "grace_timeout", false);
        assert_eq!(f.event("warning")["kind"], "grace_zero");
        assert!(
            f.events().iter().all(|e| e["event"] != "stop_signal_sent"),
            "{f:#?}"
        );
        assert!(
            recorded(&dir).is_empty(),
            "the app got a signal before SIGKILL: {:?}",
            recorded(&dir)
        );
        let message = f.exit()["message"].as_str().unwrap_or("").to_string();
        assert_eq!(message, "app was killed at once: --grace-period is 0 (137)");
    }
}

/// A signal curtain forwarded and that ended the app is named as
/// forwarded, with its sender; a dropped one is logged as dropped.
#[test]
fn forwarded_and_dropped_signals_are_named_as_such() {
    let _g = shared();
    let dir = Scratch::new("forwarded");
    let run = Run::start(
        Mode::Subreaper,
        &[
            "--log-level",
            "debug",
            "--map-signal",
            "USR2:0",
            "--",
            tapp(),
            "pause",
            dir.s(),
        ],
    )
    .ready(&dir);
    run.signal(libc::SIGUSR2);
    run.wait_line("dropped", SECS_10, |l| l.contains("dropped SIGUSR2"));
    run.signal(libc::SIGHUP);
    let f = run.wait(SECS_10);
    f.assert_exit(129, "signaled", false);
    let message = f.exit()["message"].as_str().unwrap_or("").to_string();
    assert!(
        message.starts_with("app died of SIGHUP, which curtain forwarded from pid "),
        "{message}"
    );
}

/// The node_modules directory holding @elastic/ecs (installed by .ci/run).
fn ecs_modules() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/node_modules");
    let ok = dir.join("@elastic/ecs/generated/ecs_flat.js").exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    ok.then_some(dir)
}

fn python_logfmt() -> bool {
    Command::new("python3")
        .args(["-c", "import logfmt.parser"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run the app under a name holding a newline, quotes and a byte that is
/// not UTF-8, and stop it with SIGTERM from a process that names itself the
/// same way (PR_SET_NAME): a process inside the container that tries to
/// forge log lines through the `shutdown` event. Returns curtain's stdout.
fn run_with_hostile_names(format: &str) -> Finished {
    let dir = Scratch::new("hostile");
    let weird = dir.0.join(OsStr::from_bytes(b"ta\"p\nFAKE=1 level=error p\xff"));
    std::fs::copy(tapp(), &weird).expect("copy tapp");
    let ready = Scratch::new("hostile-ready");
    // The name is not UTF-8: the shell makes it, with printf.
    let script = format!(
        "cd {} && exec {CURTAIN} --log-format {format} --log-level debug -- \"./$(printf 'ta\"p\\nFAKE=1 level=error p\\377')\" pause {}",
        dir.s(),
        ready.s()
    );
    let run = Run::start_argv(Options::default(), vec!["sh".into(), "-c".into(), script]).ready(&ready);
    // It stays while curtain lives, so that curtain can read its name.
    let _sender = Guard(
        Command::new(tapp())
            .arg("name-kill")
            .arg(run.curtain_pid().to_string())
            .arg(OsStr::from_bytes(b"x\nFAKE=1 \"q\xff"))
            .spawn()
            .expect("name-kill"),
    );
    run.wait(SECS_10)
}

/// curtain's stdout lines in a file, for a checker to read.
fn lines_file(f: &Finished, scratch: &Scratch, name: &str) -> PathBuf {
    let file = scratch.path(name);
    std::fs::write(&file, f.lines.join("\n") + "\n").expect("write the lines");
    file
}

/// Run an outside checker; it must accept the lines.
fn assert_checked(mut checker: Command, f: &Finished) {
    let out = checker.output().unwrap_or_else(|e| panic!("{checker:?}: {e}"));
    assert!(
        out.status.success(),
        "{checker:?}: {}{}\n{f:#?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_log_format_is_read_by_a_parser_that_is_not_ours() {
    let _g = shared();
    // JSON, read by serde_json (`events` parses every line).
    let f = run_with_hostile_names("json");
    let names: Vec<String> = f
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        f.event("shutdown")["sender_comm"],
        "x\nFAKE=1 \"q\u{fffd}",
        "{f:#?}"
    );
    let command = f.event("start")["command"].as_str().unwrap_or("").to_string();
    assert_eq!(command, "./ta\"p\nFAKE=1 level=error p\u{fffd}");
    f.assert_exit(143, "stopped", true);

    let scratch = Scratch::new("formats");
    let checks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/formats");
    if python_logfmt() {
        let f = run_with_hostile_names("text");
        let file = lines_file(&f, &scratch, "text.log");
        let mut python = Command::new("python3");
        python
            .arg(format!("{checks}/check_logfmt.py"))
            .arg(&file)
            .args(&names);
        assert_checked(python, &f);
    } else {
        eprintln!("skipped: the logfmt check needs python3 with PyPI's logfmt (.ci/run installs it)");
    }
    match ecs_modules() {
        Some(modules) => {
            let f = run_with_hostile_names("ecs");
            assert_eq!(f.lines.len(), names.len(), "{f:#?}");
            let file = lines_file(&f, &scratch, "ecs.log");
            let mut node = Command::new("node");
            node.arg(format!("{checks}/check_ecs.js"))
                .arg(&modules)
                .arg(&file);
            assert_checked(node, &f);
            let last: serde_json::Value = serde_json::from_str(f.lines.last().expect("exit")).expect("json");
            assert_eq!(last["event.outcome"], "success");
            assert_eq!(last["process.exit_code"], 143);
            assert_eq!(last["curtain"]["reason"], "stopped");
        }
        None => eprintln!(
            "skipped: the ECS check needs node and @elastic/ecs in target/test-deps (.ci/run installs them)"
        ),
    }
}
