//! Validated configuration. `Config::from_cli` turns the raw strings of `cli`
//! into typed values once; nothing past this module sees a string flag. Every
//! error names the offending value, and the variable when it came from the
//! environment; `main` prints it and exits 2 before the app is started.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::args::{
    DEFAULT_GRACE_PERIOD, DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, DEFAULT_PRE_STOP_SLEEP, DEFAULT_SIGNAL_SCOPE,
};
use crate::cli::{Cli, Origin, Raw, StepKind};
use crate::events::Level;
use crate::http::{self, HttpRequest};
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

/// One pre-stop step: a `--pre-stop` command split into argv, or a
/// `--pre-stop-http` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreStopStep {
    Command { argv: Vec<String> },
    Http(HttpRequest),
}

impl PreStopStep {
    /// What logs show: a command's program name (arguments are never
    /// logged, they may hold secrets), or a request's method, host and
    /// path (never its query).
    pub fn label(&self) -> &str {
        match self {
            PreStopStep::Command { argv } => argv.first().map_or("", String::as_str),
            PreStopStep::Http(request) => &request.label,
        }
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
    /// `--parent-death-signal`: what curtain asks the kernel for when its
    /// parent dies.
    pub parent_death_signal: Option<Signal>,
    pub pre_stop: Vec<PreStopStep>,
    pub pre_stop_sleep: Duration,
    /// `--map-signal` rules; `Signal(0)` drops.
    pub signal_map: Vec<(Signal, Signal)>,
    pub scope: Scope,
    pub exit_remap: Vec<(u8, u8)>,
    pub log_format: LogFormat,
    pub log_level: Level,
    pub termination_log: TerminationLog,
}

/// The origin of a default value, which is never wrong.
fn unnamed() -> Raw {
    Raw {
        value: OsString::new(),
        origin: Origin::Option("a default".into()),
    }
}

/// A bad value: which option (or variable), which value, what was expected.
/// `value` is `None` for a pre-stop step: a command or a URL may carry a
/// token, and curtain never writes one out (its logs show a step's program,
/// or an HTTP step's method, host and path, never the rest).
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    pub value: Option<String>,
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(
                f,
                "invalid value '{}' for {}: {}",
                shorten(value),
                self.origin,
                self.expected
            ),
            None => write!(
                f,
                "invalid value for {} (not repeated here: a step may hold a secret): {}",
                self.origin, self.expected
            ),
        }
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
    pub fn from_cli(cli: Cli, runtime_init: bool) -> Result<Config, ConfigError> {
        let err = |raw: &Raw, value: &str, expected: &'static str| ConfigError {
            origin: raw.origin.to_string(),
            value: Some(value.to_string()),
            expected,
        };
        // A step's value is never repeated (see `ConfigError`).
        let step_err = |raw: &Raw, expected: &'static str| ConfigError {
            origin: raw.origin.to_string(),
            value: None,
            expected,
        };
        // Every value must be UTF-8 text; the error names the option or the
        // variable, and shows the value with the bad bytes replaced.
        let text = |raw: &Raw| -> Result<String, ConfigError> {
            raw.value
                .to_str()
                .map(str::to_string)
                .ok_or_else(|| err(raw, &raw.value.to_string_lossy(), "expected UTF-8 text"))
        };
        let duration = |raw: &Option<Raw>, default: &str| match raw {
            Some(raw) => {
                let v = text(raw)?;
                parse_duration(&v).ok_or_else(|| err(raw, &v, DURATION_HELP))
            }
            None => Ok(parse_duration(default).unwrap_or_default()),
        };
        // A signal curtain can catch and act on (not KILL, STOP or CHLD).
        let catchable_signal = |raw: &Option<Raw>| -> Result<Option<Signal>, ConfigError> {
            let Some(raw) = raw else { return Ok(None) };
            let v = text(raw)?;
            let sig = Signal::parse(&v).ok_or_else(|| err(raw, &v, SIGNAL_HELP))?;
            if !sig.is_catchable() || sig == Signal::CHLD {
                return Err(err(raw, &v, "SIGKILL, SIGSTOP and SIGCHLD cannot be used here"));
            }
            Ok(Some(sig))
        };

        let mut grace_period = duration(&cli.grace_period, DEFAULT_GRACE_PERIOD)?;
        let grace_period_from = match &cli.grace_period {
            Some(Raw {
                origin: Origin::Option(_),
                ..
            }) => GraceFrom::Option,
            Some(_) => GraceFrom::Variable,
            None if runtime_init => {
                grace_period = RUNTIME_INIT_GRACE;
                GraceFrom::RuntimeInit
            }
            None => GraceFrom::Default,
        };
        let pre_stop_sleep = duration(&cli.pre_stop_sleep, DEFAULT_PRE_STOP_SLEEP)?;
        let stop_signal = catchable_signal(&cli.stop_signal)?;
        let parent_death_signal = catchable_signal(&cli.parent_death_signal)?;

        let mut pre_stop = Vec::new();
        for (kind, raw) in &cli.pre_stop {
            let v = raw
                .value
                .to_str()
                .ok_or_else(|| step_err(raw, "expected UTF-8 text"))?;
            pre_stop.push(match kind {
                StepKind::Http => {
                    PreStopStep::Http(http::parse(v).ok_or_else(|| step_err(raw, http::URL_HELP))?)
                }
                StepKind::Command => {
                    let argv = shell_words::split(v)
                        .map_err(|_| step_err(raw, "expected a command with balanced quotes"))?;
                    if argv.first().is_none_or(String::is_empty) || argv.iter().any(|a| a.contains('\0')) {
                        return Err(step_err(raw, "expected a non-empty command"));
                    }
                    PreStopStep::Command { argv }
                }
            });
        }

        let mut signal_map = Vec::new();
        for raw in &cli.map_signal {
            const HELP: &str = "expected FROM:TO with signal names or numbers, TO may be 0 to drop";
            let v = text(raw)?;
            let (from, to) = v.split_once(':').ok_or_else(|| err(raw, &v, HELP))?;
            let from = Signal::parse(from)
                .filter(|s| s.is_catchable())
                .ok_or_else(|| err(raw, &v, HELP))?;
            let to = if to.trim() == "0" {
                Signal(0)
            } else {
                Signal::parse(to).ok_or_else(|| err(raw, &v, HELP))?
            };
            if to == Signal(0)
                && (from == Signal::TERM || from == Signal(libc::SIGINT) || Some(from) == stop_signal)
            {
                return Err(err(
                    raw,
                    &v,
                    "a shutdown signal cannot be dropped: curtain always stops on TERM and INT",
                ));
            }
            signal_map.push((from, to));
        }

        let mut exit_remap = Vec::new();
        for raw in &cli.remap_exit {
            const HELP: &str = "expected FROM:TO with exit codes 0-255";
            let v = text(raw)?;
            let (from, to) = v.split_once(':').ok_or_else(|| err(raw, &v, HELP))?;
            let code = |s: &str| parse_digits::<u8>(s.trim());
            match (code(from), code(to)) {
                (Some(f), Some(t)) => exit_remap.push((f, t)),
                _ => return Err(err(raw, &v, HELP)),
            }
        }
        for raw in &cli.exit_zero {
            let v = text(raw)?;
            let code = parse_digits::<u8>(&v).ok_or_else(|| err(raw, &v, "expected an exit code 0-255"))?;
            exit_remap.push((code, 0));
        }

        let choice = |raw: &Option<Raw>, default: &str| match raw {
            Some(raw) => text(raw).map(|v| (v, Some(raw.clone()))),
            None => Ok((default.to_string(), None)),
        };
        let (scope_text, raw) = choice(&cli.signal_scope, DEFAULT_SIGNAL_SCOPE)?;
        let scope = match scope_text.as_str() {
            "child" => Scope::Child,
            "group" => Scope::Group,
            v => return Err(err(&raw.unwrap_or_else(unnamed), v, "expected child or group")),
        };
        let (format_text, raw) = choice(&cli.log_format, DEFAULT_LOG_FORMAT)?;
        let log_format = match format_text.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            "ecs" => LogFormat::Ecs,
            "auto" if crate::sys::stdout_is_tty() => LogFormat::Text,
            "auto" => LogFormat::Json,
            v => {
                return Err(err(
                    &raw.unwrap_or_else(unnamed),
                    v,
                    "expected json, text, ecs or auto",
                ))
            }
        };
        let (level_text, raw) = choice(&cli.log_level, DEFAULT_LOG_LEVEL)?;
        let mut log_level = match level_text.to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => {
                return Err(err(
                    &raw.unwrap_or_else(unnamed),
                    &level_text,
                    "expected error, warn, info, debug or trace",
                ))
            }
        };
        // `-v`, `-vv` and `-w` ask for more, never for less.
        let asked = match (cli.verbose, cli.warn_reap) {
            (0, false) => Level::Error,
            (0 | 1, _) => Level::Debug,
            _ => Level::Trace,
        };
        log_level = log_level.max(asked);
        let termination_log = match cli.termination_log {
            None => TerminationLog::Default,
            Some(raw) if raw.value.is_empty() => TerminationLog::Off,
            // Relative to the directory curtain started in: curtain moves to
            // `/` after the spawn, long before it writes the message.
            Some(raw) => TerminationLog::Path(
                std::path::absolute(&raw.value).unwrap_or_else(|_| PathBuf::from(raw.value)),
            ),
        };

        Ok(Config {
            command: cli.command,
            grace_period,
            grace_period_from,
            stop_signal,
            parent_death_signal,
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
        use crate::cli::{parse_from, Parsed};
        use proptest::prelude::*;

        fn config(args: &[String]) -> Result<Config, ConfigError> {
            let mut argv = vec![OsString::from("curtain")];
            argv.extend(args.iter().map(OsString::from));
            argv.extend(["--".into(), "app".into()]);
            match parse_from(&argv, &|_| None) {
                Ok(Parsed::Run(cli)) => Config::from_cli(*cli, false),
                other => Err(ConfigError {
                    origin: "the parser".into(),
                    value: Some(format!("{other:?}")),
                    expected: "",
                }),
            }
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
                    "--log-level", "--termination-log", "--pre-stop-http",
                    "--parent-death-signal", "-e", "-r", "-p",
                ]),
                value in "([A-Za-z0-9:+,'\" -]|\\PC){0,40}",
            ) {
                if let Err(e) = config(&[flag.to_string(), value.clone()]) {
                    // Whatever the value, the message stays short.
                    prop_assert!(e.to_string().len() < 400 + e.origin.len());
                } else if flag == "--pre-stop" {
                    let cfg = config(&[flag.to_string(), value]).expect("accepted once");
                    prop_assert!(!cfg.pre_stop[0].label().is_empty());
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
