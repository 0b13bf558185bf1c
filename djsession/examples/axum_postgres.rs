//! Log in, log out and "remember me" on PostgreSQL, with Django's rules: logging in cycles the
//! session key (no session fixation), logging out flushes the session, and "remember me" chooses
//! between a two-week cookie and one that ends with the browser.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test SECRET_KEY=change-me \
//!     cargo run -p djsession --example axum_postgres --features postgres,axum
//! curl -c jar -b jar -X POST 'http://127.0.0.1:3000/login?user=42&remember=true'
//! curl -c jar -b jar http://127.0.0.1:3000/
//! curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
//! ```

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::routing::{get, post};
use djsession::{Expiry, PgStore, Session, SessionConfig, SessionLayer};

/// Who is logged in, under Django's own session key.
const USER_KEY: &str = "_auth_user_id";

async fn home(session: Session) -> Result<String, djsession::Error> {
    Ok(match session.get::<String>(USER_KEY).await? {
        Some(user) => format!("logged in as user {user}\n"),
        None => "anonymous\n".to_owned(),
    })
}

async fn login(
    session: Session,
    Query(form): Query<HashMap<String, String>>,
) -> Result<String, djsession::Error> {
    let Some(user) = form.get("user") else {
        return Ok("say ?user=ID\n".to_owned());
    };
    // A new key for the logged-in session, keeping the data: Django's login() does the same.
    session.cycle_key().await?;
    session.insert(USER_KEY, user).await?;
    let remember = form.get("remember").is_some_and(|v| v == "true");
    session
        .set_expiry(if remember {
            Expiry::Default
        } else {
            Expiry::BrowserClose
        })
        .await?;
    Ok(format!("welcome, user {user}\n"))
}

async fn logout(session: Session) -> Result<&'static str, djsession::Error> {
    session.flush().await?; // data gone, key gone, cookie deleted
    Ok("bye\n")
}

async fn contents(session: Session) -> Result<String, djsession::Error> {
    let keys = session.keys().await?;
    Ok(format!("session keys: {}\n", keys.join(", ")))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = SessionConfig::from_env()?;
    let store = PgStore::connect(&std::env::var("DATABASE_URL")?, &config).await?;
    store.ensure_schema().await?;
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/contents", get(contents))
        .layer(SessionLayer::new(store, &config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
