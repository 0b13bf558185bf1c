//! One request's worth of session work, done either straight through a [`Session`] handle or as
//! an HTTP request through `session-middleware`'s layer over an in-process tower service (so the
//! cookie flow is exercised: `Cookie` in, `Set-Cookie` out, 400 on a session deleted meanwhile).

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use session_core::{Dict, Error, Expiry, Session, SessionConfig, SessionKey, SessionStore};
use session_middleware::{ResponseBody, SessionFailure, SessionLayer};
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt, service_fn};

use crate::data::Changes;

/// What a request does with its session.
#[derive(Debug, Clone)]
pub enum Op {
    /// Start a session holding exactly this data (inserted in order).
    Create(Dict),
    /// Read the data.
    Read,
    /// Read the data, then change it (only if the session was found).
    Modify(Changes),
    /// Read the data, move it to a new key (`cycle_key`, as on login), then change it.
    Cycle(Changes),
    /// End the session (`flush`, as on logout).
    Flush,
    /// Read the data, then replace all of it (`clear` and insert), creating a session if none was
    /// found: what a tab of a shared session does.
    Replace(Dict),
    /// Read the data and move it to a new key, changing nothing (only if the session was found).
    CycleOnly,
}

/// Why a session call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The save found the session deleted meanwhile (`Error::SessionDeleted`, the layer's 400).
    Deleted,
    /// The store failed (a typed `Error::Store`, or the layer's 500 for one).
    Store(String),
    /// Any other error (never expected).
    Other(String),
}

impl Failure {
    fn from_session(error: &Error) -> Failure {
        match error {
            Error::SessionDeleted => Failure::Deleted,
            Error::Store(_) => Failure::Store(error.to_string()),
            other => Failure::Other(other.to_string()),
        }
    }

    /// Whether this is a store (backend) failure, the kind outages cause.
    pub fn is_store(&self) -> bool {
        matches!(self, Failure::Store(_))
    }
}

/// What the request's handler saw and did.
#[derive(Debug, Clone, Default)]
pub struct Performed {
    /// The data found: `Some(Some(data))` present, `Some(None)` absent, `None` not loaded (the
    /// operation does not load, or the load failed).
    pub loaded: Option<Option<Dict>>,
    /// The key `cycle_key` created, when its create succeeded (even if deleting the old key then
    /// failed).
    pub cycled_to: Option<SessionKey>,
    /// The first session call that failed in the handler; nothing is saved after it.
    pub error: Option<Failure>,
}

/// What became of a request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What the handler saw and did.
    pub performed: Performed,
    /// The save at the end of the request: `Ok` when it succeeded or nothing needed saving.
    pub save: Result<(), Failure>,
    /// What the client should now hold as its cookie.
    pub cookie: CookieChange,
}

impl Outcome {
    /// The first failure of the request, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.performed.error.as_ref().or(self.save.as_ref().err())
    }
}

/// What happened to the client's session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieChange {
    /// Left as it was.
    Unchanged,
    /// Set to this key.
    Set(SessionKey),
    /// Deleted.
    Deleted,
}

impl CookieChange {
    /// The key the client holds after this change, starting from `before`.
    pub fn apply(&self, before: Option<&SessionKey>) -> Option<SessionKey> {
        match self {
            CookieChange::Unchanged => before.cloned(),
            CookieChange::Set(key) => Some(key.clone()),
            CookieChange::Deleted => None,
        }
    }
}

/// Does `op` on `session` (the handler's part of a request).
pub async fn perform(session: &Session, op: &Op) -> Performed {
    let mut performed = Performed::default();
    if let Err(error) = perform_into(session, op, &mut performed).await {
        performed.error = Some(Failure::from_session(&error));
    }
    performed
}

async fn load(session: &Session, performed: &mut Performed) -> Result<bool, Error> {
    let data = session.data().await?;
    // A key that loads nothing is dropped by the session (Django's rule for random keys).
    let present = session.key().is_some();
    performed.loaded = Some(present.then(|| Dict::clone(&data)));
    Ok(present)
}

async fn apply_changes(session: &Session, changes: &Changes) -> Result<(), Error> {
    session
        .insert_value(crate::data::VERSION, changes.version)
        .await?;
    for (key, value) in &changes.set {
        session.insert_value(key.clone(), value.clone()).await?;
    }
    for key in &changes.remove {
        session.remove(key).await?;
    }
    match changes.expiry {
        Some(Some(seconds)) => session.set_expiry(Expiry::Seconds(seconds)).await?,
        Some(None) => session.set_expiry(Expiry::Default).await?,
        None => {}
    }
    Ok(())
}

async fn cycle(session: &Session, performed: &mut Performed) -> Result<(), Error> {
    let old = session.key();
    let result = session.cycle_key().await;
    let new = session.key();
    if new.is_some() && new != old {
        performed.cycled_to = new;
    }
    result
}

async fn perform_into(session: &Session, op: &Op, performed: &mut Performed) -> Result<(), Error> {
    match op {
        Op::Create(data) => {
            session
                .update(data.iter().map(|(k, v)| (k.clone(), v.clone())))
                .await?;
        }
        Op::Read => {
            load(session, performed).await?;
        }
        Op::Modify(changes) => {
            if load(session, performed).await? {
                apply_changes(session, changes).await?;
            }
        }
        Op::Cycle(changes) => {
            if load(session, performed).await? {
                cycle(session, performed).await?;
                apply_changes(session, changes).await?;
            }
        }
        Op::Flush => session.flush().await?,
        Op::Replace(data) => {
            load(session, performed).await?;
            session.clear();
            session
                .update(data.iter().map(|(k, v)| (k.clone(), v.clone())))
                .await?;
        }
        Op::CycleOnly => {
            if load(session, performed).await? {
                cycle(session, performed).await?;
            }
        }
    }
    Ok(())
}

/// The work a request carries to the handler, and what the handler reports back.
#[derive(Debug)]
struct Job {
    op: Op,
    performed: Mutex<Option<Performed>>,
}

type HttpService =
    BoxCloneSyncService<Request<Full<Bytes>>, Response<ResponseBody<Full<Bytes>>>, Infallible>;

/// Sends requests to one store, directly or through the middleware.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    http: Option<HttpService>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("store", &self.store)
            .field("http", &self.http.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client using [`Session`] handles directly.
    pub fn direct(store: Arc<dyn SessionStore>, config: Arc<SessionConfig>) -> Client {
        Client {
            store,
            config,
            http: None,
        }
    }

    /// A client sending HTTP requests through a [`SessionLayer`] over `store`.
    pub fn http(
        store: Arc<dyn SessionStore>,
        config: Arc<SessionConfig>,
    ) -> Result<Client, session_middleware::Error> {
        let layer = SessionLayer::new(store.clone(), &config)?;
        let service = layer.layer(service_fn(|request: Request<Full<Bytes>>| async move {
            let session = request.extensions().get::<Session>().cloned();
            let job = request.extensions().get::<Arc<Job>>().cloned();
            let (Some(session), Some(job)) = (session, job) else {
                let mut response = Response::new(Full::new(Bytes::from_static(b"no job")));
                *response.status_mut() = StatusCode::NOT_IMPLEMENTED;
                return Ok::<_, Infallible>(response);
            };
            let performed = perform(&session, &job.op).await;
            // An error in the handler is answered with a 500, so the layer saves nothing.
            let status = if performed.error.is_some() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            *job.performed.lock().unwrap_or_else(PoisonError::into_inner) = Some(performed);
            let mut response = Response::new(Full::new(Bytes::from_static(b"done")));
            *response.status_mut() = status;
            Ok(response)
        }));
        Ok(Client {
            store,
            config,
            http: Some(BoxCloneSyncService::new(service)),
        })
    }

    /// Whether requests go through the middleware.
    pub fn is_http(&self) -> bool {
        self.http.is_some()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<SessionConfig> {
        &self.config
    }

    /// A fresh session handle for `key`, as a new request would get.
    pub fn session(&self, key: Option<&SessionKey>) -> Session {
        Session::new(
            self.store.clone(),
            self.config.clone(),
            key.map(SessionKey::as_str),
        )
    }

    /// Sends one request holding `key` in its cookie that does `op`.
    pub async fn request(&self, key: Option<&SessionKey>, op: &Op) -> Outcome {
        match &self.http {
            None => self.direct_request(key, op).await,
            Some(service) => self.http_request(service, key, op).await,
        }
    }

    async fn direct_request(&self, key: Option<&SessionKey>, op: &Op) -> Outcome {
        let session = self.session(key);
        let performed = perform(&session, op).await;
        // The middleware's rule: save a modified, non-empty session unless the handler failed.
        let save = if performed.error.is_none() && session.modified() && !session.is_empty() {
            session.save().await.map_err(|e| Failure::from_session(&e))
        } else {
            Ok(())
        };
        let after = session.key();
        let cookie = if after.as_ref() == key {
            CookieChange::Unchanged
        } else {
            match after {
                Some(key) => CookieChange::Set(key),
                None => CookieChange::Deleted,
            }
        };
        Outcome {
            performed,
            save,
            cookie,
        }
    }

    async fn http_request(
        &self,
        service: &HttpService,
        key: Option<&SessionKey>,
        op: &Op,
    ) -> Outcome {
        let job = Arc::new(Job {
            op: op.clone(),
            performed: Mutex::new(None),
        });
        let mut request = Request::builder().uri("/");
        if let Some(key) = key {
            request = request.header(
                COOKIE,
                format!("{}={}", self.config.cookie_name, key.as_str()),
            );
        }
        let request = match request.extension(job.clone()).body(Full::default()) {
            Ok(request) => request,
            Err(error) => return unusable_request(error.to_string()),
        };
        let response = match service.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let performed = job
            .performed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| Performed {
                error: Some(Failure::Other("the handler did not run".to_owned())),
                ..Performed::default()
            });
        let save = match (response.status(), &performed.error) {
            (StatusCode::OK, _) | (_, Some(_)) => Ok(()),
            (StatusCode::BAD_REQUEST, None) => Err(Failure::Deleted),
            (status, None) => Err(
                match response
                    .extensions()
                    .get::<SessionFailure>()
                    .map(|f| f.error())
                {
                    Some(session_middleware::Error::Store(error)) => {
                        Failure::Store(error.to_string())
                    }
                    Some(other) => Failure::Other(other.to_string()),
                    None => Failure::Other(format!("unexpected status {status}")),
                },
            ),
        };
        let cookie = session_cookie(&response, &self.config.cookie_name);
        Outcome {
            performed,
            save,
            cookie,
        }
    }
}

fn unusable_request(reason: String) -> Outcome {
    Outcome {
        performed: Performed {
            error: Some(Failure::Other(format!(
                "could not build the request: {reason}"
            ))),
            ..Performed::default()
        },
        save: Ok(()),
        cookie: CookieChange::Unchanged,
    }
}

/// The session cookie change a response makes (the last `Set-Cookie` for `name` wins, as in a
/// browser).
fn session_cookie<B>(response: &Response<B>, name: &str) -> CookieChange {
    let mut change = CookieChange::Unchanged;
    for header in response.headers().get_all(SET_COOKIE) {
        let Ok(header) = header.to_str() else {
            continue;
        };
        let pair = header.split(';').next().unwrap_or("");
        let Some((cookie_name, value)) = pair.split_once('=') else {
            continue;
        };
        if cookie_name.trim() != name {
            continue;
        }
        let value = value.trim().trim_matches('"');
        change = match SessionKey::from_client(value) {
            Some(key) if !value.is_empty() => CookieChange::Set(key),
            _ => CookieChange::Deleted,
        };
    }
    change
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use session_core::{MemoryStore, Value};

    fn clients() -> [Client; 2] {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let config = Arc::new(session_conformance::config());
        [
            Client::direct(store.clone(), config.clone()),
            Client::http(store, config).unwrap(),
        ]
    }

    fn dict(pairs: &[(&str, i64)]) -> Dict {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect()
    }

    #[tokio::test]
    async fn both_ways_create_read_cycle_and_flush_the_same() {
        for client in clients() {
            let created = client.request(None, &Op::Create(dict(&[("a", 1)]))).await;
            assert_eq!(created.save, Ok(()));
            let CookieChange::Set(key) = created.cookie else {
                panic!("no cookie: {created:?}")
            };
            let read = client.request(Some(&key), &Op::Read).await;
            assert_eq!(read.performed.loaded, Some(Some(dict(&[("a", 1)]))));
            let cycled = client.request(Some(&key), &Op::CycleOnly).await;
            let CookieChange::Set(new) = cycled.cookie else {
                panic!("no new cookie: {cycled:?}")
            };
            assert_eq!(cycled.performed.cycled_to.as_ref(), Some(&new));
            assert_ne!(new, key);
            let old = client.request(Some(&key), &Op::Read).await;
            assert_eq!(old.performed.loaded, Some(None));
            let flushed = client.request(Some(&new), &Op::Flush).await;
            assert_eq!(
                flushed.cookie,
                CookieChange::Deleted,
                "{}",
                client.is_http()
            );
            let gone = client.request(Some(&new), &Op::Read).await;
            assert_eq!(gone.performed.loaded, Some(None));
        }
    }

    #[tokio::test]
    async fn both_ways_report_a_save_of_a_deleted_session_as_deleted() {
        for client in clients() {
            let created = client.request(None, &Op::Create(dict(&[("a", 1)]))).await;
            let CookieChange::Set(key) = created.cookie else {
                panic!("no cookie")
            };
            // Load first, then delete behind the request's back, then save.
            let session = client.session(Some(&key));
            session.data().await.unwrap();
            client.store().delete(&key).await.unwrap();
            session.insert("b", &2).await.unwrap();
            assert!(matches!(session.save().await, Err(Error::SessionDeleted)));
            // Through a request: the record is gone before the load, so nothing is written.
            let outcome = client
                .request(
                    Some(&key),
                    &Op::Modify(Changes {
                        version: 2,
                        set: vec![],
                        remove: vec![],
                        expiry: None,
                    }),
                )
                .await;
            assert_eq!(outcome.performed.loaded, Some(None));
            assert_eq!(outcome.save, Ok(()));
            assert_eq!(client.store().load(&key).await.unwrap(), None);
        }
    }
}
