//! The middleware over real stores (SQLite through session-db, Redis through session-cache): a
//! visitor's whole life (visits, login cycling the key, logout flushing), and the reject policy's
//! 409 on a lost concurrent save.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, test, web};
use common::*;
use session_actix::{Session, SessionError, SessionMiddleware};
use session_cache::CacheStore;
use session_conformance::services::{REDIS_URL, unique_name, url_or_skip};
use session_core::{ConcurrencyPolicy, SessionConfig, SessionKey, SessionStore};
use session_db::SqliteStore;
use tokio::sync::{Barrier, Notify};

async fn sqlite(config: &SessionConfig) -> Arc<dyn SessionStore> {
    let store = SqliteStore::connect("sqlite::memory:", config)
        .await
        .unwrap();
    store.ensure_schema().await.unwrap();
    Arc::new(store)
}

async fn redis(config: &SessionConfig, test: &str) -> Option<Arc<dyn SessionStore>> {
    let url = url_or_skip(REDIS_URL, test)?;
    let store = CacheStore::connect(&url, config)
        .await
        .unwrap()
        .with_session_key_prefix(unique_name("session_actix"));
    Some(Arc::new(store))
}

async fn visit(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("visits").await?.unwrap_or(0);
    session.insert("visits", &(n + 1)).await?;
    Ok(format!("visit {}", n + 1))
}

async fn login(session: Session) -> Result<HttpResponse, SessionError> {
    session.cycle_key().await?;
    session.insert("_auth_user_id", "42").await?;
    Ok(HttpResponse::Ok().body("logged in"))
}

async fn logout(session: Session) -> Result<HttpResponse, SessionError> {
    session.flush().await?;
    Ok(HttpResponse::Ok().body("logged out"))
}

async fn untouched() -> HttpResponse {
    HttpResponse::Ok().body("static")
}

/// Visits, a request that never touches the session, login (new key, old record gone), logout
/// (cookie deleted, record gone).
async fn a_visitors_life(store: Arc<dyn SessionStore>) {
    let app = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::new(store.clone(), &config())
                    .unwrap()
                    .with_clock(|| FROZEN),
            )
            .route("/", web::get().to(visit))
            .route("/static", web::get().to(untouched))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout)),
    )
    .await;
    let get = |path: &str, cookie: Option<&str>| {
        let mut request = test::TestRequest::get().uri(path);
        if let Some(cookie) = cookie {
            request = request.insert_header(("cookie", cookie.to_owned()));
        }
        request.to_request()
    };

    let (first, _) = read_actix(test::call_service(&app, get("/", None)).await).await;
    assert_eq!(first.body, "visit 1");
    let key = cookie_value(&first.the_set_cookie());
    assert_generated(&key);
    assert_eq!(first.vary(), Some("Cookie"));
    let cookie = format!("sessionid={key}");

    let (second, _) = read_actix(test::call_service(&app, get("/", Some(&cookie))).await).await;
    assert_eq!(second.body, "visit 2");
    assert_eq!(cookie_value(&second.the_set_cookie()), key, "same key");

    let (quiet, _) =
        read_actix(test::call_service(&app, get("/static", Some(&cookie))).await).await;
    assert!(quiet.set_cookies.is_empty());
    assert_eq!(quiet.vary(), None);

    let request = test::TestRequest::post()
        .uri("/login")
        .insert_header(("cookie", cookie.clone()))
        .to_request();
    let (login, _) = read_actix(test::call_service(&app, request).await).await;
    let new_key = cookie_value(&login.the_set_cookie());
    assert_generated(&new_key);
    assert_ne!(new_key, key, "login cycles the key");
    let old = SessionKey::new(key.clone()).unwrap();
    assert_eq!(store.load(&old).await.unwrap(), None, "old record gone");
    let new = SessionKey::new(new_key.clone()).unwrap();
    let data = store.load(&new).await.unwrap().unwrap();
    assert_eq!(data.len(), 2, "visits and the user kept: {data:?}");

    let request = test::TestRequest::post()
        .uri("/logout")
        .insert_header(("cookie", format!("sessionid={new_key}")))
        .to_request();
    let (logout, _) = read_actix(test::call_service(&app, request).await).await;
    assert_eq!(
        logout.the_set_cookie(),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; \
         SameSite=Lax"
    );
    assert_eq!(store.load(&new).await.unwrap(), None, "flushed");
}

/// Two overlapping requests on one session under `reject`: the later save is a 409 without a
/// cookie, and the record keeps the first request's change.
async fn a_lost_concurrent_save_is_a_409(store: Arc<dyn SessionStore>, config: &SessionConfig) {
    let key = existing_session(store.clone(), &[("initial", "data")]).await;
    let cookie = format!("sessionid={key}");
    let both_loaded = Arc::new(Barrier::new(2));
    let first_done = Arc::new(Notify::new());
    let handler = {
        let (both_loaded, first_done) = (both_loaded.clone(), first_done.clone());
        move |session: Session, request: HttpRequest| {
            let (both_loaded, first_done) = (both_loaded.clone(), first_done.clone());
            async move {
                let writer = request.path().trim_start_matches('/').to_owned();
                session.keys().await.unwrap();
                both_loaded.wait().await;
                session.insert(&writer, &writer).await.unwrap();
                if writer == "second" {
                    first_done.notified().await;
                }
                ok()
            }
        }
    };
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(store.clone(), config).unwrap())
            .default_service(web::to(handler)),
    )
    .await;
    let request = |writer: &str| {
        test::TestRequest::get()
            .uri(&format!("/{writer}"))
            .insert_header(("cookie", cookie.clone()))
            .to_request()
    };
    let first = async {
        let response = test::call_service(&app, request("first")).await;
        first_done.notify_one();
        read_actix(response).await
    };
    let second = async { read_actix(test::call_service(&app, request("second")).await).await };
    let ((first, _), (second, failure)) = tokio::join!(first, second);
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 409);
    assert!(second.set_cookies.is_empty());
    assert_eq!(second.body, session_core::SESSION_CONFLICT_MESSAGE);
    assert!(matches!(
        failure.unwrap().error(),
        session_actix::Error::SessionConflict
    ));
    let key = SessionKey::new(key).unwrap();
    let record = store.load(&key).await.unwrap().unwrap();
    let keys: Vec<&str> = record.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["initial", "first"]);
    store.delete(&key).await.unwrap();
}

fn reject() -> SessionConfig {
    SessionConfig {
        concurrency: ConcurrencyPolicy::Reject,
        ..config()
    }
}

#[actix_web::test]
async fn a_visitors_life_on_sqlite() {
    a_visitors_life(sqlite(&config()).await).await;
}

#[actix_web::test]
async fn a_visitors_life_on_redis() {
    if let Some(store) = redis(&config(), "a_visitors_life_on_redis").await {
        a_visitors_life(store).await;
    }
}

#[actix_web::test]
async fn a_lost_concurrent_save_is_a_409_on_sqlite() {
    let config = reject();
    a_lost_concurrent_save_is_a_409(sqlite(&config).await, &config).await;
}

#[actix_web::test]
async fn a_lost_concurrent_save_is_a_409_on_redis() {
    let config = reject();
    if let Some(store) = redis(&config, "a_lost_concurrent_save_is_a_409_on_redis").await {
        a_lost_concurrent_save_is_a_409(store, &config).await;
    }
}
