//! The AuthUser and MaybeUser extractors behind the session middleware.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use http::{Request, StatusCode, header};
use session_auth::extract::{AuthUser, MaybeUser};
use session_auth::{Auth, AuthConfig, MemoryUserSource, Unauthenticated, User, session_auth_hash};
use session_core::{MemoryStore, SecretKey, Session, SessionConfig};
use session_middleware::SessionLayer;
use tower::ServiceExt;

const SECRET: &str = "axum-test-secret";

async fn me(AuthUser(me): AuthUser) -> String {
    format!("user {}", me.user.id)
}

async fn maybe(MaybeUser(user): MaybeUser, AuthUser(again): AuthUser) -> String {
    // Two extractors, one lookup: both see the same user.
    format!("{:?} {}", user.map(|u| u.user.id), again.user.id)
}

async fn optional(user: Option<AuthUser>) -> String {
    format!("{:?}", user.map(|AuthUser(u)| u.user.id))
}

struct App {
    router: Router,
    users: Arc<MemoryUserSource>,
    store: Arc<MemoryStore>,
    config: Arc<SessionConfig>,
}

fn app(unauthenticated: Unauthenticated) -> App {
    let users = Arc::new(MemoryUserSource::new());
    users.insert(
        "ada",
        User {
            id: "1".into(),
            password: "md5$salt$ada".into(),
            is_active: true,
            backend: None,
        },
    );
    let auth = Auth::new(
        users.clone(),
        &AuthConfig {
            unauthenticated,
            ..AuthConfig::default()
        },
    )
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::new(SECRET));
    let router = Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route("/optional", get(optional))
        .layer(Extension(auth))
        .layer(SessionLayer::new(store.clone(), &config).unwrap());
    App {
        router,
        users,
        store,
        config,
    }
}

impl App {
    /// A session cookie of a session Django logged ada in to.
    async fn ada_cookie(&self) -> String {
        let session = Session::new(self.store.clone(), self.config.clone(), None);
        session.insert("_auth_user_id", "1").await.unwrap();
        session
            .insert(
                "_auth_user_backend",
                "django.contrib.auth.backends.ModelBackend",
            )
            .await
            .unwrap();
        session
            .insert(
                "_auth_user_hash",
                &session_auth_hash("md5$salt$ada", &SecretKey::from(SECRET)),
            )
            .await
            .unwrap();
        session.save().await.unwrap();
        format!("sessionid={}", session.key().unwrap().as_str())
    }

    async fn get(&self, uri: &str, cookie: Option<&str>) -> (StatusCode, http::HeaderMap, String) {
        let mut request = Request::builder().uri(uri);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }
}

#[tokio::test]
async fn a_logged_in_user_is_seen_by_every_extractor_of_the_request() {
    let app = app(Unauthenticated::Unauthorized);
    let cookie = app.ada_cookie().await;
    assert_eq!(app.get("/me", Some(&cookie)).await.2, "user 1");
    assert_eq!(app.get("/maybe", Some(&cookie)).await.2, "Some(\"1\") 1");
}

#[tokio::test]
async fn without_a_user_auth_user_answers_401_and_optional_users_are_none() {
    let app = app(Unauthenticated::Unauthorized);
    assert_eq!(app.get("/me", None).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = app.get("/optional", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "None"));
}

#[tokio::test]
async fn without_a_user_the_redirect_carries_djangos_next_parameter() {
    let app = app(Unauthenticated::RedirectToLogin);
    let (status, headers, _) = app.get("/me?tab=orders&page=2", None).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        headers[header::LOCATION],
        "/accounts/login/?next=/me%3Ftab%3Dorders%26page%3D2"
    );
}

#[tokio::test]
async fn a_password_changed_elsewhere_logs_the_session_out_and_deletes_the_cookie() {
    let app = app(Unauthenticated::Unauthorized);
    let cookie = app.ada_cookie().await;
    app.users.insert(
        "ada",
        User {
            id: "1".into(),
            password: "md5$salt$changed".into(),
            is_active: true,
            backend: None,
        },
    );
    let (status, headers, _) = app.get("/me", Some(&cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set_cookie.starts_with("sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"),
        "{set_cookie}"
    );
}
