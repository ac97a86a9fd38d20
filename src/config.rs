//! Validated configuration. `Config::from_cli` turns the raw strings of `cli`
//! into typed values once; nothing past this module sees a string flag. Every
//! error names the offending value, and the variable when it came from the
//! environment; `main` prints it and exits 2 before the app is started.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Cli, Sources};
use crate::events::Level;
use crate::signals::Signal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The app's pid alone.
    Child,
    /// The app's whole process group.
    Group,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Child => "child",
            Scope::Group => "group",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminationLog {
    /// `/dev/termination-log`, when it exists at exit.
    Default,
    Off,
    Path(PathBuf),
}

/// One `--pre-stop` command, split into argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreStopCommand {
    pub argv: Vec<String>,
}

impl PreStopCommand {
    /// Program name only: arguments are never logged (they may hold secrets).
    pub fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The app: program and arguments, as given.
    pub command: Vec<OsString>,
    pub grace_period: Duration,
    pub stop_signal: Option<Signal>,
    pub pre_stop: Vec<PreStopCommand>,
    pub pre_stop_sleep: Duration,
    /// `--map-signal` rules; `Signal(0)` drops.
    pub signal_map: Vec<(Signal, Signal)>,
    pub scope: Scope,
    pub exit_remap: Vec<(u8, u8)>,
    pub log_format: LogFormat,
    pub log_level: Level,
    pub termination_log: TerminationLog,
}

/// A bad value: which option (or variable), which value, what was expected.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid value '{}' for {}: {}",
            self.value, self.origin, self.expected
        )
    }
}

const DURATION_HELP: &str = "expected a duration like 500ms, 10s, 1m30s or 25 (seconds), at most 365 days";

/// The longest duration accepted. Deadlines are instants (`now + duration`),
/// and that addition must never overflow in PID 1.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
const SIGNAL_HELP: &str = "expected a signal name (TERM, SIGQUIT, RTMIN+2) or number (1-64)";

/// Parse `500ms`, `10s`, `1m30s`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Some(Duration::from_secs(secs)).filter(|d| *d <= MAX_DURATION);
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit_len..];
    }
    Some(total).filter(|d| *d <= MAX_DURATION)
}

impl Config {
    pub fn from_cli(cli: Cli, sources: &Sources) -> Result<Config, ConfigError> {
        let err = |id: &str, flag: &str, value: &str, expected: &'static str| ConfigError {
            origin: sources.env_var(id).unwrap_or_else(|| format!("--{flag}")),
            value: value.to_string(),
            expected,
        };
        let duration =
            |id: &str, flag: &str, v: &str| parse_duration(v).ok_or_else(|| err(id, flag, v, DURATION_HELP));
        let signal =
            |id: &str, flag: &str, v: &str| Signal::parse(v).ok_or_else(|| err(id, flag, v, SIGNAL_HELP));

        let grace_period = duration("grace_period", "grace-period", &cli.grace_period)?;
        let pre_stop_sleep = duration("pre_stop_sleep", "pre-stop-sleep", &cli.pre_stop_sleep)?;
        let stop_signal = match &cli.stop_signal {
            Some(v) => {
                let sig = signal("stop_signal", "stop-signal", v)?;
                if !sig.is_catchable() || sig == Signal::CHLD {
                    return Err(err(
                        "stop_signal",
                        "stop-signal",
                        v,
                        "SIGKILL, SIGSTOP and SIGCHLD cannot be stop signals",
                    ));
                }
                Some(sig)
            }
            None => None,
        };

        let mut pre_stop = Vec::new();
        for v in &cli.pre_stop {
            let argv = shell_words::split(v).map_err(|_| {
                err(
                    "pre_stop",
                    "pre-stop",
                    v,
                    "expected a command with balanced quotes",
                )
            })?;
            if argv.is_empty() || argv.iter().any(|a| a.contains('\0')) {
                return Err(err("pre_stop", "pre-stop", v, "expected a non-empty command"));
            }
            pre_stop.push(PreStopCommand { argv });
        }

        let mut signal_map = Vec::new();
        for v in &cli.map_signal {
            const HELP: &str = "expected FROM:TO with signal names or numbers, TO may be 0 to drop";
            let (from, to) = v
                .split_once(':')
                .ok_or_else(|| err("map_signal", "map-signal", v, HELP))?;
            let from = Signal::parse(from)
                .filter(|s| s.is_catchable())
                .ok_or_else(|| err("map_signal", "map-signal", v, HELP))?;
            let to = if to.trim() == "0" {
                Signal(0)
            } else {
                Signal::parse(to).ok_or_else(|| err("map_signal", "map-signal", v, HELP))?
            };
            signal_map.push((from, to));
        }

        let mut exit_remap = Vec::new();
        for v in &cli.remap_exit {
            const HELP: &str = "expected FROM:TO with exit codes 0-255";
            let (from, to) = v
                .split_once(':')
                .ok_or_else(|| err("remap_exit", "remap-exit", v, HELP))?;
            let code = |s: &str| s.trim().parse::<u8>().ok();
            match (code(from), code(to)) {
                (Some(f), Some(t)) => exit_remap.push((f, t)),
                _ => return Err(err("remap_exit", "remap-exit", v, HELP)),
            }
        }

        let scope = match cli.signal_scope.as_str() {
            "child" => Scope::Child,
            "group" => Scope::Group,
            v => return Err(err("signal_scope", "signal-scope", v, "expected child or group")),
        };
        let log_format = match cli.log_format.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            "auto" if crate::sys::stdout_is_tty() => LogFormat::Text,
            "auto" => LogFormat::Json,
            v => return Err(err("log_format", "log-format", v, "expected json, text or auto")),
        };
        let log_level = match cli.log_level.to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => {
                return Err(err(
                    "log_level",
                    "log-level",
                    &cli.log_level,
                    "expected error, warn, info, debug or trace",
                ))
            }
        };
        let termination_log = match cli.termination_log {
            None => TerminationLog::Default,
            Some(p) if p.is_empty() => TerminationLog::Off,
            Some(p) => TerminationLog::Path(PathBuf::from(p)),
        };

        Ok(Config {
            command: cli.command,
            grace_period,
            stop_signal,
            pre_stop,
            pre_stop_sleep,
            signal_map,
            scope,
            exit_remap,
            log_format,
            log_level,
            termination_log,
        })
    }

    /// Apply `--remap-exit` (first matching rule wins).
    pub fn remap_exit(&self, code: i32) -> i32 {
        self.exit_remap
            .iter()
            .find(|(from, _)| i32::from(*from) == code)
            .map_or(code, |(_, to)| i32::from(*to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("500ms", 500),
            ("10s", 10_000),
            ("1m30s", 90_000),
            ("25", 25_000),
            ("0", 0),
            ("2h", 7_200_000),
            ("1s500ms", 1_500),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_duration(text), Some(Duration::from_millis(ms)), "{text}");
        }
        assert_eq!(parse_duration("8760h"), Some(MAX_DURATION));
        for bad in [
            "",
            "5x",
            "s",
            "1.5s",
            "-1",
            "10 s",
            "ms10",
            "1m30",
            "8761h",
            "18446744073709551615",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
