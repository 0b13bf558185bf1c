//! get_user, login, logout, update_session_auth_hash and authenticate do to the session exactly
//! what django.contrib.auth 5.2 does (the table in the crate docs), over in-memory users and
//! sessions.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use session_auth::password::{self, PasswordConfig, PasswordHasher};
use session_auth::{
    Anonymous, Auth, AuthBackend, AuthConfig, AuthError, HashMatch, MemoryUserSource, SessionUser,
    User, session_auth_hash,
};
use session_core::{MemoryStore, SecretKey, Session, SessionConfig, SessionStore, Value};

const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

struct World {
    users: Arc<MemoryUserSource>,
    auth: Auth,
    store: Arc<MemoryStore>,
    config: Arc<SessionConfig>,
}

fn fast() -> PasswordConfig {
    PasswordConfig {
        iterations: 1_000,
        hashers: vec![
            PasswordHasher::Pbkdf2Sha256,
            PasswordHasher::Pbkdf2Sha1,
            PasswordHasher::Md5,
        ],
    }
}

fn user(id: &str, password: &str) -> User {
    User {
        id: id.into(),
        password: password.into(),
        is_active: true,
        backend: None,
    }
}

fn world_with(auth_config: AuthConfig, secret: &str, fallbacks: &[&str]) -> World {
    let users = Arc::new(MemoryUserSource::new());
    users.insert("ada", user("1", "md5$salt$ada-hash"));
    users.insert("bob", user("2", "md5$salt$bob-hash"));
    let auth = Auth::new(users.clone(), &auth_config).unwrap();
    let config = Arc::new(SessionConfig {
        secret_key_fallbacks: fallbacks.iter().map(|k| SecretKey::from(*k)).collect(),
        ..SessionConfig::new(secret)
    });
    World {
        users,
        auth,
        store: Arc::new(MemoryStore::new()),
        config,
    }
}

fn world() -> World {
    world_with(
        AuthConfig {
            passwords: fast(),
            ..AuthConfig::default()
        },
        "current-secret",
        &["old-secret"],
    )
}

impl World {
    /// A stored session holding `data`, as a new request presenting its key sees it.
    async fn stored(&self, data: &[(&str, Value)]) -> Session {
        let session = Session::new(self.store.clone(), self.config.clone(), None);
        for (key, value) in data {
            session.insert_value(*key, value.clone()).await.unwrap();
        }
        session.save().await.unwrap();
        let key = session.key().unwrap();
        Session::new(self.store.clone(), self.config.clone(), Some(key.as_str()))
    }

    /// A session Django logged user `id` in to, its hash made with `secret`.
    async fn logged_in(&self, id: &str, password: &str, secret: &str) -> Session {
        self.stored(&[
            ("_auth_user_id", id.into()),
            ("_auth_user_backend", MODEL_BACKEND.into()),
            (
                "_auth_user_hash",
                session_auth_hash(password, &SecretKey::from(secret)).into(),
            ),
            ("cart", "3 apples".into()),
        ])
        .await
    }

    async fn exists(&self, session_key: &str) -> bool {
        let key = session_core::SessionKey::from_client(session_key).unwrap();
        self.store.load(&key).await.unwrap().is_some()
    }
}

#[tokio::test]
async fn a_session_hashed_with_the_current_secret_is_its_user_and_is_left_alone() {
    let w = world();
    let session = w
        .logged_in("1", "md5$salt$ada-hash", "current-secret")
        .await;
    let key = session.key();
    let found = w.auth.get_user(&session).await.unwrap().expect("ada");
    assert_eq!(found.user.id, "1");
    assert_eq!(found.backend, MODEL_BACKEND);
    assert_eq!(found.verified_with, HashMatch::Current);
    assert_eq!(session.key(), key);
    assert!(!session.modified());
}

#[tokio::test]
async fn a_fallback_match_cycles_the_key_and_rewrites_the_hash_under_the_current_secret() {
    let w = world();
    let session = w.logged_in("1", "md5$salt$ada-hash", "old-secret").await;
    let old_key = session.key().unwrap();
    let found = w.auth.get_user(&session).await.unwrap().expect("ada");
    assert_eq!(found.verified_with, HashMatch::Fallback(0));
    let new_key = session.key().unwrap();
    assert_ne!(new_key, old_key, "the key is cycled");
    assert!(!w.exists(old_key.as_str()).await, "the old record is gone");
    assert_eq!(
        session.get::<String>("_auth_user_hash").await.unwrap(),
        Some(session_auth_hash(
            "md5$salt$ada-hash",
            &SecretKey::from("current-secret")
        ))
    );
    assert_eq!(
        session.get::<String>("cart").await.unwrap().as_deref(),
        Some("3 apples"),
        "data survives the cycle"
    );
    session.save().await.unwrap();
    // Next request: verified with the current key, nothing changes any more.
    let next = Session::new(w.store.clone(), w.config.clone(), Some(new_key.as_str()));
    let again = w.auth.get_user(&next).await.unwrap().unwrap();
    assert_eq!(again.verified_with, HashMatch::Current);
}

#[tokio::test]
async fn a_changed_password_flushes_the_session() {
    let w = world();
    let session = w
        .logged_in("1", "md5$salt$ada-hash", "current-secret")
        .await;
    let key = session.key().unwrap();
    w.users.insert("ada", user("1", "md5$salt$new-hash"));
    assert_eq!(
        w.auth.inspect(&session).await.unwrap(),
        SessionUser::Anonymous(Anonymous::HashMismatch { id: "1".into() })
    );
    assert!(w.exists(key.as_str()).await, "inspect changes nothing");
    assert!(w.auth.get_user(&session).await.unwrap().is_none());
    assert!(session.key().is_none());
    assert!(session.is_empty());
    assert!(
        !w.exists(key.as_str()).await,
        "flushed: the record is deleted"
    );
}

#[tokio::test]
async fn a_missing_or_empty_hash_flushes_even_with_fallbacks() {
    let w = world();
    for hash in [None, Some(Value::from("")), Some(Value::Null)] {
        let mut data = vec![
            ("_auth_user_id", Value::from("1")),
            ("_auth_user_backend", Value::from(MODEL_BACKEND)),
        ];
        if let Some(hash) = hash.clone() {
            data.push(("_auth_user_hash", hash));
        }
        let session = w.stored(&data).await;
        let key = session.key().unwrap();
        assert!(
            w.auth.get_user(&session).await.unwrap().is_none(),
            "{hash:?}"
        );
        assert!(!w.exists(key.as_str()).await, "{hash:?}: flushed");
    }
}

#[tokio::test]
async fn no_user_an_unknown_backend_or_a_deleted_user_is_anonymous_without_a_flush() {
    let w = world();
    let ada_hash = session_auth_hash("md5$salt$ada-hash", &SecretKey::from("current-secret"));
    let cases: Vec<(Vec<(&str, Value)>, Anonymous)> = vec![
        (vec![("cart", "x".into())], Anonymous::NoUser),
        (
            vec![
                ("_auth_user_id", "1".into()),
                ("_auth_user_hash", ada_hash.clone().into()),
            ],
            Anonymous::NoUser,
        ),
        (
            vec![
                ("_auth_user_id", "1".into()),
                ("_auth_user_backend", "myapp.backends.Token".into()),
                ("_auth_user_hash", ada_hash.clone().into()),
            ],
            Anonymous::UnknownBackend {
                backend: "myapp.backends.Token".into(),
            },
        ),
        (
            vec![
                ("_auth_user_id", "99".into()),
                ("_auth_user_backend", MODEL_BACKEND.into()),
                ("_auth_user_hash", ada_hash.clone().into()),
            ],
            Anonymous::UserGone { id: "99".into() },
        ),
    ];
    for (data, reason) in cases {
        let session = w.stored(&data).await;
        let key = session.key().unwrap();
        assert_eq!(
            w.auth.inspect(&session).await.unwrap(),
            SessionUser::Anonymous(reason.clone())
        );
        assert!(w.auth.get_user(&session).await.unwrap().is_none());
        assert_eq!(session.key(), Some(key.clone()), "{reason:?}: not flushed");
        assert!(w.exists(key.as_str()).await);
    }
}

#[tokio::test]
async fn model_backend_refuses_inactive_users_and_allow_all_users_model_backend_serves_them() {
    let w = world();
    w.users.set_active("1", false);
    let session = w
        .logged_in("1", "md5$salt$ada-hash", "current-secret")
        .await;
    assert_eq!(
        w.auth.inspect(&session).await.unwrap(),
        SessionUser::Anonymous(Anonymous::Inactive { id: "1".into() })
    );
    assert!(w.auth.get_user(&session).await.unwrap().is_none());
    assert!(session.key().is_some(), "refused, not flushed");

    let allow_all = world_with(
        AuthConfig {
            backends: vec![
                AuthBackend::model_backend(),
                AuthBackend::allow_all_users_model_backend(),
            ],
            passwords: fast(),
            ..AuthConfig::default()
        },
        "current-secret",
        &[],
    );
    allow_all.users.set_active("1", false);
    let session = allow_all
        .stored(&[
            ("_auth_user_id", "1".into()),
            (
                "_auth_user_backend",
                "django.contrib.auth.backends.AllowAllUsersModelBackend".into(),
            ),
            (
                "_auth_user_hash",
                session_auth_hash("md5$salt$ada-hash", &SecretKey::from("current-secret")).into(),
            ),
        ])
        .await;
    let found = allow_all.auth.get_user(&session).await.unwrap().unwrap();
    assert!(!found.user.is_active);
}

#[tokio::test]
async fn an_unparsable_user_id_is_an_error_as_in_django() {
    let w = world();
    for id in [Value::from("abc"), Value::from(1.5), Value::Bool(true)] {
        let session = w
            .stored(&[
                ("_auth_user_id", id.clone()),
                ("_auth_user_backend", MODEL_BACKEND.into()),
            ])
            .await;
        let error = w.auth.get_user(&session).await.unwrap_err();
        assert!(
            matches!(error, AuthError::InvalidUserId { .. }),
            "{id:?}: {error}"
        );
    }
    // An integer id (not Django's string) still names the user, as to_python accepts it.
    let session = w
        .stored(&[
            ("_auth_user_id", Value::from(1)),
            ("_auth_user_backend", MODEL_BACKEND.into()),
            (
                "_auth_user_hash",
                session_auth_hash("md5$salt$ada-hash", &SecretKey::from("current-secret")).into(),
            ),
        ])
        .await;
    assert_eq!(
        w.auth.get_user(&session).await.unwrap().unwrap().user.id,
        "1"
    );
}

#[tokio::test]
async fn login_cycles_the_key_keeps_the_data_and_writes_djangos_three_keys() {
    let w = world_with(
        AuthConfig {
            csrf_use_sessions: true,
            passwords: fast(),
            ..AuthConfig::default()
        },
        "current-secret",
        &[],
    );
    let session = w.stored(&[("cart", "3 apples".into())]).await;
    let anonymous_key = session.key().unwrap();
    let ada = w.users.user_by_id_now("1");
    let login = w.auth.login(&session, &ada, None).await.unwrap();
    assert!(!login.flushed);
    assert_ne!(
        session.key().unwrap(),
        anonymous_key,
        "session fixation defeated"
    );
    assert!(!w.exists(anonymous_key.as_str()).await);
    assert_eq!(
        session.get_value("_auth_user_id").await.unwrap(),
        Some(Value::from("1")),
        "the id is a string, as value_to_string makes it"
    );
    assert_eq!(
        session.get_value("_auth_user_backend").await.unwrap(),
        Some(Value::from(MODEL_BACKEND))
    );
    assert_eq!(
        session.get_value("_auth_user_hash").await.unwrap(),
        Some(Value::from(session_auth_hash(
            "md5$salt$ada-hash",
            &SecretKey::from("current-secret")
        )))
    );
    assert_eq!(
        session.get::<String>("cart").await.unwrap().as_deref(),
        Some("3 apples")
    );
    let csrf = session.get::<String>("_csrftoken").await.unwrap().unwrap();
    assert_eq!(csrf, login.csrf_secret);
    assert_eq!(csrf.len(), 32);
    assert!(csrf.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(w.users.last_login("1").is_some(), "last_login is set");
    // The keys are in Django's order: id, backend, hash after the data already there.
    assert_eq!(
        session.keys().await.unwrap(),
        [
            "cart",
            "_auth_user_id",
            "_auth_user_backend",
            "_auth_user_hash",
            "_csrftoken"
        ]
    );
}

#[tokio::test]
async fn login_over_another_users_session_flushes_it_first() {
    let w = world();
    let session = w
        .logged_in("2", "md5$salt$bob-hash", "current-secret")
        .await;
    let bobs_key = session.key().unwrap();
    let login = w
        .auth
        .login(&session, &w.users.user_by_id_now("1"), None)
        .await
        .unwrap();
    assert!(login.flushed);
    assert!(!w.exists(bobs_key.as_str()).await);
    assert_eq!(
        session.get::<String>("cart").await.unwrap(),
        None,
        "bob's data is gone"
    );
    assert!(
        session.get::<String>("_csrftoken").await.unwrap().is_none(),
        "CSRF cookie mode"
    );
    session.save().await.unwrap();
    assert_eq!(
        w.auth.get_user(&session).await.unwrap().unwrap().user.id,
        "1"
    );
}

#[tokio::test]
async fn logging_the_same_user_in_again_keeps_the_session_and_its_key() {
    let w = world();
    let session = w
        .logged_in("1", "md5$salt$ada-hash", "current-secret")
        .await;
    let key = session.key();
    let login = w
        .auth
        .login(&session, &w.users.user_by_id_now("1"), None)
        .await
        .unwrap();
    assert!(!login.flushed);
    assert_eq!(session.key(), key);
    assert_eq!(
        session.get::<String>("cart").await.unwrap().as_deref(),
        Some("3 apples")
    );
}

#[tokio::test]
async fn the_same_user_under_an_older_password_is_flushed_on_login() {
    let w = world();
    let session = w
        .logged_in("1", "md5$salt$older-hash", "current-secret")
        .await;
    let login = w
        .auth
        .login(&session, &w.users.user_by_id_now("1"), None)
        .await
        .unwrap();
    assert!(login.flushed);
}

#[tokio::test]
async fn logout_flushes() {
    let w = world();
    let session = w
        .logged_in("1", "md5$salt$ada-hash", "current-secret")
        .await;
    let key = session.key().unwrap();
    w.auth.logout(&session).await.unwrap();
    assert!(session.key().is_none() && session.is_empty());
    assert!(!w.exists(key.as_str()).await);
}

#[tokio::test]
async fn update_session_auth_hash_keeps_this_session_and_drops_the_others() {
    let w = world();
    let this = w
        .logged_in("1", "md5$salt$ada-hash", "current-secret")
        .await;
    let other = w
        .logged_in("1", "md5$salt$ada-hash", "current-secret")
        .await;
    let old_key = this.key();
    let ada = w.users.user_by_id_now("1");
    let ada = w.auth.set_password(&ada, "a new password").await.unwrap();
    w.auth.update_session_auth_hash(&this, &ada).await.unwrap();
    assert_ne!(this.key(), old_key, "the key is cycled");
    assert!(w.auth.get_user(&this).await.unwrap().is_some());
    assert!(w.auth.get_user(&other).await.unwrap().is_none());
}

#[tokio::test]
async fn authenticate_checks_the_password_and_upgrades_an_old_hash_as_django_does() {
    let w = world();
    // Django 4.2's iteration count: correct, but due for an upgrade.
    let old = "pbkdf2_sha256$600$abcdefghijklmnopqrstuv$".to_owned();
    let old = format!(
        "{old}{}",
        djangohashers_hash("s3cret", "abcdefghijklmnopqrstuv", 600)
    );
    w.users.insert("ada", user("1", &old));
    assert!(password::must_update(&old, &fast()));

    assert!(w.auth.authenticate("ada", "wrong").await.unwrap().is_none());
    assert_eq!(
        w.users.user_by_id_now("1").password,
        old,
        "no upgrade on a wrong password"
    );

    let ada = w.auth.authenticate("ada", "s3cret").await.unwrap().unwrap();
    assert_eq!(ada.backend.as_deref(), Some(MODEL_BACKEND));
    let stored = w.users.user_by_id_now("1").password;
    assert!(stored.starts_with("pbkdf2_sha256$1000$"), "{stored}");
    assert_eq!(ada.password, stored);
    assert!(!password::must_update(&stored, &fast()));

    // login hashes the upgraded value, so the session verifies against the stored hash.
    let session = w.stored(&[]).await;
    w.auth.login(&session, &ada, None).await.unwrap();
    assert!(w.auth.get_user(&session).await.unwrap().is_some());

    w.users.set_active("1", false);
    assert!(
        w.auth
            .authenticate("ada", "s3cret")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        w.auth
            .authenticate("nobody", "s3cret")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn login_needs_a_backend_when_several_are_configured() {
    let w = world_with(
        AuthConfig {
            backends: vec![
                AuthBackend::model_backend(),
                AuthBackend::allow_all_users_model_backend(),
            ],
            passwords: fast(),
            ..AuthConfig::default()
        },
        "k",
        &[],
    );
    let session = w.stored(&[]).await;
    let ada = w.users.user_by_id_now("1");
    let error = w.auth.login(&session, &ada, None).await.unwrap_err();
    assert!(matches!(error, AuthError::AmbiguousBackend));
    w.auth
        .login(&session, &ada, Some(MODEL_BACKEND))
        .await
        .unwrap();
}

/// The PBKDF2-SHA256 digest Django stores (base64), via Django's own formula.
fn djangohashers_hash(password: &str, salt: &str, iterations: u32) -> String {
    use djangohashers::Hasher as _;
    let encoded = djangohashers::PBKDF2Hasher.encode(password, salt, iterations);
    encoded.rsplit('$').next().unwrap().to_owned()
}

trait Now {
    fn user_by_id_now(&self, id: &str) -> User;
}

impl Now for MemoryUserSource {
    fn user_by_id_now(&self, id: &str) -> User {
        use session_auth::UserSource as _;
        futures_lite(self.user_by_id(id)).unwrap().unwrap()
    }
}

/// Polls a future that never waits (the memory source's).
fn futures_lite<F: std::future::Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the memory source does not wait"),
    }
}
