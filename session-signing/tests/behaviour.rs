//! Behaviour pinned beyond Django's own tests: separators, timestamps, compression marker,
//! error classification, key handling and redaction.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use session_signing::{Error, SecretKey, Signer, TimestampSigner, UnsignOptions, b64_encode};

const T: i64 = 1_700_000_000;

fn at(seconds: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(seconds)
}

fn signer() -> TimestampSigner {
    TimestampSigner::new(SecretKey::from("behaviour-secret")).with_salt("behaviour")
}

#[test]
fn unsign_splits_at_the_last_separator() {
    let plain = Signer::new(SecretKey::from("k"));
    let signed = plain.sign("a:b:c");
    assert_eq!(plain.unsign(&signed).ok(), Some("a:b:c"));

    let timestamped = TimestampSigner::new(SecretKey::from("k"));
    let signed = timestamped.sign_at("a:b:c", T);
    assert_eq!(
        timestamped.unsign_at(&signed, None, at(T as f64)).ok(),
        Some("a:b:c")
    );
}

#[test]
fn multi_character_separator_round_trips() {
    let signer = signer().with_separator("*sep*").expect("safe separator");
    let signed = signer.sign_object_at(br#"{"a":1}"#, true, T);
    assert_eq!(signed.matches("*sep*").count(), 2, "{signed}");
    let back = signer.unsign_object(&signed, &UnsignOptions::default());
    assert_eq!(back.ok().as_deref(), Some(&br#"{"a":1}"#[..]));
}

#[test]
fn timestamp_signer_rejects_plain_signer_output_as_malformed_not_forged() {
    // Django raises ValueError here (no timestamp to split off), not BadSignature.
    let key = SecretKey::from("k");
    let plain = Signer::new(key.clone()).with_salt("shared");
    let timestamped = TimestampSigner::new(key).with_salt("shared");
    let signed = plain.sign("no-timestamp");
    let result = timestamped.unsign(&signed, None);
    assert!(
        matches!(&result, Err(e @ Error::MalformedTimestamp) if !e.is_bad_signature()),
        "{result:?}"
    );
}

#[test]
fn validly_signed_garbage_timestamp_is_malformed() {
    let key = SecretKey::from("k");
    let plain = Signer::new(key.clone()).with_salt("shared");
    let timestamped = TimestampSigner::new(key).with_salt("shared");
    for bad_ts in ["value:", "value:!!", "value:zzzzzzzzzzzzzzzzzz"] {
        let signed = plain.sign(bad_ts);
        let result = timestamped.unsign(&signed, None);
        assert!(
            matches!(result, Err(Error::MalformedTimestamp)),
            "{bad_ts}: {result:?}"
        );
    }
}

#[test]
fn age_is_compared_as_fractional_seconds_strictly_greater() {
    let signer = signer();
    let signed = signer.sign_at("v", T);
    let now = at(T as f64 + 10.5);
    let max = |s: f64| Some(Duration::from_secs_f64(s));
    assert!(
        signer
            .unsign_at(&signed, max(10.0), now)
            .is_err_and(|e| e.is_expired())
    );
    assert_eq!(signer.unsign_at(&signed, max(10.5), now).ok(), Some("v"));
    assert_eq!(signer.unsign_at(&signed, max(10.6), now).ok(), Some("v"));
}

#[test]
fn future_timestamps_pass_any_max_age() {
    let signer = signer();
    let signed = signer.sign_at("v", T + 3600);
    let result = signer.unsign_at(&signed, Some(Duration::ZERO), at(T as f64));
    assert_eq!(result.ok(), Some("v"));
}

#[test]
fn no_max_age_accepts_any_age() {
    let signer = signer();
    let signed = signer.sign_at("v", 0);
    assert_eq!(
        signer.unsign_at(&signed, None, at(T as f64)).ok(),
        Some("v")
    );
}

#[test]
fn unsign_object_measures_age_against_now_by_default() {
    let signer = signer();
    let fresh = signer.sign_object(b"{}", true);
    let stale = signer.sign_object_at(b"{}", true, T);
    let options = UnsignOptions {
        max_age: Some(Duration::from_secs(60)),
        ..UnsignOptions::default()
    };
    assert_eq!(
        signer.unsign_object(&fresh, &options).ok().as_deref(),
        Some(&b"{}"[..])
    );
    assert!(
        signer
            .unsign_object(&stale, &options)
            .is_err_and(|e| e.is_expired())
    );
    // An explicit `now` replaces the clock.
    let frozen = UnsignOptions {
        now: Some(at(T as f64 + 60.0)),
        ..options
    };
    assert_eq!(
        signer.unsign_object(&stale, &frozen).ok().as_deref(),
        Some(&b"{}"[..])
    );
}

#[test]
fn compression_kicks_in_exactly_where_django_compresses() {
    let signer = signer();
    // Spec §1.9: 12 and 13 bytes of JSON stay plain, 14 compress to 12.
    for (json, compressed) in [
        (&br#""aaaaaaaaaa""#[..], false),
        (br#""aaaaaaaaaaa""#, false),
        (br#""aaaaaaaaaaaa""#, true),
        (b"{}", false),
    ] {
        let token = signer.sign_object_at(json, true, T);
        assert_eq!(token.starts_with('.'), compressed, "{token}");
        let back = signer.unsign_object(&token, &UnsignOptions::default());
        assert_eq!(back.ok().as_deref(), Some(json));
    }
    // Without compress=true nothing is ever compressed.
    assert!(
        !signer
            .sign_object_at(&[b'a'; 1000], false, T)
            .starts_with('.')
    );
}

#[test]
fn the_compression_marker_is_covered_by_the_signature() {
    let signer = signer();
    let options = UnsignOptions::default();
    let compressed = signer.sign_object_at(&[b'a'; 1000], true, T);
    assert!(compressed.starts_with('.'));
    let stripped = signer.unsign_object(&compressed[1..], &options);
    assert!(matches!(stripped, Err(Error::BadSignature)), "{stripped:?}");
    let plain = signer.sign_object_at(b"{}", true, T);
    let dotted = signer.unsign_object(&format!(".{plain}"), &options);
    assert!(matches!(dotted, Err(Error::BadSignature)), "{dotted:?}");
}

#[test]
fn validly_signed_corrupt_zlib_is_a_decompression_error() {
    let signer = signer();
    let payload = format!(".{}", b64_encode(b"definitely not zlib"));
    let token = signer.sign_at(&payload, T);
    let result = signer.unsign_object(&token, &UnsignOptions::default());
    assert!(
        matches!(&result, Err(e @ Error::Decompression) if !e.is_bad_signature()),
        "{result:?}"
    );
}

#[test]
fn validly_signed_bad_base64_is_a_malformed_payload() {
    let signer = signer();
    for payload in ["not base64!", ".not base64!", "ImhlbGxvIg=="] {
        let token = signer.sign_at(payload, T);
        let result = signer.unsign_object(&token, &UnsignOptions::default());
        assert!(
            matches!(result, Err(Error::MalformedPayload)),
            "{payload}: {result:?}"
        );
    }
}

#[test]
fn empty_salt_means_the_default_salt_as_in_django() {
    let key = SecretKey::from("k");
    assert_eq!(
        Signer::new(key.clone()).with_salt("").salt(),
        "django.core.signing.Signer"
    );
    assert_eq!(
        TimestampSigner::new(key.clone())
            .with_salt("")
            .signer()
            .salt(),
        "django.core.signing.TimestampSigner"
    );
    assert_eq!(
        Signer::new(key.clone()).with_salt("").sign("x"),
        Signer::new(key).sign("x")
    );
}

#[test]
fn defaults_match_django() {
    let signer = Signer::new(SecretKey::from("k"));
    assert_eq!(signer.salt(), "django.core.signing.Signer");
    assert_eq!(signer.separator(), ":");
    assert_eq!(signer.algorithm(), session_signing::Algorithm::Sha256);
    assert!(!signer.accepts_legacy_sha1());
    let ts = TimestampSigner::new(SecretKey::from("k"));
    assert_eq!(ts.signer().salt(), "django.core.signing.TimestampSigner");
    let options = UnsignOptions::default();
    assert_eq!(options.max_age, None);
    assert_eq!(options.now, None);
    assert_eq!(options.max_decompressed_size, 4 * 1024 * 1024);
}

#[test]
fn signing_always_uses_the_primary_key() {
    let primary = Signer::new(SecretKey::from("new"));
    let rotated = Signer::new(SecretKey::from("new")).with_fallback_keys([SecretKey::from("old")]);
    assert_eq!(primary.sign("x"), rotated.sign("x"));
}

#[test]
fn salts_separate_namespaces() {
    let key = SecretKey::from("k");
    let a = TimestampSigner::new(key.clone()).with_salt("django.contrib.sessions.SessionStore");
    let b = TimestampSigner::new(key).with_salt("django.contrib.sessions.backends.signed_cookies");
    let token = a.sign_object(b"{}", true);
    assert!(matches!(
        b.unsign_object(&token, &UnsignOptions::default()),
        Err(Error::BadSignature)
    ));
}

#[test]
fn signatures_of_the_wrong_length_are_rejected() {
    let signer = Signer::new(SecretKey::from("k"));
    let signed = signer.sign("v");
    let short = &signed[..signed.len() - 1];
    assert!(matches!(signer.unsign(short), Err(Error::BadSignature)));
    assert!(matches!(signer.unsign("v:"), Err(Error::BadSignature)));
    assert!(matches!(
        signer.unsign("no separator"),
        Err(Error::MissingSeparator { .. })
    ));
    assert!(matches!(
        signer.unsign(""),
        Err(Error::MissingSeparator { .. })
    ));
}

#[test]
fn signers_never_print_their_secrets() {
    let signer = TimestampSigner::new(SecretKey::from("primary-secret-value"))
        .with_fallback_keys([
            SecretKey::from("fallback-secret-one"),
            SecretKey::from_bytes(b"fallback-secret-two"),
        ])
        .with_salt("visible-salt");
    let plain = signer.signer().clone();
    for rendered in [
        format!("{signer:?}"),
        format!("{signer:#?}"),
        format!("{plain:?}"),
        format!("{plain:#?}"),
    ] {
        for secret in [
            "primary-secret-value",
            "fallback-secret-one",
            "fallback-secret-two",
        ] {
            assert!(!rendered.contains(secret), "{rendered}");
        }
        assert!(rendered.contains("<redacted>"), "{rendered}");
        assert!(rendered.contains("visible-salt"), "{rendered}");
    }
}

#[test]
fn errors_never_echo_secrets_or_signatures() {
    let signer = Signer::new(SecretKey::from("primary-secret-value"));
    let good = signer.sign("v");
    let forged = format!("{}X", &good[..good.len() - 1]);
    let err = signer.unsign(&forged).expect_err("forged");
    let rendered = format!("{err} {err:?}");
    assert!(!rendered.contains("primary-secret-value"));
    assert!(!rendered.contains(&good[2..]), "{rendered}");
}

#[test]
fn clones_share_configuration() {
    let signer = signer().with_fallback_keys([SecretKey::from("old")]);
    let clone = signer.clone();
    assert_eq!(clone.sign_at("v", T), signer.sign_at("v", T));
}
