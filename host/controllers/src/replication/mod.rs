//! ReplicationControllers (core/v1) and ReplicaSets (apps/v1), one implementation generic over
//! [`Replicated`]: each controller keeps `spec.replicas` active pods made from its template,
//! adopts matching orphans, releases pods whose labels stopped matching and reports its
//! status through `/status` (Kubernetes' `ReplicaSetController`).
//!
//! Two reflectors feed one [`applier`]: the controllers themselves, and all pods, each pod
//! event mapped to its controller (by controller ownerReference, or for an orphan to every
//! controller whose selector matches). [`Expectations`] keep a controller from creating or
//! deleting again before its previous writes show up in the pod cache.

mod expectations;
mod pods;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{StreamExt, future};
use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{self, Action, ReconcileRequest, trigger_with};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, applier, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::Instrument;

use hortator_api::selector::LabelSelector;
use hortator_events::Recorder;

use expectations::{Expectations, Seen};
use status::{Failure, Inputs, ReplicaStatus};

/// Most pods created or deleted by one reconcile (Kubernetes' `BurstReplicas`).
const BURST: usize = 500;
/// Resync period: every controller is reconciled at least this often.
const RESYNC: Duration = Duration::from_secs(300);
/// First retry delay after a failed reconcile; doubles with each further failure.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Run the ReplicationController controller until the task is aborted.
pub(crate) async fn run_replication_controllers(client: Client) {
    run::<ReplicationController>(client).await;
}

/// Run the ReplicaSet controller until the task is aborted.
pub(crate) async fn run_replica_sets(client: Client) {
    run::<ReplicaSet>(client).await;
}

/// A kind that keeps N pods from a template: ReplicationController or ReplicaSet.
pub(crate) trait Replicated:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The component name in events and logs.
    const COMPONENT: &'static str;

    /// The pod selector, or why it cannot be used.
    fn selector(&self) -> Result<LabelSelector, String>;
    /// `spec.replicas` (default 1).
    fn replicas(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// `spec.template`.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The stored status.
    fn replica_status(&self) -> ReplicaStatus;
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";

    fn selector(&self) -> Result<LabelSelector, String> {
        let spec = self.spec.as_ref();
        // An empty selector defaults to the template's labels.
        let selector = spec
            .and_then(|s| s.selector.as_ref())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                spec.and_then(|s| s.template.as_ref())
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.as_ref())
            })
            .filter(|s| !s.is_empty())
            .ok_or("the selector is empty")?;
        Ok(LabelSelector::from_map(selector))
    }

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn replica_status(&self) -> ReplicaStatus {
        ReplicaStatus::from(self.status.as_ref())
    }
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";

    fn selector(&self) -> Result<LabelSelector, String> {
        let spec = self.spec.as_ref().ok_or("the spec is missing")?;
        let selector =
            LabelSelector::from_label_selector(&spec.selector).map_err(|e| e.to_string())?;
        if selector.is_empty() {
            return Err("the selector is empty".into());
        }
        Ok(selector)
    }

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn replica_status(&self) -> ReplicaStatus {
        ReplicaStatus::from(self.status.as_ref())
    }
}

/// Why a reconcile failed; it is retried with a back-off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The object lacks a name, namespace or UID (never the case for stored objects).
    #[error("the object has no {0}")]
    Incomplete(&'static str),
    /// The selector cannot be used.
    #[error("invalid selector: {0}")]
    InvalidSelector(String),
    /// The pod cache is gone (the controller is shutting down).
    #[error("the pod cache was dropped")]
    CacheDropped,
    /// The controller may not adopt: it changed or is being deleted.
    #[error("cannot adopt pods: {0}")]
    CannotAdopt(String),
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was attempted.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Creating or deleting pods failed (also reported as a `ReplicaFailure` condition).
    #[error("{0}")]
    Replicas(String),
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Api {
        action: action.into(),
        source,
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The message of an API error, as Kubernetes reports it in events and conditions.
fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Shared state of one controller kind.
struct Ctx<K: Replicated> {
    client: Client,
    pods: Store<Pod>,
    controllers: Store<K>,
    expectations: Expectations,
    /// Consecutive failures per controller, for the back-off.
    failures: Mutex<HashMap<ObjectRef<K>, u32>>,
    events: Recorder,
}

impl<K: Replicated> Ctx<K> {
    /// The controllers to reconcile after an event about `pod`.
    fn controllers_of(&self, pod: &Pod) -> Vec<ObjectRef<K>> {
        let Some(namespace) = pod.metadata.namespace.as_deref() else {
            return Vec::new();
        };
        if let Some(owner) = pods::controller_of(pod) {
            let ours = owner.kind == K::kind(&())
                && api_group(&owner.api_version) == api_group(&K::api_version(&()));
            return if ours {
                vec![ObjectRef::new(&owner.name).within(namespace)]
            } else {
                Vec::new()
            };
        }
        let labels = pod.labels();
        self.controllers
            .state()
            .iter()
            .filter(|c| c.namespace().as_deref() == Some(namespace))
            .filter(|c| c.selector().is_ok_and(|s| s.matches(labels)))
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect()
    }

    /// Reconcile requests for one pod watch event.
    fn pod_event(&self, event: watcher::Event<Pod>) -> Vec<ReconcileRequest<K>> {
        let refs = match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                self.expectations.observe(&pod, false);
                self.controllers_of(&pod)
            }
            watcher::Event::Delete(pod) => {
                self.expectations.observe(&pod, true);
                self.controllers_of(&pod)
            }
            // After a re-list, pods may have vanished without a Delete: look at everyone.
            watcher::Event::InitDone => self
                .controllers
                .state()
                .iter()
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect(),
            watcher::Event::Init => Vec::new(),
        };
        refs.into_iter().map(Into::into).collect()
    }

    /// Reconcile requests for one watch event about a controller.
    fn own_event(&self, event: watcher::Event<K>) -> Option<ReconcileRequest<K>> {
        match event {
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                Some(ObjectRef::from_obj(&obj).into())
            }
            watcher::Event::Delete(obj) => {
                if let Some(uid) = obj.uid() {
                    self.expectations.forget(&uid);
                }
                self.failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&ObjectRef::from_obj(&obj));
                None
            }
            watcher::Event::Init | watcher::Event::InitDone => None,
        }
    }

    /// What the pod cache shows of pod `name` with `uid` in `namespace`.
    fn seen(&self, namespace: &str, name: &str, uid: &str) -> Seen {
        match self.pods.get(&ObjectRef::new(name).within(namespace)) {
            Some(pod) if pod.metadata.uid.as_deref() == Some(uid) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    Seen::Deleting
                } else {
                    Seen::Present
                }
            }
            _ => Seen::Absent,
        }
    }
}

/// `apps/v1` → `apps`, `v1` → ``.
fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

async fn run<K: Replicated>(client: Client) {
    let (controllers, controllers_writer) = kube::runtime::reflector::store::<K>();
    let (pods, pods_writer) = kube::runtime::reflector::store::<Pod>();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pods,
        controllers: controllers.clone(),
        expectations: Expectations::default(),
        failures: Mutex::new(HashMap::new()),
        events: Recorder::spawn(client.clone(), K::COMPONENT, None),
    });
    let own = reflector(
        controllers_writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    let own = trigger_with(own, {
        let ctx = ctx.clone();
        move |event| ctx.own_event(event)
    });
    let related = reflector(
        pods_writer,
        watcher(Api::<Pod>::all(client), watcher::Config::default()).default_backoff(),
    );
    let related = trigger_with(related, {
        let ctx = ctx.clone();
        move |event| ctx.pod_event(event)
    });
    let queue = futures::stream::select(own, related);
    applier(
        |obj, ctx| Box::pin(reconcile(obj, ctx)),
        error_policy,
        ctx,
        controllers,
        queue,
        controller::Config::default(),
    )
    .for_each(|result| async move {
        match result {
            Ok(_) | Err(controller::Error::ObjectNotFound(_)) => {}
            // Logged by the error policy.
            Err(controller::Error::ReconcilerFailed(..)) => {}
            Err(e) => tracing::warn!(kind = %K::kind(&()), error = %e, "controller"),
        }
    })
    .await;
}

fn error_policy<K: Replicated>(obj: Arc<K>, error: &Error, ctx: Arc<Ctx<K>>) -> Action {
    let failures = {
        let mut failures = ctx.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures
            .entry(ObjectRef::from_obj(obj.as_ref()))
            .or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(failures);
    tracing::warn!(
        kind = %K::kind(&()),
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        %error,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// The retry delay after `failures` consecutive failures.
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_MAX)
}

async fn reconcile<K: Replicated>(obj: Arc<K>, ctx: Arc<Ctx<K>>) -> Result<Action, Error> {
    let span = tracing::info_span!(
        "reconcile",
        kind = %K::kind(&()),
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
    );
    let action = sync(obj.as_ref(), ctx.as_ref()).instrument(span).await?;
    ctx.failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&ObjectRef::from_obj(obj.as_ref()));
    Ok(action)
}

/// One idempotent pass over a controller: claim its pods, create or delete to reach the
/// wanted count (unless earlier writes are still unobserved), write the status if changed.
async fn sync<K: Replicated>(obj: &K, ctx: &Ctx<K>) -> Result<Action, Error> {
    let namespace = obj.namespace().ok_or(Error::Incomplete("namespace"))?;
    let uid = obj.uid().ok_or(Error::Incomplete("uid"))?;
    let selector = obj.selector().map_err(Error::InvalidSelector)?;
    ctx.pods
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheDropped)?;

    let candidates = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .collect();
    let owned = claim(obj, &uid, &selector, candidates, ctx).await?;
    let active: Vec<&Pod> = owned
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| pods::is_active(p))
        .collect();

    let mut requeue = RESYNC;
    let outcome = match ctx
        .expectations
        .satisfied(&uid, |name, pod_uid| ctx.seen(&namespace, name, pod_uid))
    {
        Ok(()) if obj.meta().deletion_timestamp.is_none() => {
            manage(obj, &uid, &namespace, &active, ctx).await
        }
        Ok(()) => Ok(()),
        Err(left) => {
            tracing::debug!(?left, "waiting for earlier pod changes to be observed");
            requeue = requeue.min(left);
            Ok(())
        }
    };

    let now = Timestamp::now();
    let no_labels = BTreeMap::new();
    let template_labels = obj
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .unwrap_or(&no_labels);
    let current = obj.replica_status();
    let wanted = current.calculate(
        &active,
        Inputs {
            template_labels,
            min_ready_seconds: obj.min_ready_seconds(),
            generation: obj.meta().generation.unwrap_or(0),
            failure: outcome.as_ref().err().cloned(),
            now,
        },
    );
    if wanted != current {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
        match api
            .patch_status(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(wanted.patch()),
            )
            .await
        {
            Ok(_) => {}
            // Deleted meanwhile: nothing left to report on.
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(api_error("update status")(e)),
        }
    }
    if let Err(failure) = outcome {
        return Err(Error::Replicas(failure.message));
    }

    // Pods ready but not yet available for minReadySeconds: look again when they are.
    let min_ready = obj.min_ready_seconds();
    if let Some(next) = active
        .iter()
        .filter_map(|p| pods::available_at(p, min_ready))
        .filter(|at| *at > now)
        .min()
    {
        let wait = now.duration_until(next).unsigned_abs();
        requeue = requeue.min(wait + Duration::from_millis(100));
    }
    Ok(Action::requeue(requeue))
}

/// Kubernetes' `ClaimPods`: the pods the controller owns after adopting matching orphans and
/// releasing owned pods that no longer match.
async fn claim<K: Replicated>(
    obj: &K,
    uid: &str,
    selector: &LabelSelector,
    candidates: Vec<Arc<Pod>>,
    ctx: &Ctx<K>,
) -> Result<Vec<Arc<Pod>>, Error> {
    let deleting = obj.meta().deletion_timestamp.is_some();
    let mut owned = Vec::new();
    let mut orphans = Vec::new();
    let mut strays = Vec::new();
    for pod in candidates {
        let matches = selector.matches(pod.labels());
        match pods::controller_of(&pod) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if !deleting {
                    strays.push(pod);
                }
            }
            Some(_) => {}
            None => {
                if matches && !deleting && pod.metadata.deletion_timestamp.is_none() {
                    orphans.push(pod);
                }
            }
        }
    }
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    if !orphans.is_empty() {
        can_adopt(obj, uid, ctx).await?;
        let owner = owner_reference(obj, uid);
        for pod in orphans {
            let name = pod.name_any();
            let patch = json!({"metadata": {
                "ownerReferences": [owner],
                "uid": pod.metadata.uid,
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(adopted) => {
                    tracing::info!(pod = %name, "adopted");
                    owned.push(Arc::new(adopted));
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api_error(format!("adopt pod {name}"))(e)),
            }
        }
    }
    for pod in strays {
        let name = pod.name_any();
        let patch = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": uid}],
            "uid": pod.metadata.uid,
        }});
        match api
            .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => tracing::info!(pod = %name, "released"),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(format!("release pod {name}"))(e)),
        }
    }
    Ok(owned)
}

/// Before adopting, check with the API (not the cache) that the controller is still the same
/// object and is not being deleted.
async fn can_adopt<K: Replicated>(obj: &K, uid: &str, ctx: &Ctx<K>) -> Result<(), Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let name = obj.name_any();
    let fresh = match api.get_opt(&name).await {
        Ok(fresh) => fresh,
        Err(e) => return Err(api_error(format!("get {name}"))(e)),
    };
    match fresh {
        Some(f) if f.uid().as_deref() == Some(uid) && f.meta().deletion_timestamp.is_none() => {
            Ok(())
        }
        Some(f) if f.uid().as_deref() == Some(uid) => {
            Err(Error::CannotAdopt(format!("{name} is being deleted")))
        }
        _ => Err(Error::CannotAdopt(format!(
            "{name} is gone (UID {uid} no longer exists)"
        ))),
    }
}

/// The controller ownerReference pointing at `obj`.
fn owner_reference<K: Replicated>(obj: &K, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: obj.name_any(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Kubernetes' `manageReplicas`: create or delete pods so that `active` reaches
/// `spec.replicas`.
async fn manage<K: Replicated>(
    obj: &K,
    uid: &str,
    namespace: &str,
    active: &[&Pod],
    ctx: &Ctx<K>,
) -> Result<(), Failure> {
    let wanted = usize::try_from(obj.replicas()).unwrap_or(0);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    if active.len() < wanted {
        let missing = (wanted - active.len()).min(BURST);
        let failed = |message: String| Failure {
            reason: "FailedCreate",
            message,
        };
        let template = obj
            .template()
            .ok_or_else(|| failed("the pod template is missing".into()))?;
        let pod = pods::pod_from_template(
            template,
            namespace,
            pods::generate_name(&obj.name_any()),
            owner_reference(obj, uid),
        );
        tracing::info!(
            have = active.len(),
            want = wanted,
            creating = missing,
            "too few replicas"
        );
        // Slow start: batches of 1, 2, 4, ...; stop at the first batch with an error.
        let mut done = 0;
        let mut batch = 1;
        while done < missing {
            let n = batch.min(missing - done);
            let params = PostParams::default();
            let results = future::join_all((0..n).map(|_| api.create(&params, &pod))).await;
            let mut error = None;
            for result in results {
                match result {
                    Ok(created) => {
                        let name = created.name_any();
                        if let Some(pod_uid) = created.uid() {
                            ctx.expectations.expect_create(uid, &pod_uid, &name);
                        }
                        ctx.events
                            .normal(obj, "SuccessfulCreate", format!("Created pod: {name}"));
                    }
                    Err(e) => {
                        let message = message(&e);
                        ctx.events.warning(
                            obj,
                            "FailedCreate",
                            format!("Error creating: {message}"),
                        );
                        error.get_or_insert(message);
                    }
                }
            }
            if let Some(message) = error {
                return Err(failed(message));
            }
            done += n;
            batch *= 2;
        }
    } else if active.len() > wanted {
        let surplus = (active.len() - wanted).min(BURST);
        tracing::info!(
            have = active.len(),
            want = wanted,
            deleting = surplus,
            "too many replicas"
        );
        let victims = pods::pods_to_delete(active, surplus);
        for pod in &victims {
            if let Some(pod_uid) = pod.metadata.uid.as_deref() {
                ctx.expectations
                    .expect_delete(uid, pod_uid, &pod.name_any());
            }
        }
        let results = future::join_all(victims.iter().map(|pod| {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            let name = pod.name_any();
            let api = api.clone();
            async move { api.delete(&name, &params).await }
        }))
        .await;
        let mut error = None;
        for (pod, result) in victims.iter().zip(results) {
            let name = pod.name_any();
            match result {
                Ok(_) => ctx
                    .events
                    .normal(obj, "SuccessfulDelete", format!("Deleted pod: {name}")),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    if let Some(pod_uid) = pod.metadata.uid.as_deref() {
                        ctx.expectations.delete_failed(uid, pod_uid);
                    }
                    let message = message(&e);
                    ctx.events
                        .warning(obj, "FailedDelete", format!("Error deleting: {message}"));
                    error.get_or_insert(message);
                }
            }
        }
        if let Some(message) = error {
            return Err(Failure {
                reason: "FailedDelete",
                message,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(2), BACKOFF_BASE * 2);
        assert_eq!(backoff(4), BACKOFF_BASE * 8);
        assert_eq!(backoff(100), BACKOFF_MAX);
    }

    #[test]
    fn groups_of_api_versions() {
        assert_eq!(api_group("apps/v1"), "apps");
        assert_eq!(api_group("v1"), "");
    }

    #[test]
    fn selectors_of_both_kinds() {
        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": "rc"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}}},
        }))
        .unwrap();
        let selector = rc.selector().unwrap();
        assert!(selector.matches(&BTreeMap::from([("app".into(), "web".into())])));
        assert_eq!(rc.replicas(), 1);
        let empty: ReplicationController =
            serde_json::from_value(json!({"metadata": {"name": "rc"}, "spec": {}})).unwrap();
        assert!(empty.selector().is_err());

        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "rs"},
            "spec": {"replicas": 2, "selector": {"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]}]}},
        }))
        .unwrap();
        let selector = rs.selector().unwrap();
        assert!(selector.matches(&BTreeMap::from([("tier".into(), "api".into())])));
        assert!(!selector.matches(&BTreeMap::from([("tier".into(), "db".into())])));
        let bad: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "rs"},
            "spec": {"selector": {"matchExpressions": [{"key": "k", "operator": "Near"}]}},
        }))
        .unwrap();
        assert!(bad.selector().is_err());
    }
}
