//! `sessions revoke` and `sessions list`: a user's sessions (session-auth's `UserSessions`).

use std::time::SystemTime;

use session_auth::KeyKind;
use session_auth::everywhere::UserSessions;
use session_core::expiry::isoformat;
use time::OffsetDateTime;

use crate::Error;
use crate::args::{Engine, UserKeyKind, UserSessionArgs};
use crate::store::{self, Db};

async fn open(
    args: &UserSessionArgs,
    now: SystemTime,
    read_only: bool,
) -> Result<UserSessions, Error> {
    if args.store.engine != Engine::Db {
        return Err(Error::UnsupportedEngine);
    }
    let config = store::config(&args.store, &args.keys)?;
    let now = OffsetDateTime::from(now);
    let db = if read_only {
        Db::open_read_only(&args.store, &config, now).await?
    } else {
        Db::open(&args.store, &config, now).await?
    };
    let kind = match args.user_key_kind {
        UserKeyKind::Integer => KeyKind::Integer,
        UserKeyKind::Text => KeyKind::Text,
    };
    let sessions = UserSessions::new(db.pool(), &args.store.table, kind, &config)
        .map_err(Error::Auth)?
        .with_scan(!args.index_only);
    match &args.index_table {
        Some(index) => sessions.with_index(index).map_err(Error::Auth),
        None => Ok(sessions),
    }
}

/// Deletes every live session of `--user`; returns how many, as a bare number.
///
/// # Errors
/// Exit-2 errors for unusable options or a store that cannot be opened, [`Error::Auth`] when the
/// database fails.
pub async fn revoke(args: &UserSessionArgs, now: SystemTime) -> Result<String, Error> {
    let removed = open(args, now, false)
        .await?
        .revoke(&args.user)
        .await
        .map_err(Error::Auth)?;
    Ok(removed.to_string())
}

/// The live sessions of `--user`, one JSON line each (nothing for none).
///
/// # Errors
/// As [`revoke`].
pub async fn list(args: &UserSessionArgs, now: SystemTime) -> Result<String, Error> {
    let sessions = open(args, now, true)
        .await?
        .list(&args.user)
        .await
        .map_err(Error::Auth)?;
    let lines: Vec<String> = sessions
        .iter()
        .map(|s| {
            let last_change = s
                .last_change
                .map_or_else(|| "null".to_owned(), |at| format!("\"{}\"", isoformat(at)));
            format!(
                "{{\"key\": \"{}\", \"expire_date\": \"{}\", \"last_change\": {last_change}}}",
                s.key,
                isoformat(s.expire_date)
            )
        })
        .collect();
    Ok(lines.join("\n"))
}
