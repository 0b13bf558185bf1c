//! Encode and decode throughput: our `SessionCodec` (Django's `signing.dumps(..., compress=True)`
//! with the JSON serializer), Django itself in CPython, the bare HMAC-SHA256 + zlib floor, that
//! floor plus the JSON work with the fastest Rust library (writing the same bytes to encode,
//! parsing them to decode), and tower-sessions' record encoding for information. Allocations per
//! operation are counted too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, FlushCompress, Status};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use session_core::{Deflate, SessionCodec, SessionConfig};
use sha2::Sha256;

use crate::BoxError;
use crate::allocs;
use crate::payload::Payload;
use crate::stats::{Better, Runs, Unit};
use crate::table::{JsonFloor, Peer, Row};

/// The secret both sides sign with (a typical 50-character Django `SECRET_KEY`).
pub const SECRET: &str = "django-insecure-4v+3x$k2!q9z7m@p1w8r#t5y6u0i_o-benchmark";

/// The instant the byte-identity check signs at, on both sides.
const FIXED_TIMESTAMP: i64 = 1_700_000_000;

/// Calls averaged for an allocation count.
const ALLOCATION_CALLS: u32 = 64;

/// Calls `op` repeatedly for `duration` and returns calls per second ([`interleaved_rates`] of
/// one op).
pub fn rate(duration: Duration, op: impl FnMut()) -> f64 {
    let mut ops: [Box<dyn FnMut() + '_>; 1] = [Box::new(op)];
    interleaved_rates(duration, &mut ops)
        .first()
        .copied()
        .unwrap_or_default()
}

/// Slices each op's share of a run is cut into by [`interleaved_rates`].
const SLICES: u32 = 20;

/// Calls per second of each of `ops`, measured together: `duration` each, run in [`SLICES`]
/// slices that take turns (a, b, c, a, b, c, ...) rather than a whole second each in a row.
///
/// The machines this runs on share their cores with other tenants, whose load comes and goes
/// over seconds: measured one after the other, two figures of one run could differ by a third
/// for identical code. Taking turns every few dozen milliseconds puts every op under the same
/// moments, so their ratios (ours against the floor, against tower-sessions) hold even when
/// the absolute rates move.
pub fn interleaved_rates(duration: Duration, ops: &mut [Box<dyn FnMut() + '_>]) -> Vec<f64> {
    // Warm caches and the allocator first, as timeit's autorange does.
    for op in ops.iter_mut() {
        for _ in 0..16 {
            op();
        }
    }
    let slice = duration / SLICES;
    let mut totals = vec![(0u64, Duration::ZERO); ops.len()];
    for _ in 0..SLICES {
        for (op, (calls, spent)) in ops.iter_mut().zip(totals.iter_mut()) {
            let started = Instant::now();
            loop {
                for _ in 0..16 {
                    op();
                }
                *calls += 16;
                let elapsed = started.elapsed();
                if elapsed >= slice {
                    *spent += elapsed;
                    break;
                }
            }
        }
    }
    totals
        .into_iter()
        .map(|(calls, spent)| calls as f64 / spent.as_secs_f64())
        .collect()
}

/// The floor: what signing and compressing the same serialized bytes costs with nothing else
/// (no serializer, no base64, no timestamp): zlib at level 6 kept only when it saves two bytes
/// (Django's rule), then an HMAC-SHA256; reading verifies the HMAC and inflates with the
/// fastest inflate we know (zlib-rs) into a reused buffer, handing the bytes over without a
/// copy. The zlib states, the buffer and the HMAC key schedule are made once and reused, as the
/// best implementation would.
struct Floor {
    mac: Hmac<Sha256>,
    deflate: RefCell<Compress>,
    setting: Deflate,
    inflate: RefCell<zlib_rs::Inflate>,
    scratch: RefCell<Vec<u8>>,
}

impl Floor {
    fn new() -> Result<Self, BoxError> {
        Self::deflating(Deflate::Django)
    }

    /// The floor at the zlib level of a deflate setting.
    fn deflating(setting: Deflate) -> Result<Self, BoxError> {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
            .map_err(|e| format!("HMAC key: {e}"))?;
        Ok(Floor {
            mac,
            deflate: RefCell::new(Compress::new(Compression::new(setting.level()), false)),
            setting,
            inflate: RefCell::new(zlib_rs::Inflate::new(true, 15)),
            scratch: RefCell::new(Vec::new()),
        })
    }

    /// The stored body (`true` when compressed) and its tag.
    ///
    /// The zlib stream is C zlib's, built the quickest way we know: zlib deflates the body raw
    /// and the Adler-32 trailer comes from zlib-rs's SIMD checksum (what our codec does too), so
    /// the floor is not slowed by zlib's byte-loop checksum.
    fn encode(&self, raw: &[u8]) -> (bool, Vec<u8>, Vec<u8>) {
        let mut deflate = self.deflate.borrow_mut();
        deflate.reset();
        let mut compressed = Vec::with_capacity(raw.len() + 8);
        compressed.extend_from_slice(&self.setting.zlib_header());
        let finished = deflate.compress_vec(raw, &mut compressed, FlushCompress::Finish);
        if let Ok(Status::StreamEnd) = finished {
            compressed.extend_from_slice(&zlib_rs::adler32::adler32(1, raw).to_be_bytes());
        }
        let (is_compressed, body) = match finished {
            Ok(Status::StreamEnd) if compressed.len() + 1 < raw.len() => (true, compressed),
            _ => (false, raw.to_vec()),
        };
        let mut mac = self.mac.clone();
        mac.update(&body);
        (is_compressed, body, mac.finalize().into_bytes().to_vec())
    }

    /// Verifies the tag, inflates the body when it is compressed, and hands the bytes to `f`.
    fn decode_with<R>(
        &self,
        is_compressed: bool,
        body: &[u8],
        tag: &[u8],
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Option<R> {
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_slice(tag).ok()?;
        let mut scratch = self.scratch.borrow_mut();
        if !is_compressed {
            scratch.clear();
            scratch.extend_from_slice(body);
            return Some(f(&mut scratch));
        }
        if scratch.len() < body.len() * 8 {
            scratch.resize(body.len() * 8, 0);
        }
        let mut inflate = self.inflate.borrow_mut();
        inflate.reset(true);
        let mut written = 0;
        loop {
            let consumed = usize::try_from(inflate.total_in()).ok()?;
            let before = inflate.total_out();
            let status = inflate
                .decompress(
                    &body[consumed..],
                    &mut scratch[written..],
                    zlib_rs::InflateFlush::NoFlush,
                )
                .ok()?;
            written += usize::try_from(inflate.total_out() - before).ok()?;
            if status == zlib_rs::Status::StreamEnd {
                return Some(f(&mut scratch[..written]));
            }
            if written == scratch.len() {
                let grown = scratch.len() * 2;
                scratch.resize(grown, 0);
            } else if usize::try_from(inflate.total_in()).ok()? == body.len() {
                return None;
            }
        }
    }

    /// [`decode_with`](Self::decode_with) returning the bytes.
    fn decode(&self, is_compressed: bool, body: &[u8], tag: &[u8]) -> Option<Vec<u8>> {
        self.decode_with(is_compressed, body, tag, |bytes| bytes.to_vec())
    }
}

/// The JSON parsers the decode floor+JSON may use, each into its own document type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parser {
    /// `sonic_rs::Value` (SIMD parser, arena-backed document).
    Sonic,
    /// `simd_json::BorrowedValue` (parses in place; strings without escapes borrow the input).
    SimdJson,
    /// `serde_json::Value` (with `preserve_order`: an `IndexMap` per object, as ours was before 2026-12-06).
    SerdeJson,
}

impl Parser {
    const ALL: [Parser; 3] = [Parser::Sonic, Parser::SimdJson, Parser::SerdeJson];

    fn name(self) -> &'static str {
        match self {
            Parser::Sonic => "sonic-rs Value",
            Parser::SimdJson => "simd-json BorrowedValue",
            Parser::SerdeJson => "serde_json Value",
        }
    }

    /// Parses and drops the document (dropping is part of the work, as for ours); `false` when
    /// the bytes are not JSON.
    fn parse(self, bytes: &mut [u8]) -> bool {
        match self {
            Parser::Sonic => black_box(sonic_rs::from_slice::<sonic_rs::Value>(bytes)).is_ok(),
            Parser::SimdJson => black_box(simd_json::to_borrowed_value(bytes)).is_ok(),
            Parser::SerdeJson => {
                black_box(serde_json::from_slice::<serde_json::Value>(bytes)).is_ok()
            }
        }
    }
}

/// The JSON writers the encode floor+JSON may use, each writing the payload as the document a
/// Rust program would hold (a `serde_json` map, in the session's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// `sonic_rs::to_vec` (SIMD string escaping).
    Sonic,
    /// `serde_json::to_vec`.
    SerdeJson,
}

/// A session as a Rust program would hold it for the writers.
type JsonMap = serde_json::Map<String, serde_json::Value>;

impl Writer {
    const ALL: [Writer; 2] = [Writer::Sonic, Writer::SerdeJson];

    fn name(self) -> &'static str {
        match self {
            Writer::Sonic => "sonic-rs",
            Writer::SerdeJson => "serde_json",
        }
    }

    /// The JSON text of `map`; empty if the writer failed (a map of JSON values always writes).
    fn write(self, map: &JsonMap) -> Vec<u8> {
        match self {
            Writer::Sonic => sonic_rs::to_vec(map).unwrap_or_default(),
            Writer::SerdeJson => serde_json::to_vec(map).unwrap_or_default(),
        }
    }
}

/// The fastest of `candidates` at `op`, timed for a short trial each once `works` has accepted
/// it (its error names the first that does not); the trial's rates go to stderr after `heading`.
fn fastest<T: Copy>(
    candidates: &[T],
    name: fn(T) -> &'static str,
    heading: &str,
    works: impl Fn(T) -> Result<(), String>,
    mut op: impl FnMut(T),
) -> Result<T, BoxError> {
    let mut best: Option<(T, f64)> = None;
    let mut report = Vec::new();
    for &candidate in candidates {
        works(candidate)?;
        let per_second = rate(Duration::from_millis(300), || op(candidate));
        report.push(format!("{} {per_second:.0}/s", name(candidate)));
        if best.is_none_or(|(_, rate)| per_second > rate) {
            best = Some((candidate, per_second));
        }
    }
    eprintln!("{heading} {}", report.join(", "));
    best.map(|(candidate, _)| candidate)
        .ok_or_else(|| format!("{heading}: nothing to measure").into())
}

/// The writer the encode floor+JSON uses for a payload: the fastest here of those that write
/// Django's bytes (`raw`), so that the floor deflates and signs exactly what ours does.
fn fastest_writer(
    floor: &Floor,
    map: &JsonMap,
    raw: &[u8],
    label: &str,
) -> Result<Writer, BoxError> {
    fastest(
        &Writer::ALL,
        Writer::name,
        &format!("codec {label}: write + deflate + HMAC with"),
        |writer| {
            if writer.write(map) == raw {
                Ok(())
            } else {
                Err(format!(
                    "{label}: {} does not write Django's bytes",
                    writer.name()
                ))
            }
        },
        |writer| {
            black_box(floor.encode(&writer.write(black_box(map))));
        },
    )
}

/// The parser the floor+JSON column uses for `token`'s payload: the fastest here.
fn fastest_parser(
    floor: &Floor,
    stored: &(bool, Vec<u8>, Vec<u8>),
    label: &str,
) -> Result<Parser, BoxError> {
    let (is_compressed, body, tag) = stored;
    fastest(
        &Parser::ALL,
        Parser::name,
        &format!("codec {label}: inflate + HMAC + parse with"),
        |parser| match floor.decode_with(*is_compressed, body, tag, |b| parser.parse(b)) {
            Some(true) => Ok(()),
            _ => Err(format!(
                "{label}: {} does not parse the payload",
                parser.name()
            )),
        },
        |parser| {
            black_box(floor.decode_with(*is_compressed, black_box(body), tag, |b| parser.parse(b)));
        },
    )
}

/// Figures for one payload: ours, the floor, tower-sessions and floor+JSON (and to encode, ours
/// and the floor with the fast deflate).
struct Measured {
    encode: [Runs; 6],
    decode: [Runs; 4],
    /// Allocations per call, in the same order.
    encode_allocs: [f64; 6],
    decode_allocs: [f64; 4],
    writer: Writer,
    parser: Parser,
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

/// What the codec comparison produced: its rows, their floor+JSON figures, and notes for the
/// table's header (Django's version, the JSON libraries used).
pub struct Report {
    /// Throughput and allocation rows.
    pub rows: Vec<Row>,
    /// The floor+JSON column.
    pub json_floors: Vec<JsonFloor>,
    /// Django's and CPython's versions.
    pub django: String,
    /// Which writer and parser the floor+JSON column used for each payload.
    pub json_libraries: String,
}

/// Measures every payload.
pub fn run(payloads: &[Payload], runs: usize, seconds: f64) -> Result<Report, BoxError> {
    let codec = SessionCodec::new(&SessionConfig::new(SECRET))?;
    let fast_codec = SessionCodec::new(&SessionConfig {
        deflate: Deflate::Fast,
        ..SessionConfig::new(SECRET)
    })?;
    let floor = Floor::new()?;
    let fast_floor = Floor::deflating(Deflate::Fast)?;
    let duration = Duration::from_secs_f64(seconds);
    let mut measured = Vec::new();
    for payload in payloads {
        let dict = &payload.dict;
        let token = codec.encode(dict)?;
        if codec.decode(&token) != *dict {
            return Err(format!("{}: our codec does not round-trip", payload.label).into());
        }
        let fast_token = fast_codec.encode(dict)?;
        if codec.decode(&fast_token) != *dict {
            return Err(format!("{}: the fast deflate does not round-trip", payload.label).into());
        }
        let raw = payload.json();
        let stored = floor.encode(&raw);
        let (is_compressed, body, tag) = &stored;
        if floor.decode(*is_compressed, body, tag).as_deref() != Some(raw.as_slice()) {
            return Err(format!("{}: the floor does not round-trip", payload.label).into());
        }
        let record = tower_record(payload)?;
        let packed = rmp_serde::to_vec(&record)?;
        eprintln!(
            "codec {}: JSON {} B, our stored value {} B ({}; {} B with deflate fast), \
             tower-sessions record {} B (MessagePack)",
            payload.label,
            raw.len(),
            token.len(),
            if token.starts_with('.') {
                "compressed"
            } else {
                "not compressed: zlib would not shrink it"
            },
            fast_token.len(),
            packed.len(),
        );
        let map = payload.serde_map()?;
        let writer = fastest_writer(&floor, &map, &raw, payload.label)?;
        let parser = fastest_parser(&floor, &stored, payload.label)?;

        let mut ops_encode: [Box<dyn FnMut() + '_>; 6] = [
            Box::new(|| {
                black_box(codec.encode(black_box(dict)).ok());
            }),
            Box::new(|| {
                black_box(floor.encode(black_box(&raw)));
            }),
            Box::new(|| {
                black_box(rmp_serde::to_vec(black_box(&record)).ok());
            }),
            Box::new(|| {
                black_box(floor.encode(&writer.write(black_box(&map))));
            }),
            Box::new(|| {
                black_box(fast_codec.encode(black_box(dict)).ok());
            }),
            Box::new(|| {
                black_box(fast_floor.encode(black_box(&raw)));
            }),
        ];
        let mut ops_decode: [Box<dyn FnMut() + '_>; 4] = [
            Box::new(|| {
                black_box(codec.decode(black_box(&token)));
            }),
            Box::new(|| {
                black_box(
                    floor.decode_with(*is_compressed, black_box(body), tag, |b| black_box(b.len())),
                );
            }),
            Box::new(|| {
                black_box(
                    rmp_serde::from_slice::<tower_sessions::session::Record>(black_box(&packed))
                        .ok(),
                );
            }),
            Box::new(|| {
                black_box(
                    floor.decode_with(*is_compressed, black_box(body), tag, |b| parser.parse(b)),
                );
            }),
        ];
        let mut m = Measured {
            encode: Default::default(),
            decode: Default::default(),
            encode_allocs: [0.0; 6],
            decode_allocs: [0.0; 4],
            writer,
            parser,
        };
        for (count, op) in m.encode_allocs.iter_mut().zip(ops_encode.iter_mut()) {
            *count = allocs::per_call(ALLOCATION_CALLS, op);
        }
        for (count, op) in m.decode_allocs.iter_mut().zip(ops_decode.iter_mut()) {
            *count = allocs::per_call(ALLOCATION_CALLS, op);
        }
        // Implementations take turns within each run, so drifting load affects all alike.
        for _ in 0..runs {
            let encoded = interleaved_rates(duration, &mut ops_encode);
            for (runs, rate) in m.encode.iter_mut().zip(encoded) {
                runs.push(rate);
            }
            let decoded = interleaved_rates(duration, &mut ops_decode);
            for (runs, rate) in m.decode.iter_mut().zip(decoded) {
                runs.push(rate);
            }
        }
        drop((ops_encode, ops_decode));
        measured.push(m);
    }

    eprintln!("codec: timing Django in CPython ({runs} runs of ~{seconds} s per figure)");
    let report = django(payloads, &codec, runs, seconds)?;
    let mut rows = Vec::new();
    let mut json_floors = Vec::new();
    let mut libraries = Vec::new();
    for (payload, m) in payloads.iter().zip(measured) {
        let result = report
            .results
            .iter()
            .find(|r| r.label == payload.label)
            .ok_or_else(|| format!("django_codec.py reported nothing for {}", payload.label))?;
        libraries.push(format!(
            "{} {} / {}",
            payload.label,
            m.writer.name(),
            m.parser.name()
        ));
        let [
            ours_enc,
            floor_enc,
            tower_enc,
            write_enc,
            fast_enc,
            fast_floor_enc,
        ] = m.encode;
        let [ours_dec, floor_dec, tower_dec, parse_dec] = m.decode;
        let [
            ours_enc_n,
            floor_enc_n,
            tower_enc_n,
            write_enc_n,
            fast_enc_n,
            fast_floor_enc_n,
        ] = m.encode_allocs;
        let [ours_dec_n, floor_dec_n, tower_dec_n, parse_dec_n] = m.decode_allocs;
        let once = |v: f64| Runs::from_iter([v]);
        for (op, ours, floor, tower, django, json) in [
            (
                "encode",
                ours_enc,
                floor_enc,
                tower_enc,
                &result.encode,
                write_enc,
            ),
            (
                "decode",
                ours_dec,
                floor_dec,
                tower_dec,
                &result.decode,
                parse_dec,
            ),
        ] {
            let case = format!("{op} {}", payload.label);
            json_floors.push(JsonFloor {
                section: "codec",
                case: case.clone(),
                unit: "ops/s",
                runs: json,
            });
            rows.push(Row {
                section: "codec",
                case,
                unit: "ops/s",
                format: Unit::PerSecond,
                better: Better::Higher,
                peer: Peer::Django,
                ours,
                tower: Some(tower),
                django: Some(django.iter().copied().collect()),
                last_write_wins: None,
                floor: Some(floor),
            });
        }
        // The opt-in fast deflate (zlib level 1), against Django's own (level 6) dumps and a
        // floor at level 1: not Django's bytes, but read by Django (fixtures/django/check_ours.py).
        let fast_case = format!("encode {} fast", payload.label);
        rows.push(Row {
            section: "codec",
            case: fast_case.clone(),
            unit: "ops/s",
            format: Unit::PerSecond,
            better: Better::Higher,
            peer: Peer::Django,
            ours: fast_enc,
            tower: None,
            django: Some(result.encode.iter().copied().collect()),
            last_write_wins: None,
            floor: Some(fast_floor_enc),
        });
        rows.push(Row {
            section: "codec",
            case: fast_case,
            unit: "allocs",
            format: Unit::Count,
            better: Better::Lower,
            peer: Peer::Django,
            ours: once(fast_enc_n),
            tower: None,
            django: None,
            last_write_wins: None,
            floor: Some(once(fast_floor_enc_n)),
        });
        for (op, ours, floor, tower, json) in [
            ("encode", ours_enc_n, floor_enc_n, tower_enc_n, write_enc_n),
            ("decode", ours_dec_n, floor_dec_n, tower_dec_n, parse_dec_n),
        ] {
            let case = format!("{op} {}", payload.label);
            json_floors.push(JsonFloor {
                section: "codec",
                case: case.clone(),
                unit: "allocs",
                runs: once(json),
            });
            rows.push(Row {
                section: "codec",
                case,
                unit: "allocs",
                format: Unit::Count,
                better: Better::Lower,
                peer: Peer::Django,
                ours: once(ours),
                tower: Some(once(tower)),
                // CPython's allocations are not counted here.
                django: None,
                last_write_wins: None,
                floor: Some(once(floor)),
            });
        }
    }
    Ok(Report {
        rows,
        json_floors,
        django: format!("Django {} on CPython {}", report.django, report.python),
        json_libraries: libraries.join(", "),
    })
}

/// The floors of `profile encode-floor`, `encode-write-floor` (which writes the JSON with the
/// fastest writer for the payload), `decode-floor` and `decode-parse-floor` (which parses with the
/// fastest parser for the payload).
pub fn profile_floor(op: &str, payload: &Payload, iterations: u64) -> Result<(), BoxError> {
    let floor = Floor::new()?;
    let raw = payload.json();
    let stored = floor.encode(&raw);
    let parser = if op == "decode-parse-floor" {
        Some(fastest_parser(&floor, &stored, payload.label)?)
    } else {
        None
    };
    let map = payload.serde_map()?;
    let writer = if op == "encode-write-floor" {
        Some(fastest_writer(&floor, &map, &raw, payload.label)?)
    } else {
        None
    };
    let (is_compressed, body, tag) = &stored;
    for _ in 0..iterations {
        match (op, parser) {
            ("encode-floor", _) => {
                black_box(floor.encode(black_box(&raw)));
            }
            ("encode-write-floor", _) => {
                if let Some(writer) = writer {
                    black_box(floor.encode(&writer.write(black_box(&map))));
                }
            }
            (_, Some(parser)) => {
                black_box(
                    floor.decode_with(*is_compressed, black_box(body), tag, |b| parser.parse(b)),
                );
            }
            _ => {
                black_box(
                    floor.decode_with(*is_compressed, black_box(body), tag, |b| black_box(b.len())),
                );
            }
        }
    }
    Ok(())
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
            assert_eq!(floor.decode(compressed, &body, &tag), Some(raw.clone()));
            for parser in Parser::ALL {
                assert_eq!(
                    floor.decode_with(compressed, &body, &tag, |b| parser.parse(b)),
                    Some(true),
                    "{}",
                    parser.name()
                );
            }
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
    fn interleaved_rates_give_each_op_its_own_rate() {
        let fast = std::cell::Cell::new(0u64);
        let slow = std::cell::Cell::new(0u64);
        let mut ops: [Box<dyn FnMut() + '_>; 2] = [
            Box::new(|| fast.set(fast.get() + 1)),
            Box::new(|| {
                slow.set(slow.get() + 1);
                std::thread::sleep(Duration::from_micros(200));
            }),
        ];
        let rates = interleaved_rates(Duration::from_millis(100), &mut ops);
        drop(ops);
        assert_eq!(rates.len(), 2);
        // Every slice runs each op at least one batch of 16 (after 16 warm-up calls).
        assert!(slow.get() >= 16 + 16 * u64::from(SLICES), "{}", slow.get());
        // 200 µs a call cannot reach 5,000 calls a second; a counter alone goes far faster.
        assert!(rates[1] > 0.0 && rates[1] < 5_000.0, "{rates:?}");
        assert!(rates[0] > 100.0 * rates[1], "{rates:?}");
    }

    #[test]
    fn rate_counts_calls() {
        let mut calls = 0u64;
        let per_second = rate(Duration::from_millis(20), || calls += 1);
        assert!(per_second > 0.0 && calls >= 32);
    }
}
