//! A visit counter and a shopping cart on Redis, in Django's cache layout: a Django site with
//! `SESSION_ENGINE = "django.contrib.sessions.backends.cache"` and `RedisCache` on the same
//! server reads and writes these sessions (values are pickled, as Django's cache framework
//! stores them, with the default settings).
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 SECRET_KEY=change-me \
//!     cargo run -p djsession --example axum_redis --features redis,axum
//! curl -c jar -b jar -X POST http://127.0.0.1:3000/cart/7
//! curl -c jar -b jar http://127.0.0.1:3000/
//! ```

use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use djsession::{CacheStore, Session, SessionConfig, SessionLayer};

async fn home(session: Session) -> Result<String, djsession::Error> {
    let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", &visits).await?;
    let cart = session.get::<Vec<u32>>("cart").await?.unwrap_or_default();
    Ok(format!("visit {visits}, cart {cart:?}\n"))
}

async fn add_to_cart(session: Session, Path(item): Path<u32>) -> Result<String, djsession::Error> {
    let mut cart = session.get::<Vec<u32>>("cart").await?.unwrap_or_default();
    cart.push(item);
    session.insert("cart", &cart).await?;
    Ok(format!("cart {cart:?}\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = SessionConfig::from_env()?;
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = CacheStore::connect(&redis_url, &config).await?;
    let app = Router::new()
        .route("/", get(home))
        .route("/cart/{item}", post(add_to_cart))
        .layer(SessionLayer::new(store, &config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
