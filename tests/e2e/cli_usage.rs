//! Bad input never starts the app: a short error naming the value (and the
//! variable, for the environment) on stderr, and exit 2 (docs/behavior.md,
//! Command line).

use std::process::Command;

use crate::support::*;

/// Run curtain with `args`/`env` and an app that would leave a marker file;
/// returns stderr.
fn reject(args: &[&str], env: &[(&str, &str)], named: &[&str]) -> String {
    let dir = Scratch::new("cli");
    let marker = dir.file("started");
    let mut cmd = Command::new(CURTAIN);
    cmd.args(args).args([tapp(), "mark", &marker]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("curtain");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
    for word in named {
        assert!(
            stderr.contains(word),
            "{args:?} {env:?}: stderr should name {word:?}: {stderr}"
        );
    }
    assert!(
        stderr.lines().count() <= 8,
        "a short error, not a wall of text: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !dir.path("started").exists(),
        "the app must never start: {args:?} {env:?}"
    );
    stderr.into_owned()
}

#[test]
fn bad_flags_exit_2_naming_the_value() {
    let _g = shared();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--frobnicate"], &["--frobnicate"]),
        (&["--grace-period", "5x", "--"], &["'5x'", "--grace-period"]),
        (&["--grace-period", "1.5s", "--"], &["'1.5s'"]),
        (
            &["--grace-period", "18446744073709551615", "--"],
            &["'18446744073709551615'"],
        ),
        (&["--pre-stop-sleep", "9000h", "--"], &["'9000h'"]),
        (
            &["--pre-stop-sleep", "soon", "--"],
            &["'soon'", "--pre-stop-sleep"],
        ),
        (&["--stop-signal", "FOO", "--"], &["'FOO'", "--stop-signal"]),
        (&["--stop-signal", "KILL", "--"], &["'KILL'"]),
        (&["--stop-signal", "65", "--"], &["'65'"]),
        (&["--map-signal", "HUP", "--"], &["'HUP'", "--map-signal"]),
        (&["--map-signal", "HUP:NOPE", "--"], &["'HUP:NOPE'"]),
        (&["--map-signal", "KILL:TERM", "--"], &["'KILL:TERM'"]),
        (&["--remap-exit", "143", "--"], &["'143'", "--remap-exit"]),
        (&["--remap-exit", "300:0", "--"], &["'300:0'"]),
        (&["--signal-scope", "world", "--"], &["'world'", "--signal-scope"]),
        (&["--log-format", "xml", "--"], &["'xml'", "--log-format"]),
        (&["--log-level", "loud", "--"], &["'loud'", "--log-level"]),
        (
            &["--pre-stop", "echo 'unbalanced", "--"],
            &["--pre-stop", "balanced quotes"],
        ),
        (&["--pre-stop", "  ", "--"], &["--pre-stop"]),
        (
            &["--grace", "5s", "--"],
            &["'--grace'", "did you mean '--grace-period'?"],
        ),
        (
            &["-grace-period", "5s", "--"],
            &["did you mean '--grace-period'?"],
        ),
        (&["--log_level", "debug", "--"], &["did you mean '--log-level'?"]),
        (&["-x", "--"], &["'-x'", "put '--' before it"]),
        (&["-g", "--signal-scope", "child", "--"], &["given twice"]),
        (
            &["--pre-stop-http", "https://127.0.0.1/", "--"],
            &["--pre-stop-http", "http://HOST"],
        ),
        (&["--pre-stop-http", "http://example.com/", "--"], &["IP address"]),
        (
            &["--pre-stop-http", "get http://127.0.0.1/", "--"],
            &["--pre-stop-http"],
        ),
        (&["-p", "KILL", "--"], &["'KILL'", "-p"]),
        (
            &["--parent-death-signal", "NOPE", "--"],
            &["'NOPE'", "--parent-death-signal"],
        ),
        (&["-e", "256", "--"], &["'256'", "-e"]),
        (&["-r", "15:0", "--"], &["'15:0'", "-r", "cannot be dropped"]),
        (&["--map-signal", "INT:0", "--"], &["cannot be dropped"]),
    ];
    for (args, named) in cases {
        reject(args, &[], named);
    }
}

#[test]
fn bad_environment_exits_2_naming_the_variable() {
    let _g = shared();
    let cases: &[(&str, &str)] = &[
        ("CURTAIN_GRACE_PERIOD", "abc"),
        ("CURTAIN_PRE_STOP_SLEEP", "-1"),
        ("CURTAIN_STOP_SIGNAL", "SIGFOO"),
        ("CURTAIN_MAP_SIGNAL", "HUP:USR1,bad"),
        ("CURTAIN_REMAP_EXIT", "x:y"),
        ("CURTAIN_SIGNAL_SCOPE", "all"),
        ("CURTAIN_LOG_FORMAT", "yaml"),
        ("CURTAIN_LOG_LEVEL", "verbose"),
        ("CURTAIN_PRE_STOP", "a 'b"),
        ("CURTAIN_PRE_STOP_HTTP", "ftp://127.0.0.1/"),
        ("CURTAIN_PARENT_DEATH_SIGNAL", "STOP"),
    ];
    for (var, value) in cases {
        let shown = match *var {
            "CURTAIN_MAP_SIGNAL" => "bad",
            // A step's value is never repeated (the next test).
            "CURTAIN_PRE_STOP" | "CURTAIN_PRE_STOP_HTTP" => "may hold a secret",
            _ => value,
        };
        reject(&["--"], &[(var, value)], &[var, shown]);
    }
}

/// A pre-stop step may carry a token (a command's argument, a URL's query):
/// a bad one is named by its option or variable, never repeated.
#[test]
fn a_bad_step_is_not_repeated() {
    let _g = shared();
    let secret = "SECRET-7f3a";
    let command = format!("curl -H 'Authorization: {secret}");
    let url = format!("http://10.0.0.1:8080/drain?token={secret}#");
    let second_line = format!("drain --now\nnotify --token '{secret}");
    // (option or variable, value): each refused, named, never repeated.
    let cases = [
        ("--pre-stop", &command),
        ("--pre-stop-http", &url),
        ("CURTAIN_PRE_STOP", &command),
        ("CURTAIN_PRE_STOP_HTTP", &url),
        ("CURTAIN_PRE_STOP", &second_line),
    ];
    for (origin, value) in cases {
        let stderr = if origin.starts_with("--") {
            reject(&[origin, value, "--"], &[], &[origin])
        } else {
            reject(&["--"], &[(origin, value)], &[origin])
        };
        assert!(!stderr.contains(secret), "{origin}: {stderr}");
    }
    // A misspelt option with its value attached: the option is named, the
    // value is not.
    let misspelt = format!("--pre-stpo={command}");
    let stderr = reject(&[&misspelt, "--"], &[], &["'--pre-stpo'"]);
    assert!(!stderr.contains(secret), "{stderr}");
}

#[test]
fn missing_command_exits_2() {
    let _g = shared();
    for args in [&[][..], &["--grace-period", "1s"][..], &["--"][..]] {
        let out = Command::new(CURTAIN).args(args).output().expect("curtain");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("COMMAND"),
            "{args:?}"
        );
    }
}

#[test]
fn a_flag_beats_its_variable_and_app_options_are_the_apps() {
    let _g = shared();
    let dir = Scratch::new("prec");
    let out = dir.file("args");
    // A bad variable is not even looked at when the flag is given.
    let f = Run::start_with(
        Options {
            env: &[("CURTAIN_GRACE_PERIOD", "nonsense")],
            ..Options::default()
        },
        &[
            "--grace-period",
            "3s",
            tapp(),
            "args",
            &out,
            "--grace-period",
            "-x",
            "--",
        ],
    )
    .wait(SECS_10);
    f.assert_exit(0, "exited", true);
    assert_eq!(f.event("start")["grace_period_ms"], 3000);
    // Without `--`, everything after COMMAND belongs to the app.
    assert_eq!(
        std::fs::read_to_string(&out).expect("args"),
        "--grace-period\n-x\n--\n"
    );
}

#[test]
fn help_and_version_exit_0() {
    let _g = shared();
    let help = Command::new(CURTAIN).arg("--help").output().expect("curtain");
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for opt in [
        "--grace-period",
        "--stop-signal",
        "--pre-stop",
        "--pre-stop-sleep",
        "--map-signal",
        "--signal-scope",
        "--remap-exit",
        "--log-format",
        "--log-level",
        "--termination-log",
        "CURTAIN_GRACE_PERIOD",
    ] {
        assert!(text.contains(opt), "--help lacks {opt}: {text}");
    }
    let version = Command::new(CURTAIN).arg("--version").output().expect("curtain");
    assert_eq!(version.status.code(), Some(0));
    let line = String::from_utf8_lossy(&version.stdout).trim_end().to_string();
    assert!(
        line.starts_with(concat!(
            "curtain version ",
            env!("CARGO_PKG_VERSION"),
            " (dynamic) - git."
        )),
        "{line}"
    );
    assert_eq!(docker_init_commit(&line).map(str::len), Some(7), "{line}");
}

/// What dockerd takes from an init's `--version` line (tini's shape,
/// `... - git.COMMIT`): the commit, or None where dockerd would log
/// "unknown output format".
fn docker_init_commit(line: &str) -> Option<&str> {
    let (_, git) = line.split_once(" - ")?;
    let (prefix, commit) = git.trim().split_once('.')?;
    (prefix == "git" && !commit.is_empty() && !commit.contains('.')).then_some(commit)
}

/// Every option reads its CURTAIN_* variable (the ones not covered by the
/// behaviour tests are checked here through what curtain logs and does).
#[test]
fn variables_take_effect() {
    let _g = shared();
    let dir = Scratch::new("vars");
    let env = [
        ("CURTAIN_GRACE_PERIOD", "3s"),
        ("CURTAIN_STOP_SIGNAL", "QUIT"),
        ("CURTAIN_SIGNAL_SCOPE", "child"),
        ("CURTAIN_LOG_LEVEL", "debug"),
    ];
    let run = Run::start_with(
        Options {
            env: &env,
            ..Options::default()
        },
        &[tapp(), "record", dir.s()],
    )
    .ready(&dir);
    let f = run.stop(libc::SIGTERM);
    assert_eq!(f.event("start")["grace_period_ms"], 3000);
    assert_eq!(f.event("start")["stop_signal"], "SIGQUIT");
    let sent = f.event("stop_signal_sent");
    assert_eq!(
        (sent["signal"].as_str(), sent["scope"].as_str()),
        (Some("SIGQUIT"), Some("child")),
        "{f:#?}"
    );
    assert!(
        f.events().iter().any(|e| e["event"] == "reaped"),
        "debug events are on"
    );
    assert_eq!(recorded(&dir).first().map(|r| r.0), Some(libc::SIGQUIT));

    let f = Run::start_with(
        Options {
            env: &[("CURTAIN_LOG_FORMAT", "text")],
            ..Options::default()
        },
        &[tapp(), "exit", "0"],
    )
    .wait(SECS_10);
    assert!(f.lines.iter().all(|l| !l.starts_with('{')), "text format: {f:#?}");
    assert!(
        f.lines.last().is_some_and(|l| l.contains(" event=exit ")),
        "{f:#?}"
    );
}

/// Started as a runtime's `--init` (dockerd runs it as /sbin/docker-init,
/// podman as /run/podman-init), the default grace period is 8 s, below
/// `docker stop`'s and `podman stop`'s 10 s; an option or a variable still
/// wins, and `start` says where the value came from.
#[test]
fn as_a_runtime_init_the_default_grace_fits_docker_stop() {
    let _g = shared();
    let dir = Scratch::new("runtime-init");
    let start = |argv0: &str, args: &[&str], env: &[(&str, &str)]| {
        let link = dir.path(argv0);
        if !link.exists() {
            std::os::unix::fs::symlink(CURTAIN, &link).expect("symlink");
        }
        let mut argv = vec![link.to_string_lossy().into_owned()];
        argv.extend(args.iter().map(|s| s.to_string()));
        argv.extend([tapp().to_string(), "exit".into(), "0".into()]);
        let f = Run::start_argv(
            Options {
                env,
                ..Options::default()
            },
            argv,
        )
        .wait(SECS_10);
        let start = f.event("start");
        // The message says why, when the runtime-init default was taken.
        let why = start["message"]
            .as_str()
            .unwrap_or("")
            .contains("the default as a runtime's --init");
        assert_eq!(why, start["grace_period_from"] == "runtime_init", "{start}");
        (
            start["grace_period_ms"].as_u64(),
            start["grace_period_from"].clone(),
        )
    };
    assert_eq!(
        start("docker-init", &["--"], &[]),
        (Some(8_000), "runtime_init".into())
    );
    assert_eq!(
        start("podman-init", &[], &[]),
        (Some(8_000), "runtime_init".into())
    );
    assert_eq!(
        start("docker-init", &["--grace-period", "20s", "--"], &[]),
        (Some(20_000), "option".into())
    );
    assert_eq!(
        start("docker-init", &["--"], &[("CURTAIN_GRACE_PERIOD", "15s")]),
        (Some(15_000), "variable".into())
    );
    assert_eq!(start("curtain", &["--"], &[]), (Some(25_000), "default".into()));
}
