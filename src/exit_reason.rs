//! Why the app stopped, and curtain's exit code, as pure functions
//! (docs/behavior.md, Exit code and reason).
//!
//! The supervisor gathers facts (how the app ended, what curtain sent it, did
//! the OOM-kill counter rise); `classify` applies the reasons' precedence and
//! `Outcome::exit_code` decides every exit code curtain can have: the app's,
//! 128+N, and 125/126/127 when the app could not be started. Nothing here
//! touches the system.

use crate::reaper::ChildEnd;
use crate::signals::{Signal, SignalSet};

/// Why COMMAND could not be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecFailure {
    /// No such file, or its interpreter or loader is missing: 127.
    NotFound,
    /// Found but not executable (permissions, format, a directory): 126.
    NotExecutable,
}

/// The app's fate as far as curtain is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// curtain could not set itself up before the app ran.
    SetupFailed(String),
    /// COMMAND could not be executed.
    ExecFailed {
        failure: ExecFailure,
        error: String,
    },
    Ended(ChildEnd),
}

impl Outcome {
    /// The app's exit code, or 128+N for a death by signal N (before remap).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::SetupFailed(_) => 125,
            Outcome::ExecFailed {
                failure: ExecFailure::NotFound,
                ..
            } => 127,
            Outcome::ExecFailed {
                failure: ExecFailure::NotExecutable,
                ..
            } => 126,
            Outcome::Ended(ChildEnd::Exited(code)) => *code,
            Outcome::Ended(ChildEnd::Signaled { signal, .. }) => 128 + signal.0,
        }
    }

    pub fn signal(&self) -> Option<Signal> {
        match self {
            Outcome::Ended(ChildEnd::Signaled { signal, .. }) => Some(*signal),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Exited,
    Stopped,
    Signaled,
    GraceTimeout,
    OomKilled,
    Killed,
    ExecFailed,
    SetupFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Exited => "exited",
            Reason::Stopped => "stopped",
            Reason::Signaled => "signaled",
            Reason::GraceTimeout => "grace_timeout",
            Reason::OomKilled => "oom_killed",
            Reason::Killed => "killed",
            Reason::ExecFailed => "exec_failed",
            Reason::SetupFailed => "setup_failed",
        }
    }
}

/// Everything the classification depends on.
#[derive(Debug, Clone)]
pub struct Facts {
    pub outcome: Outcome,
    /// curtain sent SIGKILL to the app because the grace period ran out.
    pub killed_at_deadline: bool,
    /// The cgroup's OOM-kill counter rose while the app ran.
    pub oom_rose: bool,
    /// A shutdown was requested while the app still ran.
    pub shutdown_requested: bool,
    /// Every signal curtain sent (forwarded or stop signal) to the app.
    pub sent_to_app: SignalSet,
}

/// The reasons' precedence: first match wins.
pub fn classify(f: &Facts) -> Reason {
    let end = match &f.outcome {
        Outcome::SetupFailed(_) => return Reason::SetupFailed,
        Outcome::ExecFailed { .. } => return Reason::ExecFailed,
        Outcome::Ended(end) => *end,
    };
    let sigkill = matches!(
        end,
        ChildEnd::Signaled {
            signal: Signal::KILL,
            ..
        }
    );
    if sigkill && f.killed_at_deadline {
        return Reason::GraceTimeout;
    }
    if (sigkill || end == ChildEnd::Exited(137)) && f.oom_rose {
        return Reason::OomKilled;
    }
    if sigkill {
        return Reason::Killed;
    }
    match end {
        ChildEnd::Exited(_) if f.shutdown_requested => Reason::Stopped,
        ChildEnd::Signaled { signal, .. } if f.shutdown_requested && f.sent_to_app.contains(signal) => {
            Reason::Stopped
        }
        ChildEnd::Signaled { .. } => Reason::Signaled,
        ChildEnd::Exited(_) => Reason::Exited,
    }
}

/// `expected`: a clean completion with nothing left behind, or a stop that
/// left nothing running. `leftovers` counts the descendants curtain had to
/// stop after the app exited; `remain`: some may still run (they outlived
/// SIGKILL's reap bound, or a subreaper without `/proc` could not find them).
pub fn expected(reason: Reason, exit_code: i32, leftovers: u32, remain: bool) -> bool {
    match reason {
        _ if remain => false,
        Reason::Exited => exit_code == 0 && leftovers == 0,
        Reason::Stopped => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(end: ChildEnd) -> Facts {
        Facts {
            outcome: Outcome::Ended(end),
            killed_at_deadline: false,
            oom_rose: false,
            shutdown_requested: false,
            sent_to_app: SignalSet::default(),
        }
    }
    fn sig(n: i32) -> ChildEnd {
        ChildEnd::Signaled {
            signal: Signal(n),
            core_dumped: false,
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Ended(ChildEnd::Exited(3)).exit_code(), 3);
        assert_eq!(Outcome::Ended(sig(15)).exit_code(), 143);
        assert_eq!(Outcome::Ended(sig(9)).exit_code(), 137);
        assert_eq!(Outcome::Ended(sig(11)).exit_code(), 139);
        assert_eq!(Outcome::SetupFailed("x".into()).exit_code(), 125);
        let exec = |failure| Outcome::ExecFailed {
            failure,
            error: "x".into(),
        };
        assert_eq!(exec(ExecFailure::NotFound).exit_code(), 127);
        assert_eq!(exec(ExecFailure::NotExecutable).exit_code(), 126);
    }

    #[test]
    fn precedence_matrix() {
        let mut term_sent = SignalSet::default();
        term_sent.insert(Signal::TERM);
        // (facts, reason, expected)
        let mut cases: Vec<(Facts, Reason, bool)> = vec![
            (ended(ChildEnd::Exited(0)), Reason::Exited, true),
            (ended(ChildEnd::Exited(3)), Reason::Exited, false),
            (ended(sig(11)), Reason::Signaled, false),
            (ended(sig(15)), Reason::Signaled, false),
            (ended(sig(9)), Reason::Killed, false),
        ];
        let mut f = ended(sig(9));
        f.killed_at_deadline = true;
        f.oom_rose = true;
        f.shutdown_requested = true;
        cases.push((f, Reason::GraceTimeout, false));
        let mut f = ended(sig(9));
        f.oom_rose = true;
        cases.push((f, Reason::OomKilled, false));
        let mut f = ended(ChildEnd::Exited(137));
        f.oom_rose = true;
        cases.push((f, Reason::OomKilled, false));
        let mut f = ended(ChildEnd::Exited(137));
        f.shutdown_requested = true;
        cases.push((f, Reason::Stopped, true));
        let mut f = ended(sig(15));
        f.shutdown_requested = true;
        f.sent_to_app = term_sent;
        cases.push((f, Reason::Stopped, true));
        // A shutdown was requested, but the fatal signal came from elsewhere.
        let mut f = ended(sig(3));
        f.shutdown_requested = true;
        f.sent_to_app = term_sent;
        cases.push((f, Reason::Signaled, false));
        // A forwarded signal that kills the app outside a shutdown.
        let mut f = ended(sig(15));
        f.sent_to_app = term_sent;
        cases.push((f, Reason::Signaled, false));
        let mut f = ended(ChildEnd::Exited(0));
        f.outcome = Outcome::ExecFailed {
            failure: ExecFailure::NotFound,
            error: "x".into(),
        };
        f.shutdown_requested = true;
        cases.push((f, Reason::ExecFailed, false));
        let mut f = ended(ChildEnd::Exited(0));
        f.outcome = Outcome::SetupFailed("x".into());
        cases.push((f, Reason::SetupFailed, false));

        for (facts, reason, exp) in cases {
            let got = classify(&facts);
            assert_eq!(got, reason, "{facts:?}");
            assert_eq!(
                expected(got, facts.outcome.exit_code(), 0, false),
                exp,
                "{facts:?}"
            );
        }
        assert!(
            !expected(Reason::Exited, 0, 1, false),
            "leftovers make a clean exit unexpected"
        );
        assert!(
            !expected(Reason::Stopped, 143, 0, true),
            "processes that may still run make even a stop unexpected"
        );
    }
}
