//! Secrets never appear in what the `sessions` binary prints, nor in the `Debug` output of its
//! parsed command line: the secret key, fallback keys, passwords in database and Redis URLs, and
//! the session keys it is asked about.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Stdio};

use clap::Parser as _;
use session_cli::Cli;

const PRIMARY: &str = "S3CRET-primary-4f9a1c02e7";
const FALLBACK: &str = "S3CRET-fallback-7b2e0d93aa";
const DB_PASSWORD: &str = "PASSW0RD-db-91c2";
const REDIS_PASSWORD: &str = "PASSW0RD-redis-5d7e";
/// A well-formed session key, as `show` is asked about.
const SESSION_KEY: &str = "k3yk3yk3ysessionkeyabcdefgh12345";

const SECRETS: [&str; 5] = [PRIMARY, FALLBACK, DB_PASSWORD, REDIS_PASSWORD, SESSION_KEY];

/// Runs the binary; returns (stdout, stderr).
fn sessions(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sessions"))
        .args(args)
        .env_remove("SECRET_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
    }
}

#[test]
fn failures_of_every_command_print_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap();
    let db_url = format!("postgres://djsession:{DB_PASSWORD}@127.0.0.1:1/nothing");
    let redis_url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:1/0");
    let keys = ["--secret-key", PRIMARY, "--fallback-key", FALLBACK];
    let runs: Vec<Vec<&str>> = vec![
        [&["decode"][..], &keys, &["e30:1r31eq:forged"]].concat(),
        [&["decode"][..], &keys, &["--max-age", "1", "e30:0:AAAA"]].concat(),
        [&["encode"][..], &keys].concat(),
        [
            &["show", "--engine", "file", "--file-path", dir][..],
            &keys,
            &[SESSION_KEY],
        ]
        .concat(),
        [
            &["show", "--engine", "db", "--database-url", &db_url][..],
            &keys,
            &[SESSION_KEY],
        ]
        .concat(),
        [
            &["show", "--engine", "cache", "--cache-url", &redis_url][..],
            &keys,
            &[SESSION_KEY],
        ]
        .concat(),
        [
            &["clearsessions", "--engine", "db", "--database-url", &db_url][..],
            &keys,
        ]
        .concat(),
        [
            &[
                "clearsessions",
                "--engine",
                "cache",
                "--cache-url",
                &redis_url,
            ][..],
            &keys,
        ]
        .concat(),
    ];
    for args in runs {
        let (stdout, stderr) = sessions(&args, &[]);
        assert_clean(
            &format!("{:?}", args[..3].to_vec()),
            &format!("{stdout}{stderr}"),
        );
    }
    // The same through the environment variables.
    let env = [
        ("SECRET_KEY", PRIMARY),
        ("DATABASE_URL", db_url.as_str()),
        ("REDIS_URL", redis_url.as_str()),
    ];
    for args in [
        vec!["decode", "e30:1r31eq:forged"],
        vec!["show", "--engine", "db", SESSION_KEY],
        vec!["show", "--engine", "cache", SESSION_KEY],
        vec!["decode", "--help"],
    ] {
        let (stdout, stderr) = sessions(&args, &env);
        assert_clean(&format!("{args:?} (env)"), &format!("{stdout}{stderr}"));
    }
}

#[test]
fn the_parsed_command_line_shows_no_secret_in_debug() {
    let db_url = format!("postgres://djsession:{DB_PASSWORD}@127.0.0.1:1/nothing");
    let redis_url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:1/0");
    let parsed = [
        vec![
            "sessions",
            "decode",
            "--secret-key",
            PRIMARY,
            "--fallback-key",
            FALLBACK,
            "x",
        ],
        vec!["sessions", "encode", "--secret-key", PRIMARY],
        vec![
            "sessions",
            "show",
            "--engine",
            "db",
            "--database-url",
            &db_url,
            "--secret-key",
            PRIMARY,
            SESSION_KEY,
        ],
        vec![
            "sessions",
            "clearsessions",
            "--engine",
            "cache",
            "--cache-url",
            &redis_url,
            "--secret-key",
            PRIMARY,
        ],
    ];
    for args in parsed {
        let cli = Cli::try_parse_from(&args).unwrap();
        let shown = format!("{cli:?} {cli:#?}");
        for secret in [PRIMARY, FALLBACK, DB_PASSWORD, REDIS_PASSWORD] {
            assert!(
                !shown.contains(secret),
                "Debug of {:?} shows {secret:?}: {shown}",
                &args[1]
            );
        }
    }
}
