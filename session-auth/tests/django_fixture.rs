//! Replays fixtures/django/auth-sessions.json (written by real Django 5.2, see
//! fixtures/django/generate_auth.py): Django's own auth_user / custom-model rows and the
//! django_session rows it wrote when it logged users in, on SQLite and, when their URLs are set,
//! PostgreSQL and MySQL/MariaDB. For every session our get_user must reach Django's verdict and
//! do to the session what Django's did; every password hash Django made must check as Django
//! checks it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use serde_json::Value as Json;
use session_auth::password::{self, PasswordConfig, PasswordHasher};
use session_auth::{Auth, AuthConfig, KeyKind, SqlUserSource, UserModel, UserPool};
use session_conformance::services;
use session_core::{SecretKey, Session, SessionConfig, SessionStore};
use session_db::{Backend, DbStore};
use sqlx::{AssertSqlSafe, Executor as _};

fn fixture() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/django/auth-sessions.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn session_config(fixture: &Json) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        secret_key_fallbacks: fixture["secret_key_fallbacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| SecretKey::from(k.as_str().unwrap()))
            .collect(),
        ..SessionConfig::new(fixture["secret_key"].as_str().unwrap())
    })
}

async fn exec(pool: &UserPool, sql: String) {
    let sql = AssertSqlSafe(sql);
    match pool {
        UserPool::Postgres(pool) => pool.execute(sql).await.map(drop),
        UserPool::MySql(pool) => pool.execute(sql).await.map(drop),
        UserPool::Sqlite(pool) => pool.execute(sql).await.map(drop),
        _ => unreachable!(),
    }
    .unwrap();
}

/// SQL text literal (the fixture's values hold no quotes, but escape anyway).
fn lit(value: &Json) -> String {
    match value {
        Json::String(s) => format!("'{}'", s.replace('\'', "''")),
        Json::Number(n) => n.to_string(),
        other => panic!("unexpected value {other}"),
    }
}

/// Loads one section (`auth_user` or `custom`) into `url` and checks every case.
async fn replay<B: Backend>(url: &str, section: &str) {
    let fixture = fixture();
    let data = &fixture[section];
    let config = session_config(&fixture);

    let sessions = DbStore::<B>::connect(url, &config)
        .await
        .unwrap()
        .with_table(&services::unique_name("django_session"))
        .unwrap();
    sessions.ensure_schema().await.unwrap();
    let session_table = sessions.table().to_owned();

    let user_table = services::unique_name(section);
    let model = if section == "custom" {
        UserModel::custom(&user_table, "uid")
            .with_key_kind(KeyKind::Text)
            .with_username_column(Some("email"))
            .with_is_active_column(None)
            .with_last_login_column(None)
    } else {
        UserModel::custom(&user_table, "id").with_last_login_column(None)
    };
    let users = SqlUserSource::connect(url, &model).await.unwrap();
    let mysql = matches!(users.pool(), UserPool::MySql(_));
    let q = |name: &str| {
        if mysql {
            format!("`{name}`")
        } else {
            format!("\"{name}\"")
        }
    };
    let bool_type = if mysql { "bool" } else { "boolean" };
    if section == "custom" {
        exec(users.pool(), format!(
            "CREATE TABLE {} (uid varchar(40) PRIMARY KEY, email varchar(254) NOT NULL, password varchar(128) NOT NULL)",
            q(&user_table)
        ))
        .await;
    } else {
        exec(users.pool(), format!(
            "CREATE TABLE {} (id integer PRIMARY KEY, username varchar(150) NOT NULL, password varchar(128) NOT NULL, is_active {bool_type} NOT NULL)",
            q(&user_table)
        ))
        .await;
    }
    for user in data["users"].as_array().unwrap() {
        let user = user.as_object().unwrap();
        let columns: Vec<&str> = user.keys().map(|k| k.as_str()).collect();
        let values: Vec<String> = user
            .iter()
            .map(|(column, value)| match (column.as_str(), value.as_i64()) {
                // SQLite stores Django's booleans as 0/1; write them as booleans everywhere.
                ("is_active", Some(flag)) => (if flag == 1 { "true" } else { "false" }).to_owned(),
                _ => lit(value),
            })
            .collect();
        exec(
            users.pool(),
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                q(&user_table),
                columns.iter().map(|c| q(c)).collect::<Vec<_>>().join(", "),
                values.join(", ")
            ),
        )
        .await;
    }
    // Django's rows byte for byte, alive far into the future.
    let far = if url.starts_with("postgres") {
        "'2099-01-01 00:00:00+00'"
    } else {
        "'2099-01-01 00:00:00'"
    };
    for row in data["sessions"].as_array().unwrap() {
        exec(
            users.pool(),
            format!(
                "INSERT INTO {} (session_key, session_data, expire_date) VALUES ({}, {}, {far})",
                q(&session_table),
                lit(&row["session_key"]),
                lit(&row["session_data"])
            ),
        )
        .await;
    }

    let store: Arc<dyn SessionStore> = Arc::new(sessions);
    // Django's signed_cookies engine: the key is the cookie, judged at the time Django signed it.
    let signed_at = data["cookies_signed_at"].as_u64().unwrap_or(0);
    let then = std::time::UNIX_EPOCH + std::time::Duration::from_secs(signed_at + 60);
    let cookies: Arc<dyn SessionStore> = Arc::new(
        session_cookie::CookieStore::new(&config)
            .unwrap()
            .with_clock(move || then),
    );
    let auth = Auth::new(Arc::new(users), &AuthConfig::default()).unwrap();
    let cases = data["cases"].as_object().unwrap();
    assert!(cases.len() >= 2);
    for (name, case) in cases {
        let key = case["session_key"].as_str().unwrap();
        let django = &case["django"];
        let cookie = case["engine"] == "cookie";
        let engine = if cookie { &cookies } else { &store };
        let session = Session::new(engine.clone(), config.clone(), Some(key));
        let user = auth.get_user(&session).await.unwrap();
        let context = format!("{url} {section}: {name}");
        assert_eq!(
            user.as_ref().map(|u| u.user.id.as_str()),
            django["user_id"].as_str(),
            "{context}: Django's request.user"
        );
        let after = session.key();
        assert_eq!(
            after.is_none(),
            django["flushed"].as_bool().unwrap(),
            "{context}: flushed"
        );
        if !cookie {
            // A signed cookie's key is its signed data, so whether Django's cycle_key changed it
            // depends on the second it re-signed in; the stored hash below says what matters.
            assert_eq!(
                after.as_ref().is_some_and(|k| k.as_str() != key),
                django["cycled"].as_bool().unwrap(),
                "{context}: key cycled"
            );
        }
        assert_eq!(
            session
                .get::<String>("_auth_user_hash")
                .await
                .unwrap()
                .as_deref(),
            django["hash_after"].as_str(),
            "{context}: the hash afterwards"
        );
        if django["flushed"].as_bool().unwrap() && !cookie {
            let old = session_core::SessionKey::from_client(key).unwrap();
            assert!(
                store.load(&old).await.unwrap().is_none(),
                "{context}: row deleted"
            );
        }
    }
}

#[tokio::test]
async fn django_logins_verify_here_on_sqlite() {
    for section in ["auth_user", "custom"] {
        // A file: the session store and the user source each have their own pool.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("site.db").display());
        replay::<sqlx::Sqlite>(&url, section).await;
    }
}

#[tokio::test]
async fn django_logins_verify_here_on_postgres() {
    if let Some(url) = services::url_or_skip(services::POSTGRES_URL, "django auth on postgres") {
        for section in ["auth_user", "custom"] {
            replay::<sqlx::Postgres>(&url, section).await;
        }
    }
}

#[tokio::test]
async fn django_logins_verify_here_on_mysql() {
    if let Some(url) = services::url_or_skip(services::MYSQL_URL, "django auth on mysql") {
        for section in ["auth_user", "custom"] {
            replay::<sqlx::MySql>(&url, section).await;
        }
    }
}

#[tokio::test]
async fn every_hash_django_makes_checks_as_django_checks_it() {
    let fixture = fixture();
    // The worker's PASSWORD_HASHERS: Django's defaults, then MD5 and plain bcrypt.
    let config = PasswordConfig {
        hashers: vec![
            PasswordHasher::Pbkdf2Sha256,
            PasswordHasher::Pbkdf2Sha1,
            PasswordHasher::Argon2,
            PasswordHasher::BCryptSha256,
            PasswordHasher::Scrypt,
            PasswordHasher::Md5,
            PasswordHasher::BCrypt,
        ],
        ..PasswordConfig::default()
    };
    let vectors = fixture["passwords"].as_array().unwrap();
    assert_eq!(vectors.len(), 8);
    for vector in vectors {
        let name = vector["hasher"].as_str().unwrap();
        let encoded = vector["encoded"].as_str().unwrap();
        let right = vector["password"].as_str().unwrap();
        let check = password::check_password(right, encoded, &config)
            .await
            .unwrap();
        assert_eq!(
            check.correct,
            vector["correct"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(
            check.must_update,
            vector["must_update"].as_bool().unwrap(),
            "{name}: must_update"
        );
        assert_eq!(
            password::must_update(encoded, &config),
            check.must_update,
            "{name}"
        );
        let wrong = password::check_password("letmein", encoded, &config)
            .await
            .unwrap();
        assert_eq!(
            wrong.correct,
            vector["wrong_password_correct"].as_bool().unwrap(),
            "{name}"
        );
    }
}
