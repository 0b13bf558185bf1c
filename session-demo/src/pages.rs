//! The routes and their pages.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use session_core::expiry::isoformat;
use session_core::serializer::json;
use session_core::{Expiry, Value};
use session_middleware::Session;
use time::{Duration, OffsetDateTime};

use crate::csrf::{self, CSRF_FIELD};
use crate::html::{escape, page};

/// The session entry holding the visit counter.
pub const VISITS_KEY: &str = "visits";
/// The session entry holding the logged-in username.
pub const USERNAME_KEY: &str = "username";
/// How long "remember me" keeps a session: a fixed date this far from the moment it is set.
pub const REMEMBER_FOR: Duration = Duration::days(30);
/// The longest username accepted (Django's `User.username` max_length).
pub const MAX_USERNAME_CHARS: usize = 150;

/// What every page needs to know about the site.
#[derive(Debug)]
pub struct Site {
    /// How the store is described on the pages.
    pub store_description: String,
}

/// `GET /`: counts the visit and offers log in / log out / remember me.
pub async fn home(State(site): State<Arc<Site>>, session: Session) -> Result<Response, PageError> {
    let visits = session
        .get::<u64>(VISITS_KEY)
        .await?
        .unwrap_or(0)
        .saturating_add(1);
    session.insert(VISITS_KEY, &visits).await?;
    let token = csrf::token(&session).await?;
    let username = session.get::<String>(USERNAME_KEY).await?;

    let mut body = String::from("<h1>djsession demo</h1>\n");
    let _ = writeln!(
        body,
        "<p>Visits in this session: <strong id=\"visits\">{visits}</strong> \
         (reload to count; the counter survives logging in, and a restart with a persistent store).</p>"
    );
    match &username {
        Some(name) => {
            let _ = writeln!(
                body,
                "<p id=\"user\">Logged in as <strong id=\"username\">{}</strong>.</p>\n\
                 <form method=\"post\" action=\"/logout\">{}\
                 <button type=\"submit\" id=\"logout\">Log out</button> \
                 <span class=\"note\">(flushes the session: data deleted, cookie deleted)</span></form>",
                escape(name),
                hidden_token(&token),
            );
        }
        None => {
            let _ = writeln!(
                body,
                "<p id=\"user\">Not logged in.</p>\n\
                 <form method=\"post\" action=\"/login\">{}\
                 <label>Username <input name=\"username\" id=\"username-input\" required \
                 maxlength=\"{MAX_USERNAME_CHARS}\" autocomplete=\"username\"></label>\n\
                 <label><input type=\"checkbox\" name=\"remember\" value=\"1\" id=\"remember-input\"> \
                 Remember me for 30 days</label>\n\
                 <button type=\"submit\" id=\"login\">Log in</button></form>\n\
                 <p class=\"note\">Any username works: there are no accounts or passwords in this \
                 demo. Logging in cycles the session key (against session fixation) and keeps \
                 the data.</p>",
                hidden_token(&token),
            );
        }
    }
    let expiry = session.expiry().await?;
    let remembered = is_remembered(expiry);
    let (value, label) = if remembered {
        ("0", "Forget me when the browser closes")
    } else {
        ("1", "Remember me for 30 days")
    };
    let _ = writeln!(
        body,
        "<p id=\"lifetime\">This session's cookie {}.</p>\n\
         <form method=\"post\" action=\"/remember\">{}\
         <input type=\"hidden\" name=\"remember\" value=\"{value}\">\
         <button type=\"submit\" id=\"remember-toggle\">{label}</button> \
         <span class=\"note\">(<code>set_expiry</code>)</span></form>",
        escape(&lifetime(&session, expiry)),
        hidden_token(&token),
    );
    body.push_str(&footer(&site));
    Ok(page("Home", &body))
}

/// `GET /session`: what the session holds and when it expires. Reading it changes nothing.
pub async fn contents(
    State(site): State<Arc<Site>>,
    session: Session,
) -> Result<Response, PageError> {
    let data = session.data().await?;
    let mut body = String::from("<h1>Session contents</h1>\n");
    match session.key() {
        Some(key) => {
            // The key is a credential: show enough to see it change on login, not enough to use.
            let _ = writeln!(
                body,
                "<p>Session key: <code id=\"key\">{}</code> ({} characters; the cookie is \
                 HttpOnly, so page scripts cannot read it).</p>",
                escape(&key.redacted()),
                key.as_str().chars().count(),
            );
        }
        None => body.push_str(
            "<p id=\"key\">No session yet: nothing has been saved for this browser.</p>\n",
        ),
    }
    if data.is_empty() {
        body.push_str("<p id=\"empty\">The session is empty.</p>\n");
    } else {
        body.push_str("<table id=\"contents\">\n<tr><th>key</th><th>value (JSON)</th></tr>\n");
        for (key, value) in data.iter() {
            let _ = writeln!(
                body,
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(key),
                escape(&render_value(value)),
            );
        }
        body.push_str("</table>\n");
    }
    // One reading of the setting and of the clock, so the age and the date agree.
    let expiry = session.expiry().await?;
    let now = OffsetDateTime::now_utc();
    let age = session.expiry_age_with(now, expiry);
    let date = session.expiry_date_with(now, expiry);
    let at_close = expiry.at_browser_close(session.config().expire_at_browser_close);
    let _ = writeln!(
        body,
        "<h2>Expiry</h2>\n<table id=\"expiry\">\n\
         <tr><th>set_expiry</th><td id=\"expiry-setting\">{}</td></tr>\n\
         <tr><th>get_expiry_age()</th><td id=\"expiry-age\">{age} seconds</td></tr>\n\
         <tr><th>get_expiry_date()</th><td id=\"expiry-date\">{}</td></tr>\n\
         <tr><th>get_expire_at_browser_close()</th><td id=\"browser-close\">{}</td></tr>\n\
         </table>",
        escape(&describe_expiry(expiry)),
        escape(&isoformat(date)),
        if at_close { "yes" } else { "no" },
    );
    body.push_str(&footer(&site));
    Ok(page("Session contents", &body))
}

/// The fields of the login form. Every field defaults to empty, so a form without a token is a
/// CSRF refusal rather than a parse error.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    /// Any name; no password.
    pub username: String,
    /// `"1"` to remember the session for 30 days; otherwise it ends with the browser.
    pub remember: String,
    /// The CSRF token.
    pub csrf_token: String,
}

/// `POST /login`: cycles the key (the data moves to a new key, the old record is deleted), then
/// records the user and a fresh CSRF token, and sets the cookie's lifetime.
pub async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Response, PageError> {
    check_token(&session, &form.csrf_token).await?;
    let username = form.username.trim();
    if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS {
        return Err(PageError::BadUsername);
    }
    session.cycle_key().await?;
    session.insert(USERNAME_KEY, username).await?;
    csrf::rotate(&session).await?;
    set_remembered(&session, form.remember == "1").await?;
    Ok(Redirect::to("/").into_response())
}

/// The fields of the other forms.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    /// `"1"` or `"0"` for `/remember`; unused by `/logout`.
    pub remember: String,
    /// The CSRF token.
    pub csrf_token: String,
}

/// `POST /logout`: flushes the session; the middleware deletes the cookie.
pub async fn logout(session: Session, Form(form): Form<TokenForm>) -> Result<Response, PageError> {
    check_token(&session, &form.csrf_token).await?;
    session.flush().await?;
    Ok(Redirect::to("/").into_response())
}

/// `POST /remember`: `remember=1` keeps the session 30 days (a fixed date), anything else makes
/// the cookie last until the browser closes.
pub async fn remember(
    session: Session,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    check_token(&session, &form.csrf_token).await?;
    set_remembered(&session, form.remember == "1").await?;
    Ok(Redirect::to("/").into_response())
}

/// `GET /healthz`: "ok", without touching any session (for scripts waiting for the server).
pub async fn healthz() -> &'static str {
    "ok"
}

async fn check_token(session: &Session, submitted: &str) -> Result<(), PageError> {
    if csrf::verify(session, submitted).await? {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}

async fn set_remembered(session: &Session, remember: bool) -> Result<(), session_core::Error> {
    session
        .set_expiry(if remember {
            Expiry::In(REMEMBER_FOR)
        } else {
            Expiry::BrowserClose
        })
        .await
}

fn is_remembered(expiry: Expiry) -> bool {
    matches!(expiry, Expiry::At(_) | Expiry::In(_))
}

/// The cookie's lifetime in words, for the session's `expiry` setting.
fn lifetime(session: &Session, expiry: Expiry) -> String {
    if expiry.at_browser_close(session.config().expire_at_browser_close) {
        return "lasts until the browser closes".to_owned();
    }
    let date = isoformat(session.expiry_date_with(OffsetDateTime::now_utc(), expiry));
    if is_remembered(expiry) {
        format!("is remembered until {date}")
    } else {
        format!("expires {date} (the site default, SESSION_COOKIE_AGE)")
    }
}

fn describe_expiry(expiry: Expiry) -> String {
    match expiry {
        Expiry::Default => "none: the site default (SESSION_COOKIE_AGE) applies".to_owned(),
        Expiry::BrowserClose => "0: the cookie lasts until the browser closes".to_owned(),
        Expiry::Seconds(seconds) => format!("{seconds} seconds after each save"),
        Expiry::At(at) => format!("fixed date {}", isoformat(at)),
        Expiry::In(duration) => {
            format!("{} seconds from when it was set", duration.whole_seconds())
        }
    }
}

fn render_value(value: &Value) -> String {
    json::to_string(value).unwrap_or_else(|error| format!("(not representable as JSON: {error})"))
}

fn hidden_token(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
        escape(token)
    )
}

fn footer(site: &Site) -> String {
    format!(
        "<hr>\n<p class=\"note\">Sessions are stored in: {}. Forms are protected against \
         cross-site requests by the SameSite=Lax session cookie and a per-session token.</p>",
        escape(&site.store_description)
    )
}

/// Why a page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The form's CSRF token is missing or wrong.
    #[error("CSRF check failed")]
    Csrf,
    /// The username is empty or too long.
    #[error("bad username")]
    BadUsername,
    /// The session store failed.
    #[error(transparent)]
    Session(#[from] session_core::Error),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "CSRF check failed: the form did not carry this session's token. Go back, \
                 reload the page and submit the form again.",
            ),
            PageError::BadUsername => (
                StatusCode::BAD_REQUEST,
                "Bad username",
                "Enter a username of 1 to 150 characters (any name: there are no passwords).",
            ),
            PageError::Session(error) => {
                tracing::error!(%error, "session store failure while rendering a page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Server error",
                    "The session store failed; the server log has the details.",
                )
            }
        };
        let mut response = page(
            title,
            &format!(
                "<h1>{}</h1>\n<p id=\"error\">{}</p>\n<p><a href=\"/\">Back to the start</a></p>",
                escape(title),
                escape(message)
            ),
        );
        *response.status_mut() = status;
        response
    }
}
