//! The middleware's behaviour under actix-web beyond Django's own tests: laziness, header merging,
//! error responses, the extractor, configuration checks, and the same bytes as the tower layer.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web::{App, HttpResponse, test, web};
use common::*;
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::{
    ConcurrencyPolicy, Dict, Expiry, MemoryStore, SameSite, SessionConfig, SessionKey, SessionStore,
};
use tokio::sync::{Barrier, Notify};

#[actix_web::test]
async fn a_request_that_never_touches_its_session_never_touches_the_store() {
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("hello", "world")]).await;
    let before = store.calls();
    let middleware = middleware(store.clone(), config());
    for cookie in [
        None,
        Some(format!("sessionid={key}")),
        Some("a=b".to_owned()),
    ] {
        let (response, _) = send(
            &middleware,
            cookie.as_deref(),
            |_session| async move { ok() },
        )
        .await;
        assert!(response.set_cookies.is_empty(), "{cookie:?}");
        assert_eq!(response.vary(), None, "{cookie:?}");
    }
    assert_eq!(
        store.calls(),
        before,
        "no store call for untouched sessions"
    );
}

#[actix_web::test]
async fn a_too_short_cookie_is_deleted_without_a_store_call() {
    let store = Arc::new(InstrumentedStore::default());
    let (response, _) = send(
        &middleware(store.clone(), config()),
        Some("sessionid=abc"),
        |_session| async move { ok() },
    )
    .await;
    assert_eq!(
        response.the_set_cookie(),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
    );
    assert_eq!(response.vary(), Some("Cookie"));
    assert_eq!(store.calls(), 0);
}

#[actix_web::test]
async fn a_read_only_session_varies_but_is_not_saved() {
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("hello", "world")]).await;
    let saves = store.saves.load(Ordering::SeqCst);
    let (response, _) = send(
        &middleware(store.clone(), config()),
        Some(&format!("theme=dark; sessionid={key}")),
        |session| async move {
            assert_eq!(
                session.get::<String>("hello").await.unwrap().as_deref(),
                Some("world")
            );
            ok()
        },
    )
    .await;
    assert!(response.set_cookies.is_empty());
    assert_eq!(response.vary(), Some("Cookie"));
    assert_eq!(store.loads.load(Ordering::SeqCst), 1, "loaded once, lazily");
    assert_eq!(store.saves.load(Ordering::SeqCst), saves);
}

#[actix_web::test]
async fn vary_is_merged_with_the_handlers() {
    let store = Arc::new(InstrumentedStore::default());
    let (response, _) = send(&middleware(store, config()), None, |session| async move {
        session.insert("a", "b").await.unwrap();
        HttpResponse::Ok()
            .append_header(("vary", "Accept-Encoding"))
            .append_header(("vary", "origin, cookie"))
            .body("x")
    })
    .await;
    assert_eq!(response.vary, ["Accept-Encoding, origin, cookie"]);
}

#[actix_web::test]
async fn the_middlewares_cookie_replaces_a_handler_cookie_of_the_same_name_only() {
    let store = Arc::new(InstrumentedStore::default());
    let (response, _) = send(&middleware(store, config()), None, |session| async move {
        session.insert("a", "b").await.unwrap();
        HttpResponse::Ok()
            .append_header(("set-cookie", "sessionid=from-handler; Path=/"))
            .append_header(("set-cookie", "csrftoken=abc; Path=/"))
            .body("x")
    })
    .await;
    assert_eq!(response.set_cookies.len(), 2, "{:?}", response.set_cookies);
    assert_eq!(response.set_cookies[0], "csrftoken=abc; Path=/");
    let ours = cookie_value(&response.set_cookies[1]);
    assert_generated(&ours);
}

#[actix_web::test]
async fn an_emptied_session_loses_its_cookie_even_on_a_5xx() {
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("hello", "world")]).await;
    let (response, _) = send(
        &middleware(store.clone(), config()),
        Some(&format!("sessionid={key}")),
        |session| async move {
            session.flush().await.unwrap();
            status(503)
        },
    )
    .await;
    assert_eq!(response.status, 503);
    assert!(
        response
            .the_set_cookie()
            .contains("sessionid=\"\"; expires=Thu, 01 Jan 1970")
    );
}

#[actix_web::test]
async fn a_failing_store_while_saving_is_a_500_without_a_cookie() {
    let store = Arc::new(InstrumentedStore::default());
    store.fail_saves.store(true, Ordering::SeqCst);
    let (response, failure) = send(&middleware(store, config()), None, |session| async move {
        session.insert("a", "b").await.unwrap();
        ok()
    })
    .await;
    assert_eq!(response.status, 500);
    assert!(response.set_cookies.is_empty());
    assert_eq!(response.body, session_actix::SERVER_ERROR_MESSAGE);
    assert!(!response.body.contains("backend down"), "no cause sent");
    assert!(matches!(
        failure.unwrap().error(),
        session_actix::Error::Store(_)
    ));
}

#[actix_web::test]
async fn max_age_and_expires_follow_the_sessions_expiry() {
    for (expiry, expected) in [
        (
            Expiry::Seconds(60),
            "expires=Tue, 14 Nov 2023 22:14:20 GMT; HttpOnly; Max-Age=60; Path=/; SameSite=Lax",
        ),
        (Expiry::BrowserClose, "HttpOnly; Path=/; SameSite=Lax"),
    ] {
        let store = Arc::new(InstrumentedStore::default());
        let (response, _) = send(
            &middleware(store, config()),
            None,
            move |session| async move {
                session.insert("a", "b").await.unwrap();
                session.set_expiry(expiry).await.unwrap();
                ok()
            },
        )
        .await;
        let cookie = response.the_set_cookie();
        assert_eq!(cookie.split_once("; ").unwrap().1, expected);
    }
}

/// Two requests on one cookie that both load the session, then each set a key of their own; the
/// second saves after the first. Returns both answers, the second's failure, and the record.
async fn overlapping_saves(
    policy: ConcurrencyPolicy,
) -> (
    Answer,
    Answer,
    Option<session_actix::SessionFailure>,
    Option<Dict>,
) {
    let store = Arc::new(MemoryStore::new());
    let config = SessionConfig {
        concurrency: policy,
        ..config()
    };
    let key = existing_session(store.clone(), &[("initial", "data")]).await;
    let cookie = format!("sessionid={key}");
    let both_loaded = Arc::new(Barrier::new(2));
    let first_done = Arc::new(Notify::new());
    let handler = {
        let (both_loaded, first_done) = (both_loaded.clone(), first_done.clone());
        move |session: Session, request: actix_web::HttpRequest| {
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
            .wrap(SessionMiddleware::new(store.clone(), &config).unwrap())
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
    let record = store.load(&SessionKey::new(key).unwrap()).await.unwrap();
    (first, second, failure, record)
}

fn keys_of(record: &Dict) -> Vec<&str> {
    record.keys().map(|k| k.as_str()).collect()
}

#[actix_web::test]
async fn under_reject_the_later_overlapping_save_is_a_409_without_a_cookie() {
    let (first, second, failure, record) = overlapping_saves(ConcurrencyPolicy::Reject).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 409);
    assert!(second.set_cookies.is_empty());
    assert!(matches!(
        failure.unwrap().error(),
        session_actix::Error::SessionConflict
    ));
    assert_eq!(second.body, session_core::SESSION_CONFLICT_MESSAGE);
    assert_eq!(keys_of(&record.unwrap()), ["initial", "first"]);
}

#[actix_web::test]
async fn under_merge_both_overlapping_saves_keep_their_keys() {
    let (first, second, failure, record) = overlapping_saves(ConcurrencyPolicy::Merge).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert!(failure.is_none());
    assert_eq!(second.set_cookies.len(), 1);
    assert_eq!(keys_of(&record.unwrap()), ["initial", "first", "second"]);
}

#[actix_web::test]
async fn of_two_overlapping_saves_the_later_replaces_the_whole_record() {
    let (first, second, _, record) = overlapping_saves(ConcurrencyPolicy::LastWriteWins).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(keys_of(&record.unwrap()), ["initial", "second"]);
}

#[actix_web::test]
async fn a_policy_the_store_cannot_serve_is_refused_when_the_middleware_is_built() {
    let signed = Arc::new(SignedDataStore::new(&config()));
    for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
        let config = SessionConfig {
            concurrency: policy,
            ..config()
        };
        let err = SessionMiddleware::new(signed.clone(), &config).unwrap_err();
        assert!(
            matches!(err, session_actix::Error::InvalidConfig(_)),
            "{err}"
        );
        let tower = session_middleware::SessionLayer::new(signed.clone(), &config).unwrap_err();
        assert_eq!(err.to_string(), tower.to_string(), "the same check");
    }
    SessionMiddleware::new(signed, &config()).unwrap();
}

#[actix_web::test]
async fn invalid_configs_are_refused_like_the_tower_layers() {
    let bad = [
        SessionConfig {
            cookie_path: "/a;b".to_owned(),
            ..config()
        },
        SessionConfig {
            cookie_domain: Some("a b".to_owned()),
            ..config()
        },
        SessionConfig {
            cookie_name: "bad name".to_owned(),
            ..config()
        },
        SessionConfig {
            cookie_samesite: Some(SameSite::None),
            cookie_secure: false,
            cookie_name: "__Host-id".to_owned(),
            ..config()
        },
    ];
    for config in bad {
        let store = Arc::new(MemoryStore::new());
        let tower = session_middleware::SessionLayer::new(store.clone(), &config).err();
        let actix = SessionMiddleware::new(store, &config).err();
        assert_eq!(
            actix.as_ref().map(ToString::to_string),
            tower.as_ref().map(ToString::to_string),
            "{config:?}"
        );
    }
}

#[actix_web::test]
async fn without_the_middleware_the_extractor_answers_500_and_option_is_none() {
    let app = test::init_service(
        App::new()
            .route("/", web::get().to(|_s: Session| async { ok() }))
            .route(
                "/optional",
                web::get().to(|s: Option<Session>| async move {
                    HttpResponse::Ok().body(format!("{}", s.is_some()))
                }),
            ),
    )
    .await;
    let response = test::call_service(&app, test::TestRequest::get().to_request()).await;
    let (answer, _) = read_actix(response).await;
    assert_eq!(answer.status, 500);
    assert_eq!(
        answer.body,
        "Server Error (500): sessions are not configured for this route."
    );
    let body =
        test::call_and_read_body(&app, test::TestRequest::get().uri("/optional").to_request())
            .await;
    assert_eq!(body, "false");
}

#[actix_web::test]
async fn session_errors_from_handlers_answer_like_the_middleware() {
    let store = Arc::new(MemoryStore::new());
    let key = existing_session(store.clone(), &[("hello", "world")]).await;
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(store.clone(), &config()).unwrap())
            .route(
                "/deleted",
                web::get().to(|session: Session| async move {
                    // Another request logged the user out after this one loaded the session.
                    session.keys().await?;
                    session.store().delete(&session.key().unwrap()).await?;
                    session.insert("x", "y").await?;
                    session.save().await?;
                    Ok::<_, SessionError>(ok())
                }),
            )
            .route(
                "/broken",
                web::get().to(|| async {
                    Err::<HttpResponse, _>(SessionError::from(session_core::Error::store(
                        "connection refused to 10.0.0.7:5432",
                    )))
                }),
            ),
    )
    .await;
    let request = test::TestRequest::get()
        .uri("/deleted")
        .insert_header(("cookie", format!("sessionid={key}")))
        .to_request();
    let (answer, _) = read_actix(test::call_service(&app, request).await).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body, session_core::SESSION_INTERRUPTED_MESSAGE);

    let request = test::TestRequest::get().uri("/broken").to_request();
    let (answer, _) = read_actix(test::call_service(&app, request).await).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.body, "Server Error (500)");
    assert_eq!(
        answer.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
}

// The same inputs through both adapters give the same bytes.

#[derive(Debug, Clone, Copy)]
enum Action {
    Nothing,
    Read,
    Insert,
    Flush,
    CycleKey,
    Expiry3600,
    BrowserClose,
    InsertThen500,
    InsertWithVary,
    InsertWithOwnCookie,
    DeleteThenSave,
}

const ACTIONS: [Action; 11] = [
    Action::Nothing,
    Action::Read,
    Action::Insert,
    Action::Flush,
    Action::CycleKey,
    Action::Expiry3600,
    Action::BrowserClose,
    Action::InsertThen500,
    Action::InsertWithVary,
    Action::InsertWithOwnCookie,
    Action::DeleteThenSave,
];

/// Runs `action` on the session; returns the handler's status and extra headers.
async fn perform(
    session: session_core::Session,
    action: Action,
) -> (u16, Vec<(&'static str, &'static str)>) {
    match action {
        Action::Nothing => {}
        Action::Read => {
            session.get::<String>("hello").await.unwrap();
        }
        Action::Insert | Action::InsertThen500 => session.insert("n", &1).await.unwrap(),
        Action::Flush => session.flush().await.unwrap(),
        Action::CycleKey => session.cycle_key().await.unwrap(),
        Action::Expiry3600 => {
            session.insert("n", &1).await.unwrap();
            session.set_expiry(Expiry::Seconds(3600)).await.unwrap();
        }
        Action::BrowserClose => {
            session.insert("n", &1).await.unwrap();
            session.set_expiry(Expiry::BrowserClose).await.unwrap();
        }
        Action::InsertWithVary => {
            session.insert("n", &1).await.unwrap();
            return (
                200,
                vec![("vary", "Accept-Encoding"), ("vary", "cookie, Origin")],
            );
        }
        Action::InsertWithOwnCookie => {
            session.insert("n", &1).await.unwrap();
            return (
                200,
                vec![
                    ("set-cookie", "sessionid=mine; Path=/"),
                    ("set-cookie", "theme=dark"),
                ],
            );
        }
        Action::DeleteThenSave => {
            session.insert("n", &1).await.unwrap();
            session.save().await.unwrap();
            let key = session.key().unwrap();
            // Another request logs out; this one changes the session again: 400 on save.
            session.store().delete(&key).await.unwrap();
            session.insert("n", &2).await.unwrap();
        }
    }
    let status = if matches!(action, Action::InsertThen500) {
        500
    } else {
        200
    };
    (status, Vec::new())
}

fn configs() -> Vec<SessionConfig> {
    vec![
        config(),
        SessionConfig {
            cookie_secure: true,
            cookie_domain: Some(".example.com".to_owned()),
            cookie_samesite: Some(SameSite::None),
            cookie_age: 3600,
            cookie_path: "/app/".to_owned(),
            ..config()
        },
        SessionConfig {
            save_every_request: true,
            cookie_httponly: false,
            cookie_samesite: None,
            ..config()
        },
        SessionConfig {
            expire_at_browser_close: true,
            cookie_name: "__Secure-sid".to_owned(),
            cookie_secure: true,
            ..config()
        },
    ]
}

async fn through_actix(
    store: Arc<dyn SessionStore>,
    config: &SessionConfig,
    cookie: Option<&str>,
    action: Action,
) -> Answer {
    send(
        &middleware(store, config.clone()),
        cookie,
        move |session| async move {
            let (code, headers) = perform(session, action).await;
            let mut response = status(code);
            for (name, value) in headers {
                response.headers_mut().append(
                    name.parse().unwrap(),
                    actix_web::http::header::HeaderValue::from_static(value),
                );
            }
            response
        },
    )
    .await
    .0
}

async fn through_tower(
    store: Arc<dyn SessionStore>,
    config: &SessionConfig,
    cookie: Option<&str>,
    action: Action,
) -> Answer {
    let layer = session_middleware::SessionLayer::new(store, config)
        .unwrap()
        .with_clock(|| FROZEN);
    send_tower(&layer, cookie, move |session| async move {
        let (code, headers) = perform(session, action).await;
        let mut response = tower_common::status(code);
        for (name, value) in headers {
            response
                .headers_mut()
                .append(name, http::HeaderValue::from_static(value));
        }
        response
    })
    .await
    .0
}

/// The signed-data store makes every cookie deterministic: the answers must be identical bytes.
#[actix_web::test]
async fn the_same_inputs_give_the_tower_layers_bytes_on_signed_data_sessions() {
    let token = "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc";
    let mut compared = 0;
    for config in configs() {
        let name = config.cookie_name.clone();
        let cookies = [
            None,
            Some(format!("{name}={token}")),
            Some(format!("{name}=abc")),
            Some(format!("a=b; {name}=\"{token}\"; x")),
            Some(format!("{name}=forged-but-long-enough")),
        ];
        for cookie in &cookies {
            for action in ACTIONS {
                if matches!(action, Action::DeleteThenSave) {
                    continue; // a signed-data store has nothing to delete
                }
                let store = Arc::new(SignedDataStore::new(&config));
                let actix = through_actix(store.clone(), &config, cookie.as_deref(), action).await;
                let tower = through_tower(store, &config, cookie.as_deref(), action).await;
                assert_eq!(actix, tower, "{action:?} {cookie:?} {config:?}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 4 * 5 * 10);
}

/// Replaces the session cookie's value in `answer` by what it is relative to `existing`.
fn masked(mut answer: Answer, name: &str, existing: &str) -> Answer {
    for set_cookie in &mut answer.set_cookies {
        if let Some(rest) = set_cookie.strip_prefix(&format!("{name}=")) {
            let (value, attributes) = rest.split_once(';').unwrap_or((rest, ""));
            let label = if value == existing {
                "<existing>".to_owned()
            } else if value.len() == 32 {
                assert_generated(value);
                "<new>".to_owned()
            } else {
                value.to_owned()
            };
            *set_cookie = format!("{name}={label};{attributes}");
        }
    }
    answer
}

/// Server-side stores generate keys at random: the answers are identical once the session key is
/// named rather than spelled.
#[actix_web::test]
async fn the_same_inputs_give_the_tower_layers_bytes_on_server_side_sessions() {
    let mut compared = 0;
    for config in configs() {
        let name = config.cookie_name.clone();
        for cookie_kind in 0..4 {
            for action in ACTIONS {
                // One store per adapter, each with its own existing session.
                let mut answers = Vec::new();
                for tower in [false, true] {
                    let store = Arc::new(InstrumentedStore::default());
                    let key = existing_session(store.clone(), &[("hello", "world")]).await;
                    let cookie = match cookie_kind {
                        0 => None,
                        1 => Some(format!("{name}={key}")),
                        2 => Some(format!("{name}=abc")),
                        _ => Some(format!("{name}=unknownunknownunknown")),
                    };
                    let answer = if tower {
                        through_tower(store, &config, cookie.as_deref(), action).await
                    } else {
                        through_actix(store, &config, cookie.as_deref(), action).await
                    };
                    answers.push(masked(answer, &name, &key));
                }
                assert_eq!(
                    answers[0], answers[1],
                    "{action:?} {cookie_kind} {config:?}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 4 * 4 * 11);
}
