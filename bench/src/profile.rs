//! One operation in a loop and nothing else, for a profiler:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='djsession_bench::profile::*' \
//!     target/release/djsession-bench profile decode --payload "32 KB" --iterations 300
//! ```
//!
//! Instruction counts do not depend on the machine's load, so they compare two implementations
//! (ours and tower-sessions') reliably on a busy machine.
//!
//! In-process requests miss what a server does under load (sockets, many connections, tasks
//! waking each other across threads), so each `http-*` route can also be served on a loopback
//! port for a load generator, with the sessions' cookies in a wrk script:
//!
//! ```sh
//! target/release/djsession-bench profile serve-ours-redis --payload "100 B" --iterations 20 &
//! wrk -t1 -c64 -d8s -s /tmp/djsession-serve.lua http://127.0.0.1:PORT/   # the port it prints
//! ```

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, header};
use session_core::{MemoryStore, SessionCodec, SessionConfig, SessionStore};
use tower::ServiceExt;

use crate::BoxError;
use crate::http::{bare_handler, our_cookies, ours_router, their_cookies, tower_router};
use crate::payload::Payload;
use crate::store::{Ours, RoundTrip, Tower};

const SESSIONS: usize = 64;

/// Runs `op` `iterations` times; a `serve-*` operation serves the matching `http-*` route for
/// `iterations` seconds instead.
pub async fn run(op: &str, payload: &Payload, iterations: u64) -> Result<(), BoxError> {
    if let Some(route) = op.strip_prefix("serve-") {
        return http(
            &format!("http-{route}"),
            payload,
            Drive::Serve {
                seconds: iterations,
            },
        )
        .await;
    }
    if op.starts_with("http-") {
        return http(op, payload, Drive::Requests(iterations)).await;
    }
    match op {
        "encode" | "decode" => codec(op, payload, iterations),
        "encode-floor" | "encode-write-floor" | "decode-floor" | "decode-parse-floor" => {
            crate::codec::profile_floor(op, payload, iterations)
        }
        "store-ours" => {
            let ours = Arc::new(Ours::new(MemoryStore::new(), payload, SESSIONS).await?);
            store_loop(&ours, iterations).await
        }
        "store-tower" => {
            let tower = Arc::new(
                Tower::new(tower_sessions::MemoryStore::default(), payload, SESSIONS).await?,
            );
            store_loop(&tower, iterations).await
        }
        "pg-ours" | "pg-tower" | "pg-floor" => postgres(op, payload, iterations).await,
        "redis-ours" | "redis-tower" => redis(op, payload, iterations).await,
        other => Err(format!("unknown operation {other:?}").into()),
    }
}

/// How an HTTP operation sends its requests.
#[derive(Debug, Clone, Copy)]
enum Drive {
    /// This many requests, one at a time, through the router in-process (no socket).
    Requests(u64),
    /// Serving on a loopback port for this long, for a load generator (`serve-*` operations).
    Serve { seconds: u64 },
}

/// The `http-*` operations: requests through the routers of the HTTP bench.
async fn http(op: &str, payload: &Payload, drive: Drive) -> Result<(), BoxError> {
    match op {
        "http-ours" => {
            let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
            let ours = Ours::new(store, payload, SESSIONS).await?;
            let router = ours_router(ours.store().clone())?;
            requests(router, &our_cookies(&ours), drive).await
        }
        "http-tower" => {
            let tower =
                Tower::new(tower_sessions::MemoryStore::default(), payload, SESSIONS).await?;
            let router = tower_router(tower.store().clone());
            requests(router, &their_cookies(&tower), drive).await
        }
        "http-ours-redis" | "http-tower-redis" | "http-redis-floor" => {
            http_redis(op, payload, drive).await
        }
        "http-bare" => {
            let router = axum::Router::new().route("/", axum::routing::get(bare_handler));
            requests(router, &["unused=1".to_owned()], drive).await
        }
        other => Err(format!("unknown operation {other:?}").into()),
    }
}

/// Round trips one at a time on PostgreSQL (`$SESSION_BENCH_POSTGRES_URL` or the default), in a
/// table or schema made for the run and dropped after it.
async fn postgres(op: &str, payload: &Payload, iterations: u64) -> Result<(), BoxError> {
    use tower_sessions_sqlx_store::sqlx as sqlx08;
    let url = std::env::var("SESSION_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let name = crate::store::unique_name();
    let result = async {
        if op == "pg-tower" {
            let pool = sqlx08::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            let store =
                tower_sessions_sqlx_store::PostgresStore::new(pool).with_schema_name(&name)?;
            store.migrate().await?;
            let tower = Arc::new(Tower::new(store, payload, SESSIONS).await?);
            return store_loop(&tower, iterations).await;
        }
        let pool = session_db::PgStore::pool_options(&url)
            .max_connections(1)
            .connect(&url)
            .await?;
        let store =
            session_db::PgStore::new(pool.clone(), &crate::store::config())?.with_table(&name)?;
        store.ensure_schema().await?;
        let ours = Arc::new(Ours::new(store.clone(), payload, SESSIONS).await?);
        if op == "pg-ours" {
            return store_loop(&ours, iterations).await;
        }
        let encoded = store.codec().encode(&payload.dict)?;
        let floor = Arc::new(crate::store::PgFloor::new(
            pool,
            &name,
            ours.keys(),
            encoded,
        ));
        store_loop(&floor, iterations).await
    }
    .await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS \"{name}\"; DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
    )))
    .execute(&pool)
    .await?;
    result
}

/// Round trips one at a time on Redis (`$SESSION_BENCH_REDIS_URL` or the default), under a key
/// prefix made for the run; the sessions are deleted after it.
async fn redis(op: &str, payload: &Payload, iterations: u64) -> Result<(), BoxError> {
    use session_cache::{Cache, CacheStore, RedisCache};
    use tower_sessions_redis_store::fred::prelude::{Client, ClientLike, Config as FredConfig};
    let url = std::env::var("SESSION_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    if op == "redis-tower" {
        let client = Client::new(FredConfig::from_url(&url)?, None, None, None);
        client.init().await?;
        let store = tower_sessions_redis_store::RedisStore::new(client);
        let tower = Arc::new(Tower::new(store, payload, SESSIONS).await?);
        let result = store_loop(&tower, iterations).await;
        tower.clean_up().await?;
        return result;
    }
    let cache = RedisCache::connect(&url).await?;
    let prefix = crate::store::unique_name();
    let store = CacheStore::new(
        Cache::new(cache).with_key_prefix(prefix),
        &crate::store::config(),
    )?;
    let ours = Arc::new(Ours::new(store, payload, SESSIONS).await?);
    let result = store_loop(&ours, iterations).await;
    ours.clean_up().await?;
    result
}

/// In-process requests on Redis (`$SESSION_BENCH_REDIS_URL` or the default): through our layer
/// over our Redis store, through tower-sessions' layer over its Redis store (fred), or through
/// the HTTP bench's Redis floor route (the two commands alone), under a key prefix made for the
/// run.
async fn http_redis(op: &str, payload: &Payload, drive: Drive) -> Result<(), BoxError> {
    use session_cache::{Cache, CacheStore, RedisCache};
    let url = std::env::var("SESSION_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = crate::store::unique_name();
    if op == "http-tower-redis" {
        use tower_sessions_redis_store::fred::prelude::{Client, ClientLike, Config};
        let client = Client::new(Config::from_url(&url)?, None, None, None);
        client.init().await?;
        let tower = Tower::new(
            tower_sessions_redis_store::RedisStore::new(client),
            payload,
            SESSIONS,
        )
        .await?;
        let router = tower_router(tower.store().clone());
        let result = requests(router, &their_cookies(&tower), drive).await;
        tower.clean_up().await?;
        return result;
    }
    if op == "http-redis-floor" {
        let redis = redis::aio::ConnectionManager::new(redis::Client::open(url.as_str())?).await?;
        let keys = crate::http::redis_floor_keys(&redis, &prefix, payload, SESSIONS).await?;
        let router = axum::Router::new()
            .route("/", axum::routing::get(crate::http::redis_floor_handler))
            .with_state(redis.clone());
        let cookies: Vec<String> = keys.iter().map(|k| format!("floor={k}")).collect();
        let result = requests(router, &cookies, drive).await;
        let mut connection = redis.clone();
        for key in &keys {
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut connection)
                .await;
        }
        return result;
    }
    let cache = RedisCache::connect(&url).await?;
    let store: Arc<dyn SessionStore> = Arc::new(CacheStore::new(
        Cache::new(cache).with_key_prefix(prefix),
        &crate::store::config(),
    )?);
    let ours = Ours::new(store, payload, SESSIONS).await?;
    let router = ours_router(ours.store().clone())?;
    let result = requests(router, &our_cookies(&ours), drive).await;
    ours.clean_up().await?;
    result
}

fn codec(op: &str, payload: &Payload, iterations: u64) -> Result<(), BoxError> {
    let codec = SessionCodec::new(&SessionConfig::new(crate::codec::SECRET))?;
    let token = codec.encode(&payload.dict)?;
    for _ in 0..iterations {
        if op == "encode" {
            black_box(codec.encode(black_box(&payload.dict))?);
        } else {
            black_box(codec.decode(black_box(&token)));
        }
    }
    Ok(())
}

async fn store_loop<T: RoundTrip>(target: &Arc<T>, iterations: u64) -> Result<(), BoxError> {
    for i in 0..iterations {
        target.round_trip(i as usize % SESSIONS).await?;
    }
    Ok(())
}

/// Serves `router` on a loopback port for `seconds`, with a wrk script cycling through `cookies`
/// at `$TMPDIR/djsession-serve.lua`: `wrk -s` it against the printed address, under a profiler.
async fn serve(router: axum::Router, cookies: &[String], seconds: u64) -> Result<(), BoxError> {
    let script = std::env::temp_dir().join("djsession-serve.lua");
    std::fs::write(&script, crate::http::cookie_script(cookies))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    eprintln!(
        "serving http://{}/ for {seconds} s; wrk script {}",
        listener.local_addr()?,
        script.display()
    );
    let stop = tokio::time::sleep(std::time::Duration::from_secs(seconds));
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await?;
    Ok(())
}

async fn requests(router: axum::Router, cookies: &[String], drive: Drive) -> Result<(), BoxError> {
    let iterations = match drive {
        Drive::Requests(iterations) => iterations,
        Drive::Serve { seconds } => return serve(router, cookies, seconds).await,
    };
    for i in 0..iterations {
        let cookie = &cookies[i as usize % cookies.len()];
        let request = Request::builder()
            .uri("/")
            .header(header::COOKIE, cookie)
            .body(Body::empty())?;
        let response = router.clone().oneshot(request).await?;
        if !response.status().is_success() {
            return Err(format!("request failed: {}", response.status()).into());
        }
        black_box(axum::body::to_bytes(response.into_body(), 1024).await?);
    }
    Ok(())
}
