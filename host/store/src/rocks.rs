//! RocksDB backend.
//!
//! Column families:
//! - `kv`:   key → [`codec::encode_kv_value`] (current state only)
//! - `log`:  big-endian revision → [`codec::encode_event`] (history, incl. prev value)
//! - `meta`: `rev` (current revision) and `compacted` (compaction point)
//!
//! A single writer thread group-commits: it drains all pending requests, assigns consecutive
//! revisions, checks CAS guards against the current state plus an overlay of earlier ops in
//! the same batch, writes one `WriteBatch` (fsync'd WAL when `sync`), publishes the events to
//! watchers and only then acknowledges the requests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options,
    ReadOptions, WriteBatch, WriteOptions,
};
use tokio::sync::{oneshot, watch};

use crate::codec::{self, Meta};
use crate::watch::Hub;
use crate::{
    BoxFuture, Event, EventKind, KeyValue, RangeRequest, RangeResponse, Revision, Store,
    StoreError, WatchStream,
};

const CF_KV: &str = "kv";
const CF_LOG: &str = "log";
const CF_META: &str = "meta";
const META_REV: &[u8] = b"rev";
const META_COMPACTED: &[u8] = b"compacted";

/// Options for [`RocksStore::open`].
#[derive(Clone, Debug)]
pub struct RocksOptions {
    /// fsync the WAL before acknowledging a write (default true).
    pub sync: bool,
    /// Max number of recent events kept in memory for fast watch (default 10_000).
    pub watch_cache_events: usize,
    /// RocksDB block cache size in bytes (default 128 MiB).
    pub block_cache_bytes: usize,
    /// Max number of requests group-committed in one batch (default 4096).
    pub max_batch: usize,
}

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            sync: true,
            watch_cache_events: 10_000,
            block_cache_bytes: 128 << 20,
            max_batch: 4096,
        }
    }
}

fn backend(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Smallest key greater than every key with this prefix (`None` = unbounded).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// State shared by the store handle, the writer thread and watch streams.
pub(crate) struct Shared {
    db: DB,
    pub(crate) hub: Hub,
    rev: AtomicI64,
    compacted: AtomicI64,
    closed: AtomicBool,
}

impl Shared {
    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Backend(format!("missing column family {name}")))
    }

    fn current(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let cf = self.cf(CF_KV)?;
        match self.db.get_pinned_cf(cf, key).map_err(backend)? {
            None => Ok(None),
            Some(v) => codec::decode_kv(key, &v).map(Some),
        }
    }

    /// Events with revisions in `[from, to)` whose key starts with `prefix`. Fails with
    /// `Compacted` if `from` is no longer in the log.
    pub(crate) fn read_log_for_watch(
        &self,
        prefix: &[u8],
        from: Revision,
        to: Revision,
    ) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        let cf = self.cf(CF_LOG)?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(codec::rev_key(to).to_vec());
        let mut it = self.db.raw_iterator_cf_opt(cf, ro);
        it.seek(codec::rev_key(from));
        let mut expected = from;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let rev = codec::decode_rev(k)?;
            if rev != expected {
                break;
            }
            if codec::event_key(v)?.starts_with(prefix) {
                out.push(codec::decode_event(v)?);
            }
            expected += 1;
            it.next();
        }
        it.status().map_err(backend)?;
        if expected != to {
            let compacted = self.compacted.load(Ordering::Acquire);
            if expected <= compacted {
                return Err(StoreError::Compacted {
                    requested: from - 1,
                    compacted,
                });
            }
            return Err(StoreError::Backend(format!(
                "event log is missing revision {expected}"
            )));
        }
        Ok(out)
    }
}

enum Op {
    Create {
        key: Vec<u8>,
        value: Bytes,
    },
    Update {
        key: Vec<u8>,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: Vec<u8>,
        expected: Option<Revision>,
    },
}

impl Op {
    fn key(&self) -> &[u8] {
        match self {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Msg {
    Write(Op, Reply<KeyValue>),
    Compact(Revision, Reply<()>),
    Shutdown,
}

/// RocksDB-backed [`Store`]. Cheap to share as `Arc<RocksStore>` / `Arc<dyn Store>`.
pub struct RocksStore {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    watch_rx: watch::Receiver<Revision>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("revision", &self.current_revision())
            .field("compacted", &self.compacted_revision())
            .finish_non_exhaustive()
    }
}

impl RocksStore {
    /// Open or create at `path`. Recovers revision, compaction point and watch history.
    pub fn open(path: &Path, options: RocksOptions) -> Result<Arc<Self>, StoreError> {
        let _span = tracing::info_span!("store_open", path = %path.display()).entered();
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_bytes_per_sync(1 << 20);

        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        let mut data_opts = Options::default();
        data_opts.set_block_based_table_factory(&table);
        data_opts.set_compression_type(DBCompressionType::Lz4);
        data_opts.set_write_buffer_size(64 << 20);
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_KV, data_opts.clone()),
            ColumnFamilyDescriptor::new(CF_LOG, data_opts),
            ColumnFamilyDescriptor::new(CF_META, Options::default()),
        ];
        let db = DB::open_cf_descriptors(&db_opts, path, cfs).map_err(backend)?;

        let read_meta = |key: &[u8]| -> Result<Revision, StoreError> {
            let cf = db
                .cf_handle(CF_META)
                .ok_or_else(|| StoreError::Backend("missing meta cf".into()))?;
            match db.get_pinned_cf(cf, key).map_err(backend)? {
                None => Ok(0),
                Some(v) => codec::decode_rev(&v),
            }
        };
        let mut rev = read_meta(META_REV)?;
        let compacted = read_meta(META_COMPACTED)?;
        let log_cf = db
            .cf_handle(CF_LOG)
            .ok_or_else(|| StoreError::Backend("missing log cf".into()))?;
        {
            let mut it = db.raw_iterator_cf(log_cf);
            it.seek_to_last();
            if let Some(k) = it.key() {
                rev = rev.max(codec::decode_rev(k)?);
            }
            it.status().map_err(backend)?;
        }
        // Load the tail of the log into the watch ring.
        let cap = options.watch_cache_events.max(1) as Revision;
        let start = (rev - cap + 1).max(compacted + 1).max(1);
        let mut events = VecDeque::new();
        {
            let mut it = db.raw_iterator_cf(log_cf);
            it.seek(codec::rev_key(start));
            let mut expected = start;
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if codec::decode_rev(k)? != expected {
                    return Err(StoreError::Backend(format!(
                        "event log is missing revision {expected}"
                    )));
                }
                events.push_back(codec::decode_event(v)?);
                expected += 1;
                it.next();
            }
            it.status().map_err(backend)?;
        }
        let first_rev = if events.is_empty() { rev + 1 } else { start };
        tracing::info!(rev, compacted, cached = events.len(), "store opened");

        let shared = Arc::new(Shared {
            db,
            hub: Hub::new(options.watch_cache_events, first_rev, events),
            rev: AtomicI64::new(rev),
            compacted: AtomicI64::new(compacted),
            closed: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel();
        let (watch_tx, watch_rx) = watch::channel(rev);
        let writer = Writer {
            shared: shared.clone(),
            rx,
            watch_tx,
            rev,
            sync: options.sync,
            max_batch: options.max_batch.max(1),
        };
        let handle = std::thread::Builder::new()
            .name("hortator-store-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Backend(format!("spawn writer: {e}")))?;
        Ok(Arc::new(RocksStore {
            shared,
            tx,
            watch_rx,
            writer: Mutex::new(Some(handle)),
        }))
    }

    /// Flush and stop the writer; further writes fail with Closed. Idempotent.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = self.tx.send(Msg::Shutdown);
            if handle.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
            if let Err(e) = self.shared.db.flush_wal(true) {
                tracing::warn!(error = %e, "flush_wal on close failed");
            }
            for name in [CF_KV, CF_LOG, CF_META] {
                let res = self
                    .shared
                    .cf(name)
                    .and_then(|cf| self.shared.db.flush_cf(cf).map_err(backend));
                if let Err(e) = res {
                    tracing::warn!(error = %e, cf = name, "flush on close failed");
                }
            }
            tracing::debug!("store closed");
        }
    }

    fn submit(&self, op: Op) -> BoxFuture<'_, Result<KeyValue, StoreError>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Box::pin(std::future::ready(Err(StoreError::Closed)));
        }
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Write(op, tx)).is_err() {
            return Box::pin(std::future::ready(Err(StoreError::Closed)));
        }
        Box::pin(async move { rx.await.unwrap_or(Err(StoreError::Closed)) })
    }

    /// Revision/compaction point as recorded in a snapshot.
    fn snap_meta(&self, snap: &rocksdb::Snapshot<'_>, key: &[u8]) -> Result<Revision, StoreError> {
        match snap
            .get_pinned_cf(self.shared.cf(CF_META)?, key)
            .map_err(backend)?
        {
            None => Ok(0),
            Some(v) => codec::decode_rev(&v),
        }
    }
}

impl Drop for RocksStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl Store for RocksStore {
    fn current_revision(&self) -> Revision {
        self.shared.rev.load(Ordering::Acquire)
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::Acquire)
    }

    fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        self.shared.current(key)
    }

    fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        let db = &self.shared.db;
        let snap = db.snapshot();
        let snap_rev = self.snap_meta(&snap, META_REV)?;
        let compacted = self.snap_meta(&snap, META_COMPACTED)?;
        let at = match req.revision {
            Some(r) if r > 0 => r,
            _ => snap_rev,
        };
        if at > snap_rev {
            return Err(StoreError::FutureRevision {
                requested: at,
                current: snap_rev,
            });
        }
        if at < compacted {
            return Err(StoreError::Compacted {
                requested: at,
                compacted,
            });
        }
        let prefix = &req.prefix[..];
        let lower = match &req.start_after {
            Some(s) if s.as_slice() >= prefix => {
                let mut l = Vec::with_capacity(s.len() + 1);
                l.extend_from_slice(s);
                l.push(0);
                l
            }
            _ => prefix.to_vec(),
        };
        let upper = prefix_end(prefix);
        if upper.as_ref().is_some_and(|u| lower >= *u) {
            return Ok(RangeResponse {
                kvs: Vec::new(),
                more: false,
                revision: at,
            });
        }

        // State as of `at` for keys changed after it: the prev of their first later event.
        let mut overrides: BTreeMap<Vec<u8>, Option<KeyValue>> = BTreeMap::new();
        if at < snap_rev {
            let mut ro = ReadOptions::default();
            ro.set_iterate_upper_bound(codec::rev_key(snap_rev + 1).to_vec());
            let mut it = snap.raw_iterator_cf_opt(self.shared.cf(CF_LOG)?, ro);
            it.seek(codec::rev_key(at + 1));
            while let Some(v) = it.value() {
                let key = codec::event_key(v)?;
                if key.starts_with(prefix)
                    && key >= lower.as_slice()
                    && !overrides.contains_key(key)
                {
                    let ev = codec::decode_event(v)?;
                    overrides.insert(ev.kv.key, ev.prev_kv);
                }
                it.next();
            }
            it.status().map_err(backend)?;
        }

        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lower.clone());
        if let Some(u) = upper {
            ro.set_iterate_upper_bound(u);
        }
        let mut it = snap.raw_iterator_cf_opt(self.shared.cf(CF_KV)?, ro);
        it.seek(&lower);
        let mut ov = overrides.into_iter().peekable();
        let mut kvs = Vec::new();
        let mut more = false;
        loop {
            let cur_key = it.key();
            let take_override = match (cur_key, ov.peek()) {
                (None, None) => break,
                (Some(_), None) => None,
                (None, Some(_)) => Some(false),
                (Some(ck), Some((ok, _))) => match ck.cmp(ok.as_slice()) {
                    std::cmp::Ordering::Less => None,
                    std::cmp::Ordering::Equal => Some(true),
                    std::cmp::Ordering::Greater => Some(false),
                },
            };
            let candidate = match take_override {
                None => {
                    let (Some(k), Some(v)) = (it.key(), it.value()) else {
                        break;
                    };
                    let kv = codec::decode_kv(k, v)?;
                    it.next();
                    Some(kv)
                }
                Some(advance_iter) => {
                    if advance_iter {
                        it.next();
                    }
                    ov.next().and_then(|(_, v)| v)
                }
            };
            if let Some(kv) = candidate {
                if req.limit > 0 && kvs.len() == req.limit {
                    more = true;
                    break;
                }
                kvs.push(kv);
            }
        }
        it.status().map_err(backend)?;
        Ok(RangeResponse {
            kvs,
            more,
            revision: at,
        })
    }

    fn count(&self, prefix: &[u8]) -> Result<usize, StoreError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(prefix.to_vec());
        if let Some(u) = prefix_end(prefix) {
            ro.set_iterate_upper_bound(u);
        }
        let mut it = self
            .shared
            .db
            .raw_iterator_cf_opt(self.shared.cf(CF_KV)?, ro);
        it.seek(prefix);
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next();
        }
        it.status().map_err(backend)?;
        Ok(n)
    }

    fn create(&self, key: Vec<u8>, value: Bytes) -> BoxFuture<'_, Result<KeyValue, StoreError>> {
        self.submit(Op::Create { key, value })
    }

    fn update(
        &self,
        key: Vec<u8>,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> BoxFuture<'_, Result<KeyValue, StoreError>> {
        self.submit(Op::Update {
            key,
            value,
            expected: expected_mod_revision,
        })
    }

    fn delete(
        &self,
        key: Vec<u8>,
        expected_mod_revision: Option<Revision>,
    ) -> BoxFuture<'_, Result<KeyValue, StoreError>> {
        self.submit(Op::Delete {
            key,
            expected: expected_mod_revision,
        })
    }

    fn watch(&self, prefix: &[u8], after_revision: Revision) -> Result<WatchStream, StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let compacted = self.compacted_revision();
        if after_revision < compacted {
            return Err(StoreError::Compacted {
                requested: after_revision,
                compacted,
            });
        }
        tracing::debug!(after_revision, "watch started");
        Ok(crate::watch::stream(
            self.shared.clone(),
            self.watch_rx.clone(),
            prefix.to_vec(),
            after_revision,
        ))
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Box::pin(std::future::ready(Err(StoreError::Closed)));
        }
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Compact(revision, tx)).is_err() {
            return Box::pin(std::future::ready(Err(StoreError::Closed)));
        }
        Box::pin(async move { rx.await.unwrap_or(Err(StoreError::Closed)) })
    }
}

/// The single writer thread.
struct Writer {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Msg>,
    watch_tx: watch::Sender<Revision>,
    rev: Revision,
    sync: bool,
    max_batch: usize,
}

impl Writer {
    fn run(mut self) {
        let mut shutdown = false;
        while !shutdown {
            let Ok(first) = self.rx.recv() else { break };
            let mut writes = Vec::new();
            let mut compacts = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next {
                match msg {
                    Msg::Write(op, reply) => writes.push((op, reply)),
                    Msg::Compact(rev, reply) => compacts.push((rev, reply)),
                    Msg::Shutdown => shutdown = true,
                }
                next = if writes.len() < self.max_batch {
                    self.rx.try_recv().ok()
                } else {
                    None
                };
            }
            if !writes.is_empty() {
                self.commit(writes);
            }
            for (rev, reply) in compacts {
                let _ = reply.send(self.compact(rev));
            }
        }
        tracing::debug!(rev = self.rev, "store writer stopped");
    }

    fn write_opts(&self) -> WriteOptions {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        wo
    }

    fn commit(&mut self, writes: Vec<(Op, Reply<KeyValue>)>) {
        let span = tracing::debug_span!("store_commit", ops = writes.len());
        let _guard = span.enter();
        let shared = self.shared.clone();
        let (kv_cf, log_cf, meta_cf) =
            match (shared.cf(CF_KV), shared.cf(CF_LOG), shared.cf(CF_META)) {
                (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                _ => {
                    for (_, reply) in writes {
                        let _ =
                            reply.send(Err(StoreError::Backend("missing column family".into())));
                    }
                    return;
                }
            };
        let mut overlay: HashMap<Vec<u8>, Option<KeyValue>> = HashMap::new();
        let mut batch = WriteBatch::default();
        let mut events = Vec::new();
        let mut replies = Vec::with_capacity(writes.len());
        let mut next = self.rev;
        for (op, reply) in writes {
            let current = match overlay.get(op.key()) {
                Some(v) => Ok(v.clone()),
                None => shared.current(op.key()),
            };
            let result = current.and_then(|cur| apply(op, cur, next + 1));
            let result = result.and_then(|(ev, ret)| {
                let enc = codec::encode_event(&ev)?;
                Ok((ev, ret, enc))
            });
            match result {
                Err(e) => replies.push((reply, Err(e))),
                Ok((ev, ret, enc)) => {
                    next += 1;
                    batch.put_cf(log_cf, codec::rev_key(next), enc);
                    let state = match ev.kind {
                        EventKind::Put => {
                            batch.put_cf(
                                kv_cf,
                                &ev.kv.key,
                                codec::encode_kv_value(&codec::meta_of(&ev.kv), &ev.kv.value),
                            );
                            Some(ev.kv.clone())
                        }
                        EventKind::Delete => {
                            batch.delete_cf(kv_cf, &ev.kv.key);
                            None
                        }
                    };
                    overlay.insert(ev.kv.key.clone(), state);
                    events.push(ev);
                    replies.push((reply, Ok(ret)));
                }
            }
        }
        if !events.is_empty() {
            batch.put_cf(meta_cf, META_REV, codec::rev_key(next));
            match shared.db.write_opt(batch, &self.write_opts()) {
                Ok(()) => {
                    tracing::debug!(rev = next, events = events.len(), "committed");
                    self.rev = next;
                    shared.hub.push(events);
                    shared.rev.store(next, Ordering::Release);
                    self.watch_tx.send_replace(next);
                }
                Err(e) => {
                    tracing::error!(error = %e, "store write failed");
                    let msg = e.to_string();
                    for (_, r) in replies.iter_mut() {
                        if r.is_ok() {
                            *r = Err(StoreError::Backend(msg.clone()));
                        }
                    }
                }
            }
        }
        for (reply, r) in replies {
            let _ = reply.send(r);
        }
    }

    fn compact(&mut self, revision: Revision) -> Result<(), StoreError> {
        let shared = &self.shared;
        if revision <= shared.compacted.load(Ordering::Acquire) {
            return Ok(());
        }
        if revision > self.rev {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.rev,
            });
        }
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            shared.cf(CF_LOG)?,
            codec::rev_key(0),
            codec::rev_key(revision + 1),
        );
        batch.put_cf(
            shared.cf(CF_META)?,
            META_COMPACTED,
            codec::rev_key(revision),
        );
        shared
            .db
            .write_opt(batch, &self.write_opts())
            .map_err(backend)?;
        shared.compacted.store(revision, Ordering::Release);
        shared.hub.trim(revision);
        tracing::debug!(revision, "compacted");
        Ok(())
    }
}

/// Check an op's guard against the key's current state and build its event (at revision
/// `rev`) and the value to return to the caller.
fn apply(op: Op, cur: Option<KeyValue>, rev: Revision) -> Result<(Event, KeyValue), StoreError> {
    match op {
        Op::Create { key, value } => {
            if let Some(current) = cur {
                return Err(StoreError::AlreadyExists { current });
            }
            let meta = Meta {
                create_revision: rev,
                mod_revision: rev,
                version: 1,
            };
            let kv = codec::make_kv(key, meta, value);
            Ok((
                Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                    prev_kv: None,
                },
                kv,
            ))
        }
        Op::Update {
            key,
            value,
            expected,
        } => {
            let current = cur.ok_or(StoreError::NotFound)?;
            if current.mod_revision != expected {
                return Err(StoreError::Conflict { expected, current });
            }
            let meta = Meta {
                create_revision: current.create_revision,
                mod_revision: rev,
                version: current.version + 1,
            };
            let kv = codec::make_kv(key, meta, value);
            Ok((
                Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                    prev_kv: Some(current),
                },
                kv,
            ))
        }
        Op::Delete { key, expected } => {
            let current = cur.ok_or(StoreError::NotFound)?;
            if let Some(expected) = expected
                && current.mod_revision != expected
            {
                return Err(StoreError::Conflict { expected, current });
            }
            let meta = Meta {
                create_revision: 0,
                mod_revision: rev,
                version: 0,
            };
            Ok((
                Event {
                    kind: EventKind::Delete,
                    kv: codec::make_kv(key, meta, Bytes::new()),
                    prev_kv: Some(current.clone()),
                },
                current,
            ))
        }
    }
}
