//! HTTP under actix-web: one handler that reads and writes one session value (`visits`), served
//! on loopback with our `session_actix::SessionMiddleware` and with actix-session's
//! `SessionMiddleware`, on Redis and on cookies (our Django signed-cookie store against
//! actix-session's `CookieSessionStore`), and with no sessions at all, under `wrk`, as the axum
//! rows of [`crate::http`] are measured.
//!
//! Each server runs in an actix `System` on a thread of its own, with as many actix workers as the
//! tokio runtime of the axum rows has. Its sessions are created through the server's own app (a
//! `/seed` route storing the payload), so each library's cookies are its own; every request then
//! carries one of them in turn, loads that session, changes it, saves it and sets the cookie again.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use actix_web::dev::ServerHandle;
use actix_web::http::header::SET_COOKIE;
use actix_web::test::{self, TestRequest};
use actix_web::{App, HttpResponse, HttpServer, web};
use session_core::{SessionKey, SessionStore};

use crate::BoxError;
use crate::http::{Options, cookie_script, wrk};
use crate::stats::{Better, Runs, Unit};
use crate::store::{config, unique_name};
use crate::table::{Peer, Row};

/// The body of `/` with `cookie` through the in-process `app`, or why there is none.
macro_rules! visits_body {
    ($app:expr, $cookie:expr) => {{
        let request = TestRequest::get()
            .uri("/")
            .insert_header(("cookie", $cookie.to_owned()))
            .to_request();
        let response = test::call_service($app, request).await;
        if response.status().is_success() {
            let body = test::read_body(response).await;
            String::from_utf8(body.to_vec()).map_err(failed)
        } else {
            Err(format!("status {}", response.status()))
        }
    }};
}

/// Where the sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Redis,
    Cookies,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Redis => "Redis",
            Backend::Cookies => "cookies",
        }
    }
}

/// Who serves the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Library {
    Ours,
    ActixSession,
    Bare,
}

/// A server in its own thread; `stop` ends it and reports what the thread checked after the run.
struct ActixServer {
    addr: SocketAddr,
    cookies: Vec<String>,
    handle: ServerHandle,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl ActixServer {
    fn start(
        library: Library,
        backend: Backend,
        options: &Options,
        workers: usize,
    ) -> Result<Self, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (ready, started) = mpsc::channel::<Result<(ServerHandle, Vec<String>), String>>();
        let options = options.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let served = match library {
                    Library::Ours => serve_ours(backend, &options, workers, listener, &ready).await,
                    Library::ActixSession => {
                        serve_actix_session(backend, &options, workers, listener, &ready).await
                    }
                    Library::Bare => serve_bare(workers, listener, &ready).await,
                };
                if let Err(error) = &served {
                    // The caller may still be waiting for the server to start.
                    ready.send(Err(error.clone())).ok();
                }
                served
            })
        });
        let (handle, cookies) = started
            .recv()
            .map_err(|_| "http actix: the server thread ended before starting")??;
        Ok(ActixServer {
            addr,
            cookies,
            handle,
            thread,
        })
    }

    async fn stop(self) -> Result<(), BoxError> {
        self.handle.stop(true).await;
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| "http actix: the server thread panicked")??;
        Ok(())
    }
}

type Ready = mpsc::Sender<Result<(ServerHandle, Vec<String>), String>>;

/// The `name=value` of the response's session cookie.
fn cookie_pair<B>(response: &actix_web::dev::ServiceResponse<B>) -> Result<String, String> {
    let header = response
        .headers()
        .get(SET_COOKIE)
        .ok_or("the seed request set no cookie")?
        .to_str()
        .map_err(|e| e.to_string())?;
    Ok(header.split(';').next().unwrap_or_default().to_owned())
}

fn failed(error: impl std::fmt::Display) -> String {
    error.to_string()
}

async fn serve_ours(
    backend: Backend,
    options: &Options,
    workers: usize,
    listener: TcpListener,
    ready: &Ready,
) -> Result<(), String> {
    use session_actix::{Session, SessionError, SessionMiddleware};

    let store: Arc<dyn SessionStore> = match backend {
        Backend::Redis => {
            let cache = session_cache::RedisCache::connect(&options.redis_url)
                .await
                .map_err(|e| format!("Redis at {}: {e}", options.redis_url))?;
            Arc::new(
                session_cache::CacheStore::new(
                    session_cache::Cache::new(cache).with_key_prefix(unique_name()),
                    &config(),
                )
                .map_err(failed)?,
            )
        }
        Backend::Cookies => Arc::new(session_cookie::CookieStore::new(&config()).map_err(failed)?),
    };
    let middleware = SessionMiddleware::new(store.clone(), &config()).map_err(failed)?;
    async fn visits(session: Session) -> Result<String, SessionError> {
        let visits: i64 = session.get("visits").await?.unwrap_or(0);
        session.insert("visits", &(visits + 1)).await?;
        Ok(format!("visits {}", visits + 1))
    }
    let dict = Arc::new(options.payload.dict.clone());
    let seed = move |session: Session| {
        let dict = dict.clone();
        async move {
            for (key, value) in dict.iter() {
                session.insert_value(key.clone(), value.clone()).await?;
            }
            Ok::<_, SessionError>(HttpResponse::Ok().finish())
        }
    };
    let app = test::init_service(
        App::new()
            .wrap(middleware.clone())
            .route("/", web::get().to(visits))
            .route("/seed", web::get().to(seed.clone())),
    )
    .await;
    let mut cookies = Vec::with_capacity(options.sessions);
    for _ in 0..options.sessions {
        let response = test::call_service(&app, TestRequest::get().uri("/seed").to_request()).await;
        cookies.push(cookie_pair(&response)?);
    }
    check_first_visit(visits_body!(&app, &cookies[0]))?;

    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware.clone())
            .route("/", web::get().to(visits))
    })
    .workers(workers)
    .disable_signals()
    .listen(listener)
    .map_err(failed)?
    .run();
    ready.send(Ok((server.handle(), cookies.clone()))).ok();
    server.await.map_err(failed)?;

    let checked = if backend == Backend::Redis {
        check_changed(visits_body!(&app, &cookies[0]))
    } else {
        Ok(())
    };
    if backend == Backend::Redis {
        for cookie in &cookies {
            let key = cookie.split_once('=').map(|(_, v)| v).unwrap_or_default();
            let key = SessionKey::new(key).map_err(failed)?;
            store.delete(&key).await.map_err(failed)?;
        }
    }
    checked
}

async fn serve_actix_session(
    backend: Backend,
    options: &Options,
    workers: usize,
    listener: TcpListener,
    ready: &Ready,
) -> Result<(), String> {
    use actix_session::config::PersistentSession;
    use actix_session::storage::{CookieSessionStore, RedisSessionStore};
    use actix_session::{Session, SessionMiddleware};
    use actix_web::cookie::{Key, time::Duration};

    fn internal(error: impl std::fmt::Display) -> actix_web::Error {
        actix_web::error::ErrorInternalServerError(error.to_string())
    }
    async fn visits(session: Session) -> Result<String, actix_web::Error> {
        let visits: i64 = session.get("visits").map_err(internal)?.unwrap_or(0);
        session.insert("visits", visits + 1).map_err(internal)?;
        Ok(format!("visits {}", visits + 1))
    }
    let map = Arc::new(options.payload.serde_map().map_err(failed)?);
    let seed = move |session: Session| {
        let map = map.clone();
        async move {
            for (key, value) in map.iter() {
                session.insert(key, value).map_err(internal)?;
            }
            Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
        }
    };
    // Django's defaults, as our side has them: a persistent cookie of two weeks, not Secure.
    let lifecycle = PersistentSession::default().session_ttl(Duration::weeks(2));
    let key = Key::generate();
    let prefix = unique_name();

    // One body for both stores: actix-session's middleware is generic over its store.
    macro_rules! serve {
        ($make_store:expr) => {{
            // actix-session's cookie store is not Clone: each app gets a middleware of its own.
            let make_store = $make_store;
            let middleware = move || {
                SessionMiddleware::builder(make_store(), key.clone())
                    .cookie_secure(false)
                    .session_lifecycle(lifecycle.clone())
                    .build()
            };
            let app = test::init_service(
                App::new()
                    .wrap(middleware())
                    .route("/", web::get().to(visits))
                    .route("/seed", web::get().to(seed.clone())),
            )
            .await;
            let mut cookies = Vec::with_capacity(options.sessions);
            for _ in 0..options.sessions {
                let response =
                    test::call_service(&app, TestRequest::get().uri("/seed").to_request()).await;
                cookies.push(cookie_pair(&response)?);
            }
            check_first_visit(visits_body!(&app, &cookies[0]))?;
            let server = HttpServer::new(move || {
                App::new()
                    .wrap(middleware())
                    .route("/", web::get().to(visits))
            })
            .workers(workers)
            .disable_signals()
            .listen(listener)
            .map_err(failed)?
            .run();
            ready.send(Ok((server.handle(), cookies.clone()))).ok();
            server.await.map_err(failed)?;
            if backend == Backend::Redis {
                check_changed(visits_body!(&app, &cookies[0]))
            } else {
                Ok(())
            }
        }};
    }

    match backend {
        Backend::Redis => {
            let keygen_prefix = prefix.clone();
            let store = RedisSessionStore::builder(options.redis_url.clone())
                .cache_keygen(move |key| format!("{keygen_prefix}:{key}"))
                .build()
                .await
                .map_err(|e| format!("actix-session Redis at {}: {e}", options.redis_url))?;
            let checked: Result<(), String> = serve!(move || store.clone());
            let cleaned = delete_prefixed(&options.redis_url, &prefix).await;
            checked.and(cleaned)
        }
        Backend::Cookies => serve!(CookieSessionStore::default),
    }
}

/// Deletes actix-session's records, which it names `<prefix>:<key>` here.
async fn delete_prefixed(url: &str, prefix: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(failed)?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(failed)?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .map_err(failed)?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut connection)
            .await
            .map_err(failed)?;
    }
    Ok(())
}

async fn serve_bare(workers: usize, listener: TcpListener, ready: &Ready) -> Result<(), String> {
    let server =
        HttpServer::new(|| App::new().route("/", web::get().to(crate::http::bare_handler)))
            .workers(workers)
            .disable_signals()
            .listen(listener)
            .map_err(failed)?
            .run();
    ready
        .send(Ok((server.handle(), vec!["unused=1".to_owned()])))
        .ok();
    server.await.map_err(failed)
}

/// Before the run: the first session answers `visits 1` (its cookie is read, the payload holds no
/// counter yet).
fn check_first_visit(body: Result<String, String>) -> Result<(), String> {
    let body = body?;
    if body == "visits 1" {
        Ok(())
    } else {
        Err(format!(
            "the session cookie is not being read: got {body:?}"
        ))
    }
}

/// After the run: the first session was changed under load (its cookie was read by the server).
fn check_changed(body: Result<String, String>) -> Result<(), String> {
    let body = body?;
    let n: i64 = body.trim_start_matches("visits ").parse().map_err(failed)?;
    if n > 2 {
        Ok(())
    } else {
        Err(format!(
            "the first session was never changed under load ({body:?}): its cookie is not being read"
        ))
    }
}

/// One served configuration under test.
struct Contender {
    name: String,
    server: ActixServer,
    script: PathBuf,
    requests: Runs,
    p99: Runs,
}

impl Contender {
    fn new(
        library: Library,
        backend: Backend,
        options: &Options,
        workers: usize,
        dir: &Path,
    ) -> Result<Self, BoxError> {
        let name = match library {
            Library::Ours => format!("ours actix {}", backend.label()),
            Library::ActixSession => format!("actix-session {}", backend.label()),
            Library::Bare => "actix no sessions".to_owned(),
        };
        let server = ActixServer::start(library, backend, options, workers)?;
        let script = dir.join(format!("{}.lua", name.replace([' ', '/'], "_")));
        std::fs::write(&script, cookie_script(&server.cookies))?;
        Ok(Contender {
            name,
            server,
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

/// Runs every actix contender `runs` times, alternating, and returns the actix HTTP rows: ours
/// against actix-session on Redis and on cookies, with actix-web serving no sessions as the floor.
/// `workers` actix workers per server.
pub async fn run(options: &Options, workers: usize) -> Result<Vec<Row>, BoxError> {
    let dir = std::env::temp_dir().join(unique_name());
    std::fs::create_dir_all(&dir)?;
    let mut contenders = Vec::new();
    let started = (|| {
        contenders.push(Contender::new(
            Library::Bare,
            Backend::Cookies,
            options,
            workers,
            &dir,
        )?);
        for backend in [Backend::Redis, Backend::Cookies] {
            for library in [Library::Ours, Library::ActixSession] {
                contenders.push(Contender::new(library, backend, options, workers, &dir)?);
            }
        }
        Ok::<_, BoxError>(())
    })();
    let measured = match started {
        Ok(()) => {
            let mut measured = Ok(());
            'runs: for run in 0..options.runs {
                eprintln!("http actix: run {}/{}", run + 1, options.runs);
                for contender in &mut contenders {
                    if let Err(error) = contender.run(options).await {
                        measured = Err(error);
                        break 'runs;
                    }
                }
            }
            measured
        }
        Err(error) => Err(error),
    };
    // Every server is stopped (and its sessions deleted) whatever happened.
    let mut finished = Vec::new();
    let mut stopped = Ok(());
    for contender in contenders {
        let Contender {
            name,
            server,
            requests,
            p99,
            ..
        } = contender;
        if let Err(error) = server.stop().await {
            stopped = Err(format!("http actix {name}: {error}"));
        }
        finished.push((name, requests, p99));
    }
    std::fs::remove_dir_all(&dir).ok();
    measured?;
    stopped?;

    let mut finished = finished.into_iter();
    let (_, bare_requests, bare_p99) = finished.next().ok_or("no floor")?;
    let mut rows = Vec::new();
    while let (Some(ours), Some(theirs)) = (finished.next(), finished.next()) {
        let backend = ours.0.trim_start_matches("ours ").to_owned();
        rows.push(Row {
            section: "http",
            case: format!("{backend} c={}", options.connections),
            unit: "req/s",
            format: Unit::PerSecond,
            better: Better::Higher,
            peer: Peer::ActixSession,
            ours: ours.1,
            tower: Some(theirs.1),
            django: None,
            last_write_wins: None,
            floor: Some(bare_requests.clone()),
        });
        rows.push(Row {
            section: "http",
            case: format!("{backend} c={}", options.connections),
            unit: "p99",
            format: Unit::Millis,
            better: Better::Lower,
            peer: Peer::ActixSession,
            ours: ours.2,
            tower: Some(theirs.2),
            django: None,
            last_write_wins: None,
            floor: Some(bare_p99.clone()),
        });
    }
    Ok(rows)
}
