//! Django's `cache` session engine (`django.contrib.sessions.backends.cache`), in Rust: sessions
//! in Redis (a single server, behind Sentinel, or a Redis Cluster), in memcached (one server or several), or in a
//! bounded in-process cache.
//!
//! # Quick start (in-process cache)
//!
//! ```
//! # #[cfg(feature = "memory")] {
//! use std::sync::Arc;
//! use session_cache::{Cache, CacheStore, MemoryBound, MemoryCache};
//! use session_core::{Session, SessionConfig, SessionStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = SessionConfig::new("a long random secret");
//! let cache = Cache::new(MemoryCache::bounded(MemoryBound::Entries(100_000)));
//! let store: Arc<dyn SessionStore> = Arc::new(CacheStore::new(cache, &config)?);
//! let config = Arc::new(config);
//!
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.insert("cart", &vec![3, 1, 4]).await?;
//! session.save().await?;
//! let key = session.key().expect("saved sessions have a key");
//!
//! let next_request = Session::new(store, config, Some(key.as_str()));
//! assert_eq!(next_request.get::<Vec<u32>>("cart").await?, Some(vec![3, 1, 4]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # }
//! ```
//!
//! # Layers
//!
//! - [`CacheBackend`]: a byte cache with per-entry lifetimes and the atomic operations sessions
//!   need: `get`, `set`, `add` (only if absent: `SET NX`), `replace` (only if present: `SET XX`),
//!   `delete`, `exists`. Implemented by [`MemoryCache`] (feature `memory`, on by default),
//!   [`RedisCache`] (feature `redis`: single server or Cluster) and [`MemcachedCache`] (feature
//!   `memcached`: one server or several).
//! - [`Cache`]: Django's `caches[alias]`, a backend plus its [`KeyFunction`] (`KEY_PREFIX`,
//!   `VERSION`). It takes logical keys and expiry ages in seconds, and applies Django's rule that a
//!   non-positive age leaves nothing readable, once for every backend. [`Caches`] holds caches by
//!   alias (Django's `CACHES`).
//! - [`CacheStore`]: the [`SessionStore`](session_core::SessionStore) of Django's cache engine.
//!
//! The cached-db store (`session-cached-db`) builds its write-through cache on [`Cache`] too, with
//! its own key prefix `django.contrib.sessions.cached_db`: it calls [`Cache::set`],
//! [`Cache::get`], [`Cache::exists`] and [`Cache::delete`] on logical keys and decides itself
//! that cache failures are logged, not fatal. A trait object rather than an enum of backends keeps
//! that store, and users with another cache, independent of which backends are compiled in.
//!
//! # Key layout
//!
//! | what | value |
//! |---|---|
//! | logical key ([`CacheStore::cache_key`]) | `django.contrib.sessions.cache` + session key |
//! | stored key ([`CacheStore::physical_key`]) | `<KEY_PREFIX>:<VERSION>:` + logical key |
//! | default stored key | `:1:django.contrib.sessions.cache` + 32 chars (64 chars in all) |
//! | value | the pickle of the session dict (unsigned), as Django's cache framework stores it; [`CacheStore::with_cache_serializer`] for JSON or MessagePack |
//! | lifetime | the session's expiry age in whole seconds (`SET … EX`), as Django's `get_expiry_age()` |
//!
//! Several applications share one Redis safely by giving each its own `KEY_PREFIX`
//! ([`Cache::with_key_prefix`]).
//!
//! # Sharing sessions with Django
//!
//! Configure Django with `django.core.cache.backends.redis.RedisCache` on the same Redis and
//! `SESSION_ENGINE = "django.contrib.sessions.backends.cache"`, and on this side
//! `SessionConfig { serializer: SerializerName::Pickle, .. }` with the same `KEY_PREFIX` and
//! `VERSION` as Django's `CACHES` entry. Django's cache stores the session dict as a pickle
//! (its `RedisSerializer` pickles everything but plain ints, and a session is always a dict;
//! `SESSION_SERIALIZER` plays no part), which our pickle serializer reads (protocols 0–5) and
//! writes (protocol 4; Django writes 5, and reads both) without ever executing anything. Sessions
//! holding Python objects other than plain data (a `datetime`, say) cannot be read and load as
//! empty, with the security warning. `fixtures/django/generate_cache.py` checks both directions
//! against real Django 5.2 and records the results in `fixtures/django/cache-sessions.json`, which
//! this crate's tests replay.
//!
//! # Memcached
//!
//! [`MemcachedCache`] shares sessions with Django's `PyMemcacheCache` byte for byte: configure
//! Django with `django.core.cache.backends.memcached.PyMemcacheCache` and the same servers in
//! `LOCATION`, and this side with the same servers (named the same way: `127.0.0.1:11211` and
//! `localhost:11211` are different names to the hash), the same `KEY_PREFIX`/`VERSION` and the
//! pickle serializer:
//!
//! - **values**: the session dict pickled, with pymemcache's pickle flag ([`FLAG_PICKLE`]), which
//!   is what `pymemcache.serde.pickle_serde` writes for a dict and reads back;
//! - **placement**: with several servers, each key lives on the server pymemcache's `HashClient`
//!   picks (rendezvous hashing over pymemcache's `murmur3_32` of `"host:port-<key>"`), so both
//!   sides look for a session on the same server; [`MemcachedCacheBuilder::server_for`] tells
//!   which;
//! - **keys**: Django's memcached rules ([`memcached_key_problem`]): at most 250 characters, no
//!   spaces or control characters. Writing such a key is an error; reading one is a miss (Django
//!   refuses it and its session `load` treats that as a miss, ticket #17810);
//! - **lifetimes**: up to 30 days relative, longer ones as absolute Unix times as Django sends
//!   them, capped at memcached's last second (2038-01-19). Django itself stores nothing readable
//!   for a session expiring after that date (its exptime overflows; recorded in the fixture);
//! - **saves**: a new session is memcached's `add` (atomic: of two creators one wins), an update is
//!   `replace` (a session deleted meanwhile is never recreated); the `merge` and `reject`
//!   concurrency policies use `gets` and `cas` (see "Concurrency policies" below), which
//!   [`MemcachedCache::gets`] and [`MemcachedCache::cas`] also expose.
//!
//! A server that is down fails the calls for the sessions it holds with
//! [`CacheError::Memcached`] (a store error, within the connection and response timeouts), and
//! the next call reconnects. Keys never move to another server (pymemcache, after repeated
//! failures, drops a dead server and remaps its keys), so a session cannot come back from a
//! stale copy. `fixtures/django/generate_memcached.py` checks both directions against real
//! Django 5.2 + pymemcache on one server and on three, and records `memcached-sessions.json`,
//! which the tests replay.
//!
//! The example runs against the servers named in `SESSION_TEST_MEMCACHED_URLS` (and does
//! nothing without them):
//!
//! ```
//! # #[cfg(feature = "memcached")] {
//! use std::sync::Arc;
//! use session_cache::{Cache, CacheStore, MemcachedCache};
//! use session_core::serializer::SerializerName;
//! use session_core::{Session, SessionConfig, SessionStore};
//!
//! # let Ok(urls) = std::env::var("SESSION_TEST_MEMCACHED_URLS") else { return };
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // Django: CACHES = {"default": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
//! //                               "LOCATION": ["127.0.0.1:11211", "127.0.0.1:11212"]}}
//! // and here urls = "memcache://127.0.0.1:11211,memcache://127.0.0.1:11212"
//! let config = SessionConfig {
//!     serializer: SerializerName::Pickle,
//!     ..SessionConfig::new("the Django site's SECRET_KEY")
//! };
//! let memcached = MemcachedCache::connect(&urls).await?;
//! let store: Arc<dyn SessionStore> = Arc::new(CacheStore::new(Cache::new(memcached), &config)?);
//! let config = Arc::new(config);
//!
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.insert("cart", &vec![3, 1, 4]).await?;
//! session.save().await?;
//! let key = session.key().expect("saved sessions have a key");
//! let next_request = Session::new(store.clone(), config, Some(key.as_str()));
//! assert_eq!(next_request.get::<Vec<u32>>("cart").await?, Some(vec![3, 1, 4]));
//! # store.delete(&key).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # }
//! ```
//!
//! # django-redis
//!
//! Sites on the `django-redis` package (`django_redis.cache.RedisCache`) share sessions the same
//! way: its default serializer pickles (protocol 4 on the Pythons Django 5.2 supports; we read
//! every protocol and write 4) and its key function is Django's `<KEY_PREFIX>:<VERSION>:<key>`, so
//! a [`RedisCache`] with the pickle serializer reads and writes its sessions as they are. With its
//! `COMPRESSOR` option, wrap the backend in a [`CompressedCache`] with the same [`Compressor`]
//! (feature `compression`): zlib, gzip, lz4 and zstd are read and written, lzma is read (ours are
//! stored uncompressed, which django-redis reads as it reads its own short values). As in
//! django-redis, values up to the compressor's threshold stay plain and reading falls back to the
//! bytes as they are when they are not compressed; decompression is bounded.
//! `fixtures/django/generate_django_redis.py` checks every compressor both ways against real
//! django-redis 7 and Django 5.2.
//!
//! ```no_run
//! # #[cfg(all(feature = "redis", feature = "compression"))] {
//! use session_cache::{Cache, CompressedCache, Compressor, RedisCache};
//!
//! # async fn demo() -> Result<(), session_cache::CacheError> {
//! // Django: "BACKEND": "django_redis.cache.RedisCache",
//! //         "OPTIONS": {"COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor"}
//! let redis = RedisCache::connect("redis://127.0.0.1:6379/1").await?;
//! let cache = Cache::new(CompressedCache::new(redis, Compressor::Zlib));
//! # let _ = cache;
//! # Ok(()) }
//! # }
//! ```
//!
//! # Redis Cluster
//!
//! Give [`RedisCache::connect`] several comma-separated seed URLs (or call
//! [`RedisCacheBuilder::cluster`] for one seed); the cluster client finds the other nodes, follows
//! slot moves (MOVED, ASK) and reconnects to failed nodes. Every command touches one key, so no
//! hash tags are needed. With replicas, a killed master's replica is promoted and the store
//! follows by itself; [`RedisCacheBuilder::wait_for_replicas`] works on a Cluster too (`WAIT` goes
//! to the key's master in the same pipeline as the write), so acknowledged saves survive the
//! failover. The soak `soak_through_a_cluster_master_failover_loses_and_crosses_nothing`
//! (`soak/README.md`) kills a master of a 3 + 3 cluster mid-run: store errors only meanwhile,
//! zero lost, crossed or mixed updates.
//!
//! # Redis Sentinel, and what an acknowledged save survives
//!
//! [`RedisCache::sentinel`] takes the sentinels' URLs and the monitored group's name: the master
//! is looked up through the sentinels (and checked with `ROLE`) when connecting and again after
//! any failed command, so the store follows a failover by itself. During the failover window
//! calls fail with [`CacheError::Redis`] (a store error, never a panic), within the timeouts;
//! afterwards they succeed again without rebuilding anything.
//!
//! Redis replicates asynchronously: by default a save is acknowledged once the master applied
//! it, and a master that dies before its replica received the last writes loses them in the
//! failover. [`RedisCacheBuilder::wait_for_replicas`] sends `WAIT n timeout` with every write (in
//! the same round trip): a save is then acknowledged only once `n` replicas have it, and one they
//! did not confirm in time fails with [`CacheError::NotReplicated`] (the master applied it; it may
//! or may not survive a failover). `WAIT` is not a consensus protocol: a replica that received a
//! write could still lose an election to one that did not, which with one replica cannot happen.
//!
//! `tests/redis_sentinel.rs` starts one master, one replica and three sentinels on loopback,
//! saves sessions from four tasks with `WAIT 1`, and fails the master over mid-load, once with
//! `SENTINEL FAILOVER` and once by killing it: errors appear only between the failover's start
//! and the first save on the promoted master, every one a store error, and every session
//! acknowledged before, during and after is there at the end. Measured 2026-12-06 on the
//! 2-core development machine (down-after 1 s): `SENTINEL FAILOVER`, 1,866 saves acknowledged,
//! 80 refused, 16.7 s from the command to the first save on the new master (most of it the
//! demoted master resyncing, which `WAIT 1` waits for); kill, 1,719 acknowledged, 1,184 refused,
//! 17.7 s (detection, election, and the restarted node's full resync).
//!
//! # Concurrency policies
//!
//! Every built-in backend can compare-and-swap, so [`CacheStore`] serves the `merge` and
//! `reject` [`ConcurrencyPolicy`](session_core::ConcurrencyPolicy) on all of them (a backend of
//! your own declares it with [`CacheBackend::can_compare_and_swap`]; without it, building a
//! store for those policies fails with a configuration error). The default, `last_write_wins`,
//! sends exactly what it sent before: plain loads and saves are unchanged.
//!
//! A version ([`VersionedValue::version`]) is the stored bytes, exactly what Django's cache
//! holds, followed by a stamp the cache changes on every write, so any write is seen, Django's
//! included, even one of the same bytes (Django re-saving an unchanged session):
//!
//! | backend | versioned load | conditional save | stamp |
//! |---|---|---|---|
//! | [`RedisCache`] (single, Sentinel, Cluster) | `GET` and `PEXPIRETIME` in one `MULTI`/`EXEC` transaction | one script call ([`COMPARE_AND_SWAP_SCRIPT`]: compare, then `SET … EX` or `DEL`), with `WAIT` when configured | absolute expiry, in ms |
//! | [`MemcachedCache`] | `gets` | `cas` with the token read, then `gets` for the new token: two round trips | `cas unique` |
//! | [`MemoryCache`] | a read | one per-key `and_compute_with` | a write counter |
//! | [`CompressedCache`] | the inner one's, then decompression | compression, then the inner one's | the inner one's (the compared bytes are the stored, compressed ones) |
//!
//! Costs and caveats:
//!
//! - Redis: the compare-and-swap script is sent by hash (`EVALSHA`); a server that does not hold
//!   it yet (new, restarted, failed over, a Cluster node seeing it first) answers `NOSCRIPT` and
//!   gets the source once (`EVAL`): one extra round trip. The versioned read is a transaction of
//!   two plain commands rather than a script because a script call costs the server about five
//!   times as much (5.7 µs against 1.2 µs for a 2 KB session, Redis 7.0's `INFO commandstats`).
//!   Both touch one key, so they run on a Cluster without hash tags. `PEXPIRETIME` needs Redis
//!   7.0 or later; on older servers a `merge` or `reject` load or save fails with a store error
//!   (`last_write_wins` works on any version). Two writes of the same bytes with the same
//!   lifetime within one millisecond share a version, which loses nothing (the stored session
//!   is the same).
//! - The version a session holds between its load and its save is a copy of the stored value
//!   (plus 8 bytes).
//! - A non-positive expiry age removes the entry, under the same condition, as a plain save
//!   does; a swap never recreates a deleted or expired entry (`SessionDeleted`).
//! - memcached's `cas` does not answer the new token: if another write lands between the `cas`
//!   and the `gets` that follows it, the session's next conditional save conflicts (or merges
//!   again) rather than overwriting that write.
//!
//! `tests/django_writer_races.rs` writes Django's recorded bytes (a raw `SET` on Redis and on a
//! Cluster, django-redis's zlib on Redis, pymemcache's `set` on memcached, the memory cache) between
//! a load and a save: a conflict under `reject`, Django's keys kept under `merge`.
//!
//! # Failures
//!
//! A [`RedisCache`] reconnects by itself: calls made while Redis is down fail with an error within
//! the configured connection/response timeouts (default 2 s each, 2 reconnection attempts), and
//! calls after it comes back succeed, with no need to rebuild the store.
//!
//! # Performance
//!
//! `cargo bench -p session-cache` measures this crate against its floor (see `benches/`); the figures,
//! with their dates and machines, are in `benches/README.md` beside the benches, and the
//! comparison with Django and tower-sessions in the workspace's `bench/README.md`.

// The docs link to both backends; with one compiled out, those links cannot resolve.
#![cfg_attr(
    not(all(
        feature = "memory",
        feature = "redis",
        feature = "memcached",
        feature = "compression"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

mod backend;
mod cache;
#[cfg(feature = "compression")]
mod compression;
mod error;
mod keys;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod sentinel;
mod store;

pub use backend::{CacheBackend, Swap, Ttl, VersionedValue};
pub use cache::{Cache, Caches, DEFAULT_CACHE_ALIAS};
#[cfg(feature = "compression")]
pub use compression::{CompressedCache, Compressor};
pub use error::CacheError;
pub use keys::KeyFunction;
#[cfg(feature = "memcached")]
pub use memcached::{
    CasOutcome, CasToken, FLAG_PICKLE, MemcachedCache, MemcachedCacheBuilder, MemcachedError,
    memcached_key_problem,
};
#[cfg(feature = "memory")]
pub use memory::{MemoryBound, MemoryCache};
#[cfg(feature = "redis")]
pub use redis::{COMPARE_AND_SWAP_SCRIPT, RedisCache, RedisCacheBuilder};
pub use store::{CACHE_SESSION_KEY_PREFIX, CacheStore};
