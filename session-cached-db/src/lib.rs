//! Django's `cached_db` session engine (`django.contrib.sessions.backends.cached_db`) in Rust: any
//! cache from `session-cache` in front of any session store, typically a `session-db` database.
//!
//! Sessions live in the database, the source of truth; a write-through cache in front of it
//! answers most loads without a query. It is Django's engine exactly: the same table and rows, the
//! same cache keys and values, so a Django site using `cached_db` on the same database and cache
//! shares live sessions with this store, both ways.
//!
//! # Quick start (in-process cache, SQLite)
//!
//! ```
//! # #[cfg(feature = "memory")] {
//! use std::sync::Arc;
//! use session_cache::{Cache, MemoryCache};
//! use session_cached_db::CachedDbStore;
//! use session_core::{Session, SessionConfig, SessionStore};
//! use session_db::SqliteStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = SessionConfig::new("the Django site's SECRET_KEY");
//! let db = SqliteStore::connect("sqlite::memory:", &config).await?;
//! db.ensure_schema().await?;
//! let store = CachedDbStore::new(Cache::new(MemoryCache::new()), db, &config)?;
//! let store = Arc::new(store);
//! let config = Arc::new(config);
//!
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.insert("_auth_user_id", "42").await?;
//! session.save().await?; // the database first, then the cache
//! let key = session.key().expect("saved");
//!
//! // The row is Django's, and the cache holds the same session under Django's key.
//! assert!(store.db().row(key.as_str()).await?.is_some());
//! let physical = store.physical_key(&key);
//! assert_eq!(physical, format!(":1:django.contrib.sessions.cached_db{}", key.as_str()));
//! assert!(store.cache().backend().exists(&physical).await?);
//!
//! // A later request: served from the cache, no query.
//! let again = Session::new(store.clone(), config.clone(), Some(key.as_str()));
//! assert_eq!(again.get::<String>("_auth_user_id").await?.as_deref(), Some("42"));
//!
//! // Logging out removes both.
//! again.flush().await?;
//! assert!(store.db().row(key.as_str()).await?.is_none());
//! assert!(!store.cache().backend().exists(&physical).await?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # }
//! ```
//!
//! With Redis and PostgreSQL, build the parts the same way: `session_cache::RedisCache::connect`
//! (feature `redis`) and `session_db::PgStore::connect`.
//!
//! # What it does
//!
//! | operation | cache | database |
//! |---|---|---|
//! | load | read first; on a hit, done | on a miss: read the live row, then refill the cache *if still absent*, for the whole seconds left until the row's `expire_date`; if it was refilled, the row is checked to be still what was read (`is_unchanged` with the version read, when the database can compare-and-swap; otherwise `exists`) |
//! | exists | read first; a hit answers `true` with no query | asked only when the cache does not have the key |
//! | save | written second (`SET`, lifetime until the new `expire_date`) | written first: it alone decides [`CreateConflict`](session_core::Error::CreateConflict) and [`SessionDeleted`](session_core::Error::SessionDeleted); then, after the cache write, checked to be still there (`exists`; under `merge` and `reject`, still at the version written: `is_unchanged`) |
//! | delete | removed second | removed first |
//! | clear_expired | nothing: entries expire with their rows | `DELETE … WHERE expire_date < now` (Django's `clearsessions`) |
//!
//! The refill lifetime comes from [`SessionStore::load_with_expiry`](session_core::SessionStore::load_with_expiry): `session-db` reports the
//! row's `expire_date` in the same query. A database store that does not report an expiry (its
//! `expires_at` is `None`, the trait's default) gets a lifetime computed from the session data
//! instead: its `_session_expiry`, else the cookie age, counted from the load. Implement
//! `load_with_expiry` in such a store, or the cached copy may outlive its record by up to that
//! much.
//!
//! # Key layout and values
//!
//! | what | value |
//! |---|---|
//! | logical key ([`CachedDbStore::cache_key`]) | `django.contrib.sessions.cached_db` + session key |
//! | stored key ([`CachedDbStore::physical_key`]) | `<KEY_PREFIX>:<VERSION>:` + logical key; by default `:1:django.contrib.sessions.cached_db` + 32 chars (68 in all) |
//! | value | the session dict, **pickled** (Django's cache framework pickles every value) |
//! | lifetime | whole seconds until the row's `expire_date` |
//! | database row | exactly the `session-db` / Django `db` engine row (`session_data` signed with `config.serializer`, JSON by default) |
//!
//! A Django site has two serializers here, and so does this store: `SESSION_SERIALIZER`
//! (`config.serializer`) for the signed `session_data` in the database, and pickle for the cache,
//! which Django's cache framework always uses. So one [`SessionConfig`](session_core::SessionConfig)
//! describes the site and both sides agree with no further setting;
//! [`CachedDbStore::with_cache_serializer`] changes the cache's for caches no Django site reads.
//!
//! # Generic over the database, a trait object for the cache
//!
//! `CachedDbStore<D: SessionStore>` is generic over the database store and holds the cache as a
//! [`session_cache::Cache`], whose backend is a trait object:
//!
//! - **The database is a type parameter** because it is what a service configures once and keeps
//!   using directly: [`CachedDbStore::db`] returns the concrete `DbStore` with its schema helpers,
//!   rows and pool, with no downcasting. Any store works, including a user's own and
//!   `Arc<dyn SessionStore>` (which implements the trait) when the choice is made at run time, so
//!   the generic costs no flexibility.
//! - **The cache is a trait object** because [`Cache`](session_cache::Cache) is Django's
//!   `caches[alias]`: picked by alias from configuration ([`CachedDbStore::from_caches`]),
//!   memory, Redis or Cluster behind one type, shared with the cache engine's design. One
//!   indirect call per cache operation costs nothing next to a network round trip, and this crate
//!   compiles the same whichever cache backends are enabled.
//!
//! # Failure model: the cache is an optimisation, never a source of truth
//!
//! - **Every operation succeeds if the database does.** A cache that is down, times out or holds
//!   garbage is logged on target [`LOG_TARGET`] (`django.contrib.sessions`) and the database
//!   answers: a failed read is a WARNING (`Error reading from cache (…)`), an entry that is not
//!   session data a WARNING (then it is replaced from the database), a failed write after a
//!   successful database save an ERROR with Django's message `Error saving to cache (…)` (the save
//!   still succeeds, as in Django 5.1+). Database errors are returned unchanged.
//! - **No stale reads after a failed cache write.** When the database changed (save, delete, or a
//!   save that found the session deleted) but the cache could not be written, the store removes
//!   the old entry. If that fails too, the session is marked stale in this process: it is read from
//!   the database, and its entry is removed before the cache is trusted for it again
//!   ([`CachedDbStore::stale_sessions`] counts them; successful cache operations retry a few
//!   removals on the side). So a cache that comes back with old data (a Redis with persistence, a
//!   network partition) never serves it. Other processes sharing the cache do not know about this
//!   process's failures: if several processes must be protected, give the cache short timeouts so
//!   that "write failed" and "cache unreachable" coincide, or flush the cache after an outage.
//!   The tracking is bounded ([`STALE_CAPACITY`] sessions, logged when exceeded).
//! - **Outages cost the cache's timeouts.** Each operation tries the cache before falling back,
//!   so configure short connection and response timeouts on a remote cache
//!   (`RedisCache::builder`).
//! - **A delete always wins**, even against a save or a refill running at the same moment: see
//!   [the next section](#a-logout-is-never-undone). When the check that guarantees it cannot
//!   reach the database, the entry it could not confirm is removed (logged as a WARNING, `Error
//!   checking the database after caching a session (…)`), and if the cache refuses that too, the
//!   session is marked stale as above.
//! - **Races between writes.** A refill only fills an absent entry, so a load that read the row
//!   just before a concurrent save cannot overwrite that save's newer cache entry (Django's
//!   refill is a plain `set` and can). For saves whose cache writes cross, see [races between
//!   writes](#races-between-writes).
//! - **Rows deleted behind the store's back** (SQL run by hand, another application's store
//!   without the cache): as in Django, the cached copy keeps loading until it expires or the
//!   session is saved; that save fails with [`SessionDeleted`](session_core::Error::SessionDeleted)
//!   and removes the copy. Deletes through this store (logout, flush, `cycle_key`) always remove
//!   both. `clearsessions` deletes only expired rows, whose cache entries have expired already.
//!
//! # A logout is never undone
//!
//! A save, a load that misses the cache, and a delete (logout, `flush`, `cycle_key`) each touch
//! the row and the cache entry in turn, and nothing makes a database step and a cache step
//! atomic together:
//!
//! | operation | steps |
//! |---|---|
//! | save | **S1** write the row · **S2** `set` the entry · **S3** check the row (`exists`, or `is_unchanged`: see [races between writes](#races-between-writes)); if it is gone, **S4** delete the entry |
//! | load, on a miss | **R1** read the row · **R2** `add` the entry (only if absent) · if added, **R3** check the row as S3 does; if it is gone, **R4** delete the entry |
//! | delete | **D1** delete the row · **D2** delete the entry |
//!
//! Take any delete racing a save or a refill whose row step came first (S1 or R1 before D1;
//! otherwise the update fails with `SessionDeleted` or the load finds nothing), and let W be that
//! operation's cache write (S2 or R2), with each cache and database operation atomic:
//!
//! - **W before D2**: D2 removes the entry; deletes are unconditional.
//! - **W after D2**, so after D1: the check (S3 or R3) comes after W, finds no row, and removes
//!   the entry. Without the check this is the resurrection Django's `cached_db` allows: the
//!   entry serves the logged-out session until it expires, although its row is gone.
//! - The check must come **after** the write: made before it, a delete could still fall between
//!   the check and the write, and nothing would notice.
//! - If the check fails (the database is unreachable), the entry is removed anyway: the cache is
//!   only an optimisation, so doubt costs one database read later. If the cache refuses that
//!   removal, the session is marked stale in this process (the failure model above).
//! - `exists` also counts an expired row that is not cleared yet. That does not matter: every
//!   entry's lifetime ends no later than its row's `expire_date`.
//!
//! So once a delete and the operations racing it have returned, no load in any process finds
//! the session (short of a cache that also refuses deletes, above). While a racing save or refill is still between W and its check (one
//! primary-key query), another request can still read the data it is caching; a refill only
//! ever caches data read before the delete. Closing that last window would take cache entries
//! versioned by the database (compare-and-set), which Django's cache format does not carry.
//!
//! The price is one primary-key query per save and per refill (see the figures below); a load
//! served from the cache does exactly what it did before, one cache read.
//! `tests/delete_races.rs` holds each step of both windows at a gate, runs the delete there, and
//! checks that nothing is left.
//!
//! # Races between writes
//!
//! A save writes the row, then the entry; nothing orders two saves' cache writes the way their
//! row writes were ordered. When two saves of one session cross (A writes the row, B writes the
//! row and then the entry, then A's entry lands), the cache holds A's older data while the row
//! holds B's. Under `merge` both saves were acknowledged, so a reader served from the cache
//! would miss B's update although the database has it.
//!
//! Saves under `merge` and `reject` go through the database's compare-and-swap, which returns
//! the [`Version`](session_core::Version) it wrote, and their check after the cache write (S3)
//! asks whether the row is **still at that version**
//! ([`SessionStore::is_unchanged`](session_core::SessionStore::is_unchanged), one primary-key
//! query on `session-db`). A's check comes after A's cache write, which came after B's row
//! write, so it sees B's version and removes the entry; the next load refills it from the row.
//! Refills are checked the same way, with the version read: a refill is only an `add`, but the
//! entry it fills may have been removed by a conflict meanwhile. So once the saves and refills
//! racing each other have returned, the entry is absent or holds what the row holds, whatever
//! the order.
//!
//! Plain saves (`last_write_wins`, Django's) have no version to check against, so two of them
//! racing can leave the row with one's data and the cache with the other's, as in Django (both
//! were in flight at once, and one of them loses its update anyway); the next save makes them
//! agree. A database store that cannot compare-and-swap gets the `exists` check everywhere.
//! `tests/write_races.rs` holds one cache write at a gate while the other write completes.
//!
//! # Sharing sessions with Django
//!
//! Django: `SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"`, a `CACHES` entry on
//! the same Redis (`django.core.cache.backends.redis.RedisCache`) and the same database. Here: a
//! [`session_cache::Cache`] with the same `KEY_PREFIX` and `VERSION`, a `session_db` store on
//! the same table, and a [`SessionConfig`](session_core::SessionConfig) with the same
//! `SECRET_KEY` and `SESSION_SERIALIZER`. `fixtures/django/generate_cached_db.py` checks both
//! directions against Django 5.2 on Redis and PostgreSQL.
//!
//! # Concurrency policies
//!
//! The store can compare-and-swap exactly when its database store can
//! ([`StoreCapabilities`](session_core::StoreCapabilities) are the database's: every
//! `session-db` store can), so the `merge` and `reject`
//! [concurrency policies](session_core::ConcurrencyPolicy) work on it with the database's
//! statements (see `session-db`'s documentation). The cache takes no part in the decision:
//! Django's cache entries are bare pickled dicts and carry no version.
//!
//! | operation | cache | database |
//! |---|---|---|
//! | versioned load (`load_versioned`) | refilled afterwards *if absent*, as after a miss (checked with `is_unchanged` and the version read) | always read: the row and its version |
//! | compare-and-swap (`save_if_unchanged`) | on success, written through as by a save (`SET`, then `is_unchanged` with the version written); on [`Conflict`](session_core::Error::Conflict) or [`SessionDeleted`](session_core::Error::SessionDeleted), the entry is removed | the database's conditional `UPDATE` decides |
//!
//! So a stale cache entry (a row changed by a process that does not use the cache) never hides
//! the newer row from these policies, and a lost swap removes it for everyone else's plain loads
//! too. Django's own `cached_db` saves write the row first, so they are detected like any write.
//!
//! **What it costs.** Under `merge` or `reject` every load of an existing session is a database
//! query: the cache cannot say which version its copy is of, so the warm-cache fast path (a load
//! with no query) is given up, and the cache only serves `last_write_wins` readers. A save costs
//! what a plain save costs (the swap, the `SET`, the check), plus the database's second query
//! and a cache delete when it loses, and under `merge` a load and a swap per retry. Under
//! `last_write_wins` (the default) nothing changes. If loads must stay cache-only, keep
//! `last_write_wins` and accept Django's lost updates.
//!
//! # Performance
//!
//! `cargo bench -p session-cached-db` measures this crate against its floor (see `benches/`); the figures,
//! with their dates and machines, are in `benches/README.md` beside the benches, and the
//! comparison with Django and tower-sessions in the workspace's `bench/README.md`.

mod error;
mod stale;
mod store;

pub use error::CachedDbError;
pub use store::{CACHED_DB_KEY_PREFIX, CachedDbStore, LOG_TARGET, STALE_CAPACITY};
