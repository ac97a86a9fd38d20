//! curtain: a tiny PID 1 for containers. README.md is the user guide;
//! docs/behavior.md says what curtain guarantees.
//!
//! `main` reads like the product: block signals, parse, log, supervise, exit.
//! It is a C `main` (`#![no_main]`) so that Rust's runtime start-up does not
//! run first: it would set SIGPIPE to SIG_IGN and reopen closed stdio
//! descriptors, and curtain must hand the app exactly what it was given.
#![cfg_attr(not(test), no_main)]
// Unit tests use the test harness's main, so `main` below is not built then.
#![cfg_attr(test, allow(dead_code, unused_imports))]
// A dependency nothing uses is size and start-up cost for nothing.
#![warn(unused_crate_dependencies)]

mod args; // every option as data: spellings, variable, help (shared with tools/dist)
mod cgroup; // the memory cgroup's OOM-kill counter (exit reason oom_killed)
mod cli; // the raw command line and CURTAIN_* variables; --help; usage errors
mod config; // validated configuration; every bad input is rejected here
mod events; // every log event, typed: name, level, fields, message
mod exit_reason; // why the app stopped, and curtain's exit code (pure)
mod http; // --pre-stop-http: URL, request and status line (pure), and the request itself
mod logging; // JSON/text rendering of events; writes that never block PID 1
mod reaper; // wait4 until none are left; how a child ended; curtain's children
mod report; // the final exit event and the Kubernetes termination message
mod sequencer; // the shutdown sequence as a state machine: inputs in, actions out (pure)
mod signals; // signal names, the caught set, what each signal means (pure)
mod spawn; // starting the app and the pre-stop commands
mod supervisor; // the event loop: waits, feeds the sequencer, carries out its actions
mod sys; // the only unsafe code: thin wrappers over syscalls

use std::time::Instant;

use crate::config::Config;
use crate::exit_reason::Outcome;

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let started = Instant::now();
    // Who started curtain, read before anything else: the sooner, the
    // narrower the window in which a dying parent goes unseen
    // (--parent-death-signal).
    let parent = sys::parent_pid();
    // First thing: block every signal, so none sent during start-up is lost
    // (they wait, pending, for the event loop).
    let signals = signals::SignalSetup::install();

    let cli = cli::parse();
    let runtime_init = std::env::args_os()
        .next()
        .is_some_and(|a| config::runtime_init(&a));
    let config = match Config::from_cli(cli, runtime_init) {
        Ok(config) => config,
        Err(e) => cli::usage_error(&cli::UsageError {
            message: e.to_string(),
            tip: None,
        }),
    };
    logging::init(config.log_format, config.log_level);

    let code = match signals {
        Ok(setup) => supervisor::run(&config, &setup, started, parent),
        Err(e) => {
            let outcome = Outcome::SetupFailed(format!("cannot block signals: {e}"));
            supervisor::finish_early(&config, started, outcome)
        }
    };
    sys::exit(code)
}
