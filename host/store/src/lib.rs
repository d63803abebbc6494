//! Embedded, revisioned key-value store for Hortator (etcd v3-like semantics).
//!
//! Every successful write (create / update / delete) bumps one global [`Revision`] by exactly
//! one. Keys carry `create_revision`, `mod_revision` and `version`. History is kept as an
//! event log that serves watches and reads at older revisions until it is compacted.
//!
//! The [`Store`] trait is dyn-compatible so callers can hold an `Arc<dyn Store>`;
//! [`RocksStore`] is the RocksDB-backed implementation; [`MeteredStore`] times any store's
//! operations for Prometheus.

mod codec;
mod metered;
mod rocks;
mod watch;

pub use metered::MeteredStore;
pub use rocks::{RocksOptions, RocksStore};

/// A store revision. `0` means "nothing written yet"; the first write gets revision `1`.
pub type Revision = i64;

/// A key with its value and revision metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty for a deletion event's `kv`).
    pub value: bytes::Bytes,
    /// Revision at which the key was (last) created.
    pub create_revision: Revision,
    /// Revision of the last modification of the key.
    pub mod_revision: Revision,
    /// Number of writes since creation: 1 on create, +1 per update.
    pub version: i64,
}

/// Kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// A change to one key, at revision `kv.mod_revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Whether this is a put or a delete.
    pub kind: EventKind,
    /// For Put: the new kv; for Delete: key with empty value and mod_revision = the deletion's
    /// revision (create_revision and version are 0).
    pub kv: KeyValue,
    /// The key's state just before this event (`None` for a create).
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// The revision at which this event happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// Parameters of a [`Store::range`] read.
#[derive(Clone, Debug, Default)]
pub struct RangeRequest {
    /// Only keys starting with this prefix (empty = all keys).
    pub prefix: Vec<u8>,
    /// Start after this key (exclusive) — for pagination.
    pub start_after: Option<Vec<u8>>,
    /// Maximum number of keys to return; 0 = unlimited.
    pub limit: usize,
    /// Revision to read at; `None` (or a value `<= 0`) = current revision.
    pub revision: Option<Revision>,
}

/// Result of a [`Store::range`] read.
#[derive(Clone, Debug)]
pub struct RangeResponse {
    /// The matching keys, in ascending key order.
    pub kvs: Vec<KeyValue>,
    /// More keys exist past the last returned one.
    pub more: bool,
    /// The revision this range was read at.
    pub revision: Revision,
}

/// Errors returned by a [`Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` of a key that already exists.
    #[error("key already exists")]
    AlreadyExists {
        /// The existing kv.
        current: KeyValue,
    },
    /// The key does not exist.
    #[error("key not found")]
    NotFound,
    /// A compare-and-swap guard failed.
    #[error("revision conflict: expected mod revision {expected}, found {}", current.mod_revision)]
    Conflict {
        /// The mod revision the caller expected.
        expected: Revision,
        /// The key's current state.
        current: KeyValue,
    },
    /// The requested revision is older than the compaction point.
    #[error("required revision {requested} has been compacted (oldest available {compacted})")]
    Compacted {
        /// The revision that was asked for.
        requested: Revision,
        /// The current compaction point.
        compacted: Revision,
    },
    /// The requested revision has not been written yet.
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision {
        /// The revision that was asked for.
        requested: Revision,
        /// The current revision.
        current: Revision,
    },
    /// The store has been closed.
    #[error("store is closed")]
    Closed,
    /// Storage backend failure or corrupt data.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// A stream of watch events (see [`Store::watch`]).
pub type WatchStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<Event, StoreError>> + Send>>;

/// A boxed, `Send` future (keeps [`Store`] dyn-compatible).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A revisioned key-value store. Dyn-compatible so callers hold `Arc<dyn Store>`.
///
/// Write futures resolve once the write is durable. Writes are submitted when the method is
/// called (not on first poll), so dropping the future does not cancel the write.
pub trait Store: Send + Sync + 'static {
    /// The latest committed revision (0 for an empty store).
    fn current_revision(&self) -> Revision;
    /// The compaction point: history at or below it is gone (0 = never compacted).
    fn compacted_revision(&self) -> Revision;
    /// Read one key at the current revision.
    fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError>;
    /// Read keys under a prefix, optionally paginated and/or at an older revision.
    fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError>;
    /// Count keys under a prefix at the current revision.
    fn count(&self, prefix: &[u8]) -> Result<usize, StoreError>;
    /// Create a key; fails with `AlreadyExists` if present.
    fn create(
        &self,
        key: Vec<u8>,
        value: bytes::Bytes,
    ) -> BoxFuture<'_, Result<KeyValue, StoreError>>;
    /// CAS: fails with Conflict unless the key's mod_revision == expected (NotFound if absent).
    fn update(
        &self,
        key: Vec<u8>,
        value: bytes::Bytes,
        expected_mod_revision: Revision,
    ) -> BoxFuture<'_, Result<KeyValue, StoreError>>;
    /// Unconditional if expected is None. Returns the deleted kv (prev). NotFound if absent.
    fn delete(
        &self,
        key: Vec<u8>,
        expected_mod_revision: Option<Revision>,
    ) -> BoxFuture<'_, Result<KeyValue, StoreError>>;
    /// Events with revision > `after_revision` for keys under `prefix`, in revision order, with
    /// no gaps and no duplicates, history first then live.
    ///
    /// Returns `Err(Compacted)` directly if `after_revision` is older than the compaction
    /// point. An `after_revision` beyond the current revision is allowed: the stream simply
    /// waits for it. If a lagging watcher falls behind a later compaction, the stream yields
    /// `Err(Compacted)` and ends; when the store closes it yields `Err(Closed)` and ends.
    fn watch(&self, prefix: &[u8], after_revision: Revision) -> Result<WatchStream, StoreError>;
    /// Drop history up to and including `revision` (range-at-revision and watch from before
    /// it then fail with Compacted). Compacting at or below the current compaction point is a
    /// no-op; compacting beyond the current revision fails with `FutureRevision`.
    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>>;
}

#[cfg(test)]
mod tests;
