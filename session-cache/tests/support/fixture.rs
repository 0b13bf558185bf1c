//! Reading the Django interop fixtures (`fixtures/django/*.json`): one case list, one session's
//! raw bytes, data and key, the same way for every cache backend's interop test.

use base64::Engine;
use serde_json::Value as Json;
use session_core::serializer::{JsonSerializer, Serializer};
use session_core::{Dict, SessionKey, Value};

/// The cases of `list` in `section`, only those of `kind` when given.
pub fn cases<'a>(section: &'a Json, list: &str, kind: Option<&str>) -> Vec<&'a Json> {
    section[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| kind.is_none_or(|k| c["kind"] == k))
        .collect()
}

/// The bytes the cache held (`value_b64`).
pub fn raw(case: &Json) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(case["value_b64"].as_str().unwrap())
        .unwrap()
}

/// The session data (`data_json`, JSON text written by Python).
pub fn data(case: &Json) -> Dict {
    match JsonSerializer
        .loads_text(case["data_json"].as_str().unwrap())
        .unwrap()
    {
        Value::Dict(d) => d,
        other => panic!("data_json is not a dict: {other:?}"),
    }
}

/// The session key.
pub fn key(case: &Json) -> SessionKey {
    SessionKey::new(case["session_key"].as_str().unwrap()).unwrap()
}
