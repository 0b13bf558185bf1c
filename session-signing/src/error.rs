//! The crate's single error type.

use crate::encoding::python_repr;

/// Everything that can go wrong while signing, verifying or decoding.
///
/// Django distinguishes two families and session code must too:
///
/// * **bad signature** ([`Error::is_bad_signature`]): the value was not signed by any of our keys
///   ([`Error::MissingSeparator`], [`Error::BadSignature`]) or it was but is too old
///   ([`Error::Expired`]). Django raises `BadSignature`/`SignatureExpired`, and session decoding logs
///   them as `Session data corrupted`.
/// * **structural**: the signature was valid (or could not be checked) but the content is unusable
///   (bad timestamp, bad base64, bad zlib, too large). Django raises other exceptions for those and
///   session decoding returns an empty session without logging.
///
/// Configuration mistakes ([`Error::InvalidSeparator`], [`Error::InvalidAlgorithm`]) are reported
/// when a signer is configured, never while handling a request.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The separator does not occur in the value, so it cannot carry a signature.
    #[error(
        "No \"{sep}\" found in value: it is not a signed value, or it was signed with another separator"
    )]
    MissingSeparator {
        /// The separator that was looked for.
        sep: String,
    },

    /// The signature does not match under any of the keys.
    #[error(
        "Signature does not match: the value was tampered with, or it was signed with a different \
         secret key, salt or algorithm (add the old secret to the fallback keys when rotating)"
    )]
    BadSignature,

    /// The signature is valid but older than the allowed maximum age.
    #[error(
        "Signature age {age_seconds} > {max_age_seconds} seconds: the signed value expired, sign a new one"
    )]
    Expired {
        /// `now - timestamp`, in seconds.
        age_seconds: f64,
        /// The maximum age that was allowed, in seconds.
        max_age_seconds: f64,
    },

    /// A validly signed value has no valid base62 timestamp before its signature (for example it
    /// was signed by a plain `Signer` rather than a `TimestampSigner` with the same salt). Also
    /// returned by [`b62_decode`](crate::b62_decode) for invalid, empty or out-of-range input.
    #[error(
        "signed value has no valid base62 timestamp: it was not produced by a TimestampSigner \
         (a plain Signer with the same salt?), or its timestamp is out of range"
    )]
    MalformedTimestamp,

    /// The payload is not valid URL-safe unpadded base64, or legacy session data does not have
    /// the `B64(hexdigest ":" data)` layout.
    #[error(
        "signed payload is malformed: expected URL-safe base64 without padding \
         (or, for legacy session data, standard base64 of \"<hex digest>:<data>\")"
    )]
    MalformedPayload,

    /// The payload is marked as compressed (leading `.`) but is not a valid zlib stream.
    #[error(
        "signed payload is marked as zlib-compressed but does not decompress (corrupt or truncated stream)"
    )]
    Decompression,

    /// The compressed payload inflates to more than the configured limit.
    #[error(
        "decompressed payload exceeds the limit of {limit} bytes; raise \
         UnsignOptions::max_decompressed_size if values this large are legitimate"
    )]
    DecompressedTooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },

    /// The separator is empty or consists only of `A-z0-9-_=` (which could occur in signed data).
    #[error(
        "Unsafe Signer separator: {} (cannot be empty or consist of only A-z0-9-_=)",
        python_repr(.0)
    )]
    InvalidSeparator(String),

    /// The algorithm name is not one this crate implements.
    #[error(
        "{} is not an algorithm accepted by the hashlib module. Use one of: sha1, sha256, sha512",
        python_repr(.0)
    )]
    InvalidAlgorithm(String),
}

impl Error {
    /// True for the cases Django raises `BadSignature` (or its subclass `SignatureExpired`) for: a
    /// missing separator, a signature mismatch, an expired signature. Session decoding logs these
    /// as `Session data corrupted`; every other error means the signature was fine (or not
    /// reached) but the content was unusable.
    pub fn is_bad_signature(&self) -> bool {
        matches!(
            self,
            Error::MissingSeparator { .. } | Error::BadSignature | Error::Expired { .. }
        )
    }

    /// True only for [`Error::Expired`] (Django's `SignatureExpired`).
    pub fn is_expired(&self) -> bool {
        matches!(self, Error::Expired { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_signature_family_matches_django_exceptions() {
        assert!(Error::MissingSeparator { sep: ":".into() }.is_bad_signature());
        assert!(Error::BadSignature.is_bad_signature());
        let expired = Error::Expired {
            age_seconds: 11.0,
            max_age_seconds: 10.0,
        };
        assert!(expired.is_bad_signature());
        assert!(expired.is_expired());
        for structural in [
            Error::MalformedTimestamp,
            Error::MalformedPayload,
            Error::Decompression,
            Error::DecompressedTooLarge { limit: 1 },
            Error::InvalidSeparator("-".into()),
            Error::InvalidAlgorithm("md4".into()),
        ] {
            assert!(!structural.is_bad_signature(), "{structural:?}");
            assert!(!structural.is_expired(), "{structural:?}");
        }
    }

    #[test]
    fn missing_separator_message_names_the_separator_like_django() {
        let message = Error::MissingSeparator { sep: ":".into() }.to_string();
        assert!(message.starts_with("No \":\" found in value"), "{message}");
    }

    #[test]
    fn expired_message_reports_age_and_limit() {
        let message = Error::Expired {
            age_seconds: 11.5,
            max_age_seconds: 10.0,
        }
        .to_string();
        assert!(
            message.starts_with("Signature age 11.5 > 10 seconds"),
            "{message}"
        );
    }
}
