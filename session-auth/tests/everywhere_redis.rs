//! Log out everywhere on the cache engine in Redis: RedisUserSessions lists and revokes a user's
//! sessions through the per-user set for logins made here and the SCAN for Django's (a pickled
//! value Django 5.2 wrote, from fixtures/django/cache-sessions.json).
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use base64::Engine as _;
use session_auth::everywhere::RedisUserSessions;
use session_auth::{Auth, AuthConfig, KeyKind, MemoryUserSource, User};
use session_cache::{Cache, CacheStore, RedisCache};
use session_conformance::services;
use session_core::serializer::SerializerName;
use session_core::{Session, SessionConfig, SessionKey, SessionStore};

fn user(id: &str) -> User {
    User {
        id: id.into(),
        password: format!("md5$s${id}"),
        is_active: true,
        backend: None,
    }
}

/// Django's own pickle of a session logged in as user 42 (cache engine, RedisCache).
fn django_logged_in_value() -> Vec<u8> {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/django/cache-sessions.json")).unwrap();
    let entry = fixture["django_wrote"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "logged_in_user")
        .unwrap();
    assert!(entry["data_json"].as_str().unwrap().contains("\"42\""));
    base64::engine::general_purpose::STANDARD
        .decode(entry["value_b64"].as_str().unwrap())
        .unwrap()
}

struct Fixture {
    redis: RedisCache,
    store: Arc<CacheStore>,
    config: Arc<SessionConfig>,
    auth: Auth,
    sessions: RedisUserSessions,
    prefix: String,
}

async fn fixture(url: &str) -> Fixture {
    let config = Arc::new(SessionConfig {
        serializer: SerializerName::Pickle,
        ..SessionConfig::new("everywhere-secret")
    });
    let redis = RedisCache::connect(url).await.unwrap();
    let prefix = services::unique_name("djsession_everywhere");
    let cache = Cache::new(redis.clone()).with_key_prefix(&prefix);
    let store = Arc::new(CacheStore::new(cache, &config).unwrap());
    let auth = Auth::new(Arc::new(MemoryUserSource::new()), &AuthConfig::default()).unwrap();
    let sessions = RedisUserSessions::new(redis.clone(), &store, KeyKind::Integer, &config)
        .unwrap()
        .with_batch_size(3);
    Fixture {
        redis,
        store,
        config,
        auth,
        sessions,
        prefix,
    }
}

impl Fixture {
    async fn login(&self, id: &str, indexed: bool) -> SessionKey {
        let session = Session::new(self.store.clone(), self.config.clone(), None);
        self.auth.login(&session, &user(id), None).await.unwrap();
        session.save().await.unwrap();
        if indexed {
            self.sessions.record(&session, id).await.unwrap();
        }
        session.key().unwrap()
    }

    async fn members(&self, id: &str) -> Vec<String> {
        let mut members: Vec<String> = self
            .redis
            .command(redis::cmd("SMEMBERS").arg(self.sessions.set_key(id)))
            .await
            .unwrap();
        members.sort();
        members
    }

    async fn ttl(&self, key: &str) -> i64 {
        self.redis
            .command(redis::cmd("TTL").arg(key))
            .await
            .unwrap()
    }

    async fn cleanup(&self) {
        let keys: Vec<String> = self
            .redis
            .command(redis::cmd("KEYS").arg(format!("{}:*", self.prefix)))
            .await
            .unwrap();
        for key in keys {
            let _: u64 = self
                .redis
                .command(redis::cmd("DEL").arg(key))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn revoking_a_user_on_redis_removes_their_sessions_only() {
    let test = "revoking_a_user_on_redis_removes_their_sessions_only";
    let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    let f = fixture(&url).await;
    // User 42: two logins made here (in the set), three as Django makes them (no set entry),
    // one of them the very bytes Django 5.2 wrote.
    let indexed = [f.login("42", true).await, f.login("42", true).await];
    let mut unindexed = vec![f.login("42", false).await, f.login("42", false).await];
    let django_key = SessionKey::generate().unwrap();
    let _: () = f
        .redis
        .command(
            redis::cmd("SET")
                .arg(f.store.physical_key(&django_key))
                .arg(django_logged_in_value())
                .arg("EX")
                .arg(1_209_600),
        )
        .await
        .unwrap();
    unindexed.push(django_key);
    // User 7, an anonymous session, and a non-session key under the same cache prefix.
    let sevens = [f.login("7", true).await, f.login("7", false).await];
    let anonymous = Session::new(f.store.clone(), f.config.clone(), None);
    anonymous.insert("cart", "x").await.unwrap();
    anonymous.save().await.unwrap();
    let other = f.store.cache().make_key("not-a-session");
    let _: () = f
        .redis
        .command(redis::cmd("SET").arg(&other).arg("v"))
        .await
        .unwrap();

    // The set is in the cache's key layout and lives at least as long as the sessions.
    assert_eq!(
        f.sessions.set_key("42"),
        format!("{}:1:djsession.auth.user_sessions:42", f.prefix)
    );
    let mut expected: Vec<String> = indexed.iter().map(|k| k.as_str().to_owned()).collect();
    expected.sort();
    assert_eq!(f.members("42").await, expected);
    assert!(f.ttl(&f.sessions.set_key("42")).await >= 1_209_590);

    let listed = f.sessions.list("42").await.unwrap();
    assert_eq!(listed.len(), 5, "2 indexed + 3 scanned");
    let now = time::OffsetDateTime::now_utc();
    for entry in &listed {
        assert!(entry.key.ends_with('…') && entry.key.chars().count() < 10);
        let left = (entry.expire_date - now).whole_seconds();
        assert!((1_209_500..=1_209_600).contains(&left), "{left}");
        assert_eq!(entry.last_change, None);
    }
    assert_eq!(f.sessions.list("7").await.unwrap().len(), 2);

    // Without the scan only the set's sessions are found.
    let index_only = RedisUserSessions::new(f.redis.clone(), &f.store, KeyKind::Integer, &f.config)
        .unwrap()
        .with_scan(false);
    assert_eq!(index_only.list("42").await.unwrap().len(), 2);

    assert_eq!(f.sessions.revoke("42").await.unwrap(), 5);
    for key in indexed.iter().chain(&unindexed) {
        assert!(f.store.load(key).await.unwrap().is_none());
    }
    assert!(f.members("42").await.is_empty(), "the set goes too");
    for key in &sevens {
        assert!(
            f.store.load(key).await.unwrap().is_some(),
            "user 7 keeps theirs"
        );
    }
    assert!(
        f.store
            .load(&anonymous.key().unwrap())
            .await
            .unwrap()
            .is_some()
    );
    let kept: Option<String> = f
        .redis
        .command(redis::cmd("GET").arg(&other))
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("v"));
    assert_eq!(f.sessions.revoke("42").await.unwrap(), 0);
    f.cleanup().await;
}

#[tokio::test]
async fn the_user_set_follows_logout_expiry_and_reuse() {
    let test = "the_user_set_follows_logout_expiry_and_reuse";
    let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    let f = fixture(&url).await;
    let sessions = RedisUserSessions::new(f.redis.clone(), &f.store, KeyKind::Integer, &f.config)
        .unwrap()
        .with_scan(false);
    let kept = f.login("5", true).await;
    let logged_out = f.login("5", true).await;
    let expired = f.login("5", true).await;
    let reused = f.login("5", true).await;
    assert_eq!(f.members("5").await.len(), 4);

    // Logout: forget, then flush, as the docs say.
    let session = Session::new(f.store.clone(), f.config.clone(), Some(logged_out.as_str()));
    sessions.forget(&logged_out, "5").await.unwrap();
    f.auth.logout(&session).await.unwrap();
    assert_eq!(f.members("5").await.len(), 3);

    // Expiry (the entry is gone, its member stays until pruned) and a key now holding someone else.
    assert!(
        f.store
            .cache()
            .delete(&f.store.cache_key(&expired))
            .await
            .unwrap()
    );
    let session = Session::new(f.store.clone(), f.config.clone(), Some(reused.as_str()));
    session.insert("_auth_user_id", "6").await.unwrap();
    session.save().await.unwrap();

    let listed = sessions.list("5").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, kept.redacted());
    assert_eq!(f.members("5").await, [kept.as_str().to_owned()], "pruned");
    assert_eq!(sessions.revoke("5").await.unwrap(), 1);
    assert!(
        f.store.load(&reused).await.unwrap().is_some(),
        "user 6's now"
    );

    // A shorter session never shortens the set's lifetime.
    let long = f.login("8", true).await;
    let before = f.ttl(&f.sessions.set_key("8")).await;
    let short = Session::new(f.store.clone(), f.config.clone(), None);
    f.auth.login(&short, &user("8"), None).await.unwrap();
    short
        .set_expiry(session_core::Expiry::Seconds(60))
        .await
        .unwrap();
    short.save().await.unwrap();
    sessions.record(&short, "8").await.unwrap();
    assert!(f.ttl(&f.sessions.set_key("8")).await >= before - 2);
    assert_eq!(f.members("8").await.len(), 2);
    let _ = long;
    f.cleanup().await;
}

#[tokio::test]
async fn on_a_redis_cluster_the_user_set_works_and_the_scan_is_refused() {
    let test = "on_a_redis_cluster_the_user_set_works_and_the_scan_is_refused";
    let Some(urls) = services::url_or_skip(services::REDIS_CLUSTER_URLS, test) else {
        return;
    };
    let f = fixture(&urls).await;
    assert!(f.redis.is_cluster());
    // Keys spread over the cluster's slots: the set and each session entry are single-key commands.
    let keys = [
        f.login("3", true).await,
        f.login("3", true).await,
        f.login("3", true).await,
    ];
    let other = f.login("4", true).await;
    let scanning = f.sessions.list("3").await;
    assert!(
        matches!(&scanning, Err(session_auth::AuthError::Config(m)) if m.contains("with_scan(false)")),
        "{scanning:?}"
    );
    let sessions = RedisUserSessions::new(f.redis.clone(), &f.store, KeyKind::Integer, &f.config)
        .unwrap()
        .with_scan(false);
    assert_eq!(sessions.list("3").await.unwrap().len(), 3);
    assert_eq!(sessions.revoke("3").await.unwrap(), 3);
    for key in &keys {
        assert!(f.store.load(key).await.unwrap().is_none());
    }
    assert!(f.store.load(&other).await.unwrap().is_some());
    assert_eq!(sessions.revoke("4").await.unwrap(), 1);
}
