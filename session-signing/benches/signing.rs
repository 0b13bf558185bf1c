//! sign_object / unsign_object on session-like JSON payloads, compressed as Django's sessions are.
//!
//! Run: `cargo bench -p session-signing --bench signing`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use session_signing::{SecretKey, TimestampSigner, UnsignOptions};

/// Deterministic JSON resembling a real session: auth keys, then a cart of varied items, grown
/// until it reaches `target` bytes. Pseudo-random ids, prices and words keep the
/// compressibility realistic (roughly 3-4x for the larger sizes) rather than trivially high.
fn session_json(target: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "blue", "widget", "large", "organic", "coffee", "mug", "steel", "cable", "wireless",
        "charger", "notebook", "pen", "lamp", "desk", "chair", "bottle", "bag", "shirt",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut json = String::from(r#"{"_auth_user_id":"4821","#);
    if target < 150 {
        json.push_str(r#""_language":"en","visits":17,"last_seen":"2026-11-03T10:15:00+00:00"}"#);
        return json.into_bytes();
    }
    json.push_str(
        r#""_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":""#,
    );
    for _ in 0..4 {
        json.push_str(&format!("{:016x}", next()));
    }
    json.push_str(r#"","cart":["#);
    let mut first = true;
    while json.len() + 120 < target {
        if !first {
            json.push(',');
        }
        first = false;
        let r = next();
        let name: Vec<&str> = (0..3)
            .map(|i| WORDS[((r >> (i * 8)) % WORDS.len() as u64) as usize])
            .collect();
        json.push_str(&format!(
            r#"{{"id":{},"sku":"SKU-{:06X}","name":"{}","qty":{},"price":{}.{:02}}}"#,
            r % 100_000,
            (r >> 20) & 0xff_ffff,
            name.join(" "),
            1 + (r >> 44) % 5,
            (r >> 48) % 500,
            (r >> 56) % 100,
        ));
    }
    json.push_str(r#"],"_session_expiry":1209600}"#);
    json.into_bytes()
}

fn bench_signing(c: &mut Criterion) {
    let signer = TimestampSigner::new(SecretKey::from("django-insecure-benchmark-secret-key"))
        .with_salt("django.contrib.sessions.SessionStore");
    let options = UnsignOptions::default();
    let mut group = c.benchmark_group("session_signing");
    for (label, target) in [("100B", 100), ("2KB", 2 * 1024), ("32KB", 32 * 1024)] {
        let json = session_json(target);
        let token = signer.sign_object(&json, true);
        // Fail loudly rather than benchmark a broken round trip.
        assert_eq!(
            signer.unsign_object(&token, &options).ok().as_deref(),
            Some(json.as_slice())
        );
        eprintln!(
            "{label}: {} bytes of JSON -> {} byte token (compressed: {})",
            json.len(),
            token.len(),
            token.starts_with('.')
        );
        group.throughput(Throughput::Bytes(json.len() as u64));
        group.bench_with_input(BenchmarkId::new("sign_object", label), &json, |b, json| {
            b.iter(|| signer.sign_object(black_box(json), true))
        });
        group.bench_with_input(
            BenchmarkId::new("unsign_object", label),
            &token,
            |b, token| b.iter(|| signer.unsign_object(black_box(token), &options)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_signing);
criterion_main!(benches);
