//! Loads per second through the cached-db store with a warm cache, beside the database store
//! alone on the same rows, in the same run.
//!
//! ```sh
//! SESSION_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//! SESSION_TEST_REDIS_URL=redis://127.0.0.1:6379 \
//!     cargo bench -p session-cached-db --bench warm_loads
//! ```
//!
//! Databases: SQLite on a temporary file (WAL, synchronous=NORMAL, one connection, as
//! `session-db`'s bench) always, PostgreSQL (pool of 16) when its URL is set. Caches: the
//! in-process memory cache always, Redis (one multiplexed connection) when its URL is set. Each
//! worker loads its own session (a typical logged-in one) in a loop; every figure is the best of
//! `ROUNDS` runs of `SECONDS` seconds, the three configurations alternating so that load from
//! other processes affects them alike. Tables and cache keys are removed afterwards.
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

mod common;

use std::sync::Arc;

use session_cache::{Cache, MemoryCache, RedisCache};
use session_cached_db::CachedDbStore;
use session_core::{SessionConfig, SessionKey, SessionStore};
use session_db::{Backend, DbStore};

/// Loads per second of `store` from `workers` tasks, each on its own key.
async fn loads_per_second(
    store: Arc<dyn SessionStore>,
    keys: Arc<Vec<SessionKey>>,
    workers: usize,
) -> f64 {
    common::per_second(workers, move |w| {
        let (store, keys) = (store.clone(), keys.clone());
        async move {
            assert!(store.load(&keys[w]).await.unwrap().is_some());
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

    let mut stores: Vec<(String, Arc<dyn SessionStore>)> =
        vec![("database alone".to_owned(), Arc::new(db.clone()))];
    let memory = CachedDbStore::new(Cache::new(MemoryCache::new()), db.clone(), &config).unwrap();
    stores.push(("memory cache + database".to_owned(), Arc::new(memory)));
    let mut redis_cache = None;
    match redis {
        Some(url) => {
            let cache = Cache::new(RedisCache::connect(url).await.unwrap())
                .with_key_prefix(common::private_name());
            redis_cache = Some(cache.clone());
            stores.push((
                "redis cache + database".to_owned(),
                Arc::new(CachedDbStore::new(cache, db.clone(), &config).unwrap()),
            ));
        }
        None => println!("{label}: redis skipped (SESSION_TEST_REDIS_URL is not set)"),
    }
    // Warm every cache: the first load of each key is a miss that refills it.
    for (_, store) in &stores {
        for key in keys.iter() {
            store.load(key).await.unwrap();
        }
    }

    common::compare(label, "loads/s", &stores, |store, workers| {
        loads_per_second(store, keys.clone(), workers)
    })
    .await;

    // Leave nothing behind in Redis (the caller drops the table).
    if let Some(cache) = &redis_cache {
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
