//! The front door's promises: every member crate's error converts into `djsession::Error`,
//! handlers use `?` and get the middleware's answers, and the `Session` handlers name is the
//! one the layer hands out.

#![cfg(all(feature = "axum", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use djsession::prelude::*;
use djsession::{Error, SessionError};
use tower::ServiceExt;

fn config() -> SessionConfig {
    SessionConfig::new("front door test secret")
}

async fn body_text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn every_crate_error_converts_into_the_front_door_error() {
    fn into(error: impl Into<Error>) -> Error {
        error.into()
    }
    let config = config();
    // One of each crate's own errors, produced by the crate itself.
    let db = djsession::AnyDbStore::connect("nosuchdb://x", &config)
        .await
        .unwrap_err();
    assert!(matches!(into(db), Error::Db(_)));
    let layer = SessionLayer::new(MemoryStore::new(), &SessionConfig::default()).unwrap_err();
    assert!(matches!(into(layer), Error::Layer(_)));
    let env = SessionConfig::from_lookup(|_| None).unwrap_err();
    assert!(matches!(into(env), Error::Config(_)));
    assert!(matches!(
        into(SessionError::SessionDeleted),
        Error::Session(SessionError::SessionDeleted)
    ));
}

#[tokio::test]
async fn a_session_deleted_meanwhile_is_djangos_400_and_any_other_error_a_generic_500() {
    let interrupted = Error::from(SessionError::SessionDeleted).into_response();
    assert_eq!(interrupted.status(), StatusCode::BAD_REQUEST);
    assert!(
        body_text(interrupted)
            .await
            .contains("logged out in a concurrent request")
    );

    let secret_detail = "connection refused by db.internal:5432";
    let failed = Error::from(SessionError::store(secret_detail)).into_response();
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = body_text(failed).await;
    assert!(
        !body.contains(secret_detail),
        "the cause reached the client: {body}"
    );
}

/// A handler that uses `?` on session calls, returning the front door's error.
async fn counter(session: Session) -> Result<String, Error> {
    let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", &visits).await?;
    Ok(visits.to_string())
}

#[tokio::test]
async fn handlers_name_one_session_type_and_count_across_requests() {
    let config = config();
    let store = SqliteStore::connect("sqlite::memory:", &config)
        .await
        .unwrap();
    store.ensure_schema().await.unwrap();
    let app = Router::new()
        .route("/", get(counter))
        .layer(SessionLayer::new(store, &config).unwrap());

    let first = app
        .clone()
        .oneshot(Request::new(Body::empty()))
        .await
        .unwrap();
    let cookie = first.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(body_text(first).await, "1");
    let second = Request::builder()
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    assert_eq!(body_text(app.oneshot(second).await.unwrap()).await, "2");
}

#[tokio::test]
async fn a_handler_without_the_layer_gets_a_500_that_says_what_to_add() {
    let app = Router::new().route("/", get(counter));
    let response = app.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn the_layer_and_the_session_are_the_member_crates_own_types() {
    // One Session type: the facade's, the middleware's and the core's are the same type.
    fn same<T>(_: std::marker::PhantomData<T>, _: std::marker::PhantomData<T>) {}
    same(
        std::marker::PhantomData::<djsession::Session>,
        std::marker::PhantomData::<session_middleware_session::Session>,
    );
}

mod session_middleware_session {
    pub use djsession::middleware::Session;
}

#[tokio::test]
async fn every_store_names_its_kind_for_metrics() {
    let config = config();
    let sqlite = djsession::SqliteStore::connect("sqlite::memory:", &config)
        .await
        .unwrap();
    let cache = || djsession::cache::Cache::new(djsession::MemoryCache::new());
    let dir = std::env::temp_dir().join(format!("djsession-kinds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kinds = [
        MemoryStore::new().kind(),
        sqlite.kind(),
        djsession::CacheStore::new(cache(), &config).unwrap().kind(),
        djsession::CachedDbStore::new(cache(), sqlite.clone(), &config)
            .unwrap()
            .kind(),
        djsession::FileStore::new(&dir, &config)
            .await
            .unwrap()
            .kind(),
        djsession::CookieStore::new(&config).unwrap().kind(),
    ];
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        kinds,
        ["memory", "sqlite", "moka", "cached-db", "file", "cookie"]
    );
}
