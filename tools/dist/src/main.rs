//! `curtain-dist OUTDIR "VERSION LINE"`: write curtain's man page
//! (`curtain.1`) and its bash, zsh and fish completions into OUTDIR, from
//! the same option table the binary parses with (src/args.rs), turned into
//! a clap definition here, where clap costs curtain nothing.

use std::path::PathBuf;

use clap::{Arg, ArgAction, Command};

#[path = "../../../src/args.rs"]
#[allow(dead_code)]
mod args;

use args::{Key, ABOUT, EXAMPLES, EXIT_STATUS, OPTIONS, REASONS};

fn main() -> std::io::Result<()> {
    let mut argv = std::env::args().skip(1);
    let (Some(out), Some(version)) = (argv.next(), argv.next()) else {
        eprintln!("usage: curtain-dist OUTDIR \"curtain version ...\"");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    // A tool that runs once: its strings may live as long as it does.
    let version: &'static str = version
        .strip_prefix("curtain ")
        .unwrap_or(&version)
        .to_string()
        .leak();
    let cmd = command(version);
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(out.join("curtain.1"), page)?;
    for (shell, file) in [
        (clap_complete::Shell::Bash, "curtain.bash"),
        (clap_complete::Shell::Zsh, "_curtain"),
        (clap_complete::Shell::Fish, "curtain.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "curtain", &mut text);
        std::fs::write(out.join(file), text)?;
    }
    Ok(())
}

/// curtain's options as a clap command, for the man page and completions.
fn command(version: &'static str) -> Command {
    let mut after = String::from("Examples:\n");
    for (what, lines) in EXAMPLES {
        after.push_str(&format!("  {what}\n"));
        for line in *lines {
            after.push_str(&format!("      {line}\n"));
        }
    }
    after.push_str("\nExit status:\n");
    for (code, meaning) in EXIT_STATUS {
        after.push_str(&format!("  {code:<9} {meaning}\n"));
    }
    after.push_str(&format!("\n{REASONS}\n"));
    let mut cmd = Command::new("curtain")
        .version(version)
        .about("A tiny PID 1 for containers")
        .long_about(format!(
            "{ABOUT} Every option also reads its CURTAIN_* variable; an option on the command line wins."
        ))
        .after_long_help(after);
    for opt in OPTIONS {
        // clap adds -h/--help and -V/--version itself.
        if matches!(opt.key, Key::Help | Key::Version) {
            continue;
        }
        let id: &'static str = match (opt.long, opt.short) {
            (Some(long), _) => long,
            (None, short) => short.unwrap_or('?').to_string().leak(),
        };
        let mut help = opt.help.to_string();
        if let Some(from) = opt.compat {
            help = format!("({from}) {help}");
        }
        if let Some(default) = opt.default {
            help.push_str(&format!(" [default: {default}]"));
        }
        let mut arg = Arg::new(id).help(help);
        if let Some(long) = opt.long {
            arg = arg.long(long);
        }
        if let Some(short) = opt.short {
            arg = arg.short(short);
        }
        if let Some(env) = opt.env {
            arg = arg.env(env).hide_env_values(true);
        }
        arg = match (opt.value, opt.repeat) {
            (Some(name), true) => arg.value_name(name).action(ArgAction::Append),
            (Some(name), false) => arg.value_name(name).action(ArgAction::Set),
            (None, true) => arg.action(ArgAction::Count),
            (None, false) => arg.action(ArgAction::SetTrue),
        };
        cmd = cmd.arg(arg);
    }
    cmd.arg(
        Arg::new("COMMAND")
            .help("The app and its arguments")
            .num_args(1..)
            .required(true)
            .trailing_var_arg(true)
            .allow_hyphen_values(true),
    )
}
