//! Crash recovery: every write acknowledged before a SIGKILL survives.
//!
//! `crash_recovery` re-executes this test binary running only `crash_child_writer` with
//! `HORTATOR_STORE_CRASH_CHILD=<dir>` set; the child writes concurrently and prints each
//! acknowledged key. The parent kills it with SIGKILL after ~1 s and checks the store.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hortator_store::{RocksOptions, RocksStore, Store};

const CHILD_ENV: &str = "HORTATOR_STORE_CRASH_CHILD";

#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only does something when spawned by `crash_recovery`.
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = RocksStore::open(std::path::Path::new(&dir), RocksOptions::default()).unwrap();
        let out = Arc::new(Mutex::new(std::io::stdout()));
        println!("READY");
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = store.clone();
            let out = out.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let key = format!("/crash/{t}/{i}");
                    let kv = store
                        .create(key.clone().into_bytes(), Bytes::from(vec![b'x'; 256]))
                        .await
                        .unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ACK {key} {}", kv.mod_revision).unwrap();
                    o.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn crash_recovery() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acked = Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
    let reader = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ACK ") {
                    let mut parts = rest.split(' ');
                    if let (Some(k), Some(Ok(rev))) =
                        (parts.next(), parts.next().map(str::parse::<i64>))
                    {
                        acked.lock().unwrap().push((k.to_string(), rev));
                    }
                }
            }
        })
    };
    // Wait until the child is writing, then let it run for ~1 s.
    let start = std::time::Instant::now();
    while acked.lock().unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child never wrote"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs(1));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "too few acknowledged writes: {}",
        acked.len()
    );
    let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
    let max_acked = acked.iter().map(|(_, r)| *r).max().unwrap();
    assert!(store.current_revision() >= max_acked);
    for (key, rev) in &acked {
        let kv = store
            .get(key.as_bytes())
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged key {key} lost"));
        assert_eq!(kv.mod_revision, *rev);
    }
    // History is intact and gap-free after the crash.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let current = store.current_revision();
    rt.block_on(async {
        let mut w = store.watch(b"", 0).unwrap();
        for rev in 1..=current {
            let ev = w.next().await.unwrap().unwrap();
            assert_eq!(ev.kv.mod_revision, rev);
        }
    });
    eprintln!(
        "crash test: {} acknowledged writes, recovered revision {current}",
        acked.len()
    );
}
