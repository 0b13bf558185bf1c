//! Log out everywhere: UserSessions lists and revokes a user's sessions in django_session,
//! through the index for logins made here and the scan for Django's, on SQLite, PostgreSQL and
//! MySQL/MariaDB.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use session_auth::everywhere::{DEFAULT_INDEX_TABLE, UserSessions};
use session_auth::{Auth, AuthConfig, KeyKind, MemoryUserSource, User, UserPool};
use session_conformance::services;
use session_core::{Expiry, Session, SessionConfig, SessionStore};
use session_db::{Backend, DbStore};

fn user(id: &str) -> User {
    User {
        id: id.into(),
        password: format!("md5$s${id}"),
        is_active: true,
        backend: None,
    }
}

async fn scenario<B: Backend>(url: &str)
where
    UserPool: From<sqlx::Pool<B>>,
{
    let config = Arc::new(SessionConfig::new("everywhere-secret"));
    let store = DbStore::<B>::connect(url, &config)
        .await
        .unwrap()
        .with_table(&services::unique_name("django_session"))
        .unwrap();
    store.ensure_schema().await.unwrap();
    let table = store.table().to_owned();
    let pool = store.pool().clone();
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let users = Arc::new(MemoryUserSource::new());
    let auth = Auth::new(users, &AuthConfig::default()).unwrap();
    let index = services::unique_name(DEFAULT_INDEX_TABLE);
    let sessions = UserSessions::new(pool, &table, KeyKind::Integer, &config)
        .unwrap()
        .with_index(&index)
        .unwrap()
        .with_batch_size(2);
    sessions.ensure_index().await.unwrap();

    let login = |id: &'static str, indexed: bool, expired: bool| {
        let (store, config, auth, sessions) =
            (store.clone(), config.clone(), auth.clone(), &sessions);
        async move {
            let session = Session::new(store, config, None);
            auth.login(&session, &user(id), None).await.unwrap();
            if expired {
                session.set_expiry(Expiry::Seconds(-10)).await.unwrap();
            }
            session.save().await.unwrap();
            if indexed {
                sessions.record(&session, id).await.unwrap();
            }
            session.key().unwrap()
        }
    };
    // User 1: three logins as Django makes them (no index), two made here (indexed), one expired.
    for _ in 0..3 {
        login("1", false, false).await;
    }
    let indexed = [login("1", true, false).await, login("1", true, false).await];
    login("1", false, true).await;
    // User 2, an anonymous session, and one whose data does not verify.
    let bobs = [
        login("2", false, false).await,
        login("2", true, false).await,
    ];
    let anonymous = Session::new(store.clone(), config.clone(), None);
    anonymous.insert("cart", "x").await.unwrap();
    anonymous.save().await.unwrap();

    let listed = sessions.list("1").await.unwrap();
    assert_eq!(
        listed.len(),
        5,
        "{url}: 3 scanned + 2 indexed, not the expired one"
    );
    for entry in &listed {
        assert!(
            entry.key.ends_with('…') && entry.key.chars().count() < 10,
            "redacted"
        );
        assert!(entry.expire_date > time::OffsetDateTime::now_utc());
        let changed = entry.last_change.unwrap();
        assert!(
            (time::OffsetDateTime::now_utc() - changed)
                .whole_seconds()
                .abs()
                < 120
        );
    }
    assert_eq!(sessions.list("2").await.unwrap().len(), 2);

    // Without the scan only the indexed logins are found.
    let index_only = UserSessions::new(
        UserPool::from(sqlx::Pool::<B>::connect_lazy(url).unwrap()),
        &table,
        KeyKind::Integer,
        &config,
    )
    .unwrap()
    .with_index(&index)
    .unwrap()
    .with_scan(false);
    assert_eq!(index_only.list("1").await.unwrap().len(), 2);

    assert_eq!(sessions.revoke("1").await.unwrap(), 5, "{url}");
    assert!(sessions.list("1").await.unwrap().is_empty());
    for key in &indexed {
        assert!(store.load(key).await.unwrap().is_none());
    }
    for key in &bobs {
        assert!(
            store.load(key).await.unwrap().is_some(),
            "user 2 keeps their sessions"
        );
    }
    assert!(
        store
            .load(&anonymous.key().unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(sessions.revoke("1").await.unwrap(), 0);

    // Logging out here drops the index entry with the session.
    let later = Session::new(store.clone(), config.clone(), Some(bobs[1].as_str()));
    sessions.forget(&bobs[1]).await.unwrap();
    auth.logout(&later).await.unwrap();
    assert_eq!(sessions.list("2").await.unwrap().len(), 1);
}

#[tokio::test]
async fn revoking_a_user_removes_their_sessions_only_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    scenario::<sqlx::Sqlite>(&url).await;
}

#[tokio::test]
async fn revoking_a_user_removes_their_sessions_only_on_postgres() {
    if let Some(url) = services::url_or_skip(services::POSTGRES_URL, "everywhere on postgres") {
        scenario::<sqlx::Postgres>(&url).await;
    }
}

#[tokio::test]
async fn revoking_a_user_removes_their_sessions_only_on_mysql() {
    if let Some(url) = services::url_or_skip(services::MYSQL_URL, "everywhere on mysql") {
        scenario::<sqlx::MySql>(&url).await;
    }
}
