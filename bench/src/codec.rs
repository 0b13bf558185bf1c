//! Encode and decode throughput: our `SessionCodec` (Django's `signing.dumps(..., compress=True)`
//! with the JSON serializer), Django itself in CPython, the bare HMAC-SHA256 + zlib floor, and
//! tower-sessions' record encoding for information.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use session_core::{SessionCodec, SessionConfig};
use sha2::Sha256;

use crate::BoxError;
use crate::payload::Payload;
use crate::stats::{Better, Runs, Unit};
use crate::table::{Peer, Row};

/// The secret both sides sign with (a typical 50-character Django `SECRET_KEY`).
pub const SECRET: &str = "django-insecure-4v+3x$k2!q9z7m@p1w8r#t5y6u0i_o-benchmark";

/// The instant the byte-identity check signs at, on both sides.
const FIXED_TIMESTAMP: i64 = 1_700_000_000;

/// Calls `op` repeatedly for `duration` and returns calls per second.
pub fn rate(duration: Duration, mut op: impl FnMut()) -> f64 {
    // Warm caches and the allocator first, as timeit's autorange does.
    for _ in 0..16 {
        op();
    }
    let started = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..16 {
            op();
        }
        calls += 16;
        let elapsed = started.elapsed();
        if elapsed >= duration {
            return calls as f64 / elapsed.as_secs_f64();
        }
    }
}

/// The floor: what signing and compressing the same serialized bytes costs with nothing else
/// (no serializer, no base64, no timestamp): zlib at level 6 kept only when it saves two bytes
/// (Django's rule), then an HMAC-SHA256. The zlib states and the HMAC key schedule are made once
/// and reused, as the best implementation would.
struct Floor {
    mac: Hmac<Sha256>,
    deflate: RefCell<Compress>,
    inflate: RefCell<Decompress>,
}

impl Floor {
    fn new() -> Result<Self, BoxError> {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
            .map_err(|e| format!("HMAC key: {e}"))?;
        Ok(Floor {
            mac,
            deflate: RefCell::new(Compress::new(Compression::new(6), true)),
            inflate: RefCell::new(Decompress::new(true)),
        })
    }

    /// The stored body (`true` when compressed) and its tag.
    fn encode(&self, raw: &[u8]) -> (bool, Vec<u8>, Vec<u8>) {
        let mut deflate = self.deflate.borrow_mut();
        deflate.reset();
        let mut compressed = Vec::with_capacity(raw.len());
        let finished = deflate.compress_vec(raw, &mut compressed, FlushCompress::Finish);
        let (is_compressed, body) = match finished {
            Ok(Status::StreamEnd) if compressed.len() + 1 < raw.len() => (true, compressed),
            _ => (false, raw.to_vec()),
        };
        let mut mac = self.mac.clone();
        mac.update(&body);
        (is_compressed, body, mac.finalize().into_bytes().to_vec())
    }

    /// Verifies the tag, then inflates the body when it is compressed.
    fn decode(&self, is_compressed: bool, body: &[u8], tag: &[u8]) -> Option<Vec<u8>> {
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_slice(tag).ok()?;
        if !is_compressed {
            return Some(body.to_vec());
        }
        let mut inflate = self.inflate.borrow_mut();
        inflate.reset(true);
        let mut out = Vec::with_capacity(body.len() * 4);
        loop {
            let consumed = usize::try_from(inflate.total_in()).ok()?;
            let status = inflate
                .decompress_vec(&body[consumed..], &mut out, FlushDecompress::None)
                .ok()?;
            if status == Status::StreamEnd {
                return Some(out);
            }
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            } else if consumed == body.len() {
                return None;
            }
        }
    }
}

/// Figures for one payload.
struct Measured {
    encode: [Runs; 3],
    decode: [Runs; 3],
}

/// What `django_codec.py` reports.
#[derive(Debug, Deserialize)]
struct DjangoReport {
    django: String,
    python: String,
    results: Vec<DjangoResult>,
}

#[derive(Debug, Deserialize)]
struct DjangoResult {
    label: String,
    encode: Vec<f64>,
    decode: Vec<f64>,
}

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `django_codec.py` (which creates its virtualenv on first use) over the same payloads.
fn django(
    payloads: &[Payload],
    codec: &SessionCodec,
    runs: usize,
    seconds: f64,
) -> Result<DjangoReport, BoxError> {
    let mut cases = Vec::new();
    for payload in payloads {
        cases.push(serde_json::json!({
            "label": payload.label,
            "json": String::from_utf8(payload.json())?,
            "token_at_fixed_time": codec.encode_at(&payload.dict, FIXED_TIMESTAMP)?,
            "token": codec.encode(&payload.dict)?,
        }));
    }
    let request = serde_json::json!({
        "secret": SECRET,
        "salt": session_core::config::SESSION_KEY_SALT,
        "fixed_timestamp": FIXED_TIMESTAMP,
        "runs": runs,
        "seconds": seconds,
        "payloads": cases,
    });
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut child = Command::new(python)
        .arg(bench_dir().join("django_codec.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start python3 for the Django side: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin for django_codec.py")?
        .write_all(serde_json::to_vec(&request)?.as_slice())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(format!("django_codec.py failed ({})", output.status).into());
    }
    Ok(serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("django_codec.py printed something that is not its report: {e}"))?)
}

/// The tower-sessions record a payload becomes (their stores persist `rmp_serde::to_vec(&record)`).
fn tower_record(payload: &Payload) -> Result<tower_sessions::session::Record, BoxError> {
    let data: HashMap<String, serde_json::Value> = payload.serde_map()?.into_iter().collect();
    Ok(tower_sessions::session::Record {
        id: tower_sessions::session::Id::default(),
        data,
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::weeks(2),
    })
}

/// Measures every payload and returns the codec rows plus a line naming Django's version.
pub fn run(
    payloads: &[Payload],
    runs: usize,
    seconds: f64,
) -> Result<(Vec<Row>, String), BoxError> {
    let codec = SessionCodec::new(&SessionConfig::new(SECRET))?;
    let floor = Floor::new()?;
    let duration = Duration::from_secs_f64(seconds);
    let mut measured = Vec::new();
    for payload in payloads {
        let dict = &payload.dict;
        let token = codec.encode(dict)?;
        if codec.decode(&token) != *dict {
            return Err(format!("{}: our codec does not round-trip", payload.label).into());
        }
        let raw = payload.json();
        let (is_compressed, body, tag) = floor.encode(&raw);
        if floor.decode(is_compressed, &body, &tag).as_deref() != Some(raw.as_slice()) {
            return Err(format!("{}: the floor does not round-trip", payload.label).into());
        }
        let record = tower_record(payload)?;
        let packed = rmp_serde::to_vec(&record)?;
        eprintln!(
            "codec {}: JSON {} B, our stored value {} B ({}), tower-sessions record {} B (MessagePack)",
            payload.label,
            raw.len(),
            token.len(),
            if token.starts_with('.') {
                "compressed"
            } else {
                "not compressed: zlib would not shrink it"
            },
            packed.len(),
        );

        let mut m = Measured {
            encode: Default::default(),
            decode: Default::default(),
        };
        // Alternate implementations run by run, so drifting load affects all alike.
        for _ in 0..runs {
            m.encode[0].push(rate(duration, || {
                black_box(codec.encode(black_box(dict)).ok());
            }));
            m.decode[0].push(rate(duration, || {
                black_box(codec.decode(black_box(&token)));
            }));
            m.encode[1].push(rate(duration, || {
                black_box(floor.encode(black_box(&raw)));
            }));
            m.decode[1].push(rate(duration, || {
                black_box(floor.decode(is_compressed, black_box(&body), &tag));
            }));
            m.encode[2].push(rate(duration, || {
                black_box(rmp_serde::to_vec(black_box(&record)).ok());
            }));
            m.decode[2].push(rate(duration, || {
                black_box(
                    rmp_serde::from_slice::<tower_sessions::session::Record>(black_box(&packed))
                        .ok(),
                );
            }));
        }
        measured.push(m);
    }

    eprintln!("codec: timing Django in CPython ({runs} runs of ~{seconds} s per figure)");
    let report = django(payloads, &codec, runs, seconds)?;
    let mut rows = Vec::new();
    for (payload, m) in payloads.iter().zip(measured) {
        let result = report
            .results
            .iter()
            .find(|r| r.label == payload.label)
            .ok_or_else(|| format!("django_codec.py reported nothing for {}", payload.label))?;
        let [ours_enc, floor_enc, tower_enc] = m.encode;
        let [ours_dec, floor_dec, tower_dec] = m.decode;
        for (op, ours, floor, tower, django) in [
            ("encode", ours_enc, floor_enc, tower_enc, &result.encode),
            ("decode", ours_dec, floor_dec, tower_dec, &result.decode),
        ] {
            let mut django_runs = Runs::new();
            for v in django {
                django_runs.push(*v);
            }
            rows.push(Row {
                section: "codec",
                case: format!("{op} {}", payload.label),
                unit: "ops/s",
                format: Unit::PerSecond,
                better: Better::Higher,
                peer: Peer::Django,
                ours,
                tower: Some(tower),
                django: Some(django_runs),
                floor: Some(floor),
            });
        }
    }
    let versions = format!("Django {} on CPython {}", report.django, report.python);
    Ok((rows, versions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_round_trips_and_rejects_a_bad_tag() {
        let floor = Floor::new().unwrap();
        for payload in crate::payload::all() {
            let raw = payload.json();
            let (compressed, body, mut tag) = floor.encode(&raw);
            assert_eq!(floor.decode(compressed, &body, &tag), Some(raw));
            tag[0] ^= 1;
            assert_eq!(floor.decode(compressed, &body, &tag), None);
        }
    }

    #[test]
    fn floor_compresses_like_django_only_when_shorter() {
        let floor = Floor::new().unwrap();
        let (compressed, body, _) = floor.encode(b"0123456789abcdef");
        assert!(!compressed, "16 distinct bytes do not shrink");
        assert_eq!(body, b"0123456789abcdef");
        let payloads = crate::payload::all();
        assert!(floor.encode(&payloads[1].json()).0, "2 KB shrinks");
    }

    #[test]
    fn tower_record_holds_the_same_data() {
        let payload = &crate::payload::all()[1];
        let record = tower_record(payload).unwrap();
        let back: serde_json::Value = serde_json::to_value(&record.data).unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&payload.json()).unwrap();
        assert_eq!(back, ours);
    }

    #[test]
    fn rate_counts_calls() {
        let mut calls = 0u64;
        let per_second = rate(Duration::from_millis(20), || calls += 1);
        assert!(per_second > 0.0 && calls >= 32);
    }
}
