//! Django's `patch_vary_headers`.

use http::header::VARY;
use http::{HeaderMap, HeaderValue};

use crate::cookie::{is_python_space, latin1};

/// Adds `new` header names to the response's `Vary` header as Django's `patch_vary_headers` does.
///
/// Existing names keep their order and spelling; a new name is appended unless already present
/// (compared case-insensitively); if `*` is among the names the header becomes just `*`. The result
/// is one `Vary` header joined with `", "` (several incoming `Vary` headers are merged first).
///
/// One deliberate difference: empty list members (from `Vary: ` or `a,,b`) are dropped, where
/// Django would write them back (`", Cookie"`), which no cache can use.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::VARY};
/// use session_middleware::vary::patch_vary;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(VARY, HeaderValue::from_static("Accept-Encoding,cookie"));
/// patch_vary(&mut headers, &["Cookie", "Accept-Language"]);
/// assert_eq!(headers[VARY], "Accept-Encoding, cookie, Accept-Language");
/// ```
pub fn patch_vary(headers: &mut HeaderMap, new: &[&str]) {
    let bytes = patched_vary_bytes(headers.get_all(VARY).iter().map(HeaderValue::as_bytes), new);
    // Every byte came from a valid header value or a header name, plus ", ": always valid.
    if let Ok(value) = HeaderValue::from_bytes(&bytes) {
        headers.insert(VARY, value);
    }
}

/// [`patch_vary`] for any framework: the one `Vary` value that replaces the raw `existing` ones
/// once the `new` names are merged in.
///
/// ```
/// use session_middleware::vary::patched_vary_bytes;
///
/// let existing = [b"Accept-Encoding".as_slice(), b"Origin, cookie"];
/// assert_eq!(patched_vary_bytes(existing, &["Cookie"]), b"Accept-Encoding, Origin, cookie");
/// ```
pub fn patched_vary_bytes<'h>(
    existing: impl IntoIterator<Item = &'h [u8]>,
    new: &[&str],
) -> Vec<u8> {
    let mut names: Vec<String> = Vec::new();
    for value in existing {
        // Latin-1, as Python reads header bytes; written back byte for byte below.
        let text: String = latin1(value).collect();
        names.extend(
            text.split(',')
                .map(|name| name.trim_matches(is_python_space))
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
        );
    }
    for &name in new {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
    }
    let joined = if names.iter().any(|n| n == "*") {
        "*".to_owned()
    } else {
        names.join(", ")
    };
    joined
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patched(existing: &[&'static str], new: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in existing {
            headers.append(VARY, HeaderValue::from_static(value));
        }
        patch_vary(&mut headers, new);
        assert!(headers.get_all(VARY).iter().count() <= 1);
        headers
            .get(VARY)
            .map(|v| String::from_utf8(v.as_bytes().to_vec()).unwrap())
    }

    // Django's tests/cache/tests.py CacheUtils.test_patch_vary_headers.
    #[test]
    fn patch_vary_headers_matches_djangos_table() {
        let cases: &[(Option<&'static str>, &[&str], &str)] = &[
            (None, &["Accept-Encoding"], "Accept-Encoding"),
            (
                Some("Accept-Encoding"),
                &["accept-encoding"],
                "Accept-Encoding",
            ),
            (
                Some("Accept-Encoding"),
                &["ACCEPT-ENCODING"],
                "Accept-Encoding",
            ),
            (
                Some("Cookie"),
                &["Accept-Encoding"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie, Accept-Encoding"),
                &["Accept-Encoding"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie, Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (
                None,
                &["Accept-Encoding", "COOKIE"],
                "Accept-Encoding, COOKIE",
            ),
            (
                Some("Cookie,     Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie    ,     Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (Some("*"), &["Accept-Language", "Cookie"], "*"),
            (Some("Accept-Language, Cookie"), &["*"], "*"),
        ];
        for (existing, new, expected) in cases {
            let existing: Vec<&'static str> = existing.iter().copied().collect();
            assert_eq!(
                patched(&existing, new).as_deref(),
                Some(*expected),
                "{existing:?} + {new:?}"
            );
        }
    }

    #[test]
    fn several_vary_headers_are_merged_into_one() {
        assert_eq!(
            patched(&["Accept-Encoding", "Origin, cookie"], &["Cookie"]).as_deref(),
            Some("Accept-Encoding, Origin, cookie")
        );
    }

    #[test]
    fn empty_members_are_dropped() {
        assert_eq!(patched(&[""], &["Cookie"]).as_deref(), Some("Cookie"));
        assert_eq!(
            patched(&["a,,b"], &["Cookie"]).as_deref(),
            Some("a, b, Cookie")
        );
    }

    #[test]
    fn obs_text_bytes_survive_the_rewrite() {
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_bytes(b"X-\xe9t\xe9").unwrap());
        patch_vary(&mut headers, &["Cookie"]);
        assert_eq!(headers[VARY].as_bytes(), b"X-\xe9t\xe9, Cookie");
    }
}
