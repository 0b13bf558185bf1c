//! Log out everywhere on the file engine ([`FileUserSessions`]).

use session_core::SessionStore as _;
use session_file::FileStore;

use super::{UserSession, user_of};
use crate::AuthError;
use crate::user::KeyKind;

/// Lists and revokes a user's sessions kept by the file engine ([`FileStore`]).
///
/// There is no index: every call reads and verifies every session file of the directory
/// ([`FileStore::find_sessions`]) and keeps those whose `_auth_user_id` is the user, so its cost
/// is linear in the directory, a file read and an HMAC check per session: about 11 µs per file,
/// 1.1 s for 100,000 files (see the [module docs](super)). Revoking deletes the files found. [`UserSession::last_change`] is the file's modification time.
#[derive(Debug, Clone)]
pub struct FileUserSessions {
    store: FileStore,
    key_kind: KeyKind,
}

impl FileUserSessions {
    /// The sessions `store` keeps, user ids parsed as `key_kind`.
    pub fn new(store: FileStore, key_kind: KeyKind) -> Self {
        FileUserSessions { store, key_kind }
    }

    async fn find(&self, user_id: &str) -> Result<Vec<session_file::FoundSession>, AuthError> {
        let (kind, user) = (self.key_kind, user_id.to_owned());
        Ok(self
            .store
            .find_sessions(move |data| user_of(data, kind).is_some_and(|id| id == user))
            .await?)
    }

    /// The live sessions of user `user_id`.
    ///
    /// # Errors
    /// [`AuthError::Session`] when the directory cannot be listed.
    pub async fn list(&self, user_id: &str) -> Result<Vec<UserSession>, AuthError> {
        let mut found: Vec<UserSession> = self
            .find(user_id)
            .await?
            .into_iter()
            .map(|s| UserSession {
                key: s.key.redacted(),
                expire_date: s.expires_at,
                last_change: Some(s.modified),
            })
            .collect();
        found.sort_by_key(|s| s.expire_date);
        Ok(found)
    }

    /// Deletes every live session file of user `user_id`; returns how many.
    ///
    /// # Errors
    /// [`AuthError::Session`] when the directory cannot be listed or a file cannot be removed
    /// (files removed before the failure stay removed).
    pub async fn revoke(&self, user_id: &str) -> Result<u64, AuthError> {
        let found = self.find(user_id).await?;
        for session in &found {
            self.store.delete(&session.key).await?;
        }
        Ok(found.len() as u64)
    }
}
