//! The event loop: one `sigtimedwait` for signals, child exits (SIGCHLD) and
//! the next deadline of the shutdown sequence. No polling, no timers: idle,
//! curtain sleeps in the kernel with no timeout at all.
//!
//! Set-up (`run`) may fail with `setup_failed`. Once the app runs, nothing may
//! end curtain but the end of the app and its leftovers: errors are logged and
//! the loop goes on, because a PID 1 that dies takes the container with it and
//! explains nothing (catatonit's rule).

use std::ffi::CString;
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::cgroup::OomWatch;
use crate::config::{Config, Scope};
use crate::exit_reason::{ChildEnd, Outcome};
use crate::reaper;
use crate::report::{self, ShutdownSummary, Summary};
use crate::shutdown::{millis, Budget, KILL_REAP_BOUND};
use crate::signals::{self, Sender, Signal, SignalAction, SignalMask, SignalSetup};
use crate::spawn;
use crate::sys::{self, SigInfo};

/// Where the supervisor is. Each stage carries the instant it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The app runs; no shutdown was requested.
    Running,
    /// Shutdown: pre-stop command `next` is the one to start, or `current`
    /// is running.
    PreStop { next: usize, current: Option<i32> },
    /// Shutdown: `--pre-stop-sleep`, until the instant given.
    Sleep { until: Instant },
    /// Shutdown: the stop signal went out; SIGKILL at the budget's deadline.
    Stopping,
    /// The app is gone; its leftovers got the stop signal and are SIGKILLed
    /// at `deadline`.
    Draining { deadline: Instant },
    /// SIGKILL went out; reap until nothing is left, at most until `until`.
    Killing { until: Instant },
    /// Nothing left to wait for.
    Done,
}

/// A shutdown in progress.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    trigger: Signal,
    sender: Sender,
    budget: Budget,
    stop_signal: Signal,
    stop_sent: Option<Instant>,
}

/// How long after the spawn curtain takes the OOM-kill baseline and logs
/// `start`, unless something happens first. Reading /proc and cgroupfs in a
/// fresh process costs 150-200 us here; done at once, it would double the
/// start-up cost of a short app (issue #5), and the app is busy starting then
/// anyway. One timeout, once: an idle curtain still never wakes up.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(1);

/// A pre-stop command started and not yet reaped.
#[derive(Debug, Clone, Copy)]
struct PreStopRun {
    pid: i32,
    index: usize,
    started: Instant,
    timed_out: bool,
}

struct Supervisor<'a> {
    cfg: &'a Config,
    setup: &'a SignalSetup,
    own_pid: i32,
    own_pgid: i32,
    pid1: bool,
    app_pid: i32,
    app_end: Option<(ChildEnd, Instant)>,
    stage: Stage,
    /// When to take the OOM baseline and log `start`, until it is done.
    settle_at: Option<Instant>,
    oom: OomWatch,
    shutdown: Option<Shutdown>,
    pre_stops: Vec<PreStopRun>,
    /// curtain's working directory at start, for the pre-stop commands.
    pre_stop_cwd: Option<CString>,
    sent_to_app: SignalMask,
    killed_at_deadline: bool,
    leftovers_signaled: bool,
    orphans_reaped: u32,
    leftovers_killed: u32,
}

/// Set up, start the app, supervise it to the end; returns the exit code.
pub fn run(cfg: &Config, setup: &SignalSetup, started: Instant) -> i32 {
    let own_pid = std::process::id() as i32;
    let pid1 = own_pid == 1;
    // Not PID 1: become a subreaper, so the app's orphans still come to us.
    if !pid1 {
        if let Err(e) = sys::set_child_subreaper() {
            let outcome = Outcome::SetupFailed(format!("PR_SET_CHILD_SUBREAPER: {e}"));
            return finish_early(cfg, started, outcome);
        }
    }
    let pre_stop_cwd = if cfg.pre_stop.is_empty() {
        None
    } else {
        std::env::current_dir()
            .ok()
            .and_then(|d| CString::new(d.into_os_string().into_encoded_bytes()).ok())
    };

    let spawned = spawn::spawn_app(&cfg.command, setup);
    // The app holds its own copies of the inherited descriptors now; curtain
    // keeps none beyond 0-2, and pins no mount with its working directory.
    if let Err(e) = sys::close_fds_from_3() {
        warn!(event = "setup", error = %e, "could not close inherited descriptors");
    }
    if let Err(e) = std::env::set_current_dir("/") {
        warn!(event = "setup", error = %e, "could not change directory to /");
    }
    let app_pid = match spawned {
        Ok(pid) => pid,
        Err(outcome) => return finish_early(cfg, started, outcome),
    };

    let mut sup = Supervisor {
        cfg,
        setup,
        own_pid,
        own_pgid: sys::getpgid(0).unwrap_or(0),
        pid1,
        app_pid,
        app_end: None,
        stage: Stage::Running,
        settle_at: Some(Instant::now() + SETTLE),
        oom: OomWatch::default(),
        shutdown: None,
        pre_stops: Vec::new(),
        pre_stop_cwd,
        sent_to_app: SignalMask::default(),
        killed_at_deadline: false,
        leftovers_signaled: false,
        orphans_reaped: 0,
        leftovers_killed: 0,
    };
    sup.event_loop();
    sup.settle(false);
    report::finish(cfg, started, &sup.oom, pid1, &sup.summary())
}

/// `[12,13]`: a list of pids for a JSON field (see `logging::RAW_JSON_FIELDS`).
fn json_list(pids: &[i32]) -> String {
    format!(
        "[{}]",
        pids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
    )
}

/// curtain could not start the app: log `start` and the `exit` event for
/// `outcome` (setup_failed or exec_failed); returns the exit code.
pub fn finish_early(cfg: &Config, started: Instant, outcome: Outcome) -> i32 {
    let own_pid = std::process::id() as i32;
    let oom = OomWatch::default();
    log_start(cfg, own_pid, own_pid == 1, &oom);
    report::finish(cfg, started, &oom, own_pid == 1, &Summary::failed(outcome))
}

fn log_start(cfg: &Config, own_pid: i32, pid1: bool, oom: &OomWatch) {
    let program = cfg
        .command
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    info!(
        event = "start",
        version = env!("CARGO_PKG_VERSION"),
        pid = own_pid,
        command = %program,
        argc = cfg.command.len() as u64,
        grace_period_ms = cfg.grace_period.as_millis() as u64,
        stop_signal = cfg.stop_signal.map(|s| s.name()),
        subreaper = !pid1,
        oom_group = oom.oom_group(),
        "curtain {} supervising {program}",
        env!("CARGO_PKG_VERSION")
    );
}

impl Supervisor<'_> {
    fn event_loop(&mut self) {
        let cfg = self.cfg;
        let ctx = signals::Context {
            own_pid: self.own_pid,
            stop_signal: cfg.stop_signal,
            map: &cfg.signal_map,
        };
        while self.stage != Stage::Done {
            let timeout = self
                .wake_at()
                .map(|t| t.saturating_duration_since(Instant::now()));
            match sys::wait_signal(&self.setup.caught, timeout) {
                Ok(Some(info)) => match signals::classify(&info, &ctx) {
                    SignalAction::Reap => self.reap(),
                    SignalAction::Shutdown => {
                        self.settle(true);
                        self.on_shutdown_signal(&info)
                    }
                    SignalAction::Forward(to) => {
                        self.settle(true);
                        self.forward(&info, Some(to))
                    }
                    SignalAction::Drop => self.forward(&info, None),
                    SignalAction::Ignore => {}
                },
                Ok(None) => {}
                Err(e) => {
                    // Cannot happen with a valid set; reap so a lost SIGCHLD
                    // cannot wedge us, and go on.
                    warn!(event = "wait_error", error = %e, "sigtimedwait failed");
                    self.reap();
                }
            }
            self.on_time(Instant::now());
        }
    }

    /// The next instant to wake up at, if any: the settle point, or what the
    /// current stage waits for.
    fn wake_at(&self) -> Option<Instant> {
        match (self.settle_at, self.stage_wake_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Take the OOM baseline (unless the app has already ended, when there
    /// is nothing left to watch) and log `start` and `spawned`, once.
    fn settle(&mut self, read_cgroup: bool) {
        if self.settle_at.take().is_none() {
            return;
        }
        if read_cgroup && self.app_running() {
            self.oom = OomWatch::start();
        }
        log_start(self.cfg, self.own_pid, self.pid1, &self.oom);
        info!(event = "spawned", child_pid = self.app_pid, "app started");
    }

    /// The instant the current stage waits for, if any.
    fn stage_wake_at(&self) -> Option<Instant> {
        let budget = self.shutdown.map(|s| s.budget);
        match self.stage {
            Stage::PreStop { current: Some(_), .. } => budget.map(|b| b.pre_stop_end),
            Stage::Sleep { until } => Some(until),
            Stage::Stopping => budget.map(|b| b.deadline),
            Stage::Draining { deadline } => Some(deadline),
            Stage::Killing { until } => Some(until),
            Stage::Running | Stage::PreStop { current: None, .. } | Stage::Done => None,
        }
    }

    fn app_running(&self) -> bool {
        self.app_end.is_none()
    }

    /// Send `sig` to the app per `--signal-scope`. The app is not reaped yet,
    /// so neither its pid nor its group id can have been reused.
    fn signal_app(&mut self, sig: Signal, scope: Scope) {
        if !self.app_running() {
            return;
        }
        self.sent_to_app.insert(sig);
        let group_result = match scope {
            Scope::Group => sys::kill(-self.app_pid, sig.0),
            Scope::Child => sys::kill(self.app_pid, sig.0),
        };
        // The app may have moved itself out of its group (setpgid/setsid).
        if group_result.is_err() && scope == Scope::Group {
            if let Err(e) = sys::kill(self.app_pid, sig.0) {
                debug!(event = "kill_error", signal = %sig, error = %e, "could not signal the app");
            }
        }
    }

    /// Pass a signal on (`to`), or drop it (`None`).
    fn forward(&mut self, info: &SigInfo, to: Option<Signal>) {
        let to = to.filter(|_| self.app_running());
        if let Some(to) = to {
            self.signal_app(to, self.cfg.scope);
        }
        debug!(
            event = "signal",
            signal = %Signal(info.signo),
            forwarded_as = to.map(|s| s.name()),
            sender_pid = info.pid,
            sender_uid = info.uid,
            "received {}",
            Signal(info.signo)
        );
    }

    fn on_shutdown_signal(&mut self, info: &SigInfo) {
        let sig = Signal(info.signo);
        let now = Instant::now();
        if self.shutdown.is_some() {
            // A repeat: pass it on, never restart the sequence.
            let to = match signals::forward_as(sig, &self.cfg.signal_map) {
                SignalAction::Forward(to) => Some(to),
                _ => None,
            };
            match to {
                Some(to) if self.app_running() => self.signal_app(to, self.cfg.scope),
                Some(to) => self.signal_leftovers(to),
                None => {}
            }
            info!(
                event = "signal",
                signal = %sig,
                forwarded_as = to.map(|s| s.name()),
                sender_pid = info.pid,
                sender_uid = info.uid,
                "{sig} repeated during shutdown, passed on"
            );
            return;
        }
        let sender = Sender {
            pid: info.pid,
            uid: info.uid,
        };
        let budget = Budget::new(now, self.cfg.grace_period);
        let stop_signal = self.cfg.stop_signal.unwrap_or(sig);
        self.shutdown = Some(Shutdown {
            trigger: sig,
            sender,
            budget,
            stop_signal,
            stop_sent: None,
        });
        // Nothing to run before the stop signal: send it before any logging,
        // so the app hears of the shutdown as fast as it would without us.
        let immediate =
            self.stage == Stage::Running && self.cfg.pre_stop.is_empty() && self.cfg.pre_stop_sleep.is_zero();
        if immediate {
            self.deliver_stop(now);
        }
        let comm = (sender.pid > 0)
            .then(|| std::fs::read_to_string(format!("/proc/{}/comm", sender.pid)).ok())
            .flatten()
            .map(|c| c.trim_end().to_string());
        info!(
            event = "shutdown",
            signal = %sig,
            sender_pid = sender.pid,
            sender_uid = sender.uid,
            sender_comm = comm.as_deref(),
            grace_period_ms = self.cfg.grace_period.as_millis() as u64,
            "shutdown requested by {sig} from {}",
            match (&comm, sender.pid) {
                (_, 0) => "outside the container (pid 0)".to_string(),
                (Some(c), pid) => format!("{c} (pid {pid})"),
                (None, pid) => format!("pid {pid}"),
            }
        );
        match self.stage {
            Stage::Stopping if immediate => self.log_stop(now),
            Stage::Running => {
                self.stage = Stage::PreStop {
                    next: 0,
                    current: None,
                };
                self.advance_pre_stop(now);
            }
            // The app is gone: its leftovers go straight to the stop signal,
            // and the budget may only shorten their deadline.
            Stage::Draining { deadline } => {
                self.signal_leftovers(stop_signal);
                self.stage = Stage::Draining {
                    deadline: deadline.min(budget.deadline),
                };
            }
            _ => {}
        }
    }

    /// Start pre-stop commands in order until one runs or none is left; then
    /// the sleep, then the stop signal.
    fn advance_pre_stop(&mut self, now: Instant) {
        let Some(budget) = self.shutdown.map(|s| s.budget) else {
            return;
        };
        while let Stage::PreStop { next, current: None } = self.stage {
            let Some(cmd) = self.cfg.pre_stop.get(next) else {
                self.begin_sleep(now, budget);
                return;
            };
            if now >= budget.pre_stop_end {
                for cmd in &self.cfg.pre_stop[next..] {
                    warn!(
                        event = "pre_stop",
                        command = cmd.program(),
                        duration_ms = 0u64,
                        timed_out = true,
                        error = "not started: the stop window was reached",
                        "pre-stop command {} skipped: no time left before the stop signal",
                        cmd.program()
                    );
                }
                self.begin_sleep(now, budget);
                return;
            }
            match spawn::spawn_pre_stop(&cmd.argv, self.setup, self.pre_stop_cwd.as_ref()) {
                Ok(pid) => {
                    self.pre_stops.push(PreStopRun {
                        pid,
                        index: next,
                        started: now,
                        timed_out: false,
                    });
                    self.stage = Stage::PreStop {
                        next,
                        current: Some(pid),
                    };
                }
                Err(e) => {
                    warn!(
                        event = "pre_stop",
                        command = cmd.program(),
                        duration_ms = 0u64,
                        timed_out = false,
                        error = %e,
                        "pre-stop command {} could not be started: {e}",
                        cmd.program()
                    );
                    self.stage = Stage::PreStop {
                        next: next + 1,
                        current: None,
                    };
                }
            }
        }
    }

    fn begin_sleep(&mut self, now: Instant, budget: Budget) {
        let until = budget.sleep_until(now, self.cfg.pre_stop_sleep);
        if until > now {
            self.stage = Stage::Sleep { until };
        } else {
            self.send_stop(now);
        }
    }

    fn send_stop(&mut self, now: Instant) {
        self.deliver_stop(now);
        self.log_stop(now);
    }

    /// Send the stop signal per `--signal-scope`; the stage is `Stopping` now.
    fn deliver_stop(&mut self, now: Instant) {
        let Some(sd) = self.shutdown.as_mut() else { return };
        sd.stop_sent = Some(now);
        let sig = sd.stop_signal;
        self.signal_app(sig, self.cfg.scope);
        self.stage = Stage::Stopping;
    }

    fn log_stop(&self, now: Instant) {
        let Some(sd) = self.shutdown else { return };
        let sig = sd.stop_signal;
        info!(
            event = "stop_signal_sent",
            signal = %sig,
            scope = self.cfg.scope.as_str(),
            elapsed_ms = millis(sd.budget.started, now),
            "sent {sig} to the app ({})",
            self.cfg.scope.as_str()
        );
    }

    /// Deadlines: whatever the current stage waits for has come.
    fn on_time(&mut self, now: Instant) {
        if self.settle_at.is_some_and(|at| now >= at) {
            self.settle(true);
        }
        let Some(at) = self.stage_wake_at() else { return };
        if now < at {
            return;
        }
        match self.stage {
            Stage::PreStop {
                next,
                current: Some(pid),
            } => {
                // The stop window is reached: kill the command and its group.
                let _ = sys::kill(-pid, libc::SIGKILL);
                let _ = sys::kill(pid, libc::SIGKILL);
                if let Some(run) = self.pre_stops.iter_mut().find(|r| r.pid == pid) {
                    run.timed_out = true;
                }
                self.stage = Stage::PreStop {
                    next: next + 1,
                    current: None,
                };
                self.advance_pre_stop(now);
            }
            Stage::Sleep { .. } => self.send_stop(now),
            Stage::Stopping | Stage::Draining { .. } => self.escalate(now),
            Stage::Killing { .. } => {
                let left = reaper::own_children().unwrap_or_default();
                warn!(
                    event = "kill_timeout",
                    left = json_list(&left),
                    "{} process(es) still not reaped {}s after SIGKILL; exiting anyway",
                    left.len(),
                    KILL_REAP_BOUND.as_secs()
                );
                self.stage = Stage::Done;
            }
            Stage::Running | Stage::PreStop { current: None, .. } | Stage::Done => {}
        }
    }

    /// The grace period ran out: SIGKILL the app's group, and every process
    /// left (as PID 1) or curtain's remaining children (as a subreaper).
    fn escalate(&mut self, now: Instant) {
        let mut killed = reaper::own_children().unwrap_or_default();
        let started = match self.stage {
            Stage::Draining { .. } if self.shutdown.is_none() => self.app_end.map_or(now, |(_, at)| at),
            _ => self.shutdown.map_or(now, |s| s.budget.started),
        };
        if self.app_running() {
            self.killed_at_deadline = true;
            self.signal_app(Signal::KILL, Scope::Group);
            if !killed.contains(&self.app_pid) {
                killed.insert(0, self.app_pid);
            }
        }
        self.signal_leftovers(Signal::KILL);
        let pids = json_list(&killed);
        warn!(
            event = "grace_timeout",
            elapsed_ms = millis(started, now),
            killed_pids = pids,
            "grace period of {}ms ran out: sent SIGKILL",
            self.cfg.grace_period.as_millis()
        );
        self.stage = Stage::Killing {
            until: now + KILL_REAP_BOUND,
        };
    }

    /// Signal every process left besides the app: as PID 1 the whole
    /// namespace (`kill(-1)`, which spares curtain); otherwise only curtain's
    /// own unreaped children and their groups (never `kill(-1)`: under
    /// `--pid=host` that would reach the whole host).
    fn signal_leftovers(&mut self, sig: Signal) {
        if self.pid1 {
            let _ = sys::kill(-1, sig.0);
            return;
        }
        for pid in reaper::own_children().unwrap_or_default() {
            let _ = sys::kill(pid, sig.0);
            if let Ok(pgid) = sys::getpgid(pid) {
                if pgid > 1 && pgid != self.own_pgid {
                    let _ = sys::kill(-pgid, sig.0);
                }
            }
        }
    }

    /// One reaping pass, then whatever the ends it found change.
    fn reap(&mut self) {
        let now = Instant::now();
        let app_was_running = self.app_running();
        let children_left = reaper::reap_all(|pid, end| self.on_reaped(pid, end, now));
        if app_was_running && !self.app_running() {
            self.settle(false);
            self.on_app_ended(now, children_left);
        } else if !children_left && matches!(self.stage, Stage::Draining { .. } | Stage::Killing { .. }) {
            self.stage = Stage::Done;
        } else if matches!(self.stage, Stage::Killing { .. }) {
            // Orphans of killed processes keep coming to us: kill them too.
            self.signal_leftovers(Signal::KILL);
        }
        self.advance_pre_stop(now);
    }

    fn on_reaped(&mut self, pid: i32, end: ChildEnd, now: Instant) {
        debug!(event = "reaped", pid, status = %reaper::describe(end), "reaped pid {pid}");
        if pid == self.app_pid && self.app_end.is_none() {
            self.app_end = Some((end, now));
        } else if let Some(i) = self.pre_stops.iter().position(|r| r.pid == pid) {
            let run = self.pre_stops.swap_remove(i);
            self.log_pre_stop(run, end, now);
            if let Stage::PreStop {
                next,
                current: Some(cur),
            } = self.stage
            {
                if cur == pid {
                    self.stage = Stage::PreStop {
                        next: next + 1,
                        current: None,
                    };
                }
            }
        } else if self.leftovers_signaled {
            self.leftovers_killed += 1;
        } else {
            self.orphans_reaped += 1;
        }
    }

    fn log_pre_stop(&self, run: PreStopRun, end: ChildEnd, now: Instant) {
        let program = self.cfg.pre_stop.get(run.index).map_or("", |c| c.program());
        let exit_code = match end {
            ChildEnd::Exited(code) if !run.timed_out => Some(code),
            _ => None,
        };
        let error = match end {
            _ if run.timed_out => Some("killed: the stop window was reached".to_string()),
            ChildEnd::Exited(0) => None,
            ChildEnd::Exited(code) => Some(format!("exited {code}")),
            ChildEnd::Signaled { .. } => Some(reaper::describe(end)),
        };
        let duration_ms = millis(run.started, now);
        if error.is_some() {
            warn!(
                event = "pre_stop",
                command = program,
                exit_code,
                duration_ms,
                timed_out = run.timed_out,
                error = error.as_deref(),
                "pre-stop command {program} failed after {duration_ms}ms"
            );
        } else {
            info!(
                event = "pre_stop",
                command = program,
                exit_code,
                duration_ms,
                timed_out = false,
                "pre-stop command {program} done in {duration_ms}ms"
            );
        }
    }

    /// The app is gone. Anything still running gets the stop signal and, at
    /// the deadline, SIGKILL; curtain exits only when nothing is left.
    fn on_app_ended(&mut self, now: Instant, children_left: bool) {
        if matches!(self.stage, Stage::Killing { .. }) {
            if !children_left {
                self.stage = Stage::Done;
            }
            return;
        }
        if !children_left {
            self.stage = Stage::Done;
            return;
        }
        let (sig, deadline) = match self.shutdown {
            Some(sd) => (sd.stop_signal, sd.budget.deadline),
            None => {
                warn!(
                    event = "leftovers",
                    "the app exited but its descendants still run (a daemonizing app, or backgrounded work?); stopping them"
                );
                (
                    self.cfg.stop_signal.unwrap_or(Signal::TERM),
                    now + self.cfg.grace_period,
                )
            }
        };
        self.signal_leftovers(sig);
        self.leftovers_signaled = true;
        self.stage = Stage::Draining { deadline };
    }

    fn summary(&self) -> Summary {
        let Some((end, ended_at)) = self.app_end else {
            // Killing gave up before the app was reaped: it died of our SIGKILL.
            return Summary {
                outcome: Outcome::Ended(ChildEnd::Signaled {
                    signal: Signal::KILL,
                    core_dumped: false,
                }),
                killed_at_deadline: true,
                app_ended: None,
                ..self.base_summary()
            };
        };
        Summary {
            outcome: Outcome::Ended(end),
            app_ended: Some(ended_at),
            ..self.base_summary()
        }
    }

    fn base_summary(&self) -> Summary {
        Summary {
            outcome: Outcome::Ended(ChildEnd::Exited(0)),
            killed_at_deadline: self.killed_at_deadline,
            sent_to_app: self.sent_to_app,
            shutdown: self.shutdown.map(|sd| ShutdownSummary {
                trigger: sd.trigger,
                sender_pid: sd.sender.pid,
                started: sd.budget.started,
                stop_signal: sd.stop_signal,
                stop_sent: sd.stop_sent,
            }),
            app_ended: None,
            orphans_reaped: self.orphans_reaped,
            leftovers_killed: self.leftovers_killed,
        }
    }
}
