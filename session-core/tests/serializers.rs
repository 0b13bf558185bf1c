//! The value model's serde bridge (`to_value` / `from_value`) and the JSON serializer, checked
//! against tables generated with this machine's Python (`tests/serializers_data/gen_json.py`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "serializers_data/tagged.rs"]
mod tagged;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use session_core::serializer::{JsonSerializer, Serializer, SerializerError, json};
use session_core::value::{
    Dict, Int, MAX_DEPTH, Value, ValueError, from_value, from_value_ref, to_value,
};

// ---------------------------------------------------------------------------------------------
// to_value / from_value

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Item {
    sku: String,
    qty: u32,
    price: f64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Cart {
    items: Vec<Item>,
    total: u64,
    note: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Event {
    Reset,
    Renamed(String),
    Moved(i32, i32),
    Resized { width: u16, height: u16 },
}

fn cart() -> Cart {
    Cart {
        items: vec![
            Item {
                sku: "A1".into(),
                qty: 2,
                price: 9.99,
            },
            Item {
                sku: "B2".into(),
                qty: 1,
                price: 0.5,
            },
        ],
        total: u64::MAX,
        note: None,
    }
}

#[test]
fn struct_round_trips_through_value_in_field_order() {
    let value = to_value(&cart()).unwrap();
    let dict = value.as_dict().unwrap();
    assert_eq!(dict.keys().collect::<Vec<_>>(), ["items", "total", "note"]);
    assert_eq!(dict["total"], Value::from(u64::MAX));
    assert_eq!(dict["note"], Value::Null);
    assert_eq!(from_value::<Cart>(value.clone()).unwrap(), cart());
    assert_eq!(from_value_ref::<Cart>(&value).unwrap(), cart());
}

#[test]
fn struct_survives_json_bytes_like_a_django_session_value() {
    let bytes = json::to_vec(&to_value(&cart()).unwrap()).unwrap();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        r#"{"items":[{"sku":"A1","qty":2,"price":9.99},{"sku":"B2","qty":1,"price":0.5}],"total":18446744073709551615,"note":null}"#
    );
    assert_eq!(
        from_value::<Cart>(json::from_slice(&bytes).unwrap()).unwrap(),
        cart()
    );
}

#[test]
fn enums_use_the_externally_tagged_form() {
    let cases = [
        (Event::Reset, r#""Reset""#),
        (Event::Renamed("x".into()), r#"{"Renamed":"x"}"#),
        (Event::Moved(-1, 2), r#"{"Moved":[-1,2]}"#),
        (
            Event::Resized {
                width: 3,
                height: 4,
            },
            r#"{"Resized":{"width":3,"height":4}}"#,
        ),
    ];
    for (event, text) in cases {
        let value = to_value(&event).unwrap();
        assert_eq!(json::to_string(&value).unwrap(), text);
        assert_eq!(
            from_value::<Event>(json::from_str(text).unwrap()).unwrap(),
            event
        );
    }
}

#[test]
fn integers_of_every_width_convert_without_loss() {
    let wide: (i128, i128, u128, u64, i64, i8) =
        (i128::MIN, i128::MAX, u128::MAX, u64::MAX, i64::MIN, -5);
    let value = to_value(&wide).unwrap();
    assert_eq!(
        json::to_string(&value).unwrap(),
        "[-170141183460469231731687303715884105728,170141183460469231731687303715884105727,\
         340282366920938463463374607431768211455,18446744073709551615,-9223372036854775808,-5]"
    );
    assert_eq!(
        from_value::<(i128, i128, u128, u64, i64, i8)>(value).unwrap(),
        wide
    );
}

#[test]
fn out_of_range_integers_are_errors_not_wrapped() {
    let err = from_value::<u8>(Value::from(300i64)).unwrap_err();
    assert_eq!(err.to_string(), "integer 300 is out of range for u8");
    assert!(matches!(err, ValueError::OutOfRange { target: "u8", .. }));
    assert!(from_value::<i64>(Value::from(u64::MAX)).is_err());
    assert!(from_value::<u64>(Value::from(-1i64)).is_err());
    assert_eq!(from_value::<i16>(Value::from(-32768i64)).unwrap(), -32768);
}

#[test]
fn type_errors_name_the_place_and_both_types() {
    let mut value = to_value(&cart()).unwrap();
    if let Value::Dict(d) = &mut value
        && let Value::List(items) = &mut d["items"]
        && let Value::Dict(item) = &mut items[1]
    {
        item.insert("qty", Value::from("two"));
    }
    let err = from_value::<Cart>(value).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"at items[1].qty: invalid type: expected u32, found str "two""#
    );
    assert_eq!(err.path(), "items[1].qty");

    let err = from_value::<Cart>(Value::from(vec![Value::Null])).unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");
    let mut missing = Dict::new();
    missing.insert("items", Value::List(vec![]));
    let err = from_value::<Cart>(Value::Dict(missing)).unwrap_err();
    assert_eq!(err.to_string(), "missing field `total`");
}

#[test]
fn options_floats_and_unit_follow_serde_json() {
    assert_eq!(from_value::<Option<u8>>(Value::Null).unwrap(), None);
    assert_eq!(
        from_value::<Option<u8>>(Value::from(7i64)).unwrap(),
        Some(7)
    );
    assert_eq!(from_value::<f64>(Value::from(3i64)).unwrap(), 3.0);
    assert_eq!(from_value::<f32>(Value::from(0.5)).unwrap(), 0.5);
    from_value::<()>(Value::Null).unwrap();
    assert_eq!(to_value(&()).unwrap(), Value::Null);
    assert_eq!(to_value(&Some("x")).unwrap(), Value::from("x"));
    assert_eq!(from_value::<char>(Value::from("é")).unwrap(), 'é');
    assert!(from_value::<char>(Value::from("ab")).is_err());
}

#[test]
fn nested_maps_with_integer_and_bool_keys_become_string_keys_and_back() {
    let mut inner = BTreeMap::new();
    inner.insert(2u32, vec![1.5f64]);
    inner.insert(10u32, vec![]);
    let mut outer: HashMap<String, BTreeMap<u32, Vec<f64>>> = HashMap::new();
    outer.insert("scores".into(), inner);
    let value = to_value(&outer).unwrap();
    assert_eq!(
        json::to_string(&value).unwrap(),
        r#"{"scores":{"2":[1.5],"10":[]}}"#
    );
    assert_eq!(
        from_value::<HashMap<String, BTreeMap<u32, Vec<f64>>>>(value).unwrap(),
        outer
    );

    let mut flags = BTreeMap::new();
    flags.insert(true, 1);
    let value = to_value(&flags).unwrap();
    assert_eq!(json::to_string(&value).unwrap(), r#"{"true":1}"#);
    assert_eq!(from_value::<BTreeMap<bool, i32>>(value).unwrap(), flags);
}

#[test]
fn non_string_like_keys_are_refused() {
    let mut map = HashMap::new();
    map.insert((1u8, 2u8), "pair");
    let err = to_value(&map).unwrap_err();
    assert!(matches!(err, ValueError::KeyMustBeString { .. }), "{err}");
    assert!(err.to_string().contains("dict keys must be strings"));
}

#[test]
fn bytes_become_lists_of_ints() {
    #[derive(Serialize)]
    struct Blob<'a> {
        #[serde(with = "serde_bytes_like")]
        data: &'a [u8],
    }
    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(data)
        }
    }
    let value = to_value(&Blob { data: &[0, 255] }).unwrap();
    assert_eq!(json::to_string(&value).unwrap(), r#"{"data":[0,255]}"#);
    assert_eq!(
        from_value::<Vec<u8>>(Value::from(vec![Value::from(1i64)])).unwrap(),
        [1]
    );
}

#[test]
fn to_value_refuses_nesting_past_the_limit() {
    #[derive(Serialize)]
    struct Node {
        next: Option<Box<Node>>,
    }
    let build = |depth: usize| {
        let mut node = Node { next: None };
        for _ in 1..depth {
            node = Node {
                next: Some(Box::new(node)),
            };
        }
        node
    };
    assert_eq!(to_value(&build(MAX_DEPTH)).unwrap().depth(), MAX_DEPTH);
    let err = to_value(&build(MAX_DEPTH + 1)).unwrap_err();
    assert!(matches!(err, ValueError::TooDeep { .. }), "{err}");
}

#[test]
fn value_passes_through_other_serde_formats() {
    let value = json::from_slice(
        br#"{"a":[1,-2.5,true,null,"x\u00e9",{}],"big":18446744073709551615,"min":-9223372036854775808}"#,
    )
    .unwrap();
    let text = serde_json::to_string(&value).unwrap();
    let back: Value = serde_json::from_str(&text).unwrap();
    assert!(back.is_identical(&value));
    let back: Value = from_value(value.clone()).unwrap();
    assert!(back.is_identical(&value));
}

#[test]
fn integers_wider_than_128_bits_stay_exact_inside_values_and_fail_elsewhere() {
    let huge: Int = format!("1{}", "0".repeat(40)).parse().unwrap();
    let value = Value::from(vec![Value::Int(huge.clone())]);
    assert_eq!(to_value(&value).unwrap(), value);
    assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
    assert_eq!(from_value::<Int>(Value::Int(huge.clone())).unwrap(), huge);
    let err = serde_json::to_string(&value).unwrap_err();
    assert!(
        err.to_string().contains("too large for this format"),
        "{err}"
    );
    let err = from_value::<u128>(Value::Int(huge)).unwrap_err();
    assert!(matches!(err, ValueError::OutOfRange { target: "u128", .. }));
}

#[test]
fn deserializing_a_value_refuses_nesting_past_the_limit() {
    let ok = tagged::nested_lists(MAX_DEPTH);
    assert_eq!(from_value_ref::<Value>(&ok).unwrap().depth(), MAX_DEPTH);
    let deep = tagged::nested_lists(MAX_DEPTH + 1);
    let err = from_value_ref::<Value>(&deep).unwrap_err();
    assert!(err.to_string().contains("nests deeper"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// JSON: bytes exactly as Python writes them

const JSON_DUMPS: &str = include_str!("serializers_data/json_dumps.txt");
const JSON_LOADS: &str = include_str!("serializers_data/json_loads.txt");
const FLOAT_REPR: &str = include_str!("serializers_data/float_repr.txt");

#[test]
fn json_dumps_matches_python_byte_for_byte() {
    let mut checked = 0;
    for line in tagged::lines(JSON_DUMPS) {
        let (tagged_value, expected) = line.split_once('\t').unwrap();
        let value = tagged::parse(tagged_value);
        let bytes = json::to_vec(&value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            expected,
            "value {tagged_value:.80}"
        );
        if let Value::Dict(dict) = &value {
            assert_eq!(json::dict_to_vec(dict).unwrap(), bytes);
            assert_eq!(JsonSerializer.dumps_dict(dict).unwrap(), bytes);
        }
        let back = json::from_slice(expected.as_bytes()).unwrap();
        assert!(back.is_identical(&value), "loads({expected:.80})");
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} table rows");
}

#[test]
fn json_loads_accepts_and_rejects_what_python_does() {
    let mut checked = 0;
    for line in tagged::lines(JSON_LOADS) {
        let (input_hex, expected) = line.split_once('\t').unwrap();
        let input = tagged::hex_decode(input_hex);
        let result = json::from_slice(&input);
        match expected {
            "ERROR" => assert!(
                matches!(result, Err(SerializerError::Malformed { .. })),
                "{:?} should be refused, got {result:?}",
                String::from_utf8_lossy(&input)
            ),
            "SURROGATE" => match result {
                Err(SerializerError::Malformed { reason, .. }) => {
                    assert!(reason.contains("surrogate"), "{reason}")
                }
                other => panic!("lone surrogate accepted: {other:?}"),
            },
            tagged_value => {
                let value = result.unwrap_or_else(|e| {
                    panic!("{:?} should parse: {e}", String::from_utf8_lossy(&input))
                });
                assert!(
                    value.is_identical(&tagged::parse(tagged_value)),
                    "{:?} parsed to {value:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 90, "only {checked} table rows");
}

#[test]
fn float_repr_matches_python_for_the_table() {
    let mut checked = 0;
    for line in tagged::lines(FLOAT_REPR) {
        let (bits, repr) = line.split_once(' ').unwrap();
        let f = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        assert_eq!(json::float_repr(f), repr, "bits {bits}");
        assert_eq!(json::to_string(&Value::Float(f)).unwrap(), repr);
        let back = json::from_slice(repr.as_bytes()).unwrap();
        assert!(
            back.is_identical(&Value::Float(f)),
            "{repr} read back as {back:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 3000);
}

#[test]
fn stored_bytes_are_latin1_but_text_input_is_unicode() {
    // Django decodes stored bytes as latin-1; a person typing JSON means Unicode.
    let utf8 = "{\"name\":\"Zoë 😀\"}";
    let from_text = json::from_str(utf8).unwrap();
    assert_eq!(from_text.as_dict().unwrap()["name"], Value::from("Zoë 😀"));
    let from_bytes = json::from_slice(utf8.as_bytes()).unwrap();
    assert_eq!(
        from_bytes.as_dict().unwrap()["name"],
        Value::from("ZoÃ« ð\u{9f}\u{98}\u{80}")
    );
    assert!(json::from_str("\u{feff}{}").is_err());
    assert!(json::from_str("\"\u{2028}\"").is_ok());
}

#[test]
fn json_parse_depth_is_limited_without_overflowing_the_stack() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert_eq!(json::from_slice(ok.as_bytes()).unwrap().depth(), MAX_DEPTH);
    let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(
        json::from_slice(too_deep.as_bytes()),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
    let hostile = "[".repeat(100_000);
    assert_eq!(
        json::from_slice(hostile.as_bytes()),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
    let hostile_objects = "{\"a\":".repeat(100_000);
    assert_eq!(
        json::from_str(&hostile_objects),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
}

#[test]
fn json_write_depth_is_limited() {
    assert!(json::to_vec(&tagged::nested_lists(MAX_DEPTH)).is_ok());
    assert_eq!(
        json::to_vec(&tagged::nested_lists(MAX_DEPTH + 1)),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
    let mut dict = Dict::new();
    dict.insert("deep", tagged::nested_lists(MAX_DEPTH));
    assert_eq!(
        json::dict_to_vec(&dict),
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
}

#[test]
fn integers_past_pythons_4300_digit_limit_are_refused_both_ways() {
    let at_limit: Int = "9".repeat(4300).parse().unwrap();
    assert_eq!(json::to_vec(&Value::Int(at_limit)).unwrap().len(), 4300);
    let over: Int = format!("1{}", "0".repeat(4300)).parse().unwrap();
    let err = json::to_vec(&Value::Int(over)).unwrap_err();
    assert!(matches!(err, SerializerError::Unsupported { .. }), "{err}");
    assert!(json::from_slice("1".repeat(4301).as_bytes()).is_err());
}

#[test]
fn malformed_errors_say_where_and_what() {
    let err = json::from_slice(br#"{"a":1,}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed json data at byte 7: Expecting property name enclosed in double quotes"
    );
    let err = json::from_slice(b"[1] x").unwrap_err();
    assert_eq!(err.to_string(), "malformed json data at byte 4: Extra data");
}

#[test]
fn json_serializer_is_named_json() {
    assert_eq!(JsonSerializer.name(), "json");
    let value = JsonSerializer
        .loads_stored_bytes(br#"{"k":[1,2.0]}"#)
        .unwrap();
    assert_eq!(JsonSerializer.dumps(&value).unwrap(), br#"{"k":[1,2.0]}"#);
}

#[test]
fn stored_bytes_are_latin_1_as_django_reads_them_and_text_is_unicode() {
    // "é" in UTF-8 is the two bytes C3 A9. Django's JSONSerializer decodes stored bytes as
    // Latin-1, so it reads them as two characters; text is read as the one character it is.
    let utf8 = "{\"name\":\"Zoé\"}";
    let stored = JsonSerializer.loads_stored_bytes(utf8.as_bytes()).unwrap();
    let text = JsonSerializer.loads_text(utf8).unwrap();
    let name = |value: &Value| match value {
        Value::Dict(dict) => dict.get("name").cloned(),
        _ => None,
    };
    assert_eq!(name(&stored), Some(Value::from("ZoÃ©")));
    assert_eq!(name(&text), Some(Value::from("Zoé")));
}

#[test]
fn binary_serializers_refuse_text_and_say_which_function_to_use() {
    use session_core::serializer::{MsgPackSerializer, PickleSerializer};
    for serializer in [
        &MsgPackSerializer as &dyn Serializer,
        &PickleSerializer::default(),
    ] {
        let err = serializer.loads_text("{}").unwrap_err();
        assert!(
            matches!(err, SerializerError::Unsupported { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("loads_stored_bytes"), "{err}");
    }
}

#[test]
fn dumps_dict_into_appends_exactly_what_dumps_dict_returns() {
    use session_core::serializer::SerializerName;
    let mut dict = Dict::new();
    dict.insert("name", Value::from("Zoë \"quoted\""));
    dict.insert("n", Value::from(12_345_678_901_234_567_890u64));
    dict.insert("ratio", Value::from(0.1));
    dict.insert("items", Value::from(vec![Value::Null, Value::from(true)]));
    for name in [
        SerializerName::Json,
        SerializerName::MsgPack,
        SerializerName::Pickle,
    ] {
        let serializer = name.serializer();
        let mut out = b"kept".to_vec();
        serializer.dumps_dict_into(&dict, &mut out).unwrap();
        assert_eq!(out[..4], *b"kept", "{name}");
        assert_eq!(out[4..], serializer.dumps_dict(&dict).unwrap(), "{name}");
    }
}
