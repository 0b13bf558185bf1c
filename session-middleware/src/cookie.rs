//! Cookies exactly as Django reads and writes them.
//!
//! Reading follows `django.http.cookie.parse_cookie` (which unquotes with Python's `http.cookies`
//! algorithm); writing follows `HttpResponse.set_cookie` / `delete_cookie` rendered by Python's
//! `http.cookies.Morsel`, so the `Set-Cookie` headers are byte-identical to Django's.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use crate::Error;

/// The `expires` value Django's `delete_cookie` sends.
pub const EPOCH_HTTP_DATE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// Parses a `Cookie:` header value the way Django's `parse_cookie` does.
///
/// The header is split on `;`; each chunk at its first `=` (a chunk without `=` is a value with the
/// empty name); name and value are stripped of whitespace; chunks where both are empty are skipped;
/// values are unquoted with Python's algorithm. A name that appears twice keeps the position of its
/// first appearance and the value of its last (a Python dict's behaviour).
///
/// ```
/// use session_middleware::cookie::parse_cookie;
///
/// let cookies = parse_cookie(r#"a=1; sessionid="abc\"def"; b; a=2"#);
/// assert_eq!(
///     cookies,
///     vec![
///         ("a".to_owned(), "2".to_owned()),
///         ("sessionid".to_owned(), "abc\"def".to_owned()),
///         ("".to_owned(), "b".to_owned()),
///     ]
/// );
/// ```
pub fn parse_cookie(header: &str) -> Vec<(String, String)> {
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut positions: HashMap<String, usize> = HashMap::new();
    for chunk in header.split(';') {
        let (name, value) = chunk.split_once('=').unwrap_or(("", chunk));
        let (name, value) = (strip(name), strip(value));
        if name.is_empty() && value.is_empty() {
            continue;
        }
        let value = unquote(value).into_owned();
        match positions.get(name) {
            Some(&at) => cookies[at].1 = value,
            None => {
                positions.insert(name.to_owned(), cookies.len());
                cookies.push((name.to_owned(), value));
            }
        }
    }
    cookies
}

/// The value of cookie `name` in the request's `Cookie` headers, by Django's rules; `None` when the
/// request does not carry it (a present but empty cookie is `Some("")`).
///
/// Several `Cookie` headers (HTTP/2 sends one per cookie) are joined with `"; "`, as ASGI servers
/// do. Header bytes are read as Latin-1, as WSGI does, so no byte makes the header unreadable.
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    request_cookie_from_values(
        headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes),
        name,
    )
    .map(Cow::into_owned)
}

/// [`request_cookie`] for any framework: the value of cookie `name` in the raw values of a
/// request's `Cookie` headers, in order. Borrowed from the header when there is one all-ASCII
/// `Cookie` header and the value needs no unquoting.
///
/// ```
/// use session_middleware::cookie::request_cookie_from_values;
///
/// let headers = [b"a=1; sessionid=one".as_slice(), b"sessionid=two"];
/// assert_eq!(request_cookie_from_values(headers, "sessionid").as_deref(), Some("two"));
/// assert_eq!(request_cookie_from_values([b"a=1".as_slice()], "sessionid"), None);
/// ```
pub fn request_cookie_from_values<'h>(
    values: impl IntoIterator<Item = &'h [u8]>,
    name: &str,
) -> Option<Cow<'h, str>> {
    let mut values = values.into_iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        // One all-ASCII header reads the same as Latin-1 (each byte is the same character in
        // both): borrow it. `is_ascii` checks a word at a time; a byte-by-byte check of what
        // `HeaderValue::to_str` accepts cost 2 % of a request through the tower layer.
        if first.is_ascii()
            && let Ok(text) = std::str::from_utf8(first)
        {
            return cookie_value(text, name);
        }
        let joined: String = latin1(first).collect();
        return cookie_value(&joined, name).map(|value| Cow::Owned(value.into_owned()));
    };
    let mut joined: String = latin1(first).collect();
    for value in std::iter::once(second).chain(values) {
        joined.push_str("; ");
        joined.extend(latin1(value));
    }
    cookie_value(&joined, name).map(|value| Cow::Owned(value.into_owned()))
}

/// The value [`parse_cookie`] gives `name` (that of its last chunk), without building the whole
/// list.
fn cookie_value<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let mut found = None;
    // Split at the ASCII bytes `;` and `=` found by `memchr`: `str::split` and `split_once`
    // with a `char` pattern took 300 instructions to find one cookie, per request.
    let mut rest = header;
    loop {
        let end = memchr::memchr(b';', rest.as_bytes()).unwrap_or(rest.len());
        let (chunk, after) = (rest.get(..end)?, rest.get(end..)?);
        let (chunk_name, value) = match memchr::memchr(b'=', chunk.as_bytes()) {
            Some(at) => (chunk.get(..at)?, chunk.get(at + 1..)?),
            None => ("", chunk),
        };
        let (chunk_name, value) = (strip(chunk_name), strip(value));
        if chunk_name == name && !(chunk_name.is_empty() && value.is_empty()) {
            found = Some(value);
        }
        match after.get(1..) {
            Some(next) => rest = next,
            None => break,
        }
    }
    found.map(unquote)
}

/// Python's `str.strip()`.
fn strip(s: &str) -> &str {
    // Printable ASCII at both ends (a session key's characters) has nothing to strip.
    let plain = |b: Option<&u8>| b.is_some_and(|&b| (0x21..0x7f).contains(&b));
    if plain(s.as_bytes().first()) && plain(s.as_bytes().last()) {
        return s;
    }
    s.trim_matches(is_python_space)
}

/// Python's whitespace (`str.isspace`, `\s` in a `str` pattern): it also includes the separators
/// U+001C..U+001F, which Rust's `char::is_whitespace` does not.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Header bytes as Python reads them: Latin-1, one `char` per byte, so no byte is unreadable.
pub(crate) fn latin1(bytes: &[u8]) -> impl Iterator<Item = char> + '_ {
    bytes.iter().map(|&b| char::from(b))
}

/// Python's `http.cookies._unquote`: a value wrapped in double quotes loses them, and inside, `\ooo`
/// (octal, first digit 0-3) becomes that character and `\x` becomes `x` (for any `x` but a newline).
pub fn unquote(value: &str) -> Cow<'_, str> {
    // A lone `"` is not a quoted value: stripping the prefix leaves nothing to strip a suffix from.
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return Cow::Borrowed(value);
    };
    let chars: Vec<char> = inner.chars().collect();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            if let Some(octal) = octal_escape(&chars[i + 1..]) {
                out.push(octal);
                i += 4;
                continue;
            }
            if let Some(&next) = chars.get(i + 1)
                && next != '\n'
            {
                out.push(next);
                i += 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(out)
}

fn octal_escape(after_backslash: &[char]) -> Option<char> {
    match after_backslash {
        [a @ '0'..='3', b @ '0'..='7', c @ '0'..='7', ..] => {
            let digit = |d: &char| u32::from(*d) - u32::from('0');
            char::from_u32(digit(a) * 64 + digit(b) * 8 + digit(c))
        }
        _ => None,
    }
}

/// Characters Python's `http.cookies` leaves unquoted in a cookie value.
fn is_legal_value_char(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_legal_value_byte)
}

/// [`is_legal_value_char`] for a byte: one table lookup (every legal character is ASCII, and a
/// byte of a longer UTF-8 character is never legal). Checking a session key character by
/// character against the set took 445 instructions per response.
fn is_legal_value_byte(b: u8) -> bool {
    LEGAL_VALUE_BYTES[usize::from(b)]
}

/// Python's `http.cookies._LegalChars`: ASCII letters, digits and `!#$%&'*+-.^_`|~:`, by byte.
static LEGAL_VALUE_BYTES: [bool; 256] = {
    let mut legal = [false; 256];
    let mut b = 0u8;
    while b < 128 {
        legal[b as usize] = b.is_ascii_alphanumeric();
        b += 1;
    }
    let punctuation = b"!#$%&'*+-.^_`|~:";
    let mut i = 0;
    while i < punctuation.len() {
        legal[punctuation[i] as usize] = true;
        i += 1;
    }
    legal
};

/// Python's `http.cookies._quote`: the value as is when every character is legal (and it is not
/// empty), otherwise in double quotes with `"` and `\` backslash-escaped and every other character
/// outside the legal set and ` ()/<=>?@[]{}` written as a three-digit octal escape.
///
/// Characters above U+00FF cannot be sent in a header (Python would fail to encode them too): they
/// are an error.
pub fn quote(value: &str) -> Result<Cow<'_, str>, Error> {
    if !value.is_empty() && value.bytes().all(is_legal_value_byte) {
        return Ok(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_legal_value_char(c) || " ()/<=>?@[]{}".contains(c) => out.push(c),
            c if u32::from(c) <= 0xFF => out.push_str(&format!("\\{:03o}", u32::from(c))),
            _ => return Err(Error::UnsendableCookieValue),
        }
    }
    out.push('"');
    Ok(Cow::Owned(out))
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Django's `http_date`: RFC 7231 IMF-fixdate (`Wdy, DD Mon YYYY HH:MM:SS GMT`) for whole Unix
/// seconds. Python can only format years 1 to 9999; other moments are [`Error::ExpiryOutOfRange`].
pub fn http_date(unix_seconds: i64) -> Result<String, Error> {
    let date = HttpDate::from_unix(unix_seconds)?;
    let mut out = String::with_capacity(HttpDate::LEN);
    date.push_to(&mut out);
    Ok(out)
}

/// A moment Django's `http_date` can write: whole Unix seconds in the years 1 to 9999, checked
/// once when made, so that writing it cannot fail. A [`SetCookie`] holds one as its `expires`
/// and writes it straight into the header, with no string of its own.
///
/// ```
/// use session_middleware::cookie::HttpDate;
///
/// let date = HttpDate::from_unix(1_701_209_600)?;
/// assert_eq!(date.to_string(), "Tue, 28 Nov 2023 22:13:20 GMT");
/// assert_eq!(HttpDate::EPOCH.to_string(), "Thu, 01 Jan 1970 00:00:00 GMT");
/// assert!(HttpDate::from_unix(i64::MAX).is_err());
/// # Ok::<(), session_middleware::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpDate(OffsetDateTime);

impl HttpDate {
    /// The length of every HTTP date, in bytes.
    pub const LEN: usize = EPOCH_HTTP_DATE.len();

    /// The Unix epoch, Django's `delete_cookie` expiry ([`EPOCH_HTTP_DATE`]).
    pub const EPOCH: HttpDate = HttpDate(OffsetDateTime::UNIX_EPOCH);

    /// The moment `unix_seconds` after the epoch.
    ///
    /// # Errors
    /// [`Error::ExpiryOutOfRange`] outside the years 1 to 9999 (Python cannot format them).
    pub fn from_unix(unix_seconds: i64) -> Result<Self, Error> {
        OffsetDateTime::from_unix_timestamp(unix_seconds)
            .ok()
            .filter(|at| (1..=9999).contains(&at.year()))
            .map(HttpDate)
            .ok_or(Error::ExpiryOutOfRange { unix_seconds })
    }

    /// The moment as Unix seconds.
    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Appends the date's [`LEN`](Self::LEN) bytes.
    fn push_to(&self, out: &mut String) {
        // Responses in the same second share their expiry date: written once per second and
        // thread, as hyper writes its `Date` header, instead of a calendar conversion each time.
        thread_local! {
            static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
        }
        let seconds = self.unix_seconds();
        LAST.with_borrow_mut(|(at, text)| {
            // `i64::MIN` is no HttpDate's second, so the first call always writes.
            if *at != seconds {
                text.clear();
                self.write_to(text);
                *at = seconds;
            }
            out.push_str(text);
        });
    }

    fn write_to(&self, out: &mut String) {
        let at = self.0;
        let (year, month, day) = at.to_calendar_date();
        let (hour, minute, second) = at.to_hms();
        // Written digit by digit: `format!` with seven arguments cost more than the rest of setting
        // the cookie, on every response that sets one.
        out.push_str(WEEKDAYS[usize::from(at.weekday().number_days_from_monday())]);
        out.push_str(", ");
        push_digits(out, u64::from(day), 2);
        out.push(' ');
        out.push_str(MONTHS[usize::from(u8::from(month) - 1)]);
        out.push(' ');
        // `from_unix` keeps the year in 1..=9999.
        push_digits(out, u64::from(year.unsigned_abs()), 4);
        for (separator, part) in [(' ', hour), (':', minute), (':', second)] {
            out.push(separator);
            push_digits(out, u64::from(part), 2);
        }
        out.push_str(" GMT");
    }
}

impl fmt::Display for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(Self::LEN);
        self.push_to(&mut text);
        f.write_str(&text)
    }
}

/// Appends the last `width` decimal digits of `n` (at most 20), zero-padded.
fn push_digits(out: &mut String, mut n: u64, width: u32) {
    let mut digits = [b'0'; 20];
    let width = (width as usize).min(digits.len());
    // From the last digit back: a division by the constant 10 is a multiplication.
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // ASCII digits are always UTF-8.
    out.push_str(std::str::from_utf8(&digits[..width]).unwrap_or_default());
}

/// How many decimal digits `n` has (1 for 0).
fn digit_count(n: u64) -> u32 {
    n.checked_ilog10().map_or(1, |log| log + 1)
}

/// One `Set-Cookie` header's content, rendered as Python's `Morsel.OutputString` does: the
/// attributes in alphabetical order of their keys (`Domain`, `expires`, `HttpOnly`, `Max-Age`,
/// `Path`, `SameSite`, `Secure`), with empty-valued attributes left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie<'a> {
    /// The cookie name (already validated as an RFC 6265 token).
    pub name: &'a str,
    /// The value, quoted on rendering when needed.
    pub value: &'a str,
    /// The `expires` attribute.
    pub expires: Option<HttpDate>,
    /// The `Max-Age` attribute.
    pub max_age: Option<i64>,
    /// The `Path` attribute.
    pub path: Option<&'a str>,
    /// The `Domain` attribute.
    pub domain: Option<&'a str>,
    /// The `Secure` flag.
    pub secure: bool,
    /// The `HttpOnly` flag.
    pub http_only: bool,
    /// The `SameSite` attribute, as written (`Lax`, `Strict`, `None`).
    pub same_site: Option<&'a str>,
}

impl SetCookie<'_> {
    /// The header value, e.g.
    /// `sessionid=abc; expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; Max-Age=1209600; Path=/`.
    ///
    /// The string has no spare capacity, so that `Bytes::from` takes it over as it is: with spare
    /// room, a header value built from it needed an allocation of its own.
    pub fn render(&self) -> Result<String, Error> {
        let value = quote(self.value)?;
        let (domain, path, same_site) = (
            present(self.domain),
            present(self.path),
            present(self.same_site),
        );
        // "; " and "=" around each attribute with a value, "; " before each flag.
        let with_value =
            |value: Option<&str>, name: &str| value.map_or(0, |v| name.len() + v.len() + 3);
        let flag = |set: bool, name: &str| if set { name.len() + 2 } else { 0 };
        let len = self.name.len()
            + 1
            + value.len()
            + with_value(domain, "Domain")
            + self
                .expires
                .map_or(0, |_| "expires".len() + HttpDate::LEN + 3)
            + flag(self.http_only, "HttpOnly")
            + self.max_age.map_or(0, |max_age| {
                "Max-Age".len()
                    + 3
                    + usize::from(max_age < 0)
                    + digit_count(max_age.unsigned_abs()) as usize
            })
            + with_value(path, "Path")
            + with_value(same_site, "SameSite")
            + flag(self.secure, "Secure");
        let mut out = String::with_capacity(len);
        out.push_str(self.name);
        out.push('=');
        out.push_str(&value);
        fn attribute(out: &mut String, name: &str, value: Option<&str>) {
            out.push_str("; ");
            out.push_str(name);
            if let Some(value) = value {
                out.push('=');
                out.push_str(value);
            }
        }
        if let Some(domain) = domain {
            attribute(&mut out, "Domain", Some(domain));
        }
        if let Some(expires) = self.expires {
            attribute(&mut out, "expires", Some(""));
            expires.push_to(&mut out);
        }
        if self.http_only {
            attribute(&mut out, "HttpOnly", None);
        }
        if let Some(max_age) = self.max_age {
            attribute(
                &mut out,
                "Max-Age",
                Some(if max_age < 0 { "-" } else { "" }),
            );
            let digits = max_age.unsigned_abs();
            push_digits(&mut out, digits, digit_count(digits));
        }
        if let Some(path) = path {
            attribute(&mut out, "Path", Some(path));
        }
        if let Some(same_site) = same_site {
            attribute(&mut out, "SameSite", Some(same_site));
        }
        if self.secure {
            attribute(&mut out, "Secure", None);
        }
        Ok(out)
    }
}

/// Python's Morsel omits attributes whose value is the empty string.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(header: &str) -> Vec<(&str, String)> {
        let mut out = Vec::new();
        for (k, v) in parse_cookie(header) {
            out.push((Box::leak(k.into_boxed_str()) as &str, v));
        }
        out
    }

    // Django's tests/requests_tests/tests.py and tests/httpwrappers/tests.py CookieTests.
    #[test]
    fn parse_cookie_follows_django() {
        assert_eq!(parsed("nginx=bar"), [("nginx", "bar".to_owned())]);
        assert_eq!(
            parsed("a=b; c=d;"),
            [("a", "b".to_owned()), ("c", "d".to_owned())]
        );
        // Chunks without `=` have the empty name; the last one wins.
        assert_eq!(parsed("abc=def; unnamed; django_language=en"), {
            [
                ("abc", "def".to_owned()),
                ("", "unnamed".to_owned()),
                ("django_language", "en".to_owned()),
            ]
        });
        assert_eq!(
            parsed("a=b; \"; c=d"),
            [
                ("a", "b".to_owned()),
                ("", "\"".to_owned()),
                ("c", "d".to_owned())
            ]
        );
        // Only the first `=` splits.
        assert_eq!(parsed("a=b=c"), [("a", "b=c".to_owned())]);
        // Whitespace around names and values is stripped; empty chunks are skipped.
        assert_eq!(parsed("  a  =  b  ;;  ; =; "), [("a", "b".to_owned())]);
        assert_eq!(parsed("=b"), [("", "b".to_owned())]);
        assert_eq!(parsed("a="), [("a", "".to_owned())]);
        // Characters Python strips but Rust's trim does not.
        assert_eq!(parsed("\u{1c}a\u{1f}=b\u{1d}"), [("a", "b".to_owned())]);
        // Django's test_python_cookies: values with spaces and odd characters survive.
        assert_eq!(
            parsed("keebler=E=mc2; L=\"Loves\"; fudge=\\012;"),
            [
                ("keebler", "E=mc2".to_owned()),
                ("L", "Loves".to_owned()),
                ("fudge", "\\012".to_owned()),
            ]
        );
        assert_eq!(
            parsed("keebler=\"E=mc2; L=\\\"Loves\\\"; fudge=\\012;\""),
            [
                ("keebler", "\"E=mc2".to_owned()),
                ("L", "\\\"Loves\\\"".to_owned()),
                ("fudge", "\\012".to_owned()),
                ("", "\"".to_owned()),
            ]
        );
    }

    #[test]
    fn duplicate_names_keep_the_last_value_at_the_first_position() {
        assert_eq!(
            parsed("sessionid=first; other=x; sessionid=second"),
            [
                ("sessionid", "second".to_owned()),
                ("other", "x".to_owned())
            ]
        );
    }

    #[test]
    fn unquote_is_pythons() {
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\""), "\"");
        assert_eq!(unquote("\"\""), "");
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("\"a\\\"b\""), "a\"b");
        assert_eq!(unquote("\"a\\\\b\""), "a\\b");
        assert_eq!(unquote("\"\\012\""), "\n");
        assert_eq!(unquote("\"\\377\""), "\u{ff}");
        // `\4xx` is not an octal escape (first digit 0-3): the backslash just escapes the `4`.
        assert_eq!(unquote("\"\\477\""), "477");
        assert_eq!(unquote("\"\\01\""), "01");
        // A backslash before a newline, or at the end, stays.
        assert_eq!(unquote("\"a\\\nb\""), "a\\\nb");
        assert_eq!(unquote("\"a\\\""), "a\\");
        // Quotes only on one side are kept.
        assert_eq!(unquote("\"abc"), "\"abc");
        assert_eq!(unquote("abc\""), "abc\"");
    }

    #[test]
    fn the_legal_byte_set_is_pythons_legal_chars() {
        for c in '\0'..='\u{2ff}' {
            let python = c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:".contains(c);
            assert_eq!(is_legal_value_char(c), python, "{c:?}");
        }
    }

    #[test]
    fn quote_is_pythons() {
        assert_eq!(quote("abc123").unwrap(), "abc123");
        assert_eq!(
            quote("eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP").unwrap(),
            "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP"
        );
        assert_eq!(quote("").unwrap(), "\"\"");
        assert_eq!(quote("a b").unwrap(), "\"a b\"");
        assert_eq!(quote("a;b,c").unwrap(), "\"a\\073b\\054c\"");
        assert_eq!(quote("say \"hi\"\\").unwrap(), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(quote("é").unwrap(), "\"\\351\"");
        assert_eq!(quote("\n").unwrap(), "\"\\012\"");
        assert!(matches!(quote("€"), Err(Error::UnsendableCookieValue)));
    }

    #[test]
    fn quote_then_unquote_round_trips() {
        for value in ["", "a b", "x;y,z", "q\"u\\o", "é\u{7f}\t", "plain:1"] {
            assert_eq!(unquote(&quote(value).unwrap()), value, "{value:?}");
        }
    }

    #[test]
    fn request_cookie_reads_what_parse_cookie_gives() {
        let headers = [
            "",
            ";;",
            "sessionid=abc",
            " sessionid = abc ; other=1",
            "sessionid=1; sessionid=2",
            "sessionid=\"a\\\"b\"; x",
            "=; sessionid; =v; sessionid=",
            "a=1; b; sessionid=\"\\101\"; sessionid=last",
            "\u{1c}sessionid\u{1f}=\u{1d}v",
        ];
        for header in headers {
            for name in ["sessionid", "", "b", "a", "missing"] {
                let expected = parse_cookie(header)
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v);
                assert_eq!(
                    cookie_value(header, name).map(Cow::into_owned),
                    expected,
                    "{header:?} {name:?}"
                );
            }
        }
    }

    #[test]
    fn http_date_is_imf_fixdate() {
        assert_eq!(http_date(0).unwrap(), EPOCH_HTTP_DATE);
        assert_eq!(
            http_date(1_700_000_000 + 1_209_600).unwrap(),
            "Tue, 28 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(
            http_date(1_700_000_000 + 3600).unwrap(),
            "Tue, 14 Nov 2023 23:13:20 GMT"
        );
        assert_eq!(
            http_date(-62_135_596_800).unwrap(),
            "Mon, 01 Jan 0001 00:00:00 GMT"
        );
        assert_eq!(
            http_date(253_402_300_799).unwrap(),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert!(matches!(
            http_date(253_402_300_800),
            Err(Error::ExpiryOutOfRange { .. })
        ));
        assert!(http_date(i64::MAX).is_err());
        assert!(http_date(-62_135_596_801).is_err());
    }

    #[test]
    fn request_cookie_joins_headers_and_reads_latin1() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; sessionid=one"));
        headers.append(COOKIE, HeaderValue::from_static("sessionid=two"));
        assert_eq!(
            request_cookie(&headers, "sessionid").as_deref(),
            Some("two")
        );
        assert_eq!(request_cookie(&headers, "a").as_deref(), Some("1"));
        assert_eq!(request_cookie(&headers, "b"), None);

        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_bytes(b"sessionid=k\xe9y12345").unwrap(),
        );
        assert_eq!(
            request_cookie(&headers, "sessionid").as_deref(),
            Some("k\u{e9}y12345")
        );

        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("sessionid="));
        assert_eq!(request_cookie(&headers, "sessionid").as_deref(), Some(""));
        assert_eq!(request_cookie(&HeaderMap::new(), "sessionid"), None);
    }

    #[test]
    fn an_ascii_header_is_borrowed_and_reads_as_latin1_would() {
        // Control characters and DEL are ASCII too: the same characters either way.
        for header in [
            b"a=1; sessionid=abc".as_slice(),
            b"\x01a=1\x7f; sessionid=abc",
        ] {
            let borrowed = request_cookie_from_values([header], "sessionid");
            assert!(matches!(borrowed, Some(Cow::Borrowed("abc"))), "{header:?}");
            let as_latin1: String = latin1(header).collect();
            assert_eq!(
                borrowed,
                cookie_value(&as_latin1, "sessionid"),
                "{header:?}"
            );
        }
    }

    #[test]
    fn set_cookie_renders_attributes_in_pythons_order() {
        let cookie = SetCookie {
            name: "sessionid",
            value: "abc",
            expires: Some(HttpDate::from_unix(1_700_000_000 + 3600).unwrap()),
            max_age: Some(3600),
            path: Some("/"),
            domain: Some(".example.com"),
            secure: true,
            http_only: true,
            same_site: Some("None"),
        };
        assert_eq!(
            cookie.render().unwrap(),
            "sessionid=abc; Domain=.example.com; expires=Tue, 14 Nov 2023 23:13:20 GMT; \
             HttpOnly; Max-Age=3600; Path=/; SameSite=None; Secure"
        );
        let bare = SetCookie {
            name: "sessionid",
            value: "abc",
            expires: None,
            max_age: None,
            path: Some(""),
            domain: Some(""),
            secure: false,
            http_only: false,
            same_site: None,
        };
        assert_eq!(bare.render().unwrap(), "sessionid=abc");
        let negative = SetCookie {
            max_age: Some(-10),
            ..bare
        };
        assert_eq!(negative.render().unwrap(), "sessionid=abc; Max-Age=-10");
    }

    #[test]
    fn a_rendered_cookie_has_no_spare_capacity() {
        let full = SetCookie {
            name: "sessionid",
            value: "a b",
            expires: Some(HttpDate::EPOCH),
            max_age: Some(1_209_600),
            path: Some("/"),
            domain: Some(".example.com"),
            secure: true,
            http_only: true,
            same_site: Some("Lax"),
        };
        let mut cookies = vec![full.clone()];
        for max_age in [
            None,
            Some(0),
            Some(9),
            Some(10),
            Some(-1),
            Some(i64::MIN),
            Some(i64::MAX),
        ] {
            cookies.push(SetCookie {
                max_age,
                ..full.clone()
            });
        }
        cookies.push(SetCookie {
            value: "",
            expires: None,
            path: Some(""),
            domain: None,
            secure: false,
            http_only: false,
            same_site: Some(""),
            ..full.clone()
        });
        for cookie in cookies {
            let rendered = cookie.render().unwrap();
            assert_eq!(rendered.len(), rendered.capacity(), "{rendered}");
        }
        assert_eq!(
            SetCookie {
                max_age: Some(i64::MIN),
                ..full
            }
            .render()
            .unwrap(),
            "sessionid=\"a b\"; Domain=.example.com; expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             HttpOnly; Max-Age=-9223372036854775808; Path=/; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn an_http_date_is_checked_once_and_written_as_django_writes_it() {
        assert_eq!(HttpDate::EPOCH.to_string(), EPOCH_HTTP_DATE);
        assert_eq!(HttpDate::from_unix(0).unwrap(), HttpDate::EPOCH);
        let last = HttpDate::from_unix(253_402_300_799).unwrap();
        assert_eq!(last.unix_seconds(), 253_402_300_799);
        assert_eq!(last.to_string(), http_date(253_402_300_799).unwrap());
        assert!(matches!(
            HttpDate::from_unix(253_402_300_800),
            Err(Error::ExpiryOutOfRange {
                unix_seconds: 253_402_300_800
            })
        ));
    }
}
