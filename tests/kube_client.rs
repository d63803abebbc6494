//! kube-rs (a client we did not write) against `hortator up`: CRUD, watch, conflicts.

use futures::{StreamExt, TryStreamExt};
use hortator_tests::Cluster;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};

async fn client(c: &Cluster) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(&c.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "kube-rs"}},
        // No scheduler serves "manual": its status writes would add watch
        // events to the exact sequences asserted here.
        "spec": {"schedulerName": "manual", "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap()
}

#[tokio::test]
async fn crud_conflict_and_watch() {
    let c = Cluster::start();
    let client = client(&c).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let mut watch = pods
        .watch(&WatchParams::default().labels("app=kube-rs"), "0")
        .await
        .unwrap()
        .boxed();

    let created = pods
        .create(&PostParams::default(), &pod("p1"))
        .await
        .unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    let got = pods.get("p1").await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);

    // Update with the current resourceVersion succeeds; with the stale one, 409.
    let mut fresh = got.clone();
    fresh
        .metadata
        .labels
        .get_or_insert_default()
        .insert("v".into(), "2".into());
    let updated = pods
        .replace("p1", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    let mut stale = got.clone();
    stale
        .metadata
        .labels
        .get_or_insert_default()
        .insert("v".into(), "3".into());
    match pods.replace("p1", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    // Patches: merge and JSON patch.
    let patched = pods
        .patch(
            "p1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.annotations.unwrap()["a"], "b");

    let list = pods
        .list(&ListParams::default().labels("app=kube-rs"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    pods.create(&PostParams::default(), &pod("p2"))
        .await
        .unwrap();
    let page = pods.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.clone().expect("continue token");
    let next = pods
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(next.items.len(), 1);
    assert_ne!(next.items[0].metadata.name, page.items[0].metadata.name);
    assert!(next.metadata.continue_.as_deref().unwrap_or("").is_empty());

    pods.delete("p1", &DeleteParams::default()).await.unwrap();
    match pods.get("p1").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }

    let mut kinds = Vec::new();
    while kinds.len() < 5 {
        match tokio::time::timeout(std::time::Duration::from_secs(10), watch.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(p)))) => {
                kinds.push(format!("ADDED {}", p.metadata.name.unwrap()))
            }
            Ok(Ok(Some(WatchEvent::Modified(p)))) => {
                kinds.push(format!("MODIFIED {}", p.metadata.name.unwrap()))
            }
            Ok(Ok(Some(WatchEvent::Deleted(p)))) => {
                kinds.push(format!("DELETED {}", p.metadata.name.unwrap()))
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("watch ended early: {other:?}, seen {kinds:?}"),
        }
    }
    assert_eq!(
        kinds,
        [
            "ADDED p1",
            "MODIFIED p1",
            "MODIFIED p1",
            "ADDED p2",
            "DELETED p1"
        ]
    );
}

/// The first event of a watch on `api` from `rv`.
async fn first_event(api: &Api<ConfigMap>, rv: &str) -> Option<WatchEvent<ConfigMap>> {
    let mut w = api
        .watch(&WatchParams::default(), rv)
        .await
        .unwrap()
        .boxed();
    tokio::time::timeout(std::time::Duration::from_secs(10), w.try_next())
        .await
        .expect("a watch event within 10 s")
        .expect("watch stream error")
}

#[tokio::test]
async fn watch_from_old_revision_and_expired() {
    let c = Cluster::start_with_config("[store]\ncompaction-interval-seconds = 1\n");
    let client = client(&c).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("one".into());
    let first = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv = first.metadata.resource_version.unwrap();
    cm.metadata.name = Some("two".into());
    cms.create(&PostParams::default(), &cm).await.unwrap();
    // Resuming from the first write's revision delivers exactly what came after it.
    match first_event(&cms, &rv).await {
        Some(WatchEvent::Added(c)) => assert_eq!(c.metadata.name.as_deref(), Some("two")),
        other => panic!("unexpected {other:?}"),
    }
    // Once history is compacted (every second here), a watch from the first revision is
    // answered 410 Expired. Writes keep the revision moving until the compactor passes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        cm.metadata.name = None;
        cm.metadata.generate_name = Some("tick-".into());
        cms.create(&PostParams::default(), &cm).await.unwrap();
        match first_event(&cms, &rv).await {
            Some(WatchEvent::Error(status)) => break status,
            other => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no 410 within 60 s, last {other:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    };
    assert_eq!(status.code, 410);
    assert_eq!(status.reason, "Expired");
    // deletecollection by label.
    let mut labelled = ConfigMap::default();
    for name in ["l1", "l2"] {
        labelled.metadata.name = Some(name.into());
        labelled.metadata.labels = Some([("group".to_string(), "x".to_string())].into());
        cms.create(&PostParams::default(), &labelled).await.unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("group=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(!left.iter().any(|n| n.starts_with('l')), "{left:?}");
}

#[tokio::test]
async fn streaming_list_ends_initial_events_with_a_bookmark() {
    let c = Cluster::start();
    let client = client(&c).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for name in ["a", "b"] {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut w = cms
        .watch(&WatchParams::streaming_lists(), "0")
        .await
        .unwrap()
        .boxed();
    let mut added = Vec::new();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), w.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(cm)))) => added.push(cm.metadata.name.unwrap()),
            Ok(Ok(Some(WatchEvent::Bookmark(b)))) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?} after {added:?}"),
        }
    }
    added.sort();
    assert_eq!(added, ["a", "b"]);
}
