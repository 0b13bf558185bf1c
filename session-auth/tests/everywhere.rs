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

/// cached_db: revoking deletes the rows and their cache entries, so a revoked session is not
/// served from the cache afterwards (it would be without `with_cache`).
async fn cached_db_scenario<B: Backend>(db_url: &str, redis_url: &str)
where
    UserPool: From<sqlx::Pool<B>>,
    DbStore<B>: SessionStore,
{
    use session_cache::{Cache, RedisCache};
    use session_cached_db::CachedDbStore;

    let config = Arc::new(SessionConfig::new("everywhere-secret"));
    let db = DbStore::<B>::connect(db_url, &config)
        .await
        .unwrap()
        .with_table(&services::unique_name("django_session"))
        .unwrap();
    db.ensure_schema().await.unwrap();
    let (table, pool) = (db.table().to_owned(), db.pool().clone());
    let cache = Cache::new(RedisCache::connect(redis_url).await.unwrap())
        .with_key_prefix(services::unique_name("djsession_everywhere"));
    let cached_db = CachedDbStore::new(cache, db, &config).unwrap();
    let (cache, prefix) = (
        cached_db.cache().clone(),
        cached_db.session_key_prefix().to_owned(),
    );
    assert_eq!(prefix, session_cached_db::CACHED_DB_KEY_PREFIX);
    let store: Arc<dyn SessionStore> = Arc::new(cached_db);
    let auth = Auth::new(Arc::new(MemoryUserSource::new()), &AuthConfig::default()).unwrap();
    let login = |id: &'static str| {
        let (store, config, auth) = (store.clone(), config.clone(), auth.clone());
        async move {
            let session = Session::new(store, config, None);
            auth.login(&session, &user(id), None).await.unwrap();
            session.save().await.unwrap();
            session.key().unwrap()
        }
    };
    let first = [login("1").await, login("1").await];
    let second = [login("1").await];
    let other = login("2").await;
    for key in first.iter().chain(&second) {
        assert!(
            cache
                .exists(&format!("{prefix}{}", key.as_str()))
                .await
                .unwrap(),
            "cached"
        );
    }

    // Without the cache, only the rows go: the cached copies are still served.
    let rows_only = UserSessions::new(pool.clone(), &table, KeyKind::Integer, &config).unwrap();
    let with_cache = UserSessions::new(pool, &table, KeyKind::Integer, &config)
        .unwrap()
        .with_cache(cache.clone(), &prefix);
    assert_eq!(with_cache.list("1").await.unwrap().len(), 3);
    assert_eq!(rows_only.revoke("1").await.unwrap(), 3);
    assert!(
        store.load(&first[0]).await.unwrap().is_some(),
        "stale cached copy"
    );

    // With the cache: the rows and the entries go.
    let third = login("1").await;
    assert_eq!(with_cache.revoke("1").await.unwrap(), 1);
    assert!(
        store.load(&third).await.unwrap().is_none(),
        "not served from the cache"
    );
    assert!(
        !cache
            .exists(&format!("{prefix}{}", third.as_str()))
            .await
            .unwrap()
    );
    assert!(
        store.load(&other).await.unwrap().is_some(),
        "user 2 keeps theirs"
    );
    // Leave nothing behind in the shared Redis (the stale copies above included).
    for key in first.iter().chain(&second).chain([&other]) {
        cache
            .delete(&format!("{prefix}{}", key.as_str()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn revoking_on_cached_db_removes_cached_copies_too_on_sqlite() {
    let test = "revoking_on_cached_db_removes_cached_copies_too_on_sqlite";
    let Some(redis) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    cached_db_scenario::<sqlx::Sqlite>(&url, &redis).await;
}

#[tokio::test]
async fn revoking_on_cached_db_removes_cached_copies_too_on_postgres() {
    let test = "revoking_on_cached_db_removes_cached_copies_too_on_postgres";
    let Some(redis) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    if let Some(url) = services::url_or_skip(services::POSTGRES_URL, test) {
        cached_db_scenario::<sqlx::Postgres>(&url, &redis).await;
    }
}

/// Django's documented custom session model: `account_id = IntegerField(null=True,
/// db_index=True)`, filled with `int(data.get("_auth_user_id"))` or NULL.
#[derive(Debug, Clone, Copy)]
struct CustomSession;

impl session_db::SessionModel for CustomSession {
    fn extra_columns(&self) -> &[session_db::ExtraColumn] {
        const COLUMNS: &[session_db::ExtraColumn] =
            &[
                session_db::ExtraColumn::new("account_id", session_db::ColumnType::Integer)
                    .nullable()
                    .indexed(),
            ];
        COLUMNS
    }

    fn values(&self, data: &session_core::Dict) -> Vec<session_db::ColumnValue> {
        let account = match data.get("_auth_user_id") {
            Some(session_core::Value::Str(s)) => s.trim().parse::<i64>().ok(),
            Some(session_core::Value::Int(i)) => i.as_i64(),
            _ => None,
        };
        vec![account.into()]
    }
}

/// With a custom session model's user column, list and revoke query that column: a row whose
/// column was cleared is not found (the scan would have found it), and the others are.
async fn user_column_scenario<B: Backend>(url: &str)
where
    UserPool: From<sqlx::Pool<B>>,
    DbStore<B, CustomSession>: SessionStore,
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    B::Arguments: sqlx::IntoArguments<B>,
    for<'q> &'q str: sqlx::Encode<'q, B> + sqlx::Type<B>,
{
    let config = Arc::new(SessionConfig::new("everywhere-secret"));
    let store = DbStore::<B, CustomSession>::connect_with_model(url, CustomSession, &config)
        .await
        .unwrap()
        .with_table(&services::unique_name("custom_session"))
        .unwrap();
    store.ensure_schema().await.unwrap();
    let (table, pool) = (store.table().to_owned(), store.pool().clone());
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let auth = Auth::new(Arc::new(MemoryUserSource::new()), &AuthConfig::default()).unwrap();
    let login = |id: &'static str| {
        let (store, config, auth) = (store.clone(), config.clone(), auth.clone());
        async move {
            let session = Session::new(store, config, None);
            auth.login(&session, &user(id), None).await.unwrap();
            session.save().await.unwrap();
            session.key().unwrap()
        }
    };
    let ones = [login("1").await, login("1").await, login("1").await];
    let two = login("2").await;

    let by_column = UserSessions::new(pool.clone(), &table, KeyKind::Integer, &config)
        .unwrap()
        .with_user_column(&CustomSession, "account_id")
        .unwrap();
    assert_eq!(by_column.list("1").await.unwrap().len(), 3, "{url}");
    assert!(by_column.list("not a number").await.unwrap().is_empty());

    // Clear one row's column behind the model's back: the column query no longer sees it.
    let sql = format!(
        "UPDATE {} SET account_id = NULL WHERE session_key = {}",
        pool_dialect_quote::<B>(&table),
        if url.starts_with("postgres") {
            "$1"
        } else {
            "?"
        }
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ones[2].as_str())
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(by_column.list("1").await.unwrap().len(), 2);
    let scanning = UserSessions::new(pool.clone(), &table, KeyKind::Integer, &config).unwrap();
    assert_eq!(
        scanning.list("1").await.unwrap().len(),
        3,
        "the scan still finds it"
    );

    assert_eq!(by_column.revoke("1").await.unwrap(), 2);
    assert!(store.load(&ones[0]).await.unwrap().is_none());
    assert!(
        store.load(&ones[2]).await.unwrap().is_some(),
        "not in the column"
    );
    assert!(
        store.load(&two).await.unwrap().is_some(),
        "user 2 keeps theirs"
    );

    // Unusable columns are refused up front.
    for column in ["nope", "session_data"] {
        let refused = UserSessions::new(pool.clone(), &table, KeyKind::Integer, &config)
            .unwrap()
            .with_user_column(&CustomSession, column);
        assert!(
            matches!(refused, Err(session_auth::AuthError::Config(_))),
            "{column}"
        );
    }
}

/// The table name quoted as each database quotes identifiers.
fn pool_dialect_quote<B: Backend>(name: &str) -> String {
    if std::any::type_name::<B>().contains("MySql") {
        format!("`{name}`")
    } else {
        format!("\"{name}\"")
    }
}

#[tokio::test]
async fn a_custom_session_models_user_column_finds_the_sessions_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    user_column_scenario::<sqlx::Sqlite>(&url).await;
}

#[tokio::test]
async fn a_custom_session_models_user_column_finds_the_sessions_on_postgres() {
    let test = "a_custom_session_models_user_column_finds_the_sessions_on_postgres";
    if let Some(url) = services::url_or_skip(services::POSTGRES_URL, test) {
        user_column_scenario::<sqlx::Postgres>(&url).await;
    }
}

#[tokio::test]
async fn a_custom_session_models_user_column_finds_the_sessions_on_mysql() {
    let test = "a_custom_session_models_user_column_finds_the_sessions_on_mysql";
    if let Some(url) = services::url_or_skip(services::MYSQL_URL, test) {
        user_column_scenario::<sqlx::MySql>(&url).await;
    }
}
