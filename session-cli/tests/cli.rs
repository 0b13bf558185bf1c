//! End-to-end tests of the built `sessions` binary: every option, every failure path (exit
//! status, exactly one line on stderr, nothing on stdout), against tokens real Django made
//! (`fixtures/django/signing-vectors.json`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value as Json;

const FIXTURE: &str = include_str!("../../fixtures/django/signing-vectors.json");
const KEY: &str = "django_tests_secret_key";
const T0: &str = "1700000000";
/// `{"a test key": "a test value"}` as Django 5.2's db backend stores it at T0 (spec §1.14).
const A_TEST_KEY_TOKEN: &str =
    "eyJhIHRlc3Qga2V5IjoiYSB0ZXN0IHZhbHVlIn0:1r31eq:z3T5kuYwaLspnAAUpfRWpbinC-rn6c6P1Qf9PsCyZ2s";
const A_TEST_KEY_JSON: &str = r#"{"a test key": "a test value"}"#;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn sessions_with_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessions"));
    command
        .args(args)
        .env_remove("SECRET_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // A writer thread, so a child that stops reading early (input too large) cannot deadlock us;
    // the broken pipe it then meets is expected.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Output {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn sessions(args: &[&str], stdin: &[u8]) -> Output {
    sessions_with_env(args, stdin, &[])
}

/// Asserts success with exactly one line on stdout and nothing on stderr; returns the line.
#[track_caller]
fn success(out: &Output) -> String {
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (0, ""),
        "stdout: {}",
        out.stdout
    );
    let line = out
        .stdout
        .strip_suffix('\n')
        .expect("stdout ends with a newline");
    assert!(!line.contains('\n'), "more than one line: {:?}", out.stdout);
    line.to_owned()
}

/// Asserts the exit status, empty stdout and exactly one line on stderr containing `needle`.
#[track_caller]
fn failure(out: &Output, code: i32, needle: &str) {
    assert_eq!(out.code, code, "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "", "stdout must be empty on failure");
    let line = out
        .stderr
        .strip_suffix('\n')
        .expect("stderr ends with a newline");
    assert!(!line.contains('\n'), "more than one line: {:?}", out.stderr);
    assert!(line.starts_with("sessions: "), "{line}");
    assert!(
        line.contains(needle),
        "{line:?} does not mention {needle:?}"
    );
}

fn encode(extra: &[&str], stdin: &str) -> Output {
    let mut args = vec!["encode", "--secret-key", KEY, "--timestamp", T0];
    args.extend_from_slice(extra);
    sessions(&args, stdin.as_bytes())
}

fn decode(extra: &[&str], data: &str) -> Output {
    let mut args = vec!["decode", "--secret-key", KEY];
    args.extend_from_slice(extra);
    args.push(data);
    sessions(&args, b"")
}

fn case(name: &str) -> Json {
    let fixture: Json = serde_json::from_str(FIXTURE).unwrap();
    fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no fixture case {name}"))
        .clone()
}

fn field(case: &Json, name: &str) -> String {
    case[name].as_str().unwrap().to_owned()
}

// ----------------------------------------------------------------------------------------- help

#[test]
fn help_lists_the_commands_and_each_commands_help_explains_every_option() {
    let top = success_text(&sessions(&["--help"], b""));
    for word in ["decode", "encode", "Exit status"] {
        assert!(top.contains(word), "sessions --help lacks {word}");
    }
    let shared = [
        "--secret-key",
        "SECRET_KEY",
        "--fallback-key",
        "--backend",
        "db",
        "cache",
        "cached-db",
        "file",
        "cookie",
        "django.contrib.sessions.SessionStore",
        "django.contrib.sessions.backends.signed_cookies",
        "--salt",
        "--serializer",
        "json",
        "msgpack",
        "pickle",
    ];
    let decode_help = success_text(&sessions(&["decode", "--help"], b""));
    for word in shared
        .iter()
        .chain(&["--max-age", "DATA", "verbatim", "pre-Django-3.1", "SHA-1"])
    {
        assert!(decode_help.contains(word), "decode --help lacks {word}");
    }
    let encode_help = success_text(&sessions(&["encode", "--help"], b""));
    for word in shared
        .iter()
        .chain(&["--no-compress", "--timestamp", "stdin"])
    {
        assert!(encode_help.contains(word), "encode --help lacks {word}");
    }
}

fn success_text(out: &Output) -> String {
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.clone()
}

#[test]
fn help_never_shows_the_secret_key_from_the_environment() {
    let out = sessions_with_env(
        &["decode", "--help"],
        b"",
        &[("SECRET_KEY", "very-secret-value")],
    );
    assert_eq!(out.code, 0);
    assert!(!out.stdout.contains("very-secret-value"));
}

// --------------------------------------------------------------------------------------- encode

#[test]
fn encode_writes_djangos_exact_token_for_every_session_backend() {
    for backend in ["db", "cache", "cached-db", "file"] {
        let out = encode(&["--backend", backend], A_TEST_KEY_JSON);
        assert_eq!(success(&out), A_TEST_KEY_TOKEN, "{backend}");
    }
    // --backend db is the default.
    assert_eq!(success(&encode(&[], A_TEST_KEY_JSON)), A_TEST_KEY_TOKEN);
    let cookie = case("signed-cookie-json-auth-session");
    let out = encode(&["--backend", "cookie"], &field(&cookie, "data_json"));
    assert_eq!(success(&out), field(&cookie, "token"));
}

#[test]
fn encode_with_a_custom_salt_matches_signing_dumps() {
    let dumps = case("dumps-json-a-test-key-compressed");
    let out = encode(
        &["--salt", "django.core.signing"],
        &field(&dumps, "data_json"),
    );
    assert_eq!(success(&out), field(&dumps, "token"));
}

#[test]
fn encode_compresses_when_shorter_unless_told_not_to() {
    let compressible = case("session-encode-json-compressible-bar30");
    assert_eq!(compressible["compressed"], true);
    let data = field(&compressible, "data_json");
    let token = success(&encode(&[], &data));
    assert_eq!(token, field(&compressible, "token"));
    assert!(token.starts_with('.'));

    let plain = success(&encode(&["--no-compress"], &data));
    assert!(!plain.starts_with('.'));
    assert!(plain.len() > token.len());
    assert_eq!(success(&decode(&[], &plain)), success(&decode(&[], &token)));
    // Not compressed when that would not be shorter, even without --no-compress.
    assert!(!success(&encode(&[], A_TEST_KEY_JSON)).starts_with('.'));
}

#[test]
fn encode_deflates_fast_when_asked_and_decode_reads_it() {
    let compressible = case("session-encode-json-compressible-bar30");
    let data = field(&compressible, "data_json");
    let django = success(&encode(&[], &data));
    let fast = success(&encode(&["--deflate", "fast"], &data));
    // zlib's header for level 1 is 78 01 (".eA..."), for level 6 78 9c (".eJ...").
    assert!(fast.starts_with(".eA"), "{fast}");
    assert!(django.starts_with(".eJ"), "{django}");
    assert_eq!(success(&decode(&[], &fast)), success(&decode(&[], &django)));
    assert_eq!(success(&encode(&["--deflate", "django"], &data)), django);

    // SESSION_DEFLATE is the default; the option wins over it.
    let mut args = vec!["encode", "--secret-key", KEY, "--timestamp", T0];
    let from_env = sessions_with_env(&args, data.as_bytes(), &[("SESSION_DEFLATE", "fast")]);
    assert_eq!(success(&from_env), fast);
    args.extend(["--deflate", "django"]);
    let overridden = sessions_with_env(&args, data.as_bytes(), &[("SESSION_DEFLATE", "fast")]);
    assert_eq!(success(&overridden), django);

    // Usage errors: clap's message and exit status 2, as for the other options.
    for extra in [
        &["--deflate", "best"][..],
        &["--deflate", "fast", "--no-compress"],
    ] {
        let out = encode(extra, &data);
        assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{extra:?}");
        assert!(
            out.stderr.contains("--deflate"),
            "{extra:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn encode_signs_at_the_current_time_without_timestamp() {
    let out = sessions(&["encode", "--secret-key", KEY], A_TEST_KEY_JSON.as_bytes());
    let token = success(&out);
    assert_ne!(token, A_TEST_KEY_TOKEN);
    // Fresh enough for a one-minute max age, which the T0 token is not.
    assert_eq!(
        success(&decode(&["--max-age", "60"], &token)),
        r#"{"a test key":"a test value"}"#
    );
    failure(
        &decode(&["--max-age", "60"], A_TEST_KEY_TOKEN),
        1,
        "expired",
    );
}

#[test]
fn encode_timestamp_must_be_an_integer() {
    let out = sessions(
        &["encode", "--secret-key", KEY, "--timestamp", "soon"],
        b"{}",
    );
    assert_eq!((out.code, out.stdout.as_str()), (2, ""));
    assert!(out.stderr.contains("--timestamp"), "{}", out.stderr);
}

#[test]
fn secret_key_comes_from_the_environment_when_no_flag_is_given() {
    let by_env = sessions_with_env(
        &["encode", "--timestamp", T0],
        A_TEST_KEY_JSON.as_bytes(),
        &[("SECRET_KEY", KEY)],
    );
    assert_eq!(success(&by_env), A_TEST_KEY_TOKEN);
    let decoded = sessions_with_env(&["decode", A_TEST_KEY_TOKEN], b"", &[("SECRET_KEY", KEY)]);
    assert_eq!(success(&decoded), r#"{"a test key":"a test value"}"#);
    // The flag wins over the environment.
    let both = sessions_with_env(
        &["encode", "--secret-key", KEY, "--timestamp", T0],
        A_TEST_KEY_JSON.as_bytes(),
        &[("SECRET_KEY", "another key")],
    );
    assert_eq!(success(&both), A_TEST_KEY_TOKEN);
}

#[test]
fn a_missing_secret_key_is_a_usage_error() {
    let out = sessions(&["encode"], A_TEST_KEY_JSON.as_bytes());
    failure(&out, 2, "SECRET_KEY");
    failure(
        &sessions(&["decode", A_TEST_KEY_TOKEN], b""),
        2,
        "--secret-key",
    );
    // An empty key is as unusable as none.
    let out = sessions_with_env(&["decode", A_TEST_KEY_TOKEN], b"", &[("SECRET_KEY", "")]);
    failure(&out, 2, "secret_key is empty");
    failure(
        &sessions(&["encode", "--secret-key", ""], b"{}"),
        2,
        "secret_key is empty",
    );
}

#[test]
fn every_serializer_round_trips_what_python_json_reads() {
    // Big ints, NaN/Infinity, -0.0, non-ASCII, nesting: Django sessions can hold all of these.
    let input = r#"{"big": 123456789012345678901234567890, "nan": NaN, "inf": -Infinity,
                   "zero": -0.0, "overflow": 1e400, "name": "Zoë 😀", "nested": {"l": [1, [2, null, true]]},
                   "dup": 1, "dup": 2}"#;
    let rendered = r#"{"big":123456789012345678901234567890,"nan":NaN,"inf":-Infinity,"zero":-0.0,"overflow":Infinity,"name":"Zo\u00eb \ud83d\ude00","nested":{"l":[1,[2,null,true]]},"dup":2}"#;
    for serializer in ["json", "pickle"] {
        let token = success(&encode(&["--serializer", serializer], input));
        let out = decode(&["--serializer", serializer], &token);
        assert_eq!(success(&out), rendered, "{serializer}");
    }
    // MessagePack holds everything but the big int (see the next test).
    let msgpack_input = input.replace("123456789012345678901234567890", "18446744073709551615");
    let token = success(&encode(&["--serializer", "msgpack"], &msgpack_input));
    let out = decode(&["--serializer", "msgpack"], &token);
    assert_eq!(
        success(&out),
        rendered.replace("123456789012345678901234567890", "18446744073709551615")
    );
}

#[test]
fn msgpack_refuses_integers_python_msgpack_cannot_pack() {
    for big in ["18446744073709551616", "-9223372036854775809"] {
        let input = format!(r#"{{"cart": {{"items": [1, {big}]}}}}"#);
        let out = encode(&["--serializer", "msgpack"], &input);
        failure(
            &out,
            1,
            &format!(r#"["cart"]["items"][1] holds the integer {big}"#),
        );
    }
    // JSON and pickle carry them.
    assert!(
        success(&encode(
            &["--serializer", "pickle"],
            r#"{"a": 18446744073709551616}"#
        ))
        .contains(':')
    );
}

#[test]
fn encode_refuses_input_that_is_not_one_json_object() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"{\"a\": 1} {}", "not valid JSON"),
        (b"{'a': 1}", "not valid JSON"),
        (b"\xef\xbb\xbf{}", "not valid JSON"), // a BOM, as Python's json.loads(str) refuses
        (b"[1, 2]", "JSON array"),
        (b"\"text\"", "JSON string"),
        (b"42", "JSON number"),
        (b"null", "JSON null"),
        (b"true", "JSON boolean"),
        (b"{\"a\": \"\xff\"}", "not UTF-8"),
    ];
    for (input, needle) in cases {
        let out = sessions(&["encode", "--secret-key", KEY], input);
        failure(&out, 2, needle);
    }
}

#[test]
fn encode_refuses_more_than_16_mib_of_input() {
    let mut input = b"{\"a\": \"".to_vec();
    input.resize(16 * 1024 * 1024 + 1, b'x');
    failure(
        &sessions(&["encode", "--secret-key", KEY], &input),
        2,
        "larger than 16777216 bytes",
    );
}

// --------------------------------------------------------------------------------------- decode

#[test]
fn decode_prints_the_session_as_one_line_of_djangos_json() {
    let unicode = case("session-encode-json-unicode");
    let out = decode(&[], &field(&unicode, "token"));
    let line = success(&out);
    assert!(line.is_ascii(), "Django's JSON escapes non-ASCII: {line}");
    let expected = serde_json::to_string(
        &serde_json::from_str::<Json>(&field(&unicode, "data_json")).unwrap(),
    )
    .unwrap();
    // serde_json writes non-ASCII raw; compare the values.
    assert_eq!(
        serde_json::from_str::<Json>(&line).unwrap(),
        serde_json::from_str::<Json>(&expected).unwrap()
    );
}

#[test]
fn decode_reads_every_serializer_django_writes() {
    for name in [
        "session-encode-msgpack-auth-session",
        "session-encode-pickle2-auth-session",
        "session-encode-pickle5-auth-session",
    ] {
        let django = case(name);
        let serializer = if name.contains("msgpack") {
            "msgpack"
        } else {
            "pickle"
        };
        let line = success(&decode(
            &["--serializer", serializer],
            &field(&django, "token"),
        ));
        assert_eq!(
            serde_json::from_str::<Json>(&line).unwrap(),
            serde_json::from_str::<Json>(&field(&django, "data_json")).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn decode_takes_data_verbatim() {
    let with_newline = format!("{A_TEST_KEY_TOKEN}\n");
    failure(&decode(&[], &with_newline), 1, "bad signature");
    failure(
        &decode(&[], &format!(" {A_TEST_KEY_TOKEN}")),
        1,
        "bad signature",
    );
    failure(&decode(&[], ""), 1, "bad signature");
}

#[test]
fn decode_takes_data_that_starts_with_a_hyphen_as_data() {
    failure(&decode(&[], "-eyJhIjoxfQ:1r31eq:abc"), 1, "bad signature");
    failure(&decode(&["--"], "--not-an-option"), 1, "bad signature");
}

#[test]
fn decode_names_the_reason_for_every_failure() {
    let other_key = sessions(
        &["decode", "--secret-key", "not the key", A_TEST_KEY_TOKEN],
        b"",
    );
    failure(
        &other_key,
        1,
        "cannot decode: bad signature: Signature does not match",
    );
    let cookie_salt = decode(&["--backend", "cookie"], A_TEST_KEY_TOKEN);
    failure(&cookie_salt, 1, "bad signature");
    failure(
        &decode(&[], "not a signed value"),
        1,
        "bad signature: No \":\" found",
    );
    let zlib = case("undecodable-zlib-invalid");
    failure(
        &decode(&[], &field(&zlib, "token")),
        1,
        "cannot decode: malformed: ",
    );
    let bad_json = case("undecodable-json-invalid");
    failure(
        &decode(&[], &field(&bad_json, "token")),
        1,
        "malformed: malformed json data",
    );
    let list = case("undecodable-json-list");
    failure(
        &decode(&[], &field(&list, "token")),
        1,
        "cannot decode: not a dict: session data is a list",
    );
    let expired = decode(&["--max-age", "60"], A_TEST_KEY_TOKEN);
    failure(&expired, 1, "cannot decode: expired: Signature age");
}

#[test]
fn decode_with_the_wrong_serializer_is_malformed() {
    let msgpack = case("session-encode-msgpack-auth-session");
    failure(&decode(&[], &field(&msgpack, "token")), 1, "malformed");
    let json_token = A_TEST_KEY_TOKEN;
    failure(
        &decode(&["--serializer", "pickle"], json_token),
        1,
        "malformed",
    );
}

#[test]
fn decode_max_age_accepts_fresh_and_rejects_old_values() {
    let fresh = success(&sessions(
        &["encode", "--secret-key", KEY, "--backend", "cookie"],
        b"{\"a\": 1}",
    ));
    let out = decode(&["--backend", "cookie", "--max-age", "3600"], &fresh);
    assert_eq!(success(&out), r#"{"a":1}"#);
    let out = decode(&["--backend", "cookie", "--max-age", "0.5e4"], &fresh);
    assert_eq!(success(&out), r#"{"a":1}"#);
    // Without --max-age, age does not matter (session data in a store).
    assert_eq!(
        success(&decode(&[], A_TEST_KEY_TOKEN)),
        r#"{"a test key":"a test value"}"#
    );
    failure(
        &decode(&["--max-age", "3600"], A_TEST_KEY_TOKEN),
        1,
        "expired",
    );
}

#[test]
fn decode_max_age_must_be_a_non_negative_number() {
    for bad in ["-1", "ten", "NaN", "inf"] {
        let out = decode(&["--max-age", bad], A_TEST_KEY_TOKEN);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (2, ""),
            "{bad}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("--max-age"), "{}", out.stderr);
    }
}

#[test]
fn fallback_keys_verify_old_values_but_never_sign() {
    let old = success(&sessions(
        &["encode", "--secret-key", "old key", "--timestamp", T0],
        b"{\"a\": 1}",
    ));
    failure(&decode(&[], &old), 1, "bad signature");
    let one = decode(&["--fallback-key", "old key"], &old);
    assert_eq!(success(&one), r#"{"a":1}"#);
    let second = decode(
        &["--fallback-key", "other", "--fallback-key", "old key"],
        &old,
    );
    assert_eq!(success(&second), r#"{"a":1}"#);
    // Signing uses the current key only.
    let with_fallback = encode(&["--fallback-key", "old key"], A_TEST_KEY_JSON);
    assert_eq!(success(&with_fallback), A_TEST_KEY_TOKEN);
    // A token Django signed with "oldsecret", verified with two fallbacks as Django did.
    let django = case("fallback-second-of-two-fallbacks-accepted");
    let out = decode(
        &[
            "--fallback-key",
            "another-secret",
            "--fallback-key",
            "oldsecret",
        ],
        &field(&django, "token"),
    );
    assert_eq!(success(&out), r#"{"a":1}"#);
    assert_eq!(django["expect"]["data_json"], r#"{"a": 1}"#);
}

#[test]
fn decode_reads_the_pre_3_1_session_format_and_sha1_tokens_like_django_3_2() {
    // Spec §2.9: Django 3.0's encode() of {"a test key": "a test value"}.
    let legacy = "OWUzNTNmNWQxNTBjOWExZmM4MmQ3NzNhMDRmMjU4NmYwNDUyNGI2NDp7ImEgdGVzdCBrZXkiOiJhIHRlc3QgdmFsdWUifQ==";
    assert_eq!(
        success(&decode(&[], legacy)),
        r#"{"a test key":"a test value"}"#
    );
    // Only the session salt's legacy format exists; the cookie backend never wrote it.
    failure(
        &decode(&["--backend", "cookie"], legacy),
        1,
        "bad signature",
    );
    let tampered = case("legacy-session-data-changed");
    failure(&decode(&[], &field(&tampered, "token")), 1, "bad signature");

    let sha1 = case("sha1-dumps-json-a-test-key-compressed");
    let out = decode(&["--salt", "django.core.signing"], &field(&sha1, "token"));
    assert_eq!(success(&out), r#"{"a test key":"a test value"}"#);
}

// ---------------------------------------------------------------------------------------- usage

#[test]
fn salt_and_backend_are_alternatives() {
    let out = decode(&["--salt", "x", "--backend", "db"], A_TEST_KEY_TOKEN);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""));
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    // --salt alone replaces the default backend's salt.
    let out = decode(
        &["--salt", "django.contrib.sessions.SessionStore"],
        A_TEST_KEY_TOKEN,
    );
    assert_eq!(success(&out), r#"{"a test key":"a test value"}"#);
    failure(
        &decode(&["--salt", "another salt"], A_TEST_KEY_TOKEN),
        1,
        "bad signature",
    );
}

#[test]
fn unknown_backends_serializers_and_commands_are_usage_errors() {
    for args in [
        &[
            "decode",
            "--secret-key",
            KEY,
            "--backend",
            "redis",
            A_TEST_KEY_TOKEN,
        ][..],
        &[
            "decode",
            "--secret-key",
            KEY,
            "--serializer",
            "yaml",
            A_TEST_KEY_TOKEN,
        ],
        &["decode", "--secret-key", KEY],
        &["encode", "--secret-key", KEY, "--max-age", "5"],
        &["frobnicate"],
        &[],
    ] {
        let out = sessions(args, b"{}");
        assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
