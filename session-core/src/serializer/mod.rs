//! Serializers: how a session dict becomes bytes before it is signed (and back).
//!
//! Django's default is JSON; we reproduce its bytes exactly. MessagePack is a compact alternative for
//! sessions only Rust reads, and the pickle serializer reads (and writes) what Django's old
//! `PickleSerializer` and its cache backends store, without ever executing anything.
//!
//! The serializer is chosen by name in [`SessionConfig`](crate::SessionConfig) (`"json"`,
//! `"msgpack"`, `"pickle"`), so it can be swapped without code changes; a custom one implements
//! [`Serializer`].

pub mod json;
pub mod msgpack;
pub mod pickle;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::value::{Dict, Value};

pub use json::JsonSerializer;
pub use msgpack::MsgPackSerializer;
pub use pickle::PickleSerializer;

/// Turns session values into bytes and back.
///
/// Implementations must be deterministic where the format allows it, must reject input nested
/// deeper than [`MAX_DEPTH`](crate::value::MAX_DEPTH), and must never panic on any input bytes.
pub trait Serializer: Send + Sync + fmt::Debug {
    /// The name this serializer is configured by (`"json"`, ...).
    fn name(&self) -> &str;

    /// Serializes a session dict (the hot path: no clone into a [`Value`] needed).
    fn dumps_dict(&self, dict: &Dict) -> Result<Vec<u8>, SerializerError>;

    /// [`dumps_dict`](Self::dumps_dict), appending to `out` instead, so that a caller can reuse
    /// one buffer (the codec does). On error `out` may hold part of the output.
    ///
    /// The provided implementation appends what `dumps_dict` returns; a serializer that can
    /// write into the buffer directly should override it.
    ///
    /// # Errors
    /// As [`dumps_dict`](Self::dumps_dict).
    fn dumps_dict_into(&self, dict: &Dict, out: &mut Vec<u8>) -> Result<(), SerializerError> {
        out.extend_from_slice(&self.dumps_dict(dict)?);
        Ok(())
    }

    /// Serializes any value.
    fn dumps(&self, value: &Value) -> Result<Vec<u8>, SerializerError>;

    /// Parses the bytes a store holds once the signature is removed: what this serializer, or its
    /// Python counterpart inside Django, wrote.
    ///
    /// These are bytes, not text: Django's `JSONSerializer.loads` decodes them as Latin-1 (one
    /// byte, one character), so a raw `0xC3 0xA9` inside a JSON string reads as `Ã©`, exactly as
    /// Django reads it. Django itself only ever writes ASCII there. For JSON typed by a person or
    /// read from a UTF-8 file or stdin, use [`loads_text`](Self::loads_text).
    ///
    /// # Errors
    /// [`SerializerError`] when the bytes are not valid for this format, nest too deeply, or
    /// expand past the size limits.
    fn loads_stored_bytes(&self, bytes: &[u8]) -> Result<Value, SerializerError>;

    /// Parses text (Unicode, e.g. read from UTF-8 stdin or a config file): non-ASCII characters
    /// are the characters they are, never re-read as Latin-1.
    ///
    /// Only text formats can do this; the default answers [`SerializerError::Unsupported`], which
    /// is right for binary formats such as MessagePack and pickle.
    ///
    /// # Errors
    /// [`SerializerError`] when the text is not valid for this format, or the format is binary.
    fn loads_text(&self, text: &str) -> Result<Value, SerializerError> {
        let _ = text;
        Err(SerializerError::Unsupported {
            format: "text",
            reason: format!(
                "{} is a binary format: pass its stored bytes to loads_stored_bytes",
                self.name()
            ),
        })
    }
}

/// Why a value could not be serialized or bytes could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SerializerError {
    /// The input bytes are not valid for this format.
    #[error("malformed {format} data at byte {offset}: {reason}")]
    Malformed {
        /// The format being parsed (`"json"`, `"msgpack"`, `"pickle"`).
        format: &'static str,
        /// Byte offset where parsing failed.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// Lists and dicts nest deeper than [`MAX_DEPTH`](crate::value::MAX_DEPTH).
    #[error("value nests deeper than {limit} levels; flatten the session data")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// The data holds something this format cannot represent (e.g. a pickled Python class).
    #[error("{format} cannot represent this value: {reason}")]
    Unsupported {
        /// The format.
        format: &'static str,
        /// What was not representable.
        reason: String,
    },
    /// The input is larger than the serializer accepts.
    #[error("{format} input expands past {limit} values; refusing to build it")]
    TooLarge {
        /// The format.
        format: &'static str,
        /// The limit that was hit.
        limit: usize,
    },
}

/// The built-in serializers, by the name used in configuration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SerializerName {
    /// Django's `JSONSerializer` (the default), byte for byte.
    #[default]
    Json,
    /// MessagePack.
    #[serde(rename = "msgpack")]
    MsgPack,
    /// Python pickle (safe subset: plain data only).
    Pickle,
}

impl SerializerName {
    /// The serializer this name stands for.
    pub fn serializer(self) -> Arc<dyn Serializer> {
        match self {
            SerializerName::Json => Arc::new(JsonSerializer),
            SerializerName::MsgPack => Arc::new(MsgPackSerializer),
            SerializerName::Pickle => Arc::new(PickleSerializer::default()),
        }
    }

    /// The configuration name (`"json"`, `"msgpack"`, `"pickle"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SerializerName::Json => "json",
            SerializerName::MsgPack => "msgpack",
            SerializerName::Pickle => "pickle",
        }
    }
}

impl fmt::Display for SerializerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of the built-in serializers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown serializer {0:?}: expected \"json\", \"msgpack\" or \"pickle\"")]
pub struct UnknownSerializer(pub String);

impl FromStr for SerializerName {
    type Err = UnknownSerializer;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(SerializerName::Json),
            "msgpack" => Ok(SerializerName::MsgPack),
            "pickle" => Ok(SerializerName::Pickle),
            other => Err(UnknownSerializer(other.to_owned())),
        }
    }
}

/// Runs `f` with this thread's `T` from `key`, or with a fresh one when the thread's is already
/// in use or gone (thread teardown). The JSON and pickle readers keep their stacks' room from one
/// document to the next this way, so that reading a session does not regrow them from nothing.
pub(crate) fn with_reused<T: Default + 'static, R>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<T>>,
    mut f: impl FnMut(&mut T) -> R,
) -> R {
    let reused = key.try_with(|cell| cell.try_borrow_mut().ok().map(|mut value| f(&mut value)));
    match reused {
        Ok(Some(result)) => result,
        _ => f(&mut T::default()),
    }
}

/// Puts `value` into a slot that [`push_default`] just made, without dropping what is there.
///
/// The slot holds `T::default()`, which for the readers' values, strings and entries owns
/// nothing (a `Value::Null`, an empty inline `Str`), so there is nothing to drop. A plain
/// assignment would still load the slot back, right after the call that wrote it, to see
/// whether it owns something, and wait for that store to complete (a failed store forward:
/// 10 % of a 32 KB decode's samples landed on that check). Forgetting the old value removes the
/// load. Only for slots that [`push_default`] filled.
#[inline(always)]
pub(crate) fn fill<T>(slot: &mut T, value: T) {
    std::mem::forget(std::mem::replace(slot, value));
}

/// Pushes a default value onto `stack` and returns it, to be overwritten in place.
///
/// Parsed values go into their slot field by field this way. Pushing a `Value` or an entry whole
/// passes it through the stack to `Vec::push`, which is not inlined here and copies it in
/// 16-byte pieces that straddle the narrower stores it was just assembled with: each such copy
/// waits for those stores to complete (a failed store forward; writing in place took 6 % off a
/// 32 KB JSON decode). The JSON and pickle readers build their values this way. The default
/// itself goes in through [`push_in_room`], as constants written into the slot.
#[inline(always)]
pub(crate) fn push_default<T: Default>(stack: &mut Vec<T>) -> &mut T {
    let at = stack.len();
    push_in_room(stack, T::default());
    &mut stack[at]
}

/// Pushes `value` onto `stack`, written straight from registers when the stack has room.
///
/// `Vec::push` may grow the buffer, a call, so a value assembled in registers is first stored on
/// the stack to survive it and then copied into its slot in wider pieces than it was stored in:
/// the copy waits for those stores to complete (a failed store forward). Where the room is
/// checked here first, the compiler sees that the push cannot grow and writes the fields into
/// the slot directly; only a push that must grow goes through memory.
#[inline(always)]
pub(crate) fn push_in_room<T>(stack: &mut Vec<T>, value: T) {
    if stack.len() < stack.capacity() {
        stack.push(value);
    } else {
        push_grown(stack, value);
    }
}

#[cold]
#[inline(never)]
fn push_grown<T>(stack: &mut Vec<T>, value: T) {
    stack.push(value);
}
