//! Django's `JSONSerializer`, byte for byte.
//!
//! Writing reproduces Python's `json.dumps(obj, separators=(",", ":"))`: no whitespace, keys in
//! insertion order, pure ASCII output (other characters as lowercase `\uXXXX`, astral ones as
//! surrogate pairs), integers of any size, floats as Python's `repr` and `NaN`/`Infinity`/
//! `-Infinity` as bare tokens.
//!
//! Reading reproduces Python's `json.loads`, with two entry points:
//! - [`from_slice`] for stored session bytes: like Django, each byte is one character (latin-1),
//!   so a raw byte `0xE9` inside a string reads as `é`. Django only ever writes ASCII.
//! - [`from_str`] for JSON text (e.g. typed by a person, read from UTF-8 stdin): non-ASCII
//!   characters are taken as the Unicode text they are.
//!
//! Differences from Python, all of them refusals rather than different results:
//! - A `\uXXXX` escape for a lone surrogate (`"\ud800"`) is [`Malformed`](SerializerError::Malformed):
//!   Python keeps it in a `str`, but a Rust `String` cannot hold it.
//! - Nesting is limited to [`MAX_DEPTH`] (Python's recursion limit allows about 1000 levels).
//! - Integers of more than 4300 digits are refused in both directions, as Python 3.11+ does by
//!   default ([`MAX_STR_DIGITS`]).

use std::fmt::Write as _;

use super::{Serializer, SerializerError, fill, push_default, push_in_room, with_reused};
use crate::value::recycle::MAX_KEPT_ENTRIES;
use crate::value::{Dict, Int, KeyPrints, MAX_DEPTH, MAX_STR_DIGITS, Str, Value};

const FORMAT: &str = "json";

/// Django's default `JSONSerializer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSerializer;

impl Serializer for JsonSerializer {
    fn name(&self) -> &str {
        "json"
    }

    fn dumps_dict(&self, dict: &Dict) -> Result<Vec<u8>, SerializerError> {
        dict_to_vec(dict)
    }

    fn dumps_dict_into(&self, dict: &Dict, out: &mut Vec<u8>) -> Result<(), SerializerError> {
        write_dict(out, dict, 0)
    }

    fn dumps(&self, value: &Value) -> Result<Vec<u8>, SerializerError> {
        to_vec(value)
    }

    fn loads_stored_bytes(&self, bytes: &[u8]) -> Result<Value, SerializerError> {
        from_slice(bytes)
    }

    fn loads_text(&self, text: &str) -> Result<Value, SerializerError> {
        from_str(text)
    }
}

/// Serializes a value exactly as Python's `json.dumps(value, separators=(",", ":"))` does.
///
/// # Errors
/// [`SerializerError::TooDeep`] past [`MAX_DEPTH`], and [`SerializerError::Unsupported`] for an
/// integer Python would refuse to print (more than 4300 digits).
///
/// # Example
/// ```
/// use session_core::serializer::json;
/// use session_core::value::{Dict, Value};
///
/// let mut dict = Dict::new();
/// dict.insert("name", Value::from("Zoë"));
/// dict.insert("ratio", Value::from(1e16));
/// assert_eq!(json::to_string(&Value::Dict(dict)).unwrap(), r#"{"name":"Zo\u00eb","ratio":1e+16}"#);
/// ```
pub fn to_vec(value: &Value) -> Result<Vec<u8>, SerializerError> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// [`to_vec`], as a `String` (the output is always ASCII).
///
/// # Errors
/// As [`to_vec`].
pub fn to_string(value: &Value) -> Result<String, SerializerError> {
    let bytes = to_vec(value)?;
    // The writer emits only ASCII, so this cannot fail; map the impossible error anyway.
    String::from_utf8(bytes).map_err(|_| SerializerError::Unsupported {
        format: FORMAT,
        reason: "internal error: non-ASCII output".to_owned(),
    })
}

/// Serializes a session dict (same bytes as [`to_vec`] of `Value::Dict`, without building one).
///
/// # Errors
/// As [`to_vec`].
pub fn dict_to_vec(dict: &Dict) -> Result<Vec<u8>, SerializerError> {
    let mut out = Vec::with_capacity(64 + 32 * dict.len());
    write_dict(&mut out, dict, 0)?;
    Ok(out)
}

/// Python's `repr()` of a float: `1.0`, `0.1`, `1e+16`, `1e-05`, `nan`, `inf`, ...
///
/// This is what JSON writes for finite floats; non-finite ones are spelled `nan`, `inf` and
/// `-inf` here (Python's `repr`), while JSON uses `NaN`, `Infinity` and `-Infinity`.
pub fn float_repr(f: f64) -> String {
    let mut out = Vec::with_capacity(24);
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    write_finite_float(&mut out, f);
    out.into_iter().map(char::from).collect()
}

fn too_deep() -> SerializerError {
    SerializerError::TooDeep { limit: MAX_DEPTH }
}

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), SerializerError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => write_int(out, i)?,
        Value::Float(f) => write_float(out, *f),
        Value::Str(s) => write_str(out, s),
        Value::List(items) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(too_deep());
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_item(out, item, depth)?;
            }
            out.push(b']');
        }
        Value::Dict(dict) => write_dict(out, dict, depth)?,
    }
    Ok(())
}

/// A list item or dict value: [`write_value`], with a string (the most common value) written
/// right here instead of through a call, which for a short string cost as much as writing it.
#[inline(always)]
fn write_item(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), SerializerError> {
    match value {
        Value::Str(s) => {
            write_str(out, s);
            Ok(())
        }
        other => write_value(out, other, depth),
    }
}

fn write_dict(out: &mut Vec<u8>, dict: &Dict, depth: usize) -> Result<(), SerializerError> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    out.push(b'{');
    for (i, (key, value)) in dict.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(out, key);
        write_item(out, value, depth)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_int(out: &mut Vec<u8>, i: &Int) -> Result<(), SerializerError> {
    match i.as_i64() {
        Some(v) => write_i64(out, v),
        None => {
            if i.exceeds_python_str_digits() {
                return Err(SerializerError::Unsupported {
                    format: FORMAT,
                    reason: format!(
                        "integer has more than {MAX_STR_DIGITS} digits, which Python refuses to \
                         convert to text; store it as a string"
                    ),
                });
            }
            // Big integers are rare; formatting through `Display` is fine for them.
            let mut text = String::new();
            let _ = write!(text, "{i}");
            out.extend_from_slice(text.as_bytes());
        }
    }
    Ok(())
}

fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        pos -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n % 10) as u8;
        buf[pos] = b'0' + digit;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[pos..]);
}

fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        write_finite_float(out, f);
    }
}

/// A fixed buffer for one formatted float, so formatting allocates nothing.
struct FloatBuf {
    buf: [u8; 32],
    len: usize,
}

impl std::fmt::Write for FloatBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes a finite float the way Python's `repr` does.
///
/// Rust's `{:e}` prints the shortest digits that round-trip (as Python does), e.g.
/// `-1.2345e-7`; this lays them out in Python's style: positional notation when the decimal
/// exponent is in [-4, 16), otherwise `d.ddde±XX`, and always a `.0` or an exponent.
fn write_finite_float(out: &mut Vec<u8>, f: f64) {
    let mut fb = FloatBuf {
        buf: [0; 32],
        len: 0,
    };
    // A finite f64 in `{:e}` form is at most 24 bytes, so this never fails.
    if write!(fb, "{f:e}").is_err() {
        out.extend_from_slice(b"nan");
        return;
    }
    let shortest_digits = fb.buf[..fb.len]
        .iter()
        .take_while(|&&b| b != b'e')
        .filter(|b| b.is_ascii_digit())
        .count();
    // When two shortest candidates are equally close (the value is exactly halfway between
    // them), Rust's shortest mode rounds the tie up while Python rounds it to even. Rust's
    // fixed-precision mode rounds ties to even and is otherwise the closest candidate; it is
    // Python's answer whenever it reads back as the same float.
    let mut exact = FloatBuf {
        buf: [0; 32],
        len: 0,
    };
    if may_be_a_decimal_tie(f)
        && write!(exact, "{:.*e}", shortest_digits.saturating_sub(1), f).is_ok()
        && exact.buf[..exact.len] != fb.buf[..fb.len]
        && std::str::from_utf8(&exact.buf[..exact.len])
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|g| g.to_bits() == f.to_bits())
    {
        fb = exact;
    }
    let text = &fb.buf[..fb.len];
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_pos = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
    let (mantissa, exp_text) = text.split_at(e_pos);
    let exp_text = exp_text.get(1..).unwrap_or(b"0");
    let mut exp: i32 = 0;
    let (exp_negative, exp_digits) = match exp_text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, exp_text),
    };
    for &d in exp_digits {
        exp = exp * 10 + i32::from(d - b'0');
    }
    if exp_negative {
        exp = -exp;
    }
    // Digits without the decimal point: "1.2345" -> "12345".
    let mut digits = [0u8; 20];
    let mut n_digits = 0;
    for &b in mantissa {
        if b != b'.' {
            digits[n_digits] = b;
            n_digits += 1;
        }
    }
    let digits = &digits[..n_digits];

    if negative {
        out.push(b'-');
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.extend_from_slice(digits);
        } else {
            // `exp` is in 0..16 here.
            #[allow(clippy::cast_sign_loss)]
            let int_len = exp as usize + 1;
            if digits.len() > int_len {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            } else {
                out.extend_from_slice(digits);
                for _ in digits.len()..int_len {
                    out.push(b'0');
                }
                out.extend_from_slice(b".0");
            }
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        write_i64(out, i64::from(abs));
    }
}

/// Whether `f`'s exact decimal value has at most 18 significant digits, the only case in which
/// it can lie exactly halfway between two shortest candidates (which have at most 17 digits).
/// Most floats fail this cheap test and skip the second formatting pass.
fn may_be_a_decimal_tie(f: f64) -> bool {
    const LIMIT: u128 = 1_000_000_000_000_000_000; // 10^18
    let bits = f.to_bits();
    let biased_exp = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = bits & ((1 << 52) - 1);
    let (mut mantissa, mut exp) = if biased_exp == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased_exp - 1075)
    };
    if mantissa == 0 {
        return false;
    }
    let zeros = mantissa.trailing_zeros();
    mantissa >>= zeros;
    exp += i32::try_from(zeros).unwrap_or(0);
    let mut value = u128::from(mantissa);
    if exp >= 0 {
        // An integer m * 2^exp: drop its trailing decimal zeros (each takes a factor 5 from m and a
        // factor 2 from 2^exp); what remains must stay below 10^18.
        while exp > 0 && value % 5 == 0 {
            value /= 5;
            exp -= 1;
        }
        for _ in 0..exp {
            value <<= 1;
            if value >= LIMIT {
                return false;
            }
        }
        true
    } else {
        // m / 2^k = m * 5^k / 10^k: its significant digits are those of m * 5^k.
        for _ in 0..-exp {
            value *= 5;
            if value >= LIMIT {
                return false;
            }
        }
        true
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What each ASCII byte becomes inside a JSON string: 0 = itself, `u` = `\u00XX`, else `\` + it.
static ESCAPES: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x7f] = b'u';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table
};

fn write_u_escape(out: &mut Vec<u8>, unit: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[((unit >> 12) & 0xf) as usize],
        HEX[((unit >> 8) & 0xf) as usize],
        HEX[((unit >> 4) & 0xf) as usize],
        HEX[(unit & 0xf) as usize],
    ]);
}

/// Writes a string as Python's `json` does with `ensure_ascii=True`.
///
/// Inlined into the dict and list loops: nearly every session string needs no escape (keys,
/// SKUs, prices, hashes), and for those this is a few word tests and one copy, which cost less
/// than a call that saves and restores registers. Other strings take the out-of-line path.
#[inline(always)]
fn write_str(out: &mut Vec<u8>, s: &str) {
    write_str_then(out, s, b"\"");
}

/// Writes a dict key and the `:` after it.
#[inline(always)]
fn write_key(out: &mut Vec<u8>, key: &str) {
    write_str_then(out, key, b"\":");
}

/// [`write_str`], with `closing` (the closing quote, and what follows it) written in one go.
#[inline(always)]
fn write_str_then(out: &mut Vec<u8>, s: &str, closing: &[u8]) {
    let bytes = s.as_bytes();
    if all_plain_out(bytes) {
        out.reserve(bytes.len() + 1 + closing.len());
        out.push(b'"');
        extend_short(out, bytes);
        out.extend_from_slice(closing);
    } else {
        write_escaped_str(out, bytes);
        out.extend_from_slice(closing.get(1..).unwrap_or_default());
    }
}

/// Appends `bytes` with fixed-size copies when it is 16 bytes or shorter (two overlapping words:
/// the first, then the last written over the end of the first; under 4 bytes, byte by byte),
/// where `extend_from_slice` of a slice of unknown length calls `memcpy`, which for a session's
/// short keys and values costs more than the copy.
#[inline(always)]
fn extend_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    if let Some((first, last)) = first_and_last::<8>(bytes) {
        out.extend_from_slice(first);
        out.truncate(start + bytes.len() - 8);
        out.extend_from_slice(last);
    } else if let Some((first, last)) = first_and_last::<4>(bytes) {
        out.extend_from_slice(first);
        out.truncate(start + bytes.len() - 4);
        out.extend_from_slice(last);
    } else if bytes.len() < 4 {
        for &byte in bytes {
            out.push(byte);
        }
    } else {
        out.extend_from_slice(bytes);
    }
}

/// [`write_str`] for a string with characters to escape (`bytes` is a valid `str`), without
/// its closing quote.
#[inline(never)]
fn write_escaped_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip the run of characters that stand for themselves, eight bytes at a time.
        i += plain_run::<true>(&bytes[i..]);
        let Some(&b) = bytes.get(i) else {
            break;
        };
        if b < 0x80 {
            let escape = ESCAPES[b as usize];
            if escape == 0 {
                i += 1;
                continue;
            }
            out.extend_from_slice(&bytes[start..i]);
            if escape == b'u' {
                write_u_escape(out, u32::from(b));
            } else {
                out.extend_from_slice(&[b'\\', escape]);
            }
            i += 1;
            start = i;
        } else {
            out.extend_from_slice(&bytes[start..i]);
            // Decode one UTF-8 sequence (the input is a valid `str`).
            let width = if b >= 0xf0 {
                4
            } else if b >= 0xe0 {
                3
            } else {
                2
            };
            let mut code = u32::from(b) & (0x7f >> width);
            for &cont in &bytes[i + 1..(i + width).min(bytes.len())] {
                code = (code << 6) | (u32::from(cont) & 0x3f);
            }
            if code >= 0x1_0000 {
                let v = code - 0x1_0000;
                write_u_escape(out, 0xd800 | (v >> 10));
                write_u_escape(out, 0xdc00 | (v & 0x3ff));
            } else {
                write_u_escape(out, code);
            }
            i += width;
            start = i;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Parses stored session bytes as Django does: each byte is one character (latin-1), then
/// Python's `json.loads` rules.
///
/// # Errors
/// [`SerializerError::Malformed`] for anything `json.loads` rejects (with Python's wording), a lone
/// surrogate escape, or an integer over 4300 digits; [`SerializerError::TooDeep`] past
/// [`MAX_DEPTH`].
///
/// # Example
/// ```
/// use session_core::serializer::json;
/// use session_core::value::Value;
///
/// let v = json::from_slice(br#"{"a":1,"b":[1.5,null],"a":3}"#).unwrap();
/// let dict = v.as_dict().unwrap();
/// assert_eq!(dict.keys().collect::<Vec<_>>(), ["a", "b"]); // last value wins, first position
/// assert_eq!(dict["a"], Value::from(3i64));
/// ```
pub fn from_slice(bytes: &[u8]) -> Result<Value, SerializerError> {
    // Stored sessions are ASCII (Django writes nothing else): checking the whole input once
    // lets every string be taken from it without checking each one again.
    parse(bytes, std::str::from_utf8(bytes).ok(), true)
}

/// Parses JSON text with Python's `json.loads` rules, reading non-ASCII characters as the Unicode
/// text they are (use this for human-supplied JSON such as UTF-8 stdin, and [`from_slice`] for
/// stored session bytes).
///
/// # Errors
/// As [`from_slice`].
pub fn from_str(text: &str) -> Result<Value, SerializerError> {
    if text.starts_with('\u{feff}') {
        return Err(malformed(
            0,
            "Unexpected UTF-8 BOM (decode using utf-8-sig)",
        ));
    }
    parse(text.as_bytes(), Some(text), false)
}

/// The parser's working stacks, kept per thread between documents so that parsing one does
/// not regrow them from nothing (they are empty between documents; only their room is kept).
#[derive(Default)]
struct Stacks {
    scratch: Vec<u8>,
    items: Vec<Value>,
    /// The last document's [`Parser::dict_room`]: a thread's sessions are mostly alike, so the
    /// next session's top-level dict guesses its room from the last one's.
    dict_room: [u8; GUESSED_DEPTHS],
}

/// Stacks larger than this (in items) are given back after a document rather than kept.
const KEPT_STACK: usize = 4096;

thread_local! {
    static STACKS: std::cell::RefCell<Stacks> = std::cell::RefCell::new(Stacks::default());
}

fn parse(input: &[u8], text: Option<&str>, latin1: bool) -> Result<Value, SerializerError> {
    let run = |stacks: &mut Stacks| {
        let mut parser = Parser {
            input,
            text,
            pos: 0,
            latin1,
            scratch: std::mem::take(&mut stacks.scratch),
            items: std::mem::take(&mut stacks.items),
            dict_room: stacks.dict_room,
        };
        let result = parser.parse_document();
        // A failed parse leaves partial containers behind; clear them before keeping the room.
        parser.items.clear();
        parser.scratch.clear();
        stacks.dict_room = parser.dict_room;
        if parser.items.capacity() <= KEPT_STACK {
            stacks.items = parser.items;
        }
        if parser.scratch.capacity() <= KEPT_STACK * 16 {
            stacks.scratch = parser.scratch;
        }
        result
    };
    with_reused(&STACKS, run)
}

/// Moves `stack[first..]` into a vector of exactly that size, leaving the stack its room.
///
/// Copies the items in one `memcpy` (`split_off`), where `drain(first..).collect()` moved them
/// one at a time (4 % of a 32 KB decode). `split_off(0)` would hand over the stack's whole
/// buffer, room and all, to a value that lives as long as the session, so the outermost
/// container moves its items with `append` instead, also one copy.
#[inline]
fn take_from<T>(stack: &mut Vec<T>, first: usize) -> Vec<T> {
    if first == 0 {
        let mut taken = Vec::with_capacity(stack.len());
        taken.append(stack);
        taken
    } else {
        stack.split_off(first)
    }
}

fn malformed(offset: usize, reason: impl Into<String>) -> SerializerError {
    SerializerError::Malformed {
        format: FORMAT,
        offset,
        reason: reason.into(),
    }
}

/// Where [`Parser::parse_object_into`] puts the dict it parsed. A trait rather than a closure so
/// that the dict goes into its slot inline: through a closure that was not inlined, it was
/// passed in memory and copied in other widths than it was written in (a failed store forward).
trait DictSink {
    type Output;
    fn finish(parser: &mut Parser<'_>, dict: Dict) -> Self::Output;
}

/// The dict is returned as a [`Value`].
struct AsValue;

impl DictSink for AsValue {
    type Output = Value;

    #[inline(always)]
    fn finish(_: &mut Parser<'_>, dict: Dict) -> Value {
        Value::Dict(dict)
    }
}

/// The dict is a list item, pushed onto the parser's items stack.
struct OntoItems;

impl DictSink for OntoItems {
    type Output = ();

    #[inline(always)]
    fn finish(parser: &mut Parser<'_>, dict: Dict) {
        push_in_room(&mut parser.items, Value::Dict(dict));
    }
}

struct Parser<'a> {
    input: &'a [u8],
    /// The input as text, when it is valid UTF-8 (always for [`from_str`], nearly always for
    /// stored bytes): plain runs are then sliced from it without checking them again.
    text: Option<&'a str>,
    pos: usize,
    /// Whether bytes >= 0x80 are latin-1 characters (stored bytes) or UTF-8 (a `&str`).
    latin1: bool,
    /// Reused buffer for strings with escapes.
    scratch: Vec<u8>,
    /// Items of the arrays being parsed, innermost last; each array takes its own off the end
    /// into a list of exactly the right size.
    items: Vec<Value>,
    /// How many entries the last object at each depth had (below the top, at most
    /// [`MAX_KEPT_ENTRIES`]): an object's entries are parsed straight into a buffer of that room,
    /// which sibling objects (a cart's line items) fill exactly, so the dict is built where it
    /// was parsed, with no copy (moving them off a shared stack into a buffer of their own was
    /// 5 % of a 32 KB decode).
    dict_room: [u8; GUESSED_DEPTHS],
}

/// Objects nested deeper than this guess their room from the deepest guessed level.
const GUESSED_DEPTHS: usize = 8;

/// The room an object's first buffer has when no object at its depth came before.
const FIRST_DICT_ROOM: usize = 4;

impl Parser<'_> {
    fn parse_document(&mut self) -> Result<Value, SerializerError> {
        self.skip_ws();
        let value = self.parse_value(0)?;
        self.skip_ws();
        if self.pos != self.input.len() {
            return Err(malformed(self.pos, "Extra data"));
        }
        Ok(value)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat_literal(&mut self, literal: &[u8]) -> bool {
        if self.input[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn parse_value(&mut self, depth: usize) -> Result<Value, SerializerError> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.parse_string(start).map(Value::Str)
            }
            Some(b'{') => {
                self.pos += 1;
                self.parse_object(depth + 1)
            }
            Some(b'[') => {
                self.pos += 1;
                self.parse_array(depth + 1)
            }
            Some(b'n') if self.eat_literal(b"null") => Ok(Value::Null),
            Some(b't') if self.eat_literal(b"true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat_literal(b"false") => Ok(Value::Bool(false)),
            Some(b'N') if self.eat_literal(b"NaN") => Ok(Value::Float(f64::NAN)),
            Some(b'I') if self.eat_literal(b"Infinity") => Ok(Value::Float(f64::INFINITY)),
            Some(b'-') if self.input[self.pos..].starts_with(b"-Infinity") => {
                self.pos += b"-Infinity".len();
                Ok(Value::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.parse_number(),
            _ => Err(malformed(start, "Expecting value")),
        }
    }

    /// Parses an array item and pushes it: [`parse_value`](Self::parse_value), except that a
    /// string, a dict or a small integer skips the general dispatch (see
    /// [`parse_str`](Self::parse_str)) and goes straight into its slot. Passing it back as a
    /// `Result<Value, _>` first made the CPU re-read its bytes in other widths than they had just
    /// been written in, and wait for them (a failed store forward).
    #[inline(always)]
    fn push_item(&mut self, depth: usize) -> Result<(), SerializerError> {
        match self.peek() {
            Some(b'"') => {
                let at = self.pos;
                self.pos += 1;
                let string = Str::from(self.parse_str(at)?);
                fill(push_default(&mut self.items), Value::Str(string));
                return Ok(());
            }
            // A list of dicts (a cart's line items): the dict is pushed by the call that built
            // it, from registers. Returned as a `Value` and copied into its slot here, it was
            // read back in other widths than it had just been written in (a failed store
            // forward, an eighth of the parser's samples).
            Some(b'{') => {
                self.pos += 1;
                return self.push_object_item(depth + 1);
            }
            Some(b'-' | b'0'..=b'9') => {
                if let Some(n) = self.small_int() {
                    fill(push_default(&mut self.items), Value::from(n));
                    return Ok(());
                }
            }
            _ => {}
        }
        let value = self.parse_value(depth)?;
        fill(push_default(&mut self.items), value);
        Ok(())
    }

    /// Parses an object's value and pushes it with its `key`, as [`push_item`](Self::push_item)
    /// does an item. The two stay separate: one helper taking the slot as a closure measured 8 %
    /// slower (98 against 90 µs per 32 KB decode), the writes through the returned reference no
    /// longer going straight into the slot.
    #[inline(always)]
    fn push_entry(
        &mut self,
        entries: &mut Vec<(Str, Value)>,
        key: Str,
        depth: usize,
    ) -> Result<(), SerializerError> {
        if self.peek() == Some(b'"') {
            let start = self.pos;
            self.pos += 1;
            let text = self.parse_str(start)?;
            let slot = push_default(entries);
            fill(&mut slot.0, key);
            fill(&mut slot.1, Value::Str(Str::from(text)));
        } else if let Some(n) = self.small_int() {
            // Written from a register: through `parse_value` the number came back in memory and
            // was copied into the slot in other widths (a failed store forward).
            push_in_room(entries, (key, Value::from(n)));
        } else {
            let value = self.parse_value(depth)?;
            let slot = push_default(entries);
            fill(&mut slot.0, key);
            fill(&mut slot.1, value);
        }
        Ok(())
    }

    fn parse_array(&mut self, depth: usize) -> Result<Value, SerializerError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::List(Vec::new()));
        }
        let first = self.items.len();
        loop {
            self.push_item(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(take_from(&mut self.items, first)));
                }
                _ => return Err(malformed(self.pos, "Expecting ',' delimiter")),
            }
        }
    }

    fn parse_object(&mut self, depth: usize) -> Result<Value, SerializerError> {
        self.parse_object_into::<AsValue>(depth)
    }

    /// Parses an object that is a list item and pushes it onto the items stack (see
    /// [`push_item`](Self::push_item)).
    #[inline(never)]
    fn push_object_item(&mut self, depth: usize) -> Result<(), SerializerError> {
        self.parse_object_into::<OntoItems>(depth)
    }

    /// Parses an object's body (`self.pos` is just past its `{`) and hands the dict to `S`.
    #[inline(always)]
    fn parse_object_into<S: DictSink>(
        &mut self,
        depth: usize,
    ) -> Result<S::Output, SerializerError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(S::finish(self, Dict::new()));
        }
        let guessed = self
            .dict_room
            .get(depth.min(GUESSED_DEPTHS).saturating_sub(1))
            .copied();
        let room = match guessed {
            Some(0) | None => FIRST_DICT_ROOM,
            Some(room) => usize::from(room),
        };
        let mut entries = Dict::parsed_entries_buffer(room);
        let mut prints = KeyPrints::new();
        loop {
            let key_start = self.pos;
            if self.peek() != Some(b'"') {
                return Err(malformed(
                    key_start,
                    "Expecting property name enclosed in double quotes",
                ));
            }
            self.pos += 1;
            let key = self.parse_str(key_start)?;
            prints.add(key);
            let key = Str::from(key);
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(malformed(self.pos, "Expecting ':' delimiter"));
            }
            self.pos += 1;
            self.skip_ws();
            self.push_entry(&mut entries, key, depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    if let Some(room) = self
                        .dict_room
                        .get_mut(depth.min(GUESSED_DEPTHS).saturating_sub(1))
                    {
                        // Below the top, a guess never reserves more than a kept buffer holds,
                        // so a hostile document nesting many objects under a large one reserves
                        // little. The document's own object is one, so its guess may be larger:
                        // a session of more keys than that is then built without growing.
                        let most = if depth == 1 {
                            usize::from(u8::MAX)
                        } else {
                            MAX_KEPT_ENTRIES
                        };
                        *room = u8::try_from(entries.len().min(most)).unwrap_or(u8::MAX);
                    }
                    let may_repeat = prints.may_repeat();
                    let entries = Dict::fit_parsed_entries(entries);
                    if may_repeat {
                        return Ok(self.finish_repeating::<S>(entries));
                    }
                    // Kept apart from the path above (in a function of its own, so that the
                    // two are not merged again), the usual dict stays in registers on its way
                    // into its slot; merged with it, it was assembled on the stack and copied in
                    // other widths (a failed store forward).
                    return Ok(S::finish(self, Dict::from_checked_parsed(entries, false)));
                }
                _ => return Err(malformed(self.pos, "Expecting ',' delimiter")),
            }
        }
    }

    /// The end of [`parse_object_into`](Self::parse_object_into) for an object whose keys may
    /// repeat (see [`KeyPrints`]).
    #[inline(never)]
    fn finish_repeating<S: DictSink>(&mut self, entries: Vec<(Str, Value)>) -> S::Output {
        S::finish(self, Dict::from_checked_parsed(entries, true))
    }

    /// Parses a string body; `self.pos` is just past the opening quote at `start`.
    #[inline]
    fn parse_string(&mut self, start: usize) -> Result<Str, SerializerError> {
        self.parse_str(start).map(Str::from)
    }

    /// Parses a string body into its text: a slice of the input when it is one plain run (nearly
    /// always), else the scratch buffer's unescaped text.
    ///
    /// The loops ([`push_entry`](Self::push_entry), [`push_item`](Self::push_item)) call this
    /// straight, so a string value skips the general dispatch, and make its `Str` where they
    /// write it: a `Str` made here and passed back was stored in 8-byte pieces and copied into
    /// its slot in 16-byte ones, waiting for those stores each time (a failed store forward,
    /// over a quarter of its caller's samples). The escaped path stays out of line to keep this
    /// small.
    #[inline(always)]
    fn parse_str(&mut self, start: usize) -> Result<&str, SerializerError> {
        // Fast path: plain ASCII up to the closing quote, taken from the input as it is.
        let rest = &self.input[self.pos..];
        let plain = plain_ascii_run(rest);
        if rest.get(plain) == Some(&b'"') {
            let run = self.pos..self.pos + plain;
            self.pos += plain + 1;
            let text = match self.text {
                // The run is ASCII, so its ends are character boundaries.
                Some(text) => text.get(run),
                None => std::str::from_utf8(&rest[..plain]).ok(),
            };
            return text.ok_or_else(|| malformed(start, "invalid string"));
        }
        self.parse_escaped_string(start, plain)
    }

    /// The rest of a string that is not one plain run: `plain` bytes from `self.pos` are plain.
    #[inline(never)]
    fn parse_escaped_string(
        &mut self,
        start: usize,
        plain: usize,
    ) -> Result<&str, SerializerError> {
        let rest = &self.input[self.pos..];
        self.scratch.clear();
        self.scratch.extend_from_slice(&rest[..plain]);
        self.pos += plain;
        loop {
            let Some(&b) = self.input.get(self.pos) else {
                return Err(malformed(start, "Unterminated string starting at"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    self.pos += 1;
                    self.parse_escape(start)?;
                }
                0..0x20 => {
                    return Err(malformed(self.pos, "Invalid control character at"));
                }
                0x80.. if self.latin1 => {
                    // One byte, one code point U+0080..U+00FF.
                    self.scratch.push(0xc0 | (b >> 6));
                    self.scratch.push(0x80 | (b & 0x3f));
                    self.pos += 1;
                }
                0x80.. => {
                    // UTF-8 mode: the input is a `&str`, so this starts a valid sequence; copy
                    // the run of non-ASCII bytes.
                    let run = self.input[self.pos..]
                        .iter()
                        .position(|&c| c < 0x80)
                        .unwrap_or(self.input.len() - self.pos);
                    self.scratch
                        .extend_from_slice(&self.input[self.pos..self.pos + run]);
                    self.pos += run;
                }
                _ => {
                    let run = plain_ascii_run(&self.input[self.pos..]);
                    self.scratch
                        .extend_from_slice(&self.input[self.pos..self.pos + run]);
                    self.pos += run;
                }
            }
        }
        // The scratch buffer stays with the parser for the next escaped string.
        std::str::from_utf8(&self.scratch).map_err(|_| malformed(start, "invalid UTF-8 in string"))
    }

    fn parse_hex4(&mut self) -> Option<u32> {
        let digits = self.input.get(self.pos..self.pos + 4)?;
        let mut value = 0u32;
        for &d in digits {
            let nibble = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return None,
            };
            value = (value << 4) | u32::from(nibble);
        }
        self.pos += 4;
        Some(value)
    }

    /// Parses one escape; `self.pos` is just past the backslash.
    fn parse_escape(&mut self, start: usize) -> Result<(), SerializerError> {
        let escape_at = self.pos - 1;
        let Some(&c) = self.input.get(self.pos) else {
            return Err(malformed(start, "Unterminated string starting at"));
        };
        self.pos += 1;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self
                    .parse_hex4()
                    .ok_or_else(|| malformed(escape_at, "Invalid \\uXXXX escape"))?;
                let code = if (0xd800..0xdc00).contains(&unit) {
                    // A high surrogate forms one character only with a following low surrogate.
                    let save = self.pos;
                    let low = if self.input.get(self.pos..self.pos + 2) == Some(b"\\u") {
                        self.pos += 2;
                        self.parse_hex4()
                    } else {
                        None
                    };
                    match low {
                        Some(low @ 0xdc00..0xe000) => {
                            0x1_0000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                        }
                        _ => {
                            self.pos = save;
                            return Err(lone_surrogate(escape_at, unit));
                        }
                    }
                } else if (0xdc00..0xe000).contains(&unit) {
                    return Err(lone_surrogate(escape_at, unit));
                } else {
                    unit
                };
                let ch = char::from_u32(code).ok_or_else(|| lone_surrogate(escape_at, code))?;
                let mut buf = [0u8; 4];
                self.scratch
                    .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err(malformed(escape_at, "Invalid \\escape")),
        };
        self.scratch.push(simple);
        Ok(())
    }

    /// Reads a plain integer of at most 18 digits at `self.pos` (counts, ids, quantities: most
    /// of a session's numbers) in a register, advancing past it; `None`, moving nothing, for
    /// anything else (a float, a longer integer, a malformed number), which
    /// [`parse_number`](Self::parse_number) then reads or rejects with Python's message. The
    /// object and list loops call it before the general dispatch; `parse_number` starts with it.
    #[inline(always)]
    fn small_int(&mut self) -> Option<i64> {
        let input = self.input;
        let negative = input.get(self.pos) == Some(&b'-');
        let first = self.pos + usize::from(negative);
        let mut pos = first;
        let mut n: i64 = 0;
        while let Some(&digit @ b'0'..=b'9') = input.get(pos) {
            if pos - first == 18 {
                return None;
            }
            n = n * 10 + i64::from(digit - b'0');
            pos += 1;
        }
        let digits = pos - first;
        let leading_zero = digits > 1 && input[first] == b'0';
        if digits == 0 || leading_zero || matches!(input.get(pos), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos = pos;
        Some(if negative { -n } else { n })
    }

    fn parse_number(&mut self) -> Result<Value, SerializerError> {
        if let Some(n) = self.small_int() {
            return Ok(Value::from(n));
        }
        // Floats, longer integers, and the integers `small_int` leaves because of what follows
        // them (`0` of `01`, `1` of `1.` or `1e`: Python reads them and then fails on the rest).
        let start = self.pos;
        let input = self.input;
        let mut pos = start;
        if input.get(pos) == Some(&b'-') {
            pos += 1;
        }
        match input.get(pos) {
            Some(b'0') => pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = input.get(pos) {
                    pos += 1;
                }
            }
            _ => return Err(malformed(start, "Expecting value")),
        }
        let int_end = pos;
        let mut is_float = false;
        // Like Python's number regex: a '.' or exponent without digits is not part of the number
        // (and then fails as extra data).
        if input.get(pos) == Some(&b'.') && matches!(input.get(pos + 1), Some(b'0'..=b'9')) {
            is_float = true;
            pos += 2;
            while let Some(b'0'..=b'9') = input.get(pos) {
                pos += 1;
            }
        }
        if let Some(b'e' | b'E') = input.get(pos) {
            let mut exp = pos + 1;
            if let Some(b'+' | b'-') = input.get(exp) {
                exp += 1;
            }
            if let Some(b'0'..=b'9') = input.get(exp) {
                is_float = true;
                pos = exp;
                while let Some(b'0'..=b'9') = input.get(pos) {
                    pos += 1;
                }
            }
        }
        self.pos = pos;
        let token = &input[start..pos];
        if is_float {
            // The token is ASCII; Rust's parser is correctly rounded like Python's `float()`, and
            // overflows to infinity the same way (`1E400`).
            let text = std::str::from_utf8(token).map_err(|_| malformed(start, "bad number"))?;
            let f: f64 = text.parse().map_err(|_| malformed(start, "bad number"))?;
            return Ok(Value::Float(f));
        }
        let digits = int_end - start - usize::from(input[start] == b'-');
        if digits > MAX_STR_DIGITS {
            return Err(malformed(
                start,
                format!(
                    "Exceeds the limit ({MAX_STR_DIGITS} digits) for integer string conversion: \
                     value has {digits} digits"
                ),
            ));
        }
        let text = std::str::from_utf8(token).map_err(|_| malformed(start, "bad number"))?;
        text.parse::<Int>()
            .map(Value::Int)
            .map_err(|_| malformed(start, "bad number"))
    }
}

fn lone_surrogate(offset: usize, unit: u32) -> SerializerError {
    malformed(
        offset,
        format!(
            "lone surrogate \\u{unit:04x} in string: Python keeps it, but session strings must be \
             valid Unicode"
        ),
    )
}

/// Length of the run of plain string characters at the start of `bytes`: printable ASCII other
/// than `"` and `\` (and, with `DEL_TOO`, other than DEL, which Python escapes on output but
/// reads as itself). Strings Django writes are nearly always one such run, so this is the inner
/// loop of both reading and writing; it tests eight bytes at a time.
fn plain_run<const DEL_TOO: bool>(bytes: &[u8]) -> usize {
    let mut done = 0;
    while let Some(chunk) = bytes.get(done..).and_then(<[u8]>::first_chunk::<8>) {
        let marks = special_marks::<DEL_TOO>(u64::from_le_bytes(*chunk));
        if marks != 0 {
            return done + (marks.trailing_zeros() / 8) as usize;
        }
        done += 8;
    }
    // The last few bytes (all of a short string): one table lookup each.
    let table = if DEL_TOO { &PLAIN_OUT } else { &PLAIN_IN };
    done + bytes[done..]
        .iter()
        .position(|&b| !table[usize::from(b)])
        .unwrap_or(bytes.len() - done)
}

/// The high bit of each byte of `word` (little-endian) that is not plain: a quote, a backslash,
/// below 0x20, at least 0x80 (and, with `DEL_TOO`, DEL). Borrows can only mark bytes above a
/// marked one, so the lowest mark is exact; whether any mark is set is exact too.
#[inline]
fn special_marks<const DEL_TOO: bool>(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    const DELS: u64 = ONES * 0x7f;
    const SPACES: u64 = ONES * 0x20;
    let quotes = word ^ QUOTES;
    let backslashes = word ^ BACKSLASHES;
    // Per byte, the high bit ends up set where the byte is zero (after the XORs: a quote or
    // backslash), below 0x20, or at least 0x80.
    let mut marks = quotes.wrapping_sub(ONES) & !quotes
        | backslashes.wrapping_sub(ONES) & !backslashes
        | word.wrapping_sub(SPACES) & !word
        | word;
    if DEL_TOO {
        let dels = word ^ DELS;
        marks |= dels.wrapping_sub(ONES) & !dels;
    }
    marks & HIGH
}

/// Whether every byte of `bytes` is written as itself (see [`plain_run`]): the writer's test for
/// the common string, with no byte-by-byte loop at any length. Strings of 8 to 16 bytes are
/// tested as two overlapping 8-byte words, longer ones as 8-byte words with the last one
/// overlapping, strings of 4 to 7 bytes as two overlapping 4-byte words, shorter ones packed
/// with plain padding.
#[inline(always)]
fn all_plain_out(bytes: &[u8]) -> bool {
    if bytes.len() > 16 {
        return all_plain_out_long(bytes);
    }
    let marks = if let Some((first, last)) = first_and_last::<8>(bytes) {
        out_marks(first) | out_marks(last)
    } else if let Some((first, last)) = first_and_last::<4>(bytes) {
        let mut both = [0; 8];
        both[..4].copy_from_slice(first);
        both[4..].copy_from_slice(last);
        out_marks(&both)
    } else if let [first, .., last] | [first @ last] = bytes {
        // 1 to 3 bytes ("qty", "sku": common keys): their first, middle and last byte cover
        // them all, packed in a register with plain padding. Copying them into a padded buffer
        // and reading it back as a word made the CPU wait for the copy's stores (a failed store
        // forward), a fifth of the writer's string time.
        let middle = bytes.get(bytes.len() / 2).unwrap_or(first);
        let packed = u64::from(*first)
            | (u64::from(*middle) << 8)
            | (u64::from(*last) << 16)
            | u64::from_le_bytes([0, 0, 0, b'a', b'a', b'a', b'a', b'a']);
        special_marks::<true>(packed)
    } else {
        0
    };
    marks == 0
}

/// [`all_plain_out`] for strings of more than 16 bytes, out of line: the loop is larger than
/// the short strings' tests it would otherwise be inlined with.
#[inline(never)]
fn all_plain_out_long(bytes: &[u8]) -> bool {
    let Some(last) = bytes.last_chunk::<8>() else {
        // Not called for these; answered right all the same.
        return bytes.iter().all(|&b| PLAIN_OUT[usize::from(b)]);
    };
    let (chunks, _) = bytes.as_chunks::<8>();
    // The last word overlaps the chunks, covering the bytes they leave over.
    let last = out_marks(last);
    chunks
        .iter()
        .fold(last, |marks, chunk| marks | out_marks(chunk))
        == 0
}

/// [`special_marks`] of an 8-byte word for writing (DEL must be escaped).
#[inline(always)]
fn out_marks(word: &[u8; 8]) -> u64 {
    special_marks::<true>(u64::from_le_bytes(*word))
}

/// The first and the last `N` bytes of `bytes`, when it is at least `N` and at most `2N` bytes
/// long: two overlapping words that together are all of it.
#[inline(always)]
fn first_and_last<const N: usize>(bytes: &[u8]) -> Option<(&[u8; N], &[u8; N])> {
    if bytes.len() > 2 * N {
        return None;
    }
    Some((bytes.first_chunk::<N>()?, bytes.last_chunk::<N>()?))
}

/// Which bytes [`plain_run`] passes over: printable ASCII but `"` and `\`, and DEL when
/// reading (`PLAIN_IN`) but not when writing (`PLAIN_OUT`).
static PLAIN_IN: [bool; 256] = plain_table(false);
static PLAIN_OUT: [bool; 256] = plain_table(true);

const fn plain_table(del_too: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b < 0x80 {
        table[b] = !(b == b'"' as usize || b == b'\\' as usize || (del_too && b == 0x7f));
        b += 1;
    }
    table
}

/// [`plain_run`] for reading: DEL is plain.
fn plain_ascii_run(bytes: &[u8]) -> usize {
    plain_run::<false>(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dumps(v: &Value) -> String {
        to_string(v).unwrap()
    }

    #[test]
    fn nested_containers_keep_their_own_items_and_python_duplicate_rules() {
        let text = br#"{"a":[1,{"x":[],"y":{"z":2,"z":3}},[4,[5]]],"b":{},"a2":[{"k":1,"j":2,"k":9}],"b":7}"#;
        let value = from_slice(text).unwrap();
        // Python: json.dumps(json.loads(text), separators=(",", ":"))
        assert_eq!(
            dumps(&value),
            r#"{"a":[1,{"x":[],"y":{"z":3}},[4,[5]]],"b":7,"a2":[{"k":9,"j":2}]}"#
        );
        assert!(from_slice(br#"{"a":[1,2,{"b":[3,}]}"#).is_err());
    }

    #[test]
    fn containers_are_built_at_their_exact_size_after_a_large_document() {
        // A large document first, so the reused stacks have plenty of room to hand over.
        let big = format!("[{}]", vec!["{\"k\":[1,2]}"; 2000].join(","));
        assert!(from_slice(big.as_bytes()).is_ok());
        let list = from_slice(br#"[1,[2,3],{"a":4,"b":[5]}]"#).unwrap();
        let Value::List(items) = &list else {
            panic!("not a list: {list:?}")
        };
        assert_eq!((items.len(), items.capacity()), (3, 3));
        let Value::List(inner) = &items[1] else {
            panic!("not a list: {:?}", items[1])
        };
        assert_eq!((inner.len(), inner.capacity()), (2, 2));
        let dict = from_slice(br#"{"a":1,"b":{"c":2},"d":3}"#).unwrap();
        let Value::Dict(dict) = &dict else {
            panic!("not a dict: {dict:?}")
        };
        assert_eq!((dict.len(), dict.capacity()), (3, 3));
        assert_eq!(dumps(&list), r#"[1,[2,3],{"a":4,"b":[5]}]"#);
    }

    #[test]
    fn a_dropped_sessions_dict_buffers_are_reused_by_the_next_decode() {
        // A thread of its own, so no other test's dicts are kept on it.
        std::thread::spawn(|| {
            let cart = format!(
                r#"{{"cart":[{}],"n":1}}"#,
                vec![
                    r#"{"sku":"SKU-000042","name":"Merino wool socks","qty":2,"price":"12.34"}"#;
                    300
                ]
                .join(",")
            );
            drop(from_slice(cart.as_bytes()).unwrap());
            let kept = crate::value::recycle::kept_bytes();
            assert!(
                kept >= 300 * 4 * std::mem::size_of::<(Str, Value)>(),
                "kept {kept} B"
            );
            let again = from_slice(cart.as_bytes()).unwrap();
            assert!(
                crate::value::recycle::kept_bytes() < kept / 100,
                "the second decode took the kept buffers"
            );
            let Value::List(items) = &again.as_dict().unwrap()["cart"] else {
                panic!("no cart")
            };
            let Value::Dict(item) = &items[299] else {
                panic!("not a dict")
            };
            assert_eq!((item.len(), item.capacity()), (4, 4));
            assert_eq!(item["qty"], Value::from(2));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn sibling_dicts_of_other_sizes_than_the_last_are_built_at_their_exact_size() {
        // Each object's buffer is guessed from the last one at its depth: smaller, larger,
        // larger than a kept buffer and than a scan serves, then empty and small again.
        let many: Vec<String> = (0..20).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let text = format!(
            r#"[{{"a":1,"b":2}},{{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}},{{"x":{{"y":1}}}},{{{}}},{{}},{{"z":[{{"q":1}}]}}]"#,
            many.join(",")
        );
        let list = from_slice(text.as_bytes()).unwrap();
        let Value::List(items) = &list else {
            panic!("not a list: {list:?}")
        };
        let rooms: Vec<(usize, usize)> = items
            .iter()
            .map(|item| {
                let dict = item.as_dict().unwrap();
                (dict.len(), dict.capacity())
            })
            .collect();
        assert_eq!(rooms, [(2, 2), (6, 6), (1, 1), (20, 20), (0, 0), (1, 1)]);
        assert_eq!(items[3].as_dict().unwrap()["k19"], Value::from(19));
        assert_eq!(dumps(&list), text);
    }

    #[test]
    fn only_the_documents_own_object_guesses_more_room_than_a_kept_buffer() {
        std::thread::spawn(|| {
            let keys = |n: usize| -> String {
                (0..n)
                    .map(|i| format!(r#""k{i}":{i}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let text = format!(r#"{{{},"inner":{{{}}}}}"#, keys(19), keys(30));
            let value = from_slice(text.as_bytes()).unwrap();
            assert_eq!(value.as_dict().unwrap().capacity(), 20);
            let rooms = STACKS.with(|stacks| stacks.borrow().dict_room);
            assert_eq!(&rooms[..2], &[20, MAX_KEPT_ENTRIES as u8]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn repeated_keys_leave_no_room_behind() {
        let entries: Vec<String> = (0..1000).map(|i| format!(r#""k":{i}"#)).collect();
        let text = format!("{{{}}}", entries.join(","));
        let value = from_slice(text.as_bytes()).unwrap();
        let Value::Dict(dict) = &value else {
            panic!("not a dict: {value:?}")
        };
        assert_eq!(dumps(&value), r#"{"k":999}"#);
        assert!(dict.capacity() < 100, "capacity {}", dict.capacity());
    }

    #[test]
    fn a_repeated_key_is_found_in_objects_of_every_size() {
        // Around the scan limit (12 keys): below it the keys' prints are compared, above it the
        // dict is indexed. The repeat comes last, after every other key.
        for n in [2, 3, 12, 13, 40] {
            let keys: Vec<String> = (0..n).map(|i| format!(r#""k{i}":{i}"#)).collect();
            let text = format!(r#"{{{},"k0":-1}}"#, keys.join(","));
            let value = from_slice(text.as_bytes()).unwrap();
            let dict = value.as_dict().unwrap();
            assert_eq!(dict.len(), n, "{n} keys");
            assert_eq!(dict.keys().next().map(Str::as_str), Some("k0"));
            assert_eq!(dict["k0"], Value::from(-1), "{n} keys");
        }
        // Keys alike in length and end bytes are still different keys.
        let value = from_slice(br#"{"axb":1,"ayb":2,"axb":3}"#).unwrap();
        assert_eq!(dumps(&value), r#"{"axb":3,"ayb":2}"#);
    }

    #[test]
    fn numbers_read_like_python_alone_and_inside_objects_and_lists() {
        // Integers take a shorter path (`small_int`) before the general number reader, in
        // objects and lists before the general dispatch too; whatever it does not take must fall
        // through to Python's result (json.loads; `None`: an error), in every position.
        // Integers read as the integer their text names (`-0` as 0), whatever their length.
        let integers = [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "999999999999999999",
            "1234567890123456789",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "12345678901234567890123",
        ]
        .map(|text| (text, Some(Value::Int(text.parse().unwrap()))));
        let float = |f: f64| Some(Value::Float(f));
        let others = [
            ("01", None),
            ("-01", None),
            ("00", None),
            ("1.5", float(1.5)),
            ("-2.25", float(-2.25)),
            ("1e5", float(1e5)),
            ("1E-5", float(1e-5)),
            ("3.", None),
            ("3e", None),
            ("3e+", None),
            ("-", None),
            ("--1", None),
            ("-Infinity", float(f64::NEG_INFINITY)),
            ("Infinity", float(f64::INFINITY)),
            ("NaN", float(f64::NAN)),
            ("12x", None),
        ];
        for (number, python) in integers.into_iter().chain(others) {
            let alone = from_slice(number.as_bytes());
            let in_list = from_slice(format!("[{number}]").as_bytes());
            let in_object = from_slice(format!(r#"{{"n":{number}}}"#).as_bytes());
            match python {
                Some(value) => {
                    assert!(alone.unwrap().is_identical(&value), "{number}");
                    let list = in_list.unwrap();
                    let Value::List(items) = &list else {
                        panic!("not a list: {list:?}")
                    };
                    assert!(items[0].is_identical(&value), "[{number}]: {list:?}");
                    let object = in_object.unwrap();
                    assert!(
                        object.as_dict().unwrap()["n"].is_identical(&value),
                        "{{\"n\":{number}}}: {object:?}"
                    );
                }
                None => {
                    assert!(alone.is_err(), "{number}: {alone:?}");
                    assert!(in_list.is_err(), "[{number}]: {in_list:?}");
                    assert!(in_object.is_err(), "{{\"n\":{number}}}: {in_object:?}");
                }
            }
        }
        // Python's messages, offsets and all (json.loads).
        let errors = [
            (&br#"{"n":01}"#[..], "at byte 6: Expecting ',' delimiter"),
            (b"[01]", "at byte 2: Expecting ',' delimiter"),
            (b"[-]", "at byte 1: Expecting value"),
            (br#"{"n":3e}"#, "at byte 6: Expecting ',' delimiter"),
        ];
        for (text, error) in errors {
            let message = from_slice(text).unwrap_err().to_string();
            assert!(message.ends_with(error), "{message}");
        }
    }

    #[test]
    fn the_plain_run_stops_exactly_at_the_first_special_byte_wherever_it_is() {
        let reference = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))
                .unwrap_or(bytes.len())
        };
        let specials = [b'"', b'\\', 0x00, 0x1f, 0x80, 0xff, b'\n'];
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|i| b' ' + (i * 7 % 95) as u8).collect();
            let plain: Vec<u8> = plain
                .into_iter()
                .map(|b| if b == b'"' || b == b'\\' { b'x' } else { b })
                .collect();
            assert_eq!(plain_ascii_run(&plain), len, "{plain:?}");
            for at in 0..len {
                for special in specials {
                    let mut bytes = plain.clone();
                    bytes[at] = special;
                    // A second special byte later must not matter.
                    bytes.push(b'"');
                    assert_eq!(plain_ascii_run(&bytes), at, "{bytes:?}");
                    assert_eq!(plain_ascii_run(&bytes), reference(&bytes));
                }
            }
        }
        // Bytes just inside the plain range are plain: space, '!', '#', '[', ']', '~', DEL.
        assert_eq!(plain_ascii_run(b" !#[]~\x7f ok"), 10);
        // Writing also stops at DEL, which Python escapes.
        for at in 0..20 {
            let mut bytes = vec![b'a'; 24];
            bytes[at] = 0x7f;
            assert_eq!(plain_run::<true>(&bytes), at);
            assert_eq!(plain_run::<false>(&bytes), 24);
        }
    }

    /// Plain strings are copied in overlapping fixed-size pieces up to 16 bytes: every length
    /// comes out whole, as a value, a list item and a key, after text of any length before it.
    #[test]
    fn plain_strings_of_every_length_are_written_whole() {
        let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";
        for len in 0..=40 {
            let text = &alphabet[..len];
            for before in [0, 1, 5, 9] {
                let mut dict = Dict::new();
                dict.insert(&alphabet[..before], Value::from(text));
                dict.insert(text, Value::List(vec![Value::from(text), Value::from(1)]));
                let written = dumps(&Value::Dict(dict));
                let head = &alphabet[..before];
                let expected = if before == len {
                    // The same key twice is one entry.
                    format!(r#"{{"{head}":["{text}",1]}}"#)
                } else {
                    format!(r#"{{"{head}":"{text}","{text}":["{text}",1]}}"#)
                };
                assert_eq!(written, expected, "length {len}, after {before}");
            }
        }
    }

    #[test]
    fn the_writers_plain_test_finds_a_special_byte_at_any_length_and_position() {
        let specials = [b'"', b'\\', 0x00, 0x1f, 0x7f, 0x80, 0xff, b'\n'];
        for len in 0..40 {
            let plain = vec![b'a'; len];
            assert!(all_plain_out(&plain), "{len} plain bytes");
            for at in 0..len {
                for special in specials {
                    let mut bytes = plain.clone();
                    bytes[at] = special;
                    assert!(!all_plain_out(&bytes), "{bytes:?}");
                }
            }
        }
        // The edges of the plain range: space, '!', '#', '[', ']', '~'.
        for text in [
            " ",
            "!#",
            " !#[]~",
            " !#[]~ !#[]~",
            " !#[]~ !#[]~ !#[]~ !#[]~",
        ] {
            assert!(all_plain_out(text.as_bytes()), "{text:?}");
        }
    }

    #[test]
    fn strings_mixing_plain_runs_escapes_and_non_ascii_read_like_python() {
        // Python: json.loads(text) for each.
        let cases: [(&str, &str); 6] = [
            (r#""abcdefghijklmnop\"q\\r""#, "abcdefghijklmnop\"q\\r"),
            (
                r#""\u00e9t\u00e9 long enough for two words""#,
                "été long enough for two words",
            ),
            (r#""x\ud83d\ude00y\n""#, "x😀y\n"),
            (r#""0123456789\/0123456789""#, "0123456789/0123456789"),
            (r#""\t""#, "\t"),
            (r#""""#, ""),
        ];
        for (text, expected) in cases {
            assert_eq!(
                from_slice(text.as_bytes()).unwrap(),
                Value::from(expected),
                "{text}"
            );
            assert_eq!(from_str(text).unwrap(), Value::from(expected), "{text}");
        }
        // Non-ASCII runs between plain runs: latin-1 for stored bytes, UTF-8 for text.
        let long = "plain words, then ünïcödé, then plain again and a quote \\\" end";
        let text = format!("\"{long}\"");
        assert_eq!(
            from_str(&text).unwrap(),
            Value::from(long.replace("\\\"", "\""))
        );
        let latin1: Vec<u8> = b"\"caf\xe9 au lait, cr\xe8me br\xfbl\xe9e\"".to_vec();
        assert_eq!(
            from_slice(&latin1).unwrap(),
            Value::from("café au lait, crème brûlée")
        );
        // A control character inside a long plain run is refused where it is.
        let err = from_slice(b"\"abcdefghij\x01klm\"").unwrap_err();
        assert!(
            matches!(err, SerializerError::Malformed { offset: 11, .. }),
            "{err:?}"
        );
        assert!(from_slice(b"\"abcdefghijklmnopqrstuvwxyz").is_err());
    }

    #[test]
    fn floats_use_python_repr_layout() {
        for (f, text) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (1e-7, "1e-07"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (9007199254740992.0, "9007199254740992.0"),
            (123.456, "123.456"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-2.5e-10, "-2.5e-10"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(dumps(&Value::Float(f)), text, "{f:e}");
        }
        assert_eq!(float_repr(f64::NAN), "nan");
        assert_eq!(float_repr(-f64::INFINITY), "-inf");
    }

    #[test]
    fn only_floats_with_short_exact_decimals_take_the_tie_check() {
        // 78582881572787.125, exactly halfway between ...787.12 and ...787.13.
        assert!(may_be_a_decimal_tie(f64::from_bits(0x42d1_de20_2f75_ecc8)));
        assert!(may_be_a_decimal_tie(0.125));
        assert!(may_be_a_decimal_tie(1e22));
        assert!(may_be_a_decimal_tie(2f64.powi(59)));
        assert!(!may_be_a_decimal_tie(2f64.powi(60)));
        assert!(!may_be_a_decimal_tie(0.1));
        assert!(!may_be_a_decimal_tie(9.99));
        assert!(!may_be_a_decimal_tie(5e-324));
        assert!(!may_be_a_decimal_tie(f64::MAX));
        assert!(!may_be_a_decimal_tie(0.0));
    }

    #[test]
    fn strings_escape_like_python_ensure_ascii() {
        let s = "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{7f}/<>&'é’😀";
        assert_eq!(
            dumps(&Value::from(s)),
            r#""a\"b\\c\n\r\t\b\f\u0001\u007f/<>&'\u00e9\u2019\ud83d\ude00""#
        );
    }

    #[test]
    fn long_strings_escape_at_every_position_like_python() {
        // Python: json.dumps(s) for a plain run with one special character at each position.
        let specials = [
            ('"', "\\\""),
            ('\\', "\\\\"),
            ('\n', "\\n"),
            ('\u{1}', "\\u0001"),
            ('\u{7f}', "\\u007f"),
            ('é', "\\u00e9"),
            ('😀', "\\ud83d\\ude00"),
        ];
        for at in 0..20 {
            for (special, escaped) in specials {
                let mut s: String = "abcdefghijklmnopqrst".into();
                s.insert(at, special);
                let expected = format!(
                    "\"{}{escaped}{}\"",
                    &"abcdefghijklmnopqrst"[..at],
                    &"abcdefghijklmnopqrst"[at..]
                );
                assert_eq!(dumps(&Value::from(s.as_str())), expected);
                assert_eq!(from_slice(expected.as_bytes()).unwrap(), Value::from(s));
            }
        }
    }

    #[test]
    fn integers_print_in_full() {
        assert_eq!(dumps(&Value::from(i64::MIN)), "-9223372036854775808");
        assert_eq!(dumps(&Value::from(u64::MAX)), "18446744073709551615");
        assert_eq!(dumps(&Value::from(0i64)), "0");
    }

    #[test]
    fn latin1_bytes_read_as_their_code_points() {
        let v = from_slice(b"\"caf\xe9\"").unwrap();
        assert_eq!(v, Value::from("café"));
        let v = from_str("\"café\"").unwrap();
        assert_eq!(v, Value::from("café"));
        // The same UTF-8 bytes read as stored bytes are two latin-1 characters each.
        let v = from_slice("\"é\"".as_bytes()).unwrap();
        assert_eq!(v, Value::from("Ã©"));
    }

    #[test]
    fn numbers_follow_pythons_int_float_split() {
        assert!(
            from_slice(b"1E400")
                .unwrap()
                .is_identical(&Value::Float(f64::INFINITY))
        );
        assert_eq!(from_slice(b"-0").unwrap(), Value::from(0i64));
        assert!(
            from_slice(b"-0.0")
                .unwrap()
                .is_identical(&Value::Float(-0.0))
        );
        assert_eq!(
            from_slice(b"123456789012345678901234567890").unwrap(),
            Value::Int("123456789012345678901234567890".parse().unwrap())
        );
        assert!(from_slice(b"1.").is_err());
        assert!(from_slice(b"01").is_err());
        assert!(from_slice(b"1e").is_err());
        assert!(from_slice(b"+1").is_err());
        assert!(from_slice(b"-").is_err());
    }
}
