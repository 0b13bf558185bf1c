//! A small actix-web app with Django's sessions: a visit counter, login (which cycles the session
//! key, as Django's `login()` does against session fixation) and logout (which flushes the
//! session and deletes the cookie).
//!
//! ```text
//! cargo run -p session-actix --example visits
//! curl -i -c jar -b jar http://127.0.0.1:8080/          # visit 1, Set-Cookie: sessionid=...
//! curl -i -c jar -b jar http://127.0.0.1:8080/          # visit 2
//! curl -i -c jar -b jar -X POST http://127.0.0.1:8080/login/ada   # a new session key
//! curl -i -c jar -b jar http://127.0.0.1:8080/whoami    # ada
//! curl -i -c jar -b jar -X POST http://127.0.0.1:8080/logout      # the cookie is deleted
//! ```
//!
//! Sessions live in memory here; any djsession store works the same (`SqliteStore`, `PgStore`,
//! `CacheStore` on Redis, signed cookies...), and with the Django site's `SECRET_KEY` and store the
//! sessions are shared with it. `SESSION_ACTIX_ADDR` changes the address (default
//! `127.0.0.1:8080`). `cargo test -p session-actix --example visits` drives the app headless.

use actix_web::{App, HttpResponse, HttpServer, web};
use session_actix::{Session, SessionError, SessionMiddleware};
use session_core::{MemoryStore, SessionConfig};

/// Counts this visitor's visits.
async fn index(session: Session) -> Result<String, SessionError> {
    let visits: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", &visits).await?;
    Ok(format!("visit {visits}\n"))
}

/// Logs `user` in: a new session key for the same data (Django's `login()` cycles the key so a key
/// planted before login is worthless after it), then the user id.
async fn login(session: Session, user: web::Path<String>) -> Result<HttpResponse, SessionError> {
    session.cycle_key().await?;
    session.insert("user", &user.into_inner()).await?;
    Ok(HttpResponse::Ok().body("logged in\n"))
}

/// Who is logged in, if anyone: reading the session does not save it or set a cookie.
async fn whoami(session: Session) -> Result<String, SessionError> {
    let user: Option<String> = session.get("user").await?;
    Ok(format!("{}\n", user.as_deref().unwrap_or("anonymous")))
}

/// Logs out: the whole session is deleted and the browser told to drop its cookie.
async fn logout(session: Session) -> Result<HttpResponse, SessionError> {
    session.flush().await?;
    Ok(HttpResponse::Ok().body("logged out\n"))
}

/// A page that never touches the session: no store call, no cookie, no `Vary`.
async fn health() -> &'static str {
    "ok\n"
}

/// The app's routes, shared by `main` and the tests.
fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/login/{user}", web::post().to(login))
        .route("/whoami", web::get().to(whoami))
        .route("/logout", web::post().to(logout))
        .route("/health", web::get().to(health));
}

/// The session settings: Django's defaults with this app's secret.
fn session_config() -> SessionConfig {
    let secret = std::env::var("SECRET_KEY")
        .unwrap_or_else(|_| "an example secret: set SECRET_KEY in production".to_owned());
    SessionConfig::new(secret)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = SessionMiddleware::new(MemoryStore::new(), &session_config())?;
    let addr = std::env::var("SESSION_ACTIX_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    println!("listening on http://{addr}");
    HttpServer::new(move || App::new().wrap(sessions.clone()).configure(routes))
        .bind(addr)?
        .run()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use actix_web::dev::ServiceResponse;
    use actix_web::test::{self, TestRequest};

    use super::*;

    /// The `name=value` part of the response's session cookie.
    fn session_cookie<B>(response: &ServiceResponse<B>) -> Option<String> {
        let header = response.headers().get("set-cookie")?.to_str().unwrap();
        Some(header.split(';').next().unwrap().to_owned())
    }

    /// Sends `request`; the session cookie it sets (if any) and the body.
    macro_rules! body {
        ($app:expr, $request:expr) => {{
            let response = test::call_service($app, $request.to_request()).await;
            assert!(response.status().is_success());
            let cookie = session_cookie(&response);
            let body = test::read_body(response).await;
            (cookie, String::from_utf8(body.to_vec()).unwrap())
        }};
    }

    #[actix_web::test]
    async fn visits_are_counted_login_cycles_the_key_and_logout_flushes() {
        let sessions = SessionMiddleware::new(MemoryStore::new(), &session_config()).unwrap();
        let app = test::init_service(App::new().wrap(sessions).configure(routes)).await;

        let (cookie, text) = body!(&app, TestRequest::get().uri("/"));
        assert_eq!(text, "visit 1\n");
        let cookie = cookie.unwrap();
        let with = |request: TestRequest, cookie: &str| {
            request.insert_header(("cookie", cookie.to_owned()))
        };
        let (_, text) = body!(&app, with(TestRequest::get().uri("/"), &cookie));
        assert_eq!(text, "visit 2\n");

        let (none, text) = body!(&app, with(TestRequest::get().uri("/health"), &cookie));
        assert_eq!((none, text.as_str()), (None, "ok\n"));

        let (new, _) = body!(&app, with(TestRequest::post().uri("/login/ada"), &cookie));
        let new = new.unwrap();
        assert_ne!(new, cookie, "login cycles the key");
        let (_, text) = body!(&app, with(TestRequest::get().uri("/whoami"), &new));
        assert_eq!(text, "ada\n");
        let (_, text) = body!(&app, with(TestRequest::get().uri("/"), &new));
        assert_eq!(text, "visit 3\n", "the visits survived the new key");
        let (_, text) = body!(&app, with(TestRequest::get().uri("/whoami"), &cookie));
        assert_eq!(text, "anonymous\n", "the old key is worthless");

        let (deleted, _) = body!(&app, with(TestRequest::post().uri("/logout"), &new));
        assert_eq!(deleted.as_deref(), Some("sessionid=\"\""));
        let (_, text) = body!(&app, with(TestRequest::get().uri("/whoami"), &new));
        assert_eq!(text, "anonymous\n");
    }
}
