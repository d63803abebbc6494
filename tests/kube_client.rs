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

/// The managed-fields entries of `object`'s metadata whose manager is `manager`.
fn entries_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    manager: &str,
) -> Vec<serde_json::Value> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|e| e.manager.as_deref() == Some(manager))
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// The types of `pod`'s status conditions.
fn condition_types(pod: Pod) -> Vec<String> {
    pod.status
        .and_then(|status| status.conditions)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.type_)
        .collect()
}

/// Server-side apply through the `status` and `scale` subresources: each manager owns what it
/// applied there, in an entry naming the subresource, and conflicts name it.
#[tokio::test]
async fn server_side_apply_through_status_and_scale() {
    use k8s_openapi::api::apps::v1::Deployment;
    let c = Cluster::start();
    let client = client(&c).await;

    // Status: only the status is applied and owned, even when the configuration holds more.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("s1"))
        .await
        .unwrap();
    let status_config = |condition: &str, label: &str| {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "s1", "labels": {"applied": label}},
            "status": {"conditions": [{"type": condition, "status": "True"}]},
        })
    };
    let applied = pods
        .patch_status(
            "s1",
            &PatchParams::apply("gate-a"),
            &Patch::Apply(status_config("example.com/gate-a", "a")),
        )
        .await
        .unwrap();
    let conditions = applied.status.unwrap().conditions.unwrap_or_default();
    assert!(
        conditions.iter().any(|c| c.type_ == "example.com/gate-a"),
        "{conditions:?}"
    );
    assert!(
        !applied
            .metadata
            .labels
            .as_ref()
            .is_some_and(|labels| labels.contains_key("applied")),
        "a status apply changes nothing but the status"
    );
    let entries = entries_of(&applied.metadata, "gate-a");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["operation"], "Apply");
    assert_eq!(entries[0]["subresource"], "status");
    assert_eq!(
        entries[0]["fieldsV1"],
        serde_json::json!({"f:status": {"f:conditions": {
            "k:{\"type\":\"example.com/gate-a\"}": {".": {}, "f:status": {}, "f:type": {}}
        }}})
    );
    // Another manager's condition is another element: no conflict, both stay.
    let both = pods
        .patch_status(
            "s1",
            &PatchParams::apply("gate-b"),
            &Patch::Apply(status_config("example.com/gate-b", "b")),
        )
        .await
        .unwrap();
    let types = condition_types(both);
    assert!(
        types.contains(&"example.com/gate-a".to_owned())
            && types.contains(&"example.com/gate-b".to_owned()),
        "{types:?}"
    );
    // gate-a stops applying its condition: it goes, gate-b's stays.
    let config = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "s1"}});
    let left = pods
        .patch_status("s1", &PatchParams::apply("gate-a"), &Patch::Apply(config))
        .await
        .unwrap();
    let types = condition_types(left);
    assert!(
        !types.contains(&"example.com/gate-a".to_owned())
            && types.contains(&"example.com/gate-b".to_owned()),
        "{types:?}"
    );
    // Changing gate-b's condition conflicts with gate-b's status entry.
    let mut taken = status_config("example.com/gate-b", "b");
    taken["status"]["conditions"][0]["status"] = "False".into();
    match pods
        .patch_status("s1", &PatchParams::apply("gate-c"), &Patch::Apply(taken))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert!(
                status.message.contains(
                    r#"conflict with "gate-b" with subresource "status" using v1: .status.conditions[type="example.com/gate-b"].status"#
                ),
                "{}",
                status.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    // An apply through a subresource does not create the object.
    match pods
        .patch_status(
            "absent",
            &PatchParams::apply("gate-a"),
            &Patch::Apply(status_config("example.com/gate-a", "a")),
        )
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }

    // Scale: the applier owns the deployment's .spec.replicas through `scale`.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scaled"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "scaled"}},
            "template": {
                "metadata": {"labels": {"app": "scaled"}},
                "spec": {"schedulerName": "manual", "containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let scale_config = |replicas: i32| {
        serde_json::json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "scaled"},
            "spec": {"replicas": replicas},
        })
    };
    // The creator owns the replicas: as an autoscaler would, this applier takes them over.
    let scale = deployments
        .patch_scale(
            "scaled",
            &PatchParams::apply("autoscaler").force(),
            &Patch::Apply(scale_config(2)),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    let stored = deployments.get("scaled").await.unwrap();
    assert_eq!(stored.spec.unwrap().replicas, Some(2));
    let entries = entries_of(&stored.metadata, "autoscaler");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["operation"], "Apply");
    assert_eq!(entries[0]["subresource"], "scale");
    assert_eq!(entries[0]["apiVersion"], "apps/v1");
    assert_eq!(
        entries[0]["fieldsV1"],
        serde_json::json!({"f:spec": {"f:replicas": {}}})
    );
    // Another scale applier, and an apply of the deployment itself, conflict with it.
    let conflict =
        r#"conflict with "autoscaler" with subresource "scale" using apps/v1: .spec.replicas"#;
    for result in [
        deployments
            .patch_scale(
                "scaled",
                &PatchParams::apply("other-scaler"),
                &Patch::Apply(scale_config(3)),
            )
            .await
            .map(|_| ()),
        deployments
            .patch(
                "scaled",
                &PatchParams::apply("deployer"),
                &Patch::Apply(serde_json::json!({
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "scaled"},
                    "spec": {"replicas": 4},
                })),
            )
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 409);
                assert!(status.message.contains(conflict), "{}", status.message);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    // Forced, the other scaler takes the field over.
    deployments
        .patch_scale(
            "scaled",
            &PatchParams::apply("other-scaler").force(),
            &Patch::Apply(scale_config(3)),
        )
        .await
        .unwrap();
    let stored = deployments.get("scaled").await.unwrap();
    assert_eq!(stored.spec.unwrap().replicas, Some(3));
    assert!(entries_of(&stored.metadata, "autoscaler").is_empty());
    assert_eq!(entries_of(&stored.metadata, "other-scaler").len(), 1);
}
