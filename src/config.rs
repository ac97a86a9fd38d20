//! Validated configuration. `Config::from_cli` turns the raw strings of `cli`
//! into typed values once; nothing past this module sees a string flag. Every
//! error names the offending value, and the variable when it came from the
//! environment; `main` prints it and exits 2 before the app is started.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Cli, Sources, ValueFrom};
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
    /// One JSON object per line, flat fields: the stable schema.
    Json,
    /// logfmt (`key=value`), for people and logfmt parsers.
    Text,
    /// Elastic Common Schema 8.x documents, curtain's fields under `curtain`.
    Ecs,
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

/// Where the grace period came from, for the `start` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraceFrom {
    Option,
    Variable,
    Default,
    /// The default for a runtime's `--init` (see `RUNTIME_INIT_GRACE`).
    RuntimeInit,
}

impl GraceFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            GraceFrom::Option => "option",
            GraceFrom::Variable => "variable",
            GraceFrom::Default => "default",
            GraceFrom::RuntimeInit => "runtime_init",
        }
    }
}

/// The default grace period when curtain runs as a container runtime's
/// `--init` (`docker run --init`, `podman run --init`): `docker stop` and
/// `podman stop` SIGKILL after 10 s by default, so curtain's own SIGKILL
/// must come first, with 2 s left to reap and write its exit event. As an
/// image's ENTRYPOINT the default stays 25 s, which fits Kubernetes' 30 s.
pub const RUNTIME_INIT_GRACE: Duration = Duration::from_secs(8);

/// Whether curtain was started as a runtime's init, by the name it was
/// started under: dockerd runs its `init-path` as `/sbin/docker-init`,
/// podman its `--init-path` as `/run/podman-init`.
pub fn runtime_init(argv0: &OsStr) -> bool {
    let name = std::path::Path::new(argv0).file_name().unwrap_or_default();
    name == "docker-init" || name == "podman-init"
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The app: program and arguments, as given.
    pub command: Vec<OsString>,
    pub grace_period: Duration,
    pub grace_period_from: GraceFrom,
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
            shorten(&self.value),
            self.origin,
            self.expected
        )
    }
}

/// The longest part of a bad value an error message repeats.
const ECHO_MAX: usize = 100;

/// `value`, cut to about 100 bytes (at a character boundary) with `...`
/// after it: an error repeats enough to find the value, never a whole
/// 100 KB argument.
pub fn shorten(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= ECHO_MAX {
        return value.into();
    }
    let mut cut = ECHO_MAX;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &value[..cut]).into()
}

/// `text` as a number, if it is one or more ASCII digits and nothing else
/// (no sign, no space: `+5` is not a number here).
pub fn parse_digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
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
    if let Some(secs) = parse_digits::<u64>(t) {
        return Some(Duration::from_secs(secs)).filter(|d| *d <= MAX_DURATION);
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = parse_digits(&rest[..digits])?;
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
    /// `runtime_init`: curtain runs as a container runtime's `--init`.
    pub fn from_cli(cli: Cli, sources: &Sources, runtime_init: bool) -> Result<Config, ConfigError> {
        let err = |id: &str, flag: &str, value: &str, expected: &'static str| ConfigError {
            origin: sources.env_var(id).unwrap_or_else(|| format!("--{flag}")),
            value: value.to_string(),
            expected,
        };
        // Every value must be UTF-8 text; the error names the option or the
        // variable, and shows the value with the bad bytes replaced.
        let text = |id: &str, flag: &str, v: &OsStr| -> Result<String, ConfigError> {
            v.to_str()
                .map(str::to_string)
                .ok_or_else(|| err(id, flag, &v.to_string_lossy(), "expected UTF-8 text"))
        };
        let texts = |id: &str, flag: &str, vs: &[OsString]| -> Result<Vec<String>, ConfigError> {
            vs.iter().map(|v| text(id, flag, v)).collect()
        };
        let duration = |id: &str, flag: &str, v: &OsStr| {
            let v = text(id, flag, v)?;
            parse_duration(&v).ok_or_else(|| err(id, flag, &v, DURATION_HELP))
        };
        let signal =
            |id: &str, flag: &str, v: &str| Signal::parse(v).ok_or_else(|| err(id, flag, v, SIGNAL_HELP));

        let mut grace_period = duration("grace_period", "grace-period", &cli.grace_period)?;
        let grace_period_from = match sources.value_from("grace_period") {
            ValueFrom::CommandLine => GraceFrom::Option,
            ValueFrom::Variable => GraceFrom::Variable,
            ValueFrom::Default if runtime_init => {
                grace_period = RUNTIME_INIT_GRACE;
                GraceFrom::RuntimeInit
            }
            ValueFrom::Default => GraceFrom::Default,
        };
        let pre_stop_sleep = duration("pre_stop_sleep", "pre-stop-sleep", &cli.pre_stop_sleep)?;
        let stop_signal = match &cli.stop_signal {
            Some(v) => {
                let v = &text("stop_signal", "stop-signal", v)?;
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
        for v in &texts("pre_stop", "pre-stop", &cli.pre_stop)? {
            let argv = shell_words::split(v).map_err(|_| {
                err(
                    "pre_stop",
                    "pre-stop",
                    v,
                    "expected a command with balanced quotes",
                )
            })?;
            if argv.first().is_none_or(String::is_empty) || argv.iter().any(|a| a.contains('\0')) {
                return Err(err("pre_stop", "pre-stop", v, "expected a non-empty command"));
            }
            pre_stop.push(PreStopCommand { argv });
        }

        let mut signal_map = Vec::new();
        for v in &texts("map_signal", "map-signal", &cli.map_signal)? {
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
        for v in &texts("remap_exit", "remap-exit", &cli.remap_exit)? {
            const HELP: &str = "expected FROM:TO with exit codes 0-255";
            let (from, to) = v
                .split_once(':')
                .ok_or_else(|| err("remap_exit", "remap-exit", v, HELP))?;
            let code = |s: &str| parse_digits::<u8>(s.trim());
            match (code(from), code(to)) {
                (Some(f), Some(t)) => exit_remap.push((f, t)),
                _ => return Err(err("remap_exit", "remap-exit", v, HELP)),
            }
        }

        let scope = match text("signal_scope", "signal-scope", &cli.signal_scope)?.as_str() {
            "child" => Scope::Child,
            "group" => Scope::Group,
            v => return Err(err("signal_scope", "signal-scope", v, "expected child or group")),
        };
        let log_format = match text("log_format", "log-format", &cli.log_format)?.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            "ecs" => LogFormat::Ecs,
            "auto" if crate::sys::stdout_is_tty() => LogFormat::Text,
            "auto" => LogFormat::Json,
            v => {
                return Err(err(
                    "log_format",
                    "log-format",
                    v,
                    "expected json, text, ecs or auto",
                ))
            }
        };
        let log_level_text = text("log_level", "log-level", &cli.log_level)?;
        let log_level = match log_level_text.to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => {
                return Err(err(
                    "log_level",
                    "log-level",
                    &log_level_text,
                    "expected error, warn, info, debug or trace",
                ))
            }
        };
        let termination_log = match cli.termination_log {
            None => TerminationLog::Default,
            Some(p) if p.is_empty() => TerminationLog::Off,
            // Relative to the directory curtain started in: curtain moves to
            // `/` after the spawn, long before it writes the message.
            Some(p) => TerminationLog::Path(std::path::absolute(&p).unwrap_or_else(|_| PathBuf::from(p))),
        };

        Ok(Config {
            command: cli.command,
            grace_period,
            grace_period_from,
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

    /// Parsers never panic (no overflow, no slicing inside a character) on
    /// any input, and accept exactly what they document. Debug builds check
    /// integer overflow, so `cargo test` would catch one.
    mod properties {
        use super::*;
        use crate::cli::Cli;
        use clap::Parser;
        use proptest::prelude::*;

        fn config(args: &[String]) -> Result<Config, ConfigError> {
            let mut argv = vec!["curtain".to_string()];
            argv.extend(args.iter().cloned());
            argv.extend(["--".to_string(), "app".to_string()]);
            let cli = Cli::try_parse_from(&argv).map_err(|e| ConfigError {
                origin: "clap".into(),
                value: e.to_string(),
                expected: "",
            })?;
            Config::from_cli(cli, &crate::cli::Sources::none(), false)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn any_text_is_a_duration_or_refused(text in "[+ -]?[0-9]{0,21}(ms|s|m|h|x)?([0-9]{0,6}(ms|s|m|h))?|\\PC{0,24}") {
                if let Some(d) = parse_duration(&text) {
                    prop_assert!(d <= MAX_DURATION);
                    prop_assert!(!text.contains('+') && !text.contains('-'), "{text:?}");
                }
            }

            #[test]
            fn well_formed_durations_add_up(parts in proptest::collection::vec((0u64..100_000, 0usize..4), 1..4)) {
                let units = [("ms", 1u64), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];
                let text: String = parts.iter().map(|(n, u)| format!("{n}{}", units[*u].0)).collect();
                let ms: u64 = parts.iter().map(|(n, u)| n * units[*u].1).sum();
                let want = Some(Duration::from_millis(ms)).filter(|d| *d <= MAX_DURATION);
                prop_assert_eq!(parse_duration(&text), want, "{}", text);
            }

            #[test]
            fn any_text_is_a_signal_or_refused(text in "(SIG|sig)?(RTMIN|RTMAX|TERM|[+-]?[0-9]{1,12})([+-][0-9]{0,12})?|\\PC{0,16}") {
                if let Some(sig) = Signal::parse(&text) {
                    prop_assert!((1..=crate::signals::rtmax()).contains(&sig.0), "{text:?} -> {sig:?}");
                    prop_assert_eq!(Signal::parse(&sig.name()), Some(sig));
                    prop_assert!(!text.starts_with('+'), "{text:?}");
                }
            }

            #[test]
            fn realtime_offsets_never_overflow(off in prop_oneof![any::<i32>(), (i32::MAX - 100)..=i32::MAX, 0..100], base in prop::sample::select(vec!["RTMIN+", "RTMAX-", "SIGRTMIN+"])) {
                let text = format!("{base}{off}");
                if let Some(sig) = Signal::parse(&text) {
                    prop_assert!((crate::signals::rtmin()..=crate::signals::rtmax()).contains(&sig.0));
                }
            }

            #[test]
            fn any_option_value_is_accepted_or_refused_without_panic(
                flag in prop::sample::select(vec![
                    "--grace-period", "--stop-signal", "--pre-stop", "--pre-stop-sleep",
                    "--map-signal", "--signal-scope", "--remap-exit", "--log-format",
                    "--log-level", "--termination-log",
                ]),
                value in "([A-Za-z0-9:+,'\" -]|\\PC){0,40}",
            ) {
                if let Err(e) = config(&[flag.to_string(), value.clone()]) {
                    // Whatever the value, the message stays short.
                    prop_assert!(e.to_string().len() < 400 + e.origin.len());
                } else if flag == "--pre-stop" {
                    let cfg = config(&[flag.to_string(), value]).expect("accepted once");
                    prop_assert!(!cfg.pre_stop[0].program().is_empty());
                }
            }

            #[test]
            fn from_to_pairs_never_panic(from in "[A-Z0-9+-]{0,14}", to in "[A-Z0-9+-]{0,14}") {
                let pair = format!("{from}:{to}");
                let _ = config(&["--map-signal".into(), pair.clone()]);
                let _ = config(&["--remap-exit".into(), pair]);
            }
        }
    }
}
