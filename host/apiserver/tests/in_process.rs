//! kube-rs talking to the router in process (`kube::Client::new(router, ..)`, no socket): the
//! transport `hortator up` gives its own components.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use hortator_apiserver::{ApiServer, ApiServerConfig};
use hortator_store::{RocksOptions, RocksStore, Store};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

#[tokio::test]
async fn kube_client_over_the_router_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
    let api = ApiServer::start(store as Arc<dyn Store>, ApiServerConfig::default())
        .await
        .unwrap();
    let client = kube::Client::new(api.router(), "default");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_string()), "{names:?}");

    let services: Api<Service> = Api::default_namespaced(client);
    let mut watch = services
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], "type": "NodePort"},
    }))
    .unwrap();
    let created = services.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.254.0.1"));
    let node_port = spec.ports.unwrap()[0].node_port.unwrap();
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    match tokio::time::timeout(std::time::Duration::from_secs(10), watch.try_next()).await {
        Ok(Ok(Some(WatchEvent::Added(s)))) => assert_eq!(s.metadata.name.as_deref(), Some("web")),
        other => panic!("expected ADDED, got {other:?}"),
    }

    // A long generateName is cut to 58 characters, as kube-apiserver does: a 60-character
    // prefix is a valid namespace name, 65 characters with the suffix would not be.
    let prefix = "a".repeat(60);
    let mut generated = Namespace::default();
    generated.metadata.generate_name = Some(prefix.clone());
    let generated = namespaces
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert_eq!(name.len(), 63, "{name}");
    assert!(name.starts_with(&prefix[..58]), "{name}");
    api.shutdown();
}
