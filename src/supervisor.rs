//! The event loop: one `sigtimedwait` for signals, child exits (SIGCHLD) and
//! the next deadline of the shutdown sequence. No polling, no timers: idle,
//! curtain sleeps in the kernel with no timeout at all.
//!
//! The supervisor is the thin shell around `sequencer::Sequencer`: it waits,
//! turns what the kernel says into `Input`s, and carries out the `Action`s
//! the sequencer decides on (spawn, kill, write). Decisions live there.
//!
//! Set-up (`run`) may fail with `setup_failed`. Once the app runs, nothing may
//! end curtain but the end of the app and its leftovers: errors are logged and
//! the loop goes on, because a PID 1 that dies takes the container with it and
//! explains nothing (catatonit's rule).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::time::{Duration, Instant};

use crate::cgroup::OomWatch;
use crate::config::{Config, PreStopStep};
use crate::events::{Event, HttpAnswer, LastWordCause, Level, PreStopResult, Warning};
use crate::exit_reason::Outcome;
use crate::http;
use crate::logging;
use crate::reaper;
use crate::report::{self, Summary};
use crate::sequencer::{self, Action, Input, Plan, Reach, Sequencer};
use crate::signals::{self, Sender, Signal, SignalAction, SignalSetup};
use crate::spawn;
use crate::sys;

/// How long after the spawn curtain takes the OOM-kill baseline and logs
/// `start`, unless something happens first. Reading /proc and cgroupfs in a
/// fresh process costs 150-200 us here; done at once, it would double the
/// start-up cost of a short app, and the app is busy starting then anyway.
/// One timeout, once: an idle curtain still never wakes up.
const SETTLE: Duration = Duration::from_millis(1);

struct Supervisor<'a> {
    cfg: &'a Config,
    setup: &'a SignalSetup,
    own_pid: i32,
    pid1: bool,
    app_pid: i32,
    plan: Plan<'a>,
    seq: Sequencer<'a>,
    /// When to take the OOM baseline and log `start`, until it is done.
    settle_at: Option<Instant>,
    oom: OomWatch,
    /// curtain's working directory at start, for the pre-stop commands.
    pre_stop_cwd: Option<CString>,
    /// Children SIGKILLed and not yet reaped: each gets SIGKILL once. (B-tree
    /// collections here: a hash map's random keys cost a `getrandom` at
    /// start-up and hashbrown's code in the binary.)
    killed: BTreeSet<i32>,
    /// A subreaper that cannot read `/proc` cannot find its leftovers.
    leftovers_unreachable: bool,
    /// Running `--pre-stop-http` steps: pid to the pipe their answer comes by.
    http_answers: BTreeMap<i32, i32>,
    /// `--parent-death-signal` and the parent it watches (not as PID 1).
    parent_death: Option<(Signal, i32)>,
    exiting: bool,
}

/// Set up, start the app, supervise it to the end; returns the exit code.
/// `parent`: curtain's parent when it started.
pub fn run(cfg: &Config, setup: &SignalSetup, started: Instant, parent: i32) -> i32 {
    let own_pid = std::process::id() as i32;
    let pid1 = own_pid == 1;
    // Not PID 1: become a subreaper, so the app's orphans still come to us.
    if !pid1 {
        if let Err(e) = sys::set_child_subreaper() {
            let outcome = Outcome::SetupFailed(format!("PR_SET_CHILD_SUBREAPER: {e}"));
            return finish_early(cfg, started, outcome);
        }
    }
    let parent_death = match cfg.parent_death_signal {
        Some(sig) => match watch_parent(sig, own_pid, parent) {
            Ok(parent) => Some((sig, parent)),
            Err(e) => {
                let outcome = Outcome::SetupFailed(format!("PR_SET_PDEATHSIG: {e}"));
                return finish_early(cfg, started, outcome);
            }
        },
        None => None,
    };
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
        syscall_error("close_range", &e);
    }
    if let Err(e) = std::env::set_current_dir("/") {
        syscall_error("chdir", &e);
    }
    let app_pid = match spawned {
        Ok(pid) => pid,
        Err(outcome) => return finish_early(cfg, started, outcome),
    };

    let plan = Plan {
        grace: cfg.grace_period,
        stop_signal: cfg.stop_signal,
        scope: cfg.scope,
        pre_stop: &cfg.pre_stop,
        pre_stop_sleep: cfg.pre_stop_sleep,
        map: &cfg.signal_map,
        reaped_events: logging::enabled(Level::Debug),
    };
    let mut sup = Supervisor {
        cfg,
        setup,
        own_pid,
        pid1,
        app_pid,
        plan,
        seq: Sequencer::new(plan, app_pid),
        settle_at: Some(Instant::now() + SETTLE),
        oom: OomWatch::default(),
        pre_stop_cwd,
        killed: BTreeSet::new(),
        leftovers_unreachable: false,
        http_answers: BTreeMap::new(),
        parent_death,
        exiting: false,
    };
    sup.event_loop();
    sup.settle_without_baseline();
    let mut summary = sup.seq.summary();
    summary.leftovers_remain |= sup.leftovers_unreachable;
    report::finish(cfg, started, &sup.oom, pid1, &summary)
}

/// Ask for `sig` when the parent dies, then look whether it is already
/// gone: a parent that died between curtain's start and the `prctl` sends
/// nothing, so curtain sends the signal to itself (it waits, blocked, for
/// the event loop). Returns the parent's pid (0 as PID 1: the parent is
/// outside the namespace, and its death cannot be told from a signal sent
/// from there). A parent gone before curtain ran at all cannot be seen; a
/// parent that must be sure sets PR_SET_PDEATHSIG itself between fork and
/// exec (it survives the exec).
fn watch_parent(sig: Signal, own_pid: i32, parent: i32) -> std::io::Result<i32> {
    sys::set_parent_death_signal(sig.0)?;
    if parent != 0 && sys::parent_pid() != parent {
        sys::kill(own_pid, sig.0)?;
    }
    Ok(parent)
}

/// curtain could not start the app: log `start` and the `exit` event for
/// `outcome` (setup_failed or exec_failed); returns the exit code.
pub fn finish_early(cfg: &Config, started: Instant, outcome: Outcome) -> i32 {
    let own_pid = std::process::id() as i32;
    let oom = OomWatch::default();
    logging::emit(&start_event(cfg, own_pid, own_pid == 1, &oom));
    report::finish(cfg, started, &oom, own_pid == 1, &Summary::failed(outcome))
}

fn start_event<'c>(cfg: &'c Config, own_pid: i32, pid1: bool, oom: &OomWatch) -> Event<'c> {
    Event::Start {
        pid: own_pid,
        command: cfg
            .command
            .first()
            .map(|p| p.to_string_lossy())
            .unwrap_or_default(),
        argc: cfg.command.len(),
        grace_period_ms: cfg.grace_period.as_millis() as u64,
        grace_period_from: cfg.grace_period_from.as_str(),
        stop_signal: cfg.stop_signal,
        subreaper: !pid1,
        oom_group: oom.oom_group(),
    }
}

fn syscall_error(call: &'static str, e: &std::io::Error) {
    logging::emit(&Event::SyscallError {
        call,
        error: e.to_string(),
    });
}

impl Supervisor<'_> {
    /// Wait for one signal (or the next deadline), act on it, let time pass;
    /// until the sequencer says nothing is left.
    fn event_loop(&mut self) {
        let ctx = signals::Context {
            own_pid: self.own_pid,
            stop_signal: self.cfg.stop_signal,
            map: &self.cfg.signal_map,
        };
        while !self.exiting {
            let timeout = self
                .wake_at()
                .map(|t| t.saturating_duration_since(Instant::now()));
            match sys::wait_signal(&self.setup.caught, timeout) {
                Ok(Some(info)) => {
                    let signal = Signal(info.signo);
                    let sender = Sender {
                        pid: info.pid,
                        uid: info.uid,
                    };
                    if let Some((expected, parent)) = self.parent_death {
                        // Re-parented: the parent died, and this is its signal.
                        if signal == expected && parent != 0 && sys::parent_pid() != parent {
                            self.parent_death = None;
                            self.settle();
                            logging::emit(&Event::ParentDied {
                                parent_pid: parent,
                                signal,
                            });
                        }
                    }
                    match signals::classify(&info, &ctx) {
                        SignalAction::Reap => self.reap(),
                        SignalAction::Shutdown => {
                            self.settle();
                            self.feed(Input::ShutdownSignal { signal, sender });
                        }
                        SignalAction::Forward(to) => {
                            self.settle();
                            self.feed(Input::Signal {
                                signal,
                                to: Some(to),
                                sender,
                            });
                        }
                        SignalAction::Drop => self.feed(Input::Signal {
                            signal,
                            to: None,
                            sender,
                        }),
                        SignalAction::Ignore => {}
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    // Cannot happen with a valid set; reap so a lost SIGCHLD
                    // cannot wedge us, and go on.
                    syscall_error("sigtimedwait", &e);
                    self.reap();
                }
            }
            if self.settle_at.is_some_and(|at| Instant::now() >= at) {
                self.settle();
            }
            self.feed(Input::Tick);
        }
    }

    /// The next instant to wake up at, if any: the settle point, or what the
    /// sequence waits for.
    fn wake_at(&self) -> Option<Instant> {
        match (self.settle_at, self.seq.wake_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Take the OOM baseline and log `start` and `spawned`, once.
    fn settle(&mut self) {
        if self.settle_at.is_some() && !self.seq.app_ended() {
            self.oom = OomWatch::start();
        }
        self.settle_without_baseline();
    }

    /// Log `start` and `spawned`, once, without a baseline: the app has
    /// ended, and there is nothing left to watch.
    fn settle_without_baseline(&mut self) {
        if self.settle_at.take().is_none() {
            return;
        }
        let mut lines = logging::Batch::default();
        lines.add(&start_event(self.cfg, self.own_pid, self.pid1, &self.oom));
        lines.add(&Event::Spawned {
            child_pid: self.app_pid,
        });
        // Off the start-up path, 1 ms after the spawn: what cannot work as
        // configured, and the last word an OOM group kill would leave.
        for warning in sequencer::warnings(&self.plan) {
            lines.add(&Event::Warning(warning));
        }
        if !self.pid1 && reaper::own_children().is_err() {
            lines.add(&Event::Warning(Warning::NoProc));
        }
        lines.flush();
        if self.oom.oom_group() == Some(true) {
            let event = report::last_word(self.cfg, LastWordCause::OomGroup, None, Some(true));
            report::write_last_word(self.cfg, &event);
        }
    }

    /// One reaping pass: every ended child, then what their ends change.
    fn reap(&mut self) {
        let children_left = reaper::reap_all(|pid, end| {
            // Reaped: the pid may be reused from now on.
            self.killed.remove(&pid);
            self.seq.handle(Input::Reaped { pid, end }, Instant::now());
            self.run_actions();
        });
        if self.seq.app_ended() {
            self.settle_without_baseline();
        }
        self.feed(Input::ReapPassDone { children_left });
    }

    fn feed(&mut self, input: Input) {
        self.seq.handle(input, Instant::now());
        self.run_actions();
    }

    /// Carry out what the sequencer decided, in order. Consecutive events
    /// are written together, before the next action of another kind.
    fn run_actions(&mut self) {
        let mut lines = logging::Batch::default();
        while let Some(action) = self.seq.poll_action() {
            if !matches!(action, Action::Emit(_)) {
                lines.flush();
            }
            match action {
                Action::StartPreStop { index } => {
                    // The command may run before the spawn returns: its
                    // duration counts from before the spawn.
                    let started = Instant::now();
                    let result = match self.cfg.pre_stop.get(index) {
                        Some(PreStopStep::Command { argv }) => {
                            spawn::spawn_pre_stop(argv, self.setup, self.pre_stop_cwd.as_ref())
                                .map_err(|e| e.to_string())
                        }
                        Some(PreStopStep::Http(request)) => spawn::spawn_http(request)
                            .map(|(pid, answer)| {
                                self.http_answers.insert(pid, answer);
                                pid
                            })
                            .map_err(|e| e.to_string()),
                        None => Err("no such pre-stop step".into()),
                    };
                    self.seq.handle(Input::PreStopStarted { index, result }, started);
                }
                Action::KillPreStop { pid } => {
                    let _ = sys::kill(-pid, libc::SIGKILL);
                    let _ = sys::kill(pid, libc::SIGKILL);
                }
                Action::SignalApp { signal, reach } => self.signal_app(signal, reach),
                Action::SignalLeftovers { signal } => self.signal_leftovers(signal),
                Action::Emit(mut event) => {
                    self.read_http_answer(&mut event);
                    if logging::enabled(event.level()) {
                        complete(&mut event, self.app_pid);
                        lines.add(&event);
                    }
                }
                Action::WriteLastWord {
                    trigger,
                    sender,
                    elapsed_ms,
                    kill_in_ms,
                } => {
                    let request = Some((trigger, sender, elapsed_ms, kill_in_ms));
                    let event =
                        report::last_word(self.cfg, LastWordCause::Shutdown, request, self.oom.oom_group());
                    report::write_last_word(self.cfg, &event);
                }
                Action::Exit => self.exiting = true,
            }
        }
        lines.flush();
    }

    /// A reaped `--pre-stop-http` step: its answer is in its pipe (written
    /// before it exited), or there is none (killed while it waited).
    fn read_http_answer(&mut self, event: &mut Event) {
        let Event::PreStop {
            result: PreStopResult::Ended { pid, .. },
            http,
            ..
        } = event
        else {
            return;
        };
        let Some(fd) = self.http_answers.remove(pid) else {
            return;
        };
        let mut buf = [0u8; 512];
        let n = sys::read(fd, &mut buf).unwrap_or(0);
        sys::close(fd);
        *http = match http::decode_result(&buf[..n]) {
            Some(Ok(code)) => HttpAnswer::Status(code),
            Some(Err(e)) => HttpAnswer::Failed(e),
            None => HttpAnswer::NoAnswer,
        };
    }

    /// Send `sig` to the app. The sequencer asks only while the app is not
    /// reaped, so neither its pid nor its group id can have been reused.
    fn signal_app(&self, sig: Signal, reach: Reach) {
        let app = self.app_pid;
        let result = match reach {
            Reach::App => sys::kill(app, sig.0),
            // Two syscalls: the group, or the app if it left its group and
            // the group is gone. (If it left and a descendant stayed, the
            // group gets it and the app does not; `AppAndGroup` is for the
            // signals that must not miss the app.)
            Reach::Group => sys::kill(-app, sig.0).or_else(|_| sys::kill(app, sig.0)),
            // Whether the app still leads its group decides: if so, the group
            // reaches it, exactly once; if not, it gets the signal itself,
            // and what is left of its old group too.
            Reach::AppAndGroup => match sys::getpgid(app) {
                Ok(pgid) if pgid == app => sys::kill(-app, sig.0),
                _ => {
                    let result = sys::kill(app, sig.0);
                    let _ = sys::kill(-app, sig.0);
                    result
                }
            },
        };
        if let Err(e) = result {
            syscall_error("kill", &e);
        }
    }

    /// Signal every process left besides the app. As PID 1: the whole
    /// namespace (`kill(-1)`, which spares curtain), every process in it
    /// being the app's, or started into the container. Otherwise curtain's
    /// own unreaped children, each by pid (a pid cannot be reused before
    /// curtain reaps it), and never a process group: a leftover can join
    /// the group of a process that is not curtain's (a root process in the
    /// same session), and curtain must never signal what the app could not.
    /// Never `kill(-1)` then: under `--pid=host` that would reach the host.
    /// SIGKILL goes to each pid once, so repeated passes stay linear.
    fn signal_leftovers(&mut self, sig: Signal) {
        if self.pid1 {
            let _ = sys::kill(-1, sig.0);
            return;
        }
        let Ok(children) = reaper::own_children() else {
            // No /proc: curtain cannot find them (warned at start).
            self.leftovers_unreachable = true;
            return;
        };
        for pid in children {
            if pid == self.app_pid || (sig == Signal::KILL && !self.killed.insert(pid)) {
                continue;
            }
            let _ = sys::kill(pid, sig.0);
        }
    }
}

/// Fill in what only the system can tell and the sequencer cannot read: the
/// shutdown sender's command name, and which children are still there.
fn complete(event: &mut Event, app_pid: i32) {
    match event {
        Event::Shutdown {
            sender, sender_comm, ..
        } if sender.pid > 0 => {
            // Any bytes a process chose for its name (PR_SET_NAME): read
            // them as they are; the renderers escape what needs it.
            *sender_comm = std::fs::read(format!("/proc/{}/comm", sender.pid))
                .ok()
                .map(|c| String::from_utf8_lossy(c.strip_suffix(b"\n").unwrap_or(&c)).into_owned());
        }
        Event::GraceTimeout { killed_pids, .. } => {
            let children = reaper::own_children().unwrap_or_default();
            killed_pids.extend(children.into_iter().filter(|&pid| pid != app_pid));
        }
        Event::KillTimeout { left, .. } => *left = reaper::own_children().unwrap_or_default(),
        _ => {}
    }
}
