//! Logs users in and out of a Django site's SQLite database with session-auth, for
//! `fixtures/django/generate_auth.py --check-rust`, which then has Django read the sessions.
//!
//! ```text
//! cargo run -p session-auth --example log_in_for_django -- SITE.sqlite3 MANIFEST.json
//! ```
//!
//! The database must hold Django's `auth_user` (users `ada`, `bob`, `old` with the passwords the
//! fixture worker gives them) and `django_session`. Writes `{"<case>": "<session key>"}`.

use std::sync::Arc;

use session_auth::{Auth, AuthConfig, SqlUserSource, UserModel};
use session_core::{Session, SessionConfig, SessionStore};
use session_db::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(manifest)) = (args.next(), args.next()) else {
        return Err("usage: log_in_for_django SITE.sqlite3 MANIFEST.json".into());
    };
    let url = format!("sqlite://{db}");
    let config = Arc::new(SessionConfig::new("django_tests_secret_key"));
    let store: Arc<dyn SessionStore> = Arc::new(SqliteStore::connect(&url, &config).await?);
    let users = SqlUserSource::connect(&url, &UserModel::django()).await?;
    let auth = Auth::new(Arc::new(users), &AuthConfig::default())?;

    // What a login view does: authenticate, log in, save (the middleware saves).
    let log_in = |username: &'static str, password: &'static str| {
        let (auth, store, config) = (auth.clone(), store.clone(), config.clone());
        async move {
            let session = Session::new(store, config, None);
            session.insert("cart", "from Rust").await?;
            let user = auth
                .authenticate(username, password)
                .await?
                .ok_or(format!("{username}: wrong password"))?;
            auth.login(&session, &user, None).await?;
            session.save().await?;
            let key = session.key().ok_or("saved sessions have a key")?;
            Ok::<_, Box<dyn std::error::Error>>(key.as_str().to_owned())
        }
    };

    let ada = log_in("ada", "ada-password").await?;
    // Its hash was made by Django 4.2 (600,000 iterations): authenticate upgrades it first.
    let old = log_in("old", "old-password").await?;
    let bob = log_in("bob", "bob-password").await?;
    // A later request of bob's logs out.
    let later = Session::new(store.clone(), config.clone(), Some(&bob));
    auth.logout(&later).await?;

    let written = format!(
        "{{\"logged in here\": \"{ada}\", \"logged in here after a hash upgrade\": \"{old}\", \
         \"logged in and out here\": \"{bob}\"}}"
    );
    std::fs::write(manifest, written)?;
    Ok(())
}
