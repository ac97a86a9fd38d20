//! The shutdown sequence as a pure state machine (docs/behavior.md, Shutdown
//! sequence).
//!
//! `Sequencer` decides everything that happens between the spawn of the app
//! and curtain's exit: when to start pre-stop commands, when to send the stop
//! signal and SIGKILL, what to do with leftovers, which events to write. It
//! reads no clock and makes no syscall: the supervisor feeds it `Input`s
//! with the time they happened (`now`), takes the `Action`s it queues, and
//! carries them out (sans-IO, as quinn-proto or h2 do for their protocols).
//! Each `Stage` owns the deadline it waits for, so `wake_at` is one match,
//! and every timing rule is a table test below with a fake clock.
//!
//! The budget: `--grace-period`, counted from the shutdown request. The
//! pre-stop steps (commands, then the sleep) may use it only up to the *stop
//! window*, min(2 s, a quarter of the budget), which is kept for the app to
//! stop after its stop signal, as Kubernetes keeps 2 s after a long preStop
//! hook. SIGKILL comes at the end of the budget; after it, curtain reaps for
//! at most `KILL_REAP_BOUND`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{PreStopStep, Scope};
use crate::events::{Event, HttpAnswer, PreStopResult, Warning};
use crate::exit_reason::Outcome;
use crate::reaper::ChildEnd;
use crate::report::{ShutdownSummary, Summary};
use crate::signals::{forward_as, Sender, Signal, SignalAction, SignalSet};

/// The longest stop window.
const MAX_STOP_WINDOW: Duration = Duration::from_secs(2);

/// After SIGKILL, how long curtain waits for the killed processes to be
/// reaped before it exits anyway (a process stuck in the kernel, in D state,
/// can take long to die).
pub const KILL_REAP_BOUND: Duration = Duration::from_secs(2);

/// How often a `progress` event is written while a shutdown (or the wait
/// for leftovers) goes on. No timer exists outside those stages.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How long after a shutdown request curtain writes its last word (the
/// provisional termination message), if it still has anything to wait for.
/// Most apps stop within milliseconds of their stop signal: they never cost
/// that write, and the stop signal is never delayed by it.
pub const LAST_WORD_AFTER: Duration = Duration::from_millis(100);

/// The instants of one shutdown's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// When the shutdown was requested.
    pub started: Instant,
    /// When pre-stop steps must have ended: the stop signal goes out then.
    pub pre_stop_end: Instant,
    /// When the app is SIGKILLed if it still runs.
    pub deadline: Instant,
}

/// The end of the budget kept for the app after its stop signal.
fn stop_window(grace: Duration) -> Duration {
    MAX_STOP_WINDOW.min(grace / 4)
}

impl Budget {
    pub fn new(started: Instant, grace: Duration) -> Budget {
        let window = stop_window(grace);
        Budget {
            started,
            pre_stop_end: started + (grace - window),
            deadline: started + grace,
        }
    }

    /// When a `--pre-stop-sleep` that starts at `now` ends.
    pub fn sleep_until(&self, now: Instant, sleep: Duration) -> Instant {
        (now + sleep).min(self.pre_stop_end).max(now)
    }
}

/// Whole milliseconds between two instants (0 if `to` is earlier).
pub fn millis(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_millis() as u64
}

/// What the sequence is configured to do (from `Config`).
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub grace: Duration,
    pub stop_signal: Option<Signal>,
    pub scope: Scope,
    pub pre_stop: &'a [PreStopStep],
    pub pre_stop_sleep: Duration,
    /// `--map-signal` rules, for repeats during a shutdown.
    pub map: &'a [(Signal, Signal)],
    /// Whether the `reaped` events are wanted (they are logged at debug
    /// level): otherwise none is queued, which was a third of curtain's
    /// work per reaped zombie.
    pub reaped_events: bool,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// SIGTERM, SIGINT or the stop signal reached curtain.
    ShutdownSignal { signal: Signal, sender: Sender },
    /// Any other signal for the app: pass it on as `to`, or drop it (`None`).
    Signal {
        signal: Signal,
        to: Option<Signal>,
        sender: Sender,
    },
    /// A child was reaped.
    Reaped { pid: i32, end: ChildEnd },
    /// A reaping pass is over; whether curtain still has children.
    ReapPassDone { children_left: bool },
    /// The answer to `Action::StartPreStop`: the command's pid, or why it
    /// could not be started. Its `now` is the instant before the spawn.
    PreStopStarted {
        index: usize,
        result: Result<i32, String>,
    },
    /// Time passed: a deadline may have come.
    Tick,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Start pre-stop command `index`; answer with `Input::PreStopStarted`.
    StartPreStop {
        index: usize,
    },
    /// SIGKILL a pre-stop command and its process group.
    KillPreStop {
        pid: i32,
    },
    /// Signal the app, alone or with its process group.
    SignalApp {
        signal: Signal,
        reach: Reach,
    },
    /// Signal every process left besides the app.
    SignalLeftovers {
        signal: Signal,
    },
    Emit(Event<'a>),
    /// Write the provisional termination message and the `last_word` event:
    /// what curtain would say if it were killed now, in the middle of a
    /// shutdown (the runtime's own deadline, an OOM group kill).
    WriteLastWord {
        trigger: Signal,
        sender: Sender,
        /// Since the request.
        elapsed_ms: u64,
        /// Until curtain's SIGKILL.
        kill_in_ms: u64,
    },
    /// Nothing is left to wait for: report and exit.
    Exit,
}

/// What a stage is called in `stage` and `progress` events.
fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Running => "running",
        Stage::PreStop { .. } => "pre_stop",
        Stage::Sleep { .. } => "sleep",
        Stage::Stopping { .. } => "stopping",
        Stage::Leftovers { .. } => "leftovers",
        Stage::Killing { .. } => "killing",
        Stage::Done => "done",
    }
}

/// Settings that cannot work as written, said once at start.
pub fn warnings(plan: &Plan) -> Vec<Warning> {
    let mut out = Vec::new();
    if plan.grace.is_zero() {
        out.push(Warning::GraceZero);
        return out;
    }
    let window = stop_window(plan.grace);
    let room = plan.grace - window;
    if plan.pre_stop_sleep > room {
        out.push(Warning::SleepCut {
            sleep_ms: plan.pre_stop_sleep.as_millis() as u64,
            cut_to_ms: room.as_millis() as u64,
        });
    }
    let has_steps = !plan.pre_stop.is_empty() || !plan.pre_stop_sleep.is_zero();
    if has_steps && window < MAX_STOP_WINDOW {
        out.push(Warning::ShortStopWindow {
            window_ms: window.as_millis() as u64,
            grace_ms: plan.grace.as_millis() as u64,
        });
    }
    out
}

/// Whom `Action::SignalApp` is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The app alone (`--signal-scope child`).
    App,
    /// The app's process group, or the app alone when that group is gone
    /// (`--signal-scope group`, forwarded signals: two syscalls).
    Group,
    /// The app itself for certain, and its process group: the stop signal,
    /// repeats and SIGKILL, which must not miss an app that left its group
    /// while a descendant stayed in it.
    AppAndGroup,
}

impl Reach {
    #[cfg(test)]
    fn as_str(self) -> &'static str {
        match self {
            Reach::App => "app",
            Reach::Group => "group",
            Reach::AppAndGroup => "app+group",
        }
    }

    /// For the stop signal, repeats and SIGKILL under `scope`.
    fn sure(scope: Scope) -> Reach {
        match scope {
            Scope::Child => Reach::App,
            Scope::Group => Reach::AppAndGroup,
        }
    }

    /// For a forwarded signal under `scope`.
    fn forward(scope: Scope) -> Reach {
        match scope {
            Scope::Child => Reach::App,
            Scope::Group => Reach::Group,
        }
    }
}

/// Where the sequence stands. Each stage holds the instant it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The app runs; no shutdown was requested.
    Running,
    /// Shutdown: the pre-stop commands, in order, until `until` (the start of
    /// the stop window).
    PreStop {
        index: usize,
        step: Step,
        until: Instant,
    },
    /// Shutdown: `--pre-stop-sleep`.
    Sleep {
        until: Instant,
    },
    /// Shutdown: the stop signal went out; SIGKILL at `kill_at`. `since` is
    /// what `grace_timeout` counts its elapsed time from.
    Stopping {
        kill_at: Instant,
        since: Instant,
    },
    /// The app is gone and its leftovers got the stop signal; SIGKILL at
    /// `kill_at`.
    Leftovers {
        kill_at: Instant,
        since: Instant,
    },
    /// SIGKILL went out; reap until nothing is left, at most until `until`.
    Killing {
        until: Instant,
    },
    Done,
}

/// The state of pre-stop command `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// To be started (or skipped) next.
    Next,
    /// `Action::StartPreStop` is out; waiting for its answer.
    Starting,
    /// Running as this pid.
    Running(i32),
}

/// The shutdown request: what started it and its budget.
#[derive(Debug, Clone, Copy)]
struct Request {
    trigger: Signal,
    sender: Sender,
    budget: Budget,
    stop_signal: Signal,
    stop_sent: Option<Instant>,
}

/// A pre-stop command started and not yet reaped (one killed at the window
/// may be reaped after the next has started).
#[derive(Debug, Clone, Copy)]
struct PreStopRun {
    pid: i32,
    index: usize,
    started: Instant,
    timed_out: bool,
}

pub struct Sequencer<'a> {
    plan: Plan<'a>,
    app_pid: i32,
    /// How and when the app ended, once reaped.
    app_end: Option<(ChildEnd, Instant)>,
    /// The app was reaped in the current reaping pass.
    app_ended_in_pass: bool,
    stage: Stage,
    request: Option<Request>,
    pre_stop_runs: Vec<PreStopRun>,
    sent_to_app: SignalSet,
    killed_at_deadline: bool,
    /// Set when the app's end left descendants running: from then on, a
    /// reaped stranger counts as a leftover curtain stopped, not an orphan.
    leftovers_signaled: bool,
    orphans_reaped: u32,
    leftovers_killed: u32,
    /// The reap bound after SIGKILL ran out with children left.
    gave_up: bool,
    /// Who sent each signal curtain forwarded, the latest sender per signal.
    forwarded_from: Vec<(Signal, Sender)>,
    /// When the next `progress` event is due, during a shutdown.
    progress_at: Option<Instant>,
    /// When the last word is due, once per shutdown.
    last_word_at: Option<Instant>,
    actions: VecDeque<Action<'a>>,
}

impl<'a> Sequencer<'a> {
    /// The app was just started as `app_pid`.
    pub fn new(plan: Plan<'a>, app_pid: i32) -> Sequencer<'a> {
        Sequencer {
            plan,
            app_pid,
            app_end: None,
            app_ended_in_pass: false,
            stage: Stage::Running,
            request: None,
            pre_stop_runs: Vec::new(),
            sent_to_app: SignalSet::default(),
            killed_at_deadline: false,
            leftovers_signaled: false,
            orphans_reaped: 0,
            leftovers_killed: 0,
            gave_up: false,
            forwarded_from: Vec::new(),
            progress_at: None,
            last_word_at: None,
            actions: VecDeque::new(),
        }
    }

    /// Take in what happened at `now`; the actions it calls for are queued.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::ShutdownSignal { signal, sender } if self.request.is_some() => {
                self.on_repeat(signal, sender)
            }
            Input::ShutdownSignal { signal, sender } => self.on_shutdown(signal, sender, now),
            Input::Signal { signal, to, sender } => self.on_signal(signal, to, sender),
            Input::Reaped { pid, end } => self.on_reaped(pid, end, now),
            Input::ReapPassDone { children_left } => self.on_reap_pass_done(children_left, now),
            Input::PreStopStarted { index, result } => self.on_pre_stop_started(index, result, now),
            Input::Tick => self.on_tick(now),
        }
    }

    /// The next queued action.
    pub fn poll_action(&mut self) -> Option<Action<'a>> {
        self.actions.pop_front()
    }

    /// The instant the current stage waits for, if any: the event loop
    /// sleeps until then, or without a timeout.
    pub fn wake_at(&self) -> Option<Instant> {
        [self.stage_wake_at(), self.progress_at, self.last_word_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The instant the current stage itself waits for.
    fn stage_wake_at(&self) -> Option<Instant> {
        match self.stage {
            Stage::PreStop {
                step: Step::Running(_),
                until,
                ..
            }
            | Stage::Sleep { until }
            | Stage::Killing { until } => Some(until),
            Stage::Stopping { kill_at, .. } | Stage::Leftovers { kill_at, .. } => Some(kill_at),
            Stage::Running | Stage::PreStop { .. } | Stage::Done => None,
        }
    }

    /// Whether the app has been reaped.
    pub fn app_ended(&self) -> bool {
        self.app_end.is_some()
    }

    fn app_running(&self) -> bool {
        self.app_end.is_none()
    }

    fn emit(&mut self, event: Event<'a>) {
        self.actions.push_back(Action::Emit(event));
    }

    /// Send `signal` to the app, unless it is gone. It is not reaped yet
    /// then, so neither its pid nor its group id can have been reused.
    fn signal_app(&mut self, signal: Signal, reach: Reach) {
        if self.app_running() {
            self.sent_to_app.insert(signal);
            self.actions.push_back(Action::SignalApp { signal, reach });
        }
    }

    fn signal_leftovers(&mut self, signal: Signal) {
        self.actions.push_back(Action::SignalLeftovers { signal });
    }

    fn finish(&mut self) {
        self.stage = Stage::Done;
        self.progress_at = None;
        self.last_word_at = None;
        self.actions.push_back(Action::Exit);
    }

    /// When curtain's SIGKILL is due in the current stage, if it is known.
    fn kill_at(&self) -> Option<Instant> {
        match self.stage {
            Stage::PreStop { .. } | Stage::Sleep { .. } => self.request.map(|r| r.budget.deadline),
            Stage::Stopping { kill_at, .. } | Stage::Leftovers { kill_at, .. } => Some(kill_at),
            Stage::Running | Stage::Killing { .. } | Stage::Done => None,
        }
    }

    /// What the elapsed time of `stage` and `progress` counts from: the
    /// shutdown request, or the app's end for leftovers outside a shutdown.
    fn since(&self) -> Option<Instant> {
        match self.stage {
            Stage::Stopping { since, .. } | Stage::Leftovers { since, .. } => Some(since),
            _ => self.request.map(|r| r.budget.started),
        }
    }

    /// Announce the stage just entered (the stop signal and SIGKILL have
    /// their own events), and time the progress events from now.
    fn emit_stage(&mut self, now: Instant) {
        self.progress_at = Some(now + PROGRESS_EVERY);
        self.emit(Event::Stage {
            stage: stage_name(self.stage),
            elapsed_ms: self.since().map_or(0, |t| millis(t, now)),
            kill_in_ms: self.kill_at().map(|t| millis(now, t)),
        });
    }

    fn emit_progress(&mut self, now: Instant) {
        let waiting_for = match self.stage {
            Stage::PreStop {
                index,
                step: Step::Running(_),
                ..
            } => format!(
                "pre-stop command {}",
                self.plan.pre_stop.get(index).map_or("", PreStopStep::label)
            ),
            Stage::Sleep { .. } => "the end of the pre-stop sleep".into(),
            Stage::Stopping { .. } => match self.request {
                Some(r) => format!("the app to exit after {}", r.stop_signal),
                None => "the app to exit".into(),
            },
            Stage::Leftovers { .. } => "the leftover processes to exit".into(),
            _ => return,
        };
        self.emit(Event::Progress {
            stage: stage_name(self.stage),
            elapsed_ms: self.since().map_or(0, |t| millis(t, now)),
            waiting_for,
            kill_in_ms: self.kill_at().map(|t| millis(now, t)),
        });
    }

    fn on_signal(&mut self, signal: Signal, to: Option<Signal>, sender: Sender) {
        let to = to.filter(|_| self.app_running());
        if let Some(to) = to {
            self.signal_app(to, Reach::forward(self.plan.scope));
            match self.forwarded_from.iter_mut().find(|(s, _)| *s == to) {
                Some(entry) => entry.1 = sender,
                None => self.forwarded_from.push((to, sender)),
            }
        }
        self.emit(Event::Signal {
            signal,
            forwarded_as: to,
            sender,
            repeat: false,
        });
    }

    /// A shutdown signal during the shutdown: pass it on at once (mapped),
    /// to the leftovers once the app is gone; never restart the sequence.
    fn on_repeat(&mut self, signal: Signal, sender: Sender) {
        let to = match forward_as(signal, self.plan.map) {
            SignalAction::Forward(to) => Some(to),
            _ => None,
        };
        match to {
            Some(to) if self.app_running() => self.signal_app(to, Reach::sure(self.plan.scope)),
            Some(to) => self.signal_leftovers(to),
            None => {}
        }
        self.emit(Event::Signal {
            signal,
            forwarded_as: to,
            sender,
            repeat: true,
        });
    }

    fn on_shutdown(&mut self, trigger: Signal, sender: Sender, now: Instant) {
        let budget = Budget::new(now, self.plan.grace);
        // Without --stop-signal the app gets the signal that started the
        // shutdown, as a --map-signal rule for it rewrites it (dumb-init's
        // `-r 15:3`). No rule can drop it: config refuses those.
        let stop_signal = self
            .plan
            .stop_signal
            .unwrap_or(match forward_as(trigger, self.plan.map) {
                SignalAction::Forward(to) => to,
                _ => trigger,
            });
        self.request = Some(Request {
            trigger,
            sender,
            budget,
            stop_signal,
            stop_sent: None,
        });
        let shutdown = Event::Shutdown {
            signal: trigger,
            sender,
            sender_comm: None,
            grace_period_ms: self.plan.grace.as_millis() as u64,
        };
        if !matches!(self.stage, Stage::Killing { .. } | Stage::Done) {
            self.last_word_at = Some(now + LAST_WORD_AFTER);
        }
        match self.stage {
            // No grace at all: SIGKILL at once, and no stop signal that
            // would race it. Pre-stop steps have no time either.
            Stage::Running if self.plan.grace.is_zero() => {
                self.emit(shutdown);
                for cmd in self.plan.pre_stop {
                    self.actions.push_back(Action::Emit(Event::PreStop {
                        command: cmd.label(),
                        result: PreStopResult::Skipped,
                        http: answer_of(Some(cmd)),
                    }));
                }
                self.escalate(now, now);
            }
            // Nothing to run before the stop signal: send it before any
            // logging, so the app hears of the shutdown as fast as it would
            // without curtain.
            Stage::Running if self.plan.pre_stop.is_empty() && self.plan.pre_stop_sleep.is_zero() => {
                self.deliver_stop(now);
                self.emit(shutdown);
                self.emit_stop_sent(now);
            }
            Stage::Running => {
                self.emit(shutdown);
                self.stage = Stage::PreStop {
                    index: 0,
                    step: Step::Next,
                    until: budget.pre_stop_end,
                };
                if !self.plan.pre_stop.is_empty() {
                    self.emit_stage(now);
                }
                self.advance_pre_stop(now);
            }
            // The app is gone: its leftovers go straight to the stop signal,
            // and the budget may only shorten their deadline.
            Stage::Leftovers { kill_at, .. } => {
                self.emit(shutdown);
                self.signal_leftovers(stop_signal);
                self.stage = Stage::Leftovers {
                    kill_at: kill_at.min(budget.deadline),
                    since: budget.started,
                };
            }
            // SIGKILL already went out: only record the request.
            _ => self.emit(shutdown),
        }
    }

    /// Start the next pre-stop command, or skip the rest when the stop
    /// window is reached; after the last, the sleep.
    fn advance_pre_stop(&mut self, now: Instant) {
        let Stage::PreStop {
            index,
            step: Step::Next,
            until,
        } = self.stage
        else {
            return;
        };
        if index >= self.plan.pre_stop.len() {
            return self.begin_sleep(now);
        }
        if now >= until {
            for cmd in &self.plan.pre_stop[index..] {
                self.actions.push_back(Action::Emit(Event::PreStop {
                    command: cmd.label(),
                    result: PreStopResult::Skipped,
                    http: answer_of(Some(cmd)),
                }));
            }
            return self.begin_sleep(now);
        }
        self.stage = Stage::PreStop {
            index,
            step: Step::Starting,
            until,
        };
        self.actions.push_back(Action::StartPreStop { index });
    }

    fn on_pre_stop_started(&mut self, index: usize, result: Result<i32, String>, now: Instant) {
        let Stage::PreStop {
            index: current,
            step: Step::Starting,
            until,
        } = self.stage
        else {
            return;
        };
        if current != index {
            return;
        }
        match result {
            Ok(pid) => {
                self.pre_stop_runs.push(PreStopRun {
                    pid,
                    index,
                    started: now,
                    timed_out: false,
                });
                self.stage = Stage::PreStop {
                    index,
                    step: Step::Running(pid),
                    until,
                };
            }
            Err(error) => {
                self.emit_pre_stop(index, PreStopResult::SpawnFailed(error));
                self.stage = Stage::PreStop {
                    index: index + 1,
                    step: Step::Next,
                    until,
                };
                self.advance_pre_stop(now);
            }
        }
    }

    fn emit_pre_stop(&mut self, index: usize, result: PreStopResult) {
        let step = self.plan.pre_stop.get(index);
        self.emit(Event::PreStop {
            command: step.map_or("", PreStopStep::label),
            result,
            http: answer_of(step),
        });
    }

    fn begin_sleep(&mut self, now: Instant) {
        let Some(request) = self.request else { return };
        let until = request.budget.sleep_until(now, self.plan.pre_stop_sleep);
        if until > now {
            self.stage = Stage::Sleep { until };
            self.emit_stage(now);
        } else {
            self.deliver_stop(now);
            self.emit_stop_sent(now);
        }
    }

    /// Send the stop signal per `--signal-scope`; SIGKILL is due at the
    /// budget's deadline.
    fn deliver_stop(&mut self, now: Instant) {
        let Some(request) = self.request.as_mut() else {
            return;
        };
        request.stop_sent = Some(now);
        let Request {
            stop_signal, budget, ..
        } = *request;
        self.signal_app(stop_signal, Reach::sure(self.plan.scope));
        self.stage = Stage::Stopping {
            kill_at: budget.deadline,
            since: budget.started,
        };
        self.progress_at = Some(now + PROGRESS_EVERY);
    }

    fn emit_stop_sent(&mut self, now: Instant) {
        let Some(request) = self.request else { return };
        self.emit(Event::StopSignalSent {
            signal: request.stop_signal,
            scope: self.plan.scope,
            elapsed_ms: millis(request.budget.started, now),
        });
    }

    fn on_tick(&mut self, now: Instant) {
        if self.last_word_at.is_some_and(|at| now >= at) {
            self.last_word_at = None;
            if let Some(r) = self.request {
                self.actions.push_back(Action::WriteLastWord {
                    trigger: r.trigger,
                    sender: r.sender,
                    elapsed_ms: millis(r.budget.started, now),
                    kill_in_ms: self.kill_at().map_or(0, |t| millis(now, t)),
                });
            }
        }
        if self.progress_at.is_some_and(|at| now >= at) {
            self.progress_at = Some(now + PROGRESS_EVERY);
            self.emit_progress(now);
        }
        if self.stage_wake_at().is_none_or(|at| now < at) {
            return;
        }
        match self.stage {
            // The stop window is reached: kill the command and its group.
            Stage::PreStop {
                index,
                step: Step::Running(pid),
                until,
            } => {
                self.actions.push_back(Action::KillPreStop { pid });
                if let Some(run) = self.pre_stop_runs.iter_mut().find(|r| r.pid == pid) {
                    run.timed_out = true;
                }
                self.stage = Stage::PreStop {
                    index: index + 1,
                    step: Step::Next,
                    until,
                };
                self.advance_pre_stop(now);
            }
            Stage::Sleep { .. } => {
                self.deliver_stop(now);
                self.emit_stop_sent(now);
            }
            Stage::Stopping { since, .. } | Stage::Leftovers { since, .. } => self.escalate(now, since),
            Stage::Killing { .. } => {
                self.emit(Event::KillTimeout {
                    left: Vec::new(),
                    bound_secs: KILL_REAP_BOUND.as_secs(),
                });
                self.gave_up = true;
                self.finish();
            }
            Stage::Running | Stage::PreStop { .. } | Stage::Done => {}
        }
    }

    /// The grace period ran out: SIGKILL the app's group and every leftover.
    fn escalate(&mut self, now: Instant, since: Instant) {
        let mut killed_pids = Vec::new();
        if self.app_running() {
            self.killed_at_deadline = true;
            self.signal_app(Signal::KILL, Reach::AppAndGroup);
            killed_pids.push(self.app_pid);
        }
        self.signal_leftovers(Signal::KILL);
        self.emit(Event::GraceTimeout {
            elapsed_ms: millis(since, now),
            grace_period_ms: self.plan.grace.as_millis() as u64,
            killed_pids,
        });
        self.stage = Stage::Killing {
            until: now + KILL_REAP_BOUND,
        };
        self.progress_at = None;
    }

    fn on_reaped(&mut self, pid: i32, end: ChildEnd, now: Instant) {
        if self.plan.reaped_events {
            self.emit(Event::Reaped { pid, end });
        }
        if pid == self.app_pid && self.app_running() {
            self.app_end = Some((end, now));
            self.app_ended_in_pass = true;
        } else if let Some(i) = self.pre_stop_runs.iter().position(|r| r.pid == pid) {
            let run = self.pre_stop_runs.swap_remove(i);
            self.emit_pre_stop(
                run.index,
                PreStopResult::Ended {
                    pid,
                    end,
                    duration_ms: millis(run.started, now),
                    timed_out: run.timed_out,
                },
            );
            if let Stage::PreStop {
                index,
                step: Step::Running(current),
                until,
            } = self.stage
            {
                if current == pid {
                    self.stage = Stage::PreStop {
                        index: index + 1,
                        step: Step::Next,
                        until,
                    };
                }
            }
        } else if self.leftovers_signaled {
            self.leftovers_killed += 1;
        } else {
            self.orphans_reaped += 1;
        }
    }

    fn on_reap_pass_done(&mut self, children_left: bool, now: Instant) {
        if std::mem::take(&mut self.app_ended_in_pass) {
            self.on_app_ended(children_left, now);
        } else if !children_left && matches!(self.stage, Stage::Leftovers { .. } | Stage::Killing { .. }) {
            self.finish();
        } else if matches!(self.stage, Stage::Killing { .. }) {
            // Orphans of killed processes keep coming to us: kill them too.
            self.signal_leftovers(Signal::KILL);
        }
        self.advance_pre_stop(now);
    }

    /// The app is gone. Anything still running gets the stop signal and, at
    /// the deadline, SIGKILL; curtain exits as soon as nothing is left.
    fn on_app_ended(&mut self, children_left: bool, now: Instant) {
        if !children_left {
            return self.finish();
        }
        if matches!(self.stage, Stage::Killing { .. }) {
            return;
        }
        let (signal, kill_at, since) = match self.request {
            Some(r) => (r.stop_signal, r.budget.deadline, r.budget.started),
            None => {
                self.emit(Event::Leftovers);
                (
                    self.plan.stop_signal.unwrap_or(Signal::TERM),
                    now + self.plan.grace,
                    now,
                )
            }
        };
        self.signal_leftovers(signal);
        self.leftovers_signaled = true;
        self.stage = Stage::Leftovers { kill_at, since };
        self.emit_stage(now);
    }

    /// The facts for the exit event.
    pub fn summary(&self) -> Summary {
        let (outcome, app_ended, killed_at_deadline) = match self.app_end {
            Some((end, at)) => (Outcome::Ended(end), Some(at), self.killed_at_deadline),
            // The reap bound ran out before the app was reaped: it dies of
            // curtain's SIGKILL.
            None => (
                Outcome::Ended(ChildEnd::Signaled {
                    signal: Signal::KILL,
                    core_dumped: false,
                }),
                None,
                true,
            ),
        };
        Summary {
            outcome,
            killed_at_deadline,
            sent_to_app: self.sent_to_app,
            shutdown: self.request.map(|r| ShutdownSummary {
                trigger: r.trigger,
                sender_pid: r.sender.pid,
                started: r.budget.started,
                stop_signal: r.stop_signal,
                stop_sent: r.stop_sent,
            }),
            app_ended,
            orphans_reaped: self.orphans_reaped,
            leftovers_killed: self.leftovers_killed,
            leftovers_remain: self.gave_up,
            forwarded_from: self.forwarded_from.clone(),
        }
    }
}

/// Every timing rule of the sequence, with a fake clock: each step gives the
/// input, the millisecond (from the app's start) it happens at, and the
/// actions it must produce, written short (`show`).
/// What a pre-stop event says of HTTP before the supervisor reads the
/// answer: nothing for a command, no answer yet for a request.
fn answer_of(step: Option<&PreStopStep>) -> HttpAnswer {
    match step {
        Some(PreStopStep::Http(_)) => HttpAnswer::NoAnswer,
        _ => HttpAnswer::NotHttp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_reason::{classify, Reason};

    const APP: i32 = 10;
    const TERM: Signal = Signal::TERM;
    const FROM_OUTSIDE: Sender = Sender { pid: 0, uid: 0 };

    fn sig(n: i32) -> Signal {
        Signal(n)
    }

    fn commands(n: usize) -> Vec<PreStopStep> {
        (0..n)
            .map(|i| PreStopStep::Command {
                argv: vec![format!("drain{i}"), "--secret".into()],
            })
            .collect()
    }

    fn plan<'a>(grace_ms: u64, pre_stop: &'a [PreStopStep], sleep_ms: u64) -> Plan<'a> {
        Plan {
            grace: Duration::from_millis(grace_ms),
            stop_signal: None,
            scope: Scope::Group,
            pre_stop,
            pre_stop_sleep: Duration::from_millis(sleep_ms),
            map: &[],
            reaped_events: true,
        }
    }

    /// A sequencer with a fake clock and a fake spawner: pre-stop command
    /// `i` starts as pid 100 + i, unless `i` is in `spawn_fails`.
    struct Harness<'a> {
        seq: Sequencer<'a>,
        t0: Instant,
        spawn_fails: Vec<usize>,
        /// Leave out the observability (stage and progress events, the last
        /// word): most tables are about what is done, and when.
        quiet: bool,
    }

    impl<'a> Harness<'a> {
        fn new(plan: Plan<'a>) -> Harness<'a> {
            Harness {
                seq: Sequencer::new(plan, APP),
                t0: Instant::now(),
                spawn_fails: Vec::new(),
                quiet: true,
            }
        }

        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }

        /// Feed `input` at `ms`; the actions, answered as the supervisor would.
        fn step(&mut self, ms: u64, input: Input) -> Vec<String> {
            let now = self.at(ms);
            self.seq.handle(input, now);
            let mut shown = Vec::new();
            while let Some(action) = self.seq.poll_action() {
                shown.push(show(&action));
                if let Action::StartPreStop { index } = action {
                    let result = if self.spawn_fails.contains(&index) {
                        Err("No such file or directory".into())
                    } else {
                        Ok(100 + index as i32)
                    };
                    self.seq.handle(Input::PreStopStarted { index, result }, now);
                }
            }
            if self.quiet {
                shown.retain(|a| {
                    !a.starts_with("last word")
                        && !a.starts_with("emit stage")
                        && !a.starts_with("emit progress")
                });
            }
            shown
        }

        fn tick(&mut self, ms: u64) -> Vec<String> {
            self.step(ms, Input::Tick)
        }

        fn term(&mut self, ms: u64) -> Vec<String> {
            self.step(
                ms,
                Input::ShutdownSignal {
                    signal: TERM,
                    sender: FROM_OUTSIDE,
                },
            )
        }

        /// One reaping pass that finds `ended`.
        fn reap(&mut self, ms: u64, ended: &[(i32, ChildEnd)], children_left: bool) -> Vec<String> {
            let mut shown = Vec::new();
            for &(pid, end) in ended {
                shown.extend(self.step(ms, Input::Reaped { pid, end }));
            }
            shown.extend(self.step(ms, Input::ReapPassDone { children_left }));
            shown.retain(|a| !a.starts_with("emit reaped"));
            shown
        }

        /// When the current stage wants to wake up, in ms from the start
        /// (`wake_at` adds the progress and last-word timers).
        fn wake_ms(&self) -> Option<u64> {
            self.seq.stage_wake_at().map(|t| millis(self.t0, t))
        }

        fn reason(&self) -> Reason {
            classify(&self.seq.summary().facts(|_| false))
        }
    }

    fn exited(code: i32) -> ChildEnd {
        ChildEnd::Exited(code)
    }

    fn killed_by(signal: Signal) -> ChildEnd {
        ChildEnd::Signaled {
            signal,
            core_dumped: false,
        }
    }

    fn show(action: &Action) -> String {
        match action {
            Action::StartPreStop { index } => format!("start pre-stop {index}"),
            Action::KillPreStop { pid } => format!("kill pre-stop {pid}"),
            Action::SignalApp { signal, reach } => format!("app {signal} {}", reach.as_str()),
            Action::SignalLeftovers { signal } => format!("leftovers {signal}"),
            Action::Exit => "exit".into(),
            Action::WriteLastWord {
                elapsed_ms,
                kill_in_ms,
                ..
            } => format!("last word +{elapsed_ms}ms, SIGKILL in {kill_in_ms}ms"),
            Action::Emit(event) => match event {
                Event::Stage {
                    stage, kill_in_ms, ..
                } => format!("emit stage {stage}, SIGKILL in {kill_in_ms:?}"),
                Event::Progress {
                    stage,
                    elapsed_ms,
                    kill_in_ms,
                    ..
                } => format!("emit progress {stage} +{elapsed_ms}ms, SIGKILL in {kill_in_ms:?}"),
                Event::StopSignalSent {
                    signal, elapsed_ms, ..
                } => format!("emit stop_signal_sent {signal} +{elapsed_ms}ms"),
                Event::GraceTimeout {
                    elapsed_ms,
                    killed_pids,
                    ..
                } => format!("emit grace_timeout +{elapsed_ms}ms {killed_pids:?}"),
                Event::PreStop { command, result, .. } => match result {
                    PreStopResult::Skipped => format!("emit pre_stop {command} skipped"),
                    PreStopResult::SpawnFailed(_) => format!("emit pre_stop {command} not started"),
                    PreStopResult::Ended {
                        end,
                        duration_ms,
                        timed_out,
                        ..
                    } => format!(
                        "emit pre_stop {command} {end} after {duration_ms}ms{}",
                        if *timed_out { ", timed out" } else { "" }
                    ),
                },
                Event::Signal {
                    signal,
                    forwarded_as,
                    repeat,
                    ..
                } => format!(
                    "emit signal {signal} -> {}{}",
                    forwarded_as.map_or("dropped".into(), |s| s.name()),
                    if *repeat { " (repeat)" } else { "" }
                ),
                other => format!("emit {}", other.name()),
            },
        }
    }

    #[test]
    fn budget_stop_window_is_a_quarter_up_to_two_seconds() {
        let t0 = Instant::now();
        // (grace, start of the stop window), in ms.
        let cases = [
            (25_000, 23_000),
            (8_000, 6_000),
            (2_000, 1_500),
            (1_000, 750),
            (0, 0),
        ];
        for (grace_ms, end_ms) in cases {
            let b = Budget::new(t0, Duration::from_millis(grace_ms));
            assert_eq!(b.deadline - t0, Duration::from_millis(grace_ms));
            assert_eq!(
                b.pre_stop_end - t0,
                Duration::from_millis(end_ms),
                "grace {grace_ms}"
            );
        }
        let b = Budget::new(t0, Duration::from_secs(2));
        let s = Duration::from_millis(500);
        assert_eq!(b.sleep_until(t0, s), t0 + s);
        assert_eq!(
            b.sleep_until(t0 + Duration::from_millis(1_200), s),
            b.pre_stop_end
        );
        let late = t0 + Duration::from_secs(3);
        assert_eq!(b.sleep_until(late, s), late);
    }

    #[test]
    fn without_pre_stop_steps_the_stop_signal_goes_before_any_event() {
        let mut h = Harness::new(plan(25_000, &[], 0));
        assert_eq!(h.wake_ms(), None, "idle: no timer at all");
        assert_eq!(
            h.term(1_000),
            [
                "app SIGTERM app+group",
                "emit shutdown",
                "emit stop_signal_sent SIGTERM +0ms"
            ]
        );
        assert_eq!(h.wake_ms(), Some(26_000), "SIGKILL at the deadline");
        assert_eq!(h.tick(25_999), Vec::<String>::new());
        assert_eq!(h.reap(1_200, &[(APP, killed_by(TERM))], false), ["exit"]);
        assert_eq!(h.reason(), Reason::Stopped);
        let s = h.seq.summary();
        assert_eq!(s.shutdown.and_then(|sd| sd.stop_sent), Some(h.at(1_000)));
        assert_eq!(s.app_ended, Some(h.at(1_200)));
    }

    #[test]
    fn the_stop_signal_option_and_the_scope_are_used() {
        let mut p = plan(10_000, &[], 0);
        p.stop_signal = Some(sig(libc::SIGQUIT));
        p.scope = Scope::Child;
        let mut h = Harness::new(p);
        assert_eq!(
            h.term(0),
            [
                "app SIGQUIT app",
                "emit shutdown",
                "emit stop_signal_sent SIGQUIT +0ms"
            ]
        );
        // The app dies of the stop signal it was sent: a stop.
        h.reap(50, &[(APP, killed_by(sig(libc::SIGQUIT)))], false);
        assert_eq!(h.reason(), Reason::Stopped);
    }

    #[test]
    fn sigkill_at_the_deadline_then_at_most_two_seconds_of_reaping() {
        let mut h = Harness::new(plan(3_000, &[], 0));
        h.term(0);
        assert_eq!(h.tick(2_999), Vec::<String>::new());
        assert_eq!(
            h.tick(3_000),
            [
                "app SIGKILL app+group",
                "leftovers SIGKILL",
                "emit grace_timeout +3000ms [10]"
            ]
        );
        assert_eq!(h.wake_ms(), Some(5_000), "the reap bound");
        // Orphans of killed processes keep coming: they are killed too.
        assert_eq!(
            h.reap(3_100, &[(77, killed_by(Signal::KILL))], true),
            ["leftovers SIGKILL"]
        );
        assert_eq!(h.tick(4_999), Vec::<String>::new());
        assert_eq!(h.tick(5_000), ["emit kill_timeout", "exit"]);
        // Never reaped: it died of curtain's SIGKILL.
        assert_eq!(h.reason(), Reason::GraceTimeout);
        let s = h.seq.summary();
        assert!(s.killed_at_deadline && s.leftovers_remain);
    }

    #[test]
    fn the_app_killed_at_the_deadline_is_a_grace_timeout() {
        let mut h = Harness::new(plan(3_000, &[], 0));
        h.term(0);
        h.tick(3_000);
        assert_eq!(h.reap(3_010, &[(APP, killed_by(Signal::KILL))], false), ["exit"]);
        assert_eq!(h.reason(), Reason::GraceTimeout);
        assert_eq!(h.seq.summary().orphans_reaped, 0);
    }

    #[test]
    fn pre_stop_commands_run_in_order_then_the_sleep_then_the_stop_signal() {
        let cmds = commands(2);
        let mut h = Harness::new(plan(25_000, &cmds, 5_000));
        assert_eq!(h.term(0), ["emit shutdown", "start pre-stop 0"]);
        assert_eq!(h.wake_ms(), Some(23_000), "the command's bound: the stop window");
        assert_eq!(
            h.reap(400, &[(100, exited(0))], true),
            ["emit pre_stop drain0 exited 0 after 400ms", "start pre-stop 1"]
        );
        assert_eq!(
            h.reap(900, &[(101, exited(3))], true),
            ["emit pre_stop drain1 exited 3 after 500ms"]
        );
        assert_eq!(h.wake_ms(), Some(5_900), "the sleep");
        assert_eq!(h.tick(5_899), Vec::<String>::new());
        assert_eq!(
            h.tick(5_900),
            ["app SIGTERM app+group", "emit stop_signal_sent SIGTERM +5900ms"]
        );
        assert_eq!(h.wake_ms(), Some(25_000));
        h.reap(6_000, &[(APP, exited(0))], false);
        assert_eq!(h.reason(), Reason::Stopped);
        let s = h.seq.summary();
        assert_eq!(s.orphans_reaped, 0, "pre-stop commands are not orphans");
    }

    #[test]
    fn a_hung_pre_stop_command_is_killed_at_the_stop_window_and_the_rest_skipped() {
        let cmds = commands(3);
        let mut h = Harness::new(plan(8_000, &cmds, 1_000));
        assert_eq!(h.term(0), ["emit shutdown", "start pre-stop 0"]);
        assert_eq!(h.wake_ms(), Some(6_000), "grace 8 s: the window starts at 6 s");
        assert_eq!(h.tick(5_999), Vec::<String>::new());
        assert_eq!(
            h.tick(6_000),
            [
                "kill pre-stop 100",
                "emit pre_stop drain1 skipped",
                "emit pre_stop drain2 skipped",
                "app SIGTERM app+group",
                "emit stop_signal_sent SIGTERM +6000ms"
            ]
        );
        assert_eq!(
            h.reap(6_005, &[(100, killed_by(Signal::KILL))], true),
            ["emit pre_stop drain0 killed by SIGKILL after 6005ms, timed out"]
        );
        assert_eq!(h.wake_ms(), Some(8_000));
    }

    #[test]
    fn a_pre_stop_command_that_cannot_start_is_logged_and_the_next_runs() {
        let cmds = commands(2);
        let mut h = Harness::new(plan(10_000, &cmds, 0));
        h.spawn_fails = vec![0];
        assert_eq!(
            h.term(0),
            [
                "emit shutdown",
                "start pre-stop 0",
                "emit pre_stop drain0 not started",
                "start pre-stop 1"
            ]
        );
        assert_eq!(
            h.reap(100, &[(101, exited(0))], true),
            [
                "emit pre_stop drain1 exited 0 after 100ms",
                "app SIGTERM app+group",
                "emit stop_signal_sent SIGTERM +100ms"
            ]
        );
    }

    #[test]
    fn the_pre_stop_sleep_is_cut_at_the_stop_window() {
        // (grace, sleep, when the stop signal goes), in ms.
        let cases = [
            (4_000, 10_000, 3_000),
            (25_000, 5_000, 5_000),
            (25_000, 60_000, 23_000),
            (2_000, 5_000, 1_500),
            (1_000, 5_000, 750),
        ];
        for (grace, sleep, stop_at) in cases {
            let mut h = Harness::new(plan(grace, &[], sleep));
            assert_eq!(h.term(0), ["emit shutdown"], "grace {grace} sleep {sleep}");
            assert_eq!(h.wake_ms(), Some(stop_at), "grace {grace} sleep {sleep}");
            assert_eq!(h.tick(stop_at - 1), Vec::<String>::new());
            assert_eq!(
                h.tick(stop_at),
                [
                    "app SIGTERM app+group".to_string(),
                    format!("emit stop_signal_sent SIGTERM +{stop_at}ms")
                ]
            );
            assert_eq!(h.wake_ms(), Some(grace));
        }
    }

    #[test]
    fn grace_period_zero_is_sigkill_at_once_without_a_stop_signal() {
        let cmds = commands(1);
        let mut h = Harness::new(plan(0, &cmds, 1_000));
        // No stop signal to race the SIGKILL; the pre-stop steps have no
        // time and are logged as skipped.
        assert_eq!(
            h.term(500),
            [
                "emit shutdown",
                "emit pre_stop drain0 skipped",
                "app SIGKILL app+group",
                "leftovers SIGKILL",
                "emit grace_timeout +0ms [10]"
            ]
        );
        assert_eq!(h.wake_ms(), Some(2_500), "the reap bound");
        h.reap(501, &[(APP, killed_by(Signal::KILL))], false);
        assert_eq!(h.reason(), Reason::GraceTimeout);
        let s = h.seq.summary();
        assert_eq!(s.shutdown.and_then(|sd| sd.stop_sent), None);
        assert!(!s.sent_to_app.contains(TERM));
        assert_eq!(warnings(&plan(0, &[], 0)), [Warning::GraceZero]);
    }

    #[test]
    fn a_repeat_is_passed_on_and_never_restarts_the_sequence() {
        let map = [
            (TERM, sig(libc::SIGUSR1)),
            (Signal(libc::SIGINT), sig(libc::SIGHUP)),
        ];
        let mut p = plan(10_000, &[], 3_000);
        p.map = &map;
        let mut h = Harness::new(p);
        assert_eq!(h.term(0), ["emit shutdown"]);
        // The app is alive: it gets the repeat at once, through --map-signal.
        assert_eq!(
            h.term(1_000),
            ["app SIGUSR1 app+group", "emit signal SIGTERM -> SIGUSR1 (repeat)"]
        );
        let int = Input::ShutdownSignal {
            signal: Signal(libc::SIGINT),
            sender: FROM_OUTSIDE,
        };
        assert_eq!(
            h.step(1_100, int),
            ["app SIGHUP app+group", "emit signal SIGINT -> SIGHUP (repeat)"]
        );
        assert_eq!(h.wake_ms(), Some(3_000), "the sleep was not restarted");
        // The stop signal is the trigger as the map rewrites it.
        assert_eq!(
            h.tick(3_000),
            ["app SIGUSR1 app+group", "emit stop_signal_sent SIGUSR1 +3000ms"]
        );
        // The app is gone, its leftovers are not: they get the stop signal.
        assert_eq!(h.reap(3_100, &[(APP, exited(0))], true), ["leftovers SIGUSR1"]);
        assert_eq!(
            h.term(3_200),
            ["leftovers SIGUSR1", "emit signal SIGTERM -> SIGUSR1 (repeat)"]
        );
        assert_eq!(h.wake_ms(), Some(10_000), "still the first request's deadline");
    }

    #[test]
    fn forwarded_signals_reach_the_app_while_it_runs_only() {
        let mut h = Harness::new(plan(10_000, &[], 0));
        let hup = |to| Input::Signal {
            signal: sig(libc::SIGHUP),
            to,
            sender: FROM_OUTSIDE,
        };
        assert_eq!(
            h.step(0, hup(Some(sig(libc::SIGUSR1)))),
            ["app SIGUSR1 group", "emit signal SIGHUP -> SIGUSR1"]
        );
        assert_eq!(h.step(1, hup(None)), ["emit signal SIGHUP -> dropped"]);
        h.reap(2, &[(APP, exited(0))], true);
        assert_eq!(
            h.step(3, hup(Some(sig(libc::SIGHUP)))),
            ["emit signal SIGHUP -> dropped"]
        );
        // A forwarded SIGUSR1 is no stop signal: outside a shutdown, dying of it is `signaled`.
        let mut h = Harness::new(plan(10_000, &[], 0));
        h.step(0, hup(Some(sig(libc::SIGUSR1))));
        h.reap(5, &[(APP, killed_by(sig(libc::SIGUSR1)))], false);
        assert_eq!(h.reason(), Reason::Signaled);
    }

    #[test]
    fn leftovers_of_an_app_that_exits_by_itself_are_stopped_then_killed() {
        let mut h = Harness::new(plan(4_000, &[], 0));
        assert_eq!(
            h.reap(1_000, &[(APP, exited(0))], true),
            ["emit leftovers", "leftovers SIGTERM"]
        );
        assert_eq!(
            h.wake_ms(),
            Some(5_000),
            "--grace-period after they were signalled"
        );
        // One leftover stops in time; the other does not.
        assert_eq!(
            h.reap(1_500, &[(20, killed_by(TERM))], true),
            Vec::<String>::new()
        );
        assert_eq!(h.tick(4_999), Vec::<String>::new());
        assert_eq!(
            h.tick(5_000),
            ["leftovers SIGKILL", "emit grace_timeout +4000ms []"]
        );
        assert_eq!(h.reap(5_010, &[(21, killed_by(Signal::KILL))], false), ["exit"]);
        let s = h.seq.summary();
        assert_eq!(s.leftovers_killed, 2);
        assert_eq!(h.reason(), Reason::Exited);
        assert!(!s.leftovers_remain, "every leftover was reaped");
        assert!(!crate::exit_reason::expected(
            Reason::Exited,
            0,
            s.leftovers_killed,
            s.leftovers_remain
        ));
    }

    #[test]
    fn leftovers_that_stop_end_the_wait_early() {
        let mut p = plan(25_000, &[], 0);
        p.stop_signal = Some(sig(libc::SIGQUIT));
        let mut h = Harness::new(p);
        assert_eq!(
            h.reap(0, &[(APP, exited(1))], true),
            ["emit leftovers", "leftovers SIGQUIT"]
        );
        assert_eq!(
            h.reap(30, &[(20, killed_by(sig(libc::SIGQUIT)))], false),
            ["exit"]
        );
    }

    #[test]
    fn leftovers_after_a_stop_keep_the_shutdown_deadline() {
        let mut h = Harness::new(plan(10_000, &[], 0));
        h.term(0);
        // Orphans reaped while the app runs are orphans, not leftovers.
        h.reap(100, &[(30, exited(0))], true);
        assert_eq!(
            h.reap(200, &[(APP, killed_by(TERM))], true),
            ["leftovers SIGTERM"]
        );
        assert_eq!(h.wake_ms(), Some(10_000));
        assert_eq!(
            h.tick(10_000),
            ["leftovers SIGKILL", "emit grace_timeout +10000ms []"]
        );
        h.reap(10_001, &[(31, killed_by(Signal::KILL))], false);
        let s = h.seq.summary();
        assert_eq!((s.orphans_reaped, s.leftovers_killed), (1, 1));
        assert_eq!(h.reason(), Reason::Stopped);
    }

    #[test]
    fn a_sigterm_after_the_app_exited_by_itself_shortens_the_wait_but_stays_exited() {
        let mut h = Harness::new(plan(20_000, &[], 0));
        h.reap(1_000, &[(APP, exited(0))], true);
        assert_eq!(h.wake_ms(), Some(21_000));
        assert_eq!(h.term(2_000), ["emit shutdown", "leftovers SIGTERM"]);
        assert_eq!(h.wake_ms(), Some(21_000), "the earlier of the two deadlines");
        let mut h = Harness::new(plan(20_000, &[], 0));
        h.reap(1_000, &[(APP, exited(0))], true);
        h.term(2_000);
        h.reap(2_050, &[(20, killed_by(TERM))], false);
        assert_eq!(h.reason(), Reason::Exited, "the app's end was its own");
        assert!(
            h.seq.summary().shutdown.is_some(),
            "the request is still recorded"
        );
        // A shorter budget brings SIGKILL forward, counted from the request.
        let mut h = Harness::new(plan(3_000, &[], 0));
        h.reap(1_000, &[(APP, exited(0))], true);
        h.term(2_000);
        assert_eq!(h.wake_ms(), Some(4_000));
        assert_eq!(
            h.tick(4_000),
            ["leftovers SIGKILL", "emit grace_timeout +2000ms []"]
        );
    }

    #[test]
    fn a_shutdown_signal_pending_at_the_start_is_acted_on_at_once() {
        // Signals are blocked from curtain's first instruction; one sent
        // before the spawn is the first input the sequencer sees.
        let cmds = commands(1);
        let mut h = Harness::new(plan(10_000, &cmds, 0));
        assert_eq!(h.term(0), ["emit shutdown", "start pre-stop 0"]);
    }

    #[test]
    fn the_app_ending_during_the_pre_stop_steps_ends_the_sequence() {
        let cmds = commands(2);
        let mut h = Harness::new(plan(10_000, &cmds, 0));
        h.term(0);
        // The app exits while drain0 runs: drain0 is a child still running,
        // so it is treated as a leftover.
        assert_eq!(h.reap(300, &[(APP, exited(0))], true), ["leftovers SIGTERM"]);
        assert_eq!(
            h.reap(350, &[(100, killed_by(TERM))], false),
            ["emit pre_stop drain0 killed by SIGTERM after 350ms", "exit"]
        );
        assert_eq!(h.reason(), Reason::Stopped);
        let s = h.seq.summary();
        assert_eq!(s.shutdown.and_then(|sd| sd.stop_sent), None);
    }

    #[test]
    fn an_app_that_exits_alone_ends_everything_at_once() {
        let mut h = Harness::new(plan(10_000, &[], 0));
        assert_eq!(h.reap(5, &[(40, exited(0)), (APP, exited(0))], false), ["exit"]);
        assert_eq!(h.reason(), Reason::Exited);
        assert_eq!(h.seq.summary().orphans_reaped, 1);
    }

    #[test]
    fn stages_progress_and_the_last_word_only_during_a_shutdown() {
        let cmds = commands(1);
        let mut h = Harness::new(plan(25_000, &cmds, 3_000));
        h.quiet = false;
        assert_eq!(h.seq.wake_at(), None, "idle: no timer");
        // A forwarded signal sets no timer either.
        let usr1 = Input::Signal {
            signal: sig(libc::SIGUSR1),
            to: Some(sig(libc::SIGUSR1)),
            sender: FROM_OUTSIDE,
        };
        h.step(0, usr1);
        assert_eq!(h.seq.wake_at(), None);
        assert_eq!(
            h.term(1_000),
            [
                "emit shutdown",
                "emit stage pre_stop, SIGKILL in Some(25000)",
                "start pre-stop 0"
            ]
        );
        // The last word 100 ms after the request, once.
        assert_eq!(h.tick(1_100), ["last word +100ms, SIGKILL in 24900ms"]);
        assert_eq!(h.tick(1_200), Vec::<String>::new());
        assert_eq!(
            h.reap(2_000, &[(100, exited(0))], true),
            [
                "emit pre_stop drain0 exited 0 after 1000ms",
                "emit stage sleep, SIGKILL in Some(24000)"
            ]
        );
        assert_eq!(
            h.tick(5_000),
            ["app SIGTERM app+group", "emit stop_signal_sent SIGTERM +4000ms"]
        );
        // Progress every 5 s from the last stage start, with what curtain
        // waits for and the time left to SIGKILL.
        assert_eq!(h.tick(9_999), Vec::<String>::new());
        assert_eq!(
            h.tick(10_000),
            ["emit progress stopping +9000ms, SIGKILL in Some(16000)"]
        );
        assert_eq!(h.seq.wake_at().map(|t| millis(h.t0, t)), Some(15_000));
        assert_eq!(h.reap(10_500, &[(APP, exited(0))], false), ["exit"]);
        assert_eq!(h.seq.wake_at(), None, "no timer once done");
    }

    #[test]
    fn a_fast_stop_never_writes_the_last_word() {
        let mut h = Harness::new(plan(25_000, &[], 0));
        h.quiet = false;
        h.term(0);
        assert_eq!(h.reap(40, &[(APP, killed_by(TERM))], false), ["exit"]);
        assert_eq!(h.seq.wake_at(), None);
    }

    #[test]
    fn start_warnings_for_settings_that_cannot_work_as_written() {
        let cmds = commands(1);
        assert_eq!(warnings(&plan(25_000, &[], 0)), []);
        assert_eq!(warnings(&plan(25_000, &cmds, 5_000)), []);
        assert_eq!(
            warnings(&plan(4_000, &[], 10_000)),
            [
                Warning::SleepCut {
                    sleep_ms: 10_000,
                    cut_to_ms: 3_000
                },
                Warning::ShortStopWindow {
                    window_ms: 1_000,
                    grace_ms: 4_000
                }
            ]
        );
        assert_eq!(
            warnings(&plan(6_000, &cmds, 0)),
            [Warning::ShortStopWindow {
                window_ms: 1_500,
                grace_ms: 6_000
            }]
        );
        // No pre-stop step: the whole grace period is the app's.
        assert_eq!(warnings(&plan(1_000, &[], 0)), []);
    }

    #[test]
    fn reaped_events_are_queued_only_when_wanted_and_orphans_count_either_way() {
        for wanted in [true, false] {
            let mut p = plan(25_000, &[], 0);
            p.reaped_events = wanted;
            let mut h = Harness::new(p);
            let shown = h.step(
                10,
                Input::Reaped {
                    pid: 77,
                    end: exited(0),
                },
            );
            let queued = shown.iter().any(|a| a.starts_with("emit reaped"));
            assert_eq!(queued, wanted, "{shown:?}");
            h.step(10, Input::ReapPassDone { children_left: true });
            assert_eq!(h.seq.summary().orphans_reaped, 1);
        }
    }
}
