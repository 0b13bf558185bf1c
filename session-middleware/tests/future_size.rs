//! The future the layer boxes for each request.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::Full;
use session_conformance::memory::assert_boxed_futures_fit_the_thread_cache;
use session_core::{MemoryStore, SessionStore};
use tower::{Layer, Service, service_fn};

#[tokio::test]
async fn the_future_the_layer_boxes_per_request_fits_the_allocators_thread_cache() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let mut service = layer(store, config()).layer(service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
    }));
    let future = service.call(Request::new(Full::new(Bytes::new())));
    assert_boxed_futures_fit_the_thread_cache(&[("layer", std::mem::size_of_val(&*future))]);
}

/// The same around an axum router whose handler reads and writes the session, as a real
/// application's does (the router's own future sits inside the layer's).
#[tokio::test]
async fn around_an_axum_router_too() {
    async fn visit(session: session_middleware::Session) -> String {
        let visits: i64 = session.get("visits").await.unwrap().unwrap_or(0);
        session.insert("visits", &(visits + 1)).await.unwrap();
        format!("visits {}", visits + 1)
    }
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let router = axum::Router::new().route("/", axum::routing::get(visit));
    let mut service = layer(store, config()).layer(router);
    let request = Request::builder()
        .uri("/")
        .body(axum::body::Body::empty())
        .unwrap();
    let future = service.call(request);
    assert_boxed_futures_fit_the_thread_cache(&[(
        "layer around axum",
        std::mem::size_of_val(&*future),
    )]);
}
