//! The raw command line and environment, read against the option table in
//! `args`. Values stay raw (`OsString`, not even checked for UTF-8) here;
//! `config` validates them, and every value remembers how it was given
//! (`--grace-period`, `-p`, `CURTAIN_GRACE_PERIOD`) so that an error can
//! name exactly what the user wrote.
//!
//! The rules, which `--help` and docs/behavior.md state for users:
//! - options come before COMMAND; `--` ends them; the first word that is no
//!   option is COMMAND, and everything after it belongs to the app;
//! - `--name VALUE`, `--name=VALUE`, `-p VALUE`, `-pVALUE`, and short flags
//!   in a cluster (`-vv`, `-gs`);
//! - an option on the command line wins over its variable; a single-valued
//!   option given twice is an error;
//! - `-h`, `-V` and `-l` answer at once, whatever else is wrong.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::args::{Key, Opt, ABOUT, EXAMPLES, EXIT_STATUS, LICENSE, OPTIONS, REASONS, USAGE};

/// What `--version` prints after the name, in the shape container runtimes
/// parse (tini's: `tini version 0.19.0 - git.de40ad0`), so that `docker
/// info` shows curtain's commit when curtain is the daemon's init: `curtain
/// version 0.1.0 (static) - git.1a2b3c4`.
pub const VERSION: &str = if cfg!(target_feature = "crt-static") {
    concat!(
        "version ",
        env!("CARGO_PKG_VERSION"),
        " (static) - git.",
        env!("CURTAIN_GIT_COMMIT")
    )
} else {
    concat!(
        "version ",
        env!("CARGO_PKG_VERSION"),
        " (dynamic) - git.",
        env!("CURTAIN_GIT_COMMIT")
    )
};

/// How a value was given: the option as the user spelt it, or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Option(String),
    Variable(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Option(spelling) => f.write_str(spelling),
            Origin::Variable(name) => f.write_str(name),
        }
    }
}

/// One raw value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub value: OsString,
    pub origin: Origin,
}

/// A pre-stop step as given: a command, or an HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Command,
    Http,
}

/// The command line and the variables, unvalidated. `None` and empty lists
/// mean "not given": `config` applies the defaults.
#[derive(Debug, Default, PartialEq)]
pub struct Cli {
    pub command: Vec<OsString>,
    pub grace_period: Option<Raw>,
    pub stop_signal: Option<Raw>,
    /// `--pre-stop` and `--pre-stop-http`, in the order given.
    pub pre_stop: Vec<(StepKind, Raw)>,
    pub pre_stop_sleep: Option<Raw>,
    pub map_signal: Vec<Raw>,
    pub signal_scope: Option<Raw>,
    pub remap_exit: Vec<Raw>,
    /// tini's `-e CODE`: CODE becomes 0.
    pub exit_zero: Vec<Raw>,
    pub log_format: Option<Raw>,
    pub log_level: Option<Raw>,
    /// How many `-v`.
    pub verbose: u8,
    /// tini's `-w`.
    pub warn_reap: bool,
    pub termination_log: Option<Raw>,
    pub parent_death_signal: Option<Raw>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Box<Cli>),
    Help,
    Version,
    License,
}

/// A command line curtain cannot run: the message, and a hint.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    pub tip: Option<String>,
}

/// Parse the process's arguments and `CURTAIN_*` variables. Help, version
/// and license are printed here (exit 0); a usage error exits 2.
pub fn parse() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    match parse_from(&args, &|name| std::env::var_os(name)) {
        Ok(Parsed::Run(cli)) => *cli,
        Ok(Parsed::Help) => print_and_exit(&help(crate::sys::terminal_width().unwrap_or(80))),
        Ok(Parsed::Version) => print_and_exit(&format!("curtain {VERSION}\n")),
        Ok(Parsed::License) => print_and_exit(&format!("{LICENSE}\n")),
        Err(e) => usage_error(&e),
    }
}

fn print_and_exit(text: &str) -> ! {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // Best effort: with stdout closed there is no one to tell.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    crate::sys::exit(0)
}

/// Print a usage error in curtain's one error style, and exit 2: the app is
/// never started.
pub fn usage_error(e: &UsageError) -> ! {
    let mut text = format!("curtain: error: {}\n", e.message);
    if let Some(tip) = &e.tip {
        text.push_str(&format!("\n  tip: {tip}\n"));
    }
    text.push_str(&format!("\nUsage: {USAGE}\nTry 'curtain --help' for more.\n"));
    // Best effort: stderr may be closed, and then there is no one to tell.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    crate::sys::exit(2)
}

fn error(message: String, tip: Option<String>) -> UsageError {
    UsageError { message, tip }
}

/// Parse `args` (with the program name first), reading variables through
/// `env`. `--help`, `--version` and `--license` win over any mistake in the
/// rest of the options: someone who asks for help gets it.
pub fn parse_from(args: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> Result<Parsed, UsageError> {
    parse_words(args, env).or_else(|e| asked_for_help(args).ok_or(e))
}

/// Among curtain's own options of a command line the parser refused, a
/// `--help`, `--version` or `-l` given as an option (alone or in a cluster,
/// not the value of an option before it, not inside a long option spelt
/// with one dash), if any.
fn asked_for_help(args: &[OsString]) -> Option<Parsed> {
    let mut words = args.iter().skip(1).map(|w| w.as_bytes());
    while let Some(word) = words.next() {
        if word == b"--" || !word.starts_with(b"-") {
            return None;
        }
        if let Some(long) = word.strip_prefix(b"--") {
            match OPTIONS.iter().find(|o| o.long.map(str::as_bytes) == Some(long)) {
                Some(opt) if answers(opt).is_some() => return answers(opt),
                Some(opt) if opt.value.is_some() => {
                    words.next();
                }
                _ => {}
            }
            continue;
        }
        // A cluster, read as the parser reads it: letters up to the first
        // that takes a value (the rest of the word, or the next word). What
        // the parser refuses whole is no cluster: `-log-level` is not `-l`.
        let cluster = &word[1..];
        if !cluster.is_ascii()
            || (cluster.len() >= 4 && suggest_long(&String::from_utf8_lossy(cluster)).is_some())
        {
            continue;
        }
        for (at, &c) in word.iter().enumerate().skip(1) {
            let Some(opt) = OPTIONS.iter().find(|o| o.short == Some(char::from(c))) else {
                break;
            };
            if answers(opt).is_some() {
                return answers(opt);
            }
            if opt.value.is_some() {
                if at + 1 == word.len() {
                    words.next();
                }
                break;
            }
        }
    }
    None
}

/// What `--help`, `--version` and `--license` answer; `None` for the rest.
fn answers(opt: &Opt) -> Option<Parsed> {
    match opt.key {
        Key::Help => Some(Parsed::Help),
        Key::Version => Some(Parsed::Version),
        Key::License => Some(Parsed::License),
        _ => None,
    }
}

fn parse_words(args: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> Result<Parsed, UsageError> {
    let mut cli = Cli::default();
    let mut given: Vec<(Key, String)> = Vec::new();
    let mut i = 1;
    while let Some(word) = args.get(i) {
        i += 1;
        let bytes = word.as_bytes();
        if bytes == b"--" {
            break;
        }
        if !bytes.starts_with(b"-") {
            i -= 1;
            break;
        }
        let text = word.to_string_lossy();
        if bytes.starts_with(b"--") {
            // Split at the first `=` in the bytes: the value keeps its bytes
            // as given, and the name is matched as text.
            let (name, inline) = match bytes[2..].iter().position(|&b| b == b'=') {
                Some(at) => (&bytes[2..2 + at], Some(OsStr::from_bytes(&bytes[3 + at..]))),
                None => (&bytes[2..], None),
            };
            let name = String::from_utf8_lossy(name);
            let name = name.as_ref();
            let opt = OPTIONS
                .iter()
                .find(|o| o.long == Some(name) && !name.is_empty())
                .ok_or_else(|| unknown(&text, suggest_long(name)))?;
            let spelling = format!("--{name}");
            let value = match (opt.value, inline) {
                (None, Some(_)) => return Err(error(format!("'{spelling}' takes no value"), None)),
                (None, None) => None,
                (Some(_), Some(v)) => Some(v.to_os_string()),
                (Some(_), None) => Some(next_value(args, &mut i, opt, &spelling)?),
            };
            if let Some(answer) = apply(&mut cli, &mut given, opt, spelling, value)? {
                return Ok(answer);
            }
            continue;
        }
        // Short options: `-vv`, `-gs`, `-p TERM`, `-pTERM`. A long option
        // with one dash (`-grace-period`) would read as `-g -r ace-period`:
        // it is an error that names the option meant.
        let cluster = &bytes[1..];
        if cluster.is_empty() || !cluster.is_ascii() {
            return Err(unknown(&text, None));
        }
        if let Some(long) = suggest_long(&text[1..]).filter(|_| cluster.len() >= 4) {
            return Err(unknown(&text, Some(long)));
        }
        for (at, &c) in cluster.iter().enumerate() {
            let Some(opt) = OPTIONS.iter().find(|o| o.short == Some(char::from(c))) else {
                return Err(unknown(&text, None));
            };
            let spelling = format!("-{}", char::from(c));
            let value = match opt.value {
                None => None,
                Some(_) if at + 1 < cluster.len() => {
                    Some(OsStr::from_bytes(&cluster[at + 1..]).to_os_string())
                }
                Some(_) => Some(next_value(args, &mut i, opt, &spelling)?),
            };
            let takes_value = value.is_some();
            if let Some(answer) = apply(&mut cli, &mut given, opt, spelling, value)? {
                return Ok(answer);
            }
            if takes_value {
                break;
            }
        }
    }
    cli.command = args.get(i..).unwrap_or_default().to_vec();
    if cli.command.is_empty() {
        return Err(error(
            "no COMMAND given: curtain needs the app to run".into(),
            Some("put the app after the options: curtain [OPTIONS] -- /app --its-flags".into()),
        ));
    }
    from_environment(&mut cli, &given, env);
    Ok(Parsed::Run(Box::new(cli)))
}

/// The value after an option that takes one.
fn next_value(args: &[OsString], i: &mut usize, opt: &Opt, spelling: &str) -> Result<OsString, UsageError> {
    let value = args.get(*i).ok_or_else(|| {
        error(
            format!("'{spelling}' needs a value ({})", opt.value.unwrap_or("VALUE")),
            None,
        )
    })?;
    *i += 1;
    Ok(value.clone())
}

fn unknown(word: &str, suggestion: Option<&'static str>) -> UsageError {
    // Never what follows the `=` of a long option (with two dashes or, as
    // a suggestion says, one): `--pre-stpo='curl -H token'` is a step's
    // value, which errors never repeat. Short options take no `=`.
    let long = word.starts_with("--") || suggestion.is_some();
    let word = crate::config::shorten(if long {
        word.split('=').next().unwrap_or(word)
    } else {
        word
    });
    let tip = match suggestion {
        Some(long) => format!("did you mean '--{long}'?"),
        None => format!("to pass '{word}' to the app as its COMMAND, put '--' before it"),
    };
    error(format!("unknown option '{word}'"), Some(tip))
}

/// Record one option given on the command line. Returns the answer at once
/// for `--help`, `--version` and `-l`.
fn apply(
    cli: &mut Cli,
    given: &mut Vec<(Key, String)>,
    opt: &Opt,
    spelling: String,
    value: Option<OsString>,
) -> Result<Option<Parsed>, UsageError> {
    let raw = |value: Option<OsString>, spelling: &str| Raw {
        value: value.unwrap_or_default(),
        origin: Origin::Option(spelling.to_string()),
    };
    // The setting this spelling sets: `-g` and `-c` set the scope. A
    // setting with one value may be given once.
    let slot = match opt.key {
        Key::Group | Key::SingleChild => Key::SignalScope,
        key => key,
    };
    let single = slot == Key::SignalScope || (opt.value.is_some() && !opt.repeat);
    if single {
        if let Some((_, first)) = given.iter().find(|(k, _)| *k == slot) {
            let also = if *first == spelling {
                String::new()
            } else {
                format!(" (as '{first}')")
            };
            return Err(error(format!("'{spelling}' given twice{also}"), None));
        }
    }
    given.push((slot, spelling.clone()));
    let one = Some(raw(value.clone(), &spelling));
    match opt.key {
        Key::Help => return Ok(Some(Parsed::Help)),
        Key::Version => return Ok(Some(Parsed::Version)),
        Key::License => return Ok(Some(Parsed::License)),
        Key::GracePeriod => cli.grace_period = one,
        Key::StopSignal => cli.stop_signal = one,
        Key::PreStop => cli.pre_stop.push((StepKind::Command, raw(value, &spelling))),
        Key::PreStopHttp => cli.pre_stop.push((StepKind::Http, raw(value, &spelling))),
        Key::PreStopSleep => cli.pre_stop_sleep = one,
        Key::MapSignal | Key::Rewrite => cli.map_signal.extend(comma_list(&raw(value, &spelling))),
        Key::SignalScope => cli.signal_scope = one,
        Key::Group => cli.signal_scope = Some(raw(Some("group".into()), &spelling)),
        Key::SingleChild => cli.signal_scope = Some(raw(Some("child".into()), &spelling)),
        Key::RemapExit => cli.remap_exit.extend(comma_list(&raw(value, &spelling))),
        Key::ExitZero => cli.exit_zero.push(raw(value, &spelling)),
        Key::LogFormat => cli.log_format = one,
        Key::LogLevel => cli.log_level = one,
        Key::Verbose => cli.verbose = cli.verbose.saturating_add(1),
        Key::WarnReap => cli.warn_reap = true,
        Key::TerminationLog => cli.termination_log = one,
        Key::ParentDeathSignal => cli.parent_death_signal = one,
        Key::Subreaper => {}
    }
    Ok(None)
}

/// Fill in, from its variable, every setting the command line left out.
/// The pre-stop steps come from the command line, or (when it gives none)
/// from `CURTAIN_PRE_STOP` then `CURTAIN_PRE_STOP_HTTP`, one per line.
fn from_environment(cli: &mut Cli, given: &[(Key, String)], env: &dyn Fn(&str) -> Option<OsString>) {
    let on_command_line = |keys: &[Key]| given.iter().any(|(k, _)| keys.contains(k));
    let variable = |key: Key| -> Option<Raw> {
        let name = OPTIONS.iter().find(|o| o.key == key)?.env?;
        env(name).map(|value| Raw {
            value,
            origin: Origin::Variable(name),
        })
    };
    for (key, field) in [
        (Key::GracePeriod, &mut cli.grace_period),
        (Key::StopSignal, &mut cli.stop_signal),
        (Key::PreStopSleep, &mut cli.pre_stop_sleep),
        (Key::SignalScope, &mut cli.signal_scope),
        (Key::LogFormat, &mut cli.log_format),
        (Key::LogLevel, &mut cli.log_level),
        (Key::TerminationLog, &mut cli.termination_log),
        (Key::ParentDeathSignal, &mut cli.parent_death_signal),
    ] {
        if field.is_none() {
            *field = variable(key);
        }
    }
    if !on_command_line(&[Key::MapSignal, Key::Rewrite]) {
        cli.map_signal
            .extend(variable(Key::MapSignal).iter().flat_map(comma_list));
    }
    if !on_command_line(&[Key::RemapExit, Key::ExitZero]) {
        cli.remap_exit
            .extend(variable(Key::RemapExit).iter().flat_map(comma_list));
    }
    if !on_command_line(&[Key::PreStop, Key::PreStopHttp]) {
        for (key, kind) in [
            (Key::PreStop, StepKind::Command),
            (Key::PreStopHttp, StepKind::Http),
        ] {
            cli.pre_stop
                .extend(variable(key).iter().flat_map(lines).map(|raw| (kind, raw)));
        }
    }
}

/// `a,b,c` as three values with the same origin.
fn comma_list(raw: &Raw) -> Vec<Raw> {
    split(raw, b',', false)
}

/// One value per line; blank lines (a YAML block's last newline) are skipped.
fn lines(raw: &Raw) -> Vec<Raw> {
    split(raw, b'\n', true)
}

fn split(raw: &Raw, at: u8, skip_blank: bool) -> Vec<Raw> {
    raw.value
        .as_bytes()
        .split(|&b| b == at)
        .map(|part| part.strip_suffix(b"\r").unwrap_or(part))
        .filter(|part| !skip_blank || !part.iter().all(u8::is_ascii_whitespace))
        .map(|part| Raw {
            value: OsStr::from_bytes(part).to_os_string(),
            origin: raw.origin.clone(),
        })
        .collect()
}

/// The long option `name` most likely meant: one it begins (`--grace`), or
/// one at most two edits away (`--grace-perod`, `--log_level`).
fn suggest_long(name: &str) -> Option<&'static str> {
    let name = name.split_once('=').map_or(name, |(n, _)| n).to_ascii_lowercase();
    if name.len() < 2 {
        return None;
    }
    let longs = OPTIONS.iter().filter_map(|o| o.long);
    let mut best: Option<(usize, &'static str)> = None;
    for long in longs {
        let distance = if long.starts_with(&name) {
            0
        } else {
            edit_distance(&name, long)
        };
        if distance <= 2 && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, long));
        }
    }
    best.map(|(_, long)| long)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// `--help`, wrapped to `width` columns. Variables are named, never their
/// values: a `CURTAIN_PRE_STOP` may hold a token.
pub fn help(width: usize) -> String {
    let width = width.clamp(40, 100);
    let mut out = String::new();
    wrap(&mut out, ABOUT, 0, width);
    out.push('\n');
    wrap(&mut out, &format!("Usage: {USAGE}"), 0, width);
    out.push('\n');
    wrap(
        &mut out,
        "Options (each also read from its variable; the command line wins):",
        0,
        width,
    );
    for opt in OPTIONS.iter().filter(|o| o.compat.is_none()) {
        option_help(&mut out, opt, width);
    }
    out.push('\n');
    wrap(
        &mut out,
        "The flags of tini and dumb-init, so that an image can switch binaries:",
        0,
        width,
    );
    for opt in OPTIONS.iter().filter(|o| o.compat.is_some()) {
        option_help(&mut out, opt, width);
    }
    out.push_str("\nExamples:\n");
    for (what, lines) in EXAMPLES {
        wrap(&mut out, what, 2, width);
        for line in *lines {
            out.push_str(&format!("      {line}\n"));
        }
    }
    out.push_str("\nExit status:\n");
    for (code, meaning) in EXIT_STATUS {
        let mut lines = String::new();
        wrap(&mut lines, meaning, 12, width);
        // The code in the indentation of the first line.
        out.push_str(&format!("  {code:<9}{}", lines.get(11..).unwrap_or_default()));
    }
    out.push('\n');
    wrap(&mut out, REASONS, 0, width);
    out.push('\n');
    wrap(
        &mut out,
        "Durations: 500ms, 10s, 1m30s, or seconds (25). Signals: TERM, SIGQUIT, 15, RTMIN+2. \
         The README and docs/behavior.md in curtain's repository tell the rest.",
        0,
        width,
    );
    out
}

fn option_help(out: &mut String, opt: &Opt, width: usize) {
    let mut spec = String::from("  ");
    match (opt.short, opt.long) {
        (Some(s), Some(l)) => spec.push_str(&format!("-{s}, --{l}")),
        (Some(s), None) => spec.push_str(&format!("-{s}")),
        (None, Some(l)) => spec.push_str(&format!("    --{l}")),
        (None, None) => {}
    }
    if let Some(value) = opt.value {
        spec.push(' ');
        spec.push_str(value);
    }
    out.push_str(&spec);
    out.push('\n');
    let mut text = opt.help.to_string();
    if let Some(from) = opt.compat {
        text = format!("({from}) {text}");
    }
    let mut notes = String::new();
    if let Some(env) = opt.env {
        notes.push_str(&format!("[env: {env}] "));
    }
    if let Some(default) = opt.default {
        notes.push_str(&format!("[default: {default}]"));
    }
    wrap(out, &text, 10, width);
    if !notes.is_empty() {
        wrap(out, notes.trim_end(), 10, width);
    }
}

/// Append `text`, word-wrapped to `width` columns, every line indented.
fn wrap(out: &mut String, text: &str, indent: usize, width: usize) {
    let room = width.saturating_sub(indent).max(20);
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            out.push_str(&format!("{:indent$}{line}\n", ""));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{:indent$}{line}\n", ""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn run_with(args: &[&str], env: &[(&str, &str)]) -> Result<Cli, UsageError> {
        let env: Vec<(String, OsString)> = env.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match parse_from(&os(args), &lookup)? {
            Parsed::Run(cli) => Ok(*cli),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn run(args: &[&str]) -> Result<Cli, UsageError> {
        run_with(args, &[])
    }

    fn opt(spelling: &str, value: &str) -> Option<Raw> {
        Some(Raw {
            value: value.into(),
            origin: Origin::Option(spelling.into()),
        })
    }

    fn var(name: &'static str, value: &str) -> Raw {
        Raw {
            value: value.into(),
            origin: Origin::Variable(name),
        }
    }

    #[test]
    fn options_end_at_the_command_or_at_double_dash() {
        let cli = run(&["curtain", "app", "--grace-period", "1s"]).expect("ok");
        assert_eq!(cli.command, os(&["app", "--grace-period", "1s"]));
        assert_eq!(cli.grace_period, None);
        let cli = run(&["curtain", "--grace-period=2s", "--", "--weird", "--"]).expect("ok");
        assert_eq!(cli.command, os(&["--weird", "--"]));
        assert_eq!(cli.grace_period, opt("--grace-period", "2s"));
        let cli = run(&["curtain", "--grace-period", "-1", "app"]).expect("ok");
        assert_eq!(cli.grace_period, opt("--grace-period", "-1"));
    }

    #[test]
    fn short_flags_cluster_and_take_values_attached_or_next() {
        let cli = run(&["curtain", "-vvgs", "-pTERM", "-e", "143", "-e3", "--", "app"]).expect("ok");
        assert_eq!(cli.verbose, 2);
        assert_eq!(cli.signal_scope, opt("-g", "group"));
        assert_eq!(cli.parent_death_signal, opt("-p", "TERM"));
        assert_eq!(
            cli.exit_zero,
            vec![opt("-e", "143").expect("raw"), opt("-e", "3").expect("raw")]
        );
        let cli = run(&[
            "curtain",
            "-c",
            "-w",
            "-r",
            "15:3,HUP:0",
            "--rewrite=USR1:USR2",
            "app",
        ])
        .expect("ok");
        assert_eq!(cli.signal_scope, opt("-c", "child"));
        assert!(cli.warn_reap);
        let maps: Vec<_> = cli.map_signal.iter().map(|r| r.value.clone()).collect();
        assert_eq!(maps, os(&["15:3", "HUP:0", "USR1:USR2"]));
        assert_eq!(cli.map_signal[2].origin, Origin::Option("--rewrite".into()));
    }

    #[test]
    fn help_version_and_license_answer_at_once() {
        let none = |_: &str| None;
        for (args, want) in [
            (&["curtain", "-h"][..], Parsed::Help),
            (
                &["curtain", "--grace-period", "x", "--help", "--bogus"],
                Parsed::Help,
            ),
            (&["curtain", "-V"], Parsed::Version),
            (&["curtain", "--version"], Parsed::Version),
            (&["curtain", "-sl"], Parsed::License),
            // They win over a mistake in the other options.
            (&["curtain", "--bogus", "--version"], Parsed::Version),
            (&["curtain", "-x", "-h", "--", "app"], Parsed::Help),
            (&["curtain", "-p", "TERM", "--grace", "--help"], Parsed::Help),
            (&["curtain", "-g", "-c", "-l"], Parsed::License),
            (&["curtain", "--bogus", "-vh"], Parsed::Help),
            (&["curtain", "--bogus", "-vpTERM", "-V"], Parsed::Version),
        ] {
            assert_eq!(parse_from(&os(args), &none), Ok(want), "{args:?}");
        }
    }

    #[test]
    fn mistakes_are_errors_with_a_tip() {
        let cases: &[(&[&str], &str, Option<&str>)] = &[
            (
                &["curtain", "--grace", "5s", "app"],
                "unknown option '--grace'",
                Some("'--grace-period'"),
            ),
            (
                &["curtain", "--log_level", "debug", "app"],
                "'--log_level'",
                Some("'--log-level'"),
            ),
            (
                &["curtain", "-grace-period", "5s", "app"],
                "'-grace-period'",
                Some("'--grace-period'"),
            ),
            (
                &["curtain", "--frobnicate", "app"],
                "'--frobnicate'",
                Some("put '--' before it"),
            ),
            (&["curtain", "-x", "app"], "'-x'", Some("put '--' before it")),
            (&["curtain", "-", "app"], "'-'", None),
            (&["curtain", "---x", "app"], "'---x'", None),
            (&["curtain", "--help=yes"], "takes no value", None),
            (
                &["curtain", "--pre-stpo=curl -H tok", "app"],
                "unknown option '--pre-stpo'",
                Some("'--pre-stop'"),
            ),
            (&["curtain", "--grace-period"], "needs a value (DUR)", None),
            (&["curtain", "-p"], "'-p' needs a value", None),
            (
                &["curtain", "-g", "-c", "app"],
                "'-c' given twice (as '-g')",
                None,
            ),
            (
                &["curtain", "--log-level", "a", "--log-level", "b", "app"],
                "'--log-level' given twice",
                None,
            ),
            (&["curtain"], "no COMMAND", None),
            (&["curtain", "--"], "no COMMAND", None),
            (&["curtain", "-v"], "no COMMAND", None),
            // A `--help` that is a value, the app's, or after the app's
            // name is not a request for help.
            (&["curtain", "--pre-stop", "--help"], "no COMMAND", None),
            (&["curtain", "--bogus", "--", "--help"], "'--bogus'", None),
            (&["curtain", "-x", "app", "--version"], "'-x'", None),
            (
                &["curtain", "-vp", "--help", "--bogus", "--", "x"],
                "'--bogus'",
                None,
            ),
            (&["curtain", "-ph", "--bogus", "--", "x"], "'--bogus'", None),
            // A long option with one dash is no cluster holding `-l`.
            (
                &["curtain", "-log-level", "debug", "app"],
                "'-log-level'",
                Some("'--log-level'"),
            ),
            (&["curtain", "-log-format=json", "app"], "'-log-format'", None),
            (&["curtain", "-v=x", "app"], "'-v=x'", None),
        ];
        for (args, message, tip) in cases {
            let e = run(args).expect_err("an error");
            assert!(e.message.contains(message), "{args:?}: {e:?}");
            if let Some(tip) = tip {
                assert!(
                    e.tip.as_deref().is_some_and(|t| t.contains(tip)),
                    "{args:?}: {e:?}"
                );
            }
        }
    }

    #[test]
    fn variables_fill_in_what_the_command_line_left_out() {
        let env = [
            ("CURTAIN_GRACE_PERIOD", "3s"),
            ("CURTAIN_LOG_LEVEL", "debug"),
            ("CURTAIN_MAP_SIGNAL", "HUP:USR1,WINCH:0"),
            ("CURTAIN_REMAP_EXIT", "143:0"),
            ("CURTAIN_PARENT_DEATH_SIGNAL", "TERM"),
        ];
        let cli = run_with(&["curtain", "--log-level", "warn", "-e", "3", "app"], &env).expect("ok");
        assert_eq!(cli.grace_period, Some(var("CURTAIN_GRACE_PERIOD", "3s")));
        assert_eq!(cli.log_level, opt("--log-level", "warn"));
        assert_eq!(
            cli.map_signal,
            vec![
                var("CURTAIN_MAP_SIGNAL", "HUP:USR1"),
                var("CURTAIN_MAP_SIGNAL", "WINCH:0")
            ]
        );
        // `-e` is a spelling of the exit-code rules: the variable steps aside.
        assert!(cli.remap_exit.is_empty());
        assert_eq!(
            cli.parent_death_signal,
            Some(var("CURTAIN_PARENT_DEATH_SIGNAL", "TERM"))
        );
    }

    #[test]
    fn pre_stop_steps_keep_their_order_and_variables_take_one_per_line() {
        let cli = run(&[
            "curtain",
            "--pre-stop-http",
            "http://127.0.0.1:1/a",
            "--pre-stop",
            "drain --now",
            "--pre-stop-http=POST http://127.0.0.1:1/b",
            "app",
        ])
        .expect("ok");
        let steps: Vec<_> = cli.pre_stop.iter().map(|(k, r)| (*k, r.value.clone())).collect();
        assert_eq!(
            steps,
            vec![
                (StepKind::Http, "http://127.0.0.1:1/a".into()),
                (StepKind::Command, "drain --now".into()),
                (StepKind::Http, "POST http://127.0.0.1:1/b".into()),
            ]
        );
        let env = [
            ("CURTAIN_PRE_STOP", "first --x\r\n\n  \nsecond 'a b'\n"),
            ("CURTAIN_PRE_STOP_HTTP", "http://127.0.0.1:1/c"),
        ];
        let cli = run_with(&["curtain", "app"], &env).expect("ok");
        let steps: Vec<_> = cli.pre_stop.iter().map(|(k, r)| (*k, r.value.clone())).collect();
        assert_eq!(
            steps,
            vec![
                (StepKind::Command, "first --x".into()),
                (StepKind::Command, "second 'a b'".into()),
                (StepKind::Http, "http://127.0.0.1:1/c".into()),
            ]
        );
        // Any step on the command line replaces both variables.
        let cli = run_with(&["curtain", "--pre-stop", "only", "app"], &env).expect("ok");
        assert_eq!(cli.pre_stop.len(), 1);
    }

    #[test]
    fn help_is_wrapped_and_names_every_option_and_variable() {
        for width in [40, 80, 100] {
            let text = help(width);
            for line in text.lines() {
                // One unbreakable word (an example line) may be longer.
                if line.trim().contains(' ') && !line.starts_with("      ") {
                    assert!(line.chars().count() <= width, "{width}: {line:?}");
                }
            }
            for opt in OPTIONS {
                if let Some(long) = opt.long {
                    assert!(text.contains(&format!("--{long}")), "{long}");
                }
                if let Some(env) = opt.env {
                    assert!(text.contains(env), "{env}");
                }
            }
        }
        assert!(help(80).contains("Exit status:"));
        assert!(help(80).contains("Examples:"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

            /// Any bytes as arguments: an answer or an error, never a panic,
            /// and COMMAND is always the words after the options, unchanged.
            #[test]
            fn any_command_line_is_parsed_or_refused(
                words in proptest::collection::vec(
                    prop_oneof![
                        proptest::collection::vec(any::<u8>(), 0..12),
                        prop::sample::select(vec![
                            b"--".to_vec(), b"-vvg".to_vec(), b"--grace-period=".to_vec(), b"-p".to_vec(),
                            b"--pre-stop-http".to_vec(), b"-e".to_vec(), b"--\xff=x".to_vec(), b"-".to_vec(),
                        ]),
                    ],
                    0..6,
                ),
            ) {
                let mut args = vec![OsString::from("curtain")];
                args.extend(words.iter().map(|w| OsStr::from_bytes(w).to_os_string()));
                if let Ok(Parsed::Run(cli)) = parse_from(&args, &|_| None) {
                    prop_assert!(!cli.command.is_empty());
                    prop_assert!(args.ends_with(&cli.command));
                }
            }
        }
    }

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("", "abc", 3),
            ("kitten", "sitting", 3),
            ("log_level", "log-level", 1),
            ("same", "same", 0),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }
}
