//! The `sessions` command: encode, decode, show and clear Django-compatible sessions from the
//! shell.
//!
//! The binary is a thin wrapper around this library: [`Cli`] is the parsed command line and
//! [`run`] performs it, returning the line to print on stdout or an [`Error`] that knows its exit
//! status. Values are signed and verified by [`session_core::SessionCodec`] and stores are read
//! through the djsession stores themselves, so the command reads and writes exactly what they do.
//!
//! ```text
//! $ export SECRET_KEY='the Django site SECRET_KEY'
//! $ echo '{"cart": [1, 2]}' | sessions encode
//! eyJjYXJ0IjpbMSwyXX0:1r31eq:...
//! $ sessions decode --backend db 'eyJjYXJ0IjpbMSwyXX0:1r31eq:...'
//! {"cart":[1,2]}
//! $ sessions decode --backend cookie --max-age 1209600 "$SESSIONID_COOKIE"
//!
//! $ export DATABASE_URL='postgres://user:password@127.0.0.1:5432/site'
//! $ sessions show --engine db 4mfj6kfv0s8ha9qjaiwqk0msvtxoy0nc
//! {"_auth_user_id":"42","_auth_user_backend":"django.contrib.auth.backends.ModelBackend"}
//! $ sessions clearsessions --engine db
//! Removed 17 expired sessions.
//! $ sessions whoami --engine db --user-database-url "$DATABASE_URL" 4mfj6kfv0s8ha9qjaiwqk0msvtxoy0nc
//! {"user_id": "42", "backend": "django.contrib.auth.backends.ModelBackend", "verified": true}
//! $ sessions clearsessions --engine file --file-path /var/lib/site/sessions
//! Removed 3 expired sessions.
//! ```
//!
//! | command | stores | prints | exit 1 when |
//! |---|---|---|---|
//! | `clearsessions` | db, cached-db (`--database-url`, `--table`, `--batch-size`: rows per DELETE, default 10,000; `--pause-ms`: a wait after each full batch, default 0), file (`--file-path`, `--cookie-name`, `--cookie-age`), cache (nothing to do) | `Removed N expired sessions.` (on a terminal, a progress line on stderr while it runs) | the store fails while clearing |
//! | `show SESSION_KEY` | the same, and cache (`--cache-url`, `--cache-key-prefix`, `--cache-version`), and cookie (the key is the cookie) | the session as one line of JSON | no live session under the key, or its data does not verify |
//! | `revoke --user ID` / `list --user ID` | db (`--index-table` for session-auth's index), cached-db (revoke also deletes the cache entries: `--cache-url`), cache (session-auth's per-user Redis set and a SCAN), file (every file read) | the number removed / one JSON line per session | the store fails |
//! | `whoami KEY` | all of the above, plus the user table (`--user-database-url` / `USER_DATABASE_URL`, `--user-table`, `--user-key-column`, ...) | `{"user_id": "42", "backend": "...", "verified": true}` | no user, the session hash does not match (password changed), the user is inactive (ModelBackend) or gone |
//!
//! Databases: PostgreSQL, MySQL/MariaDB and SQLite, by the URL's scheme. Options that cannot work
//! (no URL, an unreachable server, a missing table or directory) exit 2; for a database the line
//! gives the driver's reason (connection refused, authentication failed, unknown database, file
//! not openable) at once, or says that the server did not answer within 5 s. URLs, secrets and
//! whole session keys are never printed.
//!
//! `show` changes nothing it reads: a SQLite database is opened `mode=ro` (unless the URL chooses
//! a mode) and a session directory read-only. `clearsessions` opens a SQLite file as `session-db`
//! does, which switches it to WAL (a lasting property of the file, which Django reads as usual).
//!
//! The same through the library:
//!
//! ```
//! use std::time::SystemTime;
//! use clap::Parser;
//! use session_cli::{Cli, DecodeFailure, run};
//!
//! let encode = Cli::parse_from([
//!     "sessions", "encode", "--secret-key", "django_tests_secret_key", "--timestamp", "1700000000",
//! ]);
//! let token = run(&encode, &br#"{"a test key": "a test value"}"#[..], SystemTime::now()).unwrap();
//! // Django 5.2 stores exactly this for that session at that time.
//! assert_eq!(token, "eyJhIHRlc3Qga2V5IjoiYSB0ZXN0IHZhbHVlIn0:1r31eq:z3T5kuYwaLspnAAUpfRWpbinC-rn6c6P1Qf9PsCyZ2s");
//!
//! let decode = Cli::parse_from(["sessions", "decode", "--secret-key", "django_tests_secret_key", &token]);
//! assert_eq!(run(&decode, std::io::empty(), SystemTime::now()).unwrap(), r#"{"a test key":"a test value"}"#);
//!
//! let wrong_key = Cli::parse_from(["sessions", "decode", "--secret-key", "another key", &token]);
//! let error = run(&wrong_key, std::io::empty(), SystemTime::now()).unwrap_err();
//! assert_eq!(error.decode_failure(), Some(DecodeFailure::BadSignature));
//! assert_eq!(error.exit_code(), 1);
//! ```

pub mod args;
mod clear;
mod decode;
mod encode;
mod error;
mod show;
mod store;
mod user_sessions;
mod whoami;

use std::io::{IsTerminal, Read, Write};
use std::time::SystemTime;

pub use args::{
    Backend, ClearArgs, Cli, CodecArgs, Command, DecodeArgs, EncodeArgs, Engine, KeyArgs,
    SerializerArg, ShowArgs, StoreArgs, UserArgs, UserKeyKind, UserSessionArgs, WhoamiArgs,
};
pub use clear::{
    NOTHING_STORED, NOTHING_TO_CLEAR, PROGRESS_DONE, clearsessions, clearsessions_with_progress,
    progress_line, removed_message,
};
pub use decode::decode;
pub use encode::{encode, read_session};
pub use error::{DecodeFailure, Error};
pub use show::show;
pub use user_sessions::{list, revoke};
pub use whoami::whoami;

/// The most `sessions encode` reads from stdin: 16 MiB. Larger input is refused rather than
/// buffered without bound (a real session is a few kilobytes; cookies hold 4 KB).
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// Runs a parsed command: `input` is standard input (read only by `encode`), `now` the clock
/// `decode --max-age`, `show` and `clearsessions` compare expiry with. Returns the line to print
/// on stdout (without the newline).
///
/// `show` and `clearsessions` run on a single-threaded tokio runtime started here.
///
/// # Errors
/// Whatever the subcommand reports; [`Error::exit_code`] gives the process exit status.
pub fn run(cli: &Cli, input: impl Read, now: SystemTime) -> Result<String, Error> {
    match &cli.command {
        Command::Decode(args) => decode(args, now),
        Command::Encode(args) => encode(args, input),
        Command::Show(args) => runtime()?.block_on(show(args, now)),
        Command::Whoami(args) => runtime()?.block_on(whoami(args, now)),
        Command::Revoke(args) => runtime()?.block_on(revoke(args, now)),
        Command::List(args) => runtime()?.block_on(list(args, now)),
        Command::Clearsessions(args) => {
            // Progress goes to a terminal only: a cron job's mail stays one line.
            let terminal = std::io::stderr().is_terminal();
            let mut drawn = false;
            let result = runtime()?.block_on(clearsessions_with_progress(args, now, |removed| {
                if terminal {
                    drawn = true;
                    let mut stderr = std::io::stderr().lock();
                    let _ = write!(stderr, "{}", progress_line(removed));
                    let _ = stderr.flush();
                }
            }));
            if drawn {
                eprint!("{PROGRESS_DONE}");
            }
            result
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}
