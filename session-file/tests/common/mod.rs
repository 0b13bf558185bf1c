//! Helpers shared by the integration tests: stores in fresh temporary directories.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a subset; test code

use async_trait::async_trait;
use session_core::{
    ClearExpired, Dict, Error, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore,
    SharedRecord, StoreCapabilities, Version, VersionedRecord,
};
use session_file::{FileStore, WriteStrategy};
use tempfile::TempDir;

/// A file store that owns its temporary directory (removed when the store is dropped).
#[derive(Debug)]
pub struct TempStore {
    pub store: FileStore,
    pub dir: TempDir,
}

impl TempStore {
    pub async fn new(config: &SessionConfig, strategy: Option<WriteStrategy>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = FileStore::builder(config).directory(dir.path());
        if let Some(strategy) = strategy {
            builder = builder.write_strategy(strategy);
        }
        let store = builder.build().await.unwrap();
        if let Some(strategy) = strategy {
            assert_eq!(store.write_strategy(), strategy);
        }
        TempStore { store, dir }
    }
}

#[async_trait]
impl SessionStore for TempStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.store.load(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.store.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.store.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.store.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.store.clear_expired().await
    }
    fn capabilities(&self) -> StoreCapabilities {
        self.store.capabilities()
    }
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        self.store.load_versioned(key).await
    }
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        self.store.save_if_unchanged(key, record, expected).await
    }
}

/// Every strategy this machine's temporary directory supports, strongest first.
pub const STRATEGIES: [WriteStrategy; 3] = [
    WriteStrategy::RenameExchange,
    WriteStrategy::HardLink,
    WriteStrategy::Placeholder,
];

/// `len` characters of xorshift noise: incompressible, so encoded sessions really are large.
pub fn noise(len: usize, seed: u64) -> String {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(state % 36) as usize])
        })
        .collect()
}
