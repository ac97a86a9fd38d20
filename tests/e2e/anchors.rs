//! What people coming from tini, dumb-init and Kubernetes' lifecycle hooks
//! expect (README, Coming from tini or dumb-init): their flags, a
//! parent-death signal, HTTP pre-stop steps against a real server, steps
//! from multi-line variables, and a `--help` that keeps secrets.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Python's http.server (tests/helpers/drain_server.py) on a free port of
/// 127.0.0.1, logging every request; killed on drop.
struct DrainServer {
    _process: Guard,
    port: u16,
    dir: Scratch,
}

impl DrainServer {
    /// The server, or one line saying why the test is skipped.
    fn start() -> Option<DrainServer> {
        let dir = Scratch::new("drain");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/drain_server.py");
        let child = match Command::new("python3")
            .arg(script)
            .arg(dir.s())
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(child) => Guard(child),
            Err(e) => {
                eprintln!("skipped: no python3 for the HTTP server ({e})");
                return None;
            }
        };
        let port = wait_file(&dir.path("port"), SECS_10)
            .trim()
            .parse()
            .expect("port");
        Some(DrainServer {
            _process: child,
            port,
            dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `(method, path, mono_ns)` of every request so far.
    fn requests(&self) -> Vec<(String, String, i64)> {
        std::fs::read_to_string(self.dir.path("requests"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split(' ');
                Some((w.next()?.into(), w.next()?.into(), w.next()?.parse().ok()?))
            })
            .collect()
    }
}

/// A port of 127.0.0.1 that nothing listens on (bound, then let go).
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn pre_stop_events(f: &Finished) -> Vec<serde_json::Value> {
    f.events()
        .into_iter()
        .filter(|e| e["event"] == "pre_stop")
        .collect()
}

fn term_received(dir: &Scratch) -> i64 {
    recorded(dir)
        .into_iter()
        .find(|r| r.0 == libc::SIGTERM)
        .expect("the app got SIGTERM")
        .1
}

fn run_to_end(args: &[&str]) -> Finished {
    Run::start(Mode::Subreaper, args).wait(SECS_10)
}

#[test]
fn tinis_flags_do_what_tini_does() {
    let _g = shared();
    // -e CODE: that exit code becomes 0, others pass through.
    let f = run_to_end(&["-e", "3", "-e4", "--", tapp(), "exit", "3"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(f.exit()["original_exit_code"], 3);
    assert_eq!(run_to_end(&["-e", "3", "--", tapp(), "exit", "5"]).code, Some(5));

    // -v, -w: the debug events (each reaped process) appear; never less
    // than --log-level asks, whatever comes first.
    let quiet = run_to_end(&["--", tapp(), "exit", "0"]);
    assert!(
        quiet.events().iter().all(|e| e["event"] != "reaped"),
        "{quiet:#?}"
    );
    for flags in [
        &["-v"][..],
        &["-w"],
        &["--log-level", "error", "-vv"],
        &["--verbose"],
    ] {
        let mut args = flags.to_vec();
        args.extend(["--", tapp(), "exit", "0"]);
        let f = run_to_end(&args);
        assert!(
            f.events().iter().any(|e| e["event"] == "reaped"),
            "{flags:?}: {f:#?}"
        );
    }

    // -s: accepted, curtain is a subreaper anyway; the orphans are reaped.
    let f = run_to_end(&["-s", "--", tapp(), "orphans", "5"]);
    f.assert_exit(0, "exited", true);
    assert_eq!(f.exit()["orphans_reaped"], 5);

    // -l and -h answer and never start the app; --version is tini's shape.
    let dir = Scratch::new("license");
    let marker = dir.file("started");
    for flag in ["-l", "-h", "--version", "-V"] {
        let out = Command::new(CURTAIN)
            .args([flag, tapp(), "mark", &marker])
            .output()
            .expect("curtain");
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        let want = match flag {
            "-l" => "MIT",
            "-h" => "Usage: curtain",
            _ => "curtain version ",
        };
        assert!(text.contains(want), "{flag}: {text}");
    }
    assert!(!dir.path("started").exists(), "the app must not start");
}

/// `-g` (tini) and `-c`/`--single-child` (dumb-init): who gets a
/// forwarded signal. The app's child shares its process group.
#[test]
fn group_and_single_child_flags_choose_who_gets_a_forwarded_signal() {
    let _g = shared();
    for (flags, child_gets_it) in [
        (&["-s", "-g"][..], true),
        (&["-c"], false),
        (&["--single-child"], false),
    ] {
        let dir = Scratch::new("scope");
        let mut args = flags.to_vec();
        args.extend(["--", tapp(), "record", dir.s(), "child"]);
        let run = Run::start(Mode::Subreaper, &args).ready(&dir);
        wait_file(&dir.path("child-ready"), SECS_5);
        run.signal(libc::SIGUSR1);
        wait_recorded(&dir, libc::SIGUSR1, SECS_5);
        let child_got = |dir: &Scratch| {
            std::fs::read_to_string(dir.path("child-signals"))
                .unwrap_or_default()
                .starts_with(&format!("{} ", libc::SIGUSR1))
        };
        if child_gets_it {
            let deadline = Instant::now() + SECS_5;
            while !child_got(&dir) {
                assert!(
                    Instant::now() < deadline,
                    "{flags:?}: the child never got SIGUSR1"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            // The group's kill would have reached both at once.
            std::thread::sleep(Duration::from_millis(300));
            assert!(!child_got(&dir), "{flags:?}: the app's child got SIGUSR1");
        }
        let f = run.stop(libc::SIGTERM);
        assert!(f.exit()["shutdown_requested"] == true, "{f:#?}");
    }
}

/// dumb-init's `-r FROM:TO` (numbers or names): forwarded signals are
/// rewritten or dropped, and a rule for SIGTERM rewrites the stop signal.
#[test]
fn rewrite_flags_map_forwarded_signals_and_the_stop_signal() {
    let _g = shared();
    let dir = Scratch::new("rewrite");
    let run = Run::start(
        Mode::Subreaper,
        &[
            "--grace-period",
            "2s",
            "-r",
            "10:12",
            "--rewrite",
            "HUP:0",
            "-r",
            "15:3",
            "--",
            tapp(),
            "record",
            dir.s(),
        ],
    )
    .ready(&dir);
    run.signal(libc::SIGHUP);
    run.signal(libc::SIGUSR1);
    wait_recorded(&dir, libc::SIGUSR2, SECS_5);
    run.signal(libc::SIGTERM);
    wait_recorded(&dir, libc::SIGQUIT, SECS_5);
    // tapp only leaves on TERM or INT: it outlives QUIT, and curtain's SIGKILL ends it.
    let f = run.wait(SECS_10);
    f.assert_exit(137, "grace_timeout", false);
    let got: Vec<i32> = recorded(&dir).iter().map(|r| r.0).collect();
    assert_eq!(
        got,
        [libc::SIGUSR2, libc::SIGQUIT],
        "HUP dropped, USR1 as USR2, TERM as QUIT"
    );
    assert_eq!(f.event("stop_signal_sent")["signal"], "SIGQUIT");
}

/// An image that ran `["/tini", "-g", "--"]` runs unchanged with curtain
/// installed under tini's name.
#[test]
fn curtain_answers_to_tinis_name() {
    let _g = shared();
    let dir = Scratch::new("tininame");
    let tini = dir.path("tini");
    std::os::unix::fs::symlink(CURTAIN, &tini).expect("symlink");
    let tini = tini.to_string_lossy().into_owned();
    let run = Run::start_argv(
        Options::default(),
        vec![
            tini,
            "-g".into(),
            "--".into(),
            tapp().into(),
            "record".into(),
            dir.s().into(),
        ],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(0, "stopped", true);
    assert_eq!(f.event("start")["grace_period_from"], "default");
}

/// Start `sh -c SCRIPT curtain tapp DIR`, with curtain in the background
/// writing its pid to DIR/pid; wait until curtain has ended (it is not the
/// test's child once its parent is gone), then collect its output.
fn run_orphaned(dir: &Scratch, script: &str, kill_parent: bool) -> Finished {
    let argv = ["sh", "-c", script, CURTAIN, tapp(), dir.s()]
        .map(String::from)
        .to_vec();
    let run = Run::start_argv(Options::default(), argv);
    let pid: i32 = wait_file(&dir.path("pid"), SECS_10).trim().parse().expect("pid");
    if kill_parent {
        wait_file(&dir.path("ready"), SECS_10);
        // SAFETY: kill(2) of the test's own shell.
        assert_eq!(unsafe { libc::kill(run.child.id() as i32, libc::SIGKILL) }, 0);
    }
    let deadline = Instant::now() + SECS_10;
    while alive(pid) {
        if Instant::now() > deadline {
            for p in descendants(pid).into_iter().chain([pid]) {
                // SAFETY: best-effort clean-up of the test's own processes.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            panic!("curtain (pid {pid}) did not stop after its parent died");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    run.wait(SECS_10)
}

/// Whether `pid` runs (a zombie waiting for an init to reap it does not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn parent_death_signal_stops_the_app_when_the_parent_is_killed() {
    let _g = shared();
    let dir = Scratch::new("pdeath");
    let script =
        r#""$0" -p TERM -- "$1" record "$2" & echo $! > "$2/pid.tmp"; mv "$2/pid.tmp" "$2/pid"; wait"#;
    let f = run_orphaned(&dir, script, true);
    let died = f.event("parent_died");
    assert_eq!(died["signal"], "SIGTERM", "{f:#?}");
    assert!(died["parent_pid"].as_i64() > Some(1), "{died}");
    f.assert_order(&["parent_died", "shutdown", "stop_signal_sent", "exit"]);
    assert_eq!(f.exit()["trigger_signal"], "SIGTERM");
    term_received(&dir);
}

/// A parent that ends normally (a shell's background job outliving the
/// shell), with SIGINT, which such a shell makes its background jobs
/// ignore: blocked, it still reaches curtain.
#[test]
fn parent_death_signal_comes_when_the_parent_exits_normally() {
    let _g = shared();
    let dir = Scratch::new("pdeath-exit");
    let script = r#""$0" --parent-death-signal INT -- "$1" record "$2" & echo $! > "$2/pid.tmp"; mv "$2/pid.tmp" "$2/pid"; sleep 0.3"#;
    let f = run_orphaned(&dir, script, false);
    assert_eq!(f.event("parent_died")["signal"], "SIGINT", "{f:#?}");
    assert_eq!(f.exit()["trigger_signal"], "SIGINT", "{f:#?}");
    wait_recorded(&dir, libc::SIGINT, SECS_5);
}

#[test]
fn http_pre_stop_steps_reach_a_real_server_before_the_stop_signal() {
    let _g = shared();
    let Some(server) = DrainServer::start() else {
        return;
    };
    let dir = Scratch::new("http");
    let refused = format!("http://127.0.0.1:{}/x", refused_port());
    let drain = format!("POST {}", server.url("/drain?token=s3cret"));
    let after = format!("{} mark {}", tapp(), dir.file("after"));
    let run = Run::start(
        Mode::Subreaper,
        &[
            "--pre-stop-http",
            &drain,
            "--pre-stop-http",
            &server.url("/status/500"),
            "--pre-stop-http",
            &refused,
            "--pre-stop",
            &after,
            "--",
            tapp(),
            "record",
            dir.s(),
        ],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(0, "stopped", true);
    let requests = server.requests();
    let seen: Vec<_> = requests
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(seen, [("POST", "/drain?token=s3cret"), ("GET", "/status/500")]);
    let term = term_received(&dir);
    assert!(requests.iter().all(|r| r.2 < term), "{requests:?} before {term}");

    let pre = pre_stop_events(&f);
    assert_eq!(pre.len(), 4, "{f:#?}");
    assert_eq!(pre[0]["command"], format!("POST 127.0.0.1:{}/drain", server.port));
    assert_eq!(
        (&pre[0]["http_status"], &pre[0]["exit_code"], &pre[0]["level"]),
        (&204.into(), &0.into(), &"INFO".into())
    );
    assert_eq!(pre[1]["http_status"], 500);
    assert_eq!(pre[1]["error"], "HTTP 500");
    assert_eq!(pre[1]["level"], "WARN");
    assert!(pre[2]["http_status"].is_null());
    assert!(
        pre[2]["error"].as_str().unwrap_or("").contains("refused"),
        "{}",
        pre[2]
    );
    // A failed request does not stop the sequence.
    assert_eq!(pre[3]["exit_code"], 0);
    assert!(
        !f.lines.iter().any(|l| l.contains("s3cret")),
        "the query is never logged"
    );
}

/// An interim answer (103 Early Hints) is not the step's status: the final
/// one after it is.
#[test]
fn an_interim_answer_is_not_the_status_of_an_http_step() {
    let _g = shared();
    let Some(server) = DrainServer::start() else {
        return;
    };
    let dir = Scratch::new("http-early");
    let run = Run::start(
        Mode::Subreaper,
        &[
            "--pre-stop-http",
            &server.url("/early/204"),
            "--pre-stop-http",
            &server.url("/early/500"),
            "--",
            tapp(),
            "record",
            dir.s(),
        ],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(0, "stopped", true);
    let pre = pre_stop_events(&f);
    assert_eq!(pre.len(), 2, "{f:#?}");
    assert_eq!(
        (&pre[0]["http_status"], &pre[0]["exit_code"], &pre[0]["level"]),
        (&204.into(), &0.into(), &"INFO".into()),
        "{}",
        pre[0]
    );
    assert_eq!(
        (&pre[1]["http_status"], &pre[1]["level"]),
        (&500.into(), &"WARN".into()),
        "{}",
        pre[1]
    );
}

/// A server that never answers: the request is cut at the stop window and
/// the stop signal still goes out on time. Grace 4 s: the window is 1 s, so
/// the stop signal is due 3 s after the shutdown request (the exact rule is
/// a unit test of the sequencer).
#[test]
fn an_http_step_that_never_answers_is_cut_at_the_stop_window() {
    let _g = shared();
    let Some(server) = DrainServer::start() else {
        return;
    };
    let dir = Scratch::new("http-hang");
    let run = Run::start(
        Mode::Subreaper,
        &[
            "--grace-period",
            "4s",
            "--pre-stop-http",
            &server.url("/hang"),
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
    let term = term_received(&dir);
    let after_ms = (term - t0) / 1_000_000;
    assert!(
        (2_900..6_000).contains(&after_ms),
        "stop signal {after_ms} ms after the request"
    );
    assert_eq!(server.requests().len(), 1, "the request reached the server");
    let pre = pre_stop_events(&f);
    assert_eq!(pre[0]["timed_out"], true, "{f:#?}");
    assert!(pre[0]["http_status"].is_null());
    let sent = f.event("stop_signal_sent")["elapsed_ms"].as_u64().unwrap_or(0);
    assert!(sent >= 2_900, "stop signal at {sent} ms");
}

/// One step per line in CURTAIN_PRE_STOP and CURTAIN_PRE_STOP_HTTP (a YAML
/// block scalar ends with a newline): commands first, then requests.
#[test]
fn pre_stop_variables_take_one_step_per_line() {
    let _g = shared();
    let Some(server) = DrainServer::start() else {
        return;
    };
    let dir = Scratch::new("lines");
    let commands = format!(
        "{t} mark {one}\n{t} mark '{two}'\n",
        t = tapp(),
        one = dir.file("one"),
        two = dir.file("two")
    );
    let requests = format!("{}\nPUT {}\n", server.url("/a"), server.url("/b"));
    let run = Run::start_with(
        Options {
            env: &[
                ("CURTAIN_PRE_STOP", &commands),
                ("CURTAIN_PRE_STOP_HTTP", &requests),
            ],
            ..Options::default()
        },
        &["--", tapp(), "record", dir.s()],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    f.assert_exit(0, "stopped", true);
    let labels: Vec<String> = pre_stop_events(&f)
        .iter()
        .map(|e| e["command"].as_str().unwrap_or("").to_string())
        .collect();
    let host = format!("127.0.0.1:{}", server.port);
    assert_eq!(
        labels,
        [
            tapp().to_string(),
            tapp().to_string(),
            format!("GET {host}/a"),
            format!("PUT {host}/b")
        ]
    );
    assert!(Path::new(&dir.path("one")).exists() && Path::new(&dir.path("two")).exists());
    let seen: Vec<_> = server
        .requests()
        .into_iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert_eq!(seen, ["GET /a", "PUT /b"]);
}

#[test]
fn help_never_prints_a_variables_value_and_fits_80_columns() {
    let _g = shared();
    for flag in ["--help", "-h"] {
        let out = Command::new(CURTAIN)
            .arg(flag)
            .env("CURTAIN_PRE_STOP", "x --token SECRET")
            .env("CURTAIN_PRE_STOP_HTTP", "http://127.0.0.1/?token=SECRET")
            .env("CURTAIN_GRACE_PERIOD", "SECRET")
            .output()
            .expect("curtain");
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("SECRET") && !String::from_utf8_lossy(&out.stderr).contains("SECRET"));
        assert!(text.contains("CURTAIN_PRE_STOP"), "{text}");
        for section in [
            "Examples:",
            "Exit status:",
            "-e CODE",
            "--single-child",
            "--pre-stop-http",
        ] {
            assert!(text.contains(section), "{section}: {text}");
        }
        // Not a terminal: 80 columns; an example command line may be longer.
        for line in text.lines().filter(|l| !l.starts_with("      curtain")) {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
    }
}
