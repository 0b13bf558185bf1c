//! Django's session behaviours (the shared conformance suite) against the signed-cookie store,
//! with its capabilities: behaviours that need server-side records or per-session expiry print
//! why they are skipped or differ.

use session_conformance::{Capabilities, Fixture, session_conformance};
use session_cookie::CookieStore;

session_conformance!(signed_cookies, async {
    match CookieStore::new(&session_conformance::config()) {
        Ok(store) => Fixture::new(store).with_capabilities(Capabilities::signed_cookie()),
        Err(error) => Fixture::skip(format!("the store could not be built: {error}")),
    }
});
