//! curtain exits with the app's code, 128+N for a death by signal N, 127 when
//! the program is missing and 126 when it cannot be executed.

use crate::support::*;

#[test]
fn exits_with_the_apps_code() {
    let _g = shared();
    for mode in MODES {
        for code in [0, 3, 255] {
            let f = Run::start(mode, &["--", tapp(), "exit", &code.to_string()]).wait(SECS_10);
            f.assert_exit(code, "exited", code == 0);
            assert_eq!(f.exit()["original_exit_code"], code);
            assert_eq!(f.exit()["signal"], serde_json::Value::Null);
        }
    }
}

#[test]
fn exits_128_plus_signal_when_the_app_dies_of_one() {
    let _g = shared();
    for mode in MODES {
        let f = Run::start(mode, &["--", tapp(), "segv"]).wait(SECS_10);
        f.assert_exit(139, "signaled", false);
        assert_eq!(f.exit()["signal"], "SIGSEGV");
        // SIGTERM that curtain did not send: signaled, unexpected.
        let f = Run::start(mode, &["--", tapp(), "raise", "15"]).wait(SECS_10);
        f.assert_exit(143, "signaled", false);
        // SIGKILL from neither curtain nor the OOM killer.
        let f = Run::start(mode, &["--", tapp(), "raise", "9"]).wait(SECS_10);
        f.assert_exit(137, "killed", false);
    }
}

#[test]
fn exec_failures_are_127_and_126() {
    let _g = shared();
    let dir = Scratch::new("exec");
    let noexec = dir.file("not-executable");
    std::fs::write(&noexec, "data").expect("write");
    let script = dir.file("script");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    for mode in MODES {
        let f = Run::start(mode, &["--", "/no/such/program"]).wait(SECS_10);
        f.assert_exit(127, "exec_failed", false);
        assert!(
            f.exit()["message"].as_str().unwrap_or("").contains("not found"),
            "{f:#?}"
        );
        let f = Run::start(mode, &["no-such-program-in-path"]).wait(SECS_10);
        f.assert_exit(127, "exec_failed", false);
        // A PATH entry that is a file, not a directory, is "not there" as
        // for a shell (ENOTDIR from the last entry must not make it 126).
        let path = format!("/usr/bin:/bin:{noexec}");
        let opts = Options {
            mode,
            env: &[("PATH", &path)],
            ..Options::default()
        };
        let f = Run::start_with(opts, &["no-such-program-in-path"]).wait(SECS_10);
        f.assert_exit(127, "exec_failed", false);
        let f = Run::start(mode, &["--", &noexec]).wait(SECS_10);
        f.assert_exit(126, "exec_failed", false);
        let f = Run::start(mode, &["--", &script]).wait(SECS_10);
        f.assert_exit(127, "exec_failed", false);
        assert!(
            f.exit()["message"]
                .as_str()
                .unwrap_or("")
                .contains("interpreter or loader is missing"),
            "{f:#?}"
        );
    }
}

#[test]
fn remap_exit_rewrites_the_code_and_keeps_the_original() {
    let _g = shared();
    let f = Run::start(
        Mode::Pid1,
        &[
            "--remap-exit",
            "3:0",
            "--remap-exit",
            "7:1",
            "--",
            tapp(),
            "exit",
            "3",
        ],
    )
    .wait(SECS_10);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(f.exit()["exit_code"], 0);
    assert_eq!(f.exit()["original_exit_code"], 3);
    let f = Run::start_with(
        Options {
            env: &[("CURTAIN_REMAP_EXIT", "5:6,3:4")],
            ..Options::default()
        },
        &[tapp(), "exit", "3"],
    )
    .wait(SECS_10);
    assert_eq!(f.code, Some(4), "{f:#?}");
}

/// When curtain cannot start the app for lack of resources (here: a user
/// at its process limit, so the spawn gets EAGAIN), it exits 125 with
/// reason setup_failed, as docker and podman do for their own failures.
#[test]
fn a_refused_spawn_is_setup_failed_125() {
    use std::os::unix::process::CommandExt;
    let _g = shared();
    // A copy any user can reach (the checkout may sit in a private folder),
    // run as a uid no other process uses, allowed one process: itself.
    const UID: u32 = 54_321;
    let bin = std::env::temp_dir().join(format!("curtain-setup-failed-{}", std::process::id()));
    std::fs::copy(CURTAIN, &bin).expect("copy curtain");
    let _remove = RemoveOnDrop(bin.clone());
    let mut cmd = std::process::Command::new(&bin);
    cmd.args([
        "--log-format",
        "json",
        "--termination-log",
        "",
        "--",
        tapp(),
        "exit",
        "0",
    ]);
    // SAFETY: async-signal-safe calls only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let one = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 1,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &one) != 0
                || libc::setgid(UID) != 0
                || libc::setuid(UID) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("curtain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(125),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exit: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or("")).expect("exit event");
    assert_eq!(exit["reason"], "setup_failed", "{exit}");
    assert_eq!(exit["expected"], false);
    assert!(
        exit["message"]
            .as_str()
            .unwrap_or("")
            .contains("Resource temporarily unavailable"),
        "{exit}"
    );
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
