//! curtain's options as data, and nothing else: the one source of the
//! parser (`cli`), of `--help`, and of the man page and shell completions,
//! which a build tool outside the binary (tools/dist) makes from this same
//! file. No parsing library: curtain's own parser is a page, starts in
//! microseconds and lets `--help` and every error say exactly what curtain
//! means (README.md, Design notes, has the measurements).

/// What an option sets. Several spellings can set the same thing: tini's
/// `-g` and dumb-init's `-c` are other ways to say `--signal-scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    GracePeriod,
    StopSignal,
    PreStop,
    PreStopHttp,
    PreStopSleep,
    MapSignal,
    SignalScope,
    RemapExit,
    LogFormat,
    LogLevel,
    TerminationLog,
    ParentDeathSignal,
    Help,
    Version,
    // The spellings of tini and dumb-init.
    Subreaper,
    Group,
    SingleChild,
    ExitZero,
    Rewrite,
    Verbose,
    WarnReap,
    License,
}

/// One option: its spellings, its variable, its value and its help line.
#[derive(Debug)]
pub struct Opt {
    pub key: Key,
    pub long: Option<&'static str>,
    pub short: Option<char>,
    /// The `CURTAIN_*` variable read when the option is not given.
    pub env: Option<&'static str>,
    /// The value's name in `--help` (`DUR`); `None` for a flag.
    pub value: Option<&'static str>,
    /// Shown in `--help`; the defaults themselves live in `config`.
    pub default: Option<&'static str>,
    /// May be given more than once (each adds to a list).
    pub repeat: bool,
    pub help: &'static str,
    /// Which init this spelling comes from, for its own `--help` section.
    pub compat: Option<&'static str>,
}

pub const DEFAULT_GRACE_PERIOD: &str = "25s";
pub const DEFAULT_PRE_STOP_SLEEP: &str = "0";
pub const DEFAULT_SIGNAL_SCOPE: &str = "group";
pub const DEFAULT_LOG_FORMAT: &str = "auto";
pub const DEFAULT_LOG_LEVEL: &str = "info";

const fn opt(
    key: Key,
    long: &'static str,
    env: &'static str,
    value: &'static str,
    help: &'static str,
) -> Opt {
    Opt {
        key,
        long: Some(long),
        short: None,
        env: Some(env),
        value: Some(value),
        default: None,
        repeat: false,
        help,
        compat: None,
    }
}

const fn flag(key: Key, short: char, compat: &'static str, help: &'static str) -> Opt {
    Opt {
        key,
        long: None,
        short: Some(short),
        env: None,
        value: None,
        default: None,
        repeat: false,
        help,
        compat: Some(compat),
    }
}

/// Every option, in `--help` order.
pub const OPTIONS: &[Opt] = &[
    Opt {
        default: Some(DEFAULT_GRACE_PERIOD),
        ..opt(
            Key::GracePeriod,
            "grace-period",
            "CURTAIN_GRACE_PERIOD",
            "DUR",
            "Whole budget from the shutdown request to curtain's SIGKILL, pre-stop steps included. \
             Keep it under the runtime's (Kubernetes: terminationGracePeriodSeconds - 5s; docker stop: 8s)",
        )
    },
    Opt {
        default: Some("the signal that started the shutdown"),
        ..opt(
            Key::StopSignal,
            "stop-signal",
            "CURTAIN_STOP_SIGNAL",
            "SIG",
            "Signal the app gets when the shutdown reaches it (QUIT for nginx, INT for postgres)",
        )
    },
    Opt {
        repeat: true,
        ..opt(
            Key::PreStop,
            "pre-stop",
            "CURTAIN_PRE_STOP",
            "CMD",
            "Drain command run before the stop signal, split into words, no shell. Repeatable; \
             the variable takes one command per line",
        )
    },
    Opt {
        repeat: true,
        ..opt(
            Key::PreStopHttp,
            "pre-stop-http",
            "CURTAIN_PRE_STOP_HTTP",
            "[METHOD] URL",
            "HTTP request made before the stop signal, like Kubernetes' httpGet hook: \
             http://IP:PORT/PATH, GET unless METHOD is given, 2xx is success. Repeatable, in order \
             with --pre-stop; the variable takes one request per line",
        )
    },
    Opt {
        default: Some(DEFAULT_PRE_STOP_SLEEP),
        ..opt(
            Key::PreStopSleep,
            "pre-stop-sleep",
            "CURTAIN_PRE_STOP_SLEEP",
            "DUR",
            "Wait after the pre-stop steps, before the stop signal (endpoints drain)",
        )
    },
    Opt {
        repeat: true,
        ..opt(
            Key::MapSignal,
            "map-signal",
            "CURTAIN_MAP_SIGNAL",
            "FROM:TO",
            "Rewrite a signal before it reaches the app, e.g. HUP:USR1; FROM:0 drops it. \
             Repeatable, or a comma list",
        )
    },
    Opt {
        default: Some(DEFAULT_SIGNAL_SCOPE),
        ..opt(
            Key::SignalScope,
            "signal-scope",
            "CURTAIN_SIGNAL_SCOPE",
            "child|group",
            "Forwarded signals go to the app alone, or to its whole process group",
        )
    },
    Opt {
        repeat: true,
        ..opt(
            Key::RemapExit,
            "remap-exit",
            "CURTAIN_REMAP_EXIT",
            "FROM:TO",
            "Rewrite curtain's exit code, e.g. 143:0. Repeatable, or a comma list",
        )
    },
    Opt {
        default: Some(DEFAULT_LOG_FORMAT),
        ..opt(
            Key::LogFormat,
            "log-format",
            "CURTAIN_LOG_FORMAT",
            "json|text|ecs|auto",
            "JSON lines, text (logfmt), ecs (Elastic Common Schema); auto: text on a terminal, else JSON",
        )
    },
    Opt {
        default: Some(DEFAULT_LOG_LEVEL),
        ..opt(
            Key::LogLevel,
            "log-level",
            "CURTAIN_LOG_LEVEL",
            "LEVEL",
            "error, warn, info, debug or trace; the exit event is always written",
        )
    },
    Opt {
        default: Some("/dev/termination-log when it exists"),
        ..opt(
            Key::TerminationLog,
            "termination-log",
            "CURTAIN_TERMINATION_LOG",
            "PATH",
            "Where the final summary goes for Kubernetes; '' turns it off",
        )
    },
    Opt {
        short: Some('p'),
        ..opt(
            Key::ParentDeathSignal,
            "parent-death-signal",
            "CURTAIN_PARENT_DEATH_SIGNAL",
            "SIG",
            "Signal curtain gets when its parent dies, for when curtain is not PID 1 (TERM or INT \
             start a shutdown); tini's -p",
        )
    },
    Opt {
        long: Some("help"),
        compat: None,
        ..flag(Key::Help, 'h', "", "Print this help and exit")
    },
    Opt {
        long: Some("version"),
        compat: None,
        ..flag(Key::Version, 'V', "", "Print the version line and exit")
    },
    flag(
        Key::Subreaper,
        's',
        "tini",
        "Accepted: curtain always is a subreaper when it is not PID 1",
    ),
    flag(
        Key::Group,
        'g',
        "tini",
        "Signals go to the app's process group: --signal-scope group, curtain's default",
    ),
    Opt {
        long: Some("single-child"),
        ..flag(
            Key::SingleChild,
            'c',
            "dumb-init",
            "Signals go to the app alone: --signal-scope child",
        )
    },
    Opt {
        value: Some("CODE"),
        repeat: true,
        ..flag(
            Key::ExitZero,
            'e',
            "tini",
            "Exit code CODE becomes 0: --remap-exit CODE:0",
        )
    },
    Opt {
        long: Some("rewrite"),
        value: Some("FROM:TO"),
        repeat: true,
        ..flag(Key::Rewrite, 'r', "dumb-init", "Same as --map-signal FROM:TO")
    },
    Opt {
        long: Some("verbose"),
        repeat: true,
        ..flag(
            Key::Verbose,
            'v',
            "tini, dumb-init",
            "More logging: -v debug, -vv trace (never less than --log-level)",
        )
    },
    flag(
        Key::WarnReap,
        'w',
        "tini",
        "Log every reaped process (the reaped events): at least -v",
    ),
    flag(Key::License, 'l', "tini", "Print the license and exit"),
];

/// What curtain is, in two lines (the top of `--help` and of the man page).
pub const ABOUT: &str =
    "curtain: a tiny PID 1 for containers. It starts COMMAND, forwards signals, reaps zombies, \
    runs drain steps before a stop, sends the SIGKILL itself when its grace period runs out, \
    and explains every exit in one log line.";

pub const USAGE: &str = "curtain [OPTIONS] [--] COMMAND [ARGS...]";

/// `--help`'s examples: (what it is for, the lines), each line printed as is.
pub const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "As a Dockerfile's ENTRYPOINT (the image's CMD is the app):",
        &["ENTRYPOINT [\"/curtain\", \"--\"]"],
    ),
    (
        "A legacy app that ignores SIGTERM: it gets QUIT, and SIGKILL after 20 s:",
        &["curtain --stop-signal QUIT --grace-period 20s -- /opt/legacy/bin/server"],
    ),
    (
        "Drain first: ask the app to finish its work, then stop it:",
        &["curtain --pre-stop-http 'POST http://127.0.0.1:8080/drain' -- /app"],
    ),
];

/// Exit status and the exit event's reasons, short; docs/behavior.md has all.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("N", "the app exited N (after --remap-exit)"),
    ("128+N", "the app died of signal N (143: SIGTERM, 137: SIGKILL)"),
    ("2", "bad option or variable: the app was never started"),
    ("125", "curtain could not set itself up or start the app"),
    ("126, 127", "COMMAND cannot be executed, or is not found"),
];

pub const REASONS: &str = "The last log line, the exit event, says why in `reason`: exited, stopped, \
    signaled, grace_timeout, oom_killed, killed, exec_failed, setup_failed; \
    `expected` false means someone should look.";

pub const LICENSE: &str =
    "curtain is free software, under the MIT license or the Apache License 2.0, at your \
option. It comes with no warranty. https://opensource.org/licenses/MIT, \
https://www.apache.org/licenses/LICENSE-2.0";
