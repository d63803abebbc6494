//! How objects are kept in the store: canonical JSON without `metadata.resourceVersion`, which
//! is the store's mod revision and is spliced in when an object is served. Serving a LIST is
//! then a concatenation of stored bytes, with no decoding.

use bytes::Bytes;
use hortator_store::KeyValue;
use serde_json::Value;

const METADATA: &[u8] = b"\"metadata\":{";

/// Encode an object for storage: compact JSON, `metadata.resourceVersion` removed.
pub fn encode(object: &Value) -> Bytes {
    let meta = object.get("metadata").and_then(Value::as_object);
    if meta.is_some_and(|m| m.contains_key("resourceVersion") || m.contains_key("selfLink")) {
        let mut object = object.clone();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            meta.remove("selfLink");
        }
        return Bytes::from(serde_json::to_vec(&object).unwrap_or_default());
    }
    Bytes::from(serde_json::to_vec(object).unwrap_or_default())
}

/// Append the stored bytes of an object to `out` with `resourceVersion` set to `rv`.
pub fn write_with_rv(out: &mut Vec<u8>, stored: &[u8], rv: i64) {
    // Stored objects are written by `encode` from typed objects: `apiVersion`, `kind` and
    // `metadata` come first, so the search ends within the first few dozen bytes.
    match find(stored, METADATA) {
        Some(at) => {
            let split = at + METADATA.len();
            out.extend_from_slice(&stored[..split]);
            out.extend_from_slice(b"\"resourceVersion\":\"");
            out.extend_from_slice(rv.to_string().as_bytes());
            out.push(b'"');
            if stored.get(split) != Some(&b'}') {
                out.push(b',');
            }
            out.extend_from_slice(&stored[split..]);
        }
        None => out.extend_from_slice(stored),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decode a stored object, with its resourceVersion set.
pub fn decode(kv: &KeyValue) -> Result<Value, serde_json::Error> {
    decode_at(&kv.value, kv.mod_revision)
}

/// Decode stored bytes with the resourceVersion `rv`.
pub fn decode_at(stored: &[u8], rv: i64) -> Result<Value, serde_json::Error> {
    let mut object: Value = serde_json::from_slice(stored)?;
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splice_matches_decode() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "resourceVersion": "3"}, "spec": {}});
        let stored = encode(&obj);
        assert!(!String::from_utf8_lossy(&stored).contains("resourceVersion"));
        let mut out = Vec::new();
        write_with_rv(&mut out, &stored, 42);
        let spliced: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(spliced["metadata"]["resourceVersion"], "42");
        assert_eq!(spliced, decode_at(&stored, 42).unwrap());
    }

    #[test]
    fn splice_into_empty_metadata() {
        let stored = encode(&json!({"kind": "X", "metadata": {}}));
        let mut out = Vec::new();
        write_with_rv(&mut out, &stored, 7);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "7");
    }
}
