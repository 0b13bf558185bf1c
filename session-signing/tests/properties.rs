//! Property tests: round trips, tamper detection, and no panics on arbitrary input.

use proptest::prelude::*;
use session_signing::{
    Algorithm, SecretKey, Signer, TimestampSigner, UnsignOptions, b62_decode, b62_encode,
    b64_decode, b64_encode, legacy,
};

fn timestamp_signer() -> TimestampSigner {
    TimestampSigner::new(SecretKey::from("property-secret"))
        .with_salt("django.contrib.sessions.SessionStore")
        .with_fallback_keys([SecretKey::from("old-property-secret")])
}

/// Session-like bytes: either arbitrary bytes or repetitive text that actually compresses.
fn payloads() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        ("[a-z\":,{}0-9 ]{0,40}", 1usize..40).prop_map(|(s, n)| s.repeat(n).into_bytes()),
    ]
}

fn algorithms() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Sha1),
        Just(Algorithm::Sha256),
        Just(Algorithm::Sha512)
    ]
}

/// Replaces the character at `index` (modulo length) by a different one.
fn mutate(token: &str, index: usize, replacement: char) -> Option<String> {
    let chars: Vec<char> = token.chars().collect();
    if chars.is_empty() {
        return None;
    }
    let i = index % chars.len();
    let new = if chars[i] == replacement {
        if replacement == 'A' { 'B' } else { 'A' }
    } else {
        replacement
    };
    let mut out: String = chars[..i].iter().collect();
    out.push(new);
    out.extend(&chars[i + 1..]);
    Some(out)
}

proptest! {
    #[test]
    fn sign_unsign_round_trips(value in ".*", algorithm in algorithms(), salt in ".{0,20}") {
        let signer = Signer::new(SecretKey::from("k")).with_salt(salt).with_algorithm(algorithm);
        let signed = signer.sign(&value);
        prop_assert_eq!(signer.unsign(&signed).ok(), Some(value.as_str()));
    }

    #[test]
    fn timestamp_sign_unsign_round_trips(value in ".*", ts in any::<i64>()) {
        let signer = timestamp_signer();
        let signed = signer.sign_at(&value, ts);
        prop_assert_eq!(signer.unsign(&signed, None).ok(), Some(value.as_str()));
    }

    #[test]
    fn sign_object_round_trips(data in payloads(), compress in any::<bool>(), ts in 0i64..4_000_000_000) {
        let signer = timestamp_signer();
        let token = signer.sign_object_at(&data, compress, ts);
        if !compress {
            prop_assert!(!token.starts_with('.'));
        }
        let back = signer.unsign_object(&token, &UnsignOptions::default());
        prop_assert_eq!(back.ok(), Some(data));
    }

    #[test]
    fn fallback_key_tokens_round_trip(data in payloads(), compress in any::<bool>()) {
        let old = TimestampSigner::new(SecretKey::from("old-property-secret"))
            .with_salt("django.contrib.sessions.SessionStore");
        let token = old.sign_object(&data, compress);
        let back = timestamp_signer().unsign_object(&token, &UnsignOptions::default());
        prop_assert_eq!(back.ok(), Some(data));
    }

    #[test]
    fn changing_any_character_of_a_signed_object_is_rejected(
        data in payloads(),
        compress in any::<bool>(),
        index in any::<usize>(),
        replacement in prop_oneof![Just(':'), Just('.'), Just('-'), Just('_'), Just('A'), Just('0'), any::<char>()],
    ) {
        let signer = timestamp_signer();
        let token = signer.sign_object_at(&data, compress, 1_700_000_000);
        if let Some(tampered) = mutate(&token, index, replacement) {
            let result = signer.unsign_object(&tampered, &UnsignOptions::default());
            prop_assert!(result.is_err(), "{} accepted as {:?}", tampered, result);
        }
    }

    #[test]
    fn changing_any_character_of_a_signed_value_is_rejected(
        value in ".{0,64}",
        index in any::<usize>(),
        replacement in any::<char>(),
    ) {
        let signer = Signer::new(SecretKey::from("k")).with_legacy_sha1(true);
        let signed = signer.sign(&value);
        if let Some(tampered) = mutate(&signed, index, replacement) {
            prop_assert!(signer.unsign(&tampered).is_err(), "{} accepted", tampered);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(input in ".*") {
        let signer = timestamp_signer().with_legacy_sha1(true);
        let _ = signer.unsign(&input, Some(std::time::Duration::from_secs(10)));
        let _ = signer.unsign_object(&input, &UnsignOptions::default());
        let _ = signer.signer().unsign(&input);
        let _ = legacy::decode_session(&input, &SecretKey::from("k"), &[], legacy::SESSION_KEY_SALT);
        let _ = b62_decode(&input);
        let _ = b64_decode(&input);
    }

    #[test]
    fn token_shaped_input_never_panics(
        payload in "\\.?[A-Za-z0-9_-]{0,80}",
        ts in "-?[0-9A-Za-z]{0,14}",
        sig in "[A-Za-z0-9_-]{0,90}",
    ) {
        let input = format!("{payload}:{ts}:{sig}");
        let _ = timestamp_signer().unsign_object(&input, &UnsignOptions::default());
        let _ = b62_decode(&ts);
        let _ = b64_decode(&payload);
    }

    #[test]
    fn b62_round_trips(n in any::<i64>()) {
        prop_assert_eq!(b62_decode(&b62_encode(n)).ok(), Some(n));
    }

    #[test]
    fn b64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let encoded = b64_encode(&data);
        prop_assert!(!encoded.contains('='));
        prop_assert_eq!(b64_decode(&encoded).ok(), Some(data));
    }

    #[test]
    fn legacy_session_round_trips(data in payloads()) {
        let secret = SecretKey::from("k");
        let encoded = legacy::encode_session(&data, &secret, legacy::SESSION_KEY_SALT);
        let decoded = legacy::decode_session(&encoded, &secret, &[], legacy::SESSION_KEY_SALT);
        prop_assert_eq!(decoded.ok(), Some(data));
    }
}
