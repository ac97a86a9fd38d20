//! End-to-end tests: the built curtain binary with real child processes and
//! real signals, as PID 1 of a fresh pid namespace and as a subreaper.
//! One module per behaviour; a new behaviour gets its own module here.

mod support;

mod anchors; // tini's and dumb-init's flags, parent death, HTTP pre-stop steps, --help
mod cli_usage; // bad input: exit 2, the value named, the app never started
mod exit_reasons; // oom_killed, killed, termination message, static binary in an empty root
mod exit_status; // the app's exit code, 128+N, 126/127 and their exit events
mod explanations; // the last word, progress, levels, words, log formats read by outside parsers
mod hardening; // never hangs, never signals a stranger, never loses the exit line
mod idle; // an idle curtain never wakes up
mod log_output; // JSON schema, no arguments logged, closed and stalled stdout
mod pre_stop; // pre-stop commands and sleep inside the shared budget
mod shutdown; // SIGTERM, stop signal, grace deadline, escalation, leftovers
mod signal_forwarding; // every signal reaches the app, mapped and scoped
mod transparency; // the app gets curtain's original mask, dispositions and fds
mod tty; // foreground process group and Ctrl-C under a terminal
mod zombie_reaping; // orphans and zombies are reaped, as PID 1 and subreaper
