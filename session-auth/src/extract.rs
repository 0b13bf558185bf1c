//! axum extractors for the logged-in user (feature `axum`).
//!
//! Both need the session layer (`session_middleware::SessionLayer`) and the [`Auth`] as a request
//! extension (`.layer(axum::Extension(auth))`). The user is looked up once per request, through
//! [`Auth::get_user`] (so a session whose hash no longer verifies is flushed, as Django does), and
//! shared by every extractor of that request.

use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use crate::{Auth, AuthError, AuthenticatedUser, Unauthenticated};

/// The verified user of the request; without one the request is answered as
/// [`AuthConfig::unauthenticated`](crate::AuthConfig::unauthenticated) says (401, or a redirect
/// to the login page with `next`), like Django's `login_required`.
#[derive(Debug, Clone)]
pub struct AuthUser(pub AuthenticatedUser);

/// The verified user of the request, if any (Django's `request.user`, where `None` is
/// `AnonymousUser`).
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<AuthenticatedUser>);

/// Why [`AuthUser`] or [`MaybeUser`] did not produce a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthRejection {
    /// Nobody is logged in: 401.
    #[error("authentication required")]
    Unauthorized,
    /// Nobody is logged in: a 302 to this login URL.
    #[error("authentication required; redirecting to {location}")]
    RedirectToLogin {
        /// The `Location`.
        location: String,
    },
    /// No [`Auth`] extension: a server misconfiguration (500).
    #[error("no Auth in the request: add `.layer(axum::Extension(auth))` to the router")]
    MissingAuth,
    /// No session: a server misconfiguration (500).
    #[error(
        "no session in the request: add the SessionLayer to the router (outside the Auth extension)"
    )]
    MissingSession,
    /// Reading the user failed (store or user database down): 500.
    #[error(transparent)]
    Failed(#[from] AuthError),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "Authentication required.").into_response()
            }
            AuthRejection::RedirectToLogin { location } => {
                match HeaderValue::from_str(&location) {
                    Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
                    // Every character of the location is percent-encoded ASCII or comes from the
                    // configured login URL; an unusable login URL is a configuration error.
                    Err(_) => {
                        tracing::error!("the configured login URL is not a valid header value");
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                }
            }
            other => {
                tracing::error!(error = %other, "cannot determine the request's user");
                (StatusCode::INTERNAL_SERVER_ERROR, "Server Error (500)").into_response()
            }
        }
    }
}

/// The per-request result, so several extractors cost one lookup.
#[derive(Clone)]
struct Resolved(Option<AuthenticatedUser>);

async fn resolve(parts: &mut Parts) -> Result<Option<AuthenticatedUser>, AuthRejection> {
    if let Some(Resolved(user)) = parts.extensions.get::<Resolved>() {
        return Ok(user.clone());
    }
    let auth = parts
        .extensions
        .get::<Auth>()
        .cloned()
        .ok_or(AuthRejection::MissingAuth)?;
    let session = parts
        .extensions
        .get::<session_core::Session>()
        .cloned()
        .ok_or(AuthRejection::MissingSession)?;
    let user = auth.get_user(&session).await?;
    parts.extensions.insert(Resolved(user.clone()));
    Ok(user)
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        resolve(parts).await.map(MaybeUser)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = resolve(parts).await? {
            return Ok(AuthUser(user));
        }
        let config = parts
            .extensions
            .get::<Auth>()
            .map(|auth| auth.config().clone())
            .ok_or(AuthRejection::MissingAuth)?;
        match config.unauthenticated {
            Unauthenticated::Unauthorized => Err(AuthRejection::Unauthorized),
            Unauthenticated::RedirectToLogin => {
                // Django's get_full_path(): the path and query the client asked for (before any
                // router nesting stripped a prefix).
                let uri = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or(&parts.uri, |original| &original.0);
                let full_path = uri.path_and_query().map_or("/", |pq| pq.as_str());
                Err(AuthRejection::RedirectToLogin {
                    location: redirect_to_login(
                        full_path,
                        &config.login_url,
                        config.redirect_field_name.as_deref(),
                    ),
                })
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(resolve(parts).await?.map(AuthUser))
    }
}

/// Django's `redirect_to_login(next, login_url, redirect_field_name)`: `login_url` with
/// `redirect_field_name=<next>` set in its query string (replacing any value there), every query
/// parameter re-encoded as Django's `QueryDict.urlencode(safe="/")` does.
///
/// ```
/// use session_auth::extract::redirect_to_login;
///
/// assert_eq!(
///     redirect_to_login("/api/orders?page=2", "/accounts/login/", Some("next")),
///     "/accounts/login/?next=/api/orders%3Fpage%3D2"
/// );
/// assert_eq!(
///     redirect_to_login("/x", "/login/?lang=fr&next=/old", Some("next")),
///     "/login/?lang=fr&next=/x"
/// );
/// assert_eq!(redirect_to_login("/x", "/login/", None), "/login/");
/// ```
pub fn redirect_to_login(next: &str, login_url: &str, redirect_field_name: Option<&str>) -> String {
    let Some(field) = redirect_field_name else {
        return login_url.to_owned();
    };
    let (before_fragment, fragment) = match login_url.split_once('#') {
        Some((url, fragment)) => (url, Some(fragment)),
        None => (login_url, None),
    };
    let (base, query) = before_fragment
        .split_once('?')
        .map_or((before_fragment, ""), |(base, query)| (base, query));
    // QueryDict(query, mutable=True); querydict[field] = next.
    let mut pairs: Vec<(String, String)> = query
        .split(['&', ';'])
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .collect();
    match pairs.iter().position(|(key, _)| key == field) {
        Some(first) => {
            pairs[first].1 = next.to_owned();
            let mut index = 0;
            pairs.retain(|(key, _)| {
                let keep = key != field || index == first;
                index += 1;
                keep
            });
        }
        None => pairs.push((field.to_owned(), next.to_owned())),
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{}={}", quote(key), quote(value)))
        .collect();
    let mut url = format!("{base}?{}", query.join("&"));
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

/// Python's `urllib.parse.quote(text, safe="/")`.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Form decoding as `parse_qsl` does it: `+` is a space, `%XX` a byte, invalid escapes kept,
/// invalid UTF-8 replaced.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_quoted_as_django_quotes_it() {
        assert_eq!(
            redirect_to_login("/a b/ü?x=1&y=2", "/accounts/login/", Some("next")),
            "/accounts/login/?next=/a%20b/%C3%BC%3Fx%3D1%26y%3D2"
        );
        assert_eq!(
            redirect_to_login(
                "/p",
                "https://sso.example.com/login?a=1+2",
                Some("continue")
            ),
            "https://sso.example.com/login?a=1%202&continue=/p"
        );
    }
}
