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

/// The store has no record to compare against: it declares no compare-and-swap, and refuses to
/// be built for the `merge` and `reject` policies, naming the setting and the way out.
#[test]
fn merge_and_reject_are_refused_at_construction() {
    use session_core::{ConcurrencyPolicy, Error, SessionConfig, SessionStore};
    for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
        let config = SessionConfig {
            concurrency: policy,
            ..session_conformance::config()
        };
        match CookieStore::new(&config) {
            Err(Error::Config(message)) => {
                assert!(message.contains(policy.as_str()), "{message}");
                assert!(message.contains("last_write_wins"), "{message}");
                let secret = String::from_utf8_lossy(config.secret_key.as_bytes());
                assert!(!message.contains(secret.as_ref()), "{message}");
            }
            other => panic!("{policy}: expected a configuration error, got {other:?}"),
        }
    }
    let store = CookieStore::new(&session_conformance::config()).unwrap();
    assert!(!store.capabilities().compare_and_swap);
}
