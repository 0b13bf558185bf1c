//! What the virtual users write, built so that a wrong read says what went wrong.
//!
//! Every session carries its writer's unique `owner` marker and a `version` counter: data with
//! another marker is a *crossed* update (someone else's session), an older version a *lost* one.
//! Values embed the marker and version too, and cover every value type the serializers handle.

use session_core::{Dict, Int, Value};

use crate::rng::Rng;

/// The data key holding the writer's unique marker.
pub const OWNER: &str = "owner";
/// The data key holding the version counter.
pub const VERSION: &str = "version";
/// The data key naming which tab wrote a shared session.
pub const WRITER: &str = "writer";
/// The data key of a session's own expiry (Django's `_session_expiry`).
pub const EXPIRY: &str = session_core::expiry::EXPIRY_KEY;
/// How many payload keys (`k0`..) a private session may hold.
pub const PAYLOAD_KEYS: u64 = 8;
/// The per-session expiries users set (seconds): long enough never to expire during a run.
pub const EXPIRY_CHOICES: [i64; 2] = [5_400, 7_200];

/// The `owner` marker of a data set, if it has one.
pub fn owner(data: &Dict) -> Option<&str> {
    data.get(OWNER).and_then(Value::as_str)
}

/// The `version` of a data set, if it has one.
pub fn version(data: &Dict) -> Option<i64> {
    data.get(VERSION).and_then(Value::as_i64)
}

/// A change a private session's owner makes in one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// The new `version`.
    pub version: i64,
    /// Payload keys to set.
    pub set: Vec<(String, Value)>,
    /// Payload keys to remove.
    pub remove: Vec<String>,
    /// `Some(Some(seconds))` sets a per-session expiry, `Some(None)` removes it.
    pub expiry: Option<Option<i64>>,
}

impl Changes {
    /// Random changes for `marker`'s session, bringing it to `version`.
    pub fn random(rng: &mut Rng, marker: &str, version: i64) -> Changes {
        let mut set = Vec::new();
        let mut remove = Vec::new();
        for _ in 0..=rng.below(3) {
            let key = format!("k{}", rng.below(PAYLOAD_KEYS));
            if rng.percent(25) {
                remove.push(key);
            } else {
                let value = random_value(rng, marker, version, 0);
                set.push((key, value));
            }
        }
        let expiry = match rng.below(10) {
            0 => Some(Some(EXPIRY_CHOICES[rng.index(EXPIRY_CHOICES.len())])),
            1 => Some(None),
            _ => None,
        };
        Changes {
            version,
            set,
            remove,
            expiry,
        }
    }

    /// `data` after these changes, applied in the order [`Session`](session_core::Session) applies
    /// them (a key set again keeps its place; a removed key closes its gap).
    pub fn apply(&self, data: &Dict) -> Dict {
        let mut out = data.clone();
        out.insert(VERSION.to_owned(), Value::from(self.version));
        for (key, value) in &self.set {
            out.insert(key.clone(), value.clone());
        }
        for key in &self.remove {
            out.remove(key);
        }
        match self.expiry {
            Some(Some(seconds)) => {
                out.insert(EXPIRY.to_owned(), Value::from(seconds));
            }
            Some(None) => {
                out.remove(EXPIRY);
            }
            None => {}
        }
        out
    }
}

/// A new private session's data for `marker`.
pub fn initial(rng: &mut Rng, marker: &str) -> Dict {
    let mut data = Dict::new();
    data.insert(OWNER.to_owned(), Value::from(marker));
    data.insert(VERSION.to_owned(), Value::from(1i64));
    for i in 0..rng.below(PAYLOAD_KEYS) {
        data.insert(format!("k{i}"), random_value(rng, marker, 1, 0));
    }
    if rng.percent(20) {
        data.insert(
            EXPIRY.to_owned(),
            Value::from(EXPIRY_CHOICES[rng.index(EXPIRY_CHOICES.len())]),
        );
    }
    data
}

const TEXT: &[&str] = &[
    "a",
    "session",
    " ",
    "é",
    "日本",
    "🦀",
    "\"quoted\"",
    "back\\slash",
    "tab\t",
    "line\n",
    "<>&'",
    "\u{7f}",
    "\u{2028}",
    "0",
    "-",
];

fn random_text(rng: &mut Rng, marker: &str, version: i64) -> String {
    let mut s = format!("{marker}:v{version}:");
    let pieces = if rng.percent(5) { 300 } else { rng.below(12) };
    for _ in 0..pieces {
        s.push_str(TEXT[rng.index(TEXT.len())]);
    }
    s
}

/// A random value: strings (tagged with the writer and version), integers of every size, floats
/// that are not NaN, booleans, `None`, and nested lists and dicts.
pub fn random_value(rng: &mut Rng, marker: &str, version: i64, depth: u32) -> Value {
    let choice = if depth >= 3 {
        rng.below(6)
    } else {
        rng.below(8)
    };
    match choice {
        0 | 1 => Value::from(random_text(rng, marker, version)),
        // Bit patterns reinterpreted as signed: the whole i64 range, both signs.
        2 => Value::from(rng.next_u64() as i64),
        3 => Value::from(Int::from(
            i128::from(rng.next_u64()) << 40 | i128::from(rng.below(1 << 20)),
        )),
        4 => {
            let float = f64::from_bits(rng.next_u64());
            Value::from(if float.is_finite() {
                float
            } else {
                f64::from(rng.below(1000) as u32) / 8.0
            })
        }
        5 => match rng.below(3) {
            0 => Value::Null,
            1 => Value::from(true),
            _ => Value::from(false),
        },
        6 => Value::List(
            (0..rng.below(5))
                .map(|_| random_value(rng, marker, version, depth + 1))
                .collect(),
        ),
        _ => Value::Dict(
            (0..rng.below(4))
                .map(|i| {
                    (
                        format!("n{i}"),
                        random_value(rng, marker, version, depth + 1),
                    )
                })
                .collect(),
        ),
    }
}

/// The whole data a tab of a shared session writes: every key tagged with the tab and its
/// version, so a read that mixes two writes, or shows a write that never happened, is detected.
pub fn shared(marker: &str, writer: &str, version: i64) -> Dict {
    let mut data = Dict::new();
    data.insert(OWNER.to_owned(), Value::from(marker));
    data.insert(WRITER.to_owned(), Value::from(writer));
    data.insert(VERSION.to_owned(), Value::from(version));
    for i in 0..6 {
        data.insert(
            format!("f{i}"),
            Value::from(format!("{marker}:{writer}:{version}:{i}")),
        );
    }
    data
}

/// The tab and version a shared session's data claims to come from.
pub fn shared_origin(data: &Dict) -> Option<(&str, i64)> {
    Some((data.get(WRITER)?.as_str()?, version(data)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::value::dicts_identical;

    #[test]
    fn changes_apply_like_the_session_does() {
        let mut rng = Rng::new(3);
        let base = initial(&mut rng, "u1");
        let changes = Changes {
            version: 2,
            set: vec![
                ("k9".into(), Value::from(1i64)),
                (OWNER.into(), "u1".into()),
            ],
            remove: vec!["k0".into()],
            expiry: Some(Some(5_400)),
        };
        let after = changes.apply(&base);
        assert_eq!(version(&after), Some(2));
        assert_eq!(owner(&after), Some("u1"));
        assert!(!after.contains_key("k0"));
        assert_eq!(after.get(EXPIRY), Some(&Value::from(5_400i64)));
        // The owner keeps its first place: insert keeps positions.
        assert_eq!(after.keys().next().map(|k| k.as_str()), Some(OWNER));
    }

    #[test]
    fn same_compares_order_too() {
        let a: Dict = [("x".to_owned(), Value::Null), ("y".to_owned(), Value::Null)]
            .into_iter()
            .collect();
        let b: Dict = a
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(a, b);
        assert!(!dicts_identical(&a, &b));
        assert!(dicts_identical(&a, &a.clone()));
    }

    #[test]
    fn shared_data_names_its_origin() {
        let data = shared("p1", "A", 4);
        assert_eq!(shared_origin(&data), Some(("A", 4)));
        assert_eq!(owner(&data), Some("p1"));
    }
}
