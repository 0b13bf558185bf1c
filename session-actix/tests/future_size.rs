//! The future the middleware boxes for each request, which must come from the allocator's
//! per-thread cache (see session-conformance's `memory` module).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use actix_web::dev::{Service, Transform};
use actix_web::test;
use common::*;
use session_conformance::memory::assert_boxed_futures_fit_the_thread_cache;
use session_core::{MemoryStore, SessionStore};

#[actix_web::test]
async fn the_future_the_middleware_boxes_per_request_fits_the_allocators_thread_cache() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let service = middleware(store, config())
        .new_transform(test::ok_service())
        .await
        .unwrap();
    let future = service.call(test::TestRequest::default().to_srv_request());
    assert_boxed_futures_fit_the_thread_cache(&[("middleware", std::mem::size_of_val(&*future))]);
}
