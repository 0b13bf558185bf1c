//! Keeping a store tidy: clearing expired sessions once (what `sessions clearsessions` and
//! Django's `clearsessions` do) or periodically, for services that run no cron job.

use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::metrics::{self, names};
use crate::store::{ClearExpired, SessionStore};

/// Removes every expired session from `store`, counting the call and what it removed in
/// [`metrics`] (`djsession_expired_sessions_cleared_total`).
///
/// # Errors
/// [`Error::Store`] when the store fails.
pub async fn clear_expired(store: &dyn SessionStore) -> Result<ClearExpired, Error> {
    let kind = store.kind();
    let cleared = metrics::store_call(kind, "clear_expired", None, store.clear_expired()).await?;
    if let ClearExpired::Removed(n) = cleared {
        ::metrics::counter!(names::EXPIRED_CLEARED, "store" => kind).increment(n);
    }
    Ok(cleared)
}

/// A background task clearing expired sessions every `period`, made by [`spawn_cleanup`];
/// dropping it (or [`stop`](Self::stop)) stops it.
#[derive(Debug)]
#[must_use = "the cleanup stops when this handle is dropped"]
pub struct CleanupTask {
    handle: tokio::task::JoinHandle<()>,
}

impl CleanupTask {
    /// Stops the task (a clear in progress is abandoned between two statements of the store;
    /// what it already removed stays removed).
    pub fn stop(self) {
        // Drop does it.
    }
}

impl Drop for CleanupTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts a Tokio task that runs [`clear_expired`] on `store` every `period` (the first run one
/// period from now), logging what each run removed at debug level and any failure as a warning
/// on target `djsession` (a failed run is retried at the next period; nothing is lost: expired
/// sessions are never returned by a load, clearing only reclaims space). Needs a Tokio runtime.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use session_core::{maintenance, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let cleanup = maintenance::spawn_cleanup(store.clone(), Duration::from_secs(3600));
/// // ... serve requests; the cleanup stops when `cleanup` is dropped.
/// cleanup.stop();
/// # });
/// ```
pub fn spawn_cleanup(store: Arc<dyn SessionStore>, period: Duration) -> CleanupTask {
    // A zero period would spin; one millisecond is already far more often than useful.
    let period = period.max(Duration::from_millis(1));
    let handle = tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // A run longer than the period is followed by the next at once, not by a burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match clear_expired(&*store).await {
                Ok(ClearExpired::Removed(n)) => {
                    tracing::debug!(target: "djsession", removed = n, "cleared expired sessions");
                }
                Ok(ClearExpired::NotNeeded) => {}
                Err(error) => {
                    tracing::warn!(
                        target: "djsession",
                        %error,
                        "clearing expired sessions failed; retrying at the next period"
                    );
                }
            }
        }
    });
    CleanupTask { handle }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use time::OffsetDateTime;

    use super::*;
    use crate::store::{SaveMode, SessionRecord};
    use crate::{Dict, MemoryStore, SessionKey};

    async fn expired_record(store: &MemoryStore, key: &str) {
        let data = Dict::default();
        let record = SessionRecord {
            data: &data,
            expires_at: OffsetDateTime::now_utc() - time::Duration::seconds(1),
            expiry_age: -1,
        };
        store
            .save(&SessionKey::new(key).unwrap(), record, SaveMode::MustCreate)
            .await
            .unwrap();
    }

    #[test]
    fn clearing_counts_the_call_and_what_it_removed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = MemoryStore::new();
        rt.block_on(async {
            expired_record(&store, "expired-one").await;
            expired_record(&store, "expired-two").await;
        });
        let (cleared, seen) =
            crate::metrics::testing::recorded(|| rt.block_on(clear_expired(&store)));
        assert_eq!(cleared.unwrap(), ClearExpired::Removed(2));
        assert!(seen.contains(&(
            "djsession_expired_sessions_cleared_total{store=memory}".to_owned(),
            2
        )));
        assert!(seen.contains(&(
            "djsession_store_operations_total{operation=clear_expired,store=memory}".to_owned(),
            1
        )));
    }

    #[tokio::test(start_paused = true)]
    async fn the_periodic_cleanup_clears_every_period_until_dropped() {
        let store = Arc::new(MemoryStore::new());
        let cleanup = spawn_cleanup(store.clone(), Duration::from_secs(60));
        expired_record(&store, "expired-one").await;
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(store.len(), 1, "nothing runs before the first period");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(store.len(), 0);

        expired_record(&store, "expired-two").await;
        drop(cleanup);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(store.len(), 1, "a dropped task clears nothing");
    }
}
