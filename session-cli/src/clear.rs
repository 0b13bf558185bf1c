//! `sessions clearsessions`.

use std::time::{Duration, SystemTime};

use session_core::{ClearExpired, SessionConfig, SessionStore};
use time::OffsetDateTime;

use crate::Error;
use crate::args::{ClearArgs, Engine};
use crate::store;

/// What clearsessions prints for the cache engine.
pub const NOTHING_TO_CLEAR: &str =
    "Nothing to clear: the cache engine's sessions expire by themselves (the cache drops them).";

/// What clearsessions prints for the cookie engine.
pub const NOTHING_STORED: &str = "Nothing to clear: the cookie engine stores sessions in the clients' cookies, which expire by themselves.";

/// Stands in for the secret when a table is cleared without one: deleting rows by `expire_date`
/// never signs or verifies anything, but the store is built from complete session settings.
const UNUSED_SECRET: &str = "sessions clearsessions: no secret needed to delete expired rows";

/// Removes the expired sessions of the store `args` describe (as of `now` for databases) and
/// returns the line to print: `Removed N expired sessions.`
///
/// # Errors
/// Exit-2 errors for unusable options or a store that cannot be opened, [`Error::Store`] when
/// the store fails while clearing.
pub async fn clearsessions(args: &ClearArgs, now: SystemTime) -> Result<String, Error> {
    clearsessions_with_progress(args, now, |_| {}).await
}

/// [`clearsessions`], calling `progress` with the running total after each batch of a database
/// clear (the binary draws [`progress_line`] on a terminal with it).
///
/// # Errors
/// As [`clearsessions`].
pub async fn clearsessions_with_progress(
    args: &ClearArgs,
    now: SystemTime,
    progress: impl FnMut(u64) + Send,
) -> Result<String, Error> {
    let removed = match args.store.engine {
        Engine::Cache => return Ok(NOTHING_TO_CLEAR.to_owned()),
        Engine::Cookie => return Ok(NOTHING_STORED.to_owned()),
        Engine::Db | Engine::CachedDb => {
            let config = if args.keys.secret_key.is_some() {
                store::config(&args.store, &args.keys)?
            } else {
                SessionConfig::new(UNUSED_SECRET)
            };
            let db = store::open_db(&args.store, &config, OffsetDateTime::from(now))
                .await?
                .with_clear_batch_size(args.batch_size)
                .map_err(|e| Error::Store(e.into()))?
                .with_clear_pause(Duration::from_millis(args.pause_ms));
            db.clear_expired_rows_with_progress(progress)
                .await
                .map_err(|e| Error::Store(e.into()))?
        }
        Engine::File => {
            // A session file's own expiry (set_expiry) is inside its signed data.
            let config = store::config(&args.store, &args.keys)?;
            let files = store::open_file(&args.store, &config).await?;
            match files.clear_expired().await.map_err(Error::Store)? {
                ClearExpired::Removed(n) => n,
                ClearExpired::NotNeeded => 0,
            }
        }
    };
    Ok(removed_message(removed))
}

/// The progress line `clearsessions` redraws on a terminal after each batch: a carriage return
/// (so the next draw overwrites it) and the running total.
pub fn progress_line(removed: u64) -> String {
    format!("\rclearsessions: {removed} expired sessions removed so far...")
}

/// What erases the progress line once the clear is done: back to the start, clear the line.
pub const PROGRESS_DONE: &str = "\r\x1b[2K";

/// `Removed 1 expired session.` / `Removed N expired sessions.`
pub fn removed_message(removed: u64) -> String {
    if removed == 1 {
        "Removed 1 expired session.".to_owned()
    } else {
        format!("Removed {removed} expired sessions.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_printed_in_a_sentence() {
        assert_eq!(removed_message(0), "Removed 0 expired sessions.");
        assert_eq!(removed_message(1), "Removed 1 expired session.");
        assert_eq!(removed_message(42), "Removed 42 expired sessions.");
    }
}
