//! The end: one `exit` event that explains the stop and the Kubernetes
//! termination message (docs/behavior.md, Exit code and reason, Termination
//! message). The reason and the code come from `exit_reason`; this module
//! gathers the facts and words them.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::cgroup::OomWatch;
use crate::config::{Config, TerminationLog};
use crate::events::{self, secs, Event, LastWordCause};
use crate::exit_reason::{self, Facts, Outcome, Reason};
use crate::logging;
use crate::reaper::ChildEnd;
use crate::sequencer::millis;
use crate::signals::{Sender, Signal, SignalSet};

/// What the supervisor knows when the app and its leftovers are gone.
#[derive(Debug, Clone)]
pub struct Summary {
    pub outcome: Outcome,
    pub killed_at_deadline: bool,
    pub sent_to_app: SignalSet,
    pub shutdown: Option<ShutdownSummary>,
    pub app_ended: Option<Instant>,
    pub orphans_reaped: u32,
    pub leftovers_killed: u32,
    /// Processes may still run: the reap bound after SIGKILL ran out, or
    /// curtain could not find its leftovers (a subreaper without `/proc`).
    pub leftovers_remain: bool,
    /// Who sent each signal curtain forwarded to the app (the latest).
    pub forwarded_from: Vec<(Signal, Sender)>,
}

#[derive(Debug, Clone, Copy)]
pub struct ShutdownSummary {
    pub trigger: Signal,
    pub sender_pid: i32,
    pub started: Instant,
    pub stop_signal: Signal,
    pub stop_sent: Option<Instant>,
}

impl Summary {
    /// The facts the reason is decided from. `oom_rose` reads the cgroup's
    /// counter (given whether the app died of SIGKILL): it is called only
    /// where it can change the answer.
    pub fn facts(&self, oom_rose: impl FnOnce(bool) -> bool) -> Facts {
        let may_be_oom = matches!(
            self.outcome,
            Outcome::Ended(
                ChildEnd::Signaled {
                    signal: Signal::KILL,
                    ..
                } | ChildEnd::Exited(137)
            )
        );
        Facts {
            outcome: self.outcome.clone(),
            killed_at_deadline: self.killed_at_deadline,
            oom_rose: may_be_oom
                && !self.killed_at_deadline
                && oom_rose(matches!(self.outcome.signal(), Some(Signal::KILL))),
            // A shutdown requested after the app had ended by itself (while
            // its leftovers were being stopped) does not make its end a stop.
            shutdown_requested: self
                .shutdown
                .is_some_and(|sd| self.app_ended.is_none_or(|end| sd.started <= end)),
            sent_to_app: self.sent_to_app,
        }
    }

    pub fn failed(outcome: Outcome) -> Summary {
        Summary {
            outcome,
            killed_at_deadline: false,
            sent_to_app: SignalSet::default(),
            shutdown: None,
            app_ended: None,
            orphans_reaped: 0,
            leftovers_killed: 0,
            leftovers_remain: false,
            forwarded_from: Vec::new(),
        }
    }
}

/// The largest termination message Kubernetes reads.
const TERMINATION_LOG_MAX: usize = 4096;

/// Classify, write the termination message and the exit event; return the
/// exit code (after `--remap-exit`).
pub fn finish(cfg: &Config, started: Instant, oom: &OomWatch, pid1: bool, s: &Summary) -> i32 {
    let now = Instant::now();
    let facts = s.facts(|by_sigkill| oom.rose(pid1, by_sigkill));
    let reason = exit_reason::classify(&facts);
    let original = s.outcome.exit_code();
    let code = cfg.remap_exit(original);
    let expected = exit_reason::expected(reason, original, s.leftovers_killed, s.leftovers_remain);
    let stop_ms = s
        .shutdown
        .and_then(|sd| Some(millis(sd.stop_sent?, s.app_ended?)));
    // Shutdown request -> stop signal (or the app's end during the pre-stop
    // steps); null without a shutdown, or when it came after the app's end.
    let pre_stop_ms = s
        .shutdown
        .filter(|_| facts.shutdown_requested)
        .map(|sd| millis(sd.started, sd.stop_sent.or(s.app_ended).unwrap_or(now)));
    let message = sentence(reason, s, original, stop_ms, cfg.grace_period.is_zero());

    let event = Event::Exit(events::Exit {
        message,
        exit_code: code,
        original_exit_code: original,
        reason,
        expected,
        signal: s.outcome.signal(),
        shutdown_requested: s.shutdown.is_some(),
        trigger_signal: s.shutdown.map(|sd| sd.trigger),
        trigger_sender_pid: s.shutdown.map(|sd| sd.sender_pid),
        uptime_ms: millis(started, now),
        stop_ms,
        pre_stop_ms,
        orphans_reaped: s.orphans_reaped,
        leftovers_killed: s.leftovers_killed,
    });
    let path = termination_log_path(&cfg.termination_log);
    // Rendered once, for the termination message and the log line alike.
    let json = path.as_ref().map(|_| logging::render_json(&event));
    if let (Some(path), Some(json)) = (&path, &json) {
        let text = termination_message(reason, &event.message(), json);
        if let Err(e) = write_truncating(path, text.as_bytes()) {
            logging::emit(&Event::TerminationLog {
                path: path.display().to_string(),
                error: e.to_string(),
            });
        }
    }
    logging::emit_exit(&event, json.as_deref());
    code
}

/// One readable sentence, worded from the facts.
fn sentence(reason: Reason, s: &Summary, code: i32, stop_ms: Option<u64>, grace_zero: bool) -> String {
    let stop = s.shutdown.map(|sd| sd.stop_signal.name()).unwrap_or_default();
    let mut text = match (&s.outcome, reason) {
        (Outcome::SetupFailed(e), _) => format!("curtain could not set itself up: {e} ({code})"),
        (Outcome::ExecFailed { error, .. }, _) => format!("app could not be started: {error} ({code})"),
        (_, Reason::GraceTimeout) if grace_zero => {
            format!("app was killed at once: --grace-period is 0 ({code})")
        }
        (_, Reason::GraceTimeout) => format!(
            "app ignored {stop} for {} and was killed ({code})",
            secs(
                stop_ms
                    .or_else(|| s.shutdown.and_then(|sd| Some(millis(sd.started, s.app_ended?))))
                    .unwrap_or(0)
            )
        ),
        (_, Reason::OomKilled) => format!("app was killed by the kernel's OOM killer ({code})"),
        (_, Reason::Killed) => format!("app was killed by SIGKILL that curtain did not send ({code})"),
        (Outcome::Ended(end), Reason::Stopped) => match stop_ms {
            Some(ms) => format!("app stopped {} after {stop} ({})", secs(ms), describe(*end)),
            None => format!("app ended during the pre-stop steps ({})", describe(*end)),
        },
        (Outcome::Ended(end), Reason::Signaled) => {
            let forwarded = s
                .outcome
                .signal()
                .and_then(|sig| s.forwarded_from.iter().find(|(f, _)| *f == sig));
            match forwarded {
                Some((sig, sender)) => format!(
                    "app died of {sig}, which curtain forwarded from {} ({})",
                    who(sender),
                    describe(*end)
                ),
                None => format!("app died from a signal curtain did not send ({})", describe(*end)),
            }
        }
        (Outcome::Ended(end), _) => format!("app {}", describe(*end)),
    };
    if s.leftovers_killed > 0 {
        text.push_str(&format!(
            "; {} leftover process(es) stopped by curtain",
            s.leftovers_killed
        ));
    }
    if s.leftovers_remain {
        text.push_str("; some processes may still be running");
    }
    text
}

/// `outside the container (pid 0)` or `pid 42`.
fn who(sender: &Sender) -> String {
    match sender.pid {
        0 => "outside the container (pid 0)".into(),
        pid => format!("pid {pid}"),
    }
}

/// The last word: the provisional termination message, written when a
/// shutdown has gone on for a moment, or at start when `memory.oom.group`
/// is 1. It says what ended curtain if it turns out to be curtain's last
/// line; the final summary replaces it at exit.
pub fn last_word<'a>(
    cfg: &Config,
    cause: LastWordCause,
    request: Option<(Signal, Sender, u64, u64)>,
    oom_group: Option<bool>,
) -> Event<'a> {
    let grace = cfg.grace_period.as_millis() as u64;
    let oom = oom_group == Some(true);
    let message = match (cause, request) {
        (LastWordCause::Shutdown, Some((trigger, sender, elapsed_ms, kill_in_ms))) => format!(
            "if this is curtain's last word, it was killed during a shutdown, before its own grace \
             period ended: {trigger} from {} asked for the shutdown {} before this was written, and \
             curtain would have sent SIGKILL {} later (--grace-period {}). Most likely the \
             runtime's own deadline is shorter than curtain's grace period (docker and podman stop \
             wait 10 s by default; Kubernetes waits terminationGracePeriodSeconds){}",
            who(&sender),
            secs(elapsed_ms),
            secs(kill_in_ms),
            secs(grace),
            if oom {
                ", or an OOM kill took the whole cgroup (memory.oom.group is 1)"
            } else {
                ""
            }
        ),
        _ => "if this is curtain's last word, the kernel's OOM killer ended the app and curtain \
              together: memory.oom.group is 1 in this cgroup (Kubernetes 1.28+ sets it), so an OOM \
              kill takes every process in it and no exit event can be written"
            .to_string(),
    };
    Event::LastWord {
        cause,
        trigger: request.map(|r| r.0),
        sender_pid: request.map(|r| r.1.pid),
        grace_period_ms: grace,
        kill_in_ms: request.map(|r| r.3),
        oom_group,
        message,
    }
}

/// Write the last word to the termination log (as the final summary is
/// written: `cause: sentence`, then the event's JSON) and to the log.
pub fn write_last_word(cfg: &Config, event: &Event) {
    if let (Some(path), Event::LastWord { cause, .. }) = (termination_log_path(&cfg.termination_log), event) {
        let json = logging::render_json(event);
        let text = cap(format!("{}: {}\n{json}", cause.as_str(), event.message()));
        if let Err(e) = write_truncating(&path, text.as_bytes()) {
            logging::emit(&Event::TerminationLog {
                path: path.display().to_string(),
                error: e.to_string(),
            });
        }
    }
    logging::emit(event);
}

fn describe(end: ChildEnd) -> String {
    let text = end.to_string();
    let code = Outcome::Ended(end).exit_code();
    if matches!(end, ChildEnd::Signaled { .. }) {
        format!("{text}, {code}")
    } else {
        text
    }
}

/// `reason: sentence`, then the exit event's JSON, at most 4096 bytes.
fn termination_message(reason: Reason, message: &str, json: &str) -> String {
    cap(format!("{}: {message}\n{json}", reason.as_str()))
}

/// Cut `text` to what Kubernetes reads, at a character boundary.
fn cap(mut text: String) -> String {
    if text.len() > TERMINATION_LOG_MAX {
        let mut cut = TERMINATION_LOG_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

fn termination_log_path(setting: &TerminationLog) -> Option<std::path::PathBuf> {
    match setting {
        TerminationLog::Off => None,
        TerminationLog::Path(p) => Some(p.clone()),
        TerminationLog::Default => {
            let p = Path::new("/dev/termination-log");
            p.exists().then(|| p.to_path_buf())
        }
    }
}

/// Write the termination message, truncating the file. Opened without
/// blocking: a FIFO with no reader fails at once (ENXIO), and a write to a
/// full FIFO fails (EAGAIN) instead of waiting; a termination log is never
/// worth hanging PID 1 for.
fn write_truncating(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termination_message_is_capped() {
        let long = "x".repeat(5000);
        let t = termination_message(Reason::Exited, "app exited 0", &long);
        assert_eq!(t.len(), TERMINATION_LOG_MAX);
        assert!(t.starts_with("exited: app exited 0\nxxx"));
        let t = termination_message(Reason::GraceTimeout, "m", &"é".repeat(3000));
        assert!(t.len() <= TERMINATION_LOG_MAX && t.len() >= TERMINATION_LOG_MAX - 1);
    }
}
