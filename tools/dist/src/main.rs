//! `curtain-dist OUTDIR "VERSION LINE"`: write curtain's man page
//! (`curtain.1`) and its bash, zsh and fish completions into OUTDIR, from
//! the same clap definition the binary parses with.

use std::path::PathBuf;

use clap::CommandFactory;

#[path = "../../../src/args.rs"]
mod args;

fn main() -> std::io::Result<()> {
    let mut argv = std::env::args().skip(1);
    let (Some(out), Some(version)) = (argv.next(), argv.next()) else {
        eprintln!("usage: curtain-dist OUTDIR \"curtain version ...\"");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    // A tool that runs once: the version string may live as long as it does.
    let version: &'static str = version.strip_prefix("curtain ").unwrap_or(&version).to_string().leak();
    let cmd = args::Cli::command()
        .version(version)
        .about("A tiny PID 1 for containers")
        .long_about(
            "curtain starts COMMAND as its child, forwards signals to it, reaps zombies, runs \
             pre-stop drain steps without a shell, enforces its own grace period (it sends the \
             SIGKILL), and ends with one structured exit event and a Kubernetes termination \
             message that explain the stop. Every option also reads its CURTAIN_* variable; an \
             option on the command line wins. Exit status: the app's, or 128+N when it died of \
             signal N; 2 for bad input (the app never starts); 125 when curtain could not set \
             itself up; 126 or 127 when COMMAND cannot be executed or is not found.",
        );
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
