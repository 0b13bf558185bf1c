//! `expire_date` values as Django stores them with `USE_TZ=True`.
//!
//! Python datetimes have microsecond precision and years 1..=9999, so every moment is truncated to
//! the microsecond and clamped into that range before it is written or compared: a row then holds
//! exactly what Django would have written, and SQLite's text comparison stays a time comparison.

use time::OffsetDateTime;
#[cfg(feature = "mysql")]
use time::PrimitiveDateTime;

/// Truncates to the microsecond and clamps into Python's datetime range, in UTC (the moments a
/// Django row can hold).
pub(crate) fn normalize(at: OffsetDateTime) -> OffsetDateTime {
    session_core::expiry::to_python_datetime(at)
}

/// The naive UTC value MySQL's `datetime(6)` holds.
#[cfg(feature = "mysql")]
pub(crate) fn naive_utc(at: OffsetDateTime) -> PrimitiveDateTime {
    let at = normalize(at);
    PrimitiveDateTime::new(at.date(), at.time())
}

/// The text Django stores in SQLite: `str(naive_utc_datetime)`, that is
/// `YYYY-MM-DD HH:MM:SS` plus `.ffffff` only when the microseconds are not zero.
pub fn sqlite_text(at: OffsetDateTime) -> String {
    session_core::expiry::python_datetime_text(at, ' ')
}

/// Reads an SQLite `expire_date` (naive UTC text, as Django writes it).
#[cfg(feature = "sqlite")]
pub(crate) fn parse_sqlite_text(text: &str) -> Option<OffsetDateTime> {
    session_core::expiry::parse_isoformat(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sqlite_text_is_pythons_str_of_a_naive_datetime() {
        assert_eq!(
            sqlite_text(datetime!(2023-11-14 23:13:20.123456 UTC)),
            "2023-11-14 23:13:20.123456"
        );
        assert_eq!(
            sqlite_text(datetime!(2023-11-14 23:13:20 UTC)),
            "2023-11-14 23:13:20"
        );
        assert_eq!(
            sqlite_text(datetime!(2023-11-14 23:13:20.000001999 UTC)),
            "2023-11-14 23:13:20.000001"
        );
        assert_eq!(
            sqlite_text(datetime!(2024-01-01 02:00:00 +02:00)),
            "2024-01-01 00:00:00"
        );
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_text_round_trips() {
        for at in [
            datetime!(2023-11-14 23:13:20.123456 UTC),
            datetime!(2023-11-14 23:13:20 UTC),
            datetime!(0001-01-01 00:00:00 UTC),
        ] {
            assert_eq!(parse_sqlite_text(&sqlite_text(at)), Some(at));
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let times = [
            datetime!(2023-11-14 23:13:20 UTC),
            datetime!(2023-11-14 23:13:20.000001 UTC),
            datetime!(2023-11-14 23:13:20.5 UTC),
            datetime!(2023-11-14 23:13:21 UTC),
            datetime!(2024-01-01 00:00:00 UTC),
        ];
        for pair in times.windows(2) {
            assert!(sqlite_text(pair[0]) < sqlite_text(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn moments_outside_pythons_range_are_clamped() {
        assert_eq!(
            sqlite_text(datetime!(-0001-06-01 00:00:00 UTC)),
            "0001-01-01 00:00:00"
        );
        let last = datetime!(9999-12-31 23:59:59.999999999 UTC);
        assert_eq!(sqlite_text(last), "9999-12-31 23:59:59.999999");
        assert_eq!(
            sqlite_text(datetime!(9999-12-31 23:00:00 -05:00)),
            "9999-12-31 23:59:59.999999"
        );
    }
}
