//! Session expiry, as Django stores it inside the session data under `_session_expiry`.

use time::format_description::well_known::Iso8601;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::value::{Dict, Value};

/// The session data key holding a per-session expiry.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// When a session expires.
///
/// Django keeps this inside the session data: absent (the site-wide policy), an integer number of
/// seconds (idle expiry: every save moves the deadline), `0` (when the browser closes), or since
/// Django 4.1 an ISO-8601 string (a fixed deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No per-session expiry: `SESSION_COOKIE_AGE` and `SESSION_EXPIRE_AT_BROWSER_CLOSE` apply
    /// (Django's `set_expiry(None)`).
    Default,
    /// The cookie lasts until the browser closes (Django's `set_expiry(0)`); the server keeps the
    /// record for the cookie age.
    BrowserClose,
    /// Expire this many seconds after the last save (Django's `set_expiry(int)`); negative values are
    /// in the past.
    Seconds(i64),
    /// Expire at a fixed moment (Django's `set_expiry(datetime)`), stored as an ISO-8601 string.
    At(OffsetDateTime),
    /// Expire this long from now (Django's `set_expiry(timedelta)`): resolved to [`Expiry::At`] when
    /// it is set.
    In(Duration),
}

impl Expiry {
    /// Reads the stored form (`_session_expiry`), as Django's getters do.
    ///
    /// Returns `None` for a value Django could not use either (a list, a string that is not a date);
    /// callers treat that as [`Expiry::Default`].
    pub fn from_stored(value: Option<&Value>) -> Option<Expiry> {
        match value {
            None | Some(Value::Null) => Some(Expiry::Default),
            Some(Value::Int(i)) => match i.as_i64() {
                Some(0) => Some(Expiry::BrowserClose),
                Some(seconds) => Some(Expiry::Seconds(seconds)),
                None => None,
            },
            Some(Value::Bool(false)) => Some(Expiry::Default),
            Some(Value::Str(text)) => parse_isoformat(text).map(Expiry::At),
            Some(_) => None,
        }
    }

    /// The expiry a session's data holds: [`from_stored`](Expiry::from_stored) of its
    /// `_session_expiry`, with [`Expiry::Default`] for a value nobody could use. Stores computing
    /// a record's lifetime call this; the `Session` handle also logs unusable values.
    pub fn of_data(data: &Dict) -> Expiry {
        Expiry::from_stored(data.get(EXPIRY_KEY)).unwrap_or(Expiry::Default)
    }

    /// The stored form of this expiry, or `None` when the key should be absent. [`Expiry::In`] is
    /// resolved against `now`.
    pub fn to_stored(self, now: OffsetDateTime) -> Option<Value> {
        match self {
            Expiry::Default => None,
            Expiry::BrowserClose => Some(Value::from(0i64)),
            Expiry::Seconds(s) => Some(Value::from(s)),
            Expiry::At(at) => Some(Value::from(isoformat(at))),
            Expiry::In(d) => Some(Value::from(isoformat(now + d))),
        }
    }

    /// Seconds until expiry, counted from `modification` (Django's `get_expiry_age`): the floor of the
    /// difference for a fixed deadline, the stored seconds for idle expiry, and `cookie_age` otherwise.
    pub fn age(self, modification: OffsetDateTime, cookie_age: i64) -> i64 {
        match self {
            Expiry::Default | Expiry::BrowserClose => cookie_age,
            Expiry::Seconds(s) => s,
            Expiry::At(at) => floor_seconds(at - modification),
            Expiry::In(d) => floor_seconds(d),
        }
    }

    /// The moment of expiry when saved at `modification` (Django's `get_expiry_date`).
    pub fn date(self, modification: OffsetDateTime, cookie_age: i64) -> OffsetDateTime {
        match self {
            Expiry::Default | Expiry::BrowserClose => {
                modification.saturating_add(Duration::seconds(cookie_age))
            }
            Expiry::Seconds(s) => modification.saturating_add(Duration::seconds(s)),
            Expiry::At(at) => at,
            Expiry::In(d) => modification.saturating_add(d),
        }
    }

    /// Whether the cookie should last only until the browser closes (Django's
    /// `get_expire_at_browser_close`): the site-wide setting when no expiry is stored, otherwise
    /// whether the stored value is `0`.
    pub fn at_browser_close(self, site_default: bool) -> bool {
        match self {
            Expiry::Default => site_default,
            Expiry::BrowserClose => true,
            _ => false,
        }
    }
}

/// Whole seconds of `d`, rounded towards negative infinity, like Python's
/// `delta.days * 86400 + delta.seconds`.
pub fn floor_seconds(d: Duration) -> i64 {
    let whole = d.whole_seconds();
    if d.subsec_nanoseconds() < 0 {
        whole - 1
    } else {
        whole
    }
}

/// The moment as a Python `datetime` can hold it: in UTC, truncated to the microsecond (towards the
/// past) and clamped into years 1..=9999. Everything we write for Django to read goes through this,
/// so Python never meets a moment it cannot represent.
pub fn to_python_datetime(at: OffsetDateTime) -> OffsetDateTime {
    let min = PrimitiveDateTime::new(
        time::Date::from_calendar_date(1, time::Month::January, 1).unwrap_or(time::Date::MIN),
        time::Time::MIDNIGHT,
    )
    .assume_utc();
    let max = PrimitiveDateTime::new(
        time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap_or(time::Date::MAX),
        time::Time::from_hms_micro(23, 59, 59, 999_999).unwrap_or(time::Time::MIDNIGHT),
    )
    .assume_utc();
    // Offset-aware comparisons first: converting an extreme moment to UTC could overflow.
    if at < min {
        return min;
    }
    if at > max {
        return max;
    }
    let at = at.checked_to_offset(UtcOffset::UTC).unwrap_or(max);
    at.replace_nanosecond(at.microsecond() * 1_000)
        .unwrap_or(at)
}

/// Python's text for the naive UTC form of a moment: `YYYY-MM-DD<separator>HH:MM:SS`, then
/// `.ffffff` only when the microseconds are not zero. With `' '` this is `str(datetime)` (what
/// Django stores in SQLite); with `'T'` it is `isoformat()` without the offset.
pub fn python_datetime_text(at: OffsetDateTime, separator: char) -> String {
    let at = to_python_datetime(at);
    let mut out = format!(
        "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let micros = at.microsecond();
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    out
}

/// Formats a moment the way Python's `datetime.isoformat()` does for an aware UTC datetime (what
/// Django 4.1+ stores for `set_expiry(datetime)`): `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`.
pub fn isoformat(at: OffsetDateTime) -> String {
    let mut out = python_datetime_text(at, 'T');
    out.push_str("+00:00");
    out
}

/// Parses what Python 3.11's `datetime.fromisoformat` accepts in practice for session expiries:
/// `YYYY-MM-DD[T ]HH:MM[:SS[.f{1,6}]]` with an optional `Z` or `±HH:MM[:SS]` offset, and a bare date.
///
/// A naive datetime (no offset) is what Django writes with `USE_TZ=False`; it is read as UTC, since a
/// Rust process cannot know the Django site's local time zone.
pub fn parse_isoformat(text: &str) -> Option<OffsetDateTime> {
    if text.len() > 64 || !text.is_ascii() {
        return None;
    }
    // Python also accepts a space (or any single character) between date and time.
    let normalised;
    let text = if text.len() > 10 && text.as_bytes()[10] == b' ' {
        normalised = format!("{}T{}", &text[..10], &text[11..]);
        normalised.as_str()
    } else {
        text
    };
    if let Ok(at) = OffsetDateTime::parse(text, &Iso8601::PARSING) {
        return Some(at);
    }
    if let Ok(naive) = PrimitiveDateTime::parse(text, &Iso8601::PARSING) {
        return Some(naive.assume_utc());
    }
    let date = time::Date::parse(text, &Iso8601::PARSING).ok()?;
    Some(date.midnight().assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn isoformat_matches_python() {
        assert_eq!(
            isoformat(datetime!(2024-01-01 12:00:00 UTC)),
            "2024-01-01T12:00:00+00:00"
        );
        assert_eq!(
            isoformat(datetime!(2023-11-14 23:13:20.123456 UTC)),
            "2023-11-14T23:13:20.123456+00:00"
        );
        assert_eq!(
            isoformat(datetime!(2023-11-14 23:13:20.000005 UTC)),
            "2023-11-14T23:13:20.000005+00:00"
        );
        // Other offsets are normalised to UTC, as Django's timezone.now() is UTC.
        assert_eq!(
            isoformat(datetime!(2024-01-01 14:00:00 +02:00)),
            "2024-01-01T12:00:00+00:00"
        );
        // Sub-microsecond digits are truncated, never rounded up.
        assert_eq!(
            isoformat(datetime!(2023-11-14 23:13:20.000001999 UTC)),
            "2023-11-14T23:13:20.000001+00:00"
        );
    }

    #[test]
    fn moments_are_clamped_into_pythons_datetime_range() {
        let far = OffsetDateTime::UNIX_EPOCH.saturating_add(Duration::MAX);
        assert_eq!(isoformat(far), "9999-12-31T23:59:59.999999+00:00");
        assert_eq!(
            python_datetime_text(datetime!(-0005-06-01 00:00:00 UTC), ' '),
            "0001-01-01 00:00:00"
        );
    }

    #[test]
    fn parse_isoformat_reads_what_django_writes_and_python_accepts() {
        let at = datetime!(2023-11-14 23:13:20.123456 UTC);
        assert_eq!(
            parse_isoformat("2023-11-14T23:13:20.123456+00:00"),
            Some(at)
        );
        assert_eq!(parse_isoformat("2023-11-14T23:13:20.123456Z"), Some(at));
        assert_eq!(
            parse_isoformat("2024-01-01T12:00:00"),
            Some(datetime!(2024-01-01 12:00:00 UTC))
        );
        assert_eq!(
            parse_isoformat("2024-01-01T14:00:00+02:00"),
            Some(datetime!(2024-01-01 12:00:00 UTC))
        );
        assert_eq!(
            parse_isoformat("2024-01-01 12:00:00+00:00"),
            Some(datetime!(2024-01-01 12:00:00 UTC))
        );
        assert_eq!(parse_isoformat("not a date"), None);
        assert_eq!(parse_isoformat(""), None);
    }

    #[test]
    fn ages_are_floored_like_python_timedelta() {
        let m = datetime!(2024-01-01 00:00:00 UTC);
        let cases = [
            (9_500, 9),
            (200, 0),
            (-200, -1),
            (-9_500, -10),
            (-10_000, -10),
        ];
        for (millis, expected) in cases {
            let at = m + Duration::milliseconds(millis);
            assert_eq!(Expiry::At(at).age(m, 1209600), expected, "{millis} ms");
        }
    }

    #[test]
    fn stored_forms_round_trip() {
        let now = datetime!(2024-01-01 00:00:00.5 UTC);
        for expiry in [
            Expiry::BrowserClose,
            Expiry::Seconds(300),
            Expiry::Seconds(-10),
            Expiry::At(datetime!(2024-02-01 10:00:00.25 UTC)),
        ] {
            let stored = expiry.to_stored(now);
            assert_eq!(Expiry::from_stored(stored.as_ref()), Some(expiry));
        }
        assert_eq!(Expiry::Default.to_stored(now), None);
        assert_eq!(
            Expiry::from_stored(Expiry::In(Duration::seconds(10)).to_stored(now).as_ref()),
            Some(Expiry::At(now + Duration::seconds(10)))
        );
    }

    #[test]
    fn unusable_stored_values_are_reported() {
        assert_eq!(Expiry::from_stored(Some(&Value::from("soon"))), None);
        let mut data = Dict::new();
        assert_eq!(Expiry::of_data(&data), Expiry::Default);
        data.insert(EXPIRY_KEY.to_owned(), Value::from(300i64));
        assert_eq!(Expiry::of_data(&data), Expiry::Seconds(300));
        data.insert(EXPIRY_KEY.to_owned(), Value::from("soon"));
        assert_eq!(
            Expiry::of_data(&data),
            Expiry::Default,
            "unusable reads as the default"
        );
        assert_eq!(Expiry::from_stored(Some(&Value::List(vec![]))), None);
    }

    #[test]
    fn browser_close_follows_django() {
        assert!(!Expiry::Default.at_browser_close(false));
        assert!(Expiry::Default.at_browser_close(true));
        assert!(Expiry::BrowserClose.at_browser_close(false));
        assert!(!Expiry::Seconds(10).at_browser_close(true));
    }
}
