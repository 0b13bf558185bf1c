//! Port of Django's `tests/signing/tests.py` (TestSigner, TestTimestampSigner). TestBase62 and
//! `utils_tests/test_crypto.py` are ported as unit tests next to the code they test
//! (`encoding.rs`, `algorithm.rs`).
//!
//! Django serializes Python objects itself; here the serializer bytes are written out as
//! Django's JSONSerializer produces them.

use std::time::{Duration, UNIX_EPOCH};

use session_signing::{
    Algorithm, Error, SecretKey, Signer, TimestampSigner, UnsignOptions, base64_hmac, dumps, loads,
};

fn key(k: &str) -> SecretKey {
    SecretKey::from(k)
}

/// The four tampering transforms Django's tests apply.
fn tampered(signed: &str) -> Vec<String> {
    vec![
        signed.to_uppercase(),
        format!("{signed}a"),
        format!("a{}", &signed[1..]),
        signed.replace(':', ""),
    ]
}

// `["a","list"]`, `"a string \u2019"`, `{"a":"dictionary"}` as Django's JSONSerializer writes them.
const OBJECTS: &[&[u8]] = &[
    br#"["a","list"]"#,
    br#""a string \u2019""#,
    br#"{"a":"dictionary"}"#,
];

#[test]
fn test_signature() {
    let signer = Signer::new(key("predictable-secret"));
    let signer2 = Signer::new(key("predictable-secret2"));
    for s in [&b"hello"[..], b"3098247:529:087:", "\u{2019}".as_bytes()] {
        let salt = format!("{}signer", signer.salt());
        assert_eq!(
            signer.signature(s),
            base64_hmac(
                salt.as_bytes(),
                s,
                b"predictable-secret",
                signer.algorithm()
            )
        );
        assert_ne!(signer.signature(s), signer2.signature(s));
    }
}

#[test]
fn test_signature_with_salt() {
    let signer = Signer::new(key("predictable-secret")).with_salt("extra-salt");
    assert_eq!(
        signer.signature(b"hello"),
        base64_hmac(
            b"extra-saltsigner",
            b"hello",
            b"predictable-secret",
            signer.algorithm()
        )
    );
    assert_ne!(
        Signer::new(key("predictable-secret"))
            .with_salt("one")
            .signature(b"hello"),
        Signer::new(key("predictable-secret"))
            .with_salt("two")
            .signature(b"hello"),
    );
}

#[test]
fn test_custom_algorithm() {
    let signer = Signer::new(key("predictable-secret")).with_algorithm(Algorithm::Sha512);
    assert_eq!(
        signer.signature(b"hello"),
        "Usf3uVQOZ9m6uPfVonKR-EBXjPe7bjMbp3_Fq8MfsptgkkM1ojidN0BxYaT5HAEN1VzO9_jVu7R-VkqknHYNvw"
    );
}

// Django fails at sign() time; with a typed algorithm the name is rejected when it is parsed
// (e.g. from configuration), with Django's message.
#[test]
fn test_invalid_algorithm() {
    let err = "whatever"
        .parse::<Algorithm>()
        .expect_err("unknown algorithm");
    assert!(matches!(&err, Error::InvalidAlgorithm(name) if name == "whatever"));
    assert!(
        err.to_string()
            .contains("'whatever' is not an algorithm accepted by the hashlib module."),
        "{err}"
    );
}

#[test]
fn test_sign_unsign() {
    let signer = Signer::new(key("predictable-secret"));
    for example in [
        "q;wjmbk;wkmb",
        "3098247529087",
        "3098247:529:087:",
        "jkw osanteuh ,rcuh nthu aou oauh ,ud du",
        "\u{2019}",
    ] {
        let signed = signer.sign(example);
        assert_ne!(example, signed);
        assert_eq!(signer.unsign(&signed).ok(), Some(example));
    }
}

// Django signs str(value); the Rust API takes the rendered string.
#[test]
fn test_sign_unsign_non_string() {
    let signer = Signer::new(key("predictable-secret"));
    for value in ["123", "1.23", "True", "2024-05-01"] {
        let signed = signer.sign(value);
        assert_ne!(signed, value);
        assert_eq!(signer.unsign(&signed).ok(), Some(value));
    }
}

#[test]
fn test_unsign_detects_tampering() {
    let signer = Signer::new(key("predictable-secret"));
    let value = "Another string";
    let signed = signer.sign(value);
    assert_eq!(signer.unsign(&signed).ok(), Some(value));
    for transformed in tampered(&signed) {
        let result = signer.unsign(&transformed);
        assert!(
            result.as_ref().is_err_and(Error::is_bad_signature),
            "{transformed}: {result:?}"
        );
    }
}

#[test]
fn test_sign_unsign_object() {
    let signer = Signer::new(key("predictable-secret"));
    for &obj in OBJECTS {
        for compress in [false, true] {
            let signed = signer.sign_object(obj, compress);
            assert_ne!(obj, signed.as_bytes());
            let back =
                signer.unsign_object(&signed, session_signing::DEFAULT_MAX_DECOMPRESSED_SIZE);
            assert_eq!(back.ok().as_deref(), Some(obj));
        }
    }
}

#[test]
fn test_dumps_loads() {
    let secret = key("django_tests_secret_key");
    let options = UnsignOptions::default();
    for &obj in OBJECTS {
        for compress in [false, true] {
            let signed = dumps(obj, &secret, "django.core.signing", compress);
            assert_ne!(obj, signed.as_bytes());
            let back = loads(&signed, &secret, &[], "django.core.signing", &options);
            assert_eq!(back.ok().as_deref(), Some(obj));
        }
    }
}

#[test]
fn test_decode_detects_tampering() {
    let secret = key("django_tests_secret_key");
    let options = UnsignOptions::default();
    let value = br#"{"foo":"bar","baz":1}"#;
    let encoded = dumps(value, &secret, "django.core.signing", false);
    let back = loads(&encoded, &secret, &[], "django.core.signing", &options);
    assert_eq!(back.ok().as_deref(), Some(&value[..]));
    for transformed in tampered(&encoded) {
        let result = loads(&transformed, &secret, &[], "django.core.signing", &options);
        assert!(
            result.as_ref().is_err_and(Error::is_bad_signature),
            "{transformed}: {result:?}"
        );
    }
}

#[test]
fn test_works_with_non_ascii_keys() {
    let signer = Signer::new(SecretKey::from_bytes(b"\xe7"));
    assert_eq!(
        signer.sign("foo"),
        "foo:EE4qGC5MEKyQG5msxYA0sBohAxLC0BJf8uRhemh0BGU"
    );
}

#[test]
fn test_valid_sep() {
    for sep in ["/", "*sep*", ","] {
        let signer = Signer::new(key("predictable-secret"))
            .with_separator(sep)
            .expect("safe separator");
        assert_eq!(
            signer.sign("foo"),
            format!("foo{sep}jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0")
        );
    }
}

#[test]
fn test_invalid_sep() {
    for sep in ["", "-", "abc"] {
        let err = Signer::new(key("predictable-secret"))
            .with_separator(sep)
            .expect_err("unsafe separator");
        let expected = format!(
            "Unsafe Signer separator: '{sep}' (cannot be empty or consist of only A-z0-9-_=)"
        );
        assert_eq!(err.to_string(), expected);
        // The same rule applies to the timestamp signer.
        assert!(
            TimestampSigner::new(key("predictable-secret"))
                .with_separator(sep)
                .is_err()
        );
    }
}

#[test]
fn test_verify_with_non_default_key() {
    let old_signer = Signer::new(key("secret"));
    let new_signer =
        Signer::new(key("newsecret")).with_fallback_keys([key("othersecret"), key("secret")]);
    let signed = old_signer.sign("abc");
    assert_eq!(new_signer.unsign(&signed).ok(), Some("abc"));
}

#[test]
fn test_sign_unsign_multiple_keys() {
    let signer = Signer::new(key("secret")).with_fallback_keys([key("oldsecret")]);
    let signed = signer.sign("abc");
    assert_eq!(signer.unsign(&signed).ok(), Some("abc"));
}

// There are no settings here: "ignoring SECRET_KEY_FALLBACKS" means a signer built without
// fallback keys, and with_fallback_keys replaces rather than extends.
#[test]
fn test_sign_unsign_ignore_secret_key_fallbacks() {
    let signed = Signer::new(key("oldsecret")).sign("abc");
    let signer = Signer::new(key("secret"));
    assert!(matches!(signer.unsign(&signed), Err(Error::BadSignature)));
    let cleared = Signer::new(key("secret"))
        .with_fallback_keys([key("oldsecret")])
        .with_fallback_keys([]);
    assert!(matches!(cleared.unsign(&signed), Err(Error::BadSignature)));
}

#[test]
fn test_default_keys_verification() {
    let signed = Signer::new(key("oldsecret")).sign("abc");
    let signer = Signer::new(key("secret")).with_fallback_keys([key("oldsecret")]);
    assert_eq!(signer.unsign(&signed).ok(), Some("abc"));
}

#[test]
fn test_timestamp_signer() {
    let value = "hello";
    let signer = TimestampSigner::new(key("predictable-key"));
    let ts = signer.sign_at(value, 123_456_789);
    assert_ne!(ts, Signer::new(key("predictable-key")).sign(value));
    let frozen = UNIX_EPOCH + Duration::from_secs(123_456_789);
    assert_eq!(signer.unsign_at(&ts, None, frozen).ok(), Some(value));

    let later = UNIX_EPOCH + Duration::from_secs(123_456_800);
    assert_eq!(
        signer
            .unsign_at(&ts, Some(Duration::from_secs(12)), later)
            .ok(),
        Some(value)
    );
    // Django also accepts a timedelta; Duration is the only form here.
    assert_eq!(
        signer
            .unsign_at(&ts, Some(Duration::from_secs(11)), later)
            .ok(),
        Some(value)
    );
    let expired = signer.unsign_at(&ts, Some(Duration::from_secs(10)), later);
    assert!(
        expired.as_ref().is_err_and(Error::is_expired),
        "{expired:?}"
    );
    assert!(expired.as_ref().is_err_and(Error::is_bad_signature));
}
