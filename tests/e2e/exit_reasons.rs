//! Every exit explained (docs/behavior.md, Exit code and reason; Termination
//! message): an OOM kill is told from any other SIGKILL by the memory
//! cgroup's counter, the termination message is written for Kubernetes, and
//! the static binary runs in an empty root.

use std::process::Command;

use crate::support::*;

/// An app (shell words) that waits for the file `go` to exist, then runs
/// `then`: the test creates `go` once curtain has logged `spawned`, which it
/// does right after reading the OOM counter's baseline.
fn after_go(go: &str, then: &str) -> String {
    format!("sh -c 'until [ -e {go} ]; do sleep 0.01; done; {then}'")
}

/// Let an app made with `after_go` proceed, once curtain has its baseline.
fn go_after_spawned(run: &Run, go: &str) {
    run.wait_line("spawned", SECS_10, |l| l.contains("\"event\":\"spawned\""));
    std::fs::write(go, "").expect("go");
}

/// Start curtain (as PID 1 or subreaper) inside the cgroup.
fn run_in_cgroup(cg: &MemoryCgroup, mode: Mode, app: &str) -> Run {
    let prefix = if mode == Mode::Pid1 {
        "unshare --pid --fork --mount-proc "
    } else {
        ""
    };
    let script = format!(
        "echo $$ > {}; exec {prefix}{CURTAIN} --log-format json -- {app}",
        cg.procs()
    );
    Run::start_argv(
        Options {
            mode,
            ..Options::default()
        },
        vec!["sh".into(), "-c".into(), script],
    )
}

#[test]
fn an_oom_kill_is_oom_killed_and_an_outside_sigkill_is_killed() {
    let _g = shared();
    for mode in MODES {
        let Some(cg) = MemoryCgroup::new("oom", 32 << 20) else {
            return;
        };
        // The app starts allocating only once curtain has its baseline: an
        // OOM kill the counter records while the app runs.
        let dir = Scratch::new("oom");
        let go = dir.file("go");
        let app = after_go(&go, &format!("exec {} hog 200", tapp()));
        let run = run_in_cgroup(&cg, mode, &app);
        go_after_spawned(&run, &go);
        let f = run.wait(SECS_10 * 3);
        f.assert_exit(137, "oom_killed", false);
        assert_eq!(f.exit()["signal"], "SIGKILL");
        assert!(
            f.exit()["message"].as_str().unwrap_or("").contains("OOM"),
            "{f:#?}"
        );
        drop(cg);

        let Some(cg) = MemoryCgroup::new("kill", 32 << 20) else {
            return;
        };
        let dir = Scratch::new("outside-kill");
        let run = run_in_cgroup(&cg, mode, &format!("{} pause {}", tapp(), dir.s()));
        let app: i32 = wait_file(&dir.path("ready"), SECS_10)
            .trim()
            .parse()
            .expect("pid");
        // The app's pid in the test's namespace: tapp wrote its own, which in
        // PID 1 mode is the namespace's; find the host pid via the cgroup.
        let host_pid = if mode == Mode::Pid1 {
            let pids = std::fs::read_to_string(cg.dir.join("cgroup.procs")).expect("procs");
            *pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains("pause"))
                })
                .filter(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e.ends_with("tapp")))
                .collect::<Vec<_>>()
                .first()
                .expect("app in cgroup")
        } else {
            app
        };
        // SAFETY: plain kill of our test app.
        unsafe { libc::kill(host_pid, libc::SIGKILL) };
        let f = run.wait(SECS_10);
        f.assert_exit(137, "killed", false);
        assert_eq!(
            f.event("start")["oom_group"],
            if cg.v2 {
                serde_json::json!(false)
            } else {
                serde_json::Value::Null
            }
        );
    }
}

/// An app killed by the OOM killer right at start, possibly before curtain
/// took its baseline (about 1 ms after the spawn; which comes first is up to
/// the scheduler): as PID 1 it is oom_killed either way, since without a
/// baseline curtain counts from zero (its cgroup is as new as it).
#[test]
fn an_oom_kill_right_at_start_is_oom_killed_as_pid1() {
    let _g = shared();
    let Some(cg) = MemoryCgroup::new("early", 16 << 20) else {
        return;
    };
    let f = run_in_cgroup(&cg, Mode::Pid1, &format!("{} hog 200", tapp())).wait(SECS_10 * 3);
    f.assert_exit(137, "oom_killed", false);
}

/// An app that *exits* 137 (a shell whose child was OOM-killed) while the
/// counter rose is oom_killed too.
#[test]
fn a_wrapper_exiting_137_after_an_oom_kill_is_oom_killed() {
    let _g = shared();
    let Some(cg) = MemoryCgroup::new("wrap", 32 << 20) else {
        return;
    };
    let dir = Scratch::new("wrap");
    let go = dir.file("go");
    let app = after_go(&go, &format!("{} hog 200; exit $?", tapp()));
    let run = run_in_cgroup(&cg, Mode::Subreaper, &app);
    go_after_spawned(&run, &go);
    let f = run.wait(SECS_10 * 3);
    f.assert_exit(137, "oom_killed", false);
    assert_eq!(
        f.exit()["signal"],
        serde_json::Value::Null,
        "it exited, it was not signalled"
    );
}

/// A reused cgroup keeps its old OOM kills in the counter. An app that
/// exits 137 by itself at once (before curtain has taken a baseline) is no
/// OOM victim: curtain 0.1, as PID 1, counted from zero and said oom_killed.
#[test]
fn an_exit_137_in_a_cgroup_with_old_oom_kills_is_no_oom_kill() {
    let _g = shared();
    let Some(cg) = MemoryCgroup::new("history", 32 << 20) else {
        return;
    };
    // History: a process OOM-killed in this cgroup before curtain runs.
    let script = format!("echo $$ > {}; exec {} hog 200", cg.procs(), tapp());
    let status = Command::new("sh").args(["-c", &script]).status().expect("sh");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the hog was not OOM-killed"
    );
    for _ in 0..3 {
        let f = run_in_cgroup(&cg, Mode::Pid1, &format!("{} exit 137", tapp())).wait(SECS_10);
        f.assert_exit(137, "exited", false);
    }
}

/// The whole cgroup killed at once during a shutdown, curtain included (an
/// OOM group kill, a runtime's `cgroup.kill`): the termination message holds
/// curtain's last word.
#[test]
fn a_cgroup_killed_whole_during_a_shutdown_leaves_the_last_word() {
    let _g = shared();
    for mode in MODES {
        let Some(cg) = MemoryCgroup::new("group-kill", 256 << 20) else {
            return;
        };
        let dir = Scratch::new("group-kill");
        let tl = dir.file("termination-log");
        let prefix = if mode == Mode::Pid1 {
            "unshare --pid --fork --mount-proc "
        } else {
            ""
        };
        let script = format!(
            "echo $$ > {}; exec {prefix}{CURTAIN} --grace-period 20s --termination-log {tl} -- {} ignore-term {}",
            cg.procs(),
            tapp(),
            dir.s()
        );
        let run = Run::start_argv(
            Options {
                mode,
                ..Options::default()
            },
            vec!["sh".into(), "-c".into(), script],
        )
        .ready(&dir);
        run.signal(libc::SIGTERM);
        run.wait_line("last_word", SECS_10, |l| l.contains("\"event\":\"last_word\""));
        // Every process in the cgroup, at once (cgroup.kill where v2 has it).
        if std::fs::write(cg.dir.join("cgroup.kill"), "1").is_err() {
            let pids = std::fs::read_to_string(cg.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                // SAFETY: kill(2) of our own test processes in our cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let f = run.wait(SECS_10 * 3);
        assert_eq!(f.signal, Some(libc::SIGKILL), "{f:#?}");
        let text = std::fs::read_to_string(&tl).expect("termination log");
        assert!(text.starts_with("killed_during_shutdown: "), "{mode:?}: {text}");
        assert!(
            text.contains("OOM") || text.contains("runtime's own deadline"),
            "{text}"
        );
    }
}

#[test]
fn termination_message_is_written_capped_and_replaces_an_older_one() {
    let _g = shared();
    let dir = Scratch::new("termlog");
    let path = dir.file("termination-log");
    std::fs::write(&path, "x".repeat(10_000)).expect("old message");
    let f = Run::start(
        Mode::Pid1,
        &["--termination-log", &path, "--", tapp(), "exit", "3"],
    )
    .wait(SECS_10);
    assert_eq!(f.code, Some(3));
    let text = std::fs::read_to_string(&path).expect("message");
    assert!(text.len() <= 4096, "{} bytes", text.len());
    let (sentence, json) = text.split_once('\n').expect("two parts");
    assert_eq!(sentence, "exited: app exited 3");
    let event: serde_json::Value = serde_json::from_str(json).expect("the exit event's JSON");
    assert_eq!(event["event"], "exit");
    assert_eq!(event["exit_code"], 3);
    assert!(!text.contains("xxx"), "the older, longer message is gone");
    assert_eq!(
        f.lines.last().map(String::as_str),
        Some(json.trim_end()),
        "the same exit event, rendered once"
    );

    // From the environment, for a grace timeout: says how long the app
    // ignored its stop signal. The figure is the time from the stop signal
    // to the app's end, at least the 1 s grace period; how much more depends
    // on the machine's load, so only its shape and that floor are checked.
    let dir = Scratch::new("termlog2");
    let path = dir.file("msg");
    let run = Run::start_with(
        Options {
            mode: Mode::Subreaper,
            env: &[("CURTAIN_TERMINATION_LOG", &path)],
            ..Options::default()
        },
        &["--grace-period", "1s", "--", tapp(), "ignore-term", dir.s()],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(137, "grace_timeout", false);
    let text = std::fs::read_to_string(&path).expect("message");
    let (sentence, json) = text.split_once('\n').expect("two parts");
    let secs = sentence
        .strip_prefix("grace_timeout: app ignored SIGTERM for ")
        .and_then(|rest| rest.strip_suffix("s and was killed (137)"))
        .unwrap_or_else(|| panic!("not the grace_timeout sentence: {text}"));
    let (whole, tenths) = secs.split_once('.').unwrap_or_else(|| panic!("not N.Ns: {text}"));
    assert!(
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && tenths.len() == 1
            && tenths.bytes().all(|b| b.is_ascii_digit()),
        "not N.Ns: {text}"
    );
    assert!(
        secs.parse::<f64>().is_ok_and(|s| s >= 1.0),
        "ignored for less than the grace period: {text}"
    );
    let event: serde_json::Value = serde_json::from_str(json).expect("the exit event's JSON");
    assert_eq!(event["reason"], "grace_timeout", "{text}");
}

#[test]
fn termination_log_disabled_or_unwritable_never_changes_the_exit() {
    let _g = shared();
    let dir = Scratch::new("termlog-off");
    let path = dir.file("untouched");
    std::fs::write(&path, "old").expect("write");
    let f = Run::start_with(
        Options {
            env: &[("CURTAIN_TERMINATION_LOG", &path)],
            ..Options::default()
        },
        &["--termination-log", "", "--", tapp(), "exit", "0"],
    )
    .wait(SECS_10);
    f.assert_exit(0, "exited", true);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "old",
        "'' turns it off, over the variable"
    );

    let f = Run::start(
        Mode::Pid1,
        &[
            "--termination-log",
            "/nonexistent/dir/msg",
            "--",
            tapp(),
            "exit",
            "4",
        ],
    )
    .wait(SECS_10);
    f.assert_exit(4, "exited", false);
    let events = f.events();
    let warn = events
        .iter()
        .position(|e| e["event"] == "termination_log" && e["level"] == "WARN");
    assert_eq!(
        warn,
        Some(events.len() - 2),
        "a warning right before the exit line: {f:#?}"
    );
}

/// The static binary as PID 1 in a root holding only it and a static app
/// (no libc, no shell): it runs, prints its exit event, and writes the
/// default termination log when /dev/termination-log exists.
#[test]
fn the_static_binary_runs_as_pid1_in_an_empty_root() {
    // Alone: the first call builds the static release binary (a minute of
    // both cores), which must not run beside the timing-sensitive tests.
    let _g = exclusive();
    let dir = Scratch::new("static");
    let root = empty_root(&dir);
    let version = Command::new(static_curtain())
        .arg("--version")
        .output()
        .expect("--version");
    let line = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(line.contains(" (static) - git."), "{line}");
    std::fs::create_dir_all(root.join("dev")).expect("dev");
    std::fs::write(root.join("dev/termination-log"), "").expect("termination-log");
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--root"])
        .arg(&root)
        .args(["/curtain", "--", "/tapp", "exit", "3"])
        .output()
        .expect("unshare");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exit: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or("")).expect("JSON exit event");
    assert_eq!(exit["event"], "exit");
    assert_eq!(exit["reason"], "exited");
    let start: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap_or("")).expect("JSON start");
    assert_eq!(start["pid"], 1);
    let msg = std::fs::read_to_string(root.join("dev/termination-log")).expect("message");
    assert!(msg.starts_with("exited: app exited 3\n{"), "{msg}");
}
