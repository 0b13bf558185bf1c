//! Saves per second through the cached-db store, and what the check that keeps a logout from
//! being undone costs: each save writes the row, the cache entry, then reads the row back
//! (`exists`) to make sure no delete ran in between.
//!
//! ```sh
//! SESSION_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//! SESSION_TEST_REDIS_URL=redis://127.0.0.1:6379 \
//!     cargo bench -p session-cached-db --bench saves
//! ```
//!
//! For each database (as in `warm_loads`) and cache, in the same run: the database store alone,
//! the cached-db store over a database whose `exists` answers `true` without a query (what a
//! save cost before the check: row, then cache), and the cached-db store as it is. Each worker
//! updates its own session in a loop; every figure is the best of `ROUNDS` runs of `SECONDS`
//! seconds, the configurations alternating. Tables and cache keys are removed afterwards.
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use session_cache::{Cache, MemoryCache, RedisCache};
use session_cached_db::CachedDbStore;
use session_core::{
    ClearExpired, Dict, Error, LoadedRecord, SaveMode, SessionConfig, SessionKey, SessionRecord,
    SessionStore,
};
use session_db::{Backend, DbStore};

/// The database store, except that `exists` answers `true` at once: the cached-db store over
/// it saves as it did before it checked the row after the cache write.
#[derive(Debug, Clone)]
struct CheckForFree<D>(D);

#[async_trait]
impl<D: SessionStore> SessionStore for CheckForFree<D> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.0.load(key).await
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.0.load_with_expiry(key).await
    }
    async fn exists(&self, _: &SessionKey) -> Result<bool, Error> {
        Ok(true)
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.0.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.0.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.0.clear_expired().await
    }
}

/// Updates per second of `store` from `workers` tasks, each on its own key.
async fn saves_per_second(
    store: Arc<dyn SessionStore>,
    keys: Arc<Vec<SessionKey>>,
    workers: usize,
) -> f64 {
    let data = Arc::new(common::session_data());
    common::per_second(workers, move |w| {
        let (store, keys, data) = (store.clone(), keys.clone(), data.clone());
        async move {
            store
                .save(&keys[w], common::record(&data), SaveMode::Update)
                .await
                .unwrap();
        }
    })
    .await
}

async fn bench<B: Backend>(label: &str, pool: sqlx::Pool<B>, redis: Option<&str>)
where
    DbStore<B>: SessionStore + Clone,
{
    let config = SessionConfig::new("a bench secret");
    let (db, keys) = common::database(pool).await;
    let keys = Arc::new(keys);

    let mut caches = vec![("memory", Cache::new(MemoryCache::new()))];
    match redis {
        Some(url) => caches.push((
            "redis",
            Cache::new(RedisCache::connect(url).await.unwrap())
                .with_key_prefix(common::private_name()),
        )),
        None => println!("{label}: redis skipped (SESSION_TEST_REDIS_URL is not set)"),
    }
    let mut stores: Vec<(String, Arc<dyn SessionStore>)> =
        vec![("database alone".to_owned(), Arc::new(db.clone()))];
    for (name, cache) in &caches {
        let before = CachedDbStore::new(cache.clone(), CheckForFree(db.clone()), &config).unwrap();
        stores.push((
            format!("{name} cache + database, check for free (before)"),
            Arc::new(before),
        ));
        let now = CachedDbStore::new(cache.clone(), db.clone(), &config).unwrap();
        stores.push((
            format!("{name} cache + database, with the check"),
            Arc::new(now),
        ));
    }

    common::compare(label, "saves/s", &stores, |store, workers| {
        saves_per_second(store, keys.clone(), workers)
    })
    .await;

    // Leave nothing behind in Redis (the caller drops the table).
    for (_, cache) in &caches {
        common::forget_cached(cache, &keys).await;
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let redis = std::env::var("SESSION_TEST_REDIS_URL").ok();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let pool = common::sqlite_pool(dir.path()).await;
        bench::<sqlx::Sqlite>(common::SQLITE_LABEL, pool, redis.as_deref()).await;
        if let Some(pool) = common::postgres_pool().await {
            bench::<sqlx::Postgres>(common::POSTGRES_LABEL, pool.clone(), redis.as_deref()).await;
            common::drop_table(&pool).await;
        }
    });
}
