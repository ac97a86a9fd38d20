//! Under a terminal the app's process group is the foreground group, so
//! Ctrl-C goes from the terminal straight to the app (`docker run -it`).

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

#[test]
fn app_is_the_foreground_group_and_ctrl_c_reaches_it() {
    let _g = shared();
    let dir = Scratch::new("tty");
    let (mut master, slave) = {
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
    let mut cmd = Command::new(CURTAIN);
    cmd.args(["--log-format", "json", "--", tapp(), "tty", dir.s()])
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
    // SAFETY: async-signal-safe calls only: a new session whose controlling
    // terminal is the pty, as a container runtime does for `-t`.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("curtain");
    // The Command holds copies of the slave: close them, so the master sees
    // end-of-file once curtain and the app are gone.
    drop(cmd);
    // Drain the terminal so nothing ever blocks on it.
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
    let ready = wait_file(&dir.path("ready"), SECS_10);
    let (pgrp, tpgid) = ready.trim().split_once(' ').expect("pgrp tpgid");
    assert_eq!(
        pgrp, tpgid,
        "the app's group must be the terminal's foreground group"
    );
    assert_ne!(pgrp, child.id().to_string(), "the app has a group of its own");
    master.write_all(&[0x03]).expect("Ctrl-C");
    let deadline = std::time::Instant::now() + SECS_10;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "curtain did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(master);
    assert_eq!(status.code(), Some(130), "the app died of SIGINT");
    let text = output.join().unwrap_or_default();
    let exit = text
        .lines()
        .find(|l| l.contains("\"event\":\"exit\""))
        .unwrap_or_else(|| panic!("no exit event: {text}"));
    assert!(
        exit.contains("\"reason\":\"signaled\"") && exit.contains("\"signal\":\"SIGINT\""),
        "{exit}"
    );
}
