//! The `sessions` binary: parses the command line and hands it to [`session_cli::run`].

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use session_cli::{Cli, Command, run};

fn main() -> ExitCode {
    // Usage errors and --help/--version are clap's (exit 2 and 0).
    let cli = Cli::parse();
    if matches!(cli.command, Command::Clearsessions(_)) {
        // A sweep goes on past files it cannot judge (unreadable, or not signed with this secret);
        // the stores log those as warnings, which an operator must see.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .without_time()
            .with_ansi(false)
            .init();
    }
    match run(&cli, std::io::stdin().lock(), SystemTime::now()) {
        Ok(line) => {
            let mut stdout = std::io::stdout().lock();
            // `list` of a user without sessions prints nothing, not an empty line.
            let written = if line.is_empty() {
                Ok(())
            } else {
                writeln!(stdout, "{line}")
            };
            match written.and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("sessions: could not write the result to standard output: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            eprintln!("sessions: {}", error.one_line());
            ExitCode::from(error.exit_code())
        }
    }
}
