//! Logging: one line per event on stdout, JSON or text (docs/behavior.md, Log).
//!
//! Events are typed (`events::Event`); this module only renders them and
//! writes the line without ever blocking the event loop: a line that finds
//! a full pipe is dropped, and a closed stdout is ignored. The `exit` event is
//! written whatever the level, with a bounded wait (about 1 s) for a slow
//! collector. How a line is written depends on what stdout is (`Writer`).
//!
//! Why neither tracing-subscriber's `fmt` nor tracing itself: that writer
//! blocks on a full pipe and its error path prints with `eprintln!` (which
//! panics on a closed stderr); and once every event is a typed value, tracing's
//! untyped key-value fields and global dispatcher add size and start-up cost
//! but no checking. A level filter and two renderers are all curtain needs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::LogFormat;
use crate::events::{push_pids, Event, Level, Value};
use crate::sys;

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    // Most strings need no escape: one scan, one copy.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
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

/// Append `n` in decimal, without `core::fmt` (every event has numbers,
/// and the exit event is on the way out).
fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_padded(out, i128::from(n).unsigned_abs() as u64, 1);
}

/// Append `n` in decimal, zero-padded to at least `width` digits.
fn push_padded(out: &mut String, n: impl TryInto<u64>, width: usize) {
    let mut n: u64 = n.try_into().unwrap_or(0);
    let mut buf = [b'0'; 20];
    let mut start = buf.len();
    while n > 0 || buf.len() - start < width {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if start == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or_default());
}

/// `2026-11-26T17:05:32.123Z` (RFC 3339, UTC, milliseconds).
#[cfg(test)]
fn rfc3339(t: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339(&mut out, t);
    out
}

/// Append the timestamp without `format!`: it is on every line, and start-up
/// time counts.
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
    let mut digits = |n: i64, width: usize, sep: char| {
        push_padded(out, n, width);
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

fn push_json_value(out: &mut String, value: Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Int(n) => push_int(out, n),
        Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Value::Str(s) => push_json_str(out, &s),
        Value::Pids(pids) => push_pids(out, pids),
    }
}

/// Render one event as a JSON object: the common fields, then the event's
/// own, in their order.
pub fn render_json(event: &Event) -> String {
    // Room for the longest line, the exit event, in one allocation.
    let mut out = String::with_capacity(640);
    out.push_str("{\"timestamp\":\"");
    push_rfc3339(&mut out, SystemTime::now());
    out.push_str("\",\"level\":\"");
    out.push_str(event.level().as_str());
    out.push_str("\",\"target\":");
    push_json_str(&mut out, event.target());
    out.push_str(",\"event\":");
    push_json_str(&mut out, event.name());
    out.push_str(",\"message\":");
    push_json_str(&mut out, &event.message());
    event.fields(&mut |name, value| {
        out.push(',');
        push_json_str(&mut out, name);
        out.push(':');
        push_json_value(&mut out, value);
    });
    out.push_str("}\n");
    out
}

/// Append a logfmt value: bare when it is plain (no space, quote, `=`,
/// backslash or control character), else quoted, with `\"` and `\\` the
/// only escapes. A control character is written as its Unicode control
/// picture (a newline as U+240A, `␊`; U+2400 + the code, DEL as U+2421):
/// one event is always one line, no value can make a key of its own, and
/// parsers that know no other escape (PyPI's logfmt) read it right.
fn push_logfmt_value(out: &mut String, s: &str) {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c > ' ' && !matches!(c, '"' | '=' | '\\' | '\u{7f}'));
    if plain {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7f}' => out.push('\u{2421}'),
            c if c < ' ' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Render one event as a logfmt line: `time=... level=info event=NAME
/// msg="..." target=...`, then the event's fields (those without a value
/// left out; pid lists as `[1,2]`).
pub fn render_text(event: &Event) -> String {
    let mut out = String::with_capacity(200);
    out.push_str("time=");
    push_rfc3339(&mut out, SystemTime::now());
    out.push_str(" level=");
    out.push_str(&event.level().as_str().to_ascii_lowercase());
    out.push_str(" event=");
    out.push_str(event.name());
    out.push_str(" msg=");
    push_logfmt_value(&mut out, &event.message());
    out.push_str(" target=");
    out.push_str(event.target());
    event.fields(&mut |name, value| {
        let mut put = |text: &str| {
            out.push(' ');
            out.push_str(name);
            out.push('=');
            push_logfmt_value(&mut out, text);
        };
        match value {
            Value::Null => {}
            Value::Str(s) => put(&s),
            Value::Int(n) => put(&n.to_string()),
            Value::Bool(b) => put(if b { "true" } else { "false" }),
            Value::Pids(pids) => {
                let mut list = String::new();
                push_pids(&mut list, pids);
                put(&list);
            }
        }
    });
    out.push('\n');
    out
}

/// The ECS version the `ecs` format follows.
const ECS_VERSION: &str = "8.11.0";

/// Render one event as an Elastic Common Schema document: `@timestamp`,
/// `log.level`, `message`, `ecs.version`, `log.logger`, `event.*`,
/// `process.pid` (curtain's) and, for `exit`, `process.exit_code`; the
/// event's own fields under `curtain`, a namespace ECS does not define, so
/// an index mapped with ECS takes every line.
pub fn render_ecs(event: &Event) -> String {
    let mut out = String::with_capacity(700);
    out.push_str("{\"@timestamp\":\"");
    push_rfc3339(&mut out, SystemTime::now());
    out.push_str("\",\"log.level\":\"");
    out.push_str(&event.level().as_str().to_ascii_lowercase());
    out.push_str("\",\"message\":");
    push_json_str(&mut out, &event.message());
    out.push_str(",\"ecs.version\":\"");
    out.push_str(ECS_VERSION);
    out.push_str("\",\"log.logger\":");
    push_json_str(&mut out, event.target());
    out.push_str(",\"event.dataset\":\"curtain\",\"event.kind\":\"event\",\"event.action\":");
    push_json_str(&mut out, event.name());
    let outcome = match event {
        Event::Exit(e) if e.expected => "success",
        Event::Exit(_) => "failure",
        _ => "unknown",
    };
    let _ = write!(
        out,
        ",\"event.outcome\":\"{outcome}\",\"process.pid\":{}",
        std::process::id()
    );
    if let Event::Exit(e) = event {
        let _ = write!(out, ",\"process.exit_code\":{}", e.exit_code);
    }
    out.push_str(",\"curtain\":{");
    let mut first = true;
    event.fields(&mut |name, value| {
        if !first {
            out.push(',');
        }
        first = false;
        push_json_str(&mut out, name);
        out.push(':');
        push_json_value(&mut out, value);
    });
    out.push_str("}}\n");
    out
}

/// The format and the most verbose level written, set once at start.
static SETTINGS: OnceLock<(LogFormat, Level)> = OnceLock::new();

fn settings() -> (LogFormat, Level) {
    SETTINGS.get().copied().unwrap_or((LogFormat::Json, Level::Info))
}

/// Choose the format and level. Called once, before anything is logged.
pub fn init(format: LogFormat, max: Level) {
    let _ = SETTINGS.set((format, max));
}

/// Whether events of `level` are written.
pub fn enabled(level: Level) -> bool {
    level <= settings().1
}

pub fn render(event: &Event) -> String {
    match settings().0 {
        LogFormat::Json => render_json(event),
        LogFormat::Text => render_text(event),
        LogFormat::Ecs => render_ecs(event),
    }
}

/// Write an event if its level is enabled, never waiting: a stalled
/// collector must not stall PID 1.
pub fn emit(event: &Event) {
    if enabled(event.level()) {
        write_line(render(event).as_bytes(), None);
    }
}

/// The lines of the events one decision produced, written with one `write`.
/// Each write to a pipe wakes its reader (a container runtime), often on the
/// other CPU; at a stop signal that costs the app the CPU it needs to hear
/// of it (see README, Performance). Lines go in whole and a batch never
/// grows past PIPE_BUF, so a pipe still takes it whole and curtain's lines
/// never interleave with the app's output.
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
}

impl Batch {
    /// Add an event's line, if its level is enabled.
    pub fn add(&mut self, event: &Event) {
        if enabled(event.level()) {
            self.push(render(event).as_bytes(), &mut |b| write_out(b));
        }
    }

    /// Write what was added, never waiting (as `emit`).
    pub fn flush(&mut self) {
        self.flush_to(&mut |b| write_out(b));
    }

    /// Add `line`, handing `write` what must go out first to keep a batch
    /// within PIPE_BUF (a longer line goes out alone, in chunks).
    fn push(&mut self, line: &[u8], write: &mut dyn FnMut(&[u8])) {
        if self.buf.len() + line.len() > libc::PIPE_BUF {
            self.flush_to(write);
        }
        if line.len() > libc::PIPE_BUF {
            write(line);
        } else {
            self.buf.extend_from_slice(line);
        }
    }

    fn flush_to(&mut self, write: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() {
            write(&self.buf);
            self.buf.clear();
        }
    }
}

fn write_out(buf: &[u8]) {
    write_line(buf, None);
}

/// How long the `exit` event may wait for room in a stalled stdout.
const EXIT_WRITE_BUDGET: Duration = Duration::from_secs(1);

/// Write the `exit` event, whatever the level, waiting up to about one second
/// for a stalled stdout. `json` is its JSON rendering when the caller has
/// one already (for the termination message): the logged line is then
/// exactly what the termination message holds.
pub fn emit_exit(event: &Event, json: Option<&str>) {
    let text = match (settings().0, json) {
        (LogFormat::Json, Some(json)) => json.to_string(),
        _ => render(event),
    };
    write_line(text.as_bytes(), Some(Instant::now() + EXIT_WRITE_BUDGET));
}

/// How lines reach stdout, which curtain shares with the app (a pipe to the
/// log collector, usually). The app must keep its blocking stdout, so curtain
/// never sets O_NONBLOCK on it; and "poll for room, then write" can lose the
/// room to the app in between and block. Chosen at the first line, by what
/// stdout is:
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// stdout is closed: lines are dropped.
    Closed,
    /// A regular file or block device: `write` never waits for a reader.
    Plain,
    /// A pipe (Linux 6.4 and later), a socket: `pwritev2(RWF_NOWAIT)`, which
    /// fails with EAGAIN instead of waiting.
    NoWait,
    /// A pipe before Linux 6.4, or a terminal: a non-blocking file
    /// description of our own for the same file (`sys::reopen_nonblocking`).
    Reopened(i32),
    /// Neither could be had (no `/proc`, no descriptor left): wait for room,
    /// then a plain `write`, which can still block if another writer takes
    /// the room first. The last resort.
    Polled,
}

/// The writer, encoded for an atomic: -1 not chosen, -2 closed, -3 plain,
/// -4 no-wait, -5 polled, a descriptor >= 0 reopened.
static WRITER: AtomicI32 = AtomicI32::new(-1);

fn writer() -> Writer {
    match WRITER.load(Ordering::Relaxed) {
        -1 => {
            let w = match sys::fd_kind(1) {
                Err(_) => Writer::Closed,
                Ok(sys::FdKind::File) => Writer::Plain,
                Ok(_) => Writer::NoWait,
            };
            set_writer(w);
            w
        }
        -2 => Writer::Closed,
        -3 => Writer::Plain,
        -4 => Writer::NoWait,
        fd if fd >= 0 => Writer::Reopened(fd),
        _ => Writer::Polled,
    }
}

fn set_writer(w: Writer) {
    let code = match w {
        Writer::Closed => -2,
        Writer::Plain => -3,
        Writer::NoWait => -4,
        Writer::Polled => -5,
        Writer::Reopened(fd) => fd,
    };
    WRITER.store(code, Ordering::Relaxed);
}

/// Milliseconds left until `deadline` (0 without one, or past it).
fn ms_left(deadline: Option<Instant>) -> i32 {
    deadline.map_or(0, |t| {
        t.saturating_duration_since(Instant::now())
            .as_millis()
            .min(i32::MAX as u128) as i32
    })
}

/// Write `buf` to stdout in chunks of at most PIPE_BUF bytes (which a pipe
/// takes whole or not at all, so curtain's lines never interleave with the
/// app's output mid-chunk). A chunk that finds no room waits until
/// `deadline` (`None`: not at all) and is otherwise dropped with the rest of
/// the line. Errors (closed stdout, EPIPE) drop the line: logging never
/// stops PID 1. Returns whether everything was written.
fn write_line(mut buf: &[u8], deadline: Option<Instant>) -> bool {
    while !buf.is_empty() {
        let chunk = &buf[..buf.len().min(libc::PIPE_BUF)];
        let result = match writer() {
            Writer::Closed => return false,
            Writer::Plain => sys::write(1, chunk),
            Writer::NoWait => match sys::write_nowait(1, chunk) {
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    set_writer(match sys::reopen_nonblocking(1) {
                        Ok(fd) => Writer::Reopened(fd),
                        Err(_) => Writer::Polled,
                    });
                    continue;
                }
                other => other,
            },
            Writer::Reopened(fd) => sys::write(fd, chunk),
            Writer::Polled => {
                if !sys::wait_writable(1, ms_left(deadline)) {
                    return false;
                }
                sys::write(1, chunk)
            }
        };
        match result {
            // A write that takes nothing would loop forever: give up.
            Ok(0) => return false,
            Ok(n) => buf = &buf[n..],
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && deadline.is_some() => {
                let fd = match writer() {
                    Writer::Reopened(fd) => fd,
                    _ => 1,
                };
                if ms_left(deadline) == 0 || !sys::wait_writable(fd, ms_left(deadline)) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::tests::{field_names, samples};
    use crate::reaper::ChildEnd;

    #[test]
    fn a_batch_is_one_write_and_never_past_pipe_buf() {
        let mut writes: Vec<Vec<u8>> = Vec::new();
        let mut batch = Batch::default();
        let line = |n: usize| {
            let mut l = vec![b'x'; n - 1];
            l.push(b'\n');
            l
        };
        batch.push(&line(300), &mut |b| writes.push(b.to_vec()));
        batch.push(&line(200), &mut |b| writes.push(b.to_vec()));
        assert!(writes.is_empty(), "nothing written before the flush");
        batch.flush_to(&mut |b| writes.push(b.to_vec()));
        assert_eq!(writes.iter().map(Vec::len).collect::<Vec<_>>(), [500]);
        // A line that would take the batch past PIPE_BUF sends it first;
        // a line longer than PIPE_BUF goes out alone.
        writes.clear();
        for n in [4000, 200, 5000, 100] {
            batch.push(&line(n), &mut |b| writes.push(b.to_vec()));
        }
        batch.flush_to(&mut |b| writes.push(b.to_vec()));
        assert_eq!(
            writes.iter().map(Vec::len).collect::<Vec<_>>(),
            [4000, 200, 5000, 100]
        );
        assert!(writes.iter().all(|w| w.ends_with(b"\n")));
        batch.flush_to(&mut |_| panic!("an empty batch writes nothing"));
    }

    #[test]
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_712_732_123);
        assert_eq!(rfc3339(t), "2026-11-26T17:05:32.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    /// Every event renders as one JSON object (read back by serde_json, a
    /// parser that is not ours) with the common fields first, then exactly
    /// the event's own fields, typed.
    #[test]
    fn numbers_are_written_like_display() {
        for n in [0, 7, -7, 10, 137, -1000, 1_764_000_000_000, i64::MAX, i64::MIN] {
            let mut out = String::new();
            push_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        let mut out = String::new();
        push_padded(&mut out, 5u64, 3);
        push_padded(&mut out, 1234u64, 2);
        assert_eq!(out, "0051234");
    }

    #[test]
    fn json_lines_parse_with_every_field_typed() {
        for event in samples() {
            let line = render_json(&event);
            assert!(line.ends_with("}\n") && line.matches('\n').count() == 1, "{line}");
            let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
            let obj = v.as_object().expect("an object");
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            let mut want = vec!["timestamp", "level", "target", "event", "message"];
            want.extend(field_names(&event));
            assert_eq!(keys, want, "{line}");
            assert_eq!(v["event"], event.name());
            assert_eq!(v["level"], event.level().as_str());
        }
        let grace = samples()
            .into_iter()
            .find(|e| e.name() == "grace_timeout")
            .expect("sample");
        let v: serde_json::Value = serde_json::from_str(&render_json(&grace)).expect("json");
        assert_eq!(v["killed_pids"], serde_json::json!([2, 7]));
    }

    #[test]
    fn strings_are_escaped_in_json_and_quoted_in_text() {
        let event = Event::Shutdown {
            signal: crate::signals::Signal::TERM,
            sender: crate::signals::Sender { pid: 9, uid: 0 },
            sender_comm: Some("x\"\n\u{1}y".into()),
            grace_period_ms: 1,
        };
        let line = render_json(&event);
        assert!(line.contains(r#""sender_comm":"x\"\n\u0001y""#), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["sender_comm"], "x\"\n\u{1}y");
        let event = Event::Reaped {
            pid: 3,
            end: ChildEnd::Exited(0),
        };
        let line = render_text(&event);
        assert!(
            line.starts_with("time=") && line.matches('\n').count() == 1,
            "{line}"
        );
        assert!(
            line.ends_with(
                " level=debug event=reaped msg=\"reaped pid 3\" target=curtain::supervisor pid=3 status=\"exited 0\"\n"
            ),
            "{line}"
        );
    }

    /// A value can neither split the line nor make a key of its own.
    #[test]
    fn logfmt_values_are_quoted_and_escaped() {
        let cases = [
            ("plain", "plain"),
            ("", "\"\""),
            ("a b", "\"a b\""),
            ("x\nFAKE=1 level=error", "\"x\u{240a}FAKE=1 level=error\""),
            ("q\"uo\\te", "\"q\\\"uo\\\\te\""),
            ("bell\u{7}\t\r\u{7f}", "\"bell\u{2407}\u{2409}\u{240d}\u{2421}\""),
            ("caf\u{e9}\u{fffd}", "caf\u{e9}\u{fffd}"),
        ];
        for (value, want) in cases {
            let mut out = String::new();
            push_logfmt_value(&mut out, value);
            assert_eq!(out, want, "{value:?}");
        }
    }

    /// The ECS document: JSON, the ECS fields at the top, curtain's own
    /// fields under `curtain`, and the outcome of an exit.
    #[test]
    fn ecs_documents_keep_curtains_fields_in_their_namespace() {
        for event in samples() {
            let line = render_ecs(&event);
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            let keys: Vec<&str> = v
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                &keys[..4],
                ["@timestamp", "log.level", "message", "ecs.version"],
                "{line}"
            );
            assert_eq!(v["event.action"], event.name());
            let own: Vec<&str> = v["curtain"]
                .as_object()
                .expect("curtain")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(own, field_names(&event), "{line}");
            if let Event::Exit(e) = &event {
                assert_eq!(v["event.outcome"], "success");
                assert_eq!(v["process.exit_code"], e.exit_code);
            } else {
                assert_eq!(v["event.outcome"], "unknown");
                assert!(v.get("process.exit_code").is_none());
            }
        }
    }
}
