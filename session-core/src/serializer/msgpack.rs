//! MessagePack: a compact alternative to JSON for sessions that only Rust (or Python with
//! `msgpack`) reads.
//!
//! Mapping (for plain data the bytes equal Python's `msgpack.packb(obj, use_bin_type=True)`):
//!
//! | [`Value`] | MessagePack |
//! |---|---|
//! | `Null` | nil |
//! | `Bool` | true / false |
//! | `Int` within `i64`/`u64` | the most compact int encoding (positive fixint, uint8..64, negative fixint, int8..64) |
//! | `Int` beyond `i64`/`u64` | **ext type 1** holding the integer's minimal two's-complement big-endian bytes (Python's `msgpack` cannot pack such ints at all; it would read this back as `ExtType(1, ...)`) |
//! | `Float` | float 64, always (float 32 is accepted on read) |
//! | `Str` | str |
//! | `List` | array |
//! | `Dict` | map with str keys, in order |
//!
//! Reading refuses, with [`SerializerError::Unsupported`], what a session value cannot hold:
//! `bin` (Python would give `bytes`, which JSON sessions cannot hold either), ext types other than
//! 1 (including the timestamp type -1), and map keys that are not strings. Trailing bytes after the
//! value are [`Malformed`](SerializerError::Malformed), as they are for Python's `unpackb`.
//! Declared lengths are checked against the remaining input before anything is allocated, and
//! nesting is limited to [`MAX_DEPTH`].

use num_bigint::BigInt;

use super::{Serializer, SerializerError};
use crate::value::{Dict, Int, MAX_DEPTH, Str, Value};

const FORMAT: &str = "msgpack";

/// The ext type code that carries integers beyond 64 bits.
pub const BIG_INT_EXT_TYPE: i8 = 1;

/// MessagePack serializer.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPackSerializer;

impl Serializer for MsgPackSerializer {
    fn name(&self) -> &str {
        "msgpack"
    }

    fn dumps_dict(&self, dict: &Dict) -> Result<Vec<u8>, SerializerError> {
        dict_to_vec(dict)
    }

    fn dumps(&self, value: &Value) -> Result<Vec<u8>, SerializerError> {
        to_vec(value)
    }

    fn loads_stored_bytes(&self, bytes: &[u8]) -> Result<Value, SerializerError> {
        from_slice(bytes)
    }
}

/// Serializes a value to MessagePack.
///
/// # Errors
/// [`SerializerError::TooDeep`] past [`MAX_DEPTH`]; [`SerializerError::Unsupported`] for a string,
/// list or dict longer than MessagePack's 2^32 - 1 limit.
///
/// # Example
/// ```
/// use session_core::serializer::msgpack;
/// use session_core::value::Value;
///
/// let bytes = msgpack::to_vec(&Value::from(vec![Value::from(1i64), Value::Null])).unwrap();
/// assert_eq!(bytes, [0x92, 0x01, 0xc0]);
/// assert_eq!(msgpack::from_slice(&bytes).unwrap(), Value::from(vec![Value::from(1i64), Value::Null]));
/// ```
pub fn to_vec(value: &Value) -> Result<Vec<u8>, SerializerError> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// Serializes a session dict (same bytes as [`to_vec`] of `Value::Dict`).
///
/// # Errors
/// As [`to_vec`].
pub fn dict_to_vec(dict: &Dict) -> Result<Vec<u8>, SerializerError> {
    let mut out = Vec::with_capacity(64 + 16 * dict.len());
    write_dict(&mut out, dict, 0)?;
    Ok(out)
}

fn too_deep() -> SerializerError {
    SerializerError::TooDeep { limit: MAX_DEPTH }
}

fn too_long(what: &str, len: usize) -> SerializerError {
    SerializerError::Unsupported {
        format: FORMAT,
        reason: format!("{what} of length {len} exceeds MessagePack's 4294967295 limit"),
    }
}

fn length(what: &str, len: usize) -> Result<u32, SerializerError> {
    u32::try_from(len).map_err(|_| too_long(what, len))
}

// Writing into a `Vec` cannot fail; the errors only exist in rmp's generic signatures.
fn vec_write_failed<E>(_: E) -> SerializerError {
    SerializerError::Unsupported {
        format: FORMAT,
        reason: "internal error: writing to memory failed".to_owned(),
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), SerializerError> {
    use rmp::encode;
    match value {
        Value::Null => encode::write_nil(out).map_err(vec_write_failed)?,
        Value::Bool(b) => encode::write_bool(out, *b).map_err(vec_write_failed)?,
        Value::Int(i) => write_int(out, i)?,
        Value::Float(f) => encode::write_f64(out, *f).map_err(vec_write_failed)?,
        Value::Str(s) => {
            length("str", s.len())?;
            encode::write_str(out, s).map_err(vec_write_failed)?;
        }
        Value::List(items) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(too_deep());
            }
            encode::write_array_len(out, length("list", items.len())?).map_err(vec_write_failed)?;
            for item in items {
                write_value(out, item, depth)?;
            }
        }
        Value::Dict(dict) => write_dict(out, dict, depth)?,
    }
    Ok(())
}

fn write_dict(out: &mut Vec<u8>, dict: &Dict, depth: usize) -> Result<(), SerializerError> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    rmp::encode::write_map_len(out, length("dict", dict.len())?).map_err(vec_write_failed)?;
    for (key, value) in dict {
        length("str", key.len())?;
        rmp::encode::write_str(out, key).map_err(vec_write_failed)?;
        write_value(out, value, depth)?;
    }
    Ok(())
}

fn write_int(out: &mut Vec<u8>, i: &Int) -> Result<(), SerializerError> {
    if let Some(v) = i.as_i64() {
        // Python's msgpack uses the unsigned family for every non-negative int.
        if let Ok(u) = u64::try_from(v) {
            rmp::encode::write_uint(out, u).map_err(vec_write_failed)?;
        } else {
            rmp::encode::write_sint(out, v).map_err(vec_write_failed)?;
        }
    } else if let Some(u) = i.as_u64() {
        rmp::encode::write_uint(out, u).map_err(vec_write_failed)?;
    } else {
        let bytes = i.to_bigint().to_signed_bytes_be();
        let len = length("integer", bytes.len())?;
        rmp::encode::write_ext_meta(out, len, BIG_INT_EXT_TYPE).map_err(vec_write_failed)?;
        out.extend_from_slice(&bytes);
    }
    Ok(())
}

/// Parses MessagePack bytes into a value.
///
/// # Errors
/// [`SerializerError::Malformed`] for truncated or invalid data, invalid UTF-8 in a str, or
/// trailing bytes; [`SerializerError::Unsupported`] for bin, ext types other than 1 and non-str
/// map keys; [`SerializerError::TooDeep`] past [`MAX_DEPTH`].
pub fn from_slice(bytes: &[u8]) -> Result<Value, SerializerError> {
    let mut reader = Reader {
        input: bytes,
        pos: 0,
    };
    let value = reader.read_value(0)?;
    if reader.pos != bytes.len() {
        return Err(reader.malformed(format!(
            "{} trailing bytes after the value",
            bytes.len() - reader.pos
        )));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn malformed(&self, reason: impl Into<String>) -> SerializerError {
        SerializerError::Malformed {
            format: FORMAT,
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SerializerError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| {
                self.malformed(format!(
                    "data truncated: {n} bytes needed, {} left",
                    self.input.len() - self.pos
                ))
            })?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, SerializerError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], SerializerError> {
        let mut buf = [0u8; N];
        buf.copy_from_slice(self.take(N)?);
        Ok(buf)
    }

    fn len8(&mut self) -> Result<usize, SerializerError> {
        Ok(usize::from(self.byte()?))
    }

    fn len16(&mut self) -> Result<usize, SerializerError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len32(&mut self) -> Result<usize, SerializerError> {
        usize::try_from(u32::from_be_bytes(self.be()?))
            .map_err(|_| self.malformed("length does not fit in memory"))
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn read_value(&mut self, depth: usize) -> Result<Value, SerializerError> {
        let marker_at = self.pos;
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => Value::from(i64::from(marker)),
            0x80..=0x8f => return self.read_map(usize::from(marker & 0x0f), depth),
            0x90..=0x9f => return self.read_array(usize::from(marker & 0x0f), depth),
            0xa0..=0xbf => return self.read_str(usize::from(marker & 0x1f)),
            0xc0 => Value::Null,
            0xc1 => {
                self.pos = marker_at;
                return Err(self.malformed("reserved marker 0xc1"));
            }
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                self.pos = marker_at;
                return Err(SerializerError::Unsupported {
                    format: FORMAT,
                    reason: format!(
                        "bin (bytes) value at byte {marker_at}: session values hold text, not \
                         bytes; store it as a str (e.g. base64)"
                    ),
                });
            }
            0xc7 => {
                let len = self.len8()?;
                return self.read_ext(len, marker_at);
            }
            0xc8 => {
                let len = self.len16()?;
                return self.read_ext(len, marker_at);
            }
            0xc9 => {
                let len = self.len32()?;
                return self.read_ext(len, marker_at);
            }
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Value::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Value::from(i64::from(self.byte()?)),
            0xcd => Value::from(i64::from(u16::from_be_bytes(self.be()?))),
            0xce => Value::from(i64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Value::from(u64::from_be_bytes(self.be()?)),
            0xd0 => Value::from(i64::from(i8::from_be_bytes(self.be()?))),
            0xd1 => Value::from(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Value::from(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Value::from(i64::from_be_bytes(self.be()?)),
            0xd4 => return self.read_ext(1, marker_at),
            0xd5 => return self.read_ext(2, marker_at),
            0xd6 => return self.read_ext(4, marker_at),
            0xd7 => return self.read_ext(8, marker_at),
            0xd8 => return self.read_ext(16, marker_at),
            0xd9 => {
                let len = self.len8()?;
                return self.read_str(len);
            }
            0xda => {
                let len = self.len16()?;
                return self.read_str(len);
            }
            0xdb => {
                let len = self.len32()?;
                return self.read_str(len);
            }
            0xdc => {
                let len = self.len16()?;
                return self.read_array(len, depth);
            }
            0xdd => {
                let len = self.len32()?;
                return self.read_array(len, depth);
            }
            0xde => {
                let len = self.len16()?;
                return self.read_map(len, depth);
            }
            0xdf => {
                let len = self.len32()?;
                return self.read_map(len, depth);
            }
            0xe0..=0xff => Value::from(i64::from(i8::from_be_bytes([marker]))),
        })
    }

    fn read_string(&mut self, len: usize) -> Result<Str, SerializerError> {
        let start = self.pos;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Str::from(s)),
            Err(e) => {
                self.pos = start + e.valid_up_to();
                Err(self.malformed("invalid UTF-8 in str"))
            }
        }
    }

    fn read_str(&mut self, len: usize) -> Result<Value, SerializerError> {
        self.read_string(len).map(Value::from)
    }

    fn read_array(&mut self, len: usize, depth: usize) -> Result<Value, SerializerError> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        // Every element takes at least one byte, so a longer claim is a lie: never allocate for it.
        if len > self.remaining() {
            return Err(self.malformed(format!(
                "array claims {len} elements but only {} bytes remain",
                self.remaining()
            )));
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.read_value(depth)?);
        }
        Ok(Value::List(items))
    }

    fn read_map(&mut self, len: usize, depth: usize) -> Result<Value, SerializerError> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        // Every entry takes at least two bytes.
        if len > self.remaining() / 2 {
            return Err(self.malformed(format!(
                "map claims {len} entries but only {} bytes remain",
                self.remaining()
            )));
        }
        let mut entries = Dict::parsed_entries_buffer(len);
        for _ in 0..len {
            let key_at = self.pos;
            let marker = self.byte()?;
            let key = match marker {
                0xa0..=0xbf => self.read_string(usize::from(marker & 0x1f))?,
                0xd9 => {
                    let n = self.len8()?;
                    self.read_string(n)?
                }
                0xda => {
                    let n = self.len16()?;
                    self.read_string(n)?
                }
                0xdb => {
                    let n = self.len32()?;
                    self.read_string(n)?
                }
                _ => {
                    self.pos = key_at;
                    let found = match self.read_value(depth) {
                        Ok(v) => v.type_name().to_owned(),
                        Err(_) => format!("marker 0x{marker:02x}"),
                    };
                    return Err(SerializerError::Unsupported {
                        format: FORMAT,
                        reason: format!(
                            "map key at byte {key_at} is {found}; session dict keys must be str"
                        ),
                    });
                }
            };
            let value = self.read_value(depth)?;
            entries.push((key, value));
        }
        // Python's rule for a repeated key: the last value wins, at the first position.
        Ok(Value::Dict(Dict::from_parsed(entries)))
    }

    fn read_ext(&mut self, len: usize, marker_at: usize) -> Result<Value, SerializerError> {
        let ext_type = i8::from_be_bytes(self.be()?);
        if ext_type != BIG_INT_EXT_TYPE {
            self.pos = marker_at;
            return Err(SerializerError::Unsupported {
                format: FORMAT,
                reason: format!(
                    "ext type {ext_type} at byte {marker_at}: only type {BIG_INT_EXT_TYPE} (big \
                     integers) is a session value"
                ),
            });
        }
        if len == 0 {
            return Err(self.malformed("empty big-integer ext"));
        }
        let bytes = self.take(len)?;
        Ok(Value::Int(Int::from(BigInt::from_signed_bytes_be(bytes))))
    }
}
