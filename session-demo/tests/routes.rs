//! Every route of the demo, driven in-process (`tower::ServiceExt::oneshot`) like a browser that
//! keeps the session cookie, against the in-memory store and a SQLite file.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use clap::Parser;
use http_body_util::BodyExt;
use session_core::{SessionConfig, SessionKey, SessionStore};
use session_demo::stores::{self, OpenedStore, open_db};
use session_demo::{MAX_BODY_BYTES, Options, app};
use tower::ServiceExt;

const SECRET: &str = "session-demo tests secret";

/// A store for one test, and whatever keeps it alive (the SQLite file's directory).
struct TestStore {
    opened: OpenedStore,
    sqlite_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> TestStore {
    TestStore {
        opened: OpenedStore::memory(),
        sqlite_url: None,
        _dir: None,
    }
}

async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("demo.sqlite3").display()
    );
    let store = open_db(&url, &SessionConfig::new(SECRET)).await.unwrap();
    TestStore {
        opened: OpenedStore::new(Arc::new(store), format!("SQLite database {url}")),
        sqlite_url: Some(url),
        _dir: Some(dir),
    }
}

/// A store opened the way the binary opens it, from command-line options.
async fn opened(args: &[&str], dir: tempfile::TempDir, sqlite_url: Option<String>) -> TestStore {
    let mut options =
        Options::try_parse_from(["session-demo", "--secret-key", SECRET].iter().chain(args))
            .unwrap();
    // Whatever the developer's environment holds, these tests use only what they pass.
    options.redis_url = None;
    let (config, _) = options.session_config().unwrap();
    TestStore {
        opened: stores::open(&options, &config).await.unwrap(),
        sqlite_url,
        _dir: Some(dir),
    }
}

/// The cached-db store over a SQLite file, with the in-process cache.
async fn cached_db() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("cached.sqlite3").display()
    );
    opened(
        &["--store", "cached-db", "--database-url", &url],
        dir,
        Some(url.clone()),
    )
    .await
}

/// The file store in a fresh directory (created by the demo, as the binary does).
async fn files() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions");
    let path = path.to_str().unwrap().to_owned();
    opened(&["--store", "file", "--file-path", &path], dir, None).await
}

/// What a response looked like.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The session cookie's `Set-Cookie` header, if any.
    fn set_cookie(&self) -> Option<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|v| v.starts_with("sessionid="))
    }

    /// The value of the element with `id`, as the page prints it (still escaped).
    fn element(&self, id: &str) -> &str {
        let marker = format!("id=\"{id}\">");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no #{id} in {}", self.body))
            + marker.len();
        let end = start + self.body[start..].find('<').unwrap();
        &self.body[start..end]
    }

    fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("a form with a token") + marker.len();
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }
}

/// A client that keeps the session cookie between requests, as a browser does.
struct Browser {
    app: Router,
    store: Arc<dyn SessionStore>,
    cookie: Option<String>,
}

impl Browser {
    fn new(store: &TestStore) -> Self {
        Browser {
            app: app(store.opened.clone(), SessionConfig::new(SECRET)).unwrap(),
            store: store.opened.store.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Page {
        let request = match &self.cookie {
            Some(value) => request.header(header::COOKIE, format!("sessionid={value}")),
            None => request,
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let page = Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        };
        if let Some(set_cookie) = page.set_cookie() {
            let value = set_cookie["sessionid=".len()..].split(';').next().unwrap();
            self.cookie = if set_cookie.contains("Max-Age=0") {
                None
            } else {
                Some(value.to_owned())
            };
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path), Body::empty()).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, Body::from(body)).await
    }

    /// Visits the home page and returns the form token it offers.
    async fn token(&mut self) -> String {
        self.get("/").await.csrf_token()
    }

    async fn login(&mut self, username: &str, remember: bool) -> Page {
        let token = self.token().await;
        let mut fields = vec![("username", username), ("csrf_token", token.as_str())];
        if remember {
            fields.push(("remember", "1"));
        }
        self.post("/login", &fields).await
    }

    /// The data the store holds under the current cookie (`None`: no live record).
    async fn stored(&self) -> Option<session_core::Dict> {
        let key = SessionKey::new(self.cookie.clone()?).unwrap();
        self.store.load(&key).await.unwrap()
    }
}

/// `application/x-www-form-urlencoded`, encoding every byte but ASCII letters and digits.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn max_age(set_cookie: &str) -> Option<i64> {
    set_cookie
        .split("; ")
        .find_map(|attribute| attribute.strip_prefix("Max-Age="))
        .map(|value| value.parse().unwrap())
}

/// Generates the route tests for one store.
macro_rules! route_tests {
    ($store:ident, $make:expr) => {
        mod $store {
            use super::*;

            #[tokio::test]
            async fn first_visit_sets_an_httponly_lax_cookie_and_counts_one() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let page = browser.get("/").await;
                assert_eq!(page.status, StatusCode::OK);
                assert_eq!(page.element("visits"), "1");
                let cookie = page.set_cookie().unwrap();
                assert!(cookie.contains("; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"), "{cookie}");
                assert_eq!(page.headers[header::VARY], "Cookie");
                assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
                assert!(page.body.contains("Not logged in."));
                let stored = browser.stored().await.unwrap();
                assert_eq!(stored["visits"], 1.into());
            }

            #[tokio::test]
            async fn the_counter_increments_on_each_visit_and_is_per_browser() {
                let store = $make;
                let mut browser = Browser::new(&store);
                for expected in 1..=3 {
                    assert_eq!(browser.get("/").await.element("visits"), expected.to_string());
                }
                let mut other = Browser::new(&store);
                assert_eq!(other.get("/").await.element("visits"), "1");
                assert_eq!(browser.get("/").await.element("visits"), "4");
            }

            #[tokio::test]
            async fn login_cycles_the_key_and_keeps_the_counter() {
                let store = $make;
                let mut browser = Browser::new(&store);
                browser.get("/").await;
                let before = browser.cookie.clone().unwrap();

                let response = browser.login("alice", false).await;
                assert_eq!(response.status, StatusCode::SEE_OTHER);
                assert_eq!(response.headers[header::LOCATION], "/");
                let after = browser.cookie.clone().unwrap();
                assert_ne!(after, before, "logging in must cycle the session key");
                let old = SessionKey::new(before).unwrap();
                assert_eq!(browser.store.load(&old).await.unwrap(), None, "old record deleted");

                let home = browser.get("/").await;
                assert_eq!(home.element("username"), "alice");
                assert_eq!(home.element("visits"), "3", "two visits before, this is the third");
                let stored = browser.stored().await.unwrap();
                assert_eq!(stored["username"], "alice".into());
            }

            #[tokio::test]
            async fn login_replaces_the_form_token() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let before = browser.token().await;
                browser.login("alice", false).await;
                let after = browser.token().await;
                assert_ne!(after, before);
                let stale = browser.post("/logout", &[("csrf_token", &before)]).await;
                assert_eq!(stale.status, StatusCode::FORBIDDEN);
            }

            #[tokio::test]
            async fn logout_flushes_the_session_and_deletes_the_cookie() {
                let store = $make;
                let mut browser = Browser::new(&store);
                browser.login("alice", true).await;
                let key = SessionKey::new(browser.cookie.clone().unwrap()).unwrap();
                let token = browser.token().await;

                let response = browser.post("/logout", &[("csrf_token", &token)]).await;
                assert_eq!(response.status, StatusCode::SEE_OTHER);
                assert_eq!(
                    response.set_cookie().unwrap(),
                    "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
                );
                assert_eq!(browser.cookie, None);
                assert_eq!(browser.store.load(&key).await.unwrap(), None);

                let home = browser.get("/").await;
                assert!(home.body.contains("Not logged in."));
                assert_eq!(home.element("visits"), "1", "a new session starts counting again");
            }

            #[tokio::test]
            async fn remember_me_sets_a_30_day_max_age_and_forgetting_removes_it() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let token = browser.token().await;

                let remembered = browser
                    .post("/remember", &[("remember", "1"), ("csrf_token", &token)])
                    .await;
                assert_eq!(remembered.status, StatusCode::SEE_OTHER);
                let cookie = remembered.set_cookie().unwrap();
                let age = max_age(cookie).unwrap();
                assert!((30 * 86400 - 5..=30 * 86400).contains(&age), "{cookie}");
                assert!(cookie.contains("; expires="), "{cookie}");
                let home = browser.get("/").await;
                assert!(home.element("lifetime").starts_with("This session's cookie is remembered until "));

                let forgotten = browser
                    .post("/remember", &[("remember", "0"), ("csrf_token", &token)])
                    .await;
                let cookie = forgotten.set_cookie().unwrap();
                assert_eq!(max_age(cookie), None, "{cookie}");
                assert!(!cookie.contains("expires="), "{cookie}");
                assert!(browser.get("/").await.body.contains("lasts until the browser closes"));
            }

            #[tokio::test]
            async fn login_without_remember_me_gives_a_browser_session_cookie() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let token = browser.token().await;
                let plain = browser
                    .post("/login", &[("username", "bob"), ("csrf_token", &token)])
                    .await;
                assert_eq!(max_age(plain.set_cookie().unwrap()), None);

                let mut other = Browser::new(&store);
                let remembered = other.login("carol", true).await;
                let age = max_age(remembered.set_cookie().unwrap()).unwrap();
                assert!((30 * 86400 - 5..=30 * 86400).contains(&age));
            }

            #[tokio::test]
            async fn a_hostile_username_is_printed_escaped() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let hostile = "<script>alert('pwned')</script>\"><img src=x onerror=alert(1)>&amp;";
                let response = browser.login(hostile, false).await;
                assert_eq!(response.status, StatusCode::SEE_OTHER);

                let escaped = "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;&quot;&gt;\
                               &lt;img src=x onerror=alert(1)&gt;&amp;amp;";
                let home = browser.get("/").await;
                assert_eq!(home.element("username"), escaped);
                let contents = browser.get("/session").await;
                assert!(contents.body.contains(&escaped.replace("&quot;", "\\&quot;")), "{}", contents.body);
                for page in [&home, &contents] {
                    assert!(!page.body.contains("<script>"));
                    assert!(!page.body.contains("<img"));
                }
                // Stored as typed: escaping is for output only.
                assert_eq!(browser.stored().await.unwrap()["username"], hostile.into());
            }

            #[tokio::test]
            async fn the_session_page_lists_contents_and_expiry_and_changes_nothing() {
                let store = $make;
                let mut browser = Browser::new(&store);
                browser.login("alice", false).await;
                let before = browser.stored().await.unwrap();

                let page = browser.get("/session").await;
                assert_eq!(page.status, StatusCode::OK);
                assert_eq!(page.set_cookie(), None, "reading must not save");
                assert!(page.body.contains("<td><code>visits</code></td><td><code>1</code></td>"), "{}", page.body);
                assert!(page.body.contains("<td><code>username</code></td><td><code>&quot;alice&quot;</code></td>"));
                assert!(page.body.contains("<td><code>_session_expiry</code></td><td><code>0</code></td>"));
                assert_eq!(page.element("browser-close"), "yes");
                assert_eq!(page.element("expiry-age"), "1209600 seconds");
                assert!(page.element("expiry-setting").starts_with("0: the cookie lasts until the browser closes"));
                let key = browser.cookie.clone().unwrap();
                assert_eq!(page.element("key"), format!("{}…", &key[..4]));
                assert!(!page.body.contains(&key), "the full key is a credential");
                assert_eq!(browser.stored().await.unwrap(), before);

                let token = browser.token().await;
                browser.post("/remember", &[("remember", "1"), ("csrf_token", &token)]).await;
                let page = browser.get("/session").await;
                assert_eq!(page.element("browser-close"), "no");
                assert!(page.element("expiry-setting").starts_with("fixed date "));
                let age: i64 = page.element("expiry-age").trim_end_matches(" seconds").parse().unwrap();
                assert!((30 * 86400 - 5..=30 * 86400).contains(&age));
            }

            #[tokio::test]
            async fn a_new_visitor_sees_an_empty_session_page_and_gets_no_cookie() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let page = browser.get("/session").await;
                assert_eq!(page.status, StatusCode::OK);
                assert!(page.body.contains("id=\"empty\""));
                assert_eq!(page.element("expiry-setting"), "none: the site default (SESSION_COOKIE_AGE) applies");
                assert_eq!(page.set_cookie(), None);
            }

            #[tokio::test]
            async fn posts_without_this_sessions_token_are_refused_and_change_nothing() {
                let store = $make;
                let mut browser = Browser::new(&store);
                browser.login("alice", false).await;
                let before = browser.stored().await.unwrap();
                let mut attacker = Browser::new(&store);
                let foreign = attacker.token().await;

                for (path, fields) in [
                    ("/logout", vec![]),
                    ("/logout", vec![("csrf_token", "")]),
                    ("/logout", vec![("csrf_token", foreign.as_str())]),
                    ("/remember", vec![("remember", "1"), ("csrf_token", "0123")]),
                    ("/login", vec![("username", "mallory"), ("csrf_token", foreign.as_str())]),
                ] {
                    let response = browser.post(path, &fields).await;
                    assert_eq!(response.status, StatusCode::FORBIDDEN, "{path} {fields:?}");
                    assert!(response.body.contains("CSRF check failed"));
                    assert_eq!(response.set_cookie(), None);
                }
                assert_eq!(browser.stored().await.unwrap(), before);

                // A forged form arriving without any session cookie (what SameSite=Lax makes of a
                // cross-site POST) has no token to match.
                let mut stranger = Browser::new(&store);
                let response = stranger.post("/logout", &[("csrf_token", &foreign)]).await;
                assert_eq!(response.status, StatusCode::FORBIDDEN);
            }

            #[tokio::test]
            async fn empty_and_overlong_usernames_are_refused() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let long = "x".repeat(151);
                for name in ["", "   ", long.as_str()] {
                    let token = browser.token().await;
                    let response = browser
                        .post("/login", &[("username", name), ("csrf_token", &token)])
                        .await;
                    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{name:?}");
                }
                let token = browser.token().await;
                let longest = "é".repeat(150);
                let response = browser
                    .post("/login", &[("username", &longest), ("csrf_token", &token)])
                    .await;
                assert_eq!(response.status, StatusCode::SEE_OTHER);
            }

            #[tokio::test]
            async fn oversized_form_bodies_are_refused() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let token = browser.token().await;
                let huge = "x".repeat(MAX_BODY_BYTES);
                let response = browser
                    .post("/login", &[("username", &huge), ("csrf_token", &token)])
                    .await;
                assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
            }

            #[tokio::test]
            async fn healthz_answers_without_a_session() {
                let store = $make;
                let mut browser = Browser::new(&store);
                let response = browser.get("/healthz").await;
                assert_eq!((response.status, response.body.as_str()), (StatusCode::OK, "ok"));
                assert_eq!(response.set_cookie(), None);
                assert!(response.headers.get(header::VARY).is_none());
            }
        }
    };
}

route_tests!(memory_store, memory());
route_tests!(sqlite_store, sqlite().await);
route_tests!(cached_db_store, cached_db().await);
route_tests!(file_store, files().await);

#[tokio::test]
async fn sqlite_sessions_survive_a_new_app_on_the_same_file() {
    let store = sqlite().await;
    let mut browser = Browser::new(&store);
    browser.login("alice", false).await;
    assert_eq!(browser.get("/").await.element("visits"), "2");

    // A "restarted" site: a new store connection on the same file.
    let url = store.sqlite_url.as_deref().unwrap();
    let reopened = TestStore {
        opened: OpenedStore::new(
            Arc::new(open_db(url, &SessionConfig::new(SECRET)).await.unwrap()),
            "reopened",
        ),
        sqlite_url: None,
        _dir: None,
    };
    let mut restarted = Browser::new(&reopened);
    restarted.cookie = browser.cookie.clone();
    let home = restarted.get("/").await;
    assert_eq!(home.element("visits"), "3");
    assert_eq!(home.element("username"), "alice");
}

#[tokio::test]
async fn the_signed_cookie_store_runs_the_same_flow() {
    let config = SessionConfig::new(SECRET);
    let store = TestStore {
        opened: OpenedStore::new(Arc::new(session_cookie_store(&config)), "signed cookies"),
        sqlite_url: None,
        _dir: None,
    };
    let mut browser = Browser::new(&store);
    browser.get("/").await;
    let before = browser.cookie.clone().unwrap();
    browser.login("alice", false).await;
    assert_ne!(browser.cookie.clone().unwrap(), before);
    let home = browser.get("/").await;
    assert_eq!(home.element("username"), "alice");
    assert_eq!(home.element("visits"), "3");
    let token = home.csrf_token();
    let response = browser.post("/logout", &[("csrf_token", &token)]).await;
    assert!(response.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(browser.get("/").await.element("visits"), "1");
}

fn session_cookie_store(config: &SessionConfig) -> session_cookie::CookieStore {
    session_cookie::CookieStore::new(config).unwrap()
}

#[tokio::test]
async fn the_cached_db_store_writes_through_to_its_database() {
    let store = cached_db().await;
    let mut browser = Browser::new(&store);
    browser.login("alice", false).await;
    let key = SessionKey::new(browser.cookie.clone().unwrap()).unwrap();
    // A store on the same file, without the cache, sees the row.
    let url = store.sqlite_url.as_deref().unwrap();
    let db = open_db(url, &SessionConfig::new(SECRET)).await.unwrap();
    let row = db.load(&key).await.unwrap().unwrap();
    assert_eq!(row["username"], "alice".into());
    assert!(
        store
            .opened
            .description
            .contains("cached in an in-process cache")
    );
}

#[tokio::test]
async fn the_file_store_directory_is_created_private() {
    let store = files().await;
    let mut browser = Browser::new(&store);
    browser.get("/").await;
    let description = &store.opened.description;
    let dir = description.trim_start_matches("one file per session in ");
    let meta = std::fs::metadata(dir).unwrap();
    assert!(meta.is_dir());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    }
    let cookie = browser.cookie.clone().unwrap();
    assert!(
        std::path::Path::new(dir)
            .join(format!("sessionid{cookie}"))
            .exists()
    );
}

#[tokio::test]
async fn stores_refuse_urls_of_another_database() {
    let (config, _) = Options::try_parse_from(["session-demo", "--secret-key", SECRET])
        .unwrap()
        .session_config()
        .unwrap();
    for (args, message) in [
        (
            vec!["--store", "sqlite", "--database-url", "postgres://u@h/db"],
            "--store sqlite needs a sqlite: URL, but DATABASE_URL / --database-url is not one",
        ),
        (
            vec![
                "--store",
                "postgres",
                "--database-url",
                "sqlite://x.sqlite3",
            ],
            "--store postgres needs a postgres:// URL, but DATABASE_URL / --database-url is not one",
        ),
        (
            vec!["--store", "cached-db", "--database-url", "mysql://u@h/db"],
            "--store cached-db needs a postgres:// or sqlite: URL, but DATABASE_URL / --database-url is not one",
        ),
    ] {
        let options = Options::try_parse_from(["session-demo"].iter().chain(&args)).unwrap();
        let error = stores::open(&options, &config).await.unwrap_err();
        assert_eq!(error.to_string(), message);
    }
    let mut options = Options::try_parse_from(["session-demo", "--store", "postgres"]).unwrap();
    options.database_url = None;
    assert_eq!(
        stores::open(&options, &config)
            .await
            .unwrap_err()
            .to_string(),
        "--store postgres needs DATABASE_URL or --database-url (postgres://user:password@host:5432/db)"
    );
}
