//! Every log event curtain writes, one typed definition each (docs/behavior.md, Log).
//!
//! An `Event` variant holds exactly the data its line needs; `name`, `level`,
//! `message` and `fields` are the only places that turn it into words, and
//! the renderers in `logging` work from those alone. So an event cannot be
//! written with a missing or extra field, a field's type and nullability are
//! fixed here, and lists of pids stay numbers all the way to the JSON.
//!
//! The order of `fields` is the order on the line; a field without a value
//! is `Value::Null`, never left out, so the JSON schema is stable.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::config::Scope;
use crate::exit_reason::Reason;
use crate::reaper::ChildEnd;
use crate::signals::{Sender, Signal};

/// How important a line is; `--log-level` keeps this level and the ones above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }
}

/// A field's value, typed for the renderers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    Pids(&'a [i32]),
}

impl<'a> Value<'a> {
    fn num(n: impl TryInto<i64>) -> Value<'a> {
        n.try_into().map_or(Value::Null, Value::Int)
    }
    fn opt_num(n: Option<impl TryInto<i64>>) -> Value<'a> {
        n.map_or(Value::Null, Value::num)
    }
    fn signal(sig: Signal) -> Value<'a> {
        Value::Str(Cow::Owned(sig.name()))
    }
    fn opt_signal(sig: Option<Signal>) -> Value<'a> {
        sig.map_or(Value::Null, Value::signal)
    }
    fn opt_str(s: Option<&'a str>) -> Value<'a> {
        s.map_or(Value::Null, |s| Value::Str(Cow::Borrowed(s)))
    }
}

/// What a `--pre-stop-http` step heard back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAnswer {
    /// The step is a command.
    NotHttp,
    /// A request that has not answered (not started, or killed waiting).
    NoAnswer,
    Status(u16),
    /// No answer: refused, reset, not HTTP.
    Failed(String),
}

/// How a pre-stop step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreStopResult {
    /// Not started: the stop window was reached before its turn.
    Skipped,
    /// It could not be started (not found, not executable, ...).
    SpawnFailed(String),
    /// It ran and was reaped; `timed_out`: curtain killed it at the window.
    Ended {
        pid: i32,
        end: ChildEnd,
        duration_ms: u64,
        timed_out: bool,
    },
}

/// Something curtain cannot do as configured or as documented, said once,
/// right after `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// A subreaper without a readable `/proc` cannot find the app's
    /// leftovers to stop them.
    NoProc,
    /// `--grace-period 0`: SIGKILL at once on a shutdown, no stop signal.
    GraceZero,
    /// `--pre-stop-sleep` is longer than the budget leaves before the stop
    /// window: it will be cut.
    SleepCut { sleep_ms: u64, cut_to_ms: u64 },
    /// Pre-stop steps are set, and the grace period leaves the app less than
    /// the full 2 s stop window after its stop signal.
    ShortStopWindow { window_ms: u64, grace_ms: u64 },
}

impl Warning {
    /// The `kind` field: a stable name for pipelines.
    pub fn kind(self) -> &'static str {
        match self {
            Warning::NoProc => "no_proc",
            Warning::GraceZero => "grace_zero",
            Warning::SleepCut { .. } => "sleep_cut",
            Warning::ShortStopWindow { .. } => "short_stop_window",
        }
    }

    fn message(self) -> String {
        match self {
            Warning::NoProc => "/proc cannot be read: as a subreaper curtain cannot find the app's leftovers to stop them, and an exit that may leave processes running is not expected".into(),
            Warning::GraceZero => "--grace-period is 0: a shutdown SIGKILLs the app at once, with no stop signal and no pre-stop step".into(),
            Warning::SleepCut { sleep_ms, cut_to_ms } => format!(
                "--pre-stop-sleep of {sleep_ms}ms is longer than the {cut_to_ms}ms the grace period leaves before the stop window: it will be cut to at most {cut_to_ms}ms"
            ),
            Warning::ShortStopWindow { window_ms, grace_ms } => format!(
                "with --grace-period {grace_ms}ms the app has only {window_ms}ms after its stop signal once the pre-stop steps have run (a quarter of the grace period; 2 s from 8 s up)"
            ),
        }
    }
}

/// The final event: why the app stopped (built by `report`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub message: String,
    pub exit_code: i32,
    pub original_exit_code: i32,
    pub reason: Reason,
    pub expected: bool,
    pub signal: Option<Signal>,
    pub shutdown_requested: bool,
    pub trigger_signal: Option<Signal>,
    pub trigger_sender_pid: Option<i32>,
    pub uptime_ms: u64,
    pub stop_ms: Option<u64>,
    pub pre_stop_ms: Option<u64>,
    pub orphans_reaped: u32,
    pub leftovers_killed: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// curtain runs: its settings, and the cgroup's `memory.oom.group`.
    Start {
        pid: i32,
        /// Program name only: arguments may hold secrets.
        command: Cow<'a, str>,
        argc: usize,
        grace_period_ms: u64,
        /// Where the grace period came from (`GraceFrom::as_str`).
        grace_period_from: &'static str,
        stop_signal: Option<Signal>,
        subreaper: bool,
        oom_group: Option<bool>,
    },
    /// `--parent-death-signal`: curtain's parent died, and its signal came.
    ParentDied {
        parent_pid: i32,
        signal: Signal,
    },
    Spawned {
        child_pid: i32,
    },
    /// A signal passed on (`forwarded_as`) or dropped (`None`); `repeat`: a
    /// shutdown signal that came again during the shutdown.
    Signal {
        signal: Signal,
        forwarded_as: Option<Signal>,
        sender: Sender,
        repeat: bool,
    },
    /// The shutdown sequence starts. `sender_comm` is filled in by the
    /// supervisor, which can read `/proc`.
    Shutdown {
        signal: Signal,
        sender: Sender,
        sender_comm: Option<String>,
        grace_period_ms: u64,
    },
    /// A pre-stop step ended (or was skipped). `http` is filled in by the
    /// supervisor, which reads the request's answer.
    PreStop {
        command: &'a str,
        result: PreStopResult,
        http: HttpAnswer,
    },
    StopSignalSent {
        signal: Signal,
        scope: Scope,
        elapsed_ms: u64,
    },
    /// Escalation. `killed_pids` starts with the app's pid when it still ran;
    /// the supervisor adds the other children it finds.
    GraceTimeout {
        elapsed_ms: u64,
        grace_period_ms: u64,
        killed_pids: Vec<i32>,
    },
    Reaped {
        pid: i32,
        end: ChildEnd,
    },
    /// The app exited while its descendants still run.
    Leftovers,
    /// Still not reaped when the reap bound after SIGKILL ran out (filled in
    /// by the supervisor).
    KillTimeout {
        left: Vec<i32>,
        bound_secs: u64,
    },
    TerminationLog {
        path: String,
        error: String,
    },
    /// A system call failed after the app started; curtain went on.
    SyscallError {
        call: &'static str,
        error: String,
    },
    Warning(Warning),
    /// A stage of the shutdown begins (the stop signal and SIGKILL have
    /// their own events: `stop_signal_sent`, `grace_timeout`).
    Stage {
        stage: &'static str,
        elapsed_ms: u64,
        kill_in_ms: Option<u64>,
    },
    /// Every few seconds while a shutdown waits for something.
    Progress {
        stage: &'static str,
        elapsed_ms: u64,
        waiting_for: String,
        kill_in_ms: Option<u64>,
    },
    /// Written in advance: what ended curtain if this is its last line.
    LastWord {
        cause: LastWordCause,
        trigger: Option<Signal>,
        sender_pid: Option<i32>,
        grace_period_ms: u64,
        kill_in_ms: Option<u64>,
        oom_group: Option<bool>,
        message: String,
    },
    Exit(Exit),
}

/// Why curtain writes its last word in advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastWordCause {
    /// A shutdown is under way: the runtime may kill curtain before it ends.
    Shutdown,
    /// `memory.oom.group` is 1: an OOM kill ends curtain with the app.
    OomGroup,
}

impl LastWordCause {
    pub fn as_str(self) -> &'static str {
        match self {
            LastWordCause::Shutdown => "killed_during_shutdown",
            LastWordCause::OomGroup => "killed_with_oom_group",
        }
    }
}

impl Event<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Start { .. } => "start",
            Event::Spawned { .. } => "spawned",
            Event::ParentDied { .. } => "parent_died",
            Event::Signal { .. } => "signal",
            Event::Shutdown { .. } => "shutdown",
            Event::PreStop { .. } => "pre_stop",
            Event::StopSignalSent { .. } => "stop_signal_sent",
            Event::GraceTimeout { .. } => "grace_timeout",
            Event::Reaped { .. } => "reaped",
            Event::Leftovers => "leftovers",
            Event::KillTimeout { .. } => "kill_timeout",
            Event::TerminationLog { .. } => "termination_log",
            Event::SyscallError { .. } => "syscall_error",
            Event::Warning(_) => "warning",
            Event::Stage { .. } => "stage",
            Event::Progress { .. } => "progress",
            Event::LastWord { .. } => "last_word",
            Event::Exit(_) => "exit",
        }
    }

    pub fn level(&self) -> Level {
        match self {
            Event::Start { .. }
            | Event::Spawned { .. }
            | Event::Shutdown { .. }
            | Event::StopSignalSent { .. }
            | Event::Stage { .. }
            | Event::Progress { .. } => Level::Info,
            // Failures must look like failures to level-based alerting.
            Event::Exit(e) if e.expected => Level::Info,
            Event::Exit(_) | Event::LastWord { .. } => Level::Warn,
            Event::Signal { repeat: true, .. } => Level::Info,
            Event::Signal { repeat: false, .. } | Event::Reaped { .. } => Level::Debug,
            Event::PreStop {
                result:
                    PreStopResult::Ended {
                        end: ChildEnd::Exited(0),
                        timed_out: false,
                        ..
                    },
                ..
            } => Level::Info,
            Event::PreStop { .. }
            | Event::GraceTimeout { .. }
            | Event::Leftovers
            | Event::KillTimeout { .. }
            | Event::TerminationLog { .. }
            | Event::SyscallError { .. }
            | Event::ParentDied { .. }
            | Event::Warning(_) => Level::Warn,
        }
    }

    /// The `target` field: which part of curtain speaks.
    pub fn target(&self) -> &'static str {
        match self {
            Event::Exit(_) => "curtain::exit",
            Event::TerminationLog { .. } => "curtain::report",
            _ => "curtain::supervisor",
        }
    }

    /// One sentence for people.
    pub fn message(&self) -> String {
        match self {
            Event::Start {
                command,
                grace_period_ms,
                grace_period_from,
                ..
            } if *grace_period_from == "runtime_init" => format!(
                "curtain {} supervising {command}; grace period {}: the default as a runtime's --init, \
                 whose stop waits 10 s",
                env!("CARGO_PKG_VERSION"),
                secs(*grace_period_ms)
            ),
            Event::Start { command, .. } => {
                format!("curtain {} supervising {command}", env!("CARGO_PKG_VERSION"))
            }
            Event::Spawned { .. } => "app started".into(),
            Event::ParentDied { parent_pid, signal } => format!(
                "curtain's parent (pid {parent_pid}) died: acting on {signal}, as --parent-death-signal asks"
            ),
            Event::Signal {
                signal,
                forwarded_as: Some(to),
                repeat: true,
                ..
            } => format!("{signal} repeated during shutdown, passed on as {to}"),
            Event::Signal {
                signal, repeat: true, ..
            } => format!("{signal} repeated during shutdown, dropped"),
            Event::Signal {
                signal,
                forwarded_as: Some(to),
                ..
            } if to == signal => format!("forwarded {signal}"),
            Event::Signal {
                signal,
                forwarded_as: Some(to),
                ..
            } => format!("forwarded {signal} as {to}"),
            Event::Signal { signal, .. } => format!("dropped {signal}"),
            Event::Shutdown {
                signal,
                sender,
                sender_comm,
                ..
            } => {
                let from = match (sender_comm, sender.pid) {
                    (_, 0) => "outside the container (pid 0)".to_string(),
                    (Some(c), pid) => format!("{c} (pid {pid})"),
                    (None, pid) => format!("pid {pid}"),
                };
                format!("shutdown requested by {signal} from {from}")
            }
            Event::PreStop {
                command,
                result,
                http,
            } => {
                let what = if *http == HttpAnswer::NotHttp {
                    "pre-stop command"
                } else {
                    "pre-stop request"
                };
                match (result, http) {
                    (PreStopResult::Skipped, _) => {
                        format!("{what} {command} skipped: no time left before the stop signal")
                    }
                    (PreStopResult::SpawnFailed(e), _) => format!("{what} {command} could not be started: {e}"),
                    (PreStopResult::Ended { duration_ms, .. }, HttpAnswer::Status(code))
                        if self.level() == Level::Info =>
                    {
                        format!("{what} {command} answered {code} in {duration_ms}ms")
                    }
                    (PreStopResult::Ended { duration_ms, .. }, _) if self.level() == Level::Info => {
                        format!("{what} {command} done in {duration_ms}ms")
                    }
                    (PreStopResult::Ended { duration_ms, .. }, HttpAnswer::Status(code)) => {
                        format!("{what} {command} failed after {duration_ms}ms: HTTP {code}")
                    }
                    (PreStopResult::Ended { duration_ms, .. }, HttpAnswer::Failed(e)) => {
                        format!("{what} {command} failed after {duration_ms}ms: {e}")
                    }
                    (PreStopResult::Ended { duration_ms, .. }, _) => {
                        format!("{what} {command} failed after {duration_ms}ms")
                    }
                }
            }
            Event::StopSignalSent { signal, scope, .. } => {
                format!("sent {signal} to the app ({})", scope.as_str())
            }
            Event::GraceTimeout {
                grace_period_ms, ..
            } => format!("grace period of {grace_period_ms}ms ran out: sent SIGKILL"),
            Event::Reaped { pid, .. } => format!("reaped pid {pid}"),
            Event::Leftovers => "the app exited but its descendants still run (a daemonizing app, or backgrounded work?); stopping them".into(),
            Event::KillTimeout { left, bound_secs } => format!(
                "{} process(es) still not reaped {bound_secs}s after SIGKILL; exiting anyway",
                left.len()
            ),
            Event::TerminationLog { .. } => "could not write the termination message".into(),
            Event::SyscallError { call, error } => format!("{call} failed ({error}); going on"),
            Event::Warning(w) => w.message(),
            Event::Stage {
                stage, kill_in_ms, ..
            } => match kill_in_ms {
                Some(ms) => format!("shutdown stage {stage}; SIGKILL in {}", secs(*ms)),
                None => format!("shutdown stage {stage}"),
            },
            Event::Progress {
                elapsed_ms,
                waiting_for,
                kill_in_ms,
                ..
            } => match kill_in_ms {
                Some(ms) => format!(
                    "{} into the shutdown, waiting for {waiting_for}; SIGKILL in {}",
                    secs(*elapsed_ms),
                    secs(*ms)
                ),
                None => format!("{} in, waiting for {waiting_for}", secs(*elapsed_ms)),
            },
            Event::LastWord { message, .. } => message.clone(),
            Event::Exit(e) => e.message.clone(),
        }
    }

    /// The event's own fields, in line order, each exactly once.
    pub fn fields(&self, put: &mut dyn FnMut(&'static str, Value<'_>)) {
        match self {
            Event::Start {
                pid,
                command,
                argc,
                grace_period_ms,
                grace_period_from,
                stop_signal,
                subreaper,
                oom_group,
            } => {
                put("version", Value::Str(env!("CARGO_PKG_VERSION").into()));
                put("pid", Value::num(*pid));
                put("command", Value::Str(Cow::Borrowed(command)));
                put("argc", Value::num(*argc));
                put("grace_period_ms", Value::num(*grace_period_ms));
                put("grace_period_from", Value::Str((*grace_period_from).into()));
                put("stop_signal", Value::opt_signal(*stop_signal));
                put("subreaper", Value::Bool(*subreaper));
                put("oom_group", oom_group.map_or(Value::Null, Value::Bool));
            }
            Event::Spawned { child_pid } => put("child_pid", Value::num(*child_pid)),
            Event::ParentDied { parent_pid, signal } => {
                put("parent_pid", Value::num(*parent_pid));
                put("signal", Value::signal(*signal));
            }
            Event::Signal {
                signal,
                forwarded_as,
                sender,
                ..
            } => {
                put("signal", Value::signal(*signal));
                put("forwarded_as", Value::opt_signal(*forwarded_as));
                put("sender_pid", Value::num(sender.pid));
                put("sender_uid", Value::num(sender.uid));
            }
            Event::Shutdown {
                signal,
                sender,
                sender_comm,
                grace_period_ms,
            } => {
                put("signal", Value::signal(*signal));
                put("sender_pid", Value::num(sender.pid));
                put("sender_uid", Value::num(sender.uid));
                put("sender_comm", Value::opt_str(sender_comm.as_deref()));
                put("grace_period_ms", Value::num(*grace_period_ms));
            }
            Event::PreStop {
                command,
                result,
                http,
            } => {
                let (exit_code, duration_ms, timed_out, error) = match result {
                    PreStopResult::Skipped => (
                        None,
                        0,
                        true,
                        Some(Cow::Borrowed("not started: the stop window was reached")),
                    ),
                    PreStopResult::SpawnFailed(e) => (None, 0, false, Some(Cow::Borrowed(e.as_str()))),
                    PreStopResult::Ended {
                        duration_ms,
                        timed_out: true,
                        ..
                    } => (
                        None,
                        *duration_ms,
                        true,
                        Some(Cow::Borrowed("killed: the stop window was reached")),
                    ),
                    PreStopResult::Ended { end, duration_ms, .. } => match end {
                        ChildEnd::Exited(0) => (Some(0), *duration_ms, false, None),
                        ChildEnd::Exited(code)
                            if matches!(http, HttpAnswer::Status(_) | HttpAnswer::Failed(_)) =>
                        {
                            (
                                Some(*code),
                                *duration_ms,
                                false,
                                Some(match http {
                                    HttpAnswer::Status(status) => Cow::Owned(format!("HTTP {status}")),
                                    HttpAnswer::Failed(e) => Cow::Borrowed(e.as_str()),
                                    _ => Cow::Borrowed(""),
                                }),
                            )
                        }
                        ChildEnd::Exited(code) => (
                            Some(*code),
                            *duration_ms,
                            false,
                            Some(Cow::Owned(format!("exited {code}"))),
                        ),
                        ChildEnd::Signaled { .. } => {
                            (None, *duration_ms, false, Some(Cow::Owned(end.to_string())))
                        }
                    },
                };
                put("command", Value::Str(Cow::Borrowed(command)));
                put("exit_code", Value::opt_num(exit_code));
                put("duration_ms", Value::num(duration_ms));
                put("timed_out", Value::Bool(timed_out));
                put("error", error.map_or(Value::Null, Value::Str));
                let status = match http {
                    HttpAnswer::Status(code) => Some(*code),
                    _ => None,
                };
                put("http_status", Value::opt_num(status));
            }
            Event::StopSignalSent {
                signal,
                scope,
                elapsed_ms,
            } => {
                put("signal", Value::signal(*signal));
                put("scope", Value::Str(scope.as_str().into()));
                put("elapsed_ms", Value::num(*elapsed_ms));
            }
            Event::GraceTimeout {
                elapsed_ms,
                killed_pids,
                ..
            } => {
                put("elapsed_ms", Value::num(*elapsed_ms));
                put("killed_pids", Value::Pids(killed_pids));
            }
            Event::Reaped { pid, end } => {
                put("pid", Value::num(*pid));
                put("status", Value::Str(Cow::Owned(end.to_string())));
            }
            Event::Leftovers => {}
            Event::KillTimeout { left, .. } => put("left", Value::Pids(left)),
            Event::TerminationLog { path, error } => {
                put("path", Value::Str(Cow::Borrowed(path)));
                put("error", Value::Str(Cow::Borrowed(error)));
            }
            Event::SyscallError { call, error } => {
                put("call", Value::Str(Cow::Borrowed(call)));
                put("error", Value::Str(Cow::Borrowed(error)));
            }
            Event::Warning(w) => put("kind", Value::Str(w.kind().into())),
            Event::Stage {
                stage,
                elapsed_ms,
                kill_in_ms,
            } => {
                put("stage", Value::Str((*stage).into()));
                put("elapsed_ms", Value::num(*elapsed_ms));
                put("kill_in_ms", Value::opt_num(*kill_in_ms));
            }
            Event::Progress {
                stage,
                elapsed_ms,
                waiting_for,
                kill_in_ms,
            } => {
                put("stage", Value::Str((*stage).into()));
                put("elapsed_ms", Value::num(*elapsed_ms));
                put("waiting_for", Value::Str(Cow::Borrowed(waiting_for)));
                put("kill_in_ms", Value::opt_num(*kill_in_ms));
            }
            Event::LastWord {
                cause,
                trigger,
                sender_pid,
                grace_period_ms,
                kill_in_ms,
                oom_group,
                ..
            } => {
                put("cause", Value::Str(cause.as_str().into()));
                put("signal", Value::opt_signal(*trigger));
                put("sender_pid", Value::opt_num(*sender_pid));
                put("grace_period_ms", Value::num(*grace_period_ms));
                put("kill_in_ms", Value::opt_num(*kill_in_ms));
                put("oom_group", oom_group.map_or(Value::Null, Value::Bool));
            }
            Event::Exit(e) => {
                put("exit_code", Value::num(e.exit_code));
                put("original_exit_code", Value::num(e.original_exit_code));
                put("reason", Value::Str(e.reason.as_str().into()));
                put("expected", Value::Bool(e.expected));
                put("signal", Value::opt_signal(e.signal));
                put("shutdown_requested", Value::Bool(e.shutdown_requested));
                put("trigger_signal", Value::opt_signal(e.trigger_signal));
                put("trigger_sender_pid", Value::opt_num(e.trigger_sender_pid));
                put("uptime_ms", Value::num(e.uptime_ms));
                put("stop_ms", Value::opt_num(e.stop_ms));
                put("pre_stop_ms", Value::opt_num(e.pre_stop_ms));
                put("orphans_reaped", Value::num(e.orphans_reaped));
                put("leftovers_killed", Value::num(e.leftovers_killed));
            }
        }
    }
}

/// `2.5s`: a duration in milliseconds, for messages, to the nearest tenth
/// of a second (a half rounds up). In integers: float formatting would put
/// 7 KB of cold code on the exit path, and round 1150 ms down and 1050 ms up
/// (binary fractions).
pub fn secs(ms: u64) -> String {
    let tenths = ms.saturating_add(50) / 100;
    format!("{}.{}s", tenths / 10, tenths % 10)
}

/// `[1,2,3]`: a pid list as the JSON and text formats both write it.
pub fn push_pids(out: &mut String, pids: &[i32]) {
    out.push('[');
    for (i, pid) in pids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{pid}");
    }
    out.push(']');
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// One event of every kind, each in its most common shape (the
    /// exhaustive `match` in `covers` fails to build when a kind is added
    /// without a sample here).
    pub fn samples() -> Vec<Event<'static>> {
        let sender = Sender { pid: 0, uid: 0 };
        let all = vec![
            Event::Start {
                pid: 1,
                command: "app".into(),
                argc: 2,
                grace_period_ms: 25_000,
                grace_period_from: "default",
                stop_signal: None,
                subreaper: false,
                oom_group: None,
            },
            Event::Spawned { child_pid: 2 },
            Event::ParentDied {
                parent_pid: 7,
                signal: Signal::TERM,
            },
            Event::Signal {
                signal: Signal(libc::SIGHUP),
                forwarded_as: Some(Signal(libc::SIGHUP)),
                sender,
                repeat: false,
            },
            Event::Shutdown {
                signal: Signal::TERM,
                sender,
                sender_comm: None,
                grace_period_ms: 25_000,
            },
            Event::PreStop {
                command: "drain",
                result: PreStopResult::Ended {
                    pid: 9,
                    end: ChildEnd::Exited(0),
                    duration_ms: 10,
                    timed_out: false,
                },
                http: HttpAnswer::NotHttp,
            },
            Event::StopSignalSent {
                signal: Signal::TERM,
                scope: Scope::Group,
                elapsed_ms: 0,
            },
            Event::GraceTimeout {
                elapsed_ms: 25_000,
                grace_period_ms: 25_000,
                killed_pids: vec![2, 7],
            },
            Event::Reaped {
                pid: 7,
                end: ChildEnd::Exited(0),
            },
            Event::Leftovers,
            Event::KillTimeout {
                left: vec![7],
                bound_secs: 2,
            },
            Event::TerminationLog {
                path: "/dev/termination-log".into(),
                error: "Permission denied".into(),
            },
            Event::SyscallError {
                call: "wait4",
                error: "Invalid argument".into(),
            },
            Event::Warning(Warning::NoProc),
            Event::Stage {
                stage: "pre_stop",
                elapsed_ms: 0,
                kill_in_ms: Some(25_000),
            },
            Event::Progress {
                stage: "stopping",
                elapsed_ms: 5_000,
                waiting_for: "the app to exit after SIGTERM".into(),
                kill_in_ms: Some(20_000),
            },
            Event::LastWord {
                cause: LastWordCause::Shutdown,
                trigger: Some(Signal::TERM),
                sender_pid: Some(0),
                grace_period_ms: 25_000,
                kill_in_ms: Some(24_900),
                oom_group: None,
                message: "if this is curtain's last word...".into(),
            },
            Event::Exit(Exit {
                message: "app exited 0".into(),
                exit_code: 0,
                original_exit_code: 0,
                reason: Reason::Exited,
                expected: true,
                signal: None,
                shutdown_requested: false,
                trigger_signal: None,
                trigger_sender_pid: None,
                uptime_ms: 5,
                stop_ms: None,
                pre_stop_ms: None,
                orphans_reaped: 0,
                leftovers_killed: 0,
            }),
        ];
        for e in &all {
            covers(e);
        }
        all
    }

    fn covers(e: &Event) {
        match e {
            Event::Start { .. }
            | Event::Spawned { .. }
            | Event::ParentDied { .. }
            | Event::Signal { .. }
            | Event::Shutdown { .. }
            | Event::PreStop { .. }
            | Event::StopSignalSent { .. }
            | Event::GraceTimeout { .. }
            | Event::Reaped { .. }
            | Event::Leftovers
            | Event::KillTimeout { .. }
            | Event::TerminationLog { .. }
            | Event::SyscallError { .. }
            | Event::Warning(_)
            | Event::Stage { .. }
            | Event::Progress { .. }
            | Event::LastWord { .. }
            | Event::Exit(_) => {}
        }
    }

    pub fn field_names(e: &Event) -> Vec<&'static str> {
        let mut names = Vec::new();
        e.fields(&mut |name, _| names.push(name));
        names
    }

    /// The rows of a Markdown event table: (event, level column, field
    /// names). Field names are the backticked words outside parentheses.
    fn event_table(doc: &str) -> Vec<(String, String, Vec<String>)> {
        let mut rows = Vec::new();
        for line in doc.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // `| `name` | level | fields |` splits into 5 cells.
            let levels = ["error", "warn", "info", "debug", "trace"];
            if cells.len() != 5
                || !cells[1].starts_with('`')
                || cells[1].contains(' ')
                || !levels.iter().any(|l| cells[2].starts_with(l))
            {
                continue;
            }
            let mut outside = String::new();
            let mut depth = 0;
            for c in cells[3].chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    c if depth == 0 => outside.push(c),
                    _ => {}
                }
            }
            let fields = outside
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            rows.push((
                cells[1].trim_matches('`').to_string(),
                cells[2].to_string(),
                fields,
            ));
        }
        rows
    }

    #[test]
    fn durations_in_messages_round_to_tenths() {
        for (ms, text) in [
            (0, "0.0s"),
            (49, "0.0s"),
            (50, "0.1s"),
            (250, "0.3s"),
            (1050, "1.1s"),
            (1150, "1.2s"),
            (2500, "2.5s"),
            (25_000, "25.0s"),
            (u64::MAX, "18446744073709551.6s"),
        ] {
            assert_eq!(secs(ms), text, "{ms}");
        }
    }

    /// The README's and docs/behavior.md's event tables say what the code
    /// writes: the same events, each with its level and its fields in order.
    #[test]
    fn the_documented_event_tables_match_the_code() {
        let docs = [
            ("README.md", include_str!("../README.md")),
            ("docs/behavior.md", include_str!("../docs/behavior.md")),
        ];
        for (name, doc) in docs {
            let rows = event_table(doc);
            let documented: Vec<&str> = rows.iter().map(|(e, _, _)| e.as_str()).collect();
            let coded: Vec<&str> = samples().iter().map(Event::name).collect();
            assert_eq!(documented, coded, "{name}: the events and their order");
            for (sample, (event, level, fields)) in samples().iter().zip(&rows) {
                let want = sample.level().as_str().to_ascii_lowercase();
                assert!(
                    level.starts_with(&want),
                    "{name}: `{event}` is {want}, table says {level}"
                );
                assert_eq!(fields, &field_names(sample), "{name}: fields of `{event}`");
            }
        }
    }

    #[test]
    fn every_shape_of_an_event_has_the_same_fields() {
        // The pre-stop event in each of its shapes: same fields, same order.
        let shapes = [
            PreStopResult::Skipped,
            PreStopResult::SpawnFailed("No such file or directory".into()),
            PreStopResult::Ended {
                pid: 9,
                end: ChildEnd::Exited(3),
                duration_ms: 5,
                timed_out: false,
            },
            PreStopResult::Ended {
                pid: 9,
                end: ChildEnd::Signaled {
                    signal: Signal::KILL,
                    core_dumped: false,
                },
                duration_ms: 5,
                timed_out: true,
            },
        ];
        let answers = [
            HttpAnswer::NotHttp,
            HttpAnswer::NoAnswer,
            HttpAnswer::Status(503),
            HttpAnswer::Failed("Connection refused (os error 111)".into()),
        ];
        for result in shapes {
            for http in answers.clone() {
                let e = Event::PreStop {
                    command: "drain",
                    result: result.clone(),
                    http,
                };
                assert_eq!(
                    field_names(&e),
                    [
                        "command",
                        "exit_code",
                        "duration_ms",
                        "timed_out",
                        "error",
                        "http_status"
                    ]
                );
                assert_eq!(e.level(), Level::Warn, "{e:?}");
            }
        }
        let names: Vec<_> = samples().iter().map(Event::name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }
}
