//! [`Value`] -> Rust values, through serde (`Session::get` uses this), and `Deserialize` for
//! [`Value`] itself.

use std::fmt;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use super::int::BIG_INT_TOKEN;
use super::{Dict, Int, MAX_DEPTH, Value, ValueError};

/// Converts a [`Value`] into any deserializable Rust type.
///
/// The rules mirror `serde_json::from_value`: `None` fills an `Option` with `None`, enums come from
/// a string (unit variants) or a one-entry dict, integers fit any integer type they are in range
/// for (an out-of-range integer is an error, never wrapped), and float fields also accept ints.
///
/// # Errors
/// A [`ValueError`] naming where the value did not fit, e.g.
/// `at items[0].qty: invalid type: expected u32, found str "two"`.
///
/// # Example
/// ```
/// use session_core::value::{from_value, to_value};
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Cart { items: Vec<String>, total: u64, note: Option<String> }
///
/// let cart = Cart { items: vec!["apple".into()], total: u64::MAX, note: None };
/// let back: Cart = from_value(to_value(&cart).unwrap()).unwrap();
/// assert_eq!(back, cart);
/// ```
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    from_value_ref(&value)
}

/// Like [`from_value`], but borrows the value, so the result may borrow its strings (`&str`
/// fields) and nothing has to be cloned first.
///
/// # Errors
/// As [`from_value`].
pub fn from_value_ref<'de, T: Deserialize<'de>>(value: &'de Value) -> Result<T, ValueError> {
    T::deserialize(ValueDeserializer(value))
}

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::message(msg)
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        ValueError::InvalidType {
            path: String::new(),
            expected: exp.to_string(),
            found: describe_unexpected(&unexp),
        }
    }
}

/// Describes what a value held, with Python type names (`str "abc"`, `int 5`).
fn describe_unexpected(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => format!("bool {}", if *b { "True" } else { "False" }),
        Unexpected::Unsigned(n) => format!("int {n}"),
        Unexpected::Signed(n) => format!("int {n}"),
        Unexpected::Float(f) => format!("float {f}"),
        Unexpected::Char(c) => format!("str {:?}", c.to_string()),
        Unexpected::Str(s) => format!("str {s:?}"),
        Unexpected::Unit | Unexpected::Option => "None".to_owned(),
        Unexpected::Seq => "list".to_owned(),
        Unexpected::Map => "dict".to_owned(),
        other => other.to_string(),
    }
}

/// Describes a value for an error message, briefly.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(b) => format!("bool {}", if *b { "True" } else { "False" }),
        Value::Int(i) => format!("int {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Str(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("str {head:?}...")
        }
        Value::Str(s) => format!("str {s:?}"),
        Value::List(_) => "list".to_owned(),
        Value::Dict(_) => "dict".to_owned(),
    }
}

fn invalid_type(value: &Value, expected: &dyn de::Expected) -> ValueError {
    ValueError::InvalidType {
        path: String::new(),
        expected: expected.to_string(),
        found: describe(value),
    }
}

/// The serde deserializer behind [`from_value_ref`].
#[derive(Clone, Copy)]
struct ValueDeserializer<'de>(&'de Value);

macro_rules! deserialize_int {
    ($method:ident, $visit:ident, $ty:ty, $convert:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self.0 {
                Value::Int(i) => {
                    let convert: fn(&Int) -> Option<$ty> = $convert;
                    match convert(i) {
                        Some(v) => visitor.$visit(v),
                        None => Err(ValueError::OutOfRange {
                            path: String::new(),
                            value: i.to_string(),
                            target: stringify!($ty),
                        }),
                    }
                }
                _ => self.deserialize_any(visitor),
            }
        }
    };
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visit_int(i, visitor),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::List(items) => visit_list(items, visitor),
            Value::Dict(dict) => visit_dict(dict, visitor),
        }
    }

    deserialize_int!(deserialize_i8, visit_i8, i8, |i| i
        .as_i64()
        .and_then(|v| v.try_into().ok()));
    deserialize_int!(deserialize_i16, visit_i16, i16, |i| i
        .as_i64()
        .and_then(|v| v.try_into().ok()));
    deserialize_int!(deserialize_i32, visit_i32, i32, |i| i
        .as_i64()
        .and_then(|v| v.try_into().ok()));
    deserialize_int!(deserialize_i64, visit_i64, i64, Int::as_i64);
    deserialize_int!(deserialize_i128, visit_i128, i128, Int::as_i128);
    deserialize_int!(deserialize_u8, visit_u8, u8, |i| i
        .as_u64()
        .and_then(|v| v.try_into().ok()));
    deserialize_int!(deserialize_u16, visit_u16, u16, |i| i
        .as_u64()
        .and_then(|v| v.try_into().ok()));
    deserialize_int!(deserialize_u32, visit_u32, u32, |i| i
        .as_u64()
        .and_then(|v| v.try_into().ok()));
    deserialize_int!(deserialize_u64, visit_u64, u64, Int::as_u64);
    deserialize_int!(deserialize_u128, visit_u128, u128, Int::as_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            // JSON writes whole floats as ints only if a program put ints there; accept them.
            Value::Int(i) => visitor.visit_f64(i.to_f64()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Str(variant) => visitor.visit_enum(EnumDeserializer {
                variant,
                content: None,
            }),
            Value::Dict(dict) if dict.len() == 1 => {
                let Some((variant, content)) = dict.first() else {
                    return Err(invalid_type(self.0, &format!("enum {name}").as_str()));
                };
                visitor
                    .visit_enum(EnumDeserializer {
                        variant,
                        content: Some(content),
                    })
                    .map_err(|e| e.in_key(variant))
            }
            other => Err(ValueError::InvalidType {
                path: String::new(),
                expected: format!("enum {name} (a variant name or a one-entry dict)"),
                found: describe(other),
            }),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier
    }
}

fn visit_int<'de, V: Visitor<'de>>(i: &Int, visitor: V) -> Result<V::Value, ValueError> {
    if let Some(v) = i.as_i64() {
        visitor.visit_i64(v)
    } else if let Some(v) = i.as_u64() {
        visitor.visit_u64(v)
    } else if let Some(v) = i.as_i128() {
        visitor.visit_i128(v)
    } else if let Some(v) = i.as_u128() {
        visitor.visit_u128(v)
    } else {
        // Wider than any serde integer: only `Value`'s own visitor understands this form.
        visitor.visit_map(BigIntAccess {
            digits: Some(i.to_string()),
        })
    }
}

fn visit_list<'de, V: Visitor<'de>>(
    items: &'de [Value],
    visitor: V,
) -> Result<V::Value, ValueError> {
    let mut access = ListAccess {
        items: items.iter(),
        index: 0,
    };
    let result = visitor.visit_seq(&mut access)?;
    if access.items.len() == 0 {
        Ok(result)
    } else {
        Err(de::Error::invalid_length(
            items.len(),
            &"fewer elements in list",
        ))
    }
}

fn visit_dict<'de, V: Visitor<'de>>(dict: &'de Dict, visitor: V) -> Result<V::Value, ValueError> {
    let mut access = DictAccess {
        entries: dict.iter(),
        value: None,
    };
    let result = visitor.visit_map(&mut access)?;
    if access.entries.len() == 0 {
        Ok(result)
    } else {
        Err(de::Error::invalid_length(
            dict.len(),
            &"fewer entries in dict",
        ))
    }
}

struct ListAccess<'de> {
    items: std::slice::Iter<'de, Value>,
    index: usize,
}

impl<'de> SeqAccess<'de> for ListAccess<'de> {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(ValueDeserializer(item))
            .map(Some)
            .map_err(|e| e.in_index(index))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct DictAccess<'de> {
    entries: super::Iter<'de>,
    value: Option<(&'de str, &'de Value)>,
}

impl<'de> MapAccess<'de> for DictAccess<'de> {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(KeyDeserializer(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| ValueError::message("dict value requested before its key"))?;
        seed.deserialize(ValueDeserializer(value))
            .map_err(|e| e.in_key(key))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A dict key: a string that can also stand for an integer or bool key (`{"1": ...}` into a
/// `HashMap<u32, _>`), the reverse of how [`to_value`](super::to_value) stringifies such keys.
struct KeyDeserializer<'de>(&'de str);

macro_rules! deserialize_key_parsed {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
                match self.0.parse::<$ty>() {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => Err(ValueError::InvalidType {
                        path: String::new(),
                        expected: format!("{} dict key", stringify!($ty)),
                        found: format!("str {:?}", self.0),
                    }),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for KeyDeserializer<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_borrowed_str(self.0)
    }

    deserialize_key_parsed! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => visitor.visit_borrowed_str(other),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

struct EnumDeserializer<'de> {
    variant: &'de str,
    content: Option<&'de Value>,
}

impl<'de> EnumAccess<'de> for EnumDeserializer<'de> {
    type Error = ValueError;
    type Variant = VariantDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDeserializer<'de>), ValueError> {
        let variant = seed.deserialize(KeyDeserializer(self.variant))?;
        Ok((
            variant,
            VariantDeserializer {
                content: self.content,
            },
        ))
    }
}

struct VariantDeserializer<'de> {
    content: Option<&'de Value>,
}

impl<'de> VariantAccess<'de> for VariantDeserializer<'de> {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.content {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(invalid_type(other, &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.content {
            Some(content) => seed.deserialize(ValueDeserializer(content)),
            None => Err(ValueError::InvalidType {
                path: String::new(),
                expected: "newtype variant (a one-entry dict)".to_owned(),
                found: "a bare variant name".to_owned(),
            }),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.content {
            Some(Value::List(items)) => visit_list(items, visitor),
            Some(other) => Err(invalid_type(other, &"tuple variant (a list)")),
            None => Err(ValueError::InvalidType {
                path: String::new(),
                expected: "tuple variant (a one-entry dict holding a list)".to_owned(),
                found: "a bare variant name".to_owned(),
            }),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.content {
            Some(Value::Dict(dict)) => visit_dict(dict, visitor),
            Some(other) => Err(invalid_type(other, &"struct variant (a dict)")),
            None => Err(ValueError::InvalidType {
                path: String::new(),
                expected: "struct variant (a one-entry dict holding a dict)".to_owned(),
                found: "a bare variant name".to_owned(),
            }),
        }
    }
}

/// Presents an integer wider than 128 bits as `{BIG_INT_TOKEN: "<digits>"}`.
struct BigIntAccess {
    digits: Option<String>,
}

impl<'de> MapAccess<'de> for BigIntAccess {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        if self.digits.is_none() {
            return Ok(None);
        }
        seed.deserialize(KeyDeserializer(BIG_INT_TOKEN)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let digits = self
            .digits
            .take()
            .ok_or_else(|| ValueError::message("big integer read twice"))?;
        seed.deserialize(digits.into_deserializer())
    }
}

impl<'de> Deserialize<'de> for Value {
    /// Builds a [`Value`] from any self-describing format (serde_json, ...). Map keys must be
    /// strings, and nesting deeper than [`MAX_DEPTH`] is refused.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor { depth: 0 })
    }
}

/// Builds a [`Value`]; `depth` counts the containers around it.
#[derive(Clone, Copy)]
struct ValueVisitor {
    depth: usize,
}

impl ValueVisitor {
    fn child<E: de::Error>(self) -> Result<ValueVisitor, E> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            Err(E::custom(format_args!(
                "value nests deeper than {MAX_DEPTH} levels; flatten the data"
            )))
        } else {
            Ok(ValueVisitor { depth })
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueVisitor {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session value (None, bool, int, float, str, list or dict)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(Int::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Int(Int::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut dict = Dict::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        let mut first = true;
        while let Some(key) = map.next_key::<KeyString>()? {
            if first && key.0 == BIG_INT_TOKEN {
                let digits: String = map.next_value()?;
                return digits
                    .parse::<Int>()
                    .map(Value::Int)
                    .map_err(|_| de::Error::custom("malformed big integer"));
            }
            first = false;
            let value = map.next_value_seed(child)?;
            dict.insert(key.0, value);
        }
        Ok(Value::Dict(dict))
    }
}

/// A dict key, which must be a string.
struct KeyString(String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string dict key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyString, E> {
                Ok(KeyString(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<KeyString, E> {
                Ok(KeyString(v))
            }
        }
        deserializer.deserialize_string(KeyVisitor)
    }
}
