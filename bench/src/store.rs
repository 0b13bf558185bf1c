//! Store round trips (load + modify + save) per second at several concurrencies: our stores,
//! tower-sessions' matching stores, and the floor of each backend.
//!
//! Every worker task loops on its own session (so saves never queue on one row or key), loading
//! it, incrementing its `visits` counter and saving it with a fresh two-week expiry, through the
//! store trait of each library: what a request that changes its session costs the store. Ours
//! goes through `load_shared`/`save_shared`, the calls our `Session` handle makes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use session_core::{
    ConcurrencyPolicy, Dict, SaveMode, Session, SessionConfig, SessionKey, SessionRecord,
    SessionStore, SharedRecord,
};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};

use crate::BoxError;
use crate::payload::{Payload, bump};

/// Django's default `SESSION_COOKIE_AGE`, used by both libraries here.
pub const TWO_WEEKS: i64 = 1_209_600;

/// One load + modify + save, by worker `worker` on its own session.
pub trait RoundTrip: Send + Sync + 'static {
    /// Performs one round trip.
    fn round_trip(&self, worker: usize) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// Round trips per second with `concurrency` tasks, counted for `measure` after `warm_up`, and
/// this process's CPU microseconds per round trip (the client's share of the cost; a server's is
/// not counted), when readable.
pub async fn measure<T: RoundTrip>(
    target: &Arc<T>,
    concurrency: usize,
    warm_up: Duration,
    measure: Duration,
) -> Result<(f64, Option<f64>), BoxError> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (target, done, stop) = (target.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    target.round_trip(worker).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    // A request boundary: in-memory stores never wait, and without this one task
                    // would hold its worker thread (and the timer) until the end of the run.
                    tokio::task::yield_now().await;
                }
                Ok::<(), BoxError>(())
            })
        })
        .collect();
    tokio::time::sleep(warm_up).await;
    let cpu_start = crate::machine::process_cpu_seconds();
    let (start_count, started) = (done.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(measure).await;
    let (end_count, elapsed) = (done.load(Ordering::Relaxed), started.elapsed());
    let cpu_end = crate::machine::process_cpu_seconds();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    let count = (end_count - start_count) as f64;
    let cpu = match (cpu_start, cpu_end) {
        (Some(start), Some(end)) if count > 0.0 => Some((end - start) / count * 1e6),
        _ => None,
    };
    Ok((count / elapsed.as_secs_f64(), cpu))
}

fn two_weeks_from_now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(TWO_WEEKS)
}

/// Our side: any [`SessionStore`], one session per worker.
pub struct Ours<S> {
    store: S,
    keys: Vec<SessionKey>,
}

impl<S: SessionStore> Ours<S> {
    /// Creates `sessions` sessions holding `payload`.
    pub async fn new(store: S, payload: &Payload, sessions: usize) -> Result<Self, BoxError> {
        let mut keys = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let key = SessionKey::generate()?;
            let record = SessionRecord {
                data: &payload.dict,
                expires_at: two_weeks_from_now(),
                expiry_age: TWO_WEEKS,
            };
            store.save(&key, record, SaveMode::MustCreate).await?;
            keys.push(key);
        }
        Ok(Ours { store, keys })
    }

    /// The sessions' keys.
    pub fn keys(&self) -> &[SessionKey] {
        &self.keys
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Deletes every session this created.
    pub async fn clean_up(&self) -> Result<(), BoxError> {
        for key in &self.keys {
            self.store.delete(key).await?;
        }
        Ok(())
    }

    /// The `visits` counter of worker `worker`'s session.
    pub async fn visits(&self, worker: usize) -> Result<i64, BoxError> {
        let data: Dict = self
            .store
            .load(&self.keys[worker])
            .await?
            .ok_or("a benchmark session vanished")?;
        Ok(data
            .get("visits")
            .and_then(session_core::Value::as_i64)
            .unwrap_or(0))
    }
}

impl<S: SessionStore + 'static> RoundTrip for Ours<S> {
    async fn round_trip(&self, worker: usize) -> Result<(), BoxError> {
        // What a `Session` does on a request that changes its data: load shared, change
        // copy-on-write, hand the changed data back.
        let key = &self.keys[worker];
        let mut data = self
            .store
            .load_shared(key)
            .await?
            .ok_or("a benchmark session vanished")?;
        bump(Arc::make_mut(&mut data));
        let record = SharedRecord {
            data,
            expires_at: two_weeks_from_now(),
            expiry_age: TWO_WEEKS,
        };
        self.store
            .save_shared(key, record, SaveMode::Update)
            .await?;
        Ok(())
    }
}

/// A request's round trip through a [`Session`] handle, as the middleware makes it: a fresh
/// handle on the worker's session key, read `visits`, write it back incremented, save. Under
/// `merge` (or `reject`) the load is `load_versioned` and the save `save_if_unchanged`; under
/// `last_write_wins` they are `load_shared` and `save_shared`. Each worker has a session of its
/// own, so a compare never fails: this is the price of the check itself, not of retries.
pub struct ThroughSession {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    keys: Vec<SessionKey>,
}

impl ThroughSession {
    /// Round trips on `keys` in `store` under `policy`.
    pub fn new(
        store: Arc<dyn SessionStore>,
        policy: ConcurrencyPolicy,
        keys: Vec<SessionKey>,
    ) -> Self {
        let config = SessionConfig {
            concurrency: policy,
            ..config()
        };
        ThroughSession {
            store,
            config: Arc::new(config),
            keys,
        }
    }
}

impl RoundTrip for ThroughSession {
    async fn round_trip(&self, worker: usize) -> Result<(), BoxError> {
        let key = self.keys[worker].as_str();
        let session = Session::new(self.store.clone(), self.config.clone(), Some(key));
        let visits: i64 = session.get("visits").await?.unwrap_or(0);
        session.insert("visits", &(visits + 1)).await?;
        session.save().await?;
        if session.key().as_ref() != Some(&self.keys[worker]) {
            return Err("a benchmark session vanished".into());
        }
        Ok(())
    }
}

/// tower-sessions' side: any of its stores, one session per worker.
pub struct Tower<S> {
    store: S,
    ids: Vec<Id>,
}

impl<S: tower_sessions::SessionStore> Tower<S> {
    /// Creates `sessions` sessions holding `payload`.
    pub async fn new(store: S, payload: &Payload, sessions: usize) -> Result<Self, BoxError> {
        let data: HashMap<String, serde_json::Value> = payload.serde_map()?.into_iter().collect();
        let mut ids = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let mut record = Record {
                id: Id::default(),
                data: data.clone(),
                expiry_date: two_weeks_from_now(),
            };
            store.create(&mut record).await?;
            ids.push(record.id);
        }
        Ok(Tower { store, ids })
    }

    /// The sessions' ids.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Deletes every session this created.
    pub async fn clean_up(&self) -> Result<(), BoxError> {
        for id in &self.ids {
            self.store.delete(id).await?;
        }
        Ok(())
    }

    /// The `visits` counter of worker `worker`'s session.
    pub async fn visits(&self, worker: usize) -> Result<i64, BoxError> {
        let record = self
            .store
            .load(&self.ids[worker])
            .await?
            .ok_or("a benchmark session vanished")?;
        Ok(record
            .data
            .get("visits")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0))
    }
}

impl<S: tower_sessions::SessionStore> RoundTrip for Tower<S> {
    async fn round_trip(&self, worker: usize) -> Result<(), BoxError> {
        let mut record = self
            .store
            .load(&self.ids[worker])
            .await?
            .ok_or("a benchmark session vanished")?;
        let visits = record
            .data
            .get("visits")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        record.data.insert("visits".into(), (visits + 1).into());
        record.expiry_date = two_weeks_from_now();
        self.store.save(&record).await?;
        Ok(())
    }
}

/// The in-memory floor: a locked map of byte strings the size of our stored value, copied out,
/// changed and put back. No session data structure, no expiry.
pub struct MemoryFloor {
    map: Mutex<HashMap<usize, Vec<u8>>>,
}

impl MemoryFloor {
    /// A map of `sessions` values of `value_len` bytes.
    pub fn new(sessions: usize, value_len: usize) -> Self {
        MemoryFloor {
            map: Mutex::new((0..sessions).map(|w| (w, vec![b'x'; value_len])).collect()),
        }
    }
}

impl RoundTrip for MemoryFloor {
    async fn round_trip(&self, worker: usize) -> Result<(), BoxError> {
        let lock = || self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let mut value = lock()
            .get(&worker)
            .cloned()
            .ok_or("a floor value vanished")?;
        if let Some(first) = value.first_mut() {
            *first = first.wrapping_add(1);
        }
        lock().insert(worker, value);
        Ok(())
    }
}

/// The PostgreSQL floor: the two statements our store runs (`SELECT` by key and live expiry,
/// `UPDATE` of data and expiry), bound directly on the same table with the value already encoded,
/// on a pool of its own whose connections it holds for the whole run (one per slot, shared by
/// the workers `w` with the same `w % slots`), so that none pays sqlx's release ping (our store
/// skips it too, see `session_db::KEEP_CONNECTION_FOR`).
pub struct PgFloor {
    pool: sqlx::PgPool,
    slots: Vec<tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<sqlx::Postgres>>>>,
    keys: Vec<String>,
    load: String,
    update: String,
    encoded: String,
}

impl PgFloor {
    /// The floor over `table`'s rows for `keys`, writing `encoded` back.
    pub fn new(pool: sqlx::PgPool, table: &str, keys: &[SessionKey], encoded: String) -> Self {
        let slots = (0..pool.options().get_max_connections())
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        PgFloor {
            pool,
            slots,
            keys: keys.iter().map(|k| k.as_str().to_owned()).collect(),
            load: format!(
                "SELECT \"session_data\" FROM \"{table}\" WHERE \"session_key\" = $1 \
                 AND \"expire_date\" > $2"
            ),
            update: format!(
                "UPDATE \"{table}\" SET \"session_data\" = $1, \"expire_date\" = $2 \
                 WHERE \"session_key\" = $3 AND \"expire_date\" > $4"
            ),
            encoded,
        }
    }
}

impl RoundTrip for PgFloor {
    async fn round_trip(&self, worker: usize) -> Result<(), BoxError> {
        use sqlx::Row as _;
        let key = self.keys[worker].as_str();
        let now = OffsetDateTime::now_utc();
        let mut slot = self.slots[worker % self.slots.len()].lock().await;
        let connection = match &mut *slot {
            Some(connection) => connection,
            empty => empty.insert(self.pool.acquire().await?),
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(self.load.as_str()))
            .bind(key)
            .bind(now)
            .fetch_optional(&mut **connection)
            .await?
            .ok_or("a floor row vanished")?;
        let _data: String = row.try_get(0)?;
        let updated = sqlx::query(sqlx::AssertSqlSafe(self.update.as_str()))
            .bind(self.encoded.as_str())
            .bind(two_weeks_from_now())
            .bind(key)
            .bind(now)
            .execute(&mut **connection)
            .await?
            .rows_affected();
        if updated != 1 {
            return Err("the floor updated no row".into());
        }
        Ok(())
    }
}

/// Our codec's configuration for every store here: Django's defaults (JSON serializer).
pub fn config() -> SessionConfig {
    SessionConfig::new(crate::codec::SECRET)
}

/// Options shared by every store measurement.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs per figure.
    pub runs: usize,
    /// Counted seconds per run.
    pub seconds: f64,
    /// Uncounted seconds before each run.
    pub warm_up: f64,
    /// Concurrencies to measure.
    pub concurrency: Vec<usize>,
    /// The session every worker round-trips.
    pub payload: Payload,
    /// PostgreSQL URL.
    pub postgres_url: String,
    /// Redis URL.
    pub redis_url: String,
    /// Connections in each PostgreSQL pool (ours, tower-sessions', the floor's).
    pub pg_pool: u32,
}

impl Options {
    fn sessions(&self) -> usize {
        self.concurrency.iter().copied().max().unwrap_or(1)
    }

    fn durations(&self) -> (Duration, Duration) {
        (
            Duration::from_secs_f64(self.warm_up),
            Duration::from_secs_f64(self.seconds),
        )
    }
}

/// Rate and client CPU microseconds per round trip (when known).
type Measured = (f64, Option<f64>);

/// A measurement at a given concurrency, boxed so that every contender has one type.
type Contender<'a> = Box<
    dyn Fn(usize) -> std::pin::Pin<Box<dyn Future<Output = Result<Measured, BoxError>> + Send + 'a>>
        + 'a,
>;

fn contender<'a, T: RoundTrip>(target: &'a Arc<T>, options: &'a Options) -> Contender<'a> {
    let (warm_up, seconds) = options.durations();
    Box::new(move |c| Box::pin(measure(target, c, warm_up, seconds)))
}

/// Runs ours, theirs and the floor alternately, `runs` times at each concurrency, the order
/// rotating run by run (ours first, then tower-sessions first, then the floor first, ...) so
/// that neither library always follows the floor or always meets the machine first. Two rows per
/// concurrency: round trips per second, and this process's CPU microseconds per round trip (the
/// client's share: the server's is not counted; the `redis-benchmark` floor runs in a process of
/// its own and has none).
async fn compare<'a>(
    backend: &str,
    options: &Options,
    ours: Contender<'a>,
    tower: Contender<'a>,
    floor: Contender<'a>,
) -> Result<Vec<crate::table::Row>, BoxError> {
    use crate::stats::{Better, Runs, Unit};
    let contenders = [&ours, &tower, &floor];
    let mut rows = Vec::new();
    for &c in &options.concurrency {
        let mut rates: [Runs; 3] = Default::default();
        let mut cpus: [Runs; 3] = Default::default();
        for run in 0..options.runs {
            let mut measured: [Measured; 3] = [(0.0, None); 3];
            for step in 0..3 {
                let who = (run + step) % 3;
                measured[who] = contenders[who](c).await?;
            }
            for (who, (rate, cpu)) in measured.iter().enumerate() {
                rates[who].push(*rate);
                if let Some(cpu) = cpu {
                    cpus[who].push(*cpu);
                }
            }
            let show = |(rate, cpu): Measured| match cpu {
                Some(cpu) => format!("{rate:.0} rt/s ({cpu:.0} µs client CPU each)"),
                None => format!("{rate:.0} rt/s"),
            };
            eprintln!(
                "store {backend} c={c} run {}/{}: ours {}, tower-sessions {}, floor {}",
                run + 1,
                options.runs,
                show(measured[0]),
                show(measured[1]),
                show(measured[2]),
            );
        }
        let [o, t, f] = rates;
        let [o_cpu, t_cpu, f_cpu] = cpus;
        let row = |unit, format, better, ours, tower, floor| crate::table::Row {
            section: "store",
            case: format!("{backend} c={c}"),
            unit,
            format,
            better,
            peer: crate::table::Peer::TowerSessions,
            ours,
            tower: Some(tower),
            django: None,
            last_write_wins: None,
            floor,
        };
        rows.push(row("rt/s", Unit::PerSecond, Better::Higher, o, t, Some(f)));
        // A CPU figure for every run of both libraries, or no row: medians of different runs
        // would not compare.
        if o_cpu.len() == options.runs && t_cpu.len() == options.runs {
            let floor = (f_cpu.len() == options.runs).then_some(f_cpu);
            rows.push(row(
                "µs CPU/rt",
                Unit::Micros,
                Better::Lower,
                o_cpu,
                t_cpu,
                floor,
            ));
        }
    }
    Ok(rows)
}

/// The `merge` policy against `last_write_wins` on one store: the same [`ThroughSession`] round
/// trip under each, alternately, `runs` times at each concurrency. Two rows per concurrency:
/// round trips per second, and this process's CPU microseconds per round trip (the client's
/// share; a server's work is not counted).
async fn merge_against_last_write_wins(
    backend: &str,
    store: Arc<dyn SessionStore>,
    options: &Options,
) -> Result<Vec<crate::table::Row>, BoxError> {
    use crate::stats::{Better, Runs, Unit};
    let sessions = Ours::new(store.clone(), &options.payload, options.sessions()).await?;
    let keys = sessions.keys().to_vec();
    let merge = Arc::new(ThroughSession::new(
        store.clone(),
        ConcurrencyPolicy::Merge,
        keys.clone(),
    ));
    let lww = Arc::new(ThroughSession::new(
        store,
        ConcurrencyPolicy::LastWriteWins,
        keys,
    ));
    let (warm_up, seconds) = options.durations();
    let mut rows = Vec::new();
    let result = async {
        for &c in &options.concurrency {
            let (mut m, mut l, mut m_cpu, mut l_cpu) =
                (Runs::new(), Runs::new(), Runs::new(), Runs::new());
            for run in 0..options.runs {
                // Alternate which goes first, so a drifting load favours neither.
                let (merged, last) = if run % 2 == 0 {
                    let merged = measure(&merge, c, warm_up, seconds).await?;
                    (merged, measure(&lww, c, warm_up, seconds).await?)
                } else {
                    let last = measure(&lww, c, warm_up, seconds).await?;
                    (measure(&merge, c, warm_up, seconds).await?, last)
                };
                m.push(merged.0);
                l.push(last.0);
                if let (Some(merged), Some(last)) = (merged.1, last.1) {
                    m_cpu.push(merged);
                    l_cpu.push(last);
                }
                eprintln!(
                    "merge {backend} c={c} run {}/{}: merge {:.0} rt/s ({:.1} µs client CPU \
                     each), last_write_wins {:.0} rt/s ({:.1} µs)",
                    run + 1,
                    options.runs,
                    merged.0,
                    merged.1.unwrap_or(f64::NAN),
                    last.0,
                    last.1.unwrap_or(f64::NAN),
                );
            }
            let row = |unit, format, better, ours, lww| crate::table::Row {
                section: "merge",
                case: format!("{backend} c={c}"),
                unit,
                format,
                better,
                peer: crate::table::Peer::LastWriteWins,
                ours,
                tower: None,
                django: None,
                last_write_wins: Some(lww),
                floor: None,
            };
            rows.push(row("rt/s", Unit::PerSecond, Better::Higher, m, l));
            if m_cpu.len() > 0 {
                rows.push(row("µs CPU/rt", Unit::Micros, Better::Lower, m_cpu, l_cpu));
            }
        }
        Ok::<_, BoxError>(())
    }
    .await;
    sessions.clean_up().await?;
    result.map(|()| rows)
}

/// `merge` against `last_write_wins` on `backend` (`memory`, `redis` or `postgres`); no rows,
/// and a message on stderr, when the store cannot compare-and-swap.
pub async fn merge(backend: &str, options: &Options) -> Result<Vec<crate::table::Row>, BoxError> {
    match backend {
        "memory" => {
            let store: Arc<dyn SessionStore> = Arc::new(session_core::MemoryStore::new());
            merge_on("memory", store, options).await
        }
        "redis" => {
            use session_cache::{Cache, CacheStore, RedisCache};
            let cache = RedisCache::connect(&options.redis_url)
                .await
                .map_err(|e| format!("Redis at {}: {e}", options.redis_url))?;
            let cache = Cache::new(cache).with_key_prefix(unique_name());
            let store: Arc<dyn SessionStore> = Arc::new(CacheStore::new(cache, &config())?);
            merge_on("Redis", store, options).await
        }
        "postgres" => {
            let name = unique_name();
            let pool = session_db::PgStore::pool_options(&options.postgres_url)
                .max_connections(options.pg_pool)
                .connect(&options.postgres_url)
                .await
                .map_err(|e| format!("PostgreSQL at {}: {e}", options.postgres_url))?;
            let store = session_db::PgStore::new(pool.clone(), &config())?.with_table(&name)?;
            store.ensure_schema().await?;
            let result = merge_on("PostgreSQL", Arc::new(store), options).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS \"{name}\""
            )))
            .execute(&pool)
            .await?;
            result
        }
        other => Err(format!("unknown store {other:?}").into()),
    }
}

async fn merge_on(
    backend: &str,
    store: Arc<dyn SessionStore>,
    options: &Options,
) -> Result<Vec<crate::table::Row>, BoxError> {
    if !store.capabilities().compare_and_swap {
        eprintln!(
            "merge {backend}: skipped: the store does not declare compare-and-swap, so it \
             cannot save under merge"
        );
        return Ok(Vec::new());
    }
    merge_against_last_write_wins(backend, store, options).await
}

/// In-process memory: our `MemoryStore` against tower-sessions' `MemoryStore`.
pub async fn memory(options: &Options) -> Result<Vec<crate::table::Row>, BoxError> {
    let sessions = options.sessions();
    let ours =
        Arc::new(Ours::new(session_core::MemoryStore::new(), &options.payload, sessions).await?);
    let tower = Arc::new(
        Tower::new(
            tower_sessions::MemoryStore::default(),
            &options.payload,
            sessions,
        )
        .await?,
    );
    let value_len = session_core::SessionCodec::new(&config())?
        .serialize(&options.payload.dict)?
        .len();
    let floor = Arc::new(MemoryFloor::new(sessions, value_len));
    compare(
        "memory",
        options,
        contender(&ours, options),
        contender(&tower, options),
        contender(&floor, options),
    )
    .await
}

/// A unique name for this run's tables, schemas and key prefixes.
pub fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("djsession_bench_{}_{nanos}", std::process::id())
}

/// PostgreSQL: our `PgStore` (Django's `django_session` table) against tower-sessions'
/// `PostgresStore` (its own schema and table), on pools of the same size. The floor has a pool
/// of that size too.
pub async fn postgres(options: &Options) -> Result<Vec<crate::table::Row>, BoxError> {
    use tower_sessions_sqlx_store::sqlx as sqlx08;
    let sessions = options.sessions();
    let name = unique_name();
    // Each library's pool as its documentation builds it, sized alike: ours from the settings
    // `PgStore::connect` uses, tower-sessions' from sqlx's defaults.
    let pool = session_db::PgStore::pool_options(&options.postgres_url)
        .max_connections(options.pg_pool)
        .connect(&options.postgres_url)
        .await
        .map_err(|e| format!("PostgreSQL at {}: {e}", options.postgres_url))?;
    let store = session_db::PgStore::new(pool.clone(), &config())?.with_table(&name)?;
    store.ensure_schema().await?;
    let their_pool = sqlx08::postgres::PgPoolOptions::new()
        .max_connections(options.pg_pool)
        .connect(&options.postgres_url)
        .await?;
    let their_store = tower_sessions_sqlx_store::PostgresStore::new(their_pool.clone())
        .with_schema_name(&name)?;
    their_store.migrate().await?;

    let result = async {
        let ours = Arc::new(Ours::new(store.clone(), &options.payload, sessions).await?);
        let tower = Arc::new(Tower::new(their_store, &options.payload, sessions).await?);
        let encoded = store.codec().encode(&options.payload.dict)?;
        let floor_pool = session_db::PgStore::pool_options(&options.postgres_url)
            .max_connections(options.pg_pool)
            .connect(&options.postgres_url)
            .await?;
        let floor = Arc::new(PgFloor::new(floor_pool, &name, ours.keys(), encoded));
        compare(
            "PostgreSQL",
            options,
            contender(&ours, options),
            contender(&tower, options),
            contender(&floor, options),
        )
        .await
    }
    .await;

    // Clean up whatever happened above.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS \"{name}\""
    )))
    .execute(&pool)
    .await?;
    sqlx08::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
        .execute(&their_pool)
        .await?;
    result
}

/// `redis-benchmark` GET + SET pairs per second on `prefix`-named keys of `value_len` bytes:
/// the floor of a Redis round trip at concurrency `c` (its `c` connections against our one).
pub struct RedisBenchmark {
    host: String,
    port: String,
    prefix: String,
    value: String,
    keys: usize,
    seconds: f64,
    /// Requests per second of each command at each concurrency, from the previous run.
    estimate: Mutex<HashMap<(usize, &'static str), f64>>,
}

impl RedisBenchmark {
    /// A benchmark of `keys` keys under `prefix` on the server at `url`.
    pub fn new(url: &str, prefix: &str, value_len: usize, keys: usize, seconds: f64) -> Self {
        let (host, port) = host_and_port(url);
        RedisBenchmark {
            host,
            port,
            prefix: prefix.to_owned(),
            value: "x".repeat(value_len),
            keys,
            seconds,
            estimate: Mutex::new(HashMap::new()),
        }
    }

    async fn command(&self, c: usize, command: &'static str) -> Result<f64, BoxError> {
        let key = format!("{}:__rand_int__", self.prefix);
        let guess = self
            .estimate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(c, command))
            .copied();
        // Calibrate once, then size each run to take about half the run time.
        let rate = match guess {
            Some(rate) => rate,
            None => self.run(c, command, &key, 5_000).await?,
        };
        let requests = ((rate * self.seconds / 2.0) as u64).max(2_000);
        let rate = self.run(c, command, &key, requests).await?;
        self.estimate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((c, command), rate);
        Ok(rate)
    }

    async fn run(
        &self,
        c: usize,
        command: &str,
        key: &str,
        requests: u64,
    ) -> Result<f64, BoxError> {
        let mut cmd = tokio::process::Command::new("redis-benchmark");
        cmd.args(["-h", &self.host, "-p", &self.port, "--csv"])
            .args(["-c", &c.to_string(), "-n", &requests.to_string()])
            .args(["-r", &self.keys.to_string(), command, key]);
        if command == "SET" {
            cmd.arg(&self.value);
        }
        let output = cmd.output().await.map_err(|e| {
            format!("cannot run redis-benchmark (apt-get install redis-tools): {e}")
        })?;
        if !output.status.success() {
            return Err(format!(
                "redis-benchmark failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        parse_redis_benchmark_csv(&String::from_utf8_lossy(&output.stdout))
            .ok_or_else(|| "redis-benchmark printed no rate".into())
    }

    /// GET + SET pairs per second: `1 / (1/get + 1/set)`.
    pub async fn pairs(&self, c: usize) -> Result<f64, BoxError> {
        let get = self.command(c, "GET").await?;
        let set = self.command(c, "SET").await?;
        Ok(1.0 / (1.0 / get + 1.0 / set))
    }
}

/// The requests per second of the last result line of `redis-benchmark --csv`: the field seven
/// from the end (the command name may hold commas).
fn parse_redis_benchmark_csv(csv: &str) -> Option<f64> {
    let line = csv
        .lines()
        .rfind(|l| l.starts_with('"') && !l.starts_with("\"test\""))?;
    let fields: Vec<&str> = line.split(',').collect();
    fields
        .len()
        .checked_sub(7)
        .and_then(|i| fields[i].trim_matches('"').parse().ok())
}

fn host_and_port(url: &str) -> (String, String) {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.to_owned()),
        None => (authority.to_owned(), "6379".to_owned()),
    }
}

/// Redis: our `CacheStore` over `RedisCache` (one multiplexed connection) against tower-sessions'
/// `RedisStore` over one fred client (one multiplexed connection), and `redis-benchmark`.
pub async fn redis(options: &Options) -> Result<Vec<crate::table::Row>, BoxError> {
    use session_cache::{Cache, CacheStore, RedisCache};
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config as FredConfig};
    let sessions = options.sessions();
    let prefix = unique_name();
    let cache = RedisCache::connect(&options.redis_url)
        .await
        .map_err(|e| format!("Redis at {}: {e}", options.redis_url))?;
    let store = CacheStore::new(Cache::new(cache).with_key_prefix(prefix.clone()), &config())?;
    let client = tower_sessions_redis_store::fred::prelude::Client::new(
        FredConfig::from_url(&options.redis_url)?,
        None,
        None,
        None,
    );
    client.init().await?;
    let their_store = tower_sessions_redis_store::RedisStore::new(client.clone());

    let ours = Arc::new(Ours::new(store, &options.payload, sessions).await?);
    let tower = Arc::new(Tower::new(their_store, &options.payload, sessions).await?);
    let value_len = session_core::SessionCodec::new(&config())?
        .serialize(&options.payload.dict)?
        .len();
    let floor_prefix = format!("{prefix}_floor");
    let floor = RedisBenchmark::new(
        &options.redis_url,
        &floor_prefix,
        value_len,
        sessions,
        options.seconds,
    );
    let result = compare(
        "Redis",
        options,
        contender(&ours, options),
        contender(&tower, options),
        Box::new(|c| {
            let floor = &floor;
            Box::pin(async move { Ok((floor.pairs(c).await?, None)) })
        }),
    )
    .await;

    ours.clean_up().await?;
    tower.clean_up().await?;
    // redis-benchmark's keys: `<prefix>:` and a 12-digit number below `sessions`.
    let keys: Vec<String> = (0..sessions)
        .map(|n| format!("{floor_prefix}:{n:012}"))
        .collect();
    let _: i64 =
        tower_sessions_redis_store::fred::prelude::KeysInterface::del(&client, keys).await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_csv_rate_is_read_from_the_end() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\
                   \"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                   \"SET k:__rand_int__ a,b\",\"22222.22\",\"0.135\",\"0.024\",\"0.055\",\
                   \"0.087\",\"3.919\",\"10.863\"\n";
        assert_eq!(parse_redis_benchmark_csv(csv), Some(22222.22));
        assert_eq!(parse_redis_benchmark_csv("nothing"), None);
    }

    #[test]
    fn host_and_port_from_urls() {
        assert_eq!(
            host_and_port("redis://127.0.0.1:6379"),
            ("127.0.0.1".into(), "6379".into())
        );
        assert_eq!(
            host_and_port("redis://:pw@example:7000/2"),
            ("example".into(), "7000".into())
        );
        assert_eq!(host_and_port("redis://h"), ("h".into(), "6379".into()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_through_a_session_count_under_either_policy() {
        let payload = crate::payload::all().remove(0);
        let store: Arc<dyn SessionStore> = Arc::new(session_core::MemoryStore::new());
        let sessions = Ours::new(store.clone(), &payload, 2).await.unwrap();
        let keys = sessions.keys().to_vec();
        for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::LastWriteWins] {
            let through = ThroughSession::new(store.clone(), policy, keys.clone());
            for _ in 0..3 {
                through.round_trip(1).await.unwrap();
            }
        }
        assert_eq!(sessions.visits(1).await.unwrap(), 6);
        assert_eq!(sessions.visits(0).await.unwrap(), 0);
        let options = Options {
            runs: 1,
            seconds: 0.05,
            warm_up: 0.0,
            concurrency: vec![2],
            payload,
            postgres_url: String::new(),
            redis_url: String::new(),
            pg_pool: 1,
        };
        let rows = merge("memory", &options).await.unwrap();
        let units: Vec<&str> = rows.iter().map(|r| r.unit).collect();
        assert_eq!(units, ["rt/s", "µs CPU/rt"]);
        assert!(rows.iter().all(|r| r.last_write_wins.is_some()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_round_trips_change_the_stored_session() {
        let payload = crate::payload::all().remove(0);
        let ours = Arc::new(
            Ours::new(session_core::MemoryStore::new(), &payload, 2)
                .await
                .unwrap(),
        );
        let tower = Arc::new(
            Tower::new(tower_sessions::MemoryStore::default(), &payload, 2)
                .await
                .unwrap(),
        );
        for _ in 0..3 {
            ours.round_trip(1).await.unwrap();
            tower.round_trip(1).await.unwrap();
        }
        assert_eq!(ours.visits(1).await.unwrap(), 3);
        assert_eq!(ours.visits(0).await.unwrap(), 0);
        assert_eq!(tower.visits(1).await.unwrap(), 3);
        let (rate, _) = measure(&ours, 2, Duration::ZERO, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(rate > 0.0);
    }
}
