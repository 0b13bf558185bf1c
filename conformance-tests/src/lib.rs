//! Django's session behaviours as a test suite that runs against any
//! [`SessionStore`](session_core::SessionStore).
//!
//! Every behaviour of Django's `SessionTestsMixin` is one async function in [`behaviours`], named
//! as Django names the test (without `test_`), plus the properties peers' stores get wrong: atomic
//! must-create under a key collision, expiry right at the boundary, saves racing deletes and
//! expiry, awkward values, and `clear_expired`'s count; and the `merge` and `reject`
//! [concurrency policies](session_core::ConcurrencyPolicy) on stores that compare-and-swap
//! (concurrent saves of disjoint keys both survive, the later value of one key wins, exactly one
//! of two racing `reject` saves succeeds, a flush racing a `merge` save never resurrects, N tabs
//! incrementing N keys lose nothing). A store declares compare-and-swap in
//! [`Capabilities::compare_and_swap`]; the suite checks the store says the same.
//!
//! [`session_conformance!`] expands into one `#[test]` per behaviour inside a module named after
//! your backend, so `cargo test` lists them one by one (`memory::cycle_with_no_session_cache`, ...):
//!
//! ```no_run
//! use session_conformance::session_conformance;
//! use session_core::MemoryStore;
//!
//! // In a test file of your crate (tests/conformance.rs):
//! session_conformance!(memory, async { MemoryStore::new() });
//! ```
//!
//! The factory runs once per behaviour and must return an isolated store (a fresh table, key
//! prefix or directory), because behaviours such as `clear_expired` count records. It returns
//! anything that converts into a [`Fixture`]: a store, or a [`Fixture`] built with its own config
//! and [`Capabilities`], or [`Fixture::skip`] when the service it needs is not configured:
//!
//! ```no_run
//! use session_conformance::{session_conformance, services, Capabilities, Fixture};
//! use session_core::MemoryStore;
//!
//! session_conformance!(my_store, async {
//!     let url = match services::url("MY_STORE_URL") {
//!         Ok(url) => url,
//!         Err(skip) => return skip,
//!     };
//!     # let _ = url;
//!     Fixture::new(MemoryStore::new()).with_capabilities(Capabilities::server_side())
//! });
//! ```
//!
//! A skipped fixture, or a behaviour that does not apply to the store's capabilities, prints why it
//! was skipped; with `SESSION_TEST_REQUIRE_SERVICES=1` a skipped fixture fails instead.

pub mod behaviours;
mod fixture;
pub mod logs;
pub mod memory;
mod runner;
pub mod services;

pub use fixture::{Capabilities, Fixture, Harness};
pub use runner::{Failure, Outcome, Report, run, run_all, run_all_with};

/// The standard configuration the suite runs with: Django's test settings
/// (`SECRET_KEY = "django_tests_secret_key"`) and Django's defaults for everything else.
pub fn config() -> session_core::SessionConfig {
    session_core::SessionConfig::new("django_tests_secret_key")
}

/// Expands into one test per behaviour, in a module named `$backend`.
///
/// `session_conformance!(name, factory)` where `factory` is an expression evaluating to a future
/// whose output converts into a [`Fixture`] (a store, or a [`Fixture`]). It is evaluated afresh for
/// every behaviour.
#[macro_export]
macro_rules! session_conformance {
    ($backend:ident, $factory:expr $(,)?) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::__session_conformance_tests!($factory;
                new_session, get_empty, store, pop, pop_default, pop_default_named_argument,
                pop_no_default_keyerror_raised, setdefault, update, has_key, values, keys, items,
                clear, save, delete, flush, cycle, cycle_with_no_session_cache,
                save_doesnt_clear_data, invalid_key, session_key_empty_string_invalid,
                session_key_too_short_invalid, session_key_valid_string_saved,
                session_key_is_read_only, default_expiry, custom_expiry_seconds,
                custom_expiry_timedelta, custom_expiry_datetime, custom_expiry_reset,
                get_expire_at_browser_close, decode, decode_legacy,
                decode_failure_logged_to_security, decode_serializer_exception,
                default_hashing_algorith_legacy_decode, actual_expiry,
                session_load_does_not_create_record,
                session_save_does_not_resurrect_session_logged_out_in_other_context,
                must_create_is_atomic_under_key_collision,
                expired_record_is_never_returned_at_the_boundary,
                save_racing_delete_never_resurrects, save_after_expiry_never_resurrects,
                awkward_values_round_trip, clear_expired_removes_exactly_the_expired,
                declared_compare_and_swap_is_what_the_store_does, a_stale_version_is_refused,
                is_unchanged_follows_every_write,
                merge_keeps_concurrent_saves_of_disjoint_keys,
                merge_keeps_the_later_saves_value_of_one_key,
                merge_applies_a_removal_of_a_key_the_other_set,
                merge_keeps_an_expiry_set_by_the_other_request,
                reject_lets_exactly_one_of_two_racing_saves_succeed,
                flush_racing_a_merge_save_never_resurrects,
                concurrent_increments_of_different_keys_all_survive
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __session_conformance_tests {
    ($factory:expr; $($behaviour:ident),+ $(,)?) => {
        $(
            #[test]
            fn $behaviour() {
                $crate::run(stringify!($behaviour), || async { ::core::convert::Into::<$crate::Fixture>::into($factory.await) });
            }
        )+
    };
}
