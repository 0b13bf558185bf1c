//! `sessions decode` (through the library layer, with Django's clock for each case) gives real
//! Django's verdict on every token of the shared fixture (`fixtures/django/signing-vectors.json`)
//! that a session decoder can meet: the options map to the right salt, serializer, keys and max
//! age, and the output is Django's JSON rendering of the dict Django decoded.
//!
//! The command reads the pre-3.1 session format and SHA-1 signatures as Django 3.1/3.2 did, so
//! for `legacy_session` and `sha1_dumps` cases the verdict to match is Django 3.2's (default
//! settings) where it accepted the value, and the current one where it did not.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::Value as Json;
use session_cli::{Cli, DecodeFailure, Error, run};
use session_core::serializer::json;

const FIXTURE: &str = include_str!("../../fixtures/django/signing-vectors.json");

const SESSION_SALT: &str = "django.contrib.sessions.SessionStore";
const COOKIE_SALT: &str = "django.contrib.sessions.backends.signed_cookies";

/// Tokens Django accepts that we refuse on purpose, with the class we report. Django never writes
/// any of them; only a holder of the secret key could.
const DEVIATIONS: &[(&str, DecodeFailure)] = &[
    // Strict URL-safe base64 (Python skips foreign characters and accepts '+', '/', padding).
    (
        "decode-edge-base64-non-alphabet-chars",
        DecodeFailure::Malformed,
    ),
    (
        "decode-edge-base64-standard-alphabet",
        DecodeFailure::Malformed,
    ),
    ("decode-edge-base64-with-padding", DecodeFailure::Malformed),
    // Decompression is bounded (4 MiB); Django inflates without limit.
    ("decode-edge-decompression-8-mib", DecodeFailure::Malformed),
    // A Rust string cannot hold a lone surrogate.
    (
        "decode-edge-lone-surrogate-escape",
        DecodeFailure::Malformed,
    ),
    // msgpack `bin` is Python `bytes`, which a session value cannot be.
    ("decode-edge-msgpack-bin-value", DecodeFailure::Malformed),
    // A pickled datetime is a global: the safe pickle reader never resolves one.
    ("pickle-global-datetime-pickle2", DecodeFailure::Malformed),
    ("pickle-global-datetime-pickle3", DecodeFailure::Malformed),
    ("pickle-global-datetime-pickle4", DecodeFailure::Malformed),
    ("pickle-global-datetime-pickle5", DecodeFailure::Malformed),
];

fn text<'a>(value: &'a Json, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {value}"))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A key as command-line text, if its bytes are UTF-8 (a bytes key like `b"\xe7"` cannot be
/// passed on the command line).
fn key_text(hex_key: &Json) -> Option<String> {
    String::from_utf8(hex(hex_key.as_str().unwrap())).ok()
}

fn instant(seconds: f64) -> SystemTime {
    if seconds >= 0.0 {
        UNIX_EPOCH + Duration::from_secs_f64(seconds)
    } else {
        UNIX_EPOCH - Duration::from_secs_f64(-seconds)
    }
}

/// Django's JSON text rendered as our command prints it.
fn rendered(python_json: &str) -> String {
    json::to_string(&json::from_str(python_json).unwrap()).unwrap()
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Session(String),
    Fails(DecodeFailure),
}

fn failure_class(error: &str) -> DecodeFailure {
    match error {
        "bad_signature" => DecodeFailure::BadSignature,
        "expired" => DecodeFailure::Expired,
        "malformed" => DecodeFailure::Malformed,
        "not_a_dict" => DecodeFailure::NotADict,
        other => panic!("unknown verdict {other}"),
    }
}

/// What `SessionStore.decode`/`signing.loads` returned, as our verdict: a dict is a session,
/// anything else is "not a dict".
fn accepted(data_json: &str) -> Verdict {
    if data_json.trim_start().starts_with('{') {
        Verdict::Session(rendered(data_json))
    } else {
        Verdict::Fails(DecodeFailure::NotADict)
    }
}

fn django32_defaults(case: &Json) -> &Json {
    case["other_verdicts"]
        .as_array()
        .and_then(|verdicts| {
            verdicts.iter().find(|v| {
                text(v, "django").starts_with("3.2") && text(v, "settings").starts_with("defaults")
            })
        })
        .unwrap_or_else(|| panic!("no Django 3.2 verdict in {}", case["name"]))
}

fn expected(case: &Json) -> Verdict {
    let name = text(case, "name");
    if let Some((_, ours)) = DEVIATIONS.iter().find(|(n, _)| *n == name) {
        return Verdict::Fails(*ours);
    }
    match text(case, "kind") {
        // 3.2 read a legacy value when its hash verified (`serialized_hex` is then known).
        "legacy_session" if case["serialized_hex"].is_string() => {
            return accepted(text(django32_defaults(case), "session_decode_json"));
        }
        "sha1_dumps" if django32_defaults(case)["ok"] == true => {
            return accepted(text(django32_defaults(case), "data_json"));
        }
        _ => {}
    }
    let expect = &case["expect"];
    if expect["ok"] == true {
        accepted(text(expect, "data_json"))
    } else {
        Verdict::Fails(failure_class(text(expect, "error")))
    }
}

/// The `sessions decode` command line for a case, or `None` when its keys are not text.
fn command_line(case: &Json) -> Option<Vec<String>> {
    let verify = &case["verify"];
    let mut args: Vec<String> = vec![
        "sessions".into(),
        "decode".into(),
        "--secret-key".into(),
        key_text(&verify["secret_hex"])?,
    ];
    for key in verify["fallback_keys_hex"].as_array().unwrap() {
        args.extend(["--fallback-key".into(), key_text(key)?]);
    }
    match text(verify, "salt") {
        SESSION_SALT => args.extend(["--backend".into(), "db".into()]),
        COOKIE_SALT => args.extend(["--backend".into(), "cookie".into()]),
        other => args.extend(["--salt".into(), other.into()]),
    }
    let serializer = text(case, "serializer");
    let serializer = if serializer.starts_with("pickle") {
        "pickle"
    } else {
        serializer
    };
    args.extend(["--serializer".into(), serializer.into()]);
    if let Some(max_age) = verify["max_age"].as_f64() {
        args.extend(["--max-age".into(), max_age.to_string()]);
    }
    args.push(text(case, "token").into());
    Some(args)
}

fn ours(case: &Json, args: &[String]) -> Verdict {
    let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
    let now = instant(case["verify"]["now"].as_f64().unwrap());
    match run(&cli, std::io::empty(), now) {
        Ok(line) => Verdict::Session(line),
        Err(error @ Error::Decode { .. }) => Verdict::Fails(error.decode_failure().unwrap()),
        Err(other) => panic!("{}: not a decode failure: {other}", case["name"]),
    }
}

#[test]
fn decode_gives_djangos_verdict_on_every_fixture_token() {
    let fixture: Json = serde_json::from_str(FIXTURE).unwrap();
    let (mut checked, mut bytes_keys) = (0, 0);
    let mut mismatches = Vec::new();
    for case in fixture["cases"].as_array().unwrap() {
        if case["serializer"].is_null() || !case["token"].is_string() {
            continue; // plain Signer vectors and values Django could not encode
        }
        let Some(args) = command_line(case) else {
            bytes_keys += 1;
            continue;
        };
        let (want, got) = (expected(case), ours(case, &args));
        if want != got {
            mismatches.push(format!(
                "{}: Django {want:?}, we {got:?}",
                text(case, "name")
            ));
        }
        checked += 1;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(checked > 550, "only {checked} cases checked");
    assert!(bytes_keys < 40, "{bytes_keys} cases skipped for bytes keys");
}

#[test]
fn every_failure_class_and_option_is_exercised_by_the_fixture() {
    // Guards the test above against a fixture that silently stopped covering a path.
    let fixture: Json = serde_json::from_str(FIXTURE).unwrap();
    let cases: Vec<&Json> = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["serializer"].is_null() && c["token"].is_string())
        .collect();
    let count = |f: &dyn Fn(&Json) -> bool| cases.iter().filter(|c| f(c)).count();
    for class in [
        DecodeFailure::BadSignature,
        DecodeFailure::Expired,
        DecodeFailure::Malformed,
        DecodeFailure::NotADict,
    ] {
        assert!(
            count(&|c| expected(c) == Verdict::Fails(class)) >= 4,
            "{class}"
        );
    }
    assert!(count(&|c| matches!(expected(c), Verdict::Session(_))) > 300);
    assert!(
        count(&|c| c["kind"] == "legacy_session" && matches!(expected(c), Verdict::Session(_)))
            >= 8
    );
    assert!(
        count(&|c| c["kind"] == "sha1_dumps" && matches!(expected(c), Verdict::Session(_))) >= 8
    );
    assert!(
        count(&|c| !c["verify"]["fallback_keys_hex"]
            .as_array()
            .unwrap()
            .is_empty())
            >= 5
    );
    assert!(count(&|c| c["verify"]["max_age"].is_number()) >= 10);
    for salt in [SESSION_SALT, COOKIE_SALT, "django.core.signing"] {
        assert!(count(&|c| c["verify"]["salt"] == salt) >= 20, "{salt}");
    }
}
