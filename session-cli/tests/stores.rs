//! End-to-end tests of `sessions clearsessions` and `sessions show`: the built binary against
//! stores prepared through the djsession stores themselves. SQLite and session directories
//! always; PostgreSQL, MySQL/MariaDB and Redis when `SESSION_TEST_*_URL` name them (skipped
//! otherwise, a failure with `SESSION_TEST_REQUIRE_SERVICES=1`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, SystemTime};

use session_cache::{Cache, CacheStore, KeyFunction, RedisCache};
use session_conformance::services::{self, MYSQL_URL, POSTGRES_URL, REDIS_URL};
use session_core::serializer::SerializerName;
use session_core::value::Dict;
use session_core::{Expiry, Session, SessionConfig, SessionKey, SessionStore, Value};
use session_db::{Backend, DbStore, SqliteStore};
use session_file::FileStore;
use time::{Duration, OffsetDateTime};

const KEY: &str = "django_tests_secret_key";
/// The session every test stores, and the line `show` must print for it (Django's JSON escapes
/// non-ASCII characters).
const DATA_JSON: &str = r#"{"_auth_user_id":"42","cart":[1,2],"name":"Zo\u00eb <admin>"}"#;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `sessions` with exactly the given environment variables among those it reads.
fn sessions(args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_sessions"))
        .args(args)
        .env_remove("SECRET_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Output {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Asserts success with exactly `line` on stdout and nothing on stderr.
#[track_caller]
fn prints(out: &Output, line: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, format!("{line}\n").as_str(), "")
    );
}

/// Asserts the exit status, empty stdout and exactly `message` as the one line on stderr.
#[track_caller]
fn fails(out: &Output, code: i32, message: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (code, "", format!("sessions: {message}\n").as_str())
    );
}

/// Asserts the exit status, empty stdout and one line on stderr starting with `prefix`.
#[track_caller]
fn fails_with(out: &Output, code: i32, prefix: &str) {
    assert_eq!(out.code, code, "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
    let line = out.stderr.strip_suffix('\n').expect("one line on stderr");
    assert!(!line.contains('\n'), "more than one line: {:?}", out.stderr);
    assert!(
        line.starts_with(&format!("sessions: {prefix}")),
        "{line:?} does not start with {prefix:?}"
    );
}

fn config() -> SessionConfig {
    SessionConfig::new(KEY)
}

fn data() -> Dict {
    let mut data = Dict::new();
    data.insert("_auth_user_id", "42".into());
    data.insert(
        "cart",
        Value::List(vec![Value::from(1i64), Value::from(2i64)]),
    );
    data.insert("name", "Zoë <admin>".into());
    data
}

fn shown(key: &SessionKey) -> String {
    format!("{}…", &key.as_str()[..4])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ------------------------------------------------------------------------------------ databases

/// Rows in a table: two live and three expired sessions, all holding [`data`].
struct Rows {
    live: Vec<SessionKey>,
    expired: Vec<SessionKey>,
}

async fn fill<B: Backend>(store: &DbStore<B>) -> Rows {
    let now = OffsetDateTime::now_utc();
    let mut rows = Rows {
        live: Vec::new(),
        expired: Vec::new(),
    };
    for hours in [1, 24 * 14] {
        let key = SessionKey::generate().unwrap();
        store
            .save_row(key.as_str(), &data(), now + Duration::hours(hours))
            .await
            .unwrap();
        rows.live.push(key);
    }
    for age in [
        Duration::seconds(1),
        Duration::hours(1),
        Duration::days(400),
    ] {
        let key = SessionKey::generate().unwrap();
        store
            .save_row(key.as_str(), &data(), now - age)
            .await
            .unwrap();
        rows.expired.push(key);
    }
    rows
}

/// `show` and `clearsessions` on a table at `url`, checking exact output and what is left.
async fn database_scenario<B: Backend>(url: &str, table: &str) {
    let store = DbStore::<B>::connect(url, &config())
        .await
        .unwrap()
        .with_table(table)
        .unwrap();
    store.ensure_schema().await.unwrap();
    let rows = fill(&store).await;
    let env = [("DATABASE_URL", url), ("SECRET_KEY", KEY)];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--table", table]);
        sessions(&all, &env)
    };

    for engine in ["db", "cached-db"] {
        for key in &rows.live {
            prints(&run(&["show", "--engine", engine, key.as_str()]), DATA_JSON);
        }
    }
    let expired = &rows.expired[0];
    let expire_date = store
        .row(expired.as_str())
        .await
        .unwrap()
        .unwrap()
        .expire_date;
    fails(
        &run(&["show", expired.as_str()]),
        1,
        &format!(
            "the session under key {} has expired (at {})",
            shown(expired),
            session_core::expiry::isoformat(expire_date)
        ),
    );
    let absent = SessionKey::generate().unwrap();
    fails(
        &run(&["show", absent.as_str()]),
        1,
        &format!("no session under key {} in the table", shown(&absent)),
    );
    let wrong_secret = sessions(
        &["show", "--table", table, rows.live[0].as_str()],
        &[("DATABASE_URL", url), ("SECRET_KEY", "another secret")],
    );
    fails_with(&wrong_secret, 1, "cannot decode: bad signature");

    prints(&run(&["clearsessions"]), "Removed 3 expired sessions.");
    for key in &rows.expired {
        assert_eq!(store.row(key.as_str()).await.unwrap(), None);
    }
    for key in &rows.live {
        assert!(store.row(key.as_str()).await.unwrap().is_some());
    }
    prints(
        &run(&["clearsessions", "--engine", "cached-db"]),
        "Removed 0 expired sessions.",
    );
    fails(
        &run(&["show", expired.as_str()]),
        1,
        &format!("no session under key {} in the table", shown(expired)),
    );
    // The rows left are untouched and still read.
    prints(&run(&["show", rows.live[1].as_str()]), DATA_JSON);
}

/// A SQLite database file with Django's table, and its URL.
async fn sqlite_file(dir: &Path) -> (SqliteStore, String) {
    let path = dir.join("db.sqlite3");
    let store = SqliteStore::connect(&format!("sqlite://{}?mode=rwc", path.display()), &config())
        .await
        .unwrap();
    store.ensure_schema().await.unwrap();
    (store, format!("sqlite://{}", path.display()))
}

#[test]
fn sqlite_show_and_clearsessions() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_store, url) = sqlite_file(dir.path()).await;
        database_scenario::<session_db::sqlx::Sqlite>(&url, "django_session").await;
    });
}

#[test]
fn show_leaves_a_django_sqlite_database_exactly_as_it_was() {
    use session_db::sqlx::{self, Row as _};
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        // As Django leaves it: a rollback journal, not WAL.
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        let store = SqliteStore::new(pool.clone(), &config()).unwrap();
        store.ensure_schema().await.unwrap();
        let key = SessionKey::generate().unwrap();
        let future = OffsetDateTime::now_utc() + Duration::hours(1);
        store.save_row(key.as_str(), &data(), future).await.unwrap();
        pool.close().await;
        let before = std::fs::read(&path).unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();

        let url = format!("sqlite://{}", path.display());
        prints(
            &sessions(
                &["show", "--database-url", &url, key.as_str()],
                &[("SECRET_KEY", KEY)],
            ),
            DATA_JSON,
        );

        assert!(
            std::fs::read(&path).unwrap() == before,
            "the file's bytes changed"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            modified
        );
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, ["db.sqlite3"], "no -wal or -shm file appeared");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", path.display()))
            .await
            .unwrap();
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(mode, "delete");
    });
}

#[test]
fn sqlite_with_another_table_name() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_store, url) = sqlite_file(dir.path()).await;
        database_scenario::<session_db::sqlx::Sqlite>(&url, "shop_sessions").await;
    });
}

#[test]
fn clearsessions_needs_no_secret_for_a_table_and_counts_one_in_the_singular() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (store, url) = sqlite_file(dir.path()).await;
        let key = SessionKey::generate().unwrap();
        let past = OffsetDateTime::now_utc() - Duration::minutes(5);
        store.save_row(key.as_str(), &data(), past).await.unwrap();
        prints(
            &sessions(&["clearsessions", "--database-url", &url], &[]),
            "Removed 1 expired session.",
        );
        assert_eq!(store.row(key.as_str()).await.unwrap(), None);
    });
}

#[test]
fn a_missing_table_is_named_with_how_to_create_it() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_store, url) = sqlite_file(dir.path()).await;
        let out = sessions(
            &["clearsessions", "--table", "no_such_table"],
            &[("DATABASE_URL", &url)],
        );
        fails_with(
            &out,
            2,
            "could not open the database (--database-url / DATABASE_URL): table no_such_table \
             does not exist",
        );
        assert!(out.stderr.contains("manage.py migrate sessions"));
    });
}

#[test]
fn database_options_that_cannot_work_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    fails(
        &sessions(&["clearsessions"], &[]),
        2,
        "--engine db needs the database: set DATABASE_URL (or pass --database-url) to \
         postgres://..., mysql://... or sqlite://path",
    );
    fails(
        &sessions(
            &[
                "show",
                "--engine",
                "cached-db",
                "--secret-key",
                KEY,
                "abcdefghij",
            ],
            &[],
        ),
        2,
        "--engine cached-db needs the database: set DATABASE_URL (or pass --database-url) to \
         postgres://..., mysql://... or sqlite://path",
    );
    fails(
        &sessions(
            &["clearsessions", "--database-url", "redis://127.0.0.1"],
            &[],
        ),
        2,
        "the database URL (--database-url / DATABASE_URL) must start with postgres://, \
         postgresql://, mysql://, mariadb:// or sqlite:",
    );
    // A missing SQLite file is not created (mode=rwc is not implied): a typo must not pass.
    let missing = format!("sqlite://{}", dir.path().join("typo.sqlite3").display());
    fails_with(
        &sessions(&["clearsessions", "--database-url", &missing], &[]),
        2,
        "could not open the database (--database-url / DATABASE_URL): could not connect",
    );
    assert!(!dir.path().join("typo.sqlite3").exists());
    fails_with(
        &sessions(
            &["clearsessions", "--table", "robert'); DROP TABLE x;--"],
            &[("DATABASE_URL", "sqlite::memory:")],
        ),
        2,
        "could not open the database (--database-url / DATABASE_URL): invalid table name",
    );
}

#[test]
fn urls_with_passwords_are_never_printed() {
    // Nothing listens on port 1: the connection is refused at once.
    for (args, secret) in [
        (
            vec![
                "clearsessions",
                "--database-url",
                "postgres://u:hunter2@127.0.0.1:1/db",
            ],
            "hunter2",
        ),
        (
            vec![
                "clearsessions",
                "--database-url",
                "mysql://u:s3cr3t-pw@127.0.0.1:1/db",
            ],
            "s3cr3t-pw",
        ),
        (
            vec![
                "show",
                "--engine",
                "cache",
                "--secret-key",
                "the-secret-key",
                "--cache-url",
                "redis://:redispw@127.0.0.1:1",
                "abcdefghij",
            ],
            "redispw",
        ),
    ] {
        let out = sessions(&args, &[]);
        fails_with(&out, 2, "could not open the");
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
        assert!(!out.stderr.contains("the-secret-key"), "{}", out.stderr);
    }
    let out = sessions(
        &["show", "abcdefghij"],
        &[
            ("DATABASE_URL", "postgres://u:envpassword@127.0.0.1:1/db"),
            ("SECRET_KEY", "env-secret"),
        ],
    );
    fails_with(&out, 2, "could not open the database");
    assert!(!out.stderr.contains("envpassword") && !out.stderr.contains("env-secret"));
}

#[test]
fn show_refuses_what_cannot_be_a_session_key_and_needs_the_secret() {
    fails(
        &sessions(&["show", "--secret-key", KEY, "short"], &[]),
        2,
        "SESSION_KEY is not a session key: keys have 8 to 4096 characters (the value of the \
         session cookie, usually 32 characters of a-z and 0-9)",
    );
    fails(
        &sessions(
            &["show", "abcdefghij"],
            &[("DATABASE_URL", "sqlite::memory:")],
        ),
        2,
        "no secret key: pass --secret-key KEY or set the SECRET_KEY environment variable to the \
         Django site's SECRET_KEY",
    );
}

#[test]
fn help_documents_the_store_options_and_hides_environment_values() {
    let env = [
        ("DATABASE_URL", "postgres://u:helppw@h/db"),
        ("REDIS_URL", "redis://:helpredis@h"),
        ("SECRET_KEY", "help-secret"),
    ];
    for command in ["show", "clearsessions"] {
        let out = sessions(&[command, "--help"], &env);
        assert_eq!(out.code, 0, "{}", out.stderr);
        for word in [
            "--engine",
            "cached-db",
            "--database-url",
            "DATABASE_URL",
            "--table",
            "django_session",
            "--cache-url",
            "REDIS_URL",
            "--cache-key-prefix",
            "--cache-version",
            "--file-path",
            "--cookie-name",
            "--cookie-age",
            "--serializer",
            "--secret-key",
            "--fallback-key",
        ] {
            assert!(out.stdout.contains(word), "{command} --help lacks {word}");
        }
        for secret in ["helppw", "helpredis", "help-secret"] {
            assert!(
                !out.stdout.contains(secret),
                "{command} --help shows {secret}"
            );
        }
    }
    let top = sessions(&["--help"], &[]);
    assert!(top.stdout.contains("clearsessions") && top.stdout.contains("show"));
}

#[test]
fn postgres_show_and_clearsessions() {
    let Some(url) = services::url_or_skip(POSTGRES_URL, "postgres_show_and_clearsessions") else {
        return;
    };
    runtime().block_on(async {
        let table = services::unique_name("cli_pg");
        database_scenario::<session_db::sqlx::Postgres>(&url, &table).await;
        drop_table::<session_db::sqlx::Postgres>(&url, &table).await;
    });
}

#[test]
fn mysql_show_and_clearsessions() {
    let Some(url) = services::url_or_skip(MYSQL_URL, "mysql_show_and_clearsessions") else {
        return;
    };
    runtime().block_on(async {
        let table = services::unique_name("cli_my");
        database_scenario::<session_db::sqlx::MySql>(&url, &table).await;
        drop_table::<session_db::sqlx::MySql>(&url, &table).await;
    });
}

/// Drops a test's table (names from `unique_name` are plain letters, digits and underscores).
async fn drop_table<B: Backend>(url: &str, table: &str)
where
    for<'c> &'c mut B::Connection: session_db::sqlx::Executor<'c, Database = B>,
{
    use session_db::sqlx::{AssertSqlSafe, Connection, Executor, raw_sql};
    let mut connection = B::Connection::connect(url).await.unwrap();
    connection
        .execute(raw_sql(AssertSqlSafe(format!("DROP TABLE {table}"))))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------- files

/// A session saved through the file store; returns its key.
async fn save_file_session(store: &Arc<FileStore>, expiry: Expiry) -> SessionKey {
    let session = Session::new(store.clone(), Arc::new(config()), None);
    session.update(data()).await.unwrap();
    session.set_expiry(expiry).await.unwrap();
    session.save().await.unwrap();
    session.key().unwrap()
}

/// Sets a session file's modification time `age` into the past.
fn age_file(store: &FileStore, key: &SessionKey, age: StdDuration) {
    let file = std::fs::File::options()
        .write(true)
        .open(store.file_path(key).unwrap())
        .unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

const FIFTEEN_DAYS: StdDuration = StdDuration::from_secs(15 * 86400);

#[test]
fn file_show_and_clearsessions() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let store = Arc::new(FileStore::new(dir.path(), &config()).await.unwrap());
        let live = save_file_session(&store, Expiry::Default).await;
        let remembered = save_file_session(&store, Expiry::In(Duration::days(30))).await;
        age_file(&store, &remembered, FIFTEEN_DAYS); // its own expiry outlives the cookie age
        let idle = save_file_session(&store, Expiry::Default).await;
        age_file(&store, &idle, FIFTEEN_DAYS);
        let short = save_file_session(&store, Expiry::Seconds(60)).await;
        age_file(&store, &short, StdDuration::from_secs(120));
        std::fs::write(dir.path().join("notes.txt"), "not a session").unwrap();
        std::fs::write(dir.path().join("othercookieabcdefghijkl"), "another site's").unwrap();
        let env = [("SECRET_KEY", KEY)];
        let run = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--engine", "file", "--file-path", path]);
            sessions(&all, &env)
        };

        prints(&run(&["show", live.as_str()]), DATA_JSON);
        prints(
            &run(&["show", remembered.as_str()]),
            &format!(
                r#"{{"_auth_user_id":"42","cart":[1,2],"name":"Zo\u00eb <admin>","_session_expiry":{}}}"#,
                session_core::serializer::json::to_string(
                    &store.load(&remembered).await.unwrap().unwrap()["_session_expiry"]
                )
                .unwrap()
            ),
        );
        fails(
            &run(&["show", idle.as_str()]),
            1,
            &format!("the session under key {} has expired", shown(&idle)),
        );
        let absent = SessionKey::generate().unwrap();
        fails(
            &run(&["show", absent.as_str()]),
            1,
            &format!("no session under key {} in the session directory", shown(&absent)),
        );
        // A key that can never name a file (path traversal) is simply not there.
        let traversal = "../../etc/passwd";
        fails(
            &run(&["show", traversal]),
            1,
            "no session under key ../.… in the session directory",
        );
        let wrong = sessions(
            &["show", "--engine", "file", "--file-path", path, live.as_str()],
            &[("SECRET_KEY", "another secret")],
        );
        fails_with(&wrong, 1, "cannot decode: bad signature");
        // A file longer than any decodable session is refused without being read whole.
        let oversized = SessionKey::generate().unwrap();
        std::fs::write(store.file_path(&oversized).unwrap(), "a".repeat(6 << 20)).unwrap();
        fails_with(&run(&["show", oversized.as_str()]), 1, "cannot decode: malformed");
        std::fs::remove_file(store.file_path(&oversized).unwrap()).unwrap();

        // Without the secret, a file's own expiry cannot be read: refuse rather than guess.
        fails_with(&sessions(&["clearsessions", "--engine", "file", "--file-path", path], &[]), 2, "no secret key");

        prints(&run(&["clearsessions"]), "Removed 2 expired sessions.");
        assert!(!store.file_path(&idle).unwrap().exists());
        assert!(!store.file_path(&short).unwrap().exists());
        for key in [&live, &remembered] {
            assert!(store.file_path(key).unwrap().exists());
        }
        assert!(dir.path().join("notes.txt").exists());
        assert!(dir.path().join("othercookieabcdefghijkl").exists());
        prints(&run(&["clearsessions"]), "Removed 0 expired sessions.");
    });
}

/// Every entry of `dir` with its contents and modification time, then the directory's own
/// modification time (which any created, renamed or removed entry changes).
fn snapshot(dir: &Path) -> (Vec<(String, String, SystemTime)>, SystemTime) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let entries = names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let contents = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (name, contents, modified)
        })
        .collect();
    (entries, std::fs::metadata(dir).unwrap().modified().unwrap())
}

#[test]
fn file_show_leaves_the_session_directory_untouched() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let store = Arc::new(FileStore::new(dir.path(), &config()).await.unwrap());
        let live = save_file_session(&store, Expiry::Default).await;
        let idle = save_file_session(&store, Expiry::Default).await;
        age_file(&store, &idle, FIFTEEN_DAYS);
        let [forged, not_ascii, placeholder] = [(); 3].map(|_| SessionKey::generate().unwrap());
        for (key, contents) in [
            (&forged, &b"e30:1r31eq:forged"[..]),
            (&not_ascii, b"\xff\xfe"),
            (&placeholder, b""),
        ] {
            std::fs::write(store.file_path(key).unwrap(), contents).unwrap();
        }
        // A write's temporary file left by a killed process, old enough for clear_expired.
        let stale = dir
            .path()
            .join(format!("sessionid{}_out_k2j_h4g5", live.as_str()));
        std::fs::write(&stale, "partial").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(SystemTime::now() - StdDuration::from_secs(7200))
            .unwrap();
        // In the past, so any change to the directory shows however coarse the clock.
        std::fs::File::open(dir.path())
            .unwrap()
            .set_modified(SystemTime::now() - StdDuration::from_secs(600))
            .unwrap();
        let before = snapshot(dir.path());
        let env = [("SECRET_KEY", KEY)];
        let show = |key: &str| {
            sessions(
                &["show", "--engine", "file", "--file-path", path, key],
                &env,
            )
        };

        prints(&show(live.as_str()), DATA_JSON);
        fails(
            &show(idle.as_str()),
            1,
            &format!("the session under key {} has expired", shown(&idle)),
        );
        fails_with(&show(forged.as_str()), 1, "cannot decode: bad signature");
        assert_eq!(show(not_ascii.as_str()).code, 1);
        assert_eq!(show(placeholder.as_str()).stdout, "{}\n");
        assert_eq!(show(SessionKey::generate().unwrap().as_str()).code, 1);

        assert_eq!(snapshot(dir.path()), before);
    });
}

#[test]
fn file_show_does_not_create_a_missing_directory() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("sessions");
    let key = SessionKey::generate().unwrap();
    let out = sessions(
        &[
            "show",
            "--engine",
            "file",
            "--file-path",
            missing.to_str().unwrap(),
            key.as_str(),
        ],
        &[("SECRET_KEY", KEY)],
    );
    fails_with(
        &out,
        2,
        &format!(
            "could not open the session directory (--file-path): the session storage path {:?} \
             doesn't exist",
            missing
        ),
    );
    assert!(!missing.exists());
}

#[test]
fn file_sessions_of_another_cookie_name_are_found_with_cookie_name() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let shop = SessionConfig {
            cookie_name: "shopid".into(),
            ..config()
        };
        let store = Arc::new(FileStore::new(dir.path(), &shop).await.unwrap());
        let session = Session::new(store.clone(), Arc::new(shop), None);
        session.update(data()).await.unwrap();
        session.save().await.unwrap();
        let key = session.key().unwrap();
        age_file(&store, &key, FIFTEEN_DAYS);
        let env = [("SECRET_KEY", KEY)];
        let base = ["--engine", "file", "--file-path", path];

        let mut args = vec!["clearsessions"];
        args.extend(base);
        prints(&sessions(&args, &env), "Removed 0 expired sessions.");
        args.extend(["--cookie-name", "shopid"]);
        prints(&sessions(&args, &env), "Removed 1 expired session.");
    });
}

#[test]
fn file_options_that_cannot_work_exit_2() {
    fails(
        &sessions(
            &["clearsessions", "--engine", "file", "--secret-key", KEY],
            &[],
        ),
        2,
        "--engine file needs the session directory: pass --file-path DIR (Django's \
         SESSION_FILE_PATH)",
    );
    let out = sessions(
        &[
            "clearsessions",
            "--engine",
            "file",
            "--secret-key",
            KEY,
            "--file-path",
            "/nonexistent/dir",
        ],
        &[],
    );
    fails_with(
        &out,
        2,
        "could not open the session directory (--file-path): the session storage path \
         \"/nonexistent/dir\" doesn't exist",
    );
}

// ---------------------------------------------------------------------------------------- cache

#[test]
fn clearsessions_has_nothing_to_do_for_the_cache_engine() {
    prints(
        &sessions(&["clearsessions", "--engine", "cache"], &[]),
        "Nothing to clear: the cache engine's sessions expire by themselves (the cache drops them).",
    );
}

#[test]
fn redis_show() {
    let Some(url) = services::url_or_skip(REDIS_URL, "redis_show") else {
        return;
    };
    runtime().block_on(async {
        let prefix = services::unique_name("cli");
        let json_store = redis_store(&url, &prefix, SerializerName::Json).await;
        let json_key = save_cached(&json_store, SerializerName::Json).await;
        let pickle_store = redis_store(&url, &prefix, SerializerName::Pickle).await;
        let pickle_key = save_cached(&pickle_store, SerializerName::Pickle).await;

        let base = [
            "show",
            "--engine",
            "cache",
            "--cache-key-prefix",
            prefix.as_str(),
        ];
        let env = [("REDIS_URL", url.as_str()), ("SECRET_KEY", KEY)];
        let run_version = |version: &str, extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend(["--cache-version", version]);
            args.extend(extra);
            sessions(&args, &env)
        };
        let run = |extra: &[&str]| run_version("3", extra);
        // Django's cache holds pickles, so that is the default; JSON values need --serializer.
        prints(&run(&[pickle_key.as_str()]), DATA_JSON);
        prints(
            &run(&["--serializer", "pickle", pickle_key.as_str()]),
            DATA_JSON,
        );
        prints(
            &run(&["--serializer", "json", json_key.as_str()]),
            DATA_JSON,
        );
        fails_with(
            &run(&["--serializer", "json", pickle_key.as_str()]),
            1,
            "cannot decode: malformed",
        );
        fails_with(&run(&[json_key.as_str()]), 1, "cannot decode: malformed");
        fails(
            &run_version("1", &[json_key.as_str()]),
            1,
            &format!(
                "no session under key {} in the cache (absent, or expired: the cache drops \
                 expired sessions)",
                shown(&json_key)
            ),
        );
        let garbage = SessionKey::generate().unwrap();
        json_store
            .cache()
            .set(
                &json_store.cache_key(&garbage),
                bytes::Bytes::from_static(b"{not json"),
                60,
            )
            .await
            .unwrap();
        fails_with(
            &run(&["--serializer", "json", garbage.as_str()]),
            1,
            "cannot decode: malformed",
        );
        for key in [&json_key, &pickle_key, &garbage] {
            json_store.delete(key).await.unwrap();
        }
        fails_with(&run(&[json_key.as_str()]), 1, "no session under key");
    });
}

/// A cache store on Redis with the site's `KEY_PREFIX` and `VERSION` 3.
async fn redis_store(url: &str, prefix: &str, serializer: SerializerName) -> Arc<CacheStore> {
    let redis = RedisCache::connect(url).await.unwrap();
    let keys = KeyFunction::default()
        .with_key_prefix(prefix)
        .with_version(3);
    let config = SessionConfig {
        serializer,
        ..config()
    };
    Arc::new(
        CacheStore::new(Cache::new(redis).with_key_function(keys), &config)
            .unwrap()
            .with_cache_serializer(serializer),
    )
}

/// Saves [`data`] as a new session in `store`; returns its key.
async fn save_cached(store: &Arc<CacheStore>, serializer: SerializerName) -> SessionKey {
    let config = SessionConfig {
        serializer,
        ..config()
    };
    let session = Session::new(store.clone(), Arc::new(config), None);
    session.update(data()).await.unwrap();
    session.save().await.unwrap();
    session.key().unwrap()
}

#[test]
fn clearsessions_clears_in_batches_and_draws_its_progress_only_on_a_terminal() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (store, url) = sqlite_file(dir.path()).await;
        let past = OffsetDateTime::now_utc() - Duration::minutes(5);
        for _ in 0..5 {
            let key = SessionKey::generate().unwrap();
            store.save_row(key.as_str(), &data(), past).await.unwrap();
        }
        // Not a terminal (a pipe, as under cron): the result line and nothing else.
        let out = sessions(
            &["clearsessions", "--database-url", &url, "--batch-size", "2"],
            &[],
        );
        prints(&out, "Removed 5 expired sessions.");
        assert_eq!(out.stderr, "");

        for _ in 0..3 {
            let key = SessionKey::generate().unwrap();
            store.save_row(key.as_str(), &data(), past).await.unwrap();
        }
        // On a terminal (script(1) gives the command a pseudo-terminal).
        let Ok(script) = std::process::Command::new("script")
            .args(["-qec"])
            .arg(format!(
                "{} clearsessions --database-url '{url}' --batch-size 2",
                env!("CARGO_BIN_EXE_sessions")
            ))
            .arg("/dev/null")
            .env_remove("DATABASE_URL")
            .output()
        else {
            // CI installs util-linux's script(1); there a missing one is a failure, not a skip.
            assert!(
                std::env::var_os("SESSION_TEST_REQUIRE_SERVICES").is_none(),
                "script(1) is needed for the terminal half (SESSION_TEST_REQUIRE_SERVICES is set)"
            );
            println!("skipped the terminal half: script(1) is not installed");
            return;
        };
        let shown = String::from_utf8_lossy(&script.stdout);
        for total in [2, 3] {
            assert!(
                shown.contains(&session_cli::progress_line(total)),
                "no progress for {total} in {shown:?}"
            );
        }
        assert!(shown.contains(session_cli::PROGRESS_DONE), "{shown:?}");
        assert!(shown.contains("Removed 3 expired sessions."), "{shown:?}");
    });
}

#[test]
fn clearsessions_with_a_pause_between_batches_still_clears_every_expired_row() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (store, url) = sqlite_file(dir.path()).await;
        let past = OffsetDateTime::now_utc() - Duration::minutes(5);
        for _ in 0..5 {
            let key = SessionKey::generate().unwrap();
            store.save_row(key.as_str(), &data(), past).await.unwrap();
        }
        let live = SessionKey::generate().unwrap();
        let future = OffsetDateTime::now_utc() + Duration::minutes(5);
        store
            .save_row(live.as_str(), &data(), future)
            .await
            .unwrap();
        let out = sessions(
            &[
                "clearsessions",
                "--database-url",
                &url,
                "--batch-size",
                "2",
                "--pause-ms",
                "1",
            ],
            &[],
        );
        prints(&out, "Removed 5 expired sessions.");
        assert!(
            store.exists(&live).await.unwrap(),
            "a live session was cleared"
        );
    });
}

#[test]
fn a_batch_size_of_zero_is_a_usage_error() {
    let out = sessions(&["clearsessions", "--batch-size", "0"], &[]);
    assert_eq!(out.code, 2);
}
