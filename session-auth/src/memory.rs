//! [`MemoryUserSource`]: users in memory, for tests, examples and small tools.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::AuthError;
use crate::user::{User, UserSource};

/// Users kept in memory, keyed by integer-like or text ids, with usernames.
///
/// ```
/// use session_auth::{MemoryUserSource, User, UserSource};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let users = MemoryUserSource::new();
/// users.insert("ada", User { id: "1".into(), password: "md5$salt$hash".into(), is_active: true, backend: None });
/// assert_eq!(users.user_by_username("ada").await?.map(|u| u.id), Some("1".to_owned()));
/// # Ok::<(), session_auth::AuthError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryUserSource {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<String, User>,
    usernames: HashMap<String, String>,
    last_login: HashMap<String, OffsetDateTime>,
}

impl MemoryUserSource {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds (or replaces) `user`, found by `username`.
    pub fn insert(&self, username: &str, user: User) {
        let mut inner = self.lock();
        inner.usernames.insert(username.to_owned(), user.id.clone());
        inner.users.insert(user.id.clone(), user);
    }

    /// Removes the user with primary key `id` (as deleting the row does).
    pub fn remove(&self, id: &str) {
        let mut inner = self.lock();
        inner.users.remove(id);
        inner.usernames.retain(|_, user_id| user_id != id);
    }

    /// Sets `is_active` of user `id`.
    pub fn set_active(&self, id: &str, active: bool) {
        if let Some(user) = self.lock().users.get_mut(id) {
            user.is_active = active;
        }
    }

    /// When user `id` last logged in, if ever.
    pub fn last_login(&self, id: &str) -> Option<OffsetDateTime> {
        self.lock().last_login.get(id).copied()
    }
}

#[async_trait]
impl UserSource for MemoryUserSource {
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, AuthError> {
        Ok(self.lock().users.get(id).cloned())
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, AuthError> {
        let inner = self.lock();
        Ok(inner
            .usernames
            .get(username)
            .and_then(|id| inner.users.get(id))
            .cloned())
    }

    async fn set_password(&self, id: &str, encoded: &str) -> Result<(), AuthError> {
        if let Some(user) = self.lock().users.get_mut(id) {
            encoded.clone_into(&mut user.password);
        }
        Ok(())
    }

    async fn record_login(&self, id: &str, at: OffsetDateTime) -> Result<(), AuthError> {
        self.lock().last_login.insert(id.to_owned(), at);
        Ok(())
    }
}
