//! curtain's options as a clap definition, and nothing else: the one
//! source of `--help`, of the parser (`cli`), and of the man page and shell
//! completions, which a build tool outside the binary (tools/dist) makes
//! from this same file.

use std::ffi::OsString;

use clap::Parser;

/// A tiny PID 1 for containers: forwards signals, reaps zombies, drains before
/// stop, enforces a grace period and explains every exit in one JSON line.
pub const DEFAULT_GRACE_PERIOD: &str = "25s";
pub const DEFAULT_PRE_STOP_SLEEP: &str = "0";
pub const DEFAULT_SIGNAL_SCOPE: &str = "group";
pub const DEFAULT_LOG_FORMAT: &str = "auto";
pub const DEFAULT_LOG_LEVEL: &str = "info";

#[derive(Parser, Debug, PartialEq)]
#[command(name = "curtain", max_term_width = 100)]
pub struct Cli {
    /// Whole budget from the shutdown request to SIGKILL, pre-stop steps included
    #[arg(long, env = "CURTAIN_GRACE_PERIOD", value_name = "DUR", default_value = DEFAULT_GRACE_PERIOD)]
    pub grace_period: OsString,

    /// Signal the app gets when a shutdown starts [default: the signal that started it]
    #[arg(long, env = "CURTAIN_STOP_SIGNAL", value_name = "SIG")]
    pub stop_signal: Option<OsString>,

    /// Drain command run before the stop signal (repeatable; shell-word split, no shell)
    #[arg(long, env = "CURTAIN_PRE_STOP", value_name = "CMD")]
    pub pre_stop: Vec<OsString>,

    /// Wait after the pre-stop commands, before the stop signal
    #[arg(long, env = "CURTAIN_PRE_STOP_SLEEP", value_name = "DUR", default_value = DEFAULT_PRE_STOP_SLEEP)]
    pub pre_stop_sleep: OsString,

    /// Rewrite a forwarded signal, e.g. HUP:USR1; FROM:0 drops it (repeatable, comma list)
    #[arg(
        long,
        env = "CURTAIN_MAP_SIGNAL",
        value_name = "FROM:TO",
        value_delimiter = ','
    )]
    pub map_signal: Vec<OsString>,

    /// Forwarded signals go to the app alone (child) or its process group (group)
    #[arg(
        long,
        env = "CURTAIN_SIGNAL_SCOPE",
        value_name = "child|group",
        default_value = DEFAULT_SIGNAL_SCOPE
    )]
    pub signal_scope: OsString,

    /// Rewrite curtain's exit code, e.g. 143:0 (repeatable, comma list)
    #[arg(
        long,
        env = "CURTAIN_REMAP_EXIT",
        value_name = "FROM:TO",
        value_delimiter = ','
    )]
    pub remap_exit: Vec<OsString>,

    /// Log format: json, text (logfmt), ecs (Elastic Common Schema), or auto (text on a terminal)
    #[arg(
        long,
        env = "CURTAIN_LOG_FORMAT",
        value_name = "json|text|ecs|auto",
        default_value = DEFAULT_LOG_FORMAT
    )]
    pub log_format: OsString,

    /// Log level: error, warn, info, debug, trace (the exit event is always written)
    #[arg(long, env = "CURTAIN_LOG_LEVEL", value_name = "LEVEL", default_value = DEFAULT_LOG_LEVEL)]
    pub log_level: OsString,

    /// Where to write the final summary for Kubernetes ('' turns it off)
    /// [default: /dev/termination-log when it exists]
    #[arg(long, env = "CURTAIN_TERMINATION_LOG", value_name = "PATH")]
    pub termination_log: Option<OsString>,

    /// The app and its arguments
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}
