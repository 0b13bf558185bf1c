//! The session dicts every comparison uses, built once in Rust and exported as JSON so the Django
//! side times identical data.

use session_core::serializer::json;
use session_core::{Dict, Value};

/// One benchmark payload.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Its label in the table (`100 B`, `2 KB`, `32 KB`).
    pub label: &'static str,
    /// The session dict.
    pub dict: Dict,
}

impl Payload {
    /// Its JSON serialization (Django's `JSONSerializer` bytes).
    pub fn json(&self) -> Vec<u8> {
        // A dict of strings, ints, lists and dicts always serializes.
        json::dict_to_vec(&self.dict).unwrap_or_default()
    }

    /// The same data as `serde_json` values, which is what tower-sessions keeps.
    pub fn serde_map(
        &self,
    ) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
        serde_json::from_slice(&self.json())
    }
}

/// A deterministic generator, so every run (and Django) sees the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
}

const PRODUCTS: &[&str] = &[
    "Organic coffee beans",
    "Walnut desk lamp",
    "Dotted notebook A5",
    "Steel water bottle",
    "Wireless headphones",
    "Canvas backpack",
    "Green tea sampler",
    "Recycled phone case",
    "Merino wool socks",
    "Bamboo cutting board",
];

/// The session every logged-in Django user has: the three auth keys' first two and a counter.
fn base() -> Dict {
    let mut dict = Dict::new();
    dict.insert("_auth_user_id", Value::from("18342"));
    dict.insert(
        "_auth_user_backend",
        Value::from("django.contrib.auth.backends.ModelBackend"),
    );
    dict.insert("visits", Value::from(0i64));
    dict
}

/// A shop session of at least `target` JSON bytes: auth keys with the password hash, a language, a
/// cart of line items with random SKUs and prices (realistic compressibility), and one pending
/// `django.contrib.messages` message.
fn shop(target: usize) -> Dict {
    let mut rng = Lcg(0x5eed_cafe);
    let mut dict = base();
    dict.insert("_auth_user_hash", Value::from(rng.hex(64)));
    dict.insert("django_language", Value::from("en-gb"));
    dict.insert(
        "_messages",
        Value::from(r#"[["__json_message",0,25,"Your cart has been updated."]]"#),
    );
    let mut cart = Vec::new();
    loop {
        dict.insert("cart", Value::List(cart.clone()));
        if json::dict_to_vec(&dict).map_or(true, |bytes| bytes.len() >= target) {
            return dict;
        }
        let mut item = Dict::new();
        item.insert(
            "sku",
            Value::from(format!("SKU-{:06}", rng.below(1_000_000))),
        );
        item.insert(
            "name",
            Value::from(PRODUCTS[rng.below(PRODUCTS.len() as u64) as usize]),
        );
        item.insert("qty", Value::from((rng.below(4) + 1) as i64));
        item.insert(
            "price",
            Value::from(format!("{}.{:02}", rng.below(200), rng.below(100))),
        );
        cart.push(Value::Dict(item));
    }
}

/// The three codec payloads: about 100 B, 2 KB and 32 KB of JSON.
pub fn all() -> Vec<Payload> {
    vec![
        Payload {
            label: "100 B",
            dict: base(),
        },
        Payload {
            label: "2 KB",
            dict: shop(2_000),
        },
        Payload {
            label: "32 KB",
            dict: shop(32_000),
        },
    ]
}

/// The payload labelled `label`.
pub fn by_label(label: &str) -> Option<Payload> {
    let wanted = label.replace(' ', "").to_ascii_lowercase();
    all()
        .into_iter()
        .find(|p| p.label.replace(' ', "").to_ascii_lowercase() == wanted)
}

/// Increments the `visits` counter of `dict`: the "modify" of a round trip.
pub fn bump(dict: &mut Dict) {
    let visits = dict.get("visits").and_then(Value::as_i64).unwrap_or(0);
    dict.insert("visits", Value::from(visits + 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_sizes_are_near_their_labels() {
        let sizes: Vec<usize> = all().iter().map(|p| p.json().len()).collect();
        assert!((80..=130).contains(&sizes[0]), "{sizes:?}");
        assert!((2_000..=2_200).contains(&sizes[1]), "{sizes:?}");
        assert!((32_000..=32_200).contains(&sizes[2]), "{sizes:?}");
    }

    #[test]
    fn payloads_are_the_same_every_time() {
        assert_eq!(all()[2].json(), all()[2].json());
        // The same across builds too, so figures from different runs compare.
        assert_eq!(all()[2].json().len(), 32_009);
    }

    #[test]
    fn labels_are_found_without_spaces_or_case() {
        assert_eq!(by_label("2kb").map(|p| p.label), Some("2 KB"));
        assert!(by_label("3kb").is_none());
    }

    #[test]
    fn bump_increments_visits() {
        let mut dict = base();
        bump(&mut dict);
        bump(&mut dict);
        assert_eq!(dict.get("visits").and_then(Value::as_i64), Some(2));
    }
}
