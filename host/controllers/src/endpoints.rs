//! The endpoints controller: for every service with a selector, an Endpoints object of the
//! same name listing the matching pods' addresses — ready ones in `addresses`, the others in
//! `notReadyAddresses` — with each service port resolved to the pod's target port.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hortator_api::selector::LabelSelector;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use crate::Error;

struct Context {
    client: kube::Client,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

/// Run the endpoints controller until the API goes away.
pub(crate) async fn run(client: kube::Client) {
    let (pods, pod_writer) = reflector::store();
    let pod_events = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let (endpoints, endpoints_writer) = reflector::store();
    let endpoints_events = reflector::reflector(
        endpoints_writer,
        watcher(
            Api::<Endpoints>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    tokio::spawn(delete_endpoints_of_deleted_services(client.clone()));
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = controller.store();
    let context = Arc::new(Context {
        client,
        pods: pods.clone(),
        endpoints: endpoints.clone(),
    });
    let services_of_pod = {
        let services = services.clone();
        let endpoints = endpoints.clone();
        move |pod: Pod| affected_services(&services, &endpoints, &pod)
    };
    controller
        .watches_stream(pod_events, services_of_pod)
        .watches_stream(endpoints_events, |endpoints: Endpoints| {
            Some(
                ObjectRef::<Service>::new(&endpoints.name_any())
                    .within(endpoints.metadata.namespace.as_deref().unwrap_or_default()),
            )
        })
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "endpoints reconcile");
            }
        })
        .await;
}

/// The services a pod change can affect: those that select it now and those whose endpoints
/// list it (it may have stopped matching).
fn affected_services(
    services: &Store<Service>,
    endpoints: &Store<Endpoints>,
    pod: &Pod,
) -> Vec<ObjectRef<Service>> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut affected = BTreeSet::new();
    for service in services.state() {
        if service.metadata.namespace.as_deref() != Some(&namespace) {
            continue;
        }
        if let Some(selector) = selector(&service)
            && selector.matches(pod.labels())
        {
            affected.insert(service.name_any());
        }
    }
    for endpoints in endpoints.state() {
        if endpoints.metadata.namespace.as_deref() == Some(&namespace)
            && lists_pod(&endpoints, &uid)
        {
            affected.insert(endpoints.name_any());
        }
    }
    affected
        .into_iter()
        .map(|name| ObjectRef::new(&name).within(&namespace))
        .collect()
}

fn lists_pod(endpoints: &Endpoints, uid: &str) -> bool {
    endpoints.subsets.iter().flatten().any(|subset| {
        subset
            .addresses
            .iter()
            .chain(subset.not_ready_addresses.iter())
            .flatten()
            .any(|a| a.target_ref.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid))
    })
}

/// The service's pod selector; `None` for services without one (their endpoints are
/// managed by hand) and for ExternalName services.
fn selector(service: &Service) -> Option<LabelSelector> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let map = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    Some(LabelSelector::from_map(map))
}

#[tracing::instrument(name = "reconcile endpoints", level = "debug", skip_all,
    fields(namespace = service.metadata.namespace.as_deref(), name = service.metadata.name.as_deref()))]
async fn reconcile(service: Arc<Service>, context: Arc<Context>) -> Result<Action, Error> {
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.name_any();
    let Some(selector) = selector(&service) else {
        return Ok(Action::await_change());
    };
    if service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let pods: Vec<Arc<Pod>> = context
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(&namespace))
        .filter(|p| selector.matches(p.labels()))
        .collect();
    let subsets = subsets(&service, &pods);
    let labels = service.metadata.labels.clone().filter(|l| !l.is_empty());
    let current = context
        .endpoints
        .get(&ObjectRef::new(&name).within(&namespace));
    if let Some(current) = &current
        && current.subsets.clone().unwrap_or_default() == subsets
        && current.metadata.labels.clone().filter(|l| !l.is_empty()) == labels
    {
        return Ok(Action::await_change());
    }
    let api: Api<Endpoints> = Api::namespaced(context.client.clone(), &namespace);
    let mut desired = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels,
            ..ObjectMeta::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    };
    match current {
        Some(current) => {
            desired.metadata.resource_version = current.metadata.resource_version.clone();
            desired.metadata.annotations = current.metadata.annotations.clone();
            api.replace(&name, &PostParams::default(), &desired).await?;
        }
        None => match api.create(&PostParams::default(), &desired).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // Created meanwhile (the store lags): update it on the next pass.
                return Ok(Action::requeue(Duration::from_millis(200)));
            }
            Err(e) => return Err(e.into()),
        },
    }
    tracing::debug!(%namespace, %name, "endpoints updated");
    Ok(Action::await_change())
}

fn error_policy(_service: Arc<Service>, error: &Error, _context: Arc<Context>) -> Action {
    tracing::debug!(%error, "endpoints update failed; retrying");
    Action::requeue(Duration::from_secs(1))
}

/// The endpoint subsets of `service` over `pods` (those matching its selector): addresses
/// grouped by the set of ports they resolve to, sorted so that equal inputs give equal output.
fn subsets(service: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.unwrap_or_default();
    type PortKey = Vec<(String, i32, String)>;
    let mut groups: BTreeMap<PortKey, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for pod in pods {
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty())
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() && !publish_not_ready {
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let ports: PortKey = service_ports
            .iter()
            .filter_map(|port| {
                let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
                let target = target_port(pod, port.target_port.as_ref(), port.port, &protocol)?;
                Some((port.name.clone().unwrap_or_default(), target, protocol))
            })
            .collect();
        if ports.is_empty() && !service_ports.is_empty() {
            continue;
        }
        let address = EndpointAddress {
            ip,
            hostname: pod
                .spec
                .as_ref()
                .and_then(|s| s.hostname.clone())
                .filter(|_| {
                    pod.spec.as_ref().and_then(|s| s.subdomain.as_deref())
                        == Some(&service.name_any())
                }),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            }),
        };
        let group = groups.entry(ports).or_default();
        if is_ready(pod) || publish_not_ready {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name: (!name.is_empty()).then_some(name),
                            port,
                            protocol: Some(protocol),
                            app_protocol: None,
                        })
                        .collect()
                }),
            }
        })
        .collect()
}

/// The pod port a service port sends to: a number as is, a name looked up among the pod's
/// container ports (`None` if the pod has no such port), no target port means `port`.
fn target_port(pod: &Pod, target: Option<&IntOrString>, port: i32, protocol: &str) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => match name.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => pod.spec.as_ref()?.containers.iter().find_map(|c| {
                c.ports.iter().flatten().find_map(|p| {
                    (p.name.as_deref() == Some(name)
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(p.container_port)
                })
            }),
        },
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Services are not reconciled once gone: their Endpoints are deleted here.
async fn delete_endpoints_of_deleted_services(client: kube::Client) {
    let mut events = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    while let Some(event) = events.next().await {
        let Ok(watcher::Event::Delete(service)) = event else {
            continue;
        };
        if selector(&service).is_none() {
            continue;
        }
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.name_any();
        let api: Api<Endpoints> = Api::namespaced(client.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracing::debug!(%namespace, %name, "endpoints of a deleted service removed"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => tracing::warn!(%namespace, %name, error = %e, "cannot delete endpoints"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                             "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i",
                         "ports": [{"name": port_name, "containerPort": 8080}]}]},
                "status": {"phase": "Running", "podIP": ip,
                           "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .unwrap(),
        )
    }

    fn service(target: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"port": 80, "targetPort": target, "protocol": "TCP"}]}
        }))
        .unwrap()
    }

    #[test]
    fn ready_and_not_ready_pods_go_to_their_lists_sorted() {
        let pods = [
            pod("b", "10.0.0.3", true, "http"),
            pod("a", "10.0.0.2", true, "http"),
            pod("c", "10.0.0.4", false, "http"),
        ];
        let subsets = subsets(&service(json!(8080)), &pods);
        assert_eq!(subsets.len(), 1);
        let ready: Vec<_> = subsets[0]
            .addresses
            .iter()
            .flatten()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(ready, ["10.0.0.2", "10.0.0.3"]);
        let not_ready: Vec<_> = subsets[0]
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(not_ready, ["10.0.0.4"]);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
        let target = subsets[0].addresses.as_ref().unwrap()[0]
            .target_ref
            .as_ref()
            .unwrap();
        assert_eq!(target.uid.as_deref(), Some("uid-a"));
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_pods_without_them_are_left_out() {
        let pods = [
            pod("a", "10.0.0.2", true, "http"),
            pod("b", "10.0.0.3", true, "other"),
        ];
        let subsets = subsets(&service(json!("http")), &pods);
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().unwrap()[0].ip, "10.0.0.2");
    }

    #[test]
    fn pods_without_address_terminating_or_finished_are_left_out() {
        let mut no_ip = (*pod("a", "", true, "http")).clone();
        no_ip.status.as_mut().unwrap().pod_ip = None;
        let mut deleting = (*pod("b", "10.0.0.3", true, "http")).clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        let mut done = (*pod("c", "10.0.0.4", false, "http")).clone();
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let pods = [Arc::new(no_ip), Arc::new(deleting), Arc::new(done)];
        assert!(subsets(&service(json!(8080)), &pods).is_empty());
    }

    #[test]
    fn services_without_selector_are_not_managed() {
        let mut s = service(json!(80));
        s.spec.as_mut().unwrap().selector = None;
        assert!(selector(&s).is_none());
    }
}
