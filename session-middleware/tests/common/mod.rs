//! Shared test helpers: instrumented stores, a frozen clock, and a way to run a handler through the
//! layer.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; test code

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE, VARY};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use session_core::codec::SIGNED_COOKIES_SALT;
use session_core::{
    ClearExpired, Dict, Error, KeyKind, MemoryStore, SaveMode, Session, SessionCodec,
    SessionConfig, SessionKey, SessionRecord, SessionStore,
};
use session_middleware::{ResponseBody, SessionLayer};
use time::OffsetDateTime;
use time::macros::datetime;
use tower::{Layer, Service, ServiceExt, service_fn};

/// The moment Django's observed headers were produced at (spec §4.3): Unix 1700000000.
pub const FROZEN: OffsetDateTime = datetime!(2023-11-14 22:13:20 UTC);

/// The secret of Django's test settings.
pub const SECRET: &str = "django_tests_secret_key";

pub fn config() -> SessionConfig {
    SessionConfig::new(SECRET)
}

/// A layer over `store` with `config` and the clock frozen at [`FROZEN`].
pub fn layer(store: Arc<dyn SessionStore>, config: SessionConfig) -> SessionLayer {
    SessionLayer::new(store, &config)
        .unwrap()
        .with_clock(|| FROZEN)
}

pub type Body = ResponseBody<Full<Bytes>>;

/// The layer around a handler that receives the request's session.
pub fn app<F, Fut>(
    layer: &SessionLayer,
    handler: F,
) -> impl Service<Request<Full<Bytes>>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static
+ use<F, Fut>
where
    F: Fn(Session) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    layer.layer(service_fn(move |request: Request<Full<Bytes>>| {
        let handler = handler.clone();
        async move {
            let session = request.extensions().get::<Session>().unwrap().clone();
            Ok::<_, Infallible>(handler(session).await)
        }
    }))
}

/// Sends a GET with the given `Cookie` header (if any) through `service`.
pub async fn send<S>(service: &S, cookie: Option<&str>) -> Response<Body>
where
    S: Service<Request<Full<Bytes>>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let mut request = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let request = request.body(Full::default()).unwrap();
    service.clone().oneshot(request).await.unwrap()
}

pub fn ok() -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(b"Session test")))
}

pub fn status(code: u16) -> Response<Full<Bytes>> {
    let mut response = ok();
    *response.status_mut() = StatusCode::from_u16(code).unwrap();
    response
}

pub fn set_cookies(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The only `Set-Cookie` header, as Python would print it with `response.cookies.output()`.
pub fn the_set_cookie(response: &Response<Body>) -> String {
    let all = set_cookies(response);
    assert_eq!(all.len(), 1, "expected exactly one Set-Cookie, got {all:?}");
    format!("Set-Cookie: {}", all[0])
}

pub fn vary(response: &Response<Body>) -> Option<String> {
    response
        .headers()
        .get(VARY)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The value of the session cookie in a `Set-Cookie` header.
pub fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie
        .trim_start_matches("Set-Cookie: ")
        .split(';')
        .next()
        .unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

pub async fn body_text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Asserts `key` is a 32-character generated key.
pub fn assert_generated(key: &str) {
    assert_eq!(key.len(), 32, "{key:?}");
    assert!(SessionKey::new(key).unwrap().is_generated_form(), "{key:?}");
}

/// A [`MemoryStore`] that counts every call, and can be told to fail loads or saves.
#[derive(Debug, Default)]
pub struct InstrumentedStore {
    pub inner: MemoryStore,
    pub loads: AtomicUsize,
    pub saves: AtomicUsize,
    pub deletes: AtomicUsize,
    pub other: AtomicUsize,
    pub fail_loads: AtomicBool,
    pub fail_saves: AtomicBool,
}

impl InstrumentedStore {
    pub fn calls(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
            + self.saves.load(Ordering::SeqCst)
            + self.deletes.load(Ordering::SeqCst)
            + self.other.load(Ordering::SeqCst)
    }
}

fn backend_down() -> Error {
    Error::store(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "backend down (test)",
    ))
}

#[async_trait]
impl SessionStore for InstrumentedStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.fail_loads.load(Ordering::SeqCst) {
            return Err(backend_down());
        }
        self.inner.load(key).await
    }

    async fn load_with_expiry(
        &self,
        key: &SessionKey,
    ) -> Result<Option<session_core::LoadedRecord>, Error> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.fail_loads.load(Ordering::SeqCst) {
            return Err(backend_down());
        }
        self.inner.load_with_expiry(key).await
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.other.fetch_add(1, Ordering::SeqCst);
        self.inner.exists(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err(backend_down());
        }
        self.inner.save(key, record, mode).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.other.fetch_add(1, Ordering::SeqCst);
        self.inner.clear_expired().await
    }
}

/// A minimal signed-cookie store (Django's `signed_cookies` backend): the key is the data, signed
/// with the signed-cookie salt at the store's (settable) clock; nothing is kept server-side.
#[derive(Debug)]
pub struct SignedDataStore {
    codec: SessionCodec,
    cookie_age: i64,
    pub now: Mutex<OffsetDateTime>,
}

impl SignedDataStore {
    pub fn new(config: &SessionConfig) -> Self {
        SignedDataStore {
            codec: SessionCodec::with_token_salt(config, SIGNED_COOKIES_SALT).unwrap(),
            cookie_age: config.cookie_age,
            now: Mutex::new(FROZEN),
        }
    }

    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap()
    }
}

#[async_trait]
impl SessionStore for SignedDataStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        let max_age = StdDuration::from_secs(u64::try_from(self.cookie_age).unwrap());
        let now = SystemTime::from(self.now());
        Ok(self
            .codec
            .try_decode_at(key.as_str(), Some(max_age), now)
            .ok())
    }

    async fn exists(&self, _key: &SessionKey) -> Result<bool, Error> {
        Ok(false)
    }

    async fn save(
        &self,
        _key: &SessionKey,
        record: SessionRecord<'_>,
        _mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        let token = self
            .codec
            .encode_at(record.data, self.now().unix_timestamp())?;
        SessionKey::new(token)
    }

    async fn delete(&self, _key: &SessionKey) -> Result<(), Error> {
        Ok(())
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        Ok(ClearExpired::NotNeeded)
    }

    fn key_kind(&self) -> KeyKind {
        KeyKind::SignedData
    }
}

/// Stores `data` as a new session directly in `store` and returns its key.
pub async fn existing_session(store: Arc<dyn SessionStore>, data: &[(&str, &str)]) -> String {
    let session = Session::new(store, Arc::new(config()), None);
    for (k, v) in data {
        session.insert(*k, v).await.unwrap();
    }
    session.save().await.unwrap();
    session.key().unwrap().as_str().to_owned()
}

/// A place for a handler to leave its session so the test can inspect it afterwards.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Option<Session>>>);

impl Captured {
    pub fn keep(&self, session: &Session) {
        *self.0.lock().unwrap() = Some(session.clone());
    }

    pub fn get(&self) -> Session {
        self.0.lock().unwrap().clone().unwrap()
    }
}
