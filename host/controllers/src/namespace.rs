//! The namespace controller: a namespace being deleted is emptied — every namespaced object
//! in it is deleted, and the controller waits until all are gone (pods finish their grace
//! period on their node) — and then finalized, which lets the API server remove it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hortator_api::registry::{self, ResourceInfo};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::{Error, api_resource};

/// The finalizer the namespace controller owns.
const FINALIZER: &str = "kubernetes";

/// Run the namespace controller until the API goes away.
pub(crate) async fn run(client: kube::Client) {
    Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .run(reconcile, error_policy, Arc::new(client))
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::debug!(error = %e, "namespace reconcile");
        }
    })
    .await;
}

/// The namespaced resources whose objects a namespace holds (each storage once).
fn namespaced_resources() -> impl Iterator<Item = &'static ResourceInfo> {
    registry::RESOURCES
        .iter()
        .filter(|r| r.namespaced() && !r.legacy && r.verbs.contains(&"delete"))
}

#[tracing::instrument(name = "reconcile namespace", level = "debug", skip_all,
    fields(namespace = namespace.metadata.name.as_deref()))]
async fn reconcile(namespace: Arc<Namespace>, client: Arc<kube::Client>) -> Result<Action, Error> {
    let name = namespace.name_any();
    let finalizers = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if namespace.metadata.deletion_timestamp.is_none() || !finalizers.iter().any(|f| f == FINALIZER)
    {
        return Ok(Action::await_change());
    }
    let mut remaining = Vec::new();
    for info in namespaced_resources() {
        let resource = api_resource(info);
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.as_ref().clone(), &name, &resource);
        let list = api.list(&ListParams::default()).await?;
        if list.items.is_empty() {
            continue;
        }
        // Kubernetes' wording, "pods. has 2 resource instances" for the core group included.
        remaining.push(format!(
            "{}.{} has {} resource instances",
            info.plural,
            info.group,
            list.items.len()
        ));
        for object in list.items {
            if object.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let mut params = DeleteParams::background();
            params.preconditions = Some(kube::api::Preconditions {
                uid: object.metadata.uid.clone(),
                resource_version: None,
            });
            match api.delete(&object.name_any(), &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let namespaces: Api<Namespace> = Api::all(client.as_ref().clone());
    if !remaining.is_empty() {
        let message = format!("Some resources are remaining: {}", remaining.join(", "));
        let status = json!({"status": {"conditions": [{
            "type": "NamespaceContentRemaining", "status": "True",
            "reason": "SomeResourcesRemain", "message": message,
            "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        }]}});
        let current = namespace
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "NamespaceContentRemaining"))
            .and_then(|c| c.message.clone());
        if current.as_deref() != Some(message.as_str()) {
            namespaces
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(status))
                .await?;
        }
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let mut finalized = (*namespace).clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    match namespaces
        .replace_subresource("finalize", &name, &PostParams::default(), &finalized)
        .await
    {
        Ok(_) => tracing::info!(namespace = %name, "namespace emptied and finalized"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

fn error_policy(_namespace: Arc<Namespace>, error: &Error, _client: Arc<kube::Client>) -> Action {
    tracing::warn!(%error, "namespace deletion failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_namespaced_storage_is_emptied_once() {
        let plurals: Vec<_> = namespaced_resources().map(|r| r.plural).collect();
        for plural in [
            "pods",
            "services",
            "endpoints",
            "replicationcontrollers",
            "events",
            "configmaps",
            "secrets",
            "deployments",
            "replicasets",
            "leases",
        ] {
            assert_eq!(
                plurals.iter().filter(|p| **p == plural).count(),
                1,
                "{plural}"
            );
        }
        assert!(!plurals.contains(&"nodes"));
        assert!(!plurals.contains(&"namespaces"));
    }
}
