//! Starting the app and the pre-stop steps.
//!
//! Both go through `sys::spawn` (a vfork-style child, PATH searched as
//! `execvp` does) into a process group of their
//! own, with the signal mask curtain was started with and the dispositions it
//! inherited (SIGTTIN/SIGTTOU put back to default where curtain changed them),
//! so the child cannot tell curtain is there. curtain opens no descriptor for
//! itself before this point, so nothing of its own leaks; inherited ones
//! (fd 3 and up) pass through unchanged.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::exit_reason::{ExecFailure, Outcome};
use crate::http::{self, HttpRequest};
use crate::signals::SignalSetup;
use crate::sys::{self, SpawnRequest, Stdin};

fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Start the app. When stdin is curtain's controlling terminal, the app's
/// group becomes the terminal's foreground group (`docker run -it`), so
/// Ctrl-C and job control reach it directly.
pub fn spawn_app(command: &[OsString], setup: &SignalSetup) -> Result<i32, Outcome> {
    let argv = command
        .iter()
        .map(|a| c_string(a.clone().into_vec()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| Outcome::SetupFailed(format!("bad argument: {e}")))?;
    let req = SpawnRequest {
        argv: &argv,
        mask: &setup.original_mask,
        default_signals: &setup.reset_in_child,
        foreground_tty: sys::stdin_is_controlling_tty(),
        stdin: Stdin::Inherit,
        cwd: None,
    };
    let program = command.first().map_or(OsStr::new(""), OsString::as_os_str);
    sys::spawn(&req).map_err(|e| exec_failure(program, e))
}

/// Start a pre-stop command: stdin /dev/null (closed in a root without one),
/// stdout/stderr curtain's, in curtain's original working directory.
pub fn spawn_pre_stop(argv: &[String], setup: &SignalSetup, cwd: Option<&CString>) -> io::Result<i32> {
    let argv = argv
        .iter()
        .map(|a| c_string(a.clone().into_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let req = SpawnRequest {
        argv: &argv,
        mask: &setup.original_mask,
        default_signals: &setup.reset_in_child,
        foreground_tty: false,
        stdin: if Path::new("/dev/null").exists() {
            Stdin::Null
        } else {
            Stdin::Closed
        },
        cwd: cwd.map(CString::as_c_str),
    };
    sys::spawn(&req)
}

/// Start a `--pre-stop-http` request in a forked copy of curtain (see
/// `http`): returns its pid and the read end of the pipe its result comes
/// through. The copy keeps curtain's blocked signal mask, so only the
/// SIGKILL at the stop window's end stops it early.
pub fn spawn_http(request: &HttpRequest) -> io::Result<(i32, i32)> {
    let (read, write) = sys::pipe()?;
    let pid = match sys::fork() {
        Ok(pid) => pid,
        Err(e) => {
            sys::close(read);
            sys::close(write);
            return Err(e);
        }
    };
    if pid == 0 {
        let result = request.request();
        // The result fits the pipe's buffer many times: one write.
        let _ = sys::write(write, &http::encode_result(&result));
        sys::exit(http::exit_code(&result));
    }
    sys::close(write);
    Ok((pid, read))
}

/// Turn a spawn error into an outcome: not found (127), cannot be executed
/// (126), or setup_failed (125) when the spawn itself failed (no memory, no
/// process slots); `Outcome::exit_code` holds the numbers.
pub fn exec_failure(program: &OsStr, err: io::Error) -> Outcome {
    let name = program.to_string_lossy();
    match err.raw_os_error() {
        Some(libc::ENOENT) if exists(program) => Outcome::ExecFailed {
            failure: ExecFailure::NotFound,
            error: format!("{name}: exists, but its interpreter or loader is missing ({err})"),
        },
        Some(libc::ENOENT) => Outcome::ExecFailed {
            failure: ExecFailure::NotFound,
            error: format!("{name}: not found ({err})"),
        },
        Some(
            libc::EACCES
            | libc::EPERM
            | libc::ENOEXEC
            | libc::EISDIR
            | libc::ENOTDIR
            | libc::ELOOP
            | libc::ETXTBSY
            | libc::E2BIG
            | libc::ENAMETOOLONG
            | libc::ELIBBAD,
        ) => Outcome::ExecFailed {
            failure: ExecFailure::NotExecutable,
            error: format!("{name}: cannot be executed ({err})"),
        },
        _ => Outcome::SetupFailed(format!("cannot start {name}: {err}")),
    }
}

/// Whether `program` names an existing file, looked up as `sys::spawn`
/// looks it up (no `PATH`: `/bin:/usr/bin`).
fn exists(program: &OsStr) -> bool {
    if program.as_bytes().contains(&b'/') {
        return Path::new(program).exists();
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}
