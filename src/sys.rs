//! The only module with `unsafe` and raw libc calls.
//!
//! Everything here is a thin, checked wrapper around one syscall (or one libc
//! call). curtain does not use nix: its `Signal` and `WaitStatus` cannot
//! represent real-time signals (its `waitpid` would *consume* a child's status
//! and then fail to decode it), and `sigtimedwait` (the one wait of the event
//! loop) and `posix_spawn` with a chosen signal mask and `tcsetpgrp` are not
//! in it at all.
//!
//! Each `unsafe` block says why it is sound. Nothing here panics.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::time::Duration;

/// Turn a `-1`-on-error libc return into an `io::Result`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The kernel's signal set (`sigset_t`), built safely.
#[derive(Clone, Copy)]
pub struct KernelSigset(libc::sigset_t);

impl KernelSigset {
    pub fn empty() -> KernelSigset {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole set it is given.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            KernelSigset(set.assume_init())
        }
    }

    pub fn add(&mut self, signo: i32) {
        // SAFETY: the set is initialised; an invalid number only yields EINVAL.
        unsafe {
            libc::sigaddset(&mut self.0, signo);
        }
    }
}

/// Replace the calling thread's signal mask; returns the previous one.
pub fn set_signal_mask(set: &KernelSigset) -> io::Result<KernelSigset> {
    let mut old = KernelSigset::empty();
    // SAFETY: both pointers are valid sigset_t.
    check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set.0, &mut old.0) })?;
    Ok(old)
}

/// Set `signo` to SIG_IGN; returns whether it was SIG_DFL before (false if it
/// was already ignored or had a handler).
pub fn ignore_signal(signo: i32) -> io::Result<bool> {
    // SAFETY: sigaction structs are plain data; zeroed is a valid "SIG_DFL,
    // empty mask, no flags" value, and the kernel fills `old`.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = libc::SIG_IGN;
        let mut old: libc::sigaction = std::mem::zeroed();
        check(libc::sigaction(signo, &new, &mut old))?;
        Ok(old.sa_sigaction == libc::SIG_DFL)
    }
}

/// What the kernel tells about a received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    /// `si_code`: SI_USER (kill), SI_QUEUE, SI_TKILL, SI_KERNEL, ...
    pub code: i32,
    /// Sender pid as seen from this pid namespace (0: outside or the kernel).
    pub pid: i32,
    pub uid: u32,
}

pub const SI_USER: i32 = libc::SI_USER;
pub const SI_KERNEL: i32 = 0x80;

/// Wait in the kernel for one signal of `set` (which must be blocked), for at
/// most `timeout` (`None`: no limit). `Ok(None)` means the timeout passed.
/// This is the event loop's only blocking call: one syscall per signal.
pub fn wait_signal(set: &KernelSigset, timeout: Option<Duration>) -> io::Result<Option<SigInfo>> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    });
    let ts_ptr = ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec);
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: valid set, out-pointer to a zeroed siginfo_t, and a timespec
    // that lives until the call returns (or null: wait without limit).
    let ret = unsafe { libc::sigtimedwait(&set.0, info.as_mut_ptr(), ts_ptr) };
    if ret == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) => Ok(None),
            Some(libc::EINTR) => Ok(None),
            _ => Err(err),
        };
    }
    // SAFETY: the kernel filled the siginfo_t; si_pid/si_uid read the union
    // members every signal sent by kill/sigqueue/the kernel carries (zero
    // otherwise, as the struct was zeroed).
    let info = unsafe { info.assume_init() };
    let (pid, uid) = unsafe { (info.si_pid(), info.si_uid()) };
    Ok(Some(SigInfo {
        signo: ret,
        code: info.si_code,
        pid,
        uid,
    }))
}

/// `kill(2)` with a raw signal number (real-time signals included).
pub fn kill(pid: i32, signo: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::kill(pid, signo) }).map(drop)
}

/// How a reaped child ended, straight from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEnd {
    Exited(i32),
    Signaled { signo: i32, core_dumped: bool },
}

/// One non-blocking `wait4(-1)`. `Ok(Some)` reaped a child; `Ok(None)`: there
/// are children but none has ended; `Err(ECHILD)`: no children at all.
pub fn reap_one() -> io::Result<Option<(i32, RawEnd)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: status is a valid out-pointer.
    let pid = check(unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) })?;
    if pid == 0 {
        return Ok(None);
    }
    let end = if libc::WIFSIGNALED(status) {
        RawEnd::Signaled {
            signo: libc::WTERMSIG(status),
            core_dumped: libc::WCOREDUMP(status),
        }
    } else {
        // Without WUNTRACED/WCONTINUED only exits and signal deaths are reported.
        RawEnd::Exited(libc::WEXITSTATUS(status))
    };
    Ok(Some((pid, end)))
}

/// Become a child subreaper, so orphans of the app are re-parented to us.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// Ask the kernel for `signo` when the parent (the thread that started
/// curtain) dies. Cleared in every child curtain forks or spawns.
pub fn set_parent_death_signal(signo: i32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes one integer argument (a signal number).
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signo as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// The parent's pid: 0 for a PID 1, whose parent is outside its namespace.
pub fn parent_pid() -> i32 {
    // SAFETY: plain syscall that cannot fail.
    unsafe { libc::getppid() }
}

/// `fork()`: `Ok(0)` in the child, the child's pid in the parent. curtain
/// is single-threaded, so the child may run any code (allocate, connect).
pub fn fork() -> io::Result<i32> {
    // SAFETY: no other thread exists whose locks the child could inherit held.
    check(unsafe { libc::fork() })
}

/// A pipe `(read, write)`, both ends close-on-exec and non-blocking.
pub fn pipe() -> io::Result<(i32, i32)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    Ok((fds[0], fds[1]))
}

/// One `read(2)`.
pub fn read(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Close a descriptor curtain opened; nothing can be done about an error.
pub fn close(fd: i32) {
    // SAFETY: fd is one of curtain's own, closed once.
    unsafe { libc::close(fd) };
}

/// Close every descriptor from 3 up. Used once the app has its copies of the
/// inherited ones, so curtain holds nothing open that the app might need
/// closed (a socket, a pipe's write end).
pub fn close_fds_from_3() -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; nothing in curtain holds
    // one at or above 3 at this point (it opened none for itself).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    // Linux < 5.9: list /proc/self/fd first (the listing's own descriptor is
    // gone once read_dir is dropped), then close.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= 3)
        .collect();
    for fd in fds {
        // SAFETY: closing a descriptor number; EBADF (the listing's own) is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Whether fd 0 is a terminal that is our controlling terminal (so that
/// `tcsetpgrp` on it can succeed).
pub fn stdin_is_controlling_tty() -> bool {
    // SAFETY: plain calls on fd 0 with no pointers.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) != -1 }
}

/// The process group of `pid`.
pub fn getpgid(pid: i32) -> io::Result<i32> {
    // SAFETY: plain syscall.
    check(unsafe { libc::getpgid(pid) })
}

/// The started program's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// curtain's own.
    Inherit,
    /// /dev/null.
    Null,
    /// Closed (for roots without /dev/null).
    Closed,
}

/// What `spawn` needs to start a program.
pub struct SpawnRequest<'a> {
    pub argv: &'a [CString],
    /// The signal mask the program starts with.
    pub mask: &'a KernelSigset,
    /// Signals whose disposition is reset to SIG_DFL in the program.
    pub default_signals: &'a KernelSigset,
    /// Make the new process group the terminal's foreground group.
    pub foreground_tty: bool,
    pub stdin: Stdin,
    /// Working directory to start in (None: curtain's own).
    pub cwd: Option<&'a CStr>,
}

extern "C" {
    static environ: *const *mut libc::c_char;
}

/// The paths `spawn` tries for `program`, as `execvp` does: the name itself
/// when it has a slash, else each `PATH` entry in order (an empty entry is
/// the working directory; no `PATH`: glibc's default, `/bin:/usr/bin`).
fn exec_candidates(program: &CStr) -> Vec<CString> {
    use std::os::unix::ffi::OsStrExt;
    let name = program.to_bytes();
    if name.is_empty() || name.contains(&b'/') {
        return vec![program.to_owned()];
    }
    let path = std::env::var_os("PATH");
    let path = path.as_ref().map_or(&b"/bin:/usr/bin"[..], |p| p.as_bytes());
    path.split(|&b| b == b':')
        .filter_map(|dir| {
            let dir = if dir.is_empty() { &b"."[..] } else { dir };
            let mut full = Vec::with_capacity(dir.len() + 1 + name.len());
            full.extend_from_slice(dir);
            full.push(b'/');
            full.extend_from_slice(name);
            CString::new(full).ok()
        })
        .collect()
}

/// Everything the child of `spawn` needs, prepared by the parent: the child
/// shares curtain's memory and must not allocate, lock or unwind.
struct ChildPlan<'a> {
    candidates: &'a [CString],
    /// The candidates come from a `PATH` search (the name has no slash).
    searched: bool,
    argv: &'a [*mut libc::c_char],
    req: &'a SpawnRequest<'a>,
    /// Written by the child when it fails; 0 when it reached `execve`.
    errno: libc::c_int,
}

/// The stack the child runs on: part of the parent's frame, which nobody
/// else touches while the parent is suspended (CLONE_VFORK). The child used
/// 592 bytes of it (measured by filling it with a pattern, each path taken);
/// it stays small because every page of it stays resident in curtain.
#[repr(C, align(16))]
struct ChildStack([MaybeUninit<u8>; 8 * 1024]);

/// The child of `spawn`, between `clone` and `execve`. It runs on its own
/// stack in curtain's memory while curtain waits, with curtain's mask (every
/// catchable signal but the faults blocked); curtain installs no signal
/// handler, so no signal can run code here. Only async-signal-safe calls;
/// on failure the errno goes to the plan.
extern "C" fn spawn_child(plan: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `plan` is the ChildPlan `spawn` passed to clone, alive until
    // the parent resumes, which is after this process execs or exits.
    let plan = unsafe { &mut *plan.cast::<ChildPlan>() };
    plan.errno = child_prepare_and_exec(plan);
    // SAFETY: _exit never returns and runs no atexit handler or destructor
    // (which would touch the parent's memory).
    unsafe { libc::_exit(127) }
}

/// Returns only on failure, with the errno.
fn child_prepare_and_exec(plan: &ChildPlan) -> libc::c_int {
    let req = plan.req;
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL);
    // SAFETY: plain syscalls on values the parent prepared; a zeroed
    // sigaction is "SIG_DFL, no flags, empty mask".
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        // glibc's reserved signals (32, 33) keep curtain's disposition: a
        // handler of glibc's is reset by execve, an inherited SIG_IGN stays.
        for n in (1..32).chain(libc::SIGRTMIN()..=libc::SIGRTMAX()) {
            if libc::sigismember(&req.default_signals.0, n) == 1
                && libc::sigaction(n, &default, ptr::null_mut()) != 0
            {
                return errno();
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return errno();
        }
        match req.stdin {
            Stdin::Inherit => {}
            Stdin::Null => {
                let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                if fd < 0 {
                    return errno();
                }
                if fd != 0 {
                    if libc::dup2(fd, 0) < 0 {
                        return errno();
                    }
                    libc::close(fd);
                }
            }
            // Closing a descriptor that is not open is no failure.
            Stdin::Closed => {
                libc::close(0);
            }
        }
        if let Some(cwd) = req.cwd {
            if libc::chdir(cwd.as_ptr()) != 0 {
                return errno();
            }
        }
        // After setpgid, with every signal still blocked, so this background
        // tcsetpgrp raises no SIGTTOU.
        if req.foreground_tty && libc::tcsetpgrp(0, libc::getpid()) != 0 {
            return errno();
        }
        if libc::sigprocmask(libc::SIG_SETMASK, &req.mask.0, ptr::null_mut()) != 0 {
            return errno();
        }
        // execvp's rules: a missing or unsearchable entry moves on to the next
        // (EACCES reported if nothing else worked); any other error stops. In
        // a PATH search, an entry that is not a directory (ENOTDIR) means
        // "not found there", as a shell reads it, so a name found nowhere is
        // ENOENT (127) whatever the last entry was.
        let mut failure = libc::ENOENT;
        let mut denied = false;
        for path in plan.candidates {
            libc::execve(path.as_ptr(), plan.argv.as_ptr().cast(), environ.cast());
            failure = errno();
            match failure {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {
                    if plan.searched {
                        failure = libc::ENOENT;
                    }
                }
                _ => return failure,
            }
        }
        if denied {
            libc::EACCES
        } else {
            failure
        }
    }
}

/// Start a program in a new process group of its own, searching `PATH` as
/// `execvp` does.
///
/// A `clone(CLONE_VM | CLONE_VFORK)` child, as glibc's posix_spawn makes, but
/// doing only what curtain needs: glibc's child resets the disposition of
/// every one of the 64 signals (two syscalls each while all are blocked,
/// about 30 us here), where curtain has no handler to reset and changed two
/// dispositions. Exec failures (ENOENT, EACCES, ...) come back as the error,
/// after the failed child is reaped. The program gets exactly `mask` and the
/// dispositions curtain has, less `default_signals`.
pub fn spawn(req: &SpawnRequest) -> io::Result<i32> {
    let Some(program) = req.argv.first() else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let candidates = exec_candidates(program);
    let mut argv: Vec<*mut libc::c_char> = req.argv.iter().map(|a| a.as_ptr() as *mut _).collect();
    argv.push(ptr::null_mut());
    let mut plan = ChildPlan {
        candidates: &candidates,
        searched: !program.to_bytes().contains(&b'/'),
        argv: &argv,
        req,
        errno: 0,
    };
    let mut stack = MaybeUninit::<ChildStack>::uninit();
    // SAFETY: the stack pointer is the (16-byte aligned) end of a buffer
    // that outlives the child's use of it: CLONE_VFORK suspends us until the
    // child has exec'd or exited. `plan` likewise, and the child writes only
    // its `errno`, which we read after clone returns.
    let pid = unsafe {
        let top = stack
            .as_mut_ptr()
            .cast::<u8>()
            .add(std::mem::size_of::<ChildStack>());
        libc::clone(
            spawn_child,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut plan as *mut ChildPlan).cast(),
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the child is gone from our memory; a volatile read so the
    // compiler cannot assume the value it stored before the call.
    let failed = unsafe { ptr::read_volatile(&plan.errno) };
    if failed != 0 {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer; the child has exited.
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
        return Err(io::Error::from_raw_os_error(failed));
    }
    Ok(pid)
}

/// What kind of file a descriptor is, for choosing how to write to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A regular file or a block device: a write never waits for a reader.
    File,
    /// A pipe or FIFO.
    Fifo,
    /// A character device (a terminal, /dev/null).
    CharDevice,
    Socket,
    Other,
}

/// `fstat` on `fd`: what kind of file it is (EBADF when it is closed).
pub fn fd_kind(fd: i32) -> io::Result<FdKind> {
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: st is a valid out-pointer for one stat struct.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded and filled the struct.
    let mode = unsafe { st.assume_init() }.st_mode & libc::S_IFMT;
    Ok(match mode {
        libc::S_IFREG | libc::S_IFBLK => FdKind::File,
        libc::S_IFIFO => FdKind::Fifo,
        libc::S_IFCHR => FdKind::CharDevice,
        libc::S_IFSOCK => FdKind::Socket,
        _ => FdKind::Other,
    })
}

/// One `write(2)`; EINTR is returned as an error like any other.
pub fn write(fd: i32, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One write that never waits: `pwritev2(RWF_NOWAIT)` at the current
/// position. A full pipe or socket buffer gives EAGAIN; a file that does not
/// support it (pipes before Linux 6.4, terminals) gives EOPNOTSUPP, having
/// written nothing. The descriptor's own flags are untouched, so the app
/// sharing it keeps its blocking writes.
pub fn write_nowait(fd: i32, buf: &[u8]) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: one iovec pointing at buf, valid for the call; offset -1 means
    // the current position (required for pipes and sockets).
    let n = unsafe { libc::pwritev2(fd, &iov, 1, -1, libc::RWF_NOWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Open a second, non-blocking file description of what `fd` is (a pipe,
/// FIFO or terminal) through `/proc/self/fd`: O_NONBLOCK on it does not
/// change the app's description. Close-on-exec, so no program curtain
/// starts inherits it; no controlling terminal is acquired.
pub fn reopen_nonblocking(fd: i32) -> io::Result<i32> {
    let path = CString::new(format!("/proc/self/fd/{fd}"))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: a valid NUL-terminated path; no mode is needed without O_CREAT.
    check(unsafe { libc::open(path.as_ptr(), flags) })
}

/// Wait until `fd` has room for a write, for at most `timeout_ms` (0: just
/// look). `poll`, or `select` when `poll` is refused because RLIMIT_NOFILE is
/// 0 (poll counts its descriptors against that limit; select does not).
pub fn wait_writable(fd: i32, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if ready >= 0 {
        return ready > 0 && pfd.revents & libc::POLLOUT != 0;
    }
    if io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) || !(0..1024).contains(&fd) {
        return false;
    }
    let mut tv = libc::timeval {
        tv_sec: libc::time_t::from(timeout_ms / 1000),
        tv_usec: libc::suseconds_t::from(timeout_ms % 1000 * 1000),
    };
    // SAFETY: fd_set is plain data; FD_ZERO/FD_SET are given a valid set and
    // an fd below FD_SETSIZE (checked above); select reads and writes only
    // the sets and the timeval it is given.
    unsafe {
        let mut set = MaybeUninit::<libc::fd_set>::zeroed().assume_init();
        libc::FD_ZERO(&mut set);
        libc::FD_SET(fd, &mut set);
        libc::select(fd + 1, ptr::null_mut(), &mut set, ptr::null_mut(), &mut tv) > 0
    }
}

/// The terminal's width in columns when stdout is one (for `--help`).
pub fn terminal_width() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Whether stdout is a terminal (for `--log-format auto`).
pub fn stdout_is_tty() -> bool {
    // SAFETY: plain call, no pointers.
    unsafe { libc::isatty(1) == 1 }
}

/// Leave the process now with `code`, without running destructors (there is
/// nothing to flush: every log line was written with write(2)).
pub fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}
