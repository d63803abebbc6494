//! A [`Store`] wrapper that times every operation for Prometheus.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::{
    BoxFuture, KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError, WatchStream,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
    outcome: &'static str,
}

type Latency = Family<OperationLabels, Histogram, fn() -> Histogram>;

/// Times each call to the wrapped store, by operation (`get`, `range`, `create`, …) and
/// outcome (`ok`, `error`): `hortator_store_operation_duration_seconds`.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    latency: Latency,
}

impl MeteredStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        MeteredStore {
            inner,
            latency: Family::new_with_constructor(|| {
                // 10 µs .. ~10 s.
                Histogram::new(exponential_buckets(0.000_01, 4.0, 11))
            }),
        }
    }

    /// Register the latency histogram in `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "hortator_store_operation_duration",
            "Latency of store operations by operation and outcome",
            Unit::Seconds,
            self.latency.clone(),
        );
    }

    fn observe<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: &Result<T, StoreError>,
    ) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.latency
            .get_or_create(&OperationLabels { operation, outcome })
            .observe(started.elapsed().as_secs_f64());
    }

    /// `operation` (begun now by the wrapped store), timed when it completes.
    fn timed<'a, T: Send + 'a>(
        &'a self,
        operation: &'static str,
        pending: BoxFuture<'a, Result<T, StoreError>>,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        let started = Instant::now();
        Box::pin(async move {
            let result = pending.await;
            self.observe(operation, started, &result);
            result
        })
    }
}

impl Store for MeteredStore {
    fn current_revision(&self) -> Revision {
        self.inner.current_revision()
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }

    fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let started = Instant::now();
        let result = self.inner.get(key);
        self.observe("get", started, &result);
        result
    }

    fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        let started = Instant::now();
        let result = self.inner.range(req);
        self.observe("range", started, &result);
        result
    }

    fn count(&self, prefix: &[u8]) -> Result<usize, StoreError> {
        let started = Instant::now();
        let result = self.inner.count(prefix);
        self.observe("count", started, &result);
        result
    }

    fn create(
        &self,
        key: Vec<u8>,
        value: bytes::Bytes,
    ) -> BoxFuture<'_, Result<KeyValue, StoreError>> {
        self.timed("create", self.inner.create(key, value))
    }

    fn update(
        &self,
        key: Vec<u8>,
        value: bytes::Bytes,
        expected_mod_revision: Revision,
    ) -> BoxFuture<'_, Result<KeyValue, StoreError>> {
        self.timed(
            "update",
            self.inner.update(key, value, expected_mod_revision),
        )
    }

    fn delete(
        &self,
        key: Vec<u8>,
        expected_mod_revision: Option<Revision>,
    ) -> BoxFuture<'_, Result<KeyValue, StoreError>> {
        self.timed("delete", self.inner.delete(key, expected_mod_revision))
    }

    fn watch(&self, prefix: &[u8], after_revision: Revision) -> Result<WatchStream, StoreError> {
        let started = Instant::now();
        let result = self.inner.watch(prefix, after_revision);
        self.observe("watch", started, &result);
        result
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>> {
        self.timed("compact", self.inner.compact(revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RocksOptions, RocksStore};

    #[tokio::test]
    async fn operations_are_timed_by_kind_and_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
        let store = MeteredStore::new(rocks);
        store.create(b"/a".to_vec(), "1".into()).await.unwrap();
        assert!(store.create(b"/a".to_vec(), "2".into()).await.is_err());
        store.get(b"/a").unwrap();
        let mut registry = Registry::default();
        store.register_metrics(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains(
            "hortator_store_operation_duration_seconds_count{operation=\"create\",outcome=\"ok\"} 1"
        ), "{text}");
        assert!(text.contains(
            "hortator_store_operation_duration_seconds_count{operation=\"create\",outcome=\"error\"} 1"
        ), "{text}");
        assert!(text.contains(
            "hortator_store_operation_duration_seconds_count{operation=\"get\",outcome=\"ok\"} 1"
        ), "{text}");
    }
}
