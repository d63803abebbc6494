//! Unit tests of the RocksDB store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::*;

fn open(dir: &tempfile::TempDir) -> Arc<RocksStore> {
    RocksStore::open(dir.path(), RocksOptions::default()).unwrap()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

async fn next_event(w: &mut WatchStream) -> Event {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch timed out")
        .expect("watch ended")
        .expect("watch error")
}

fn keys(r: &RangeResponse) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    assert_eq!(s.current_revision(), 0);
    assert_eq!(s.get(b"a").unwrap(), None);

    let a = s.create(k("a"), b("1")).await.unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (1, 1, 1));
    assert_eq!(s.current_revision(), 1);
    assert_eq!(s.get(b"a").unwrap(), Some(a.clone()));

    match s.create(k("a"), b("x")).await {
        Err(StoreError::AlreadyExists { current }) => assert_eq!(current, a),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        s.current_revision(),
        1,
        "failed writes don't bump the revision"
    );

    let a2 = s.update(k("a"), b("2"), 1).await.unwrap();
    assert_eq!((a2.create_revision, a2.mod_revision, a2.version), (1, 2, 2));
    match s.update(k("a"), b("3"), 1).await {
        Err(StoreError::Conflict { expected, current }) => {
            assert_eq!(expected, 1);
            assert_eq!(current, a2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        s.update(k("nope"), b("3"), 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete(k("a"), Some(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    let del = s.delete(k("a"), Some(2)).await.unwrap();
    assert_eq!(del, a2);
    assert_eq!(s.current_revision(), 3);
    assert_eq!(s.get(b"a").unwrap(), None);
    assert!(matches!(
        s.delete(k("a"), None).await,
        Err(StoreError::NotFound)
    ));
    // Re-create starts a new lifecycle.
    let a3 = s.create(k("a"), b("new")).await.unwrap();
    assert_eq!((a3.create_revision, a3.mod_revision, a3.version), (4, 4, 1));
    s.delete(k("a"), None).await.unwrap();
    assert_eq!(s.current_revision(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_overlay_cas() {
    // Many concurrent ops on one key in a single group commit must see each other.
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let futs: Vec<_> = (0..50).map(|_| s.create(k("x"), b("v"))).collect();
    let res = futures::future::join_all(futs).await;
    assert_eq!(res.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(s.current_revision(), 1);
    // All CAS updates against rev 1: exactly one wins.
    let futs: Vec<_> = (0..50)
        .map(|i| s.update(k("x"), b(&i.to_string()), 1))
        .collect();
    let res = futures::future::join_all(futs).await;
    assert_eq!(res.iter().filter(|r| r.is_ok()).count(), 1);
    let kv = s.get(b"x").unwrap().unwrap();
    assert_eq!((kv.version, kv.mod_revision), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_prefix_pagination() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    for i in 0..25 {
        s.create(format!("/pods/{i:02}").into_bytes(), b("p"))
            .await
            .unwrap();
    }
    s.create(k("/pods"), b("not-under-prefix")).await.unwrap();
    s.create(k("/podsx/1"), b("x")).await.unwrap();
    s.create(k("/svc/1"), b("s")).await.unwrap();
    s.create(vec![0xff, 0xff], b("ff")).await.unwrap();

    assert_eq!(s.count(b"/pods/").unwrap(), 25);
    assert_eq!(s.count(b"").unwrap(), 29);
    assert_eq!(s.count(&[0xff]).unwrap(), 1);
    let all = s
        .range(RangeRequest {
            prefix: k("/pods/"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.kvs.len(), 25);
    assert!(!all.more);
    assert_eq!(all.revision, 29);

    let mut got = Vec::new();
    let mut start_after = None;
    let mut pages = 0;
    loop {
        let r = s
            .range(RangeRequest {
                prefix: k("/pods/"),
                start_after: start_after.clone(),
                limit: 10,
                revision: None,
            })
            .unwrap();
        pages += 1;
        got.extend(keys(&r));
        start_after = r.kvs.last().map(|kv| kv.key.clone());
        if !r.more {
            break;
        }
        assert_eq!(r.kvs.len(), 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(got, keys(&all));
    // Exactly `limit` remaining: more must be false.
    let r = s
        .range(RangeRequest {
            prefix: k("/pods/"),
            start_after: Some(k("/pods/14")),
            limit: 10,
            revision: None,
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 10);
    assert!(!r.more);
    let r = s
        .range(RangeRequest {
            prefix: vec![0xff],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_at_revision_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create(k("/a/1"), b("a1")).await.unwrap(); // 1
    s.create(k("/a/2"), b("a2")).await.unwrap(); // 2
    s.create(k("/a/3"), b("a3")).await.unwrap(); // 3
    s.update(k("/a/2"), b("a2'"), 2).await.unwrap(); // 4
    s.delete(k("/a/1"), None).await.unwrap(); // 5
    s.create(k("/a/0"), b("a0")).await.unwrap(); // 6
    s.create(k("/b/1"), b("b1")).await.unwrap(); // 7

    let at = |rev: Option<Revision>, limit: usize, start_after: Option<&str>| {
        s.range(RangeRequest {
            prefix: k("/a/"),
            start_after: start_after.map(k),
            limit,
            revision: rev,
        })
    };
    let r3 = at(Some(3), 0, None).unwrap();
    assert_eq!(r3.revision, 3);
    assert_eq!(keys(&r3), ["/a/1", "/a/2", "/a/3"]);
    assert_eq!(r3.kvs[1].value, b("a2"));
    assert_eq!(r3.kvs[1].mod_revision, 2);
    let r4 = at(Some(4), 0, None).unwrap();
    assert_eq!(r4.kvs[1].value, b("a2'"));
    assert_eq!(r4.kvs[1].version, 2);
    assert_eq!(keys(&at(Some(5), 0, None).unwrap()), ["/a/2", "/a/3"]);
    assert_eq!(
        keys(&at(Some(6), 0, None).unwrap()),
        ["/a/0", "/a/2", "/a/3"]
    );
    assert_eq!(keys(&at(Some(1), 0, None).unwrap()), ["/a/1"]);
    // Paginated at an old revision.
    let p1 = at(Some(3), 2, None).unwrap();
    assert_eq!(keys(&p1), ["/a/1", "/a/2"]);
    assert!(p1.more);
    let p2 = at(Some(3), 2, Some("/a/2")).unwrap();
    assert_eq!(keys(&p2), ["/a/3"]);
    assert!(!p2.more);
    // Current.
    let cur = at(None, 0, None).unwrap();
    assert_eq!(cur.revision, 7);
    assert_eq!(keys(&cur), ["/a/0", "/a/2", "/a/3"]);
    assert_eq!(at(Some(7), 0, None).unwrap().kvs, cur.kvs);

    match at(Some(8), 0, None) {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (8, 7))
        }
        other => panic!("unexpected {other:?}"),
    }

    assert!(matches!(
        s.compact(99).await,
        Err(StoreError::FutureRevision { .. })
    ));
    s.compact(4).await.unwrap();
    assert_eq!(s.compacted_revision(), 4);
    match at(Some(3), 0, None) {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (3, 4)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        keys(&at(Some(4), 0, None).unwrap()),
        ["/a/1", "/a/2", "/a/3"]
    );
    assert!(matches!(
        s.watch(b"/a/", 3),
        Err(StoreError::Compacted { .. })
    ));
    let mut w = s.watch(b"/a/", 4).unwrap();
    assert_eq!(next_event(&mut w).await.revision(), 5);
    // Compacting backwards is a no-op.
    s.compact(2).await.unwrap();
    assert_eq!(s.compacted_revision(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_history_live_prefix_prev() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create(k("/a/1"), b("1")).await.unwrap(); // 1
    s.create(k("/b/1"), b("1")).await.unwrap(); // 2
    s.update(k("/a/1"), b("2"), 1).await.unwrap(); // 3

    let mut all = s.watch(b"", 0).unwrap();
    let mut a_mid = s.watch(b"/a/", 1).unwrap();
    for rev in 1..=3 {
        assert_eq!(next_event(&mut all).await.revision(), rev);
    }
    let ev = next_event(&mut a_mid).await;
    assert_eq!(ev.revision(), 3);
    assert_eq!(ev.kind, EventKind::Put);
    assert_eq!(ev.kv.value, b("2"));
    let prev = ev.prev_kv.unwrap();
    assert_eq!(
        (prev.value, prev.mod_revision, prev.version),
        (b("1"), 1, 1)
    );

    // Live.
    s.create(k("/b/2"), b("x")).await.unwrap(); // 4
    s.delete(k("/a/1"), None).await.unwrap(); // 5
    assert_eq!(next_event(&mut all).await.revision(), 4);
    let del = next_event(&mut a_mid).await;
    assert_eq!(del.kind, EventKind::Delete);
    assert_eq!(del.kv.key, k("/a/1"));
    assert!(del.kv.value.is_empty());
    assert_eq!(del.kv.mod_revision, 5);
    assert_eq!(del.prev_kv.unwrap().value, b("2"));
    assert_eq!(next_event(&mut all).await.revision(), 5);

    // Watch from the future waits.
    let mut fut = s.watch(b"", 6).unwrap();
    s.create(k("/c"), b("6")).await.unwrap();
    s.create(k("/c2"), b("7")).await.unwrap();
    assert_eq!(next_event(&mut fut).await.revision(), 7);
    // Watch from the current revision gets only new events.
    let mut now = s.watch(b"", s.current_revision()).unwrap();
    s.create(k("/d"), b("8")).await.unwrap();
    assert_eq!(next_event(&mut now).await.revision(), 8);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), a_mid.next())
            .await
            .is_err(),
        "no events for other prefixes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_history_from_log_beyond_ring() {
    // Tiny ring: history must come from the RocksDB log, then switch to ring / live.
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(
        dir.path(),
        RocksOptions {
            watch_cache_events: 4,
            ..Default::default()
        },
    )
    .unwrap();
    for i in 0..3000 {
        s.create(format!("/k/{i}").into_bytes(), b("v"))
            .await
            .unwrap();
    }
    let mut w = s.watch(b"/k/", 0).unwrap();
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 3000..3500 {
                s.create(format!("/k/{i}").into_bytes(), b("v"))
                    .await
                    .unwrap();
            }
        })
    };
    for rev in 1..=3500 {
        assert_eq!(next_event(&mut w).await.revision(), rev);
    }
    writer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_watcher_sees_every_revision() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut w = s.watch(b"", 0).unwrap();
    let mut lagging = s.watch(b"", 0).unwrap();
    let writers = 32;
    let per = 100;
    let mut handles = Vec::new();
    for t in 0..writers {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per {
                let key = format!("/c/{t}/{i}").into_bytes();
                let kv = s.create(key.clone(), b("v")).await.unwrap();
                if i % 2 == 0 {
                    s.update(key, b("v2"), kv.mod_revision).await.unwrap();
                }
            }
        }));
    }
    let total = (writers * per + writers * per / 2) as Revision;
    for rev in 1..=total {
        assert_eq!(next_event(&mut w).await.revision(), rev);
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(s.current_revision(), total);
    // The lagging watcher (never polled until now) still gets everything in order.
    for rev in 1..=total {
        assert_eq!(next_event(&mut lagging).await.revision(), rev);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_small_ring() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(
        dir.path(),
        RocksOptions {
            watch_cache_events: 16,
            ..Default::default()
        },
    )
    .unwrap();
    let mut w = s.watch(b"/l/", 0).unwrap();
    let mut expected = 1;
    for round in 0..5 {
        let futs: Vec<_> = (0..200)
            .map(|i| s.create(format!("/l/{round}/{i}").into_bytes(), b("v")))
            .collect();
        for r in futures::future::join_all(futs).await {
            r.unwrap();
        }
        // Read only part of the backlog each round: the watcher keeps lagging.
        for _ in 0..100 {
            assert_eq!(next_event(&mut w).await.revision(), expected);
            expected += 1;
        }
    }
    while expected <= 1000 {
        assert_eq!(next_event(&mut w).await.revision(), expected);
        expected += 1;
    }
    // Compaction past a lagging watcher's position ends it with Compacted.
    let mut behind = s.watch(b"", 10).unwrap();
    s.compact(500).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), behind.next())
        .await
        .unwrap()
    {
        Some(Err(StoreError::Compacted { compacted, .. })) => assert_eq!(compacted, 500),
        other => panic!("unexpected {other:?}"),
    }
    assert!(behind.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_rejects_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut w = s.watch(b"", 0).unwrap();
    s.create(k("a"), b("1")).await.unwrap();
    s.close();
    assert!(matches!(
        s.create(k("b"), b("1")).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(s.compact(1).await, Err(StoreError::Closed)));
    assert!(matches!(s.watch(b"", 0), Err(StoreError::Closed)));
    assert_eq!(s.get(b"a").unwrap().unwrap().value, b("1"));
    assert_eq!(next_event(&mut w).await.revision(), 1);
    assert!(matches!(w.next().await, Some(Err(StoreError::Closed))));
    assert!(w.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dyn_store_usable() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn Store> = open(&dir);
    let kv = s.create(k("a"), b("1")).await.unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(kv));
}
