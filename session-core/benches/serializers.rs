//! Dumps/loads cost of each serializer for small (~100 B), medium (~2 KB) and large (~32 KB)
//! session dicts. Run with `cargo bench -p session-core --bench serializers`.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use session_core::serializer::{JsonSerializer, MsgPackSerializer, PickleSerializer, Serializer};
use session_core::value::{Dict, Value};

/// A session dict shaped like real ones: auth keys, an expiry, and a cart of `items` line items.
fn session(items: usize) -> Dict {
    let mut dict = Dict::new();
    dict.insert("_auth_user_id", Value::from("42"));
    if items > 0 {
        dict.insert(
            "_auth_user_backend",
            Value::from("django.contrib.auth.backends.ModelBackend"),
        );
        dict.insert("_auth_user_hash", Value::from("5f".repeat(32)));
        dict.insert("_session_expiry", Value::from(1_209_600i64));
        let cart: Vec<Value> = (0..items)
            .map(|i| {
                let mut item = Dict::new();
                item.insert("sku", Value::from(format!("SKU-{i:05}")));
                item.insert("name", Value::from(format!("Article n° {i} – “deluxe”")));
                item.insert("qty", Value::from((i % 7 + 1) as i64));
                item.insert("price", Value::from(9.99 + i as f64 * 0.25));
                item.insert("gift", Value::from(i % 3 == 0));
                Value::Dict(item)
            })
            .collect();
        dict.insert("cart", Value::List(cart));
    } else {
        dict.insert("_session_expiry", Value::from(0i64));
        dict.insert("testcookie", Value::from("worked"));
    }
    dict
}

fn bench(c: &mut Criterion) {
    let sizes = [
        ("100B", session(0)),
        ("2KB", session(16)),
        ("32KB", session(270)),
    ];
    let serializers: [Box<dyn Serializer>; 3] = [
        Box::new(JsonSerializer),
        Box::new(MsgPackSerializer),
        Box::new(PickleSerializer::default()),
    ];
    for serializer in &serializers {
        let mut group = c.benchmark_group(serializer.name().to_owned());
        for (label, dict) in &sizes {
            let bytes = serializer.dumps_dict(dict).unwrap();
            let json_len = JsonSerializer.dumps_dict(dict).unwrap().len();
            group.throughput(Throughput::Bytes(json_len as u64));
            group.bench_with_input(BenchmarkId::new("dumps", label), dict, |b, dict| {
                b.iter(|| serializer.dumps_dict(dict).unwrap())
            });
            group.bench_with_input(BenchmarkId::new("loads", label), &bytes, |b, bytes| {
                b.iter(|| serializer.loads_stored_bytes(bytes).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
