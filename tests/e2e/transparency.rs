//! The app cannot tell curtain is there: it gets the signal mask and ignored
//! dispositions curtain was started with, no descriptor of curtain's own,
//! and the inherited ones; curtain keeps none and leaves its directory.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::support::*;

fn status_of(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// Block USR1 and RTMIN+3, ignore USR2, HUP and PIPE: a "dirty" parent.
fn dirty_parent() -> std::io::Result<()> {
    // SAFETY: called in the forked child before exec; plain libc calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGRTMIN() + 3);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    Ok(())
}

/// What `/proc/self/status` says of the app, started the same way with or
/// without curtain in between (`unshare` itself changes glibc's reserved
/// signal 33, so the reference goes through it too).
fn app_status(dir: &Scratch, mode: Mode, dirty: bool, with_curtain: bool) -> String {
    let out = dir.file("app");
    let _ = std::fs::remove_file(&out);
    let mut argv: Vec<String> = Vec::new();
    if mode == Mode::Pid1 {
        argv.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(String::from));
    }
    if with_curtain {
        argv.extend([CURTAIN, "--"].map(String::from));
    }
    argv.extend([tapp(), "status", &out].map(String::from));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdout(std::process::Stdio::null());
    if dirty {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe { cmd.pre_exec(dirty_parent) };
    }
    // Rust's test harness ignores SIGPIPE; give the clean case a clean start.
    if !dirty {
        // SAFETY: as above.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                Ok(())
            })
        };
    }
    let status = cmd.status().expect("curtain");
    assert_eq!(status.code(), Some(0), "{argv:?}");
    std::fs::read_to_string(out).expect("app status")
}

#[test]
fn app_gets_the_original_mask_and_ignored_signals() {
    let _g = shared();
    for dirty in [false, true] {
        let dir = Scratch::new("mask");
        for mode in MODES {
            let want = app_status(&dir, mode, dirty, false);
            let got = app_status(&dir, mode, dirty, true);
            for key in ["SigBlk:", "SigIgn:"] {
                assert_eq!(
                    status_of(&got, key),
                    status_of(&want, key),
                    "{key} dirty={dirty} {mode:?}"
                );
            }
            if dirty {
                let blocked = status_of(&want, "SigBlk:");
                assert_ne!(blocked, "0000000000000000", "the dirty parent blocks signals");
            }
        }
    }
}

#[test]
fn app_gets_inherited_fds_and_none_of_curtains() {
    let _g = shared();
    let dir = Scratch::new("fds");
    let out = dir.file("app");
    let inherited = dir.file("inherited");
    // fd 3 (and 7) open in curtain's parent, without CLOEXEC: socket activation.
    // The same shell line, once with curtain and once without: the app's fd
    // table must be the same (the test runner's own inherited descriptors
    // included; curtain's pipes, sockets or files never).
    let table = |with_curtain: bool| {
        let _ = std::fs::remove_file(&out);
        let prefix = if with_curtain {
            format!("{CURTAIN} --")
        } else {
            String::new()
        };
        let script = format!(
            "exec 3>>{inherited} 7>>{inherited}; exec {prefix} {} status {out}",
            tapp()
        );
        let status = Command::new("sh")
            .args(["-c", &script])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("sh");
        assert!(status.success());
        let text = std::fs::read_to_string(&out).expect("status");
        text.lines()
            .filter(|l| l.starts_with("fd "))
            .map(|l| l.replace("app.tmp", "OUT"))
            .collect::<Vec<_>>()
    };
    let direct = table(false);
    let through_curtain = table(true);
    assert_eq!(through_curtain, direct);
    let fd = |n: &str| {
        through_curtain
            .iter()
            .find(|l| l.split(' ').nth(1) == Some(n))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        fd("3").ends_with("inherited") && fd("7").ends_with("inherited"),
        "{through_curtain:?}"
    );
}

/// Once the app runs, curtain holds no descriptor beyond 0-2 and sits in /.
#[test]
fn curtain_keeps_no_inherited_fd_and_leaves_its_directory() {
    let _g = shared();
    let dir = Scratch::new("cwd");
    let script = format!(
        "cd {}; exec 3</dev/null 9</dev/null; exec {CURTAIN} -- {} pause {}",
        dir.s(),
        tapp(),
        dir.s()
    );
    let mut child = Guard(
        Command::new("sh")
            .args(["-c", &script])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("sh"),
    );
    wait_file(&dir.path("ready"), SECS_10);
    let pid = child.id();
    // curtain briefly opens files of its own (the cgroup counter, about 1 ms
    // after the spawn); an inherited descriptor would stay open for good.
    let fds = || {
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("fd dir")
            .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        fds.sort();
        fds
    };
    let deadline = std::time::Instant::now() + SECS_5;
    while fds() != ["0", "1", "2"] && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let fds = fds();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd");
    // SAFETY: plain kill of our child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert_eq!(fds, ["0", "1", "2"]);
    assert_eq!(cwd, std::path::PathBuf::from("/"));
    assert_eq!(status.code(), Some(143));
}
