//! What the session layer costs per request, against `MemoryStore`, compared with the bare service:
//! a request that never touches its session, one that reads an existing session, one that changes
//! it (load + save + Set-Cookie), and one that starts a new session.
#![allow(clippy::unwrap_used)] // benchmark code

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::COOKIE;
use http::{Request, Response};
use http_body_util::Full;
use session_core::{MemoryStore, Session, SessionConfig};
use session_middleware::SessionLayer;
use tower::{Layer, ServiceExt, service_fn};

#[derive(Clone, Copy)]
enum Touch {
    Never,
    Read,
    Write,
}

async fn handler(
    touch: Touch,
    request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(session) = request.extensions().get::<Session>() {
        match touch {
            Touch::Never => {}
            Touch::Read => {
                session.get::<u64>("visits").await.unwrap();
            }
            Touch::Write => {
                let n: u64 = session.get("visits").await.unwrap().unwrap_or(0);
                session.insert("visits", &(n + 1)).await.unwrap();
            }
        }
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

fn request(cookie: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.body(Full::default()).unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let config = SessionConfig::new("a long random secret for the benchmark");
    let layer = SessionLayer::new(store.clone(), &config).unwrap();
    let cookie = runtime.block_on(async {
        let session = Session::new(store.clone(), Arc::new(config), None);
        session.insert("user_id", &42u64).await.unwrap();
        session.insert("visits", &0u64).await.unwrap();
        session.save().await.unwrap();
        format!(
            "csrftoken=abc; sessionid={}; theme=dark",
            session.key().unwrap().as_str()
        )
    });

    let mut group = c.benchmark_group("layer");
    // Bounded: every "new session" iteration adds a record to the store.
    group
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    let bare = service_fn(|r| handler(Touch::Never, r));
    group.bench_function("bare service (no layer)", |b| {
        b.to_async(&runtime)
            .iter(|| bare.oneshot(request(Some(&cookie))))
    });
    let cases = [
        ("untouched session", Touch::Never, Some(cookie.as_str())),
        ("read existing session", Touch::Read, Some(cookie.as_str())),
        (
            "modify existing session (save + Set-Cookie)",
            Touch::Write,
            Some(cookie.as_str()),
        ),
        ("new session (create + Set-Cookie)", Touch::Write, None),
    ];
    for (name, touch, cookie) in cases {
        let service = layer.layer(service_fn(move |r| handler(touch, r)));
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| service.clone().oneshot(request(cookie)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
