//! Reopening a store recovers revision, data, history and the compaction point.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hortator_store::{
    EventKind, RangeRequest, RocksOptions, RocksStore, Store, StoreError, WatchStream,
};

async fn next_rev(w: &mut WatchStream) -> (i64, EventKind) {
    let ev = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch timed out")
        .expect("watch ended")
        .expect("watch error");
    (ev.kv.mod_revision, ev.kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_recovers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RocksOptions {
        watch_cache_events: 8,
        ..Default::default()
    };
    {
        let s = RocksStore::open(dir.path(), opts.clone()).unwrap();
        for i in 0..20 {
            s.create(
                format!("/r/{i:02}").into_bytes(),
                Bytes::from(format!("v{i}")),
            )
            .await
            .unwrap();
        }
        s.update(b"/r/05".to_vec(), Bytes::from_static(b"u"), 6)
            .await
            .unwrap(); // 21
        s.delete(b"/r/07".to_vec(), None).await.unwrap(); // 22
        s.compact(3).await.unwrap();
        assert_eq!(s.current_revision(), 22);
        s.close();
    }
    let s = RocksStore::open(dir.path(), opts.clone()).unwrap();
    assert_eq!(s.current_revision(), 22);
    assert_eq!(s.compacted_revision(), 3);
    let kv = s.get(b"/r/05").unwrap().unwrap();
    assert_eq!(
        (
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            &kv.value[..]
        ),
        (6, 21, 2, &b"u"[..])
    );
    assert_eq!(s.get(b"/r/07").unwrap(), None);
    assert_eq!(s.count(b"/r/").unwrap(), 19);
    // History: range at an old revision and watch from before the restart.
    let r = s
        .range(RangeRequest {
            prefix: b"/r/".to_vec(),
            revision: Some(10),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 10);
    assert!(matches!(
        s.range(RangeRequest {
            revision: Some(2),
            ..Default::default()
        }),
        Err(StoreError::Compacted { .. })
    ));
    assert!(matches!(s.watch(b"", 2), Err(StoreError::Compacted { .. })));
    let mut w = s.watch(b"/r/", 3).unwrap();
    for rev in 4..=20 {
        assert_eq!(next_rev(&mut w).await, (rev, EventKind::Put));
    }
    assert_eq!(next_rev(&mut w).await, (21, EventKind::Put));
    assert_eq!(next_rev(&mut w).await, (22, EventKind::Delete));
    // New writes continue the revision sequence and reach the resumed watcher.
    let kv = s
        .create(b"/r/new".to_vec(), Bytes::from_static(b"n"))
        .await
        .unwrap();
    assert_eq!(kv.mod_revision, 23);
    assert_eq!(next_rev(&mut w).await, (23, EventKind::Put));
    drop(w);
    s.close();
    drop(s);

    // Dropping without close() also shuts down cleanly and the data is there.
    let s = RocksStore::open(dir.path(), opts).unwrap();
    assert_eq!(s.current_revision(), 23);
    let mut w = s.watch(b"", 21).unwrap();
    assert_eq!(next_rev(&mut w).await.0, 22);
    assert_eq!(next_rev(&mut w).await.0, 23);
}
