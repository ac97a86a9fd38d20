//! Under a terminal the app's process group is the foreground group, so
//! Ctrl-C goes from the terminal straight to the app (`docker run -it`), and
//! the terminal can never stop curtain itself.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::*;

/// curtain on a fresh pseudo-terminal that is its controlling terminal (as a
/// runtime does for `-t`); returns curtain, the master side, and (with
/// `collect`) a thread that gathers everything written to the terminal. That
/// thread holds a copy of the master, so the terminal cannot hang up then.
fn spawn_on_pty(
    args: &[&str],
    tostop: bool,
    collect: bool,
) -> (Guard, std::fs::File, Option<JoinHandle<String>>) {
    let (master, slave) = {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty fills two descriptors we then own.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: plain fcntl: no other test's child may inherit the pty.
        unsafe {
            libc::fcntl(m, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(s, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        // SAFETY: fresh descriptors from openpty.
        unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
    };
    if tostop {
        // SAFETY: termios calls on a descriptor we own, with a valid struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut t), 0);
            t.c_lflag |= libc::TOSTOP;
            assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t), 0);
        }
    }
    let mut cmd = Command::new(CURTAIN);
    cmd.args(args)
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
    // SAFETY: async-signal-safe calls only: a new session whose controlling
    // terminal is the pty.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = Guard(cmd.spawn().expect("curtain"));
    // The Command holds copies of the slave: close them, so the master sees
    // end-of-file once curtain and the app are gone.
    drop(cmd);
    if !collect {
        return (child, master, None);
    }
    let mut reader = master.try_clone().expect("dup");
    let output = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    (child, master, Some(output))
}

fn wait_exit(child: &mut Guard) -> std::process::ExitStatus {
    let deadline = Instant::now() + SECS_10;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        assert!(Instant::now() < deadline, "curtain did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn app_is_the_foreground_group_and_ctrl_c_reaches_it() {
    let _g = shared();
    let dir = Scratch::new("tty");
    let (mut child, mut master, output) = spawn_on_pty(
        &["--log-format", "json", "--", tapp(), "tty", dir.s()],
        false,
        true,
    );
    let ready = wait_file(&dir.path("ready"), SECS_10);
    let (pgrp, tpgid) = ready.trim().split_once(' ').expect("pgrp tpgid");
    assert_eq!(
        pgrp, tpgid,
        "the app's group must be the terminal's foreground group"
    );
    assert_ne!(pgrp, child.id().to_string(), "the app has a group of its own");
    master.write_all(&[0x03]).expect("Ctrl-C");
    let status = wait_exit(&mut child);
    drop(master);
    assert_eq!(status.code(), Some(130), "the app died of SIGINT");
    let text = output.and_then(|o| o.join().ok()).unwrap_or_default();
    let exit = text
        .lines()
        .find(|l| l.contains("\"event\":\"exit\""))
        .unwrap_or_else(|| panic!("no exit event: {text}"));
    assert!(
        exit.contains("\"reason\":\"signaled\"") && exit.contains("\"signal\":\"SIGINT\""),
        "{exit}"
    );
}

/// With TOSTOP set, a background process that writes to its terminal gets
/// SIGTTOU, which stops it by default. curtain logs to the terminal from the
/// background (the app owns the foreground) and must never stop.
#[test]
fn the_terminal_never_stops_curtain() {
    let _g = shared();
    let dir = Scratch::new("tostop");
    let args = [
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--",
        tapp(),
        "record",
        dir.s(),
    ];
    let (mut child, master, output) = spawn_on_pty(&args, true, true);
    wait_file(&dir.path("ready"), SECS_10);
    let pid = child.id() as i32;
    // curtain logs each signal to the terminal right after forwarding it,
    // and takes the next one only then: once the second one reached the app,
    // curtain has written the first one's line from the background.
    for sig in [libc::SIGUSR1, libc::SIGUSR2] {
        // SAFETY: plain kill(2) to our child.
        unsafe { libc::kill(pid, sig) };
        wait_recorded(&dir, sig, SECS_5);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    assert_ne!(state, Some('T'), "curtain was stopped by its terminal: {stat}");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = wait_exit(&mut child);
    drop(master);
    assert_eq!(status.code(), Some(0));
    let text = output.and_then(|o| o.join().ok()).unwrap_or_default();
    assert!(
        text.contains("\"event\":\"signal\"") && text.contains("\"event\":\"exit\""),
        "{text}"
    );
}

/// When the terminal hangs up, Linux sends SIGHUP to the session leader
/// (curtain) only; the app must get it from curtain, exactly once. Every
/// signal the app got is checked after it has ended, in order: a second
/// SIGHUP, from curtain or from the kernel, would be among them.
#[test]
fn a_terminal_hangup_reaches_the_app_once() {
    let _g = shared();
    let dir = Scratch::new("hangup");
    let args = ["--log-format", "json", "--", tapp(), "record", dir.s()];
    let (mut child, master, _) = spawn_on_pty(&args, false, false);
    wait_file(&dir.path("ready"), SECS_10);
    drop(master); // the last master descriptor: the hang-up
    wait_recorded(&dir, libc::SIGHUP, SECS_5);
    // SIGUSR1 then SIGTERM through curtain: a repeated SIGHUP still pending
    // at curtain or at the app would be taken before either (lower number).
    let pid = child.id() as i32;
    // SAFETY: plain kill(2) to our child.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    wait_recorded(&dir, libc::SIGUSR1, SECS_5);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(wait_exit(&mut child).code(), Some(0));
    // (The kernel sends the leader SIGCONT with the hang-up; curtain passes
    // that on too, so it may be among them.)
    let got: Vec<i32> = recorded(&dir)
        .iter()
        .map(|r| r.0)
        .filter(|s| [libc::SIGHUP, libc::SIGUSR1, libc::SIGTERM].contains(s))
        .collect();
    assert_eq!(
        got,
        [libc::SIGHUP, libc::SIGUSR1, libc::SIGTERM],
        "exactly one SIGHUP: {:?}",
        recorded(&dir)
    );
}
