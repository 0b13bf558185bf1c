//! Cookie parsing in the middleware: `parse_cookie`, `request_cookie` (raw header bytes, read as
//! Latin-1) and `unquote`, plus the writer's `quote`.
//!
//! Invariants: no panic; `request_cookie` agrees with `parse_cookie`; parsed names are stripped and
//! not duplicated; unquoting never lengthens a value; and every value the middleware can send
//! (`quote` succeeds) is read back unchanged by its own parser.
#![no_main]

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use session_middleware::cookie::{parse_cookie, quote, request_cookie, unquote};

fuzz_target!(|data: &[u8]| {
    // Raw header bytes, possibly several headers (split at NUL, which a header cannot contain).
    let mut headers = HeaderMap::new();
    for part in data.split(|&b| b == 0) {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(COOKIE, value);
        }
    }
    // request_cookie finds one value without building the list: it must agree with parse_cookie
    // on the headers joined as Latin-1 with "; ".
    let joined = headers
        .get_all(COOKIE)
        .iter()
        .map(|v| {
            v.as_bytes()
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("; ");
    let parsed = parse_cookie(&joined);
    let mut names: Vec<&str> = vec!["sessionid", ""];
    names.extend(parsed.iter().map(|(n, _)| n.as_str()).take(3));
    for name in names {
        let expected = parsed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        if headers.contains_key(COOKIE) {
            assert_eq!(
                request_cookie(&headers, name).as_deref(),
                expected,
                "{name:?}"
            );
        }
    }

    let text = String::from_utf8_lossy(data);
    let cookies = parse_cookie(&text);
    let mut names = std::collections::HashSet::new();
    for (name, value) in &cookies {
        assert!(names.insert(name.as_str()), "duplicate name {name:?}");
        // Django skips a chunk when name and value are both empty *before* unquoting, so `""`
        // alone is kept, as ("", "").
        let _ = value;
        assert_eq!(name.trim(), name.as_str(), "name not stripped");
    }
    assert!(unquote(&text).chars().count() <= text.chars().count());

    if let Ok(quoted) = quote(&text) {
        assert_eq!(unquote(&quoted), text.as_ref());
        let parsed = parse_cookie(&format!("sessionid={quoted}"));
        assert_eq!(
            parsed,
            vec![("sessionid".to_owned(), text.clone().into_owned())]
        );
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("a=b; sessionid={quoted}")) {
            headers.append(COOKIE, value);
            assert_eq!(
                request_cookie(&headers, "sessionid").as_deref(),
                Some(text.as_ref())
            );
        }
    }
});
