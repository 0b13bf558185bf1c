//! FileStore::find_sessions: the live sessions whose data a predicate accepts, read from every
//! session file of the directory.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use session_core::{Expiry, Session, SessionConfig, SessionStore, Value};
use session_file::FileStore;

#[tokio::test]
async fn find_sessions_returns_the_live_sessions_the_predicate_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let config = Arc::new(SessionConfig::new("find-secret"));
    let store = FileStore::new(dir.path(), &config).await.unwrap();
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());
    let save = |user: &'static str, expired: bool| {
        let (shared, config) = (shared.clone(), config.clone());
        async move {
            let session = Session::new(shared, config, None);
            session.insert("owner", user).await.unwrap();
            if expired {
                session.set_expiry(Expiry::Seconds(-1)).await.unwrap();
            }
            session.save().await.unwrap();
            session.key().unwrap()
        }
    };
    let mut ours = vec![save("ada", false).await, save("ada", false).await];
    save("ada", true).await;
    save("bob", false).await;
    // A file of another prefix, a stray file and a corrupt session are not sessions of ada.
    std::fs::write(dir.path().join("othercookieabcdefghijklmnop"), "x").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    std::fs::write(
        dir.path().join("sessionidzzzzzzzzzzzzzzzzzzzzzzzz"),
        "garbage",
    )
    .unwrap();

    let mut found = store
        .find_sessions(|data| data.get("owner") == Some(&Value::from("ada")))
        .await
        .unwrap();
    found.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    ours.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let keys: Vec<_> = found.iter().map(|s| s.key.clone()).collect();
    assert_eq!(keys, ours, "the two live ones, not the expired one");
    let now = time::OffsetDateTime::now_utc();
    for session in &found {
        assert!((now - session.modified).whole_seconds().abs() < 60);
        let left = (session.expires_at - now).whole_seconds();
        assert!((1_209_500..=1_209_600).contains(&left), "{left}");
    }
    assert_eq!(
        store.find_sessions(|_| true).await.unwrap().len(),
        4,
        "+ bob, + the corrupt one"
    );
}
