//! A visit counter on PostgreSQL, sharing Django's django_session table.
use axum::{Router, routing::get};
use djsession::{PgStore, Session, SessionConfig, SessionLayer};

async fn counter(session: Session) -> Result<String, djsession::Error> {
    let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", &visits).await?;
    Ok(format!("visits: {visits}\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = SessionConfig::from_env()?; // SECRET_KEY and Django's SESSION_* settings
    let store = PgStore::connect(&std::env::var("DATABASE_URL")?, &config).await?;
    store.ensure_schema().await?; // Django's django_session table, if it is not there yet
    let app = Router::new()
        .route("/", get(counter))
        .layer(SessionLayer::new(store, &config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
