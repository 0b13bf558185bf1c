//! End-to-end tests of `sessions whoami`, `revoke` and `list`: sessions logged in through session-auth (as Django
//! logs them in) on the db, file and cookie engines, users in a SQLite auth_user table, and on
//! PostgreSQL and MySQL/MariaDB when `SESSION_TEST_*_URL` name them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Stdio};
use std::sync::Arc;

use session_auth::{Auth, AuthConfig, SqlUserSource, User, UserModel, UserPool, UserSource};
use session_conformance::services::{self, MYSQL_URL, POSTGRES_URL};
use session_core::{Session, SessionConfig, SessionStore};
use session_db::{Backend, DbStore};
use sqlx::{AssertSqlSafe, Executor as _};

const KEY: &str = "whoami-secret";
const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn sessions(args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_sessions"))
        .args(args)
        .env_remove("SECRET_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("USER_DATABASE_URL")
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

#[track_caller]
fn verified(out: &Output, id: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (
            0,
            format!(
                "{{\"user_id\": \"{id}\", \"backend\": \"{MODEL_BACKEND}\", \"verified\": true}}\n"
            )
            .as_str(),
            ""
        )
    );
}

#[track_caller]
fn refused(out: &Output, contains: &str) {
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
    let line = out.stderr.strip_suffix('\n').expect("one line on stderr");
    assert!(!line.contains('\n'), "{line:?}");
    assert!(line.contains(contains), "{line:?} lacks {contains:?}");
}

/// A user table named `table` with ada (1, active), bob (2, inactive).
async fn users(url: &str, table: &str) -> SqlUserSource {
    let source = SqlUserSource::connect(url, &UserModel::custom(table, "id"))
        .await
        .unwrap();
    let (q, bool_type) = match source.pool() {
        UserPool::MySql(_) => ('`', "bool"),
        UserPool::Postgres(_) => ('"', "boolean"),
        _ => ('"', "bool"),
    };
    let ddl = format!(
        "CREATE TABLE {q}{table}{q} (id integer PRIMARY KEY, password varchar(128) NOT NULL, \
         last_login varchar(40) NULL, username varchar(150) NOT NULL, is_active {bool_type} NOT NULL)"
    );
    let insert = format!(
        "INSERT INTO {q}{table}{q} (id, password, username, is_active) VALUES \
         (1, 'md5$s$ada', 'ada', true), (2, 'md5$s$bob', 'bob', false)"
    );
    for sql in [ddl, insert] {
        let sql = AssertSqlSafe(sql);
        match source.pool() {
            UserPool::Postgres(pool) => pool.execute(sql).await.map(drop),
            UserPool::MySql(pool) => pool.execute(sql).await.map(drop),
            UserPool::Sqlite(pool) => pool.execute(sql).await.map(drop),
            _ => unreachable!(),
        }
        .unwrap();
    }
    source
}

/// Logs `user` in to a new session on `store` with `secret`; returns the session key.
async fn logged_in(store: Arc<dyn SessionStore>, secret: &str, user: &User) -> String {
    let config = Arc::new(SessionConfig::new(secret));
    let session = Session::new(store, config, None);
    let users = Arc::new(session_auth::MemoryUserSource::new());
    users.insert("u", user.clone());
    let auth = Auth::new(users, &AuthConfig::default()).unwrap();
    auth.login(&session, user, None).await.unwrap();
    session.save().await.unwrap();
    session.key().unwrap().as_str().to_owned()
}

async fn check_db_engine<B: Backend>(url: &str, user_url: &str, table: &str) {
    let config = SessionConfig::new(KEY);
    let store = DbStore::<B>::connect(url, &config)
        .await
        .unwrap()
        .with_table(&services::unique_name("django_session"))
        .unwrap();
    store.ensure_schema().await.unwrap();
    let session_table = store.table().to_owned();
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let users = users(user_url, table).await;
    let ada = users.user_by_id("1").await.unwrap().unwrap();
    let bob = users.user_by_id("2").await.unwrap().unwrap();
    let ada_key = logged_in(store.clone(), KEY, &ada).await;
    let bob_key = logged_in(store.clone(), KEY, &bob).await;
    let fallback_key = logged_in(store.clone(), "old-secret", &ada).await;

    let whoami = |key: &str, extra: &[&str]| {
        let mut args = vec![
            "whoami",
            "--engine",
            "db",
            "--table",
            &session_table,
            "--user-table",
            table,
        ];
        args.extend_from_slice(extra);
        args.push(key);
        sessions(
            &args,
            &[
                ("SECRET_KEY", KEY),
                ("DATABASE_URL", url),
                ("USER_DATABASE_URL", user_url),
            ],
        )
    };
    verified(&whoami(&ada_key, &[]), "1");
    refused(&whoami(&bob_key, &[]), "user \"2\" is inactive");
    // AllowAllUsersModelBackend serves inactive users; bob's session names ModelBackend, which is
    // then not configured.
    refused(
        &whoami(
            &bob_key,
            &[
                "--auth-backend",
                "django.contrib.auth.backends.AllowAllUsersModelBackend",
            ],
        ),
        "is not one of the configured authentication backends",
    );
    refused(&whoami(&fallback_key, &[]), "does not match");
    verified(
        &whoami(&fallback_key, &["--fallback-key", "old-secret"]),
        "1",
    );
    refused(&whoami("nosuchsessionkey", &[]), "no user");

    // A deleted user (ModelBackend.get_user finds nobody).
    let carol_key = logged_in(
        store.clone(),
        KEY,
        &User {
            id: "3".into(),
            password: "md5$s$carol".into(),
            is_active: true,
            backend: None,
        },
    )
    .await;
    refused(&whoami(&carol_key, &[]), "user \"3\" does not exist");

    users.set_password("1", "md5$s$changed").await.unwrap();
    refused(
        &whoami(&ada_key, &[]),
        "does not match (the password changed",
    );
    // whoami reports, it does not flush: the session is still there.
    let key = session_core::SessionKey::from_client(&ada_key).unwrap();
    assert!(store.load(&key).await.unwrap().is_some());
}

#[tokio::test]
async fn whoami_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("site.db").display());
    check_db_engine::<sqlx::Sqlite>(&url, &url, "auth_user").await;
}

#[tokio::test]
async fn whoami_on_postgres() {
    if let Some(url) = services::url_or_skip(POSTGRES_URL, "whoami on postgres") {
        check_db_engine::<sqlx::Postgres>(&url, &url, &services::unique_name("auth_user")).await;
    }
}

#[tokio::test]
async fn whoami_on_mysql() {
    if let Some(url) = services::url_or_skip(MYSQL_URL, "whoami on mysql") {
        check_db_engine::<sqlx::MySql>(&url, &url, &services::unique_name("auth_user")).await;
    }
}

#[tokio::test]
async fn whoami_reads_signed_cookie_and_file_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let user_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("users.db").display()
    );
    let users = users(&user_url, "auth_user").await;
    let ada = users.user_by_id("1").await.unwrap().unwrap();
    let config = SessionConfig::new(KEY);

    let cookie = logged_in(
        Arc::new(session_cookie::CookieStore::new(&config).unwrap()),
        KEY,
        &ada,
    )
    .await;
    let out = sessions(
        &["whoami", "--engine", "cookie", &cookie],
        &[("SECRET_KEY", KEY), ("USER_DATABASE_URL", &user_url)],
    );
    verified(&out, "1");

    let sessions_dir = dir.path().join("sessions");
    std::fs::create_dir(&sessions_dir).unwrap();
    let files = session_file::FileStore::builder(&config)
        .directory(&sessions_dir)
        .build()
        .await
        .unwrap();
    let key = logged_in(Arc::new(files), KEY, &ada).await;
    let out = sessions(
        &[
            "whoami",
            "--engine",
            "file",
            "--file-path",
            sessions_dir.to_str().unwrap(),
            &key,
        ],
        &[("SECRET_KEY", KEY), ("USER_DATABASE_URL", &user_url)],
    );
    verified(&out, "1");
}

#[test]
fn whoami_without_a_user_database_is_a_usage_error() {
    let out = sessions(
        &["whoami", "--engine", "cookie", "abcdefghijkl"],
        &[("SECRET_KEY", KEY)],
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("USER_DATABASE_URL"), "{}", out.stderr);
}

#[tokio::test]
async fn revoke_and_list_a_users_sessions_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("site.db").display());
    let config = SessionConfig::new(KEY);
    let store = session_db::SqliteStore::connect(&url, &config)
        .await
        .unwrap();
    store.ensure_schema().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let ada = User {
        id: "1".into(),
        password: "md5$s$ada".into(),
        is_active: true,
        backend: None,
    };
    let bob = User {
        id: "2".into(),
        ..ada.clone()
    };
    for user in [&ada, &ada, &ada, &bob] {
        logged_in(store.clone(), KEY, user).await;
    }
    let env = [("SECRET_KEY", KEY), ("DATABASE_URL", url.as_str())];
    let listed = sessions(&["list", "--engine", "db", "--user", "1"], &env);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    for line in lines {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(entry["key"].as_str().unwrap().ends_with('…'));
        assert!(entry["expire_date"].as_str().unwrap().ends_with("+00:00"));
        assert!(entry["last_change"].is_string());
    }
    let revoked = sessions(&["revoke", "--engine", "db", "--user", "1"], &env);
    assert_eq!((revoked.code, revoked.stdout.as_str()), (0, "3\n"));
    let after = sessions(&["list", "--engine", "db", "--user", "1"], &env);
    assert_eq!((after.code, after.stdout.as_str()), (0, ""));
    let bobs = sessions(&["list", "--engine", "db", "--user", "2"], &env);
    assert_eq!(bobs.stdout.lines().count(), 1);

    // Revoking on cached-db needs the cache (its copies must go too); files cannot be listed.
    let cached = sessions(&["revoke", "--engine", "cached-db", "--user", "1"], &env);
    assert_eq!(cached.code, 2);
    assert!(cached.stderr.contains("REDIS_URL"), "{}", cached.stderr);
    let cookie = sessions(&["list", "--engine", "cookie", "--user", "1"], &env);
    assert_eq!(cookie.code, 2);
    assert!(cookie.stderr.contains("browsers"), "{}", cookie.stderr);
    let index_only = sessions(
        &["list", "--engine", "db", "--index-only", "--user", "1"],
        &env,
    );
    assert_eq!(index_only.code, 2);
    assert!(
        index_only.stderr.contains("--index-table"),
        "{}",
        index_only.stderr
    );
}

fn ada_and_bob() -> (User, User) {
    let ada = User {
        id: "1".into(),
        password: "md5$s$ada".into(),
        is_active: true,
        backend: None,
    };
    let bob = User {
        id: "2".into(),
        ..ada.clone()
    };
    (ada, bob)
}

#[tokio::test]
async fn revoke_and_list_a_users_sessions_on_the_cache_engine() {
    let test = "revoke_and_list_a_users_sessions_on_the_cache_engine";
    let Some(redis_url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    use session_cache::{Cache, CacheStore, KeyFunction, RedisCache};
    // Pickled values, as Django's cache stores them.
    let config = SessionConfig {
        serializer: session_core::serializer::SerializerName::Pickle,
        ..SessionConfig::new(KEY)
    };
    let prefix = services::unique_name("djsession_cli");
    let cache = Cache::new(RedisCache::connect(&redis_url).await.unwrap())
        .with_key_function(KeyFunction::default().with_key_prefix(prefix.as_str()));
    let store: Arc<dyn SessionStore> = Arc::new(CacheStore::new(cache, &config).unwrap());
    let (ada, bob) = ada_and_bob();
    let config = Arc::new(config);
    let mut keys = Vec::new();
    for user in [&ada, &ada, &bob] {
        let session = Session::new(store.clone(), config.clone(), None);
        let auth = Auth::new(
            Arc::new(session_auth::MemoryUserSource::new()),
            &AuthConfig::default(),
        )
        .unwrap();
        auth.login(&session, user, None).await.unwrap();
        session.save().await.unwrap();
        keys.push(session.key().unwrap());
    }
    let env = [("SECRET_KEY", KEY), ("REDIS_URL", redis_url.as_str())];
    let args = |command: &'static str, user: &'static str| {
        [
            command,
            "--engine",
            "cache",
            "--serializer",
            "pickle",
            "--cache-key-prefix",
            prefix.as_str(),
            "--user",
            user,
        ]
    };
    let listed = sessions(&args("list", "1"), &env);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.stdout.lines().count(), 2);
    for line in listed.stdout.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(entry["key"].as_str().unwrap().ends_with('…'));
        assert!(entry["expire_date"].as_str().unwrap().ends_with("+00:00"));
        assert!(entry["last_change"].is_null());
    }
    let revoked = sessions(&args("revoke", "1"), &env);
    assert_eq!(
        (revoked.code, revoked.stdout.as_str()),
        (0, "2\n"),
        "{}",
        revoked.stderr
    );
    assert!(store.load(&keys[0]).await.unwrap().is_none());
    assert!(
        store.load(&keys[2]).await.unwrap().is_some(),
        "bob keeps his"
    );
    assert_eq!(sessions(&args("list", "1"), &env).stdout, "");
    assert_eq!(sessions(&args("list", "2"), &env).stdout.lines().count(), 1);
    // Another KEY_PREFIX is another site: nothing of ours there.
    let elsewhere = sessions(
        &[
            "list",
            "--engine",
            "cache",
            "--serializer",
            "pickle",
            "--user",
            "2",
        ],
        &env,
    );
    assert_eq!(
        (elsewhere.code, elsewhere.stdout.as_str()),
        (0, ""),
        "{}",
        elsewhere.stderr
    );
    store.delete(&keys[2]).await.unwrap(); // leave nothing behind in the shared Redis
}

#[tokio::test]
async fn revoke_on_cached_db_removes_the_cached_copies() {
    let test = "revoke_on_cached_db_removes_the_cached_copies";
    let Some(redis_url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    use session_cache::{Cache, KeyFunction, RedisCache};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("site.db").display());
    let config = SessionConfig::new(KEY);
    let db = session_db::SqliteStore::connect(&url, &config)
        .await
        .unwrap();
    db.ensure_schema().await.unwrap();
    let prefix = services::unique_name("djsession_cli");
    let cache = Cache::new(RedisCache::connect(&redis_url).await.unwrap())
        .with_key_function(KeyFunction::default().with_key_prefix(prefix.as_str()));
    let cached_db = session_cached_db::CachedDbStore::new(cache.clone(), db, &config).unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(cached_db);
    let (ada, bob) = ada_and_bob();
    let mut keys = Vec::new();
    for user in [&ada, &ada, &bob] {
        keys.push(logged_in(store.clone(), KEY, user).await);
    }
    let env = [
        ("SECRET_KEY", KEY),
        ("DATABASE_URL", url.as_str()),
        ("REDIS_URL", redis_url.as_str()),
    ];
    let args = |command: &'static str, user: &'static str| {
        [
            command,
            "--engine",
            "cached-db",
            "--cache-key-prefix",
            prefix.as_str(),
            "--user",
            user,
        ]
    };
    assert_eq!(sessions(&args("list", "1"), &env).stdout.lines().count(), 2);
    let revoked = sessions(&args("revoke", "1"), &env);
    assert_eq!(
        (revoked.code, revoked.stdout.as_str()),
        (0, "2\n"),
        "{}",
        revoked.stderr
    );
    for key in &keys[..2] {
        let key = session_core::SessionKey::new(key.as_str()).unwrap();
        assert!(
            store.load(&key).await.unwrap().is_none(),
            "not served from the cache"
        );
        let entry = format!(
            "{}{}",
            session_cached_db::CACHED_DB_KEY_PREFIX,
            key.as_str()
        );
        assert!(!cache.exists(&entry).await.unwrap());
    }
    let bobs = session_core::SessionKey::new(keys[2].as_str()).unwrap();
    assert!(store.load(&bobs).await.unwrap().is_some());
    store.delete(&bobs).await.unwrap(); // leave nothing behind in the shared Redis
}

#[tokio::test]
async fn revoke_and_list_a_users_sessions_on_the_file_engine() {
    let dir = tempfile::tempdir().unwrap();
    let config = SessionConfig::new(KEY);
    let files = session_file::FileStore::new(dir.path(), &config)
        .await
        .unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(files);
    let (ada, bob) = ada_and_bob();
    let mut keys = Vec::new();
    for user in [&ada, &ada, &bob] {
        keys.push(logged_in(store.clone(), KEY, user).await);
    }
    let path = dir.path().to_str().unwrap();
    let env = [("SECRET_KEY", KEY)];
    let args = |command: &'static str, user: &'static str| {
        [
            command,
            "--engine",
            "file",
            "--file-path",
            path,
            "--user",
            user,
        ]
    };
    let listed = sessions(&args("list", "1"), &env);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.stdout.lines().count(), 2);
    for line in listed.stdout.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(entry["key"].as_str().unwrap().ends_with('…'));
        assert!(entry["last_change"].is_string());
    }
    let revoked = sessions(&args("revoke", "1"), &env);
    assert_eq!(
        (revoked.code, revoked.stdout.as_str()),
        (0, "2\n"),
        "{}",
        revoked.stderr
    );
    for key in &keys[..2] {
        assert!(!dir.path().join(format!("sessionid{key}")).exists());
    }
    assert!(
        dir.path().join(format!("sessionid{}", keys[2])).exists(),
        "bob keeps his"
    );
    assert_eq!(sessions(&args("list", "1"), &env).stdout, "");
}
