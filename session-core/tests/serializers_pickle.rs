//! The safe pickle reader/writer, checked against pickles made by this machine's Python
//! (`tests/serializers_data/gen_pickle.py`) and, when `python3` is on PATH, against Python
//! loading what we write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "serializers_data/tagged.rs"]
mod tagged;

use std::io::Write as _;
use std::process::{Command, Stdio};

use session_core::serializer::{PickleSerializer, Serializer, SerializerError, pickle};
use session_core::value::{Dict, Int, MAX_DEPTH, Value};

const PICKLE_LOADS: &str = include_str!("serializers_data/pickle_loads.txt");
const PICKLE_REFUSED: &str = include_str!("serializers_data/pickle_refused.txt");

fn table() -> Vec<(u8, String, Vec<u8>)> {
    tagged::lines(PICKLE_LOADS)
        .map(|line| {
            let mut fields = line.split('\t');
            let protocol = fields.next().unwrap().parse().unwrap();
            let value = fields.next().unwrap().to_owned();
            let bytes = tagged::hex_decode(fields.next().unwrap());
            (protocol, value, bytes)
        })
        .collect()
}

#[test]
fn reads_python_pickles_of_every_protocol() {
    let rows = table();
    for (protocol, tagged_value, bytes) in &rows {
        let expected = tagged::parse(tagged_value);
        let value = pickle::from_slice(bytes).unwrap_or_else(|e| {
            panic!("protocol {protocol} pickle of {tagged_value:.60} failed: {e}")
        });
        assert!(
            value.is_identical(&expected),
            "protocol {protocol}: {tagged_value:.60} read as {value:.60?}"
        );
    }
    for protocol in 0..=5 {
        assert!(
            rows.iter().filter(|r| r.0 == protocol).count() >= 35,
            "protocol {protocol} under-covered"
        );
    }
}

#[test]
fn refuses_objects_bytes_sets_non_str_keys_and_recursion_without_running_anything() {
    let mut checked = 0;
    for line in tagged::lines(PICKLE_REFUSED) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (kind, protocol, what, hex) = (fields[0], fields[1], fields[2], fields[3]);
        assert_eq!(kind, "Unsupported");
        match pickle::from_slice(&tagged::hex_decode(hex)) {
            Err(SerializerError::Unsupported { reason, .. }) => {
                if what == "os.system" || what.contains("datetime") || what == "class instance" {
                    assert!(
                        reason.contains("GLOBAL")
                            || reason.contains("REDUCE")
                            || reason.contains("NEWOBJ"),
                        "{what}: {reason}"
                    );
                }
                if what.contains("key") {
                    assert!(reason.contains("keys must be str"), "{what}: {reason}");
                }
                if what.starts_with("recursive") {
                    assert!(reason.contains("contains itself"), "{what}: {reason}");
                }
            }
            other => panic!("protocol {protocol} {what}: expected Unsupported, got {other:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} rows");
}

#[test]
fn a_global_is_refused_by_name_before_anything_is_resolved() {
    // pickle.dumps(os.system, 0) and a hand-written REDUCE payload.
    let err = pickle::from_slice(b"cposix\nsystem\np0\n.").unwrap_err();
    assert!(err.to_string().contains("opcode GLOBAL at byte 0"), "{err}");
    let err = pickle::from_slice(b"\x80\x04\x8c\x02osX\x06\x00\x00\x00system\x93.").unwrap_err();
    assert!(err.to_string().contains("STACK_GLOBAL"), "{err}");
    let err = pickle::from_slice(b"\x80\x02]R.").unwrap_err();
    assert!(err.to_string().contains("REDUCE"), "{err}");
}

fn sample_values() -> Vec<Value> {
    let mut seen = Vec::new();
    for (protocol, tagged_value, _) in table() {
        if protocol == 5 {
            seen.push(tagged::parse(&tagged_value));
        }
    }
    seen
}

#[test]
fn written_pickles_read_back_identically_for_every_protocol() {
    for protocol in 2..=5 {
        let serializer = PickleSerializer::with_protocol(protocol).unwrap();
        for value in sample_values() {
            let bytes = serializer.dumps(&value).unwrap();
            assert_eq!(bytes[..2], [0x80, protocol]);
            let back = serializer.loads_stored_bytes(&bytes).unwrap();
            assert!(
                back.is_identical(&value),
                "protocol {protocol}: {value:.60?}"
            );
            if let Value::Dict(dict) = &value {
                assert_eq!(serializer.dumps_dict(dict).unwrap(), bytes);
            }
        }
    }
}

#[test]
fn scalars_are_written_with_pythons_own_opcodes() {
    // Python memoizes strings and containers (extra PUT opcodes) but not ints, floats, bools or
    // None, so for those our protocol 2 and 3 pickles are Python's bytes exactly.
    let mut checked = 0;
    for (protocol, tagged_value, python_bytes) in table() {
        let value = tagged::parse(&tagged_value);
        if matches!(
            value,
            Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null
        ) && (protocol == 2 || protocol == 3)
        {
            assert_eq!(
                pickle::to_vec(&value, protocol).unwrap(),
                python_bytes,
                "protocol {protocol}: {tagged_value}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} scalar rows");
}

#[test]
fn python_loads_what_we_write() {
    let python = match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => "python3",
        _ => {
            println!("skipped: python3 not found");
            return;
        }
    };
    let data_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/serializers_data");
    let script = "import pickle, sys\n\
                  sys.path.insert(0, sys.argv[1])\n\
                  from common import tag\n\
                  for line in sys.stdin:\n\
                  \x20   print(tag(pickle.loads(bytes.fromhex(line.strip()))))\n";
    let mut inputs = Vec::new();
    for protocol in 2..=5 {
        for value in sample_values() {
            inputs.push((value.clone(), pickle::to_vec(&value, protocol).unwrap()));
        }
    }
    let mut child = Command::new(python)
        .args(["-c", script, data_dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let hex_lines: String = inputs
        .iter()
        .map(|(_, bytes)| tagged::hex_encode(bytes) + "\n")
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(hex_lines.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "python failed");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let results: Vec<&str> = stdout.lines().collect();
    assert_eq!(results.len(), inputs.len());
    for ((value, _), python_view) in inputs.iter().zip(results) {
        assert!(
            tagged::parse(python_view).is_identical(value),
            "python read {python_view:.80} for {value:.80?}"
        );
    }
}

#[test]
fn shared_references_are_copied_but_cannot_expand_without_bound() {
    // Level 0 is an empty list; level k is a list holding level k-1 ten times (via the memo), so
    // 40 levels would describe 10^40 nodes in ~2 KB.
    let mut bomb = vec![0x80, 4, b']', 0x94];
    for level in 0u32..40 {
        bomb.push(b'(');
        for _ in 0..10 {
            bomb.push(b'j');
            bomb.extend_from_slice(&level.to_le_bytes());
        }
        bomb.extend_from_slice(&[b'l', 0x94]);
    }
    bomb.push(b'.');
    assert!(bomb.len() < 2200);
    assert!(matches!(
        pickle::from_slice(&bomb),
        Err(SerializerError::TooLarge { .. })
    ));

    // A 100 KB string referenced 10 000 times would be 1 GB of copies.
    let mut strings = vec![0x80, 4, b'X'];
    strings.extend_from_slice(&100_000u32.to_le_bytes());
    strings.extend(std::iter::repeat_n(b'a', 100_000));
    strings.extend_from_slice(&[0x94, b']', b'(']);
    for _ in 0..10_000 {
        strings.extend_from_slice(&[b'h', 0]);
    }
    strings.extend_from_slice(b"e.");
    assert!(matches!(
        pickle::from_slice(&strings),
        Err(SerializerError::TooLarge { .. })
    ));

    // Modest sharing (what Python writes for repeated objects) is fine.
    let mut fine = vec![0x80, 4, 0x8c, 3, b'k', b'e', b'y', 0x94, b']', b'('];
    for _ in 0..50 {
        fine.extend_from_slice(&[b'h', 0]);
    }
    fine.extend_from_slice(b"e.");
    let value = pickle::from_slice(&fine).unwrap();
    assert_eq!(value, Value::List(vec![Value::from("key"); 50]));
}

#[test]
fn depth_is_limited_on_read_and_write() {
    let nested = |depth: usize| {
        let mut bytes = vec![0x80, 4];
        bytes.extend(std::iter::repeat_n(b']', depth));
        bytes.extend(std::iter::repeat_n(b'a', depth - 1));
        bytes.push(b'.');
        bytes
    };
    assert_eq!(
        pickle::from_slice(&nested(MAX_DEPTH)).unwrap().depth(),
        MAX_DEPTH
    );
    assert_eq!(
        pickle::from_slice(&nested(MAX_DEPTH + 1)),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
    assert_eq!(
        pickle::from_slice(&nested(100_000)),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
    assert_eq!(
        pickle::to_vec(&tagged::nested_lists(MAX_DEPTH + 1), 4),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
    let mut dict = Dict::new();
    dict.insert("x", tagged::nested_lists(MAX_DEPTH));
    assert_eq!(
        PickleSerializer::default().dumps_dict(&dict),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
}

fn malformed(bytes: &[u8]) -> String {
    match pickle::from_slice(bytes) {
        Err(SerializerError::Malformed { reason, .. }) => reason,
        other => panic!("expected Malformed for {bytes:02x?}, got {other:?}"),
    }
}

#[test]
fn length_fields_are_checked_before_allocating() {
    assert!(malformed(b"\x80\x04X\xff\xff\xff\xff").contains("longer than"));
    assert!(malformed(b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff").contains("longer than"));
    assert!(malformed(b"\x80\x04\x8b\xff\xff\xff\x7f").contains("longer than"));
    assert!(malformed(b"\x80\x04\x8b\xff\xff\xff\xff").contains("negative"));
    assert!(malformed(b"\x80\x02T\x00\x00\x00\x80").contains("negative"));
    assert!(malformed(b"\x80\x04\x95\xff\xff\x00\x00\x00\x00\x00\x00N.").contains("longer than"));
}

#[test]
fn malformed_pickles_get_pythons_complaints() {
    assert!(malformed(b"").contains("truncated"));
    assert!(malformed(b"\x80\x06N.").contains("unsupported pickle protocol: 6"));
    assert!(malformed(b"\xff").contains("invalid load key"));
    assert!(malformed(b".").contains("underflow"));
    assert!(malformed(b"(.").contains("underflow"));
    assert!(malformed(b"Na.").contains("underflow"));
    assert!(malformed(b"NNa.").contains("not a list"));
    assert!(malformed(b")K\x01a.").contains("not a list"));
    assert!(malformed(b"]NNs.").contains("not a dict"));
    assert!(malformed(b"}(Nu.").contains("odd number"));
    assert!(malformed(b"h\x00.").contains("memo"));
    assert!(malformed(b"e.").contains("MARK"));
    assert!(malformed(b"I12").contains("truncated"));
    assert!(malformed(b"I1x\n.").contains("int"));
    assert!(malformed(b"I010\n.").contains("int"));
    assert!(malformed(b"Fabc\n.").contains("float"));
    assert!(malformed(b"F1e500\n.").contains("too large"));
    assert!(malformed(b"Sabc\n.").contains("quoted"));
    assert!(malformed(b"S'a\\'\n.").contains("Trailing"));
    assert!(malformed(b"S'\\x4'\n.").contains("\\x"));
    assert!(malformed(b"V\\u12\n.").contains("truncated"));
    assert!(malformed(b"V\\ud800\n.").contains("surrogate"));
    assert!(malformed(b"V\\U00110000\n.").contains("out of range"));
    assert!(malformed(b"\x8c\x03\xed\xa0\x80.").contains("UTF-8"));
}

#[test]
fn protocol_0_text_forms_decode_like_python() {
    let cases: [(&[u8], Value); 10] = [
        (b"I01\n.", Value::Bool(true)),
        (b"I00\n.", Value::Bool(false)),
        (b"I-7\n.", Value::from(-7i64)),
        (
            b"L123456789012345678901234567890L\n.",
            Value::Int("123456789012345678901234567890".parse::<Int>().unwrap()),
        ),
        (b"Finf\n.", Value::Float(f64::INFINITY)),
        (b"F-0.0\n.", Value::Float(-0.0)),
        // Python 2 str: escapes, then latin-1.
        (
            b"S'caf\\xe9 \\'q\\' \\101 \\q'\n.",
            Value::from("café 'q' A \\q"),
        ),
        (b"U\x04caf\xe9.", Value::from("café")),
        // raw-unicode-escape: \u escapes only after an odd number of backslashes.
        (
            b"V\\u20ac \\\\u0041 \\\\\\u0041 \xe9\n.",
            Value::from("€ \\\\u0041 \\\\A é"),
        ),
        (b"(dp0\nVa\np1\nI1\nsVb\np2\ng1\ns.", {
            let mut d = Dict::new();
            d.insert("a", Value::from(1i64));
            d.insert("b", Value::from("a"));
            Value::Dict(d)
        }),
    ];
    for (bytes, expected) in cases {
        let value = pickle::from_slice(bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(bytes)));
        assert!(
            value.is_identical(&expected),
            "{}: {value:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn stack_and_mark_opcodes_behave_like_pythons() {
    // POP drops the top item, or an empty mark; POP_MARK drops everything since the mark; DUP
    // shares the top item; bytes after STOP are ignored (as pickle.loads does).
    assert_eq!(pickle::from_slice(b"NK\x010.").unwrap(), Value::Null);
    assert_eq!(pickle::from_slice(b"K\x01(0.").unwrap(), Value::from(1i64));
    assert_eq!(
        pickle::from_slice(b"K\x01(NN1.").unwrap(),
        Value::from(1i64)
    );
    assert_eq!(
        pickle::from_slice(b"]2a.").unwrap_err(),
        SerializerError::Unsupported {
            format: "pickle",
            reason: "a list or dict that contains itself cannot be a session value".into()
        }
    );
    assert_eq!(
        pickle::from_slice(b"K\x012\x86.trailing").unwrap(),
        Value::List(vec![Value::from(1i64), Value::from(1i64)])
    );
}

#[test]
fn writer_is_compact_and_batches_like_python() {
    assert_eq!(PickleSerializer::default().protocol(), 4);
    assert!(PickleSerializer::with_protocol(1).is_err());
    assert!(PickleSerializer::with_protocol(6).is_err());
    let mut dict = Dict::new();
    dict.insert(
        "a",
        Value::from(vec![Value::from(1i64), Value::from(300i64)]),
    );
    dict.insert("b", Value::from(true));
    assert_eq!(
        PickleSerializer::default().dumps_dict(&dict).unwrap(),
        b"\x80\x04}(\x8c\x01a](K\x01M\x2c\x01e\x8c\x01b\x88u."
    );
    assert_eq!(
        pickle::to_vec(&Value::from("a"), 2).unwrap(),
        b"\x80\x02X\x01\x00\x00\x00a."
    );
    let list = Value::List(vec![Value::Null; 2001]);
    let bytes = pickle::to_vec(&list, 4).unwrap();
    assert_eq!(bytes.iter().filter(|&&b| b == b'(').count(), 2);
    assert_eq!(&bytes[bytes.len() - 3..], b"Na.");
}
