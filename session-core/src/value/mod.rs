//! The session value model: what a Python session dict can hold.
//!
//! Django sessions are Python dicts of string keys to JSON-like values. [`Value`] keeps exactly what
//! Python sees: integers of any size ([`Int`]), floats bit for bit (including `NaN`, the infinities and
//! `-0.0`), any Unicode string, lists, and insertion-ordered dicts ([`Dict`]).

mod de;
mod dict;
mod int;
pub(crate) mod recycle;
mod ser;
mod str;

use std::fmt;

pub use de::{from_value, from_value_ref};
pub use dict::{Dict, IntoIter, Iter, IterMut, Keys, Values, ValuesMut};
pub(crate) use dict::{KeyIndex, KeyPrints, position_of, push_unique};
pub use int::{Int, MAX_STR_DIGITS, ParseIntError};
pub use ser::to_value;
pub use str::Str;

/// How deeply lists and dicts may nest in anything we read or write.
///
/// Every parser and writer in this crate enforces it, so hostile input cannot overflow the stack and
/// we never write what we could not read back. Python's own limit is about 1000 frames; real sessions
/// are a handful of levels deep.
pub const MAX_DEPTH: usize = 256;

/// Why a Rust value could not be turned into a [`Value`] ([`to_value`]) or back ([`from_value`]).
///
/// Every message starts with where in the value the problem is (`at items[2].price: ...`) when it
/// is not at the top level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value has a different type than the Rust type expects.
    #[error("{}invalid type: expected {expected}, found {found}", location(.path))]
    InvalidType {
        /// Where in the value (`items[2].price`; empty at the top level).
        path: String,
        /// What the Rust type wanted (`u32`, `struct Cart`, ...).
        expected: String,
        /// What the value holds (`str "abc"`, `int 5`, `dict`, ...).
        found: String,
    },
    /// An integer does not fit the Rust integer type.
    #[error("{}integer {value} is out of range for {target}", location(.path))]
    OutOfRange {
        /// Where in the value.
        path: String,
        /// The integer, in decimal.
        value: String,
        /// The Rust type (`u8`, `i64`, ...).
        target: &'static str,
    },
    /// A map key is not a string (Python session dicts only have `str` keys).
    #[error("{}dict keys must be strings, found {found}; use string (or integer/bool) keys", location(.path))]
    KeyMustBeString {
        /// Where in the value.
        path: String,
        /// What the key was.
        found: String,
    },
    /// The value nests deeper than [`MAX_DEPTH`].
    #[error("{}value nests deeper than {limit} levels; flatten the data", location(.path))]
    TooDeep {
        /// Where in the value.
        path: String,
        /// The nesting limit.
        limit: usize,
    },
    /// Any other problem, as reported by the type's `Serialize`/`Deserialize` implementation
    /// (missing field, unknown variant, ...).
    #[error("{}{message}", location(.path))]
    Message {
        /// Where in the value.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl ValueError {
    /// Where in the value the problem is (`items[2].price`), empty at the top level.
    pub fn path(&self) -> &str {
        match self {
            ValueError::InvalidType { path, .. }
            | ValueError::OutOfRange { path, .. }
            | ValueError::KeyMustBeString { path, .. }
            | ValueError::TooDeep { path, .. }
            | ValueError::Message { path, .. } => path,
        }
    }

    fn path_mut(&mut self) -> &mut String {
        match self {
            ValueError::InvalidType { path, .. }
            | ValueError::OutOfRange { path, .. }
            | ValueError::KeyMustBeString { path, .. }
            | ValueError::TooDeep { path, .. }
            | ValueError::Message { path, .. } => path,
        }
    }

    /// Records that the error happened inside the dict entry / struct field `key`.
    pub(crate) fn in_key(mut self, key: &str) -> Self {
        let path = self.path_mut();
        let simple = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let segment = if simple {
            if path.is_empty() || path.starts_with('[') {
                key.to_owned()
            } else {
                format!("{key}.")
            }
        } else {
            let quoted = format!("[{key:?}]");
            if path.is_empty() || path.starts_with('[') {
                quoted
            } else {
                format!("{quoted}.")
            }
        };
        path.insert_str(0, &segment);
        self
    }

    /// Records that the error happened inside list item `index`.
    pub(crate) fn in_index(mut self, index: usize) -> Self {
        let path = self.path_mut();
        let segment = if path.is_empty() || path.starts_with('[') {
            format!("[{index}]")
        } else {
            format!("[{index}].")
        };
        path.insert_str(0, &segment);
        self
    }

    pub(crate) fn message(message: impl fmt::Display) -> Self {
        ValueError::Message {
            path: String::new(),
            message: message.to_string(),
        }
    }
}

fn location(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("at {path}: ")
    }
}

/// One Python value that a session can hold.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// Python `None` (JSON `null`).
    #[default]
    Null,
    /// Python `bool`.
    Bool(bool),
    /// Python `int`, of any size.
    Int(Int),
    /// Python `float` (an IEEE 754 double, kept bit for bit).
    Float(f64),
    /// Python `str` (short text is kept inline: see [`Str`]).
    Str(Str),
    /// Python `list` (tuples are read as lists, as JSON does).
    List(Vec<Value>),
    /// Python `dict` with `str` keys, in insertion order.
    Dict(Dict),
}

impl Value {
    /// The Python type name of this value (`"int"`, `"dict"`, ...), for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }

    /// The string, if this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The integer, if this is an `int` that fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => i.as_i64(),
            _ => None,
        }
    }

    /// The dict, if this is a `dict`.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Whether two values are the same bit for bit: like `==`, but floats compare by their bits (so
    /// `NaN` equals itself and `0.0` differs from `-0.0`) and dicts compare in key order.
    pub fn is_identical(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.is_identical(y))
            }
            (Value::Dict(a), Value::Dict(b)) => dicts_identical(a, b),
            (a, b) => a == b,
        }
    }

    /// How deeply this value nests (a scalar is 0, `[1]` is 1, `{"a": [1]}` is 2).
    pub fn depth(&self) -> usize {
        match self {
            Value::List(items) => 1 + items.iter().map(Value::depth).max().unwrap_or(0),
            Value::Dict(d) => 1 + d.values().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Whether two dicts hold identical values under the same keys in the same order (see
/// [`Value::is_identical`]).
pub fn dicts_identical(a: &Dict, b: &Dict) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.is_identical(vb))
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Int::from(v))
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(Int::from(i64::from(v)))
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(Int::from(v))
    }
}

impl From<Int> for Value {
    fn from(v: Int) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(Str::from(v))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(Str::from(v))
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Str(Str::from(v))
    }
}

impl From<Str> for Value {
    fn from(v: Str) -> Self {
        Value::Str(v)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(v)
    }
}

impl From<Dict> for Value {
    fn from(v: Dict) -> Self {
        Value::Dict(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
