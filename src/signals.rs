//! Signals: names, the set curtain catches, and what to do with each one.
//!
//! curtain installs no signal handler. It blocks every catchable signal first
//! thing in `main` and takes them one at a time with `sigtimedwait` in the
//! event loop (`sys::wait_signal`), so forwarding costs two syscalls (the wait
//! and the `kill`). `classify` decides, without any syscall, what a received
//! signal means (docs/behavior.md, Signals); the supervisor acts on the answer.

use std::fmt;
use std::io;

use crate::config::parse_digits;
use crate::sys::{self, KernelSigset, SigInfo};

/// A signal number, real-time signals included (nix's `Signal` has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(pub i32);

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

impl Signal {
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const CHLD: Signal = Signal(libc::SIGCHLD);

    /// `SIGTERM`, `SIGRTMIN+3`, or `SIG42` for numbers without a name.
    pub fn name(self) -> String {
        let n = self.0;
        if let Some((name, _)) = NAMES.iter().find(|&&(_, num)| num == n) {
            // Not format!: names are in every exit event, on the way out.
            let mut full = String::with_capacity(3 + name.len());
            full.push_str("SIG");
            full.push_str(name);
            return full;
        }
        if (rtmin()..=rtmax()).contains(&n) {
            let off = n - rtmin();
            return if off == 0 {
                "SIGRTMIN".into()
            } else {
                format!("SIGRTMIN+{off}")
            };
        }
        format!("SIG{n}")
    }

    /// Parse `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+2`, `SIGRTMAX-1`.
    pub fn parse(text: &str) -> Option<Signal> {
        let t = text.trim();
        let number = |s: &str| {
            parse_digits::<i32>(s)
                .filter(|n| (1..=rtmax()).contains(n))
                .map(Signal)
        };
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return number(t);
        }
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if bare.bytes().all(|b| b.is_ascii_digit()) {
            // `SIG32`, as `name` writes signals that have no name.
            return number(bare);
        }
        if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
            return Some(Signal(*n));
        }
        let rt = |rest: &str, base: i32, sign: i32| -> Option<Signal> {
            let n = if rest.is_empty() {
                base
            } else {
                let off: i32 = parse_digits(rest.get(1..)?)?;
                if !rest.starts_with(if sign > 0 { '+' } else { '-' }) {
                    return None;
                }
                base.checked_add(sign.checked_mul(off)?)?
            };
            (rtmin()..=rtmax()).contains(&n).then_some(Signal(n))
        };
        if let Some(rest) = bare.strip_prefix("RTMIN") {
            return rt(rest, rtmin(), 1);
        }
        if let Some(rest) = bare.strip_prefix("RTMAX") {
            return rt(rest, rtmax(), -1);
        }
        None
    }

    /// Signals that can only mean curtain itself faulted: never caught.
    fn is_fault(self) -> bool {
        matches!(self.0, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE)
    }

    /// Whether a process can receive (block, wait for) this signal at all.
    pub fn is_catchable(self) -> bool {
        !matches!(self.0, libc::SIGKILL | libc::SIGSTOP)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A set of signals, as bits (signals 1..=64): what curtain sent the app.
/// Pure data; the kernel's `sigset_t` is `sys::KernelSigset`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SignalSet(u64);

impl SignalSet {
    pub fn insert(&mut self, sig: Signal) {
        if (1..=64).contains(&sig.0) {
            self.0 |= 1 << (sig.0 - 1);
        }
    }
    pub fn contains(&self, sig: Signal) -> bool {
        (1..=64).contains(&sig.0) && self.0 & (1 << (sig.0 - 1)) != 0
    }
}

/// Signal state of curtain as it was started, and the set it now waits on.
pub struct SignalSetup {
    /// The mask curtain was started with: the app gets it back.
    pub original_mask: KernelSigset,
    /// Signals to reset to SIG_DFL in the app: those curtain changed to
    /// SIG_IGN.
    pub reset_in_child: KernelSigset,
    /// Everything curtain waits for (all catchable signals but the faults).
    pub caught: KernelSigset,
}

impl SignalSetup {
    /// Block every catchable signal (so none is lost, and none runs a default
    /// action on curtain), and ignore SIGTTIN/SIGTTOU, which a terminal could
    /// otherwise use to stop PID 1. Blocked signals are never discarded by the
    /// kernel, even ignored ones, so sent TTIN/TTOU can still be forwarded.
    pub fn install() -> io::Result<SignalSetup> {
        let mut caught = KernelSigset::empty();
        for n in 1..=rtmax() {
            let sig = Signal(n);
            if sig.is_catchable() && !sig.is_fault() {
                caught.add(n);
            }
        }
        let original_mask = sys::set_signal_mask(&caught)?;
        let mut reset_in_child = KernelSigset::empty();
        for n in [libc::SIGTTIN, libc::SIGTTOU] {
            if sys::ignore_signal(n)? {
                reset_in_child.add(n);
            }
        }
        Ok(SignalSetup {
            original_mask,
            reset_in_child,
            caught,
        })
    }
}

/// Who sent a signal, from the kernel's siginfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// 0 when the sender is outside curtain's pid namespace, or the kernel.
    pub pid: i32,
    pub uid: u32,
}

/// What a received signal asks curtain to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// SIGCHLD: reap.
    Reap,
    /// Start the shutdown sequence (or, during one, pass it on as a repeat).
    Shutdown,
    /// Pass it on to the app as this signal (after `--map-signal`).
    Forward(Signal),
    /// Drop it (logged): mapped to 0, or raised by curtain's own terminal.
    Drop,
    /// Drop it without a word: SIGPIPE from curtain's own write to a broken
    /// stdout. Logging it would write again, raise another, and spin.
    Ignore,
}

/// The facts `classify` needs beyond the siginfo.
pub struct Context<'a> {
    /// curtain's own pid in its namespace (1 as PID 1).
    pub own_pid: i32,
    pub stop_signal: Option<Signal>,
    pub map: &'a [(Signal, Signal)],
}

/// Decide what a received signal means, without any syscall.
///
/// The kernel's hang-up SIGHUP (SI_KERNEL) is forwarded like any other. On a
/// hang-up Linux signals only the session leader (curtain, as runc makes
/// PID 1), not the foreground group (the app's); the group gets one only when
/// the leader itself exits (`tty_signal_session_leader`). Dropping it would
/// leave the app unaware, and passing it on cannot double it (e2e test
/// `tty::a_terminal_hangup_reaches_the_app_once`).
pub fn classify(info: &SigInfo, ctx: &Context) -> SignalAction {
    let sig = Signal(info.signo);
    let from_kernel = info.code == sys::SI_KERNEL;
    match info.signo {
        libc::SIGCHLD => return SignalAction::Reap,
        // A write to a closed or broken stdout raises SIGPIPE at the writer,
        // with si_code SI_USER and the writer's own pid: that one is ours.
        libc::SIGPIPE if info.code == sys::SI_USER && info.pid == ctx.own_pid => return SignalAction::Ignore,
        // Job-control stops from our own (background) terminal access.
        libc::SIGTTIN | libc::SIGTTOU | libc::SIGTSTP if from_kernel => return SignalAction::Drop,
        libc::SIGTERM | libc::SIGINT => return SignalAction::Shutdown,
        _ => {}
    }
    if ctx.stop_signal == Some(sig) {
        return SignalAction::Shutdown;
    }
    forward_as(sig, ctx.map)
}

/// Apply `--map-signal`: the first rule for `sig` wins; `FROM:0` drops it.
pub fn forward_as(sig: Signal, map: &[(Signal, Signal)]) -> SignalAction {
    match map.iter().find(|(from, _)| *from == sig) {
        Some((_, Signal(0))) => SignalAction::Drop,
        Some((_, to)) => SignalAction::Forward(*to),
        None => SignalAction::Forward(sig),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(signo: i32, code: i32, pid: i32) -> SigInfo {
        SigInfo {
            signo,
            code,
            pid,
            uid: 0,
        }
    }

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(Signal::parse("TERM"), Some(Signal::TERM));
        assert_eq!(Signal::parse("sigterm"), Some(Signal::TERM));
        assert_eq!(Signal::parse("SIGQUIT"), Some(Signal(libc::SIGQUIT)));
        assert_eq!(Signal::parse("15"), Some(Signal::TERM));
        assert_eq!(Signal::parse("RTMIN"), Some(Signal(rtmin())));
        assert_eq!(Signal::parse("SIGRTMIN+3"), Some(Signal(rtmin() + 3)));
        assert_eq!(Signal::parse("RTMAX-1"), Some(Signal(rtmax() - 1)));
        for bad in [
            "",
            "0",
            "65",
            "-1",
            "+15",
            "TERMX",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMIN3",
            "RTMIN++2",
            "RTMIN+2147483647",
            "RTMAX-2147483647",
            "RTMIN+99999999999",
            "SIG+15",
        ] {
            assert_eq!(Signal::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=rtmax() {
            assert_eq!(Signal::parse(&Signal(n).name()), Some(Signal(n)), "{n}");
        }
        assert_eq!(Signal(rtmin() + 2).name(), "SIGRTMIN+2");
        assert_eq!(Signal::TERM.name(), "SIGTERM");
    }

    #[test]
    fn classify_follows_the_spec_table() {
        let map = [
            (Signal(libc::SIGHUP), Signal(libc::SIGUSR1)),
            (Signal(libc::SIGUSR2), Signal(0)),
        ];
        let ctx = Context {
            own_pid: 1,
            stop_signal: Some(Signal(libc::SIGQUIT)),
            map: &map,
        };
        let user = sys::SI_USER;
        let cases = [
            (info(libc::SIGCHLD, 1, 5), SignalAction::Reap),
            (info(libc::SIGTERM, user, 0), SignalAction::Shutdown),
            (info(libc::SIGINT, user, 7), SignalAction::Shutdown),
            (info(libc::SIGQUIT, user, 7), SignalAction::Shutdown),
            (info(libc::SIGPIPE, user, 1), SignalAction::Ignore),
            (
                info(libc::SIGPIPE, user, 9),
                SignalAction::Forward(Signal(libc::SIGPIPE)),
            ),
            (
                info(libc::SIGHUP, sys::SI_KERNEL, 0),
                SignalAction::Forward(Signal(libc::SIGUSR1)),
            ),
            (
                info(libc::SIGHUP, user, 9),
                SignalAction::Forward(Signal(libc::SIGUSR1)),
            ),
            (info(libc::SIGUSR2, user, 9), SignalAction::Drop),
            (info(libc::SIGTTIN, sys::SI_KERNEL, 0), SignalAction::Drop),
            (
                info(libc::SIGTTOU, user, 9),
                SignalAction::Forward(Signal(libc::SIGTTOU)),
            ),
            (
                info(libc::SIGWINCH, user, 0),
                SignalAction::Forward(Signal(libc::SIGWINCH)),
            ),
            (
                info(rtmin() + 1, -1, 3),
                SignalAction::Forward(Signal(rtmin() + 1)),
            ),
        ];
        for (i, action) in cases {
            assert_eq!(classify(&i, &ctx), action, "{i:?}");
        }
    }

    #[test]
    fn mask_holds_realtime_signals() {
        let mut m = SignalSet::default();
        m.insert(Signal(rtmax()));
        m.insert(Signal::TERM);
        assert!(m.contains(Signal(rtmax())) && m.contains(Signal::TERM));
        assert!(!m.contains(Signal::KILL));
    }
}
