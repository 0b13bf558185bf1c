//! The behaviours, one async function each, named after Django's `SessionTestsMixin` tests.
//!
//! Each returns `Ok(Outcome)` or the first [`Failure`]. Where Rust's types make a Django failure
//! impossible (a `KeyError`, assigning a read-only attribute), the behaviour asserts the nearest
//! real property instead.

use std::time::Duration as StdDuration;

use futures::future::BoxFuture;
use session_core::codec::{CORRUPTED_MESSAGE, SUSPICIOUS_SESSION_TARGET};
use session_core::value::Int;
use session_core::{
    Algorithm, ClearExpired, ConcurrencyPolicy, Dict, Error, Expiry, SaveMode, Session,
    SessionConfig, SessionKey, SessionRecord, SharedRecord, Value,
};
use session_signing::TimestampSigner;
use time::{Duration, OffsetDateTime};

use crate::fixture::Harness;
use crate::logs;
use crate::runner::{Failure, Outcome};

/// The result of one behaviour.
pub type BehaviourResult = Result<Outcome, Failure>;

/// One behaviour, as the runner calls it.
pub type Behaviour = fn(Harness) -> BoxFuture<'static, BehaviourResult>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Failure::new(format!($($msg)+)));
        }
    };
}

macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {
        // `match` keeps temporaries in the operands alive for the comparison.
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return Err(Failure::new(format!(
                        "expected {} == {}\n  left: {:?}\n right: {:?}",
                        stringify!($left),
                        stringify!($right),
                        left,
                        right
                    )));
                }
            }
        }
    };
}

macro_rules! registry {
    ($($name:ident),+ $(,)?) => {
        /// Every behaviour, by name, in suite order.
        pub const ALL: &[(&str, Behaviour)] = &[
            $((stringify!($name), |h| Box::pin($name(h)))),+
        ];
    };
}

registry!(
    new_session,
    get_empty,
    store,
    pop,
    pop_default,
    pop_default_named_argument,
    pop_no_default_keyerror_raised,
    setdefault,
    update,
    has_key,
    values,
    keys,
    items,
    clear,
    save,
    delete,
    flush,
    cycle,
    cycle_with_no_session_cache,
    save_doesnt_clear_data,
    invalid_key,
    session_key_empty_string_invalid,
    session_key_too_short_invalid,
    session_key_valid_string_saved,
    session_key_is_read_only,
    default_expiry,
    custom_expiry_seconds,
    custom_expiry_timedelta,
    custom_expiry_datetime,
    custom_expiry_reset,
    get_expire_at_browser_close,
    decode,
    decode_legacy,
    decode_failure_logged_to_security,
    decode_serializer_exception,
    default_hashing_algorith_legacy_decode,
    actual_expiry,
    session_load_does_not_create_record,
    session_save_does_not_resurrect_session_logged_out_in_other_context,
    must_create_is_atomic_under_key_collision,
    expired_record_is_never_returned_at_the_boundary,
    save_racing_delete_never_resurrects,
    save_after_expiry_never_resurrects,
    awkward_values_round_trip,
    clear_expired_removes_exactly_the_expired,
    declared_compare_and_swap_is_what_the_store_does,
    a_stale_version_is_refused,
    is_unchanged_follows_every_write,
    merge_keeps_concurrent_saves_of_disjoint_keys,
    merge_keeps_the_later_saves_value_of_one_key,
    merge_applies_a_removal_of_a_key_the_other_set,
    merge_keeps_an_expiry_set_by_the_other_request,
    reject_lets_exactly_one_of_two_racing_saves_succeed,
    flush_racing_a_merge_save_never_resurrects,
    concurrent_increments_of_different_keys_all_survive,
);

fn flags(session: &session_core::Session) -> (bool, bool) {
    (session.accessed(), session.modified())
}

fn no_server_records(h: &Harness) -> Option<Outcome> {
    (!h.capabilities().server_side_records).then(|| {
        Outcome::Skipped(
            "the store keeps no server-side records (the data lives in the client's cookie)"
                .to_owned(),
        )
    })
}

/// A fresh session is neither accessed nor modified.
pub async fn new_session(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    check_eq!(flags(&s), (false, false));
    Ok(Outcome::Passed)
}

/// Getting a missing key gives nothing.
pub async fn get_empty(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    check_eq!(s.get_value("cat").await?, None);
    Ok(Outcome::Passed)
}

/// Storing a value sets `modified`, and popping returns it.
pub async fn store(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("cat", "dog").await?;
    check!(s.modified(), "insert must set modified");
    check_eq!(s.pop::<String>("cat").await?, Some("dog".to_owned()));
    Ok(Outcome::Passed)
}

/// Popping an existing key returns it, removes it, and sets both flags.
pub async fn pop(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("some key", "exists").await?;
    // Django's test resets the flags on the wrong object; we reset them for real.
    s.set_accessed(false);
    s.set_modified(false);
    check_eq!(
        s.pop::<String>("some key").await?,
        Some("exists".to_owned())
    );
    check_eq!(flags(&s), (true, true));
    check_eq!(s.get_value("some key").await?, None);
    Ok(Outcome::Passed)
}

/// Popping a missing key with a default returns the default and does not set `modified`.
pub async fn pop_default(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    check_eq!(
        s.pop_or("some key", "does not exist".to_owned()).await?,
        "does not exist"
    );
    check_eq!(flags(&s), (true, false));
    Ok(Outcome::Passed)
}

/// Django passes the default by keyword; the nearest property here is that `pop_or` with a default
/// of another type than stored values leaves the other data and `modified` alone.
pub async fn pop_default_named_argument(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("other", &1).await?;
    s.set_modified(false);
    check_eq!(s.pop_or("some key", 7u8).await?, 7);
    check_eq!(flags(&s), (true, false));
    check_eq!(s.keys().await?, vec!["other".to_owned()]);
    Ok(Outcome::Passed)
}

/// Django raises `KeyError`; here popping or removing a missing key answers `None` and changes
/// nothing.
pub async fn pop_no_default_keyerror_raised(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    check_eq!(s.pop::<Value>("some key").await?, None);
    check_eq!(s.remove("some key").await?, None);
    check_eq!(flags(&s), (true, false));
    Ok(Outcome::Passed)
}

/// `setdefault` stores only when absent and returns the stored value.
pub async fn setdefault(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    check_eq!(s.setdefault("foo", "bar".to_owned()).await?, "bar");
    check_eq!(s.setdefault("foo", "baz".to_owned()).await?, "bar");
    check_eq!(flags(&s), (true, true));
    Ok(Outcome::Passed)
}

/// `update` sets both flags (even with nothing to update) and stores the values.
pub async fn update(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.update([("update key", 1i64)]).await?;
    check_eq!(flags(&s), (true, true));
    check_eq!(s.get::<i64>("update key").await?, Some(1));
    s.set_modified(false);
    s.update(Vec::<(String, Value)>::new()).await?;
    check!(
        s.modified(),
        "update with no entries still sets modified, as in Django"
    );
    Ok(Outcome::Passed)
}

/// Membership tests access but do not modify.
pub async fn has_key(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("some key", &1).await?;
    s.set_accessed(false);
    s.set_modified(false);
    check!(s.contains_key("some key").await?, "key should be present");
    check_eq!(flags(&s), (true, false));
    Ok(Outcome::Passed)
}

/// `values` accesses but does not modify.
pub async fn values(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    check_eq!(s.values().await?, Vec::<Value>::new());
    check!(s.accessed(), "values() must set accessed");
    s.insert("some key", &1).await?;
    s.set_accessed(false);
    s.set_modified(false);
    check_eq!(s.values().await?, vec![Value::from(1i64)]);
    check_eq!(flags(&s), (true, false));
    Ok(Outcome::Passed)
}

/// `keys` accesses but does not modify.
pub async fn keys(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("x", &1).await?;
    s.set_accessed(false);
    s.set_modified(false);
    check_eq!(s.keys().await?, vec!["x".to_owned()]);
    check_eq!(flags(&s), (true, false));
    Ok(Outcome::Passed)
}

/// `items` accesses but does not modify.
pub async fn items(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("x", &1).await?;
    s.set_accessed(false);
    s.set_modified(false);
    check_eq!(s.items().await?, vec![("x".to_owned(), Value::from(1i64))]);
    check_eq!(flags(&s), (true, false));
    Ok(Outcome::Passed)
}

/// `clear` empties the data and sets both flags.
pub async fn clear(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("x", &1).await?;
    s.set_accessed(false);
    s.set_modified(false);
    check_eq!(s.items().await?, vec![("x".to_owned(), Value::from(1i64))]);
    s.clear();
    check_eq!(s.items().await?, Vec::new());
    check_eq!(flags(&s), (true, true));
    Ok(Outcome::Passed)
}

/// After saving, the record exists.
pub async fn save(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h) {
        return Ok(skip);
    }
    let s = h.session(None);
    s.save().await?;
    let key = saved_key(&s)?;
    check!(h.store().exists(&key).await?, "saved session must exist");
    Ok(Outcome::Passed)
}

fn saved_key(s: &session_core::Session) -> Result<SessionKey, Failure> {
    s.key()
        .ok_or_else(|| Failure::new("a saved session must have a key"))
}

/// Deleting a saved session's key removes the record.
pub async fn delete(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.save().await?;
    let key = saved_key(&s)?;
    h.store().delete(&key).await?;
    check!(
        !h.store().exists(&key).await?,
        "deleted session must not exist"
    );
    // A signed cookie carries its data: deleting cannot make an issued token unreadable.
    if h.capabilities().server_side_records {
        check_eq!(h.store().load(&key).await?, None);
    }
    Ok(Outcome::Passed)
}

/// `flush` deletes the record and forgets the key.
pub async fn flush(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("foo", "bar").await?;
    s.save().await?;
    let prev = saved_key(&s)?;
    s.flush().await?;
    check!(
        !h.store().exists(&prev).await?,
        "flushed session must not exist"
    );
    if h.capabilities().server_side_records {
        check_eq!(h.store().load(&prev).await?.filter(|d| !d.is_empty()), None);
    }
    check_eq!(s.key(), None);
    check_eq!(flags(&s), (true, true));
    check!(s.is_empty(), "a flushed session is empty");
    Ok(Outcome::Passed)
}

/// `cycle_key` moves the data to a new key, in order, and deletes the old record.
pub async fn cycle(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h) {
        return Ok(skip);
    }
    let s = h.session(None);
    // Not in alphabetical order, so a store that sorts keys is caught.
    s.insert("b", "d").await?;
    s.insert("a", "c").await?;
    s.save().await?;
    let prev_key = saved_key(&s)?;
    let prev_items = s.items().await?;
    s.cycle_key().await?;
    check!(!h.store().exists(&prev_key).await?, "old key must be gone");
    check!(s.key().as_ref() != Some(&prev_key), "key must change");
    check_eq!(s.items().await?, prev_items);
    let reloaded = h.session(Some(saved_key(&s)?.as_str()));
    check_eq!(reloaded.items().await?, prev_items);
    Ok(Outcome::Passed)
}

/// `cycle_key` on a session not yet loaded in this request keeps the stored data.
pub async fn cycle_with_no_session_cache(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("a", "c").await?;
    s.insert("b", "d").await?;
    s.save().await?;
    let key = saved_key(&s)?;
    let mut expected = s.items().await?;
    let fresh = h.session(Some(key.as_str()));
    fresh.cycle_key().await?;
    let mut got = fresh.items().await?;
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    check_eq!(got, expected);
    let reloaded = h.session(fresh.key().as_ref().map(SessionKey::as_str));
    check_eq!(reloaded.len().await?, 2);
    Ok(Outcome::Passed)
}

/// Saving keeps the in-memory data.
pub async fn save_doesnt_clear_data(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("a", "b").await?;
    s.save().await?;
    check_eq!(s.get::<String>("a").await?, Some("b".to_owned()));
    Ok(Outcome::Passed)
}

/// A too-short client key is replaced on save, and loads nothing.
pub async fn invalid_key(h: Harness) -> BehaviourResult {
    check_eq!(SessionKey::from_client("1"), None);
    let s = h.session(Some("1"));
    s.save().await?;
    let key = saved_key(&s)?;
    check!(key.as_str() != "1", "an invalid key must not be kept");
    check_eq!(s.get_value("cat").await?, None);
    s.delete().await?;
    Ok(Outcome::Passed)
}

/// An empty key counts as no key.
pub async fn session_key_empty_string_invalid(h: Harness) -> BehaviourResult {
    check_eq!(h.session(Some("")).key(), None);
    Ok(Outcome::Passed)
}

/// A 7-character key counts as no key.
pub async fn session_key_too_short_invalid(h: Harness) -> BehaviourResult {
    check_eq!(h.session(Some("1234567")).key(), None);
    Ok(Outcome::Passed)
}

/// An 8-character key is kept.
pub async fn session_key_valid_string_saved(h: Harness) -> BehaviourResult {
    check_eq!(
        h.session(Some("12345678"))
            .key()
            .as_ref()
            .map(SessionKey::as_str),
        Some("12345678")
    );
    Ok(Outcome::Passed)
}

/// Django raises `AttributeError` on assignment; here the key has no setter, and the key handed out
/// is a copy: data access does not change the session's key, and a later change of the session's
/// key does not change a copy handed out earlier.
pub async fn session_key_is_read_only(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("x", &1).await?;
    s.save().await?;
    let handed_out = saved_key(&s)?;
    check_eq!(s.get::<i64>("x").await?, Some(1));
    s.insert("y", &2).await?;
    check_eq!(s.key().as_ref(), Some(&handed_out));
    s.flush().await?;
    check_eq!(s.key(), None);
    check!(
        handed_out.as_str().len() >= 8,
        "the copy is untouched by the flush"
    );
    Ok(Outcome::Passed)
}

/// Without a per-session expiry the age is the cookie age, and `set_expiry(0)` keeps it.
pub async fn default_expiry(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    let cookie_age = h.config().cookie_age;
    check_eq!(s.expiry_age().await?, cookie_age);
    s.set_expiry(Expiry::BrowserClose).await?;
    check_eq!(s.expiry_age().await?, cookie_age);
    Ok(Outcome::Passed)
}

fn fixed_moment() -> OffsetDateTime {
    // Microseconds included: the stored ISO string must round-trip them exactly.
    time::macros::datetime!(2030-05-17 08:30:15.123456 UTC)
}

/// `set_expiry(seconds)` counts from the modification time.
pub async fn custom_expiry_seconds(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    let m = fixed_moment();
    s.set_expiry(Expiry::Seconds(10)).await?;
    let stored = s.expiry().await?;
    check_eq!(stored, Expiry::Seconds(10));
    check_eq!(s.expiry_date_with(m, stored), m + Duration::seconds(10));
    check_eq!(s.expiry_age_with(m, stored), 10);
    Ok(Outcome::Passed)
}

/// `set_expiry(duration)` fixes a moment that round-trips to the microsecond.
pub async fn custom_expiry_timedelta(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    let before = truncate_to_micros(OffsetDateTime::now_utc());
    s.set_expiry(Expiry::In(Duration::seconds(10))).await?;
    let after = OffsetDateTime::now_utc();
    let Expiry::At(at) = s.expiry().await? else {
        return Err(Failure::new("a duration expiry is stored as a moment"));
    };
    let m = at - Duration::seconds(10);
    check!(
        before <= m && m <= after,
        "the moment must be set-time + 10 s: {m} not in [{before}, {after}]"
    );
    check_eq!(
        s.expiry_date_with(m, Expiry::At(at)),
        m + Duration::seconds(10)
    );
    check_eq!(s.expiry_age_with(m, Expiry::At(at)), 10);
    // A new session reading it back (through the store) sees the same moment.
    s.save().await?;
    let reloaded = h.session(s.key().as_ref().map(SessionKey::as_str));
    if h.capabilities().server_side_records {
        check_eq!(reloaded.expiry().await?, Expiry::At(at));
    }
    Ok(Outcome::Passed)
}

fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.microsecond() * 1000).unwrap_or(at)
}

/// `set_expiry(datetime)` stores that moment.
pub async fn custom_expiry_datetime(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    let m = fixed_moment();
    s.set_expiry(Expiry::At(m + Duration::seconds(10))).await?;
    let stored = s.expiry().await?;
    check_eq!(s.expiry_date_with(m, stored), m + Duration::seconds(10));
    check_eq!(s.expiry_age_with(m, stored), 10);
    Ok(Outcome::Passed)
}

/// Clearing the expiry restores the default.
pub async fn custom_expiry_reset(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.set_expiry(Expiry::Default).await?;
    s.set_expiry(Expiry::Seconds(10)).await?;
    s.set_expiry(Expiry::Default).await?;
    check_eq!(s.expiry_age().await?, h.config().cookie_age);
    check!(
        !s.contains_key("_session_expiry").await?,
        "expiry key removed"
    );
    Ok(Outcome::Passed)
}

/// Browser-close expiry follows the stored value, then the site setting.
pub async fn get_expire_at_browser_close(h: Harness) -> BehaviourResult {
    for (site_default, none_gives) in [(false, false), (true, true)] {
        let config = SessionConfig {
            expire_at_browser_close: site_default,
            ..h.config().clone()
        };
        let s = h.session_with(config, None);
        s.set_expiry(Expiry::Seconds(10)).await?;
        check_eq!(s.expire_at_browser_close().await?, false);
        s.set_expiry(Expiry::BrowserClose).await?;
        check_eq!(s.expire_at_browser_close().await?, true);
        s.set_expiry(Expiry::Default).await?;
        check_eq!(s.expire_at_browser_close().await?, none_gives);
    }
    Ok(Outcome::Passed)
}

fn test_dict() -> Dict {
    let mut data = Dict::new();
    data.insert("a test key".to_owned(), Value::from("a test value"));
    data
}

/// `decode(encode(data))` gives the data back.
pub async fn decode(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    let data = test_dict();
    check_eq!(s.decode(&s.encode(&data)?)?, data);
    Ok(Outcome::Passed)
}

/// The pre-Django-3.1 format decodes when legacy formats are accepted, and only then.
pub async fn decode_legacy(h: Harness) -> BehaviourResult {
    // Django 3.0 wrote this for {"a test key": "a test value"} with SECRET_KEY
    // "django_tests_secret_key" (Django 3.1's test_decode_legacy).
    const LEGACY: &str = "OWUzNTNmNWQxNTBjOWExZmM4MmQ3NzNhMDRmMjU4NmYwNDUyNGI2NDp7ImEgdGVzdCBrZXkiOiJhIHRlc3QgdmFsdWUifQ==";
    let config = SessionConfig {
        accept_legacy_formats: true,
        ..crate::config()
    };
    check_eq!(h.session_with(config, None).decode(LEGACY)?, test_dict());
    let strict = h.session_with(crate::config(), None);
    check_eq!(strict.decode(LEGACY)?, Dict::new());
    Ok(Outcome::Passed)
}

/// Tampered data decodes to an empty dict and logs Django's security warning.
pub async fn decode_failure_logged_to_security(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    for bad in ["Zmxhc2tkajphbGtkamY=", "bad:encoded:value"] {
        let (decoded, events) = logs::capture(|| s.decode(bad));
        check_eq!(decoded?, Dict::new());
        check!(
            events.iter().any(|e| e.target == SUSPICIOUS_SESSION_TARGET
                && e.level == tracing::Level::WARN
                && e.message.contains(CORRUPTED_MESSAGE)),
            "expected a WARN on {SUSPICIOUS_SESSION_TARGET} for {bad:?}, got {events:?}"
        );
    }
    Ok(Outcome::Passed)
}

/// A validly signed value that is not serializer output decodes to an empty dict, unlogged.
pub async fn decode_serializer_exception(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    let signer =
        TimestampSigner::new(h.config().secret_key.clone()).with_salt(&h.config().key_salt);
    let signed = signer.sign("b'invalid data'");
    let (decoded, events) = logs::capture(|| s.decode(&signed));
    check_eq!(decoded?, Dict::new());
    check!(
        !events.iter().any(|e| e.target == SUSPICIOUS_SESSION_TARGET),
        "a good signature over bad data is not a security event: {events:?}"
    );
    Ok(Outcome::Passed)
}

/// With Django 3.1's `DEFAULT_HASHING_ALGORITHM = "sha1"`, `encode` writes the legacy format and
/// `decode` reads it back.
pub async fn default_hashing_algorith_legacy_decode(h: Harness) -> BehaviourResult {
    let config = SessionConfig {
        hashing_algorithm: Algorithm::Sha1,
        ..crate::config()
    };
    let s = h.session_with(config, None);
    let data = test_dict();
    let encoded = s.encode(&data)?;
    check!(
        !encoded.contains(':') && encoded.ends_with('='),
        "legacy format is padded standard base64, got {encoded}"
    );
    check_eq!(s.decode(&encoded)?, data);
    Ok(Outcome::Passed)
}

/// A session saved with an expiry in the past loads as empty.
pub async fn actual_expiry(h: Harness) -> BehaviourResult {
    let s = h.session(None);
    s.insert("foo", "bar").await?;
    s.set_expiry(Expiry::In(Duration::seconds(-10))).await?;
    s.save().await?;
    let key = saved_key(&s)?;
    let fresh = h.session(Some(key.as_str()));
    let survived = fresh.contains_key("foo").await?;
    if !h.capabilities().per_session_expiry {
        check!(
            survived,
            "a store without per-session expiry must keep the data until the cookie age"
        );
        return Ok(Outcome::ExpectedDifference(
            "signed cookies expire by the cookie age only, not set_expiry (Django ticket #19201)"
                .to_owned(),
        ));
    }
    check!(!survived, "expired session data must not load");
    Ok(Outcome::Passed)
}

/// Loading an unknown key drops it and creates nothing.
pub async fn session_load_does_not_create_record(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h) {
        return Ok(skip);
    }
    let unknown = SessionKey::new("someunknownkey")?;
    let s = h.session(Some(unknown.as_str()));
    check_eq!(s.load().await?, Dict::new());
    check_eq!(s.key(), None);
    check!(
        !h.store().exists(&unknown).await?,
        "load must not create a record"
    );
    Ok(Outcome::Passed)
}

/// Saving a session deleted by another request fails, and does not bring it back.
pub async fn session_save_does_not_resurrect_session_logged_out_in_other_context(
    h: Harness,
) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h) {
        return Ok(skip);
    }
    let s1 = h.session(None);
    s1.insert("test_data", "value1").await?;
    s1.save_with(SaveMode::MustCreate).await?;
    let key = saved_key(&s1)?;
    let s2 = h.session(Some(key.as_str()));
    s2.delete().await?;
    s1.insert("test_data", "value2").await?;
    match s1.save().await {
        Err(Error::SessionDeleted) => {}
        other => {
            return Err(Failure::new(format!(
                "saving a deleted session must fail with SessionDeleted, got {other:?}"
            )));
        }
    }
    check_eq!(s1.load().await?, Dict::new());
    check!(
        !h.store().exists(&key).await?,
        "the session must stay deleted"
    );
    Ok(Outcome::Passed)
}

fn record(data: &Dict, seconds: i64) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(seconds),
        expiry_age: seconds,
    }
}

/// Of several concurrent must-create saves under one key, exactly one wins.
pub async fn must_create_is_atomic_under_key_collision(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h) {
        return Ok(skip);
    }
    const ROUNDS: usize = 20;
    const CREATORS: usize = 4;
    for round in 0..ROUNDS {
        let key = SessionKey::generate()?;
        let mut tasks = Vec::new();
        for creator in 0..CREATORS {
            let store = h.store().clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let mut data = Dict::new();
                data.insert("creator".to_owned(), Value::from(creator as i64));
                store
                    .save(&key, record(&data, 600), SaveMode::MustCreate)
                    .await
            }));
        }
        let mut winners = Vec::new();
        for (creator, task) in tasks.into_iter().enumerate() {
            match task.await {
                Ok(Ok(_)) => winners.push(creator),
                Ok(Err(Error::CreateConflict)) => {}
                Ok(Err(other)) => return Err(other.into()),
                Err(join) => return Err(Failure::new(format!("creator panicked: {join}"))),
            }
        }
        check!(
            winners.len() == 1,
            "round {round}: exactly one creator must win, winners were {winners:?}"
        );
        let stored = h.store().load(&key).await?;
        check_eq!(
            stored.and_then(|d| d.get("creator").and_then(Value::as_i64)),
            Some(winners[0] as i64)
        );
        h.store().delete(&key).await?;
    }
    Ok(Outcome::Passed)
}

/// A record is returned before its expiry and never at or after it.
pub async fn expired_record_is_never_returned_at_the_boundary(h: Harness) -> BehaviourResult {
    if !h.capabilities().per_session_expiry {
        return Ok(Outcome::Skipped(
            "the store does not enforce per-session expiry (signed cookies: cookie age only)"
                .to_owned(),
        ));
    }
    // Already at the boundary: expiring exactly now is expired.
    let s = h.session(None);
    s.insert("k", "v").await?;
    s.set_expiry(Expiry::At(truncate_to_micros(OffsetDateTime::now_utc())))
        .await?;
    s.save().await?;
    let key = saved_key(&s)?;
    check_eq!(h.store().load(&key).await?, None);

    // Just ahead: live until the moment, gone from then on.
    let lifetime = 2 + h.capabilities().early_expiry_seconds;
    let s = h.session(None);
    s.insert("k", "v").await?;
    let at = truncate_to_micros(OffsetDateTime::now_utc() + Duration::seconds(lifetime));
    s.set_expiry(Expiry::At(at)).await?;
    s.save().await?;
    let key = saved_key(&s)?;
    check!(
        h.store().load(&key).await?.is_some(),
        "a record {lifetime} s from expiry must load"
    );
    let until = at - OffsetDateTime::now_utc();
    tokio::time::sleep(StdDuration::try_from(until).unwrap_or_default()).await;
    for _ in 0..5 {
        check_eq!(h.store().load(&key).await?, None);
        check!(
            h.session(Some(key.as_str()))
                .get_value("k")
                .await?
                .is_none(),
            "an expired session must not be visible through a session either"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    Ok(Outcome::Passed)
}

/// An update racing a delete never brings the record back: whichever lands first, the record is
/// gone afterwards. Rounds alternate between the delete landing first, the save landing first, and
/// both launched together, so the outcome does not depend on how the runtime schedules them.
pub async fn save_racing_delete_never_resurrects(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h) {
        return Ok(skip);
    }
    const ROUNDS: usize = 30;
    for round in 0..ROUNDS {
        let s = h.session(None);
        s.insert("round", &round).await?;
        s.save().await?;
        let key = saved_key(&s)?;
        s.insert("round", &(round + 1000)).await?;
        let order = ["delete first", "save first", "together"][round % 3];
        let saved = match round % 3 {
            0 => {
                h.store().delete(&key).await?;
                s.save().await
            }
            1 => {
                let saved = s.save().await;
                h.store().delete(&key).await?;
                saved
            }
            _ => {
                let saver = {
                    let s = s.clone();
                    tokio::spawn(async move { s.save().await })
                };
                let deleter = {
                    let store = h.store().clone();
                    let key = key.clone();
                    tokio::spawn(async move { store.delete(&key).await })
                };
                let saved = saver
                    .await
                    .map_err(|e| Failure::new(format!("saver panicked: {e}")))?;
                deleter
                    .await
                    .map_err(|e| Failure::new(format!("deleter panicked: {e}")))??;
                saved
            }
        };
        match &saved {
            // After the delete the update must fail; before it, it must succeed.
            Ok(()) if order != "delete first" => {}
            Err(Error::SessionDeleted) if order != "save first" => {}
            Ok(()) | Err(Error::SessionDeleted) => {
                return Err(Failure::new(format!(
                    "round {round} ({order}): the save answered {saved:?}"
                )));
            }
            Err(other) => return Err(Failure::new(format!("unexpected error: {other}"))),
        }
        check!(
            h.store().load(&key).await?.is_none(),
            "round {round} ({order}): the deleted session came back (save result {saved:?})"
        );
    }
    Ok(Outcome::Passed)
}

/// Saving a session whose record expired meanwhile fails instead of recreating it.
pub async fn save_after_expiry_never_resurrects(h: Harness) -> BehaviourResult {
    if !h.capabilities().per_session_expiry {
        return Ok(Outcome::Skipped(
            "the store does not enforce per-session expiry (signed cookies: cookie age only)"
                .to_owned(),
        ));
    }
    let lifetime = 1 + h.capabilities().early_expiry_seconds;
    let s = h.session(None);
    s.insert("k", "v").await?;
    let at = OffsetDateTime::now_utc() + Duration::seconds(lifetime);
    s.set_expiry(Expiry::At(at)).await?;
    s.save().await?;
    let key = saved_key(&s)?;
    // This request has the data loaded; the record expires before it saves.
    check_eq!(s.get::<String>("k").await?, Some("v".to_owned()));
    let until = at - OffsetDateTime::now_utc() + Duration::milliseconds(100);
    tokio::time::sleep(StdDuration::try_from(until).unwrap_or_default()).await;
    s.insert("k", "changed").await?;
    match s.save().await {
        Err(Error::SessionDeleted) => {}
        other => {
            return Err(Failure::new(format!(
                "updating an expired session must fail with SessionDeleted, got {other:?}"
            )));
        }
    }
    check_eq!(h.store().load(&key).await?, None);
    Ok(Outcome::Passed)
}

fn awkward_dict() -> Dict {
    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::from("bottom"), |inner, level| {
            if level % 2 == 0 {
                Value::List(vec![inner])
            } else {
                let mut d = Dict::new();
                d.insert(format!("level{level}"), inner);
                Value::Dict(d)
            }
        })
    }
    let big = |text: &str| -> Value { text.parse::<Int>().map(Value::Int).unwrap_or(Value::Null) };
    let mut data = Dict::new();
    data.insert("".to_owned(), Value::from("empty-string key"));
    data.insert(
        "zoë ’😀".to_owned(),
        Value::from("naïve ünïcødé ’ 😀 \u{10FFFF}"),
    );
    data.insert(
        "controls".to_owned(),
        Value::from("\u{0}\u{1}\t\n\r\u{7f}\u{2028}\"\\/<>&'"),
    );
    data.insert("i64 max".to_owned(), Value::from(i64::MAX));
    data.insert("i64 min".to_owned(), Value::from(i64::MIN));
    data.insert("u64 max".to_owned(), Value::from(u64::MAX));
    data.insert("2**64".to_owned(), big("18446744073709551616"));
    data.insert(
        "10**40".to_owned(),
        big("10000000000000000000000000000000000000000"),
    );
    data.insert(
        "-10**40".to_owned(),
        big("-10000000000000000000000000000000000000000"),
    );
    data.insert(
        "floats".to_owned(),
        Value::List(
            [
                0.1,
                1e16,
                1e-5,
                -0.0,
                5e-324,
                1.5e300,
                1.0 / 3.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ]
            .into_iter()
            .map(Value::from)
            .collect(),
        ),
    );
    data.insert("nan".to_owned(), Value::from(f64::NAN));
    data.insert("nested".to_owned(), nested(50));
    data.insert("empty list".to_owned(), Value::List(vec![]));
    data.insert("empty dict".to_owned(), Value::Dict(Dict::new()));
    data.insert(
        "bools and none".to_owned(),
        Value::List(vec![true.into(), false.into(), Value::Null]),
    );
    data
}

/// Values round-trip exactly through the store: keys in order, Unicode, unbounded integers,
/// floats bit for bit, deep nesting, the empty-string key.
pub async fn awkward_values_round_trip(h: Harness) -> BehaviourResult {
    let data = awkward_dict();
    let s = h.session(None);
    s.update(data.clone()).await?;
    s.save().await?;
    let key = saved_key(&s)?;
    let loaded = h.session(Some(key.as_str())).data().await?;
    check!(
        session_core::value::dicts_identical(&loaded, &data),
        "values changed through the store:\n  saved: {data:?}\n loaded: {loaded:?}"
    );
    Ok(Outcome::Passed)
}

/// `clear_expired` removes exactly the expired records and says how many.
pub async fn clear_expired_removes_exactly_the_expired(h: Harness) -> BehaviourResult {
    let mut live = Vec::new();
    let mut expired = Vec::new();
    for i in 0..5 {
        let s = h.session(None);
        s.insert("i", &i).await?;
        if i % 2 == 0 {
            s.set_expiry(Expiry::In(Duration::seconds(-3600))).await?;
        } else {
            s.set_expiry(Expiry::In(Duration::seconds(3600))).await?;
        }
        s.save().await?;
        let key = saved_key(&s)?;
        if i % 2 == 0 {
            expired.push(key);
        } else {
            live.push(key);
        }
    }
    let outcome = h.store().clear_expired().await?;
    if h.capabilities().clears_expired {
        check_eq!(outcome, ClearExpired::Removed(expired.len() as u64));
        for key in &expired {
            check!(
                !h.store().exists(key).await?,
                "expired record must be removed"
            );
        }
        check_eq!(h.store().clear_expired().await?, ClearExpired::Removed(0));
    } else {
        check_eq!(outcome, ClearExpired::NotNeeded);
        // A signed cookie expires by the cookie age only (Django ticket #19201).
        if h.capabilities().per_session_expiry {
            for key in &expired {
                check_eq!(h.store().load(key).await?, None);
            }
        }
    }
    if h.capabilities().server_side_records {
        for key in &live {
            check!(
                h.store().load(key).await?.is_some(),
                "live record must survive clear_expired"
            );
        }
    }
    Ok(Outcome::Passed)
}

// ---------------------------------------------------------------------------------------------
// Concurrent requests: the merge and reject policies (compare-and-swap stores only).

fn no_compare_and_swap(h: &Harness) -> Option<Outcome> {
    (!h.capabilities().compare_and_swap).then(|| {
        Outcome::Skipped(
            "the store does not compare-and-swap, so it serves last_write_wins only".to_owned(),
        )
    })
}

fn under(h: &Harness, policy: ConcurrencyPolicy) -> SessionConfig {
    SessionConfig {
        concurrency: policy,
        ..h.config().clone()
    }
}

/// A session saved with `pairs`, and its key.
async fn saved_with(h: &Harness, pairs: &[(&str, i64)]) -> Result<SessionKey, Failure> {
    let s = h.session(None);
    for (k, v) in pairs {
        s.insert(*k, v).await?;
    }
    s.save().await?;
    saved_key(&s)
}

/// Two sessions on `key` under `policy`, both having read the stored record.
async fn two_readers(
    h: &Harness,
    key: &SessionKey,
    policy: ConcurrencyPolicy,
) -> Result<(Session, Session), Failure> {
    let a = h.session_with(under(h, policy), Some(key.as_str()));
    let b = h.session_with(under(h, policy), Some(key.as_str()));
    a.keys().await?;
    b.keys().await?;
    Ok((a, b))
}

async fn stored(h: &Harness, key: &SessionKey) -> Result<Dict, Failure> {
    h.store()
        .load(key)
        .await?
        .ok_or_else(|| Failure::new("the session record vanished"))
}

/// The store's declared capability is true: a store declaring compare-and-swap serves
/// `load_versioned`, and one declaring none is refused for `merge` and `reject` with a
/// configuration error (never silently downgraded to last-write-wins).
pub async fn declared_compare_and_swap_is_what_the_store_does(h: Harness) -> BehaviourResult {
    let declared = h.store().capabilities().compare_and_swap;
    check_eq!(declared, h.capabilities().compare_and_swap);
    for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
        let checked = policy.check_store(&**h.store());
        check!(
            checked.is_ok() == declared,
            "check_store({policy}) answered {checked:?} for a store declaring \
             compare_and_swap = {declared}"
        );
    }
    if declared && h.capabilities().server_side_records {
        let key = saved_with(&h, &[("a", 1)]).await?;
        let record = h.store().load_versioned(&key).await?;
        check!(
            record.is_some_and(|r| r.data.get("a") == Some(&Value::from(1))),
            "load_versioned must return the saved record"
        );
    }
    Ok(Outcome::Passed)
}

/// `save_if_unchanged` writes only over the version it is given: a version older than the last
/// write (ours or a plain save) is a conflict that changes nothing, and a missing record is
/// `SessionDeleted`, never re-inserted.
pub async fn a_stale_version_is_refused(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    let key = saved_with(&h, &[("n", 1)]).await?;
    let first = h
        .store()
        .load_versioned(&key)
        .await?
        .ok_or_else(|| Failure::new("the saved record must load"))?;
    let record = |n: i64| {
        let mut data = Dict::new();
        data.insert("n".to_owned(), Value::from(n));
        SharedRecord {
            data: std::sync::Arc::new(data),
            expires_at: OffsetDateTime::now_utc() + Duration::hours(1),
            expiry_age: 3600,
        }
    };
    let second = h
        .store()
        .save_if_unchanged(&key, record(2), &first.version)
        .await?;
    check!(second != first.version, "a write must change the version");
    match h
        .store()
        .save_if_unchanged(&key, record(3), &first.version)
        .await
    {
        Err(Error::Conflict) => {}
        other => {
            return Err(Failure::new(format!(
                "a stale version must conflict, got {other:?}"
            )));
        }
    }
    check_eq!(stored(&h, &key).await?.get("n"), Some(&Value::from(2)));

    // A plain (last-write-wins) save changes the version too.
    let s = h.session(Some(key.as_str()));
    s.insert("n", &4).await?;
    s.save().await?;
    match h.store().save_if_unchanged(&key, record(5), &second).await {
        Err(Error::Conflict) => {}
        other => {
            return Err(Failure::new(format!(
                "a version from before a plain save must conflict, got {other:?}"
            )));
        }
    }
    check_eq!(stored(&h, &key).await?.get("n"), Some(&Value::from(4)));

    // A deleted record is not brought back.
    let current = h
        .store()
        .load_versioned(&key)
        .await?
        .ok_or_else(|| Failure::new("the record must load"))?;
    h.store().delete(&key).await?;
    match h
        .store()
        .save_if_unchanged(&key, record(6), &current.version)
        .await
    {
        Err(Error::SessionDeleted) => {}
        other => {
            return Err(Failure::new(format!(
                "a compare-and-swap onto a deleted record must be SessionDeleted, got {other:?}"
            )));
        }
    }
    check!(
        h.store().load(&key).await?.is_none(),
        "the deleted record came back"
    );
    Ok(Outcome::Passed)
}

/// `is_unchanged` answers whether the record is still at a version: true for the version just
/// read or written, false once a compare-and-swap, a plain save or a delete has come after it
/// (what a cache in front of the store relies on to notice a copy gone stale).
pub async fn is_unchanged_follows_every_write(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    let key = saved_with(&h, &[("n", 1)]).await?;
    let read = h
        .store()
        .load_versioned(&key)
        .await?
        .ok_or_else(|| Failure::new("the saved record must load"))?;
    check!(
        h.store().is_unchanged(&key, &read.version).await?,
        "the version just read must be current"
    );
    let mut data = Dict::new();
    data.insert("n".to_owned(), Value::from(2));
    let written = h
        .store()
        .save_if_unchanged(
            &key,
            SharedRecord {
                data: std::sync::Arc::new(data),
                expires_at: OffsetDateTime::now_utc() + Duration::hours(1),
                expiry_age: 3600,
            },
            &read.version,
        )
        .await?;
    check!(
        !h.store().is_unchanged(&key, &read.version).await?,
        "a version from before a compare-and-swap must not be current"
    );
    check!(
        h.store().is_unchanged(&key, &written).await?,
        "the version a compare-and-swap returned must be current"
    );

    let s = h.session(Some(key.as_str()));
    s.insert("n", &3).await?;
    s.save().await?;
    check!(
        !h.store().is_unchanged(&key, &written).await?,
        "a version from before a plain save must not be current"
    );

    let last = h
        .store()
        .load_versioned(&key)
        .await?
        .ok_or_else(|| Failure::new("the record must load"))?;
    h.store().delete(&key).await?;
    check!(
        !h.store().is_unchanged(&key, &last.version).await?,
        "a deleted record is at no version"
    );
    check!(
        !h.store()
            .is_unchanged(&SessionKey::generate()?, &last.version)
            .await?,
        "a key never saved is at no version"
    );
    Ok(Outcome::Passed)
}

/// Under `merge`, two requests that read the same session and each set a different key both
/// keep their key, whichever saves first.
pub async fn merge_keeps_concurrent_saves_of_disjoint_keys(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    let key = saved_with(&h, &[("initial", 0)]).await?;
    let (a, b) = two_readers(&h, &key, ConcurrencyPolicy::Merge).await?;
    a.insert("a", &1).await?;
    b.insert("b", &2).await?;
    a.save().await?;
    b.save().await?;
    let record = stored(&h, &key).await?;
    let keys: Vec<&str> = record.keys().map(|k| k.as_str()).collect();
    check_eq!(keys, ["initial", "a", "b"]);
    check_eq!(record.get("a"), Some(&Value::from(1)));
    // The later saver's handle now holds the merged data.
    check_eq!(b.get::<i64>("a").await?, Some(1));
    Ok(Outcome::Passed)
}

/// Under `merge`, when both requests set the same key, the later save's value wins.
pub async fn merge_keeps_the_later_saves_value_of_one_key(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    let key = saved_with(&h, &[("k", 0), ("other", 7)]).await?;
    let (a, b) = two_readers(&h, &key, ConcurrencyPolicy::Merge).await?;
    b.insert("k", &2).await?;
    a.insert("k", &1).await?;
    b.save().await?;
    a.save().await?;
    let record = stored(&h, &key).await?;
    check_eq!(record.get("k"), Some(&Value::from(1)));
    check_eq!(record.get("other"), Some(&Value::from(7)));
    Ok(Outcome::Passed)
}

/// Under `merge`, a removal is a change like a set: the later save's removal of a key the other
/// request set removes it, and a key only the other touched keeps that one's change.
pub async fn merge_applies_a_removal_of_a_key_the_other_set(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    let key = saved_with(&h, &[("x", 0), ("y", 0)]).await?;
    let (a, b) = two_readers(&h, &key, ConcurrencyPolicy::Merge).await?;
    a.insert("x", &1).await?;
    a.remove("y").await?;
    a.save().await?;
    b.remove("x").await?;
    b.insert("z", &3).await?;
    b.save().await?;
    let record = stored(&h, &key).await?;
    let keys: Vec<&str> = record.keys().map(|k| k.as_str()).collect();
    check_eq!(keys, ["z"]);
    Ok(Outcome::Passed)
}

/// Under `merge`, an expiry one request set survives the other's save, and the stored record
/// expires by it.
pub async fn merge_keeps_an_expiry_set_by_the_other_request(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    let key = saved_with(&h, &[("k", 0)]).await?;
    let (a, b) = two_readers(&h, &key, ConcurrencyPolicy::Merge).await?;
    a.set_expiry(Expiry::Seconds(2)).await?;
    a.save().await?;
    b.insert("k", &1).await?;
    b.save().await?;
    check!(
        b.changes().is_empty(),
        "a saved session has no pending changes"
    );
    let record = stored(&h, &key).await?;
    check_eq!(record.get("k"), Some(&Value::from(1)));
    check_eq!(b.expiry().await?, Expiry::Seconds(2));
    if h.capabilities().per_session_expiry {
        tokio::time::sleep(StdDuration::from_millis(2_100)).await;
        check!(
            h.store().load(&key).await?.is_none(),
            "the record must expire by the merged expiry"
        );
    }
    Ok(Outcome::Passed)
}

/// Under `reject`, of two requests that read the same session, the first save wins and the other
/// fails with `Conflict` and changes nothing; when both race, exactly one succeeds.
pub async fn reject_lets_exactly_one_of_two_racing_saves_succeed(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    let key = saved_with(&h, &[("k", 0)]).await?;
    let (a, b) = two_readers(&h, &key, ConcurrencyPolicy::Reject).await?;
    a.insert("k", &1).await?;
    b.insert("k", &2).await?;
    a.save().await?;
    match b.save().await {
        Err(Error::Conflict) => {}
        other => {
            return Err(Failure::new(format!(
                "the later save must conflict, got {other:?}"
            )));
        }
    }
    check_eq!(stored(&h, &key).await?.get("k"), Some(&Value::from(1)));

    // Each round's values differ from every value stored before it. A save that writes back
    // the very bytes already stored changes nothing, and a store may then let the other save
    // through too (a cache store's version is the bytes and a millisecond stamp): the result is
    // as if the two ran one after the other, but it is not the race this behaviour pins.
    for round in 0..20i64 {
        let (a, b) = two_readers(&h, &key, ConcurrencyPolicy::Reject).await?;
        a.insert("k", &(10 + round * 2)).await?;
        b.insert("k", &(10 + round * 2 + 1)).await?;
        let ta = tokio::spawn(async move { a.save().await });
        let tb = tokio::spawn(async move { b.save().await });
        let ra = ta
            .await
            .map_err(|e| Failure::new(format!("saver panicked: {e}")))?;
        let rb = tb
            .await
            .map_err(|e| Failure::new(format!("saver panicked: {e}")))?;
        let winner = match (&ra, &rb) {
            (Ok(()), Err(Error::Conflict)) => 10 + round * 2,
            (Err(Error::Conflict), Ok(())) => 10 + round * 2 + 1,
            _ => {
                return Err(Failure::new(format!(
                    "round {round}: exactly one save must succeed, got {ra:?} and {rb:?}"
                )));
            }
        };
        check_eq!(stored(&h, &key).await?.get("k"), Some(&Value::from(winner)));
    }
    Ok(Outcome::Passed)
}

/// A flush (logout) racing a `merge` save wins: the save fails with `SessionDeleted` and the
/// session never comes back, whatever the order.
pub async fn flush_racing_a_merge_save_never_resurrects(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    for round in 0..30i64 {
        let key = saved_with(&h, &[("round", round)]).await?;
        let (saver, other) = two_readers(&h, &key, ConcurrencyPolicy::Merge).await?;
        saver.insert("more", &round).await?;
        if round % 3 == 1 {
            // The stored record changes first, so the merge save has to read it again.
            other.insert("other", &round).await?;
            other.save().await?;
        }
        let flusher = h.session_with(under(&h, ConcurrencyPolicy::Merge), Some(key.as_str()));
        let saved = if round % 3 == 2 {
            let t = tokio::spawn(async move { saver.save().await });
            flusher.flush().await?;
            t.await
                .map_err(|e| Failure::new(format!("saver panicked: {e}")))?
        } else {
            flusher.flush().await?;
            saver.save().await
        };
        match saved {
            Ok(()) if round % 3 == 2 => {}
            Err(Error::SessionDeleted) => {}
            other => {
                return Err(Failure::new(format!(
                    "round {round}: a save after the flush must be SessionDeleted, got {other:?}"
                )));
            }
        }
        check!(
            h.store().load(&key).await?.is_none(),
            "round {round}: the flushed session came back"
        );
    }
    Ok(Outcome::Passed)
}

/// Under `merge`, N requests on one session, each incrementing its own key many times with a
/// fresh session per increment (as a browser's tabs do), lose no acknowledged increment.
pub async fn concurrent_increments_of_different_keys_all_survive(h: Harness) -> BehaviourResult {
    if let Some(skip) = no_server_records(&h).or_else(|| no_compare_and_swap(&h)) {
        return Ok(skip);
    }
    const TABS: usize = 6;
    const INCREMENTS: i64 = 10;
    let key = saved_with(&h, &[("start", 0)]).await?;
    let mut tabs = Vec::new();
    for tab in 0..TABS {
        let (h, key) = (h.clone(), key.clone());
        tabs.push(tokio::spawn(async move {
            let counter = format!("tab{tab}");
            let mut acknowledged = 0i64;
            let mut attempts = 0;
            while acknowledged < INCREMENTS && attempts < INCREMENTS * 20 {
                attempts += 1;
                let s = h.session_with(under(&h, ConcurrencyPolicy::Merge), Some(key.as_str()));
                let n = s.get::<i64>(&counter).await?.unwrap_or(0);
                // A request works between reading and saving: let the other tabs run.
                tokio::task::yield_now().await;
                s.insert(counter.as_str(), &(n + 1)).await?;
                match s.save().await {
                    Ok(()) => acknowledged += 1,
                    // Every attempt lost the race: not acknowledged, so not counted.
                    Err(Error::Conflict) => {}
                    Err(other) => return Err(other),
                }
                tokio::task::yield_now().await;
            }
            Ok::<_, Error>((counter, acknowledged))
        }));
    }
    let mut expected = Vec::new();
    for tab in tabs {
        expected.push(
            tab.await
                .map_err(|e| Failure::new(format!("tab panicked: {e}")))??,
        );
    }
    let record = stored(&h, &key).await?;
    for (counter, acknowledged) in expected {
        check!(
            acknowledged > 0,
            "{counter}: no increment was ever acknowledged"
        );
        check_eq!(record.get(&counter), Some(&Value::from(acknowledged)));
    }
    Ok(Outcome::Passed)
}
