//! Reads the tagged value notation of the committed test tables (see `common.py`), independently
//! of every serializer under test, and writes it back (for comparing with Python's output).

#![allow(dead_code)]

use session_core::value::{Dict, Int, Value};

/// Parses one tagged value; panics on malformed tables (test data is trusted).
pub fn parse(text: &str) -> Value {
    let mut rest = text.as_bytes();
    let value = parse_value(&mut rest);
    assert!(
        rest.is_empty(),
        "trailing tagged data: {:?}",
        String::from_utf8_lossy(rest)
    );
    value
}

fn until_semicolon<'a>(rest: &mut &'a [u8]) -> &'a str {
    let end = rest
        .iter()
        .position(|&b| b == b';')
        .expect("missing ';' in tagged value");
    let text = std::str::from_utf8(&rest[..end]).expect("tagged data is ASCII");
    *rest = &rest[end + 1..];
    text
}

fn unhex(text: &str) -> Vec<u8> {
    hex_decode(text)
}

/// Decodes lowercase or uppercase hex.
pub fn hex_decode(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Encodes bytes as lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_value(rest: &mut &[u8]) -> Value {
    let (&tag, tail) = rest.split_first().expect("truncated tagged value");
    *rest = tail;
    match tag {
        b'n' => Value::Null,
        b't' => Value::Bool(true),
        b'f' => Value::Bool(false),
        b'i' => Value::Int(until_semicolon(rest).parse::<Int>().expect("tagged int")),
        b'd' => {
            let bits = std::str::from_utf8(&rest[..16]).expect("ascii");
            *rest = &rest[16..];
            Value::Float(f64::from_bits(
                u64::from_str_radix(bits, 16).expect("float bits"),
            ))
        }
        b's' => Value::from(parse_str_body(rest)),
        b'l' => {
            let n: usize = until_semicolon(rest).parse().expect("list length");
            Value::List((0..n).map(|_| parse_value(rest)).collect())
        }
        b'm' => {
            let n: usize = until_semicolon(rest).parse().expect("dict length");
            let mut dict = Dict::new();
            for _ in 0..n {
                let (&s, tail) = rest.split_first().expect("dict key");
                assert_eq!(s, b's', "tagged dict keys are strings");
                *rest = tail;
                let key = parse_str_body(rest);
                let value = parse_value(rest);
                dict.insert(key, value);
            }
            Value::Dict(dict)
        }
        other => panic!("unknown tag {:?}", char::from(other)),
    }
}

fn parse_str_body(rest: &mut &[u8]) -> String {
    String::from_utf8(unhex(until_semicolon(rest))).expect("tagged str is UTF-8")
}

/// Writes a value in the tagged notation (the inverse of [`parse`]).
pub fn write(value: &Value) -> String {
    let mut out = String::new();
    write_into(&mut out, value);
    out
}

fn write_into(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push('n'),
        Value::Bool(true) => out.push('t'),
        Value::Bool(false) => out.push('f'),
        Value::Int(i) => out.push_str(&format!("i{i};")),
        Value::Float(f) => out.push_str(&format!("d{:016x}", f.to_bits())),
        Value::Str(s) => out.push_str(&format!("s{};", hex_encode(s.as_bytes()))),
        Value::List(items) => {
            out.push_str(&format!("l{};", items.len()));
            for item in items {
                write_into(out, item);
            }
        }
        Value::Dict(dict) => {
            out.push_str(&format!("m{};", dict.len()));
            for (k, v) in dict {
                out.push_str(&format!("s{};", hex_encode(k.as_bytes())));
                write_into(out, v);
            }
        }
    }
}

/// The data lines of a table (comments starting with `#` skipped).
pub fn lines(table: &str) -> impl Iterator<Item = &str> {
    table
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A value nested `depth` lists deep (`[[[...]]]`), built without recursion.
pub fn nested_lists(depth: usize) -> Value {
    let mut value = Value::List(Vec::new());
    for _ in 1..depth {
        value = Value::List(vec![value]);
    }
    value
}
