//! Property tests for every serializer: round trips over arbitrary values, Python-identical
//! float text, and no panic on any input bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use num_bigint::BigInt;
use proptest::prelude::*;
use session_core::serializer::{
    JsonSerializer, MsgPackSerializer, PickleSerializer, Serializer, json, msgpack, pickle,
};
use session_core::value::{Dict, Int, Value, from_value, to_value};

fn int_strategy() -> impl Strategy<Value = Int> {
    prop_oneof![
        4 => any::<i64>().prop_map(Int::from),
        1 => any::<u64>().prop_map(Int::from),
        1 => any::<i128>().prop_map(Int::from),
        1 => proptest::collection::vec(any::<u8>(), 1..40)
            .prop_map(|bytes| Int::from(BigInt::from_signed_bytes_le(&bytes))),
    ]
}

fn float_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<u64>().prop_map(f64::from_bits),
        1 => Just(f64::NAN),
        1 => Just(-0.0),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        2 => any::<f64>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        int_strategy().prop_map(Value::Int),
        float_strategy().prop_map(Value::Float),
        // Any Unicode scalar values (Rust strings cannot hold lone surrogates).
        any::<String>().prop_map(Value::from),
        "[a-z]{0,8}".prop_map(Value::from),
    ]
}

fn value_strategy() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::vec((any::<String>(), inner), 0..8)
                .prop_map(|entries| Value::Dict(entries.into_iter().collect::<Dict>())),
        ]
    })
}

/// What JSON gives back for a value: text has one `NaN`, so every NaN payload and sign reads back
/// as the canonical quiet NaN (as in Python). The binary formats keep the bits.
fn json_view(value: &Value) -> Value {
    match value {
        Value::Float(f) if f.is_nan() => Value::Float(f64::NAN),
        Value::List(items) => Value::List(items.iter().map(json_view).collect()),
        Value::Dict(dict) => Value::Dict(
            dict.iter()
                .map(|(k, v)| (k.clone(), json_view(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn serializers() -> Vec<Box<dyn Serializer>> {
    let mut all: Vec<Box<dyn Serializer>> =
        vec![Box::new(JsonSerializer), Box::new(MsgPackSerializer)];
    for protocol in 2..=5 {
        all.push(Box::new(PickleSerializer::with_protocol(protocol).unwrap()));
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_serializer_round_trips_any_value(value in value_strategy()) {
        for serializer in serializers() {
            let bytes = serializer.dumps(&value).unwrap();
            let back = serializer.loads_stored_bytes(&bytes).unwrap();
            let expected = if serializer.name() == "json" { json_view(&value) } else { value.clone() };
            prop_assert!(back.is_identical(&expected), "{}: {value:?} came back as {back:?}", serializer.name());
        }
    }

    #[test]
    fn dict_dumps_equal_value_dumps(entries in proptest::collection::vec((any::<String>(), leaf()), 0..10)) {
        let dict: Dict = entries.into_iter().collect();
        let value = Value::Dict(dict.clone());
        for serializer in serializers() {
            prop_assert_eq!(serializer.dumps_dict(&dict).unwrap(), serializer.dumps(&value).unwrap());
        }
    }

    #[test]
    fn json_output_is_ascii_and_also_reads_as_text(value in value_strategy()) {
        let text = json::to_string(&value).unwrap();
        prop_assert!(text.is_ascii());
        prop_assert!(json::from_str(&text).unwrap().is_identical(&json_view(&value)));
    }

    #[test]
    fn float_text_reads_back_bit_for_bit(bits in any::<u64>()) {
        let f = f64::from_bits(bits);
        let text = json::to_string(&Value::Float(f)).unwrap();
        let back = json::from_slice(text.as_bytes()).unwrap();
        prop_assert!(back.is_identical(&json_view(&Value::Float(f))), "{text}");
        if f.is_finite() {
            // Python's repr: a '.' or an exponent, never both absent; exponents signed, 2+ digits.
            prop_assert!(text.contains('.') || text.contains('e'), "{text}");
            if let Some((_, exp)) = text.split_once('e') {
                prop_assert!(exp.starts_with('+') || exp.starts_with('-'), "{text}");
                prop_assert!(exp.len() >= 3, "{text}");
            }
        }
    }

    #[test]
    fn serde_value_bridge_round_trips(value in value_strategy()) {
        let through_serde = to_value(&value).unwrap();
        prop_assert!(through_serde.is_identical(&value));
        let back: Value = from_value(value.clone()).unwrap();
        prop_assert!(back.is_identical(&value));
    }

    #[test]
    fn random_bytes_never_panic_any_loads(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for serializer in serializers() {
            let _ = serializer.loads_stored_bytes(&bytes);
        }
        let _ = json::from_str(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_valid_data_never_panics(
        value in value_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        for serializer in serializers() {
            let mut bytes = serializer.dumps(&value).unwrap();
            for (at, byte, kind) in &edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = *byte,
                    1 => bytes.insert(i, *byte),
                    _ => { bytes.remove(i); }
                }
            }
            let _ = serializer.loads_stored_bytes(&bytes);
            if !bytes.is_empty() {
                let _ = serializer.loads_stored_bytes(&bytes[..cut.index(bytes.len())]);
            }
        }
    }
}

/// Opcode-shaped noise: random sequences drawn from the pickle opcodes (with small arguments),
/// which reach much deeper into the reader than uniform random bytes.
fn pickle_noise() -> impl Strategy<Value = Vec<u8>> {
    let op = prop_oneof![
        Just(vec![b'(']),
        Just(vec![b'0']),
        Just(vec![b'1']),
        Just(vec![b'2']),
        Just(vec![b'N']),
        Just(vec![0x88]),
        Just(vec![b']']),
        Just(vec![b'}']),
        Just(vec![b')']),
        Just(vec![b'a']),
        Just(vec![b'e']),
        Just(vec![b's']),
        Just(vec![b'u']),
        Just(vec![b'l']),
        Just(vec![b'd']),
        Just(vec![b't']),
        Just(vec![0x85]),
        Just(vec![0x86]),
        Just(vec![0x87]),
        Just(vec![0x94]),
        any::<u8>().prop_map(|i| vec![b'K', i]),
        (0u8..4).prop_map(|i| vec![b'q', i]),
        (0u8..4).prop_map(|i| vec![b'h', i]),
        "[a-c]{0,3}".prop_map(|s| {
            let mut v = vec![0x8c, u8::try_from(s.len()).unwrap()];
            v.extend_from_slice(s.as_bytes());
            v
        }),
    ];
    proptest::collection::vec(op, 0..60).prop_map(|ops| {
        let mut bytes = vec![0x80, 4];
        bytes.extend(ops.into_iter().flatten());
        bytes.push(b'.');
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn opcode_noise_never_panics_the_pickle_reader(bytes in pickle_noise()) {
        if let Ok(value) = pickle::from_slice(&bytes) {
            // Whatever loads must be writable and stable.
            let again = pickle::to_vec(&value, 4).unwrap();
            prop_assert!(pickle::from_slice(&again).unwrap().is_identical(&value));
        }
    }

    #[test]
    fn msgpack_noise_never_panics(bytes in proptest::collection::vec(
        prop_oneof![any::<u8>(), Just(0x91u8), Just(0x81), Just(0xa1), Just(0xc7), Just(0x01)], 0..64)) {
        if let Ok(value) = msgpack::from_slice(&bytes) {
            prop_assert!(msgpack::from_slice(&msgpack::to_vec(&value).unwrap()).unwrap().is_identical(&value));
        }
    }

    #[test]
    fn json_noise_never_panics(text in r#"[\[\]{}",:0-9eE.+\-a-z\\ é😀]{0,40}"#) {
        let _ = json::from_slice(text.as_bytes());
        let _ = json::from_str(&text);
    }
}

/// Python re-encodes our JSON for random values to the very same bytes: `json.dumps` of
/// `json.loads(ours)` is `ours`. Skipped (with a message) when `python3` is not on PATH.
#[test]
fn python_json_reencodes_our_output_identically() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    if !Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("skipped: python3 not found");
        return;
    }
    let mut runner = TestRunner::deterministic();
    let strategy = value_strategy();
    let lines: Vec<String> = (0..400)
        .map(|_| {
            let value = strategy.new_tree(&mut runner).unwrap().current();
            let mut dict = Dict::new();
            dict.insert("v", value);
            json::to_string(&Value::Dict(dict)).unwrap()
        })
        .collect();
    let script = "import json, sys\n\
                  for line in sys.stdin:\n\
                  \x20   line = line.rstrip('\\n')\n\
                  \x20   again = json.dumps(json.loads(line.encode('latin-1').decode('latin-1')), separators=(',', ':'))\n\
                  \x20   print('same' if again == line else 'DIFF ' + again)\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success());
    let verdicts = String::from_utf8(output.stdout).unwrap();
    assert_eq!(verdicts.lines().count(), lines.len());
    for (ours, verdict) in lines.iter().zip(verdicts.lines()) {
        assert_eq!(verdict, "same", "ours: {ours:.200}");
    }
}

/// Python's `repr` agrees with our float text on 30 000 floats: random bit patterns, plus values
/// with short exact decimal expansions (large integers and binary fractions), where a shortest
/// digit string can be a tie that must round to even. Skipped without `python3`.
#[test]
fn python_float_repr_agrees_on_random_floats() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    if !Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("skipped: python3 not found");
        return;
    }
    // splitmix64: a fixed, dependency-free sequence.
    let mut state = 0x05ee_d0ff_10a7_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut floats = Vec::new();
    while floats.len() < 30_000 {
        let r = next();
        let f = match floats.len() % 3 {
            0 => f64::from_bits(r),
            // An integer of up to 53 bits over 2^0..2^15: few fractional binary digits.
            1 => (r >> 11) as f64 / f64::from(1u32 << (next() % 16)),
            // An integer of up to 53 bits times 2^0..2^40.
            _ => (r >> 11) as f64 * 2f64.powi((next() % 41) as i32),
        };
        if f.is_finite() {
            floats.push(f);
        }
    }
    let script = "import struct, sys\n\
                  for line in sys.stdin:\n\
                  \x20   print(repr(struct.unpack('>d', bytes.fromhex(line.strip()))[0]))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = floats
        .iter()
        .map(|f| format!("{:016x}\n", f.to_bits()))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success());
    let reprs = String::from_utf8(output.stdout).unwrap();
    assert_eq!(reprs.lines().count(), floats.len());
    for (f, python) in floats.iter().zip(reprs.lines()) {
        assert_eq!(json::float_repr(*f), python, "bits {:016x}", f.to_bits());
    }
}
