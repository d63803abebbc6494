//! Store benchmark: after `cargo build --release --workspace --all-targets`, run `$CARGO_TARGET_DIR/release/examples/store_bench <dir>`.
//!
//! Measures durable create throughput (64 concurrent writers), create latency at a fixed
//! 1,000/s rate, a 100,000-key range (1.5 KB values) and watch delivery latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use hortator_store::{RangeRequest, RocksOptions, RocksStore, Store};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/var/tmp/hortator-store-bench".into());
    let base = std::path::PathBuf::from(base);
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let store = RocksStore::open(&base.join("db"), RocksOptions::default()).unwrap();
    let value = Bytes::from(vec![b'v'; 1536]);

    // 1. Durable create throughput, 64 concurrent writers.
    let writers = 64;
    let total = 50_000;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < total {
                store
                    .create(format!("/tp/{i:08}").into_bytes(), value.clone())
                    .await
                    .unwrap();
                i += writers;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let el = start.elapsed();
    println!(
        "create_throughput_64_writers: {total} creates in {:.3}s = {:.0} writes/s (durable, sync=true)",
        el.as_secs_f64(),
        total as f64 / el.as_secs_f64()
    );

    // 2. Create latency at a fixed 1,000/s rate for 5 s.
    let rate = 1000u64;
    let n = 5 * rate;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let at = start + Duration::from_micros(i * 1_000_000 / rate);
        tokio::time::sleep_until(at.into()).await;
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            store
                .create(format!("/lat/{i:08}").into_bytes(), value)
                .await
                .unwrap();
            t0.elapsed()
        }));
    }
    let mut lats = Vec::new();
    for t in tasks {
        lats.push(t.await.unwrap());
    }
    lats.sort();
    println!(
        "create_latency_at_1000_per_s: n={} p50={} p99={} max={}",
        lats.len(),
        ms(pct(&lats, 0.5)),
        ms(pct(&lats, 0.99)),
        ms(*lats.last().unwrap())
    );

    // 3. Range of 100,000 keys with 1.5 KB values (50k from step 1 + 50k more).
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = total + w;
            while i < 100_000 {
                store
                    .create(format!("/tp/{i:08}").into_bytes(), value.clone())
                    .await
                    .unwrap();
                i += writers;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for round in 0..3 {
        let start = Instant::now();
        let r = store
            .range(RangeRequest {
                prefix: b"/tp/".to_vec(),
                ..Default::default()
            })
            .unwrap();
        let el = start.elapsed();
        assert_eq!(r.kvs.len(), 100_000);
        println!("range_100k_keys_1.5KB (run {}): {}", round + 1, ms(el));
    }
    let start = Instant::now();
    let c = store.count(b"/tp/").unwrap();
    println!("count_100k_keys: {} ({c} keys)", ms(start.elapsed()));

    // 4. Watch delivery latency: write -> event received, at ~1,000 writes/s.
    let mut watch = store.watch(b"/wl/", store.current_revision()).unwrap();
    let n = 3000u64;
    let sent: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; n as usize]));
    let writer = {
        let store = store.clone();
        let value = value.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for i in 0..n {
                tokio::time::sleep_until((start + Duration::from_millis(i)).into()).await;
                let store = store.clone();
                let value = value.clone();
                let sent = sent.clone();
                tasks.push(tokio::spawn(async move {
                    sent.lock().unwrap()[i as usize] = Some(Instant::now());
                    store
                        .create(format!("/wl/{i:08}").into_bytes(), value)
                        .await
                        .unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    let mut lats = Vec::new();
    for _ in 0..n {
        let ev = watch.next().await.unwrap().unwrap();
        let now = Instant::now();
        let key = String::from_utf8(ev.kv.key).unwrap();
        let i: usize = key.trim_start_matches("/wl/").parse().unwrap();
        if let Some(t0) = sent.lock().unwrap()[i] {
            lats.push(now - t0);
        }
    }
    writer.await.unwrap();
    lats.sort();
    println!(
        "watch_delivery_latency (write submit -> event): n={} p50={} p99={}",
        lats.len(),
        ms(pct(&lats, 0.5)),
        ms(pct(&lats, 0.99))
    );
    store.close();
}
