//! One login for a Django site and a Rust service: Django keeps serving `/admin` and its pages,
//! this service serves `/api`, and both read and write the same sessions.
//!
//! # The settings to copy
//!
//! Django's `settings.py` (what matters for sessions; the other values are Django's defaults):
//!
//! ```python
//! SECRET_KEY = os.environ["SECRET_KEY"]                # the same secret on both sides
//! SECRET_KEY_FALLBACKS = []                            # old secrets, while rotating
//! SESSION_ENGINE = "django.contrib.sessions.backends.db"
//! SESSION_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
//! SESSION_COOKIE_NAME = "sessionid"
//! SESSION_COOKIE_AGE = 1209600
//! SESSION_COOKIE_PATH = "/"                            # both apps under one site
//! SESSION_COOKIE_DOMAIN = None                         # or ".example.com" across subdomains
//! USE_TZ = True                                        # expire_date in UTC, as we write it
//! DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", ...}}
//! ```
//!
//! This service's environment (read by `SessionConfig::from_env`, Django's names):
//!
//! ```sh
//! SECRET_KEY=...same as Django...  SECRET_KEY_FALLBACKS=...comma-separated...
//! SESSION_COOKIE_NAME=sessionid  SESSION_COOKIE_AGE=1209600  SESSION_COOKIE_DOMAIN=None
//! SESSION_SERIALIZER=django.contrib.sessions.serializers.JSONSerializer
//! DATABASE_URL=postgres://...the Django database...
//! ```
//!
//! Behind one reverse proxy (`/admin`, `/accounts` to Django; `/api` to this service), a user
//! who logs in on Django's login page is logged in here too, and the reverse. For the cache
//! engine, point both at the same Redis (`CacheStore::connect`, Django's `RedisCache`): the
//! defaults already agree on the key layout and the pickled values.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test SECRET_KEY=change-me \
//!     cargo run -p djsession --example sharing_with_django --features postgres,axum
//! ```

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use djsession::{PgStore, Session, SessionConfig, SessionLayer};

/// The keys `django.contrib.auth.login` writes.
const USER_ID: &str = "_auth_user_id";
const BACKEND: &str = "_auth_user_backend";

/// `/api/me`: who Django says is logged in. (Trust `_auth_user_id` only after checking
/// `_auth_user_hash` against the user's password hash, as Django's `get_user` does: the
/// `session-auth` crate does that check.)
async fn me(session: Session) -> Result<(StatusCode, String), djsession::Error> {
    let user = session.get::<String>(USER_ID).await?;
    let backend = session.get::<String>(BACKEND).await?;
    Ok(match (user, backend) {
        (Some(user), Some(backend)) => (
            StatusCode::OK,
            format!("{{\"user_id\":\"{user}\",\"backend\":\"{backend}\"}}\n"),
        ),
        _ => (StatusCode::UNAUTHORIZED, "not logged in\n".to_owned()),
    })
}

/// `/api/visits`: a value both sides see, kept in the shared session.
async fn visits(session: Session) -> Result<String, djsession::Error> {
    let visits = session.get::<u64>("api_visits").await?.unwrap_or(0) + 1;
    session.insert("api_visits", &visits).await?;
    Ok(format!("{visits}\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = SessionConfig::from_env()?;
    // Django's own table: no ensure_schema here, `manage.py migrate` made it.
    let store = PgStore::connect(&std::env::var("DATABASE_URL")?, &config).await?;
    store.check_schema().await?;
    let app = Router::new()
        .route("/api/me", get(me))
        .route("/api/visits", get(visits))
        .layer(SessionLayer::new(store, &config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
