//! The CSRF defence of the demo's forms.
//!
//! Two layers, both cheap:
//! - the session cookie is `SameSite=Lax` (Django's default), so browsers do not send it with a
//!   cross-site POST, and a forged form arrives without a session;
//! - every form carries a per-session token (Django's "synchronizer token" with
//!   `CSRF_USE_SESSIONS`), stored in the session under [`CSRF_SESSION_KEY`] and compared in constant
//!   time; a POST whose token is missing or different is refused with 403. The token is replaced
//!   on login, so a token seen before login is useless after it.

use session_core::Session;

/// Where the token lives in the session (Django's `CSRF_SESSION_KEY`).
pub const CSRF_SESSION_KEY: &str = "_csrftoken";

/// The name of the hidden form field carrying the token.
pub const CSRF_FIELD: &str = "csrf_token";

/// Random bytes per token (256 bits).
const TOKEN_BYTES: usize = 32;

/// The session's token, creating (and storing) one if it has none yet.
///
/// # Errors
/// Store failures while loading the session, or the OS random generator failing.
pub async fn token(session: &Session) -> Result<String, session_core::Error> {
    if let Some(token) = session.get::<String>(CSRF_SESSION_KEY).await? {
        return Ok(token);
    }
    rotate(session).await
}

/// Stores a fresh token in the session and returns it.
///
/// # Errors
/// Store failures while loading the session, or the OS random generator failing.
pub async fn rotate(session: &Session) -> Result<String, session_core::Error> {
    let token = fresh_token()?;
    session.insert(CSRF_SESSION_KEY, &token).await?;
    Ok(token)
}

/// Whether `submitted` is the session's token. A session without a token matches nothing.
///
/// # Errors
/// Store failures while loading the session.
pub async fn verify(session: &Session, submitted: &str) -> Result<bool, session_core::Error> {
    let Some(expected) = session.get::<String>(CSRF_SESSION_KEY).await? else {
        return Ok(false);
    };
    Ok(session_signing::constant_time_eq(
        expected.as_bytes(),
        submitted.as_bytes(),
    ))
}

fn fresh_token() -> Result<String, session_core::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| session_core::Error::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use session_core::{MemoryStore, SessionConfig};

    use super::*;

    fn session() -> Session {
        Session::new(
            Arc::new(MemoryStore::new()),
            Arc::new(SessionConfig::new("test secret")),
            None,
        )
    }

    #[tokio::test]
    async fn a_session_keeps_its_token_until_rotated() {
        let session = session();
        let first = token(&session).await.unwrap();
        assert_eq!(first.len(), 2 * TOKEN_BYTES);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(token(&session).await.unwrap(), first);
        assert!(verify(&session, &first).await.unwrap());

        let second = rotate(&session).await.unwrap();
        assert_ne!(second, first);
        assert!(!verify(&session, &first).await.unwrap());
        assert!(verify(&session, &second).await.unwrap());
    }

    #[tokio::test]
    async fn wrong_empty_or_absent_tokens_are_refused() {
        let session = session();
        assert!(
            !verify(&session, "").await.unwrap(),
            "no token in the session yet"
        );
        let token = token(&session).await.unwrap();
        assert!(!verify(&session, "").await.unwrap());
        assert!(!verify(&session, &token[1..]).await.unwrap());
        assert!(!verify(&session, &format!("{token}0")).await.unwrap());
        assert!(!verify(&session, &token.to_uppercase()).await.unwrap());
    }
}
