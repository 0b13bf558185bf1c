//! The full session round trip a store performs on every request: `SessionCodec::encode`
//! (serialize + compress when shorter + sign) and `SessionCodec::decode` (verify + decompress +
//! parse), for ~100 B, ~2 KB and ~32 KB session dicts with JSON, and MessagePack and pickle at
//! ~2 KB. Run with `cargo bench -p session-core --bench codec`; the sizes are printed first.

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use session_core::serializer::{SerializerName, json};
use session_core::value::{Dict, Value};
use session_core::{SessionCodec, SessionConfig};

/// A small deterministic generator, so every run benchmarks the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.next() as usize % words.len()]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.next() as usize % 16]))
            .collect()
    }
}

const ADJECTIVES: &[&str] = &[
    "Organic", "Classic", "Deluxe", "Compact", "Vintage", "Wireless", "Recycled", "Premium",
];
const NOUNS: &[&str] = &[
    "coffee beans",
    "desk lamp",
    "notebook",
    "water bottle",
    "headphones",
    "backpack",
    "tea sampler",
    "phone case",
    "wool socks",
    "cutting board",
];
const MESSAGES: &[&str] = &[
    "Your cart has been updated.",
    "Welcome back!",
    "The item was added to your wishlist.",
    "Your address has been saved.",
    "Free shipping on orders over €50.",
];

/// A session as a shop stores it: Django's auth keys, an expiry, a cart of `items` line items,
/// and `messages` pending `django.contrib.messages` (which its session storage keeps as one
/// JSON-encoded string under `_messages`). Random SKUs, prices and the auth hash keep the
/// compressibility realistic.
fn session(items: usize, messages: usize) -> Dict {
    let mut rng = Lcg(0x5eed);
    let mut dict = Dict::new();
    dict.insert("_auth_user_id", Value::from("18342"));
    dict.insert(
        "_auth_user_backend",
        Value::from("django.contrib.auth.backends.ModelBackend"),
    );
    if items == 0 {
        return dict;
    }
    dict.insert("_auth_user_hash", Value::from(rng.hex(64)));
    dict.insert("_session_expiry", Value::from(1_209_600i64));
    dict.insert("django_language", Value::from("en-gb"));
    let cart: Vec<Value> = (0..items)
        .map(|_| {
            let mut item = Dict::new();
            item.insert(
                "sku",
                Value::from(format!("SKU-{:06}", rng.next() % 1_000_000)),
            );
            item.insert(
                "name",
                Value::from(format!("{} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS))),
            );
            item.insert("qty", Value::from((rng.next() % 4 + 1) as i64));
            item.insert(
                "unit_price",
                Value::from(format!("{}.{:02}", rng.next() % 200, rng.next() % 100)),
            );
            Value::Dict(item)
        })
        .collect();
    dict.insert("cart", Value::List(cart));
    dict.insert(
        "cart_updated",
        Value::from(1_700_000_000i64 + (rng.next() % 86_400) as i64),
    );
    let pending: Vec<String> = (0..messages)
        .map(|_| format!(r#"["__json_message",0,20,"{}"]"#, rng.pick(MESSAGES)))
        .collect();
    dict.insert("_messages", Value::from(format!("[{}]", pending.join(","))));
    dict
}

fn codec(serializer: SerializerName) -> SessionCodec {
    SessionCodec::new(&SessionConfig {
        serializer,
        ..SessionConfig::new("a-realistic-50-character-secret-key-for-benchmarks")
    })
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let cases = [
        ("json", "100B", SerializerName::Json, session(0, 0)),
        ("json", "2KB", SerializerName::Json, session(20, 2)),
        ("json", "32KB", SerializerName::Json, session(390, 24)),
        ("msgpack", "2KB", SerializerName::MsgPack, session(20, 2)),
        ("pickle", "2KB", SerializerName::Pickle, session(20, 2)),
    ];
    for (serializer, label, name, dict) in &cases {
        let codec = codec(*name);
        let json_len = json_len(dict);
        let serialized = codec.serialize(dict).unwrap().len();
        let encoded = codec.encode(dict).unwrap();
        assert_eq!(codec.decode(&encoded), *dict, "the round trip must succeed");
        eprintln!(
            "{serializer}/{label}: JSON {json_len} B, serialized {serialized} B, \
             stored {} B{}",
            encoded.len(),
            if encoded.starts_with('.') {
                " (compressed)"
            } else {
                ""
            }
        );

        let mut group = c.benchmark_group(format!("codec/{serializer}"));
        group.throughput(Throughput::Bytes(json_len as u64));
        group.bench_with_input(BenchmarkId::new("encode", label), dict, |b, dict| {
            b.iter(|| codec.encode(black_box(dict)).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("decode", label), &encoded, |b, encoded| {
            b.iter(|| codec.decode(black_box(encoded)))
        });
        group.finish();
    }
}

/// The JSON size of a dict, the common yardstick for every serializer's throughput.
fn json_len(dict: &Dict) -> usize {
    json::dict_to_vec(dict).unwrap().len()
}

criterion_group!(benches, bench);
criterion_main!(benches);
