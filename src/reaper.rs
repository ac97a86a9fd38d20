//! Reaping: the sole owner of `wait4`, how a child ended, and the list of
//! curtain's children.
//!
//! SIGCHLD coalesces (many children can end for one delivered signal), so a
//! pass calls `wait4(-1, WNOHANG)` until the kernel says "none ready" or
//! "no children" (ECHILD, a normal outcome): one syscall per zombie plus one.
//! Each status goes to the caller, which routes it by pid (the app, a
//! pre-stop command, or an orphan), so no status is ever lost.

use std::fmt;
use std::io;

use crate::events::Event;
use crate::logging;
use crate::signals::Signal;
use crate::sys::{self, RawEnd};

/// How a child ended, from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled { signal: Signal, core_dumped: bool },
}

/// `exited 3`, `killed by SIGTERM`, `killed by SIGSEGV (core dumped)`.
impl fmt::Display for ChildEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildEnd::Exited(code) => write!(f, "exited {code}"),
            ChildEnd::Signaled {
                signal,
                core_dumped: false,
            } => write!(f, "killed by {signal}"),
            ChildEnd::Signaled {
                signal,
                core_dumped: true,
            } => write!(f, "killed by {signal} (core dumped)"),
        }
    }
}

/// Reap every ended child, handing each to `on_reap`. Returns whether curtain
/// still has children (running ones) afterwards.
pub fn reap_all(mut on_reap: impl FnMut(i32, ChildEnd)) -> bool {
    loop {
        match sys::reap_one() {
            Ok(Some((pid, raw))) => on_reap(pid, child_end(raw)),
            Ok(None) => return true,
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return false,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => {
                logging::emit(&Event::SyscallError {
                    call: "wait4",
                    error: e.to_string(),
                });
                return true;
            }
        }
    }
}

fn child_end(raw: RawEnd) -> ChildEnd {
    match raw {
        RawEnd::Exited(code) => ChildEnd::Exited(code),
        RawEnd::Signaled { signo, core_dumped } => ChildEnd::Signaled {
            signal: Signal(signo),
            core_dumped,
        },
    }
}

/// curtain's children not yet reaped, from `/proc/self/task/*/children`. Their
/// pids cannot be reused before curtain reaps them, so signalling them is safe.
pub fn own_children() -> io::Result<Vec<i32>> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path().join("children");
        let text = crate::cgroup::read_small(&path).ok_or_else(|| io::Error::other("unreadable"))?;
        pids.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
    }
    Ok(pids)
}
