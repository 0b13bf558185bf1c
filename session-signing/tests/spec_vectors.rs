//! Every signing vector of `django-sessions-spec.md` (§1.7, §1.8, §1.10, §1.14, §2.6), each
//! produced by a real Django. Signing the same bytes at the same time must give the same token,
//! and the token must verify back to those bytes.

use std::time::{Duration, UNIX_EPOCH};

use session_signing::{
    Algorithm, Error, SecretKey, Signer, TimestampSigner, UnsignOptions, dumps, loads,
};

const TEST_SECRET: &str = "django_tests_secret_key";
const SESSION_SALT: &str = "django.contrib.sessions.SessionStore";
const COOKIE_SALT: &str = "django.contrib.sessions.backends.signed_cookies";
const T: i64 = 1_700_000_000;

fn session_signer(salt: &str) -> TimestampSigner {
    TimestampSigner::new(SecretKey::from(TEST_SECRET)).with_salt(salt)
}

fn assert_vector(signer: &TimestampSigner, json: &[u8], compress: bool, token: &str) {
    assert_eq!(
        signer.sign_object_at(json, compress, T),
        token,
        "signing {}",
        String::from_utf8_lossy(json)
    );
    let back = signer.unsign_object(token, &UnsignOptions::default());
    assert_eq!(back.ok().as_deref(), Some(json), "unsigning {token}");
}

// §1.7, first row.
#[test]
fn signer_signs_hello_with_sha256_by_default() {
    let signer = Signer::new(SecretKey::from("predictable-secret"));
    assert_eq!(
        signer.sign("hello"),
        "hello:T8oWtiMIRTzcoR3NRO-2PQNf5dTweZy0EL25Kt6lUo0"
    );
}

#[test]
fn signer_signs_hello_with_sha1() {
    let signer = Signer::new(SecretKey::from("predictable-secret")).with_algorithm(Algorithm::Sha1);
    assert_eq!(signer.sign("hello"), "hello:-e76rxAuvXG_P3pKzQ26zIqf5fY");
}

#[test]
fn signer_signs_hello_with_extra_salt() {
    let signer = Signer::new(SecretKey::from("predictable-secret")).with_salt("extra-salt");
    assert_eq!(
        signer.sign("hello"),
        "hello:g8YZrsJ1xXg4hGFgU2uc4ff9ZZRKt3ReprMkjND8TfM"
    );
}

#[test]
fn signer_signature_with_sha512() {
    let signer =
        Signer::new(SecretKey::from("predictable-secret")).with_algorithm(Algorithm::Sha512);
    assert_eq!(
        signer.signature(b"hello"),
        "Usf3uVQOZ9m6uPfVonKR-EBXjPe7bjMbp3_Fq8MfsptgkkM1ojidN0BxYaT5HAEN1VzO9_jVu7R-VkqknHYNvw"
    );
}

#[test]
fn signer_with_binary_key() {
    let signer = Signer::new(SecretKey::from_bytes(b"\xe7"));
    assert_eq!(
        signer.sign("foo"),
        "foo:EE4qGC5MEKyQG5msxYA0sBohAxLC0BJf8uRhemh0BGU"
    );
}

#[test]
fn signer_with_custom_separators() {
    for sep in ["/", "*sep*", ","] {
        let signer = Signer::new(SecretKey::from("predictable-secret"))
            .with_separator(sep)
            .expect("separator is safe");
        let signed = signer.sign("foo");
        assert_eq!(
            signed,
            format!("foo{sep}jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0")
        );
        assert_eq!(signer.unsign(&signed).ok(), Some("foo"));
    }
}

#[test]
fn signer_rejects_unsafe_separators() {
    for sep in ["", "-", "abc"] {
        let result = Signer::new(SecretKey::from("predictable-secret")).with_separator(sep);
        assert!(
            matches!(&result, Err(Error::InvalidSeparator(s)) if s == sep),
            "{sep:?}: {result:?}"
        );
    }
}

// §1.8.
#[test]
fn timestamp_signer_vector_and_max_age_boundaries() {
    let signer = TimestampSigner::new(SecretKey::from("predictable-key"));
    let signed = signer.sign_at("hello", 123_456_789);
    assert_eq!(
        signed,
        "hello:8M0kX:0pJB1_TN9Bno2aK29thnZKKHn76ngzcQVnIrp_DNs5M"
    );
    let now = UNIX_EPOCH + Duration::from_secs(123_456_800); // age 11 s
    let unsign = |max_age: u64| signer.unsign_at(&signed, Some(Duration::from_secs(max_age)), now);
    assert_eq!(unsign(12).ok(), Some("hello"));
    assert_eq!(unsign(11).ok(), Some("hello"), "age == max_age passes");
    assert!(matches!(
        unsign(10),
        Err(Error::Expired { age_seconds, max_age_seconds })
            if age_seconds == 11.0 && max_age_seconds == 10.0
    ));
}

// §1.10.
#[test]
fn dumps_hello_at_fixed_time() {
    let key = SecretKey::from("predictable-key");
    let signer = TimestampSigner::new(key.clone()).with_salt("django.core.signing");
    let token = "ImhlbGxvIg:1r31eq:iB_FpYHUG9eJ-iPYIwHiNARN2pxC5rKvFntNpY-y7zg";
    assert_eq!(signer.sign_object_at(b"\"hello\"", false, T), token);
    let back = loads(
        token,
        &key,
        &[],
        "django.core.signing",
        &UnsignOptions::default(),
    );
    assert_eq!(back.ok().as_deref(), Some(&b"\"hello\""[..]));
    // dumps() signs with the current time: same payload, valid token.
    let fresh = dumps(b"\"hello\"", &key, "django.core.signing", true);
    assert!(fresh.starts_with("ImhlbGxvIg:"), "{fresh}");
}

// §1.14, session_data salt.
#[test]
fn session_data_vectors() {
    let signer = session_signer(SESSION_SALT);
    let rows: &[(&[u8], &str)] = &[
        (
            br#"{"a test key":"a test value"}"#,
            "eyJhIHRlc3Qga2V5IjoiYSB0ZXN0IHZhbHVlIn0:1r31eq:z3T5kuYwaLspnAAUpfRWpbinC-rn6c6P1Qf9PsCyZ2s",
        ),
        (
            b"{}",
            "e30:1r31eq:4jUc7d6K4SjljzmCBMRybFprOH2S1lYgEeb3CCv8FJw",
        ),
        (
            br#"{"a":1}"#,
            "eyJhIjoxfQ:1r31eq:NfAtvWseBBfnU2u2rC5Yib1Iv7dNauuwbmN0MvCBGmI",
        ),
        (
            br#"{"a":1,"_session_expiry":300}"#,
            "eyJhIjoxLCJfc2Vzc2lvbl9leHBpcnkiOjMwMH0:1r31eq:aLClNFASpo6awdor8BwDPnO1GPfJxWZ6i7jXHXlQJ7Q",
        ),
        (
            br#"{"foo":"bar","_session_expiry":"2023-11-14T23:13:20.123456+00:00"}"#,
            "eyJmb28iOiJiYXIiLCJfc2Vzc2lvbl9leHBpcnkiOiIyMDIzLTExLTE0VDIzOjEzOjIwLjEyMzQ1NiswMDowMCJ9:1r31eq:CmB8eK6D-oXresiRvYU9MFXenoBA8BYBk4y-vjjO8Yw",
        ),
        (
            br#"{"name":"Zo\u00eb \u2019\ud83d\ude00"}"#,
            "eyJuYW1lIjoiWm9cdTAwZWIgXHUyMDE5XHVkODNkXHVkZTAwIn0:1r31eq:pIn-17th1T2uQljkORrnOgR0-Fhlrn8nmWwy96PKUC0",
        ),
        (
            br#"{"cart":[1,2.5,null,true,{"k":"v"}],"n":-3}"#,
            "eyJjYXJ0IjpbMSwyLjUsbnVsbCx0cnVlLHsiayI6InYifV0sIm4iOi0zfQ:1r31eq:DCyWpamDQceOfiT4vMMYfqD4ngWKx4F56X4BcZFvOjk",
        ),
    ];
    for &(json, token) in rows {
        assert_vector(&signer, json, true, token);
    }
}

#[test]
fn session_data_compressed_vectors() {
    let signer = session_signer(SESSION_SALT);
    assert_vector(
        &signer,
        br#"{"foo":"barbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbarbar","n":1}"#,
        true,
        ".eJyrVkrLz1eyUkpKLKIRUtJRylOyMqwFAIwBKH4:1r31eq:XGHLKeQh_xerYK4-VxfOBd5IubtedzTiPAnjwD_BpaQ",
    );
    assert_vector(
        &signer,
        br#"{"k":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        true,
        ".eJyrVspWslKqGCZAqRYAxxtf5g:1r31eq:1sOElJqC7NOF6StM42_iRUwt_LrHDyNM__u_nomVwY0",
    );
}

#[test]
fn session_data_signed_with_old_secret_verifies_only_through_fallback_keys() {
    let token = "eyJhIjoxfQ:1r31eq:7J3scDv1MGVjVPou5Ii8M_alAkty62DUQkj_3VMtbCE";
    let json = br#"{"a":1}"#;
    let old = TimestampSigner::new(SecretKey::from("oldsecret")).with_salt(SESSION_SALT);
    assert_eq!(old.sign_object_at(json, true, T), token);

    let current = session_signer(SESSION_SALT);
    let rejected = current.unsign_object(token, &UnsignOptions::default());
    assert!(matches!(rejected, Err(Error::BadSignature)), "{rejected:?}");

    let rotated = current.with_fallback_keys([SecretKey::from("oldsecret")]);
    let accepted = rotated.unsign_object(token, &UnsignOptions::default());
    assert_eq!(accepted.ok().as_deref(), Some(&json[..]));
    // loads() takes fallback keys the same way.
    let via_loads = loads(
        token,
        &SecretKey::from(TEST_SECRET),
        &[SecretKey::from("oldsecret")],
        SESSION_SALT,
        &UnsignOptions::default(),
    );
    assert_eq!(via_loads.ok().as_deref(), Some(&json[..]));
}

// §1.14, signed-cookie salt.
#[test]
fn signed_cookie_vectors() {
    let signer = session_signer(COOKIE_SALT);
    let rows: &[(&[u8], &str)] = &[
        (
            br#"{"hello":"world"}"#,
            "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc",
        ),
        (
            br#"{"foo":"bar"}"#,
            "eyJmb28iOiJiYXIifQ:1r31eq:BVPqEm7FPXEZeY0XPm1_fVWxdO70LXoaVIrshoRMHGE",
        ),
        (b"{}", "e30:1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY"),
        (
            br#"{"_auth_user_id":"1","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
            ".eJyrVopPLC3JiC8tTi2Kz0xRslIyVNJBFktKTM5OzQNJpGQl5qXn6yXn55UUZSbpgZToQWWL9XzzU1JznKBqUQzISCzOAOo2oBAo1QIAIvYyTQ:1r31eq:4kw7q5Xnexkcbd8hGc-c3EWSvfGuBKo3azUwBNgAUvY",
        ),
    ];
    for &(json, token) in rows {
        assert_vector(&signer, json, true, token);
    }
}

#[test]
fn dumps_list_range_compressed_and_not() {
    let signer =
        TimestampSigner::new(SecretKey::from("predictable-key")).with_salt("django.core.signing");
    let json = b"[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]";
    assert_vector(
        &signer,
        json,
        true,
        ".eJwFwcERACAIwLCF-rCiILN47r-GyZVJsNgkxaFxoDgxcOHGxMKD_T7vhAml:1r31eq:8S7cLAflfWy4_rSNobKgQqydaRpKkedGQDnrCjy1p7s",
    );
    assert_vector(
        &signer,
        json,
        false,
        "WzEsMiwzLDQsNSw2LDcsOCw5LDEwLDExLDEyLDEzLDE0LDE1LDE2LDE3LDE4LDE5XQ:1r31eq:k4c831RPIGHUTSDOtW5Qceu3ICkQiuvr9zzuoBctMPQ",
    );
}

#[test]
fn pre_31_sha1_signed_cookie_is_accepted_only_with_legacy_sha1() {
    let token = "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:8zKCCcv9T6V8JWDuDS7BOYcgE6g";
    let json = br#"{"hello":"world"}"#;
    let options = UnsignOptions::default();

    let sha1_writer = session_signer(COOKIE_SALT).with_algorithm(Algorithm::Sha1);
    assert_eq!(sha1_writer.sign_object_at(json, true, T), token);

    let modern = session_signer(COOKIE_SALT);
    assert!(matches!(
        modern.unsign_object(token, &options),
        Err(Error::BadSignature)
    ));
    let transitional = modern.with_legacy_sha1(true);
    assert_eq!(
        transitional.unsign_object(token, &options).ok().as_deref(),
        Some(&json[..])
    );
    // Signing still uses SHA-256.
    assert_eq!(
        transitional.sign_object_at(json, true, T),
        "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc"
    );
}

#[test]
fn legacy_sha1_signatures_are_also_tried_under_fallback_keys() {
    let json = br#"{"hello":"world"}"#;
    let old_sha1 = TimestampSigner::new(SecretKey::from("oldsecret"))
        .with_salt(COOKIE_SALT)
        .with_algorithm(Algorithm::Sha1);
    let token = old_sha1.sign_object_at(json, true, T);
    let options = UnsignOptions::default();
    let rotated = session_signer(COOKIE_SALT).with_fallback_keys([SecretKey::from("oldsecret")]);
    assert!(matches!(
        rotated.unsign_object(&token, &options),
        Err(Error::BadSignature)
    ));
    let rotated = rotated.with_legacy_sha1(true);
    assert_eq!(
        rotated.unsign_object(&token, &options).ok().as_deref(),
        Some(&json[..])
    );
}

// §2.6: test_decode_failure_logged_to_security: both inputs are bad signatures.
#[test]
fn decode_failure_inputs_are_bad_signatures() {
    let signer = session_signer(SESSION_SALT);
    let options = UnsignOptions::default();
    let no_separator = signer.unsign_object("Zmxhc2tkajphbGtkamY=", &options);
    assert!(
        matches!(&no_separator, Err(e @ Error::MissingSeparator { sep }) if sep == ":" && e.is_bad_signature()),
        "{no_separator:?}"
    );
    let mismatch = signer.unsign_object("bad:encoded:value", &options);
    assert!(
        matches!(&mismatch, Err(e @ Error::BadSignature) if e.is_bad_signature()),
        "{mismatch:?}"
    );
}

// §2.6: test_decode_serializer_exception: a valid signature over a payload that is not
// base64 is a structural error, not a bad signature.
#[test]
fn decode_serializer_exception_is_not_a_bad_signature() {
    let signer = session_signer(SESSION_SALT);
    // Python's str(b"invalid data").
    let token = signer.sign("b'invalid data'");
    let result = signer.unsign_object(&token, &UnsignOptions::default());
    assert!(
        matches!(&result, Err(e @ Error::MalformedPayload) if !e.is_bad_signature()),
        "{result:?}"
    );
}
