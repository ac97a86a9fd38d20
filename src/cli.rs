//! The raw command line: clap derive, every option with its `CURTAIN_*`
//! variable. Values stay raw (`OsString`, not even checked for UTF-8) here;
//! `config` validates them, because only there can an error name the
//! option or the environment variable a bad value came from.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

pub use crate::args::{
    Cli, DEFAULT_GRACE_PERIOD, DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, DEFAULT_PRE_STOP_SLEEP,
    DEFAULT_SIGNAL_SCOPE,
};

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

/// curtain's command line: the definition with its `--version` line.
pub fn command() -> clap::Command {
    Cli::command().version(VERSION)
}

/// `curtain [--] COMMAND [ARGS...]` with no `CURTAIN_*` variable set: nothing
/// for clap to parse, every option at its default. Building clap's Command is
/// about half of the work curtain does for a short app (callgrind: 150k of
/// 300k instructions), and this is the common `ENTRYPOINT ["/curtain", "--"]`.
/// Anything else (an option, `--help`, a variable) goes to clap; the unit test
/// below holds the two paths to the same result.
fn without_options(args: &[OsString], mut env_names: impl Iterator<Item = OsString>) -> Option<Cli> {
    let first = args.get(1)?;
    let command = if first == "--" {
        &args[2..]
    } else if first.as_bytes().starts_with(b"-") {
        return None;
    } else {
        &args[1..]
    };
    if command.is_empty() || env_names.any(|k| k.as_bytes().starts_with(b"CURTAIN_")) {
        return None;
    }
    Some(Cli {
        grace_period: DEFAULT_GRACE_PERIOD.into(),
        stop_signal: None,
        pre_stop: Vec::new(),
        pre_stop_sleep: DEFAULT_PRE_STOP_SLEEP.into(),
        map_signal: Vec::new(),
        signal_scope: DEFAULT_SIGNAL_SCOPE.into(),
        remap_exit: Vec::new(),
        log_format: DEFAULT_LOG_FORMAT.into(),
        log_level: DEFAULT_LOG_LEVEL.into(),
        termination_log: None,
        command: command.to_vec(),
    })
}

/// The first word before COMMAND that looks like an option but is none of
/// curtain's. clap's `trailing_var_arg` would take it as the COMMAND; a typo
/// in an option must be an error (exit 2), not an app that cannot be found.
fn unknown_option(cmd: &clap::Command, args: &[OsString]) -> Option<String> {
    let mut words = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--" || !word.starts_with('-') {
            return None;
        }
        // `-` and `---x` are no options of curtain's, nor an app's name.
        if word == "-" || word.starts_with("---") {
            return Some(word.into_owned());
        }
        let name = word.trim_start_matches('-');
        let name = name.split_once('=').map_or(name, |(n, _)| n);
        if matches!(word.as_ref(), "-h" | "--help" | "-V" | "--version") {
            return None;
        }
        let long = word.starts_with("--");
        if !long || !cmd.get_arguments().any(|a| a.get_long() == Some(name)) {
            return Some(word.into_owned());
        }
        // Every curtain option takes a value: skip it unless given with `=`.
        if !word.contains('=') {
            words.next();
        }
    }
    None
}

/// Where an option's value came from, so errors can name the variable.
pub struct Sources(Option<ArgMatches>);

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFrom {
    CommandLine,
    Variable,
    Default,
}

impl Sources {
    /// Where option `id`'s value came from.
    pub fn value_from(&self, id: &str) -> ValueFrom {
        match self.0.as_ref().and_then(|m| m.value_source(id)) {
            Some(ValueSource::CommandLine) => ValueFrom::CommandLine,
            Some(ValueSource::EnvVariable) => ValueFrom::Variable,
            _ => ValueFrom::Default,
        }
    }

    /// No clap matches: every value came from the command line or a default.
    #[cfg(test)]
    pub fn none() -> Sources {
        Sources(None)
    }

    /// The `CURTAIN_*` variable behind option `id`, if the value came from it.
    pub fn env_var(&self, id: &str) -> Option<String> {
        if self.0.as_ref()?.value_source(id) != Some(ValueSource::EnvVariable) {
            return None;
        }
        let cmd = Cli::command();
        let arg = cmd.get_arguments().find(|a| a.get_id() == id)?;
        arg.get_env().map(|v| v.to_string_lossy().into_owned())
    }
}

/// Parse the process's arguments. clap's own errors (unknown option, missing
/// COMMAND) print usage and exit 2; `--help`/`--version` exit 0.
pub fn parse() -> (Cli, Sources) {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(cli) = without_options(&args, std::env::vars_os().map(|(k, _)| k)) {
        return (cli, Sources(None));
    }
    // Built once: building clap's Command is most of curtain's start-up work.
    let cmd = command();
    if let Some(unknown) = unknown_option(&cmd, &args) {
        let msg = format!(
            "error: unexpected argument '{unknown}' found\n\n  tip: to pass '{unknown}' as the COMMAND, use '-- {unknown}'\n\n\
             Usage: curtain [OPTIONS] [--] <COMMAND>...\n\nFor more information, try '--help'.\n"
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
        crate::sys::exit(2);
    }
    let matches = cmd.get_matches_from(args);
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => (cli, Sources(Some(matches))),
        Err(e) => e.exit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_fast_path_agrees_with_clap() {
        let cases: &[&[&str]] = &[
            &["curtain", "--", "app"],
            &["curtain", "app", "--port", "8080", "--grace-period", "1s"],
            &["curtain", "--", "app", "--", "-x"],
            &["curtain", "--", "--weird-program"],
            &["curtain", "app"],
        ];
        for case in cases {
            let args = os(case);
            let fast = without_options(&args, std::iter::empty()).expect("fast path");
            // clap reads CURTAIN_* from the environment; tests set none.
            let slow = Cli::command().try_get_matches_from(&args).expect("clap");
            assert_eq!(fast, Cli::from_arg_matches(&slow).expect("clap"), "{case:?}");
        }
        let variable = || std::iter::once(OsString::from("CURTAIN_LOG_LEVEL"));
        assert_eq!(without_options(&os(&["curtain", "--", "app"]), variable()), None);
        for not_fast in [
            &["curtain"][..],
            &["curtain", "--"],
            &["curtain", "--help"],
            &["curtain", "-x", "app"],
        ] {
            assert_eq!(
                without_options(&os(not_fast), std::iter::empty()),
                None,
                "{not_fast:?}"
            );
        }
    }
}
