//! The layer in an axum router, and the `Session` extractor.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::routing::{get, post};
use common::*;
use http::header::{COOKIE, SET_COOKIE, VARY};
use http::{Request, StatusCode};
use session_middleware::{MissingSessionLayer, Session};
use tower::ServiceExt;

async fn login(State(site): State<&'static str>, session: Session) -> &'static str {
    session.cycle_key().await.unwrap();
    session.insert("_auth_user_id", "42").await.unwrap();
    site
}

async fn whoami(session: Session) -> String {
    session
        .get::<String>("_auth_user_id")
        .await
        .unwrap()
        .unwrap_or_else(|| "anonymous".to_owned())
}

async fn logout(session: Session) -> &'static str {
    session.flush().await.unwrap();
    "bye"
}

fn router(store: Arc<InstrumentedStore>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/logout", post(logout))
        .with_state("example")
        .layer(layer(store, config()))
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> http::Response<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(response: http::Response<Body>) -> String {
    let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn login_whoami_logout_through_an_axum_router() {
    let store = Arc::new(InstrumentedStore::default());
    let app = router(store.clone());

    let response = call(&app, "POST", "/login", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert_eq!(response.headers()[VARY], "Cookie");
    assert_eq!(text(response).await, "example");
    let key = cookie_value(&set_cookie);
    assert_generated(&key);
    let cookie = format!("sessionid={key}");

    let response = call(&app, "GET", "/whoami", Some(&cookie)).await;
    assert!(response.headers().get(SET_COOKIE).is_none());
    assert_eq!(text(response).await, "42");

    let response = call(&app, "POST", "/logout", Some(&cookie)).await;
    assert_eq!(
        response.headers()[SET_COOKIE],
        "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
    );
    assert!(store.inner.is_empty());

    // The old cookie now names nothing: anonymous, and the browser is told to drop it.
    let response = call(&app, "GET", "/whoami", Some(&cookie)).await;
    assert!(
        response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("sessionid=\"\"")
    );
    assert_eq!(text(response).await, "anonymous");
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_500_naming_the_fix() {
    let app = Router::new().route("/whoami", get(whoami));
    let response = call(&app, "GET", "/whoami", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text(response).await.contains("sessions are not configured"));
    assert!(
        MissingSessionLayer
            .to_string()
            .contains("SessionLayer::new")
    );
}

#[tokio::test]
async fn an_optional_extractor_sees_whether_the_layer_runs() {
    async fn maybe(session: Option<Session>) -> &'static str {
        if session.is_some() { "session" } else { "none" }
    }
    let bare = Router::new().route("/", get(maybe));
    assert_eq!(text(call(&bare, "GET", "/", None).await).await, "none");
    let store = Arc::new(InstrumentedStore::default());
    let layered = bare.layer(layer(store.clone(), config()));
    assert_eq!(
        text(call(&layered, "GET", "/", None).await).await,
        "session"
    );
    assert_eq!(store.calls(), 0);
}

#[tokio::test]
async fn the_extractor_is_the_layers_session() {
    async fn handler(request: Request<Body>) -> String {
        let from_extensions = request
            .extensions()
            .get::<session_core::Session>()
            .unwrap()
            .clone();
        let (mut parts, _) = request.into_parts();
        let extracted =
            <Session as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await
                .unwrap();
        extracted.insert("via", "extractor").await.unwrap();
        // One handle: the change made through the extractor is visible through the extension.
        from_extensions.get::<String>("via").await.unwrap().unwrap()
    }
    let store = Arc::new(InstrumentedStore::default());
    let app = Router::new()
        .route("/", get(handler))
        .layer(layer(store, config()));
    let response = call(&app, "GET", "/", None).await;
    assert!(response.headers().contains_key(SET_COOKIE));
    assert_eq!(text(response).await, "extractor");
}
