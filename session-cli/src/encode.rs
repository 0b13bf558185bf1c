//! `sessions encode`.

use std::io::Read;

use session_core::serializer::json;
use session_core::value::{Dict, Value};

use crate::args::EncodeArgs;
use crate::{Error, MAX_INPUT_BYTES};
use session_core::serializer::SerializerName;

/// Reads one JSON object from `input` and returns it signed (the one line `encode` prints).
///
/// # Errors
/// Exit-2 errors for unreadable input or options ([`Error::MissingSecret`],
/// [`Error::InputTooLarge`], [`Error::InvalidJson`], [`Error::NotAnObject`], ...), exit-1 errors
/// when the session cannot be encoded ([`Error::Encode`], [`Error::MsgPackIntOutOfRange`]).
pub fn encode(args: &EncodeArgs, input: impl Read) -> Result<String, Error> {
    // Options first: a missing secret is reported before waiting on stdin.
    let codec = args
        .codec
        .codec_deflating(&args.keys, args.deflate.map(Into::into))?;
    let session = read_session(input)?;
    if codec.serializer().name() == SerializerName::MsgPack.as_str() {
        check_msgpack_ints(&session)?;
    }
    codec
        .encode_with(&session, !args.no_compress, args.timestamp)
        .map_err(Error::Encode)
}

/// Reads at most [`MAX_INPUT_BYTES`] of UTF-8 JSON holding one object, as Python's
/// `json.loads(text)` reads it (big integers, NaN and Infinity included).
///
/// # Errors
/// [`Error::ReadInput`], [`Error::InputTooLarge`], [`Error::InputNotUtf8`],
/// [`Error::InvalidJson`], [`Error::NotAnObject`].
pub fn read_session(input: impl Read) -> Result<Dict, Error> {
    let mut bytes = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it" without reading more.
    input
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::ReadInput)?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(Error::InputTooLarge {
            limit: MAX_INPUT_BYTES,
        });
    }
    let text = String::from_utf8(bytes).map_err(|error| Error::InputNotUtf8 {
        offset: error.utf8_error().valid_up_to(),
    })?;
    match json::from_str(&text).map_err(Error::InvalidJson)? {
        Value::Dict(session) => Ok(session),
        other => Err(Error::NotAnObject {
            found: json_type_name(&other),
        }),
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::Float(_) => "number",
        Value::Str(_) => "string",
        Value::List(_) => "array",
        Value::Dict(_) => "object",
    }
}

/// Refuses integers Python's `msgpack` cannot pack. Our MessagePack serializer stores them as an
/// extension type that only we read back; Django (through Python's msgpack) would fail with
/// `OverflowError` when writing them and could not read ours, so the interop tool refuses.
fn check_msgpack_ints(session: &Dict) -> Result<(), Error> {
    // Depth-first over (path, value); the serializers already bound nesting depth on input.
    let mut pending: Vec<(String, &Value)> = session
        .iter()
        .rev()
        .map(|(key, value)| (key_path("", key), value))
        .collect();
    while let Some((path, value)) = pending.pop() {
        match value {
            Value::Int(int) if int.as_i64().is_none() && int.as_u64().is_none() => {
                return Err(Error::MsgPackIntOutOfRange {
                    path,
                    value: int.to_string(),
                });
            }
            Value::List(items) => pending.extend(
                items
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(index, item)| (format!("{path}[{index}]"), item)),
            ),
            Value::Dict(dict) => pending.extend(
                dict.iter()
                    .rev()
                    .map(|(key, item)| (key_path(&path, key), item)),
            ),
            _ => {}
        }
    }
    Ok(())
}

/// `parent["key"]`, with the key quoted as JSON so any key is unambiguous.
fn key_path(parent: &str, key: &str) -> String {
    let quoted = json::to_string(&Value::from(key)).unwrap_or_default();
    format!("{parent}[{quoted}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_range_is_pythons() {
        let session = |text: &str| read_session(text.as_bytes()).unwrap();
        for fits in [
            r#"{"a": -9223372036854775808}"#,
            r#"{"a": 18446744073709551615}"#,
            r#"{"a": [1, {"b": 2}], "c": 1.5e300}"#,
        ] {
            assert!(check_msgpack_ints(&session(fits)).is_ok(), "{fits}");
        }
        let err = check_msgpack_ints(&session(
            r#"{"ok": 1, "cart": {"items": [1, -9223372036854775809]}}"#,
        ))
        .unwrap_err();
        assert_eq!(
            (
                err.exit_code(),
                err.to_string().contains(r#"["cart"]["items"][1]"#),
                err.to_string().contains("-9223372036854775809")
            ),
            (1, true, true),
            "{err}"
        );
        assert!(check_msgpack_ints(&session(r#"{"big": 18446744073709551616}"#)).is_err());
    }

    #[test]
    fn input_exactly_at_the_limit_is_read_and_one_byte_more_is_refused() {
        let mut at_limit = b"{\"a\":\"".to_vec();
        at_limit.resize(MAX_INPUT_BYTES - 2, b'x');
        at_limit.extend_from_slice(b"\"}");
        assert_eq!(at_limit.len(), MAX_INPUT_BYTES);
        let session = read_session(at_limit.as_slice()).unwrap();
        assert_eq!(
            session["a"].as_str().map(str::len),
            Some(MAX_INPUT_BYTES - 8)
        );

        at_limit.push(b' ');
        assert!(matches!(
            read_session(at_limit.as_slice()),
            Err(Error::InputTooLarge {
                limit: MAX_INPUT_BYTES
            })
        ));
    }
}
