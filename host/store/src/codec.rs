//! Binary encodings of the records stored in RocksDB. Decoders never panic: malformed input
//! yields [`StoreError::Backend`].

use bytes::Bytes;

use crate::{Event, EventKind, KeyValue, Revision, StoreError};

const KV_FORMAT: u8 = 1;
const EVENT_FORMAT: u8 = 1;
const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;

/// Revision metadata of a stored key (everything but key and value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt record: {what}"))
}

/// Big-endian encoding of a revision (log keys sort by revision).
pub(crate) fn rev_key(rev: Revision) -> [u8; 8] {
    rev.to_be_bytes()
}

pub(crate) fn decode_rev(b: &[u8]) -> Result<Revision, StoreError> {
    let arr: [u8; 8] = b.try_into().map_err(|_| corrupt("revision"))?;
    Ok(i64::from_be_bytes(arr))
}

/// `kv` CF value: format byte, create, mod, version (BE i64), value bytes.
pub(crate) fn encode_kv_value(meta: &Meta, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(25 + value.len());
    out.push(KV_FORMAT);
    put_meta(&mut out, meta);
    out.extend_from_slice(value);
    out
}

/// Decode a `kv` CF value into (meta, value slice).
pub(crate) fn decode_kv_value(b: &[u8]) -> Result<(Meta, &[u8]), StoreError> {
    let mut r = Reader(b);
    if r.u8()? != KV_FORMAT {
        return Err(corrupt("unknown kv format"));
    }
    let meta = r.meta()?;
    Ok((meta, r.0))
}

pub(crate) fn decode_kv(key: &[u8], b: &[u8]) -> Result<KeyValue, StoreError> {
    let (meta, value) = decode_kv_value(b)?;
    Ok(make_kv(key.to_vec(), meta, Bytes::copy_from_slice(value)))
}

pub(crate) fn make_kv(key: Vec<u8>, meta: Meta, value: Bytes) -> KeyValue {
    KeyValue {
        key,
        value,
        create_revision: meta.create_revision,
        mod_revision: meta.mod_revision,
        version: meta.version,
    }
}

fn put_meta(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(&m.create_revision.to_be_bytes());
    out.extend_from_slice(&m.mod_revision.to_be_bytes());
    out.extend_from_slice(&m.version.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), StoreError> {
    let len = u32::try_from(b.len()).map_err(|_| StoreError::Backend("record too large".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// `log` CF value: format, kind, key, kv meta, kv value, optional prev (meta, value).
pub(crate) fn encode_event(ev: &Event) -> Result<Vec<u8>, StoreError> {
    let prev_len = ev.prev_kv.as_ref().map_or(0, |p| p.value.len() + 28);
    let mut out = Vec::with_capacity(64 + ev.kv.key.len() + ev.kv.value.len() + prev_len);
    out.push(EVENT_FORMAT);
    out.push(match ev.kind {
        EventKind::Put => KIND_PUT,
        EventKind::Delete => KIND_DELETE,
    });
    put_bytes(&mut out, &ev.kv.key)?;
    put_meta(&mut out, &meta_of(&ev.kv));
    put_bytes(&mut out, &ev.kv.value)?;
    match &ev.prev_kv {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            put_meta(&mut out, &meta_of(p));
            put_bytes(&mut out, &p.value)?;
        }
    }
    Ok(out)
}

pub(crate) fn meta_of(kv: &KeyValue) -> Meta {
    Meta {
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
    }
}

/// Just the key of an encoded event (cheap prefix filtering).
pub(crate) fn event_key(b: &[u8]) -> Result<&[u8], StoreError> {
    let mut r = Reader(b);
    if r.u8()? != EVENT_FORMAT {
        return Err(corrupt("unknown event format"));
    }
    r.u8()?;
    r.bytes()
}

pub(crate) fn decode_event(b: &[u8]) -> Result<Event, StoreError> {
    let mut r = Reader(b);
    if r.u8()? != EVENT_FORMAT {
        return Err(corrupt("unknown event format"));
    }
    let kind = match r.u8()? {
        KIND_PUT => EventKind::Put,
        KIND_DELETE => EventKind::Delete,
        _ => return Err(corrupt("event kind")),
    };
    let key = r.bytes()?.to_vec();
    let meta = r.meta()?;
    let value = Bytes::copy_from_slice(r.bytes()?);
    let prev_kv = match r.u8()? {
        0 => None,
        1 => {
            let pm = r.meta()?;
            let pv = Bytes::copy_from_slice(r.bytes()?);
            Some(make_kv(key.clone(), pm, pv))
        }
        _ => return Err(corrupt("event prev flag")),
    };
    if !r.0.is_empty() {
        return Err(corrupt("trailing bytes in event"));
    }
    Ok(Event {
        kind,
        kv: make_kv(key, meta, value),
        prev_kv,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    fn i64(&mut self) -> Result<i64, StoreError> {
        decode_rev(self.take(8)?)
    }
    fn meta(&mut self) -> Result<Meta, StoreError> {
        Ok(Meta {
            create_revision: self.i64()?,
            mod_revision: self.i64()?,
            version: self.i64()?,
        })
    }
    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_roundtrip_and_corruption() {
        let kv = make_kv(
            b"k".to_vec(),
            Meta {
                create_revision: 1,
                mod_revision: 3,
                version: 2,
            },
            Bytes::from_static(b"v2"),
        );
        let prev = KeyValue {
            mod_revision: 1,
            version: 1,
            value: Bytes::from_static(b"v1"),
            ..kv.clone()
        };
        let ev = Event {
            kind: EventKind::Put,
            kv,
            prev_kv: Some(prev),
        };
        let enc = encode_event(&ev).unwrap();
        assert_eq!(decode_event(&enc).unwrap(), ev);
        assert_eq!(event_key(&enc).unwrap(), b"k");
        for n in 0..enc.len() {
            assert!(decode_event(&enc[..n]).is_err());
        }
        assert!(decode_kv(b"k", &[9, 9]).is_err());
        assert!(decode_kv(b"k", &[]).is_err());
    }
}
