//! Log out everywhere on the file engine: FileUserSessions lists and revokes a user's session
//! files, found by reading and verifying every file of the directory.
#![cfg(feature = "file")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use session_auth::everywhere::FileUserSessions;
use session_auth::{Auth, AuthConfig, KeyKind, MemoryUserSource, User};
use session_core::{Session, SessionConfig, SessionStore};
use session_file::FileStore;

fn user(id: &str) -> User {
    User {
        id: id.into(),
        password: format!("md5$s${id}"),
        is_active: true,
        backend: None,
    }
}

#[tokio::test]
async fn revoking_a_user_on_the_file_engine_removes_their_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = Arc::new(SessionConfig::new("everywhere-secret"));
    let files = FileStore::new(dir.path(), &config).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(files.clone());
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
    let ones = [login("1").await, login("1").await];
    let two = login("2").await;
    // A file signed with another key does not verify: not user 1's, whatever it claims.
    let forged_config = Arc::new(SessionConfig::new("another-secret"));
    let forged_store: Arc<dyn SessionStore> =
        Arc::new(FileStore::new(dir.path(), &forged_config).await.unwrap());
    let forged = Session::new(forged_store, forged_config, None);
    auth.login(&forged, &user("1"), None).await.unwrap();
    forged.save().await.unwrap();

    let sessions = FileUserSessions::new(files, KeyKind::Integer);
    let listed = sessions.list("1").await.unwrap();
    assert_eq!(listed.len(), 2);
    for entry in &listed {
        assert!(entry.key.ends_with('…') && entry.key.chars().count() < 10);
        assert!(entry.last_change.is_some());
        assert!(entry.expire_date > time::OffsetDateTime::now_utc());
    }
    assert_eq!(sessions.revoke("1").await.unwrap(), 2);
    for key in &ones {
        assert!(store.load(key).await.unwrap().is_none());
    }
    assert!(
        store.load(&two).await.unwrap().is_some(),
        "user 2 keeps theirs"
    );
    assert!(
        dir.path()
            .join(format!("sessionid{}", forged.key().unwrap().as_str()))
            .exists()
    );
    assert_eq!(sessions.revoke("1").await.unwrap(), 0);
}
