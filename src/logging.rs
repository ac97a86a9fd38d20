//! Logging: one line per event on stdout, JSON or text (SPEC §6).
//!
//! A small `tracing::Subscriber` of our own formats each event and writes it
//! with `sys::write_stdout`, which never blocks the event loop: a line that
//! finds a full pipe is dropped, and a closed stdout is ignored. The `exit`
//! event does not go through tracing: `emit_exit` writes it whatever the
//! level, with a bounded wait (about 1 s) for a slow collector.
//!
//! Why not tracing-subscriber's `fmt`: its writer blocks on a full pipe and
//! its error path prints with `eprintln!` (which panics on a closed stderr),
//! and it pulls in a span registry curtain has no use for; the subscriber
//! below is all curtain needs and keeps the static binary small (issue #5).
//!
//! Every event has a fixed field list (`schema`), so a field without a value
//! is written as `null` and the schema stays stable for log pipelines.

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogFormat;
use crate::sys;

/// The fields of each event beyond timestamp, level, target, event, message.
pub fn schema(event: &str) -> &'static [&'static str] {
    match event {
        "start" => &[
            "version",
            "pid",
            "command",
            "argc",
            "grace_period_ms",
            "stop_signal",
            "subreaper",
            "oom_group",
        ],
        "spawned" => &["child_pid"],
        "signal" => &["signal", "forwarded_as", "sender_pid", "sender_uid"],
        "shutdown" => &[
            "signal",
            "sender_pid",
            "sender_uid",
            "sender_comm",
            "grace_period_ms",
        ],
        "pre_stop" => &["command", "exit_code", "duration_ms", "timed_out", "error"],
        "stop_signal_sent" => &["signal", "scope", "elapsed_ms"],
        "grace_timeout" => &["elapsed_ms", "killed_pids"],
        "reaped" => &["pid", "status"],
        "exit" => &[
            "exit_code",
            "original_exit_code",
            "reason",
            "expected",
            "signal",
            "shutdown_requested",
            "trigger_signal",
            "trigger_sender_pid",
            "uptime_ms",
            "stop_ms",
            "pre_stop_ms",
            "orphans_reaped",
            "leftovers_killed",
        ],
        _ => &[],
    }
}

/// Fields whose string value is already JSON (a list), written unquoted.
pub const RAW_JSON_FIELDS: &[&str] = &["killed_pids", "left"];

/// A field value, typed just enough to write JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }
    pub fn num(n: impl TryInto<i64>) -> Value {
        n.try_into().map_or(Value::Null, Value::Int)
    }
    pub fn opt_num(n: Option<impl TryInto<i64>>) -> Value {
        n.map_or(Value::Null, Value::num)
    }
    pub fn opt_str(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, Value::str)
    }
    pub fn bool(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// An event ready to be written.
pub struct Line<'a> {
    pub level: Level,
    pub target: &'a str,
    pub event: &'a str,
    pub message: &'a str,
    pub fields: &'a [(&'a str, Value)],
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    // Every byte that needs escaping is ASCII, so scanning bytes is safe
    // (UTF-8 continuation bytes are all >= 0x80) and copies runs whole.
    let mut plain = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// `2026-11-26T17:05:32.123Z` (RFC 3339, UTC, milliseconds).
pub fn rfc3339(t: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339(&mut out, t);
    out
}

/// Append the timestamp without `format!`: it is on every line, and start-up
/// time counts (issue #5).
fn push_rfc3339(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut digits = |n: i64, width: u32, sep: char| {
        for i in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10_i64.pow(i) % 10) as u8));
        }
        out.push(sep);
    };
    digits(year, 4, '-');
    digits(month, 2, '-');
    digits(day, 2, 'T');
    digits(rem / 3600, 2, ':');
    digits(rem / 60 % 60, 2, ':');
    digits(rem % 60, 2, '.');
    digits(i64::from(d.subsec_millis()), 3, 'Z');
}

/// Render one event as a JSON object: the common fields, then the event's
/// schema in order (`null` where absent), then any extra fields.
pub fn render_json(line: &Line) -> String {
    // Room for the longest line, the exit event, in one allocation.
    let mut out = String::with_capacity(640);
    out.push_str("{\"timestamp\":\"");
    push_rfc3339(&mut out, SystemTime::now());
    out.push_str("\",\"level\":\"");
    out.push_str(line.level.as_str());
    out.push_str("\",\"target\":");
    push_json_str(&mut out, line.target);
    out.push_str(",\"event\":");
    push_json_str(&mut out, line.event);
    out.push_str(",\"message\":");
    push_json_str(&mut out, line.message);
    let mut put = |name: &str, value: Option<&Value>| {
        out.push(',');
        push_json_str(&mut out, name);
        out.push(':');
        match value {
            None | Some(Value::Null) => out.push_str("null"),
            Some(Value::Int(n)) => {
                let _ = write!(out, "{n}");
            }
            Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Some(Value::Str(s)) if RAW_JSON_FIELDS.contains(&name) => out.push_str(s),
            Some(Value::Str(s)) => push_json_str(&mut out, s),
        }
    };
    let schema = schema(line.event);
    for name in schema {
        put(name, line.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v));
    }
    for (name, value) in line.fields.iter().filter(|(n, _)| !schema.contains(n)) {
        put(name, Some(value));
    }
    out.push_str("}\n");
    out
}

/// Render one event as a readable line: `TIME LEVEL event: message k=v ...`.
pub fn render_text(line: &Line) -> String {
    let mut out = format!(
        "{} {:5} curtain {}: {}",
        rfc3339(SystemTime::now()),
        line.level.as_str(),
        line.event,
        line.message
    );
    for (name, value) in line.fields {
        match value {
            Value::Null => {}
            Value::Str(s) if s.contains(' ') => {
                let _ = write!(out, " {name}={s:?}");
            }
            Value::Str(s) => {
                let _ = write!(out, " {name}={s}");
            }
            Value::Int(n) => {
                let _ = write!(out, " {name}={n}");
            }
            Value::Bool(b) => {
                let _ = write!(out, " {name}={b}");
            }
        }
    }
    out.push('\n');
    out
}

/// The subscriber: a level filter and a format.
struct Logger {
    max: Level,
}

static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or(LogFormat::Json)
}

pub fn render(line: &Line) -> String {
    match format() {
        LogFormat::Json => render_json(line),
        LogFormat::Text => render_text(line),
    }
}

/// Install the subscriber. Called once, before anything is logged.
pub fn init(format: LogFormat, max: Level) {
    let _ = FORMAT.set(format);
    let _ = tracing::subscriber::set_global_default(Logger { max });
}

/// Collects an event's fields.
#[derive(Default)]
struct Fields {
    event: Option<String>,
    message: String,
    fields: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            name => self.fields.push((name, Value::Str(format!("{value:?}")))),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "event" => self.event = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            name => self.fields.push((name, Value::str(value))),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), Value::Int(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), Value::num(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), Value::bool(value)));
    }
}

impl Subscriber for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        let line = Line {
            level: *meta.level(),
            target: meta.target(),
            event: f.event.as_deref().unwrap_or("log"),
            message: &f.message,
            fields: &f.fields,
        };
        let text = render(&line);
        // Never wait: a stalled collector must not stall PID 1.
        sys::write_stdout(text.as_bytes(), None);
    }
}

/// How long the `exit` event may wait for room in a stalled stdout.
const EXIT_WRITE_BUDGET: Duration = Duration::from_secs(1);

/// The final `exit` event.
pub fn exit_line<'a>(message: &'a str, fields: &'a [(&'a str, Value)]) -> Line<'a> {
    Line {
        level: Level::INFO,
        target: "curtain::exit",
        event: "exit",
        message,
        fields,
    }
}

/// Write the `exit` event, whatever the level, waiting up to about one second
/// for a stalled stdout. `json` is its JSON rendering when the caller has
/// one already (for the termination message): the logged line is then
/// exactly what the termination message holds.
pub fn emit_exit(line: &Line, json: Option<&str>) {
    let text = match (format(), json) {
        (LogFormat::Json, Some(json)) => json.to_string(),
        _ => render(line),
    };
    sys::write_stdout(text.as_bytes(), Some(Instant::now() + EXIT_WRITE_BUDGET));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_712_732_123);
        assert_eq!(rfc3339(t), "2026-11-26T17:05:32.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn json_has_schema_fields_with_nulls() {
        let fields = [
            ("status", Value::str("exited 0")),
            ("pid", Value::num(7)),
            ("extra", Value::bool(true)),
        ];
        let line = Line {
            level: Level::DEBUG,
            target: "curtain::reaper",
            event: "reaped",
            message: "said \"hi\"\n",
            fields: &fields,
        };
        let json = render_json(&line);
        assert!(json.ends_with("}\n"));
        assert!(json.contains(
            r#""level":"DEBUG","target":"curtain::reaper","event":"reaped","message":"said \"hi\"\n""#
        ));
        assert!(
            json.contains(r#""pid":7,"status":"exited 0","extra":true}"#),
            "{json}"
        );
        let line = Line {
            event: "pre_stop",
            fields: &[("killed_pids", Value::str("[1,2]"))],
            ..line
        };
        let json = render_json(&line);
        assert!(
            json.contains(
                r#""command":null,"exit_code":null,"duration_ms":null,"timed_out":null,"error":null"#
            ),
            "{json}"
        );
        assert!(json.contains(r#""killed_pids":[1,2]"#), "{json}");
    }
}
