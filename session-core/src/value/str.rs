//! [`Str`]: the text of a Python `str` in a session, kept inline when it is short.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;

use compact_str::CompactString;

/// The text of a Python `str`: a session's dict keys and its string values.
///
/// It reads like a `String` (it derefs to [`str`], compares with `&str` and `String`, converts
/// from and into `String`), but text of up to 24 bytes is kept inside the value itself instead of
/// in a heap allocation of its own. Session data is mostly such text (`"_auth_user_id"`,
/// `"sku"`, `"SKU-123456"`, `"en-gb"`), so decoding a session allocates a small fraction of what
/// one `String` per key and value costs: that allocation was most of the decoding time.
///
/// ```
/// use session_core::value::{Str, Value};
///
/// let key = Str::from("cart");
/// assert_eq!(key, "cart");
/// assert_eq!(key.len(), 4); // every `str` method, through `Deref`
/// let owned: String = key.into();
/// assert_eq!(Value::from("abc").as_str(), Some("abc"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str(CompactString);

impl Str {
    /// An empty string (no allocation).
    pub const fn new() -> Self {
        Str(CompactString::const_new(""))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The text as a `String` (moving a long string's heap buffer rather than copying it).
    pub fn into_string(self) -> String {
        self.0.into_string()
    }

    /// Appends `text`.
    pub fn push_str(&mut self, text: &str) {
        self.0.push_str(text);
    }
}

impl Deref for Str {
    type Target = str;

    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for Str {
    #[inline]
    fn from(text: &str) -> Self {
        Str(CompactString::new(text))
    }
}

impl From<&String> for Str {
    fn from(text: &String) -> Self {
        Str(CompactString::new(text))
    }
}

impl From<String> for Str {
    fn from(text: String) -> Self {
        Str(CompactString::from(text))
    }
}

impl From<&Str> for Str {
    fn from(text: &Str) -> Self {
        text.clone()
    }
}

impl From<Box<str>> for Str {
    fn from(text: Box<str>) -> Self {
        Str(CompactString::from(text))
    }
}

impl From<Cow<'_, str>> for Str {
    fn from(text: Cow<'_, str>) -> Self {
        Str(CompactString::from(text))
    }
}

impl From<char> for Str {
    fn from(c: char) -> Self {
        let mut buf = [0u8; 4];
        Str(CompactString::new(c.encode_utf8(&mut buf)))
    }
}

impl From<Str> for String {
    fn from(text: Str) -> Self {
        text.into_string()
    }
}

impl std::str::FromStr for Str {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Str::from(text))
    }
}

impl FromIterator<char> for Str {
    fn from_iter<I: IntoIterator<Item = char>>(iter: I) -> Self {
        Str(iter.into_iter().collect())
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Str {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Str> for str {
    fn eq(&self, other: &Str) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Str> for &str {
    fn eq(&self, other: &Str) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Str> for String {
    fn eq(&self, other: &Str) -> bool {
        self.as_str() == other.as_str()
    }
}

impl serde::Serialize for Str {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Str {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;

        impl serde::de::Visitor<'_> for StrVisitor {
            type Value = Str;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Str, E> {
                Ok(Str::from(text))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Str, E> {
                Ok(Str::from(text))
            }
        }

        deserializer.deserialize_str(StrVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The readers fill the slots they push with `Str::default()` without dropping it
    /// (`serializer::fill`): that is only right while the default owns nothing.
    #[test]
    fn the_default_owns_no_heap_memory() {
        assert!(!Str::default().0.is_heap_allocated());
        assert!(!Str::new().0.is_heap_allocated());
    }

    #[test]
    fn reads_and_compares_like_a_string() {
        let short = Str::from("sku");
        let long = Str::from("django.contrib.auth.backends.ModelBackend");
        assert_eq!(short, "sku");
        assert_eq!("sku", short);
        assert_eq!(
            long,
            String::from("django.contrib.auth.backends.ModelBackend")
        );
        assert_eq!(
            format!("{short}|{long:?}"),
            "sku|\"django.contrib.auth.backends.ModelBackend\""
        );
        assert_eq!(String::from(long.clone()), long.as_str());
        let (a, b) = (Str::from("a"), Str::from("b"));
        assert!(a < b, "ordered like str");
        assert!(Str::new().is_empty());
    }

    #[test]
    fn round_trips_through_serde() {
        let text = Str::from("Zoë");
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(json, "\"Zoë\"");
        assert_eq!(serde_json::from_str::<Str>(&json).unwrap(), text);
    }
}
