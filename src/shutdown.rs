//! The shutdown budget (SPEC §4), as plain arithmetic on instants.
//!
//! Budget = `--grace-period`, counted from the shutdown request. The pre-stop
//! steps (commands, then the sleep) may use it only up to the *stop window*,
//! min(2 s, a quarter of the budget), which is kept for the app to stop after
//! its stop signal, as Kubernetes keeps 2 s after a long preStop hook.
//! The supervisor drives the steps; this module only says when each ends.

use std::time::{Duration, Instant};

/// The longest stop window.
const MAX_STOP_WINDOW: Duration = Duration::from_secs(2);

/// After SIGKILL, how long curtain waits for the killed processes to be
/// reaped before it exits anyway (a process stuck in the kernel, in D state,
/// can take long to die).
pub const KILL_REAP_BOUND: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// When the shutdown was requested.
    pub started: Instant,
    /// When pre-stop steps must have ended: the stop signal goes out then.
    pub pre_stop_end: Instant,
    /// When the app is SIGKILLed if it still runs.
    pub deadline: Instant,
}

impl Budget {
    pub fn new(started: Instant, grace: Duration) -> Budget {
        let window = MAX_STOP_WINDOW.min(grace / 4);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_window_is_a_quarter_up_to_two_seconds() {
        let t0 = Instant::now();
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
    }

    #[test]
    fn sleep_is_bounded_by_the_stop_window() {
        let t0 = Instant::now();
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
}
