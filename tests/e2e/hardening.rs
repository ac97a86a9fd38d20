//! Hardening: curtain never hangs, never signals what is not its own, and
//! never loses its exit line, whatever the app, the log collector or the
//! input do (docs/behavior.md, Process model, Log, Termination message).
//! Each test here failed on curtain 0.1.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

fn alive(pid: i32) -> bool {
    // A zombie counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// A termination log that is a FIFO nobody reads (or a symlink to one) used
/// to block curtain forever in open(2) after the app exited.
#[test]
fn a_fifo_termination_log_never_blocks_the_exit() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("fifo-tl");
        let fifo = dir.path("fifo");
        mkfifo(&fifo);
        std::os::unix::fs::symlink(&fifo, dir.path("link")).expect("symlink");
        for target in ["fifo", "link"] {
            let f = Run::start(
                mode,
                &["--termination-log", &dir.file(target), "--", tapp(), "exit", "3"],
            )
            .wait(SECS_10);
            f.assert_exit(3, "exited", false);
            let warning = f.event("termination_log");
            assert!(
                warning["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("No such device or address"),
                "ENXIO for a FIFO without a reader: {f:#?}"
            );
        }
    }
}

/// A relative --termination-log is relative to where curtain started, not
/// to `/`, where curtain moves after the spawn.
#[test]
fn a_relative_termination_log_is_written_where_curtain_started() {
    let _g = shared();
    let modified = |p: &str| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // Left alone if it exists: a test never removes what it did not create.
    let root_tl = modified("/tl");
    for mode in MODES {
        let dir = Scratch::new("relative-tl");
        let mut argv = Vec::new();
        if mode == Mode::Pid1 {
            argv.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(String::from));
        }
        argv.extend([CURTAIN, "--termination-log", "tl", "--", tapp(), "exit", "0"].map(String::from));
        // Run from the scratch directory: `env -C DIR` changes directory, then execs.
        let mut full = vec!["env".to_string(), "-C".into(), dir.s().to_string()];
        full.extend(argv);
        let f = Run::start_argv(
            Options {
                mode,
                ..Options::default()
            },
            full,
        )
        .wait(SECS_10);
        f.assert_exit(0, "exited", true);
        let text = std::fs::read_to_string(dir.path("tl"))
            .unwrap_or_else(|e| panic!("{mode:?}: no DIR/tl ({e}): {f:#?}"));
        assert!(text.starts_with("exited: app exited 0\n"), "{text}");
        assert_eq!(modified("/tl"), root_tl, "written to /tl");
    }
}

/// The app moves to a process group of its own while its child stays in
/// the old one: kill(-app) still succeeds (it reaches the child), but the
/// stop signal must reach the app itself.
#[test]
fn the_stop_signal_reaches_an_app_that_left_its_group() {
    let _g = shared();
    for mode in MODES {
        let dir = Scratch::new("leave-group");
        let run = Run::start(
            mode,
            &["--grace-period", "20s", "--", tapp(), "leave-group", dir.s()],
        )
        .ready(&dir);
        let f = run.stop(libc::SIGTERM);
        assert!(
            dir.path("got-term").exists(),
            "{mode:?}: the app never got SIGTERM: {f:#?}"
        );
        f.assert_exit(0, "stopped", true);
        // Its child, left in the old group, got the stop signal too.
        assert!(f.elapsed < Duration::from_secs(10), "{f:#?}");
    }
}

/// Confused deputy: as root, a subreaper must never signal a process the
/// app could not have signalled. The app runs as uid 65534; its child joins
/// the process group of an unrelated root process in the same session, and
/// the app exits. curtain stops the leftover child, by its pid, and leaves
/// the root process alone (curtain 0.1 SIGTERMed its whole group).
#[test]
fn leftovers_are_signalled_by_pid_never_through_a_strangers_group() {
    let _g = shared();
    if !Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    }
    let dir = Scratch::new("deputy");
    // The app (uid 65534) writes its markers here.
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    // An unrelated root process in the test's session, leading its own group.
    let mut victim = Command::new("sleep");
    victim.arg("60").process_group(0);
    let victim = Guard(victim.spawn().expect("sleep"));
    let victim_pid = victim.id() as i32;
    let f = Run::start(
        Mode::Subreaper,
        &[
            "--grace-period",
            "3s",
            "--",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            tapp(),
            "join-group",
            dir.s(),
            &victim_pid.to_string(),
        ],
    )
    .wait(SECS_10);
    let child: i32 = std::fs::read_to_string(dir.path("child"))
        .unwrap_or_else(|e| panic!("the app's child never joined the group ({e}): {f:#?}"))
        .trim()
        .parse()
        .expect("pid");
    assert!(
        alive(victim_pid),
        "curtain signalled a root process through its group: {f:#?}"
    );
    assert!(!alive(child), "the leftover child still runs: {f:#?}");
    let exit = f.exit();
    assert_eq!(exit["reason"], "exited", "{f:#?}");
    assert_eq!(exit["leftovers_killed"], 1, "{f:#?}");
    assert_eq!(exit["expected"], false, "{f:#?}");
}

/// 5 000 leftovers that ignore SIGTERM: SIGKILL comes at the deadline and
/// curtain exits soon after, as PID 1 and as a subreaper (curtain 0.1, as a
/// subreaper, signalled every leftover's group once per leftover: SIGKILL
/// at 6.6 s and exit at 13.5 s for a 3 s grace).
#[test]
fn five_thousand_leftovers_are_handled_in_linear_time() {
    let _g = exclusive();
    const N: usize = 5_000;
    for mode in MODES {
        let dir = Scratch::new("many-bg");
        let run = Run::start(
            mode,
            &[
                "--grace-period",
                "3s",
                "--",
                tapp(),
                "many-bg",
                &N.to_string(),
                dir.s(),
            ],
        );
        let run = run.ready(&dir);
        let ready_at = Instant::now();
        let f = run.wait(Duration::from_secs(60));
        let after_ready = ready_at.elapsed();
        let exit = f.exit();
        assert_eq!(exit["leftovers_killed"], N, "{mode:?}: {:#?}", f.lines);
        let grace = f.event("grace_timeout");
        let elapsed = grace["elapsed_ms"].as_u64().expect("elapsed_ms");
        // curtain's own clock: SIGKILL at the deadline, counted from the
        // app's exit; a few hundred ms of slack for a loaded machine.
        assert!(
            (3_000..4_500).contains(&elapsed),
            "{mode:?}: SIGKILL at {elapsed} ms"
        );
        // The whole run after the app's exit: 3 s of grace, then reaping
        // 5 000 processes (at most 2 s by rule). 12 s is far from both the
        // rule and curtain 0.1's 13.5 s on an idle machine... but the
        // subreaper's old behaviour grew quadratically, so the bound holds
        // only for a linear one.
        assert!(
            after_ready < Duration::from_secs(12),
            "{mode:?}: exited {after_ready:?} after the app"
        );
        assert!(
            f.lines.iter().all(|l| !l.contains("kill_timeout")),
            "{mode:?}: {:#?}",
            f.lines
        );
    }
}

/// A subreaper that cannot read /proc cannot find leftovers: it says so at
/// start, and an exit that leaves processes running is not `expected`
/// (curtain 0.1 reported `exited`, `expected: true`, with them running).
#[test]
fn a_subreaper_without_proc_says_so_and_never_claims_a_clean_exit() {
    let _g = shared();
    let dir = Scratch::new("no-proc");
    let script = format!(
        "umount -l /proc && exec {CURTAIN} --grace-period 1s -- {} leave-bg {}",
        tapp(),
        dir.s()
    );
    let argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]
    .map(String::from);
    let run = Run::start_argv(Options::default(), argv.to_vec());
    // The leftover is not curtain's to find, and it holds curtain's stdout
    // open: the test removes it once curtain has exited.
    let curtain = run.curtain_pid();
    let bg_file = dir.path("bg");
    let cleaner = thread::spawn(move || {
        let bg: i32 = wait_file(&bg_file, SECS_10).trim().parse().expect("pid");
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive(curtain) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: kill(2) of our own test process.
        unsafe { libc::kill(bg, libc::SIGKILL) };
    });
    let f = run.wait(SECS_10);
    cleaner.join().expect("cleaner");
    let warning = f.event("warning");
    assert_eq!(warning["kind"], "no_proc", "{f:#?}");
    let exit = f.exit();
    assert_eq!(exit["reason"], "exited", "{f:#?}");
    assert_eq!(exit["expected"], false, "{f:#?}");
    assert!(
        exit["message"]
            .as_str()
            .unwrap_or("")
            .contains("may still be running"),
        "{f:#?}"
    );
}

/// RLIMIT_NOFILE=0: poll(2) refuses any descriptor then, and curtain 0.1
/// dropped every line, the exit event included. The static binary, as
/// shipped: a dynamic one cannot even load its libraries without a
/// descriptor.
#[test]
fn the_exit_line_is_written_with_no_descriptor_left() {
    let _g = exclusive();
    let curtain = static_curtain();
    for mode in MODES {
        let mut argv = Vec::new();
        if mode == Mode::Pid1 {
            argv.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(String::from));
        }
        argv.extend(["prlimit", "--nofile=0:0", curtain, "--", tapp(), "exit", "4"].map(String::from));
        let f = Run::start_argv(
            Options {
                mode,
                ..Options::default()
            },
            argv,
        )
        .wait(SECS_10);
        f.assert_exit(4, "exited", false);
        f.assert_order(&["start", "spawned", "exit"]);
    }
}

/// A stalled log collector: stdout is a pipe shared with an app that writes
/// without pause; the reader slows down, then stops, while curtain has
/// lines to write (a forwarded signal every millisecond, logged at debug).
/// curtain's writes must never block: it still takes the SIGTERM, SIGKILLs
/// the app at the deadline and exits (curtain 0.1 hung in a blocking write
/// after poll said there was room and the app took it first). Repeated,
/// because that race needs many tries.
#[test]
fn a_stalled_collector_shared_with_a_chatty_app_never_blocks_curtain() {
    let _g = shared();
    const RUNS: usize = 12;
    for i in 0..RUNS {
        let mode = MODES[i % 2];
        let (read_end, write_end) = pipe();
        let reader = thread::spawn(move || {
            // Slow for 500 ms (4 KiB every 5 ms), then not at all: the
            // descriptor stays open, so writers see a full pipe, not EPIPE.
            let mut buf = [0u8; 4096];
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                // SAFETY: reading into a valid buffer from our own pipe end.
                unsafe { libc::read(read_end.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                thread::sleep(Duration::from_millis(5));
            }
            read_end
        });
        let run = Run::start_with(
            Options {
                mode,
                stdout: Some(Stdio::from(write_end)),
                ..Options::default()
            },
            &[
                "--grace-period",
                "2s",
                "--log-level",
                "debug",
                "--",
                tapp(),
                "chatty",
            ],
        );
        // SIGWINCH: forwarded (and logged) to an app that ignores it.
        let pid = run.curtain_pid();
        let until = Instant::now() + Duration::from_millis(1_000);
        while Instant::now() < until {
            // SAFETY: kill(2) of our own test process.
            unsafe { libc::kill(pid, libc::SIGWINCH) };
            thread::sleep(Duration::from_millis(1));
        }
        let read_end = reader.join().expect("reader");
        run.signal(libc::SIGTERM);
        // 2 s of grace, at most 2 s of reaping and 1 s for the exit line.
        let f = run.wait(Duration::from_secs(20));
        assert_eq!(f.code, Some(137), "run {i} ({mode:?}): {f:#?}");
        drop(read_end);
    }
}

/// Arguments before the app, environment, what the error must name.
type BadInput<'a> = (Vec<&'a OsStr>, Vec<(&'a str, &'a OsStr)>, &'a str);

/// Bad input that curtain 0.1 let through: each exits 2 with one short
/// error naming the option or the variable, and the app never starts.
#[test]
fn bad_input_that_once_got_through_is_refused() {
    let _g = shared();
    let dir = Scratch::new("bad-input");
    let marker = dir.file("started");
    let long = "x".repeat(5_000);
    let invalid = OsStr::from_bytes(b"5\xffs");
    // (arguments before the app, environment, what the error must name)
    let cases: Vec<BadInput> = vec![
        (
            vec![OsStr::new("--pre-stop"), OsStr::new("\"\"")],
            vec![],
            "--pre-stop",
        ),
        (vec![OsStr::new("--pre-stop=''")], vec![], "--pre-stop"),
        (
            vec![],
            vec![("CURTAIN_PRE_STOP", OsStr::new("''"))],
            "CURTAIN_PRE_STOP",
        ),
        (vec![OsStr::new("-")], vec![], "'-'"),
        (
            vec![OsStr::new("---grace-period"), OsStr::new("5s")],
            vec![],
            "---grace-period",
        ),
        (
            vec![OsStr::new("--grace-period"), OsStr::new("+5")],
            vec![],
            "--grace-period",
        ),
        (
            vec![OsStr::new("--grace-period"), invalid],
            vec![],
            "--grace-period",
        ),
        (
            vec![],
            vec![("CURTAIN_GRACE_PERIOD", invalid)],
            "CURTAIN_GRACE_PERIOD",
        ),
        (
            vec![],
            vec![("CURTAIN_LOG_LEVEL", OsStr::from_bytes(b"\xff"))],
            "CURTAIN_LOG_LEVEL",
        ),
        (
            vec![OsStr::new("--stop-signal"), OsStr::new("RTMIN+2147483647")],
            vec![],
            "--stop-signal",
        ),
        (
            vec![OsStr::new("--map-signal"), OsStr::new("RTMAX-2147483647:TERM")],
            vec![],
            "--map-signal",
        ),
        (
            vec![OsStr::new("--remap-exit"), OsStr::new("+1:0")],
            vec![],
            "--remap-exit",
        ),
        (
            vec![OsStr::new("--grace-period"), OsStr::new(&long)],
            vec![],
            "--grace-period",
        ),
    ];
    for (args, env, named) in cases {
        let mut cmd = Command::new(CURTAIN);
        cmd.args(&args)
            .args([OsStr::new(tapp()), OsStr::new("mark"), OsStr::new(&marker)]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run curtain");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{args:?} {env:?}: {stderr}");
        assert_eq!(out.status.code(), Some(2), "{what}");
        assert!(stderr.contains(named), "the error must name {named}: {what}");
        assert!(
            stderr.len() < 400,
            "the error repeats at most ~100 bytes of the value: {what}"
        );
        assert!(!stderr.contains("panicked"), "{what}");
        assert!(!std::path::Path::new(&marker).exists(), "the app started: {what}");
    }
}
