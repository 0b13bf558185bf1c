//! HTTP: one axum handler that reads and writes one session value (`visits`), served on loopback
//! with our `SessionLayer`, with tower-sessions' `SessionManagerLayer`, and with no sessions at
//! all, under `wrk`; Redis rows also against a route that does only the two Redis commands of
//! such a request (the Redis floor). Requests carry the cookies of pre-created sessions, a different one on each
//! request (wrk's Lua `request` hook cycles through them), so every request loads an existing
//! session, changes it, saves it and sets the cookie again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use session_core::{MemoryStore, SessionStore};
use tokio::sync::oneshot;

use crate::BoxError;
use crate::payload::Payload;
use crate::stats::{Better, Runs, Unit};
use crate::store::{Ours, TWO_WEEKS, Tower, config, unique_name};
use crate::table::{Peer, Row};

/// Options of the HTTP comparison.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs per figure.
    pub runs: usize,
    /// Seconds of load per run.
    pub seconds: u64,
    /// Seconds of uncounted load before each run.
    pub warm_up: u64,
    /// Open connections.
    pub connections: usize,
    /// wrk threads.
    pub threads: usize,
    /// Pre-created sessions the requests cycle through.
    pub sessions: usize,
    /// What each session holds before the run.
    pub payload: Payload,
    /// Redis URL.
    pub redis_url: String,
}

fn internal(error: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

async fn ours_handler(
    session: session_middleware::Session,
) -> Result<String, (StatusCode, String)> {
    let visits: i64 = session.get("visits").await.map_err(internal)?.unwrap_or(0);
    session
        .insert("visits", &(visits + 1))
        .await
        .map_err(internal)?;
    Ok(format!("visits {}", visits + 1))
}

async fn tower_handler(session: tower_sessions::Session) -> Result<String, (StatusCode, String)> {
    let visits: i64 = session.get("visits").await.map_err(internal)?.unwrap_or(0);
    session
        .insert("visits", visits + 1)
        .await
        .map_err(internal)?;
    Ok(format!("visits {}", visits + 1))
}

/// The same response with no session: the floor.
pub(crate) async fn bare_handler() -> String {
    "visits 1".to_owned()
}

/// The Redis floor's handler: the two commands a session request needs, `GET` the cookie's key
/// and `SET` it back with Django's two-week expiry, through the client our store uses (redis-rs's
/// multiplexed connection) and nothing else: no session, no codec, no cookie to set.
pub(crate) async fn redis_floor_handler(
    axum::extract::State(redis): axum::extract::State<redis::aio::ConnectionManager>,
    headers: axum::http::HeaderMap,
) -> Result<String, (StatusCode, String)> {
    let key = headers
        .get(axum::http::header::COOKIE)
        .and_then(|cookie| cookie.to_str().ok())
        .and_then(|cookie| cookie.strip_prefix("floor="))
        .ok_or_else(|| internal("no floor cookie"))?;
    let mut connection = redis.clone();
    let value: Option<Vec<u8>> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut connection)
        .await
        .map_err(internal)?;
    let value = value.ok_or_else(|| internal(format!("{key} is gone")))?;
    let () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(TWO_WEEKS)
        .query_async(&mut connection)
        .await
        .map_err(internal)?;
    Ok("visits 1".to_owned())
}

/// The keys of the Redis floor: `sessions` keys under `prefix`, each holding the payload's JSON.
pub(crate) async fn redis_floor_keys(
    redis: &redis::aio::ConnectionManager,
    prefix: &str,
    payload: &Payload,
    sessions: usize,
) -> Result<Vec<String>, BoxError> {
    let value = session_core::serializer::json::dict_to_vec(&payload.dict)?;
    let mut connection = redis.clone();
    let mut keys = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let key = format!("{prefix}:{i}");
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .arg("EX")
            .arg(TWO_WEEKS)
            .query_async(&mut connection)
            .await?;
        keys.push(key);
    }
    Ok(keys)
}

/// A server on a loopback port, stopped on drop.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    async fn start(router: Router) -> Result<Self, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    stopped.await.ok();
                })
                .await;
            if let Err(error) = served {
                eprintln!("http: server on {addr} failed: {error}");
            }
        });
        Ok(Server {
            addr,
            stop: Some(stop),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}

/// One wrk run's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkResult {
    /// Requests per second.
    pub requests_per_second: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
}

fn millis(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1e3,
        "ms" => number,
        "s" => number * 1e3,
        "m" => number * 60e3,
        _ => return None,
    })
}

/// Reads `wrk --latency` output; an error when any response was not 2xx/3xx or a socket failed.
pub fn parse_wrk(output: &str) -> Result<WrkResult, BoxError> {
    if let Some(line) = output
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
    {
        return Err(format!("wrk saw failed requests: {}", line.trim()).into());
    }
    if let Some(line) = output.lines().find(|l| l.contains("Socket errors")) {
        return Err(format!("wrk saw socket errors: {}", line.trim()).into());
    }
    let requests_per_second = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no Requests/sec in wrk's output")?;
    let p99_ms = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| millis(v.trim()))
        .ok_or("no 99% latency in wrk's output (is --latency passed?)")?;
    Ok(WrkResult {
        requests_per_second,
        p99_ms,
    })
}

/// A wrk Lua script that sends `cookies` in turn, one per request.
pub(crate) fn cookie_script(cookies: &[String]) -> String {
    let list: Vec<String> = cookies.iter().map(|c| format!("  \"{c}\",")).collect();
    format!(
        "local cookies = {{\n{}\n}}\nlocal n = 0\nrequest = function()\n  n = n + 1\n  \
         return wrk.format(\"GET\", \"/\", {{[\"Cookie\"] = cookies[(n % #cookies) + 1]}})\nend\n",
        list.join("\n")
    )
}

pub(crate) async fn wrk(
    addr: SocketAddr,
    script: &Path,
    options: &Options,
    seconds: u64,
) -> Result<WrkResult, BoxError> {
    let output = tokio::process::Command::new("wrk")
        .args(["-t", &options.threads.to_string()])
        .args(["-c", &options.connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(format!("http://{addr}/"))
        .output()
        .await
        .map_err(|e| format!("cannot run wrk (apt-get install -y wrk): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}{text}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    parse_wrk(&text)
}

/// One served configuration under test.
struct Contender {
    name: &'static str,
    server: Server,
    script: PathBuf,
    requests: Runs,
    p99: Runs,
}

impl Contender {
    async fn new(
        name: &'static str,
        router: Router,
        cookies: &[String],
        dir: &Path,
    ) -> Result<Self, BoxError> {
        let script = dir.join(format!("{}.lua", name.replace([' ', '/'], "_")));
        std::fs::write(&script, cookie_script(cookies))?;
        Ok(Contender {
            name,
            server: Server::start(router).await?,
            script,
            requests: Runs::new(),
            p99: Runs::new(),
        })
    }

    async fn run(&mut self, options: &Options) -> Result<(), BoxError> {
        wrk(self.server.addr, &self.script, options, options.warm_up).await?;
        let result = wrk(self.server.addr, &self.script, options, options.seconds).await?;
        eprintln!(
            "http {}: {:.0} req/s, p99 {:.2} ms",
            self.name, result.requests_per_second, result.p99_ms
        );
        self.requests.push(result.requests_per_second);
        self.p99.push(result.p99_ms);
        Ok(())
    }
}

pub(crate) fn ours_router(store: Arc<dyn SessionStore>) -> Result<Router, BoxError> {
    let layer = session_middleware::SessionLayer::new(store, &config())?;
    Ok(Router::new().route("/", get(ours_handler)).layer(layer))
}

/// tower-sessions with the same cookie semantics as Django's defaults: a persistent cookie of two
/// weeks' age, not `Secure` (its default is a browser-session `Secure` cookie).
pub(crate) fn tower_router<S>(store: S) -> Router
where
    S: tower_sessions::SessionStore + Clone,
{
    let layer = tower_sessions::SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(tower_sessions::Expiry::OnInactivity(time::Duration::weeks(
            2,
        )));
    Router::new().route("/", get(tower_handler)).layer(layer)
}

pub(crate) fn our_cookies<S: SessionStore>(ours: &Ours<S>) -> Vec<String> {
    ours.keys()
        .iter()
        .map(|k| format!("sessionid={}", k.as_str()))
        .collect()
}

pub(crate) fn their_cookies<S: tower_sessions::SessionStore>(tower: &Tower<S>) -> Vec<String> {
    tower.ids().iter().map(|id| format!("id={id}")).collect()
}

/// Runs every contender `runs` times, alternating, and returns the HTTP rows.
pub async fn run(options: &Options) -> Result<Vec<Row>, BoxError> {
    use session_cache::{Cache, CacheStore, RedisCache};
    use tower_sessions_redis_store::fred::prelude::{Client, ClientLike, Config as FredConfig};

    let dir = std::env::temp_dir().join(unique_name());
    std::fs::create_dir_all(&dir)?;
    let n = options.sessions;

    let bare = Contender::new(
        "no sessions",
        Router::new().route("/", get(bare_handler)),
        &["unused=1".to_owned()],
        &dir,
    )
    .await?;

    let ours_memory = Ours::new(
        Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>,
        &options.payload,
        n,
    )
    .await?;
    let tower_memory =
        Tower::new(tower_sessions::MemoryStore::default(), &options.payload, n).await?;

    let prefix = unique_name();
    let cache = RedisCache::connect(&options.redis_url)
        .await
        .map_err(|e| format!("Redis at {}: {e}", options.redis_url))?;
    let redis_store: Arc<dyn SessionStore> = Arc::new(CacheStore::new(
        Cache::new(cache).with_key_prefix(prefix),
        &config(),
    )?);
    let ours_redis = Ours::new(redis_store, &options.payload, n).await?;
    let client = Client::new(FredConfig::from_url(&options.redis_url)?, None, None, None);
    client.init().await?;
    let tower_redis = Tower::new(
        tower_sessions_redis_store::RedisStore::new(client.clone()),
        &options.payload,
        n,
    )
    .await?;

    let floor_redis =
        redis::aio::ConnectionManager::new(redis::Client::open(options.redis_url.as_str())?)
            .await?;
    let floor_prefix = unique_name();
    let floor_keys = redis_floor_keys(&floor_redis, &floor_prefix, &options.payload, n).await?;

    let result = async {
        let floor_cookies: Vec<String> = floor_keys.iter().map(|k| format!("floor={k}")).collect();
        let mut contenders = vec![
            bare,
            Contender::new(
                "Redis floor",
                Router::new()
                    .route("/", get(redis_floor_handler))
                    .with_state(floor_redis.clone()),
                &floor_cookies,
                &dir,
            )
            .await?,
            Contender::new(
                "ours memory",
                ours_router(ours_memory.store().clone())?,
                &our_cookies(&ours_memory),
                &dir,
            )
            .await?,
            Contender::new(
                "tower-sessions memory",
                tower_router(tower_memory.store().clone()),
                &their_cookies(&tower_memory),
                &dir,
            )
            .await?,
            Contender::new(
                "ours Redis",
                ours_router(ours_redis.store().clone())?,
                &our_cookies(&ours_redis),
                &dir,
            )
            .await?,
            Contender::new(
                "tower-sessions Redis",
                tower_router(tower_redis.store().clone()),
                &their_cookies(&tower_redis),
                &dir,
            )
            .await?,
        ];
        for run in 0..options.runs {
            eprintln!("http: run {}/{}", run + 1, options.runs);
            for contender in &mut contenders {
                contender.run(options).await?;
            }
        }
        // Every request must have loaded and changed an existing session, not made a new one.
        for (name, visits) in [
            ("ours memory", ours_memory.visits(0).await?),
            ("tower-sessions memory", tower_memory.visits(0).await?),
            ("ours Redis", ours_redis.visits(0).await?),
            ("tower-sessions Redis", tower_redis.visits(0).await?),
        ] {
            if visits == 0 {
                return Err(format!(
                    "{name}: the first session was never changed: its cookie is not being read"
                )
                .into());
            }
        }
        Ok::<_, BoxError>(contenders)
    }
    .await;

    ours_redis.clean_up().await?;
    tower_redis.clean_up().await?;
    let mut connection = floor_redis.clone();
    for chunk in floor_keys.chunks(512) {
        let _: u64 = redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut connection)
            .await?;
    }
    std::fs::remove_dir_all(&dir).ok();
    let mut contenders = result?;

    let bare = contenders.remove(0);
    let redis_floor = contenders.remove(0);
    let mut rows = Vec::new();
    let mut pairs = contenders.into_iter();
    while let (Some(ours), Some(tower)) = (pairs.next(), pairs.next()) {
        let backend = ours.name.trim_start_matches("ours ");
        // Redis rows are measured against the same two Redis commands with nothing else; the
        // memory rows against the route with no session at all.
        let floor = if backend == "Redis" {
            &redis_floor
        } else {
            &bare
        };
        rows.push(Row {
            section: "http",
            case: format!("{backend} c={}", options.connections),
            unit: "req/s",
            format: Unit::PerSecond,
            better: Better::Higher,
            peer: Peer::TowerSessions,
            ours: ours.requests,
            tower: Some(tower.requests),
            django: None,
            last_write_wins: None,
            floor: Some(floor.requests.clone()),
        });
        rows.push(Row {
            section: "http",
            case: format!("{backend} c={}", options.connections),
            unit: "p99",
            format: Unit::Millis,
            better: Better::Lower,
            peer: Peer::TowerSessions,
            ours: ours.p99,
            tower: Some(tower.p99),
            django: None,
            last_write_wins: None,
            floor: Some(floor.p99.clone()),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 5s test @ http://127.0.0.1:3000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.93ms  412.05us   9.80ms   88.10%
    Req/Sec    33.21k     1.02k   35.11k    72.00%
  Latency Distribution
     50%    1.85ms
     75%    2.03ms
     90%    2.31ms
     99%  850.00us
  165281 requests in 5.00s, 24.12MB read
Requests/sec:  33049.59
Transfer/sec:      4.82MB
";

    #[test]
    fn wrk_output_gives_rate_and_p99() {
        let result = parse_wrk(WRK_OUTPUT).unwrap();
        assert_eq!(result.requests_per_second, 33049.59);
        assert!((result.p99_ms - 0.85).abs() < 1e-9);
    }

    #[test]
    fn wrk_failures_are_errors() {
        let failed = WRK_OUTPUT.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 12\nRequests/sec",
        );
        assert!(parse_wrk(&failed).is_err());
        let broken = WRK_OUTPUT.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec",
        );
        assert!(parse_wrk(&broken).is_err());
    }

    #[test]
    fn latency_units() {
        assert_eq!(millis("850.00us"), Some(0.85));
        assert_eq!(millis("2.5ms"), Some(2.5));
        assert_eq!(millis("1.20s"), Some(1200.0));
        assert_eq!(millis("12"), None);
    }

    #[test]
    fn cookie_script_cycles_through_every_cookie() {
        let script = cookie_script(&["a=1".into(), "a=2".into()]);
        assert!(script.contains("\"a=1\","));
        assert!(script.contains("\"a=2\","));
        assert!(script.contains("(n % #cookies) + 1"));
    }
}
