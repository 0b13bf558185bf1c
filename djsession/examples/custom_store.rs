//! A session store of your own, checked by the conformance suite.
//!
//! `SignedMapStore` keeps each session as Django's signed `session_data` string in a map, the
//! way a store for any key-value system would (swap the map for your client's calls). It
//! implements the five operations of [`SessionStore`]; the [`Session`] handle builds all of
//! Django's semantics on top. It also implements the optional compare-and-swap pair
//! (`load_versioned`, `save_if_unchanged`), which the `merge` and `reject` concurrency policies
//! need; a store without them works under Django's `last_write_wins`.
//! `cargo test -p djsession --example custom_store --features axum` runs Django's session
//! behaviours against it (`session_conformance!` below), one test each.
//!
//! ```sh
//! SECRET_KEY=change-me cargo run -p djsession --example custom_store --features axum
//! curl -c jar -b jar http://127.0.0.1:3000/
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Router;
use axum::routing::get;
use std::sync::Arc;

use djsession::{
    ClearExpired, Dict, SaveMode, Session, SessionCodec, SessionConfig, SessionKey, SessionLayer,
    SessionRecord, SessionStore, SharedRecord, StoreCapabilities, Version, VersionedRecord,
    async_trait,
};
use time::OffsetDateTime;

/// Sessions as signed strings in a map, each with its expiry.
#[derive(Debug)]
pub struct SignedMapStore {
    codec: SessionCodec,
    rows: Mutex<HashMap<String, (String, OffsetDateTime)>>,
}

impl SignedMapStore {
    /// A store signing with `config`'s secret: the workspace convention, config last.
    pub fn new(config: &SessionConfig) -> Result<Self, djsession::Error> {
        Ok(SignedMapStore {
            codec: SessionCodec::new(config)?,
            rows: Mutex::new(HashMap::new()),
        })
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, OffsetDateTime)>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionStore for SignedMapStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, djsession::SessionError> {
        let now = OffsetDateTime::now_utc();
        Ok(match self.rows().get(key.as_str()) {
            // Expired records are absent; a corrupt one decodes as an empty session with
            // Django's security warning (SessionCodec::decode does both).
            Some((data, expires_at)) if *expires_at > now => Some(self.codec.decode(data)),
            _ => None,
        })
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, djsession::SessionError> {
        let now = OffsetDateTime::now_utc();
        Ok(self
            .rows()
            .get(key.as_str())
            .is_some_and(|(_, expires_at)| *expires_at > now))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, djsession::SessionError> {
        let data = self.codec.encode(record.data)?;
        let now = OffsetDateTime::now_utc();
        // One lock for the check and the write: must-create is atomic, and an update never
        // brings back a session deleted (or expired) meanwhile.
        let mut rows = self.rows();
        let live = rows.get(key.as_str()).is_some_and(|(_, at)| *at > now);
        match mode {
            SaveMode::MustCreate if live => {
                return Err(djsession::SessionError::CreateConflict);
            }
            SaveMode::Update if !live => {
                return Err(djsession::SessionError::SessionDeleted);
            }
            _ => {}
        }
        rows.insert(key.as_str().to_owned(), (data, record.expires_at));
        Ok(key.clone())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), djsession::SessionError> {
        self.rows().remove(key.as_str());
        Ok(())
    }

    async fn clear_expired(&self) -> Result<ClearExpired, djsession::SessionError> {
        let now = OffsetDateTime::now_utc();
        let mut rows = self.rows();
        let before = rows.len();
        rows.retain(|_, (_, expires_at)| *expires_at > now);
        Ok(ClearExpired::Removed((before - rows.len()) as u64))
    }

    // Optional: compare-and-swap, for the merge and reject concurrency policies.

    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::COMPARE_AND_SWAP
    }

    async fn load_versioned(
        &self,
        key: &SessionKey,
    ) -> Result<Option<VersionedRecord>, djsession::SessionError> {
        let now = OffsetDateTime::now_utc();
        Ok(match self.rows().get(key.as_str()) {
            Some((data, expires_at)) if *expires_at > now => Some(VersionedRecord {
                data: Arc::new(self.codec.decode(data)),
                version: version_of(data, *expires_at),
                expires_at: Some(*expires_at),
            }),
            _ => None,
        })
    }

    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, djsession::SessionError> {
        let data = self.codec.encode(&record.data)?;
        let now = OffsetDateTime::now_utc();
        // One lock for the comparison and the write: that is what makes it atomic.
        let mut rows = self.rows();
        match rows.get(key.as_str()) {
            Some((stored, at)) if *at > now => {
                if version_of(stored, *at) != *expected {
                    return Err(djsession::SessionError::Conflict);
                }
            }
            _ => return Err(djsession::SessionError::SessionDeleted),
        }
        let version = version_of(&data, record.expires_at);
        rows.insert(key.as_str().to_owned(), (data, record.expires_at));
        Ok(version)
    }
}

/// What identifies a stored state: the signed data *and* the expiry. The data alone is not
/// enough: Django's signature carries a timestamp in whole seconds, so two saves of the same data
/// within one second store the same text, while every save moves the expiry.
fn version_of(data: &str, expires_at: OffsetDateTime) -> Version {
    let mut bytes = expires_at.unix_timestamp_nanos().to_be_bytes().to_vec();
    bytes.extend_from_slice(data.as_bytes());
    Version::from_bytes(bytes)
}

async fn counter(session: Session) -> Result<String, djsession::Error> {
    let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", &visits).await?;
    Ok(format!("visits: {visits}\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = SessionConfig::from_env()?;
    let store = SignedMapStore::new(&config)?;
    let app = Router::new()
        .route("/", get(counter))
        .layer(SessionLayer::new(store, &config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod conformance {
    use session_conformance::{Capabilities, Fixture, session_conformance};

    use super::SignedMapStore;

    // One #[tokio::test] per Django behaviour, against a fresh store each time.
    session_conformance!(signed_map_store, async {
        let config = session_conformance::config();
        let store = SignedMapStore::new(&config).expect("the suite's config is valid");
        Fixture::new(store)
            .with_config(config)
            .with_capabilities(Capabilities::server_side())
    });
}
