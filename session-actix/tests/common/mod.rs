//! Test support: the tower layer's helpers (instrumented and signed-data stores, the frozen clock,
//! Django's test secret) shared as they are, plus a way to run a handler through the actix
//! middleware and, for comparisons, through the tower layer, and read both answers alike.
#![allow(dead_code, unused_imports, clippy::unwrap_used)] // each test binary uses a part; test code

#[path = "../../../session-middleware/tests/common/mod.rs"]
pub mod tower_common;

use std::future::Future;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, test, web};
use session_actix::{Session, SessionMiddleware};
use session_core::{SessionConfig, SessionStore};
use session_middleware::SessionFailure;
pub use tower_common::{
    Captured, FROZEN, InstrumentedStore, SECRET, SignedDataStore, assert_generated, config,
    existing_session,
};

/// The middleware over `store` with `config` and the clock frozen at [`FROZEN`].
pub fn middleware(store: Arc<dyn SessionStore>, config: SessionConfig) -> SessionMiddleware {
    SessionMiddleware::new(store, &config)
        .unwrap()
        .with_clock(|| FROZEN)
}

/// What a client sees of a response, whichever framework sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub vary: Vec<String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl Answer {
    /// The only `Set-Cookie` header, as Python would print it with `response.cookies.output()`.
    pub fn the_set_cookie(&self) -> String {
        assert_eq!(
            self.set_cookies.len(),
            1,
            "expected exactly one Set-Cookie, got {:?}",
            self.set_cookies
        );
        format!("Set-Cookie: {}", self.set_cookies[0])
    }

    /// The one `Vary` header, if any.
    pub fn vary(&self) -> Option<&str> {
        assert!(self.vary.len() <= 1, "{:?}", self.vary);
        self.vary.first().map(String::as_str)
    }
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

/// Reads an actix response into an [`Answer`], with the [`SessionFailure`] it carries, if any.
pub async fn read_actix<B: MessageBody>(
    response: ServiceResponse<B>,
) -> (Answer, Option<SessionFailure>) {
    let headers = |name: &str| -> Vec<String> {
        response
            .headers()
            .get_all(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let set_cookies = headers("set-cookie");
    let vary = headers("vary");
    let content_type = headers("content-type").into_iter().next();
    let status = response.status().as_u16();
    let failure = response
        .response()
        .extensions()
        .get::<SessionFailure>()
        .cloned();
    let body = test::read_body(response).await;
    let answer = Answer {
        status,
        set_cookies,
        vary,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    };
    (answer, failure)
}

/// Runs one GET with `cookie` (a whole `Cookie` header, if any) through `middleware` around
/// `handler`, which gets the request's session and answers with its response.
pub async fn send<F, Fut>(
    middleware: &SessionMiddleware,
    cookie: Option<&str>,
    handler: F,
) -> (Answer, Option<SessionFailure>)
where
    F: Fn(session_core::Session) -> Fut + Clone + 'static,
    Fut: Future<Output = HttpResponse> + 'static,
{
    let app = test::init_service(App::new().wrap(middleware.clone()).default_service(web::to(
        move |session: Session| {
            let handler = handler.clone();
            async move { handler(session.into_inner()).await }
        },
    )))
    .await;
    let mut request = test::TestRequest::get().uri("/");
    if let Some(cookie) = cookie {
        request = request.insert_header(("cookie", cookie));
    }
    read_actix(test::call_service(&app, request.to_request()).await).await
}

/// The handler's response of Django's tests: 200 "Session test".
pub fn ok() -> HttpResponse {
    HttpResponse::Ok().body("Session test")
}

/// The same response with another status.
pub fn status(code: u16) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(code).unwrap()).body("Session test")
}

/// Runs one GET with `cookie` through the tower layer `layer` around `handler`, read as an
/// [`Answer`]: the reference the actix middleware is compared with.
pub async fn send_tower<F, Fut>(
    layer: &session_middleware::SessionLayer,
    cookie: Option<&str>,
    handler: F,
) -> (Answer, Option<SessionFailure>)
where
    F: Fn(session_core::Session) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let service = tower_common::app(layer, handler);
    let response = tower_common::send(&service, cookie).await;
    let headers = |name: &str| -> Vec<String> {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let set_cookies = headers("set-cookie");
    let vary = headers("vary");
    let content_type = headers("content-type").into_iter().next();
    let status = response.status().as_u16();
    let failure = response.extensions().get::<SessionFailure>().cloned();
    let body = tower_common::body_text(response).await;
    let answer = Answer {
        status,
        set_cookies,
        vary,
        content_type,
        body,
    };
    (answer, failure)
}
