//! The Deployment controller (Kubernetes' `pkg/controller/deployment`): each Deployment owns
//! ReplicaSets named `<deployment>-<pod-template-hash>`, one per pod template it has had. A
//! reconcile claims those ReplicaSets, keeps their revision annotations (which `kubectl
//! rollout history|undo` read), scales them by the Deployment's strategy (RollingUpdate within
//! maxSurge/maxUnavailable, or Recreate), honours `spec.paused`, prunes history beyond
//! `revisionHistoryLimit`, and writes the status `kubectl rollout status` waits on.
//!
//! Sizes are planned by the pure functions of [`rollout`] and [`status`]; this module reads
//! the API, applies their decisions and writes only what changed.

mod rollout;
mod status;
mod util;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;
use tracing::Instrument;

use hortator_api::selector::LabelSelector;

use status::{
    FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING, RS_CREATE_ERROR, condition, get_condition,
    progress_deadline, set_condition,
};
use util::{
    DESIRED_REPLICAS, HASH_LABEL, Limits, MAX_REPLICAS, REVISION, Strategy, annotation,
    int_annotation, spec_replicas, status_replicas,
};

/// Every Deployment is looked at again at least this often.
const RESYNC: Duration = Duration::from_secs(300);
/// First retry delay after a failed reconcile; doubles with each further failure.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The component named in events.
const COMPONENT: &str = "deployment-controller";

/// Why a reconcile failed; it is retried with a back-off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was attempted.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The Deployment's spec cannot be acted on.
    #[error("invalid deployment: {0}")]
    InvalidSpec(String),
    /// The new ReplicaSet's name is taken by another template; the collision count was raised.
    #[error("replica set {0} already exists with another template; retrying with a new name")]
    HashCollision(String),
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Api {
        action: action.into(),
        source,
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Shared state of the controller.
struct Ctx {
    client: kube::Client,
    /// Consecutive failures per Deployment, for the back-off.
    failures: Mutex<HashMap<ObjectRef<Deployment>, u32>>,
}

/// Run the Deployment controller until the task is aborted.
pub(crate) async fn run(client: kube::Client) {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        failures: Mutex::new(HashMap::new()),
    });
    Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<Pod>::all(client),
        watcher::Config::default(),
        deployment_of_leaving_pod,
    )
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        match result {
            Ok(_) | Err(controller::Error::ObjectNotFound(_)) => {}
            // Logged by the error policy.
            Err(controller::Error::ReconcilerFailed(..)) => {}
            Err(e) => tracing::warn!(error = %e, "deployment controller"),
        }
    })
    .await;
}

/// The Deployment to look at when one of its pods terminates or is deleted (a Recreate rollout
/// waits for that). Its ReplicaSet is `<deployment>-<pod-template-hash>`.
fn deployment_of_leaving_pod(pod: Pod) -> Option<ObjectRef<Deployment>> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let leaving =
        pod.metadata.deletion_timestamp.is_some() || matches!(phase, Some("Succeeded" | "Failed"));
    if !leaving {
        return None;
    }
    let namespace = pod.metadata.namespace.as_deref()?;
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")?;
    let hash = pod.metadata.labels.as_ref()?.get(HASH_LABEL)?;
    let name = owner.name.strip_suffix(hash.as_str())?.strip_suffix('-')?;
    Some(ObjectRef::new(name).within(namespace))
}

fn error_policy(d: Arc<Deployment>, error: &Error, ctx: Arc<Ctx>) -> Action {
    let failures = {
        let mut failures = ctx.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(ObjectRef::from_obj(d.as_ref())).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(failures);
    let conflict = matches!(error, Error::Api { source, .. } if is_status(source, 409));
    let namespace = d.metadata.namespace.as_deref().unwrap_or_default();
    let name = d.metadata.name.as_deref().unwrap_or_default();
    if conflict {
        // Someone else wrote first; the next pass reads the newer version.
        tracing::debug!(namespace, name, %error, retry_in = ?delay, "reconcile conflicted");
    } else {
        tracing::warn!(namespace, name, %error, retry_in = ?delay, "reconcile failed");
    }
    Action::requeue(delay)
}

/// The retry delay after `failures` consecutive failures.
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_MAX)
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(namespace), Some(name)) =
        (d.metadata.namespace.as_deref(), d.metadata.name.as_deref())
    else {
        return Ok(Action::await_change());
    };
    let span = tracing::info_span!("reconcile", namespace, deployment = name);
    let action = sync(&ctx.client, namespace, name).instrument(span).await?;
    ctx.failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&ObjectRef::from_obj(d.as_ref()));
    Ok(action)
}

/// One idempotent pass over a Deployment, read fresh from the API (`syncDeployment`).
async fn sync(client: &kube::Client, namespace: &str, name: &str) -> Result<Action, Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let Some(d) = deployments
        .get_opt(name)
        .await
        .map_err(api_error("get deployment"))?
    else {
        return Ok(Action::await_change());
    };
    let spec = d
        .spec
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("the spec is missing".into()))?;
    let selector = LabelSelector::from_label_selector(&spec.selector)
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let limits = Limits::of(&d)?;
    let mut pass = Pass {
        client: client.clone(),
        deployments,
        replica_sets: Api::namespaced(client.clone(), namespace),
        namespace: namespace.to_string(),
        name: name.to_string(),
        d,
        limits,
        now: status::now(),
    };
    if selector.is_empty() {
        // A Deployment selecting every pod is not acted on; its generation is still observed.
        tracing::warn!("the selector selects every pod; not acting on it");
        let generation = pass.d.metadata.generation;
        let mut status = pass.d.status.clone().unwrap_or_default();
        if status.observed_generation < generation {
            status.observed_generation = generation;
            pass.write_status(status).await?;
        }
        return Ok(Action::await_change());
    }
    pass.run(&selector).await
}

/// The state of one reconcile: the Deployment as last read or written, and its limits.
struct Pass {
    client: kube::Client,
    deployments: Api<Deployment>,
    replica_sets: Api<ReplicaSet>,
    namespace: String,
    name: String,
    d: Deployment,
    limits: Limits,
    now: jiff::Timestamp,
}

impl Pass {
    async fn run(&mut self, selector: &LabelSelector) -> Result<Action, Error> {
        let mut sets = self.claim(selector).await?;
        if self.d.metadata.deletion_timestamp.is_some() {
            let new = self.new_replica_set(&mut sets, false).await?;
            self.sync_status(&sets, new).await?;
            return Ok(Action::await_change());
        }
        if let Some(status) = status::paused_condition(&self.d, self.now) {
            self.write_status(status).await?;
        }
        if self.paused() || self.is_scaling_event(&mut sets).await? {
            return self.sync_scale(&mut sets).await;
        }
        match self.limits.strategy {
            Strategy::RollingUpdate => self.rolling(&mut sets).await,
            Strategy::Recreate => self.recreate(&mut sets, selector).await,
        }
    }

    fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.d
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    /// Kubernetes' `ClaimReplicaSets`: the ReplicaSets this Deployment controls, after
    /// adopting matching orphans and releasing controlled ones that stopped matching.
    async fn claim(&mut self, selector: &LabelSelector) -> Result<Vec<ReplicaSet>, Error> {
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        let deleting = self.d.metadata.deletion_timestamp.is_some();
        let list = self
            .replica_sets
            .list(&ListParams::default())
            .await
            .map_err(api_error("list replica sets"))?;
        let mut owned = Vec::new();
        for mut rs in list.items {
            let rs_name = rs.metadata.name.clone().unwrap_or_default();
            let matches = rs
                .metadata
                .labels
                .as_ref()
                .is_some_and(|labels| selector.matches(labels));
            let controller = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| o.uid.clone());
            match controller {
                Some(owner) if owner == uid => {
                    if matches || deleting {
                        owned.push(rs);
                        continue;
                    }
                    if let Some(refs) = rs.metadata.owner_references.as_mut() {
                        refs.retain(|o| o.uid != uid);
                    }
                    match self
                        .replica_sets
                        .replace(&rs_name, &PostParams::default(), &rs)
                        .await
                    {
                        Ok(_) => tracing::info!(replica_set = %rs_name, "released"),
                        Err(e) if is_status(&e, 404) => {}
                        Err(e) => return Err(api_error(format!("release {rs_name}"))(e)),
                    }
                }
                Some(_) => {}
                None if matches && !deleting && rs.metadata.deletion_timestamp.is_none() => {
                    rs.metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(self.controller_ref());
                    match self
                        .replica_sets
                        .replace(&rs_name, &PostParams::default(), &rs)
                        .await
                    {
                        Ok(adopted) => {
                            tracing::info!(replica_set = %rs_name, "adopted");
                            owned.push(adopted);
                        }
                        Err(e) if is_status(&e, 404) => {}
                        Err(e) => return Err(api_error(format!("adopt {rs_name}"))(e)),
                    }
                }
                None => {}
            }
        }
        Ok(owned)
    }

    /// The controller ownerReference pointing at the Deployment.
    fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: self.name.clone(),
            uid: self.d.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// Kubernetes' `getNewReplicaSet`: find the ReplicaSet of the current template and bring
    /// its annotations (revision, copied annotations) and `minReadySeconds` up to date, or
    /// create it when `create`; record the revision on the Deployment. Its index in `sets`.
    async fn new_replica_set(
        &mut self,
        sets: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<Option<usize>, Error> {
        let found = util::find_new(&self.d, sets);
        let new_revision = util::max_revision(
            sets.iter()
                .enumerate()
                .filter(|&(i, _)| Some(i) != found)
                .map(|(_, rs)| rs),
        ) + 1;
        let Some(i) = found else {
            return if create {
                self.create_new(sets, new_revision).await.map(Some)
            } else {
                Ok(None)
            };
        };
        let mut annotations = sets[i].metadata.annotations.clone().unwrap_or_default();
        let changed = util::set_new_rs_annotations(
            &self.d,
            &mut annotations,
            new_revision,
            true,
            &self.limits,
        );
        let min_ready = self.min_ready_seconds();
        let rs_min_ready = sets[i]
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        if changed || rs_min_ready != min_ready {
            let patch = json!({
                "metadata": {"annotations": annotations},
                "spec": {"minReadySeconds": min_ready},
            });
            sets[i] = self.patch_replica_set(&sets[i], patch).await?;
        }
        let revision = annotation(sets[i].metadata.annotations.as_ref(), REVISION)
            .unwrap_or_default()
            .to_string();
        self.set_revision(&revision).await?;
        if progress_deadline(&self.d).is_some()
            && get_condition(self.d.status.as_ref(), PROGRESSING).is_none()
        {
            let rs_name = sets[i].metadata.name.clone().unwrap_or_default();
            let mut status = self.d.status.clone().unwrap_or_default();
            set_condition(
                &mut status,
                condition(
                    PROGRESSING,
                    "True",
                    FOUND_NEW_RS,
                    format!("Found new replica set {rs_name:?}"),
                    self.now,
                ),
            );
            self.write_status(status).await?;
        }
        Ok(Some(i))
    }

    /// Create the ReplicaSet of the current template, named after its hash.
    async fn create_new(
        &mut self,
        sets: &mut Vec<ReplicaSet>,
        new_revision: i64,
    ) -> Result<usize, Error> {
        let spec = self
            .d
            .spec
            .clone()
            .ok_or_else(|| Error::InvalidSpec("the spec is missing".into()))?;
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = util::compute_hash(&spec.template, collision_count);
        let rs_name = format!("{}-{hash}", self.name);
        let mut template = spec.template.clone();
        let labels = template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(BTreeMap::new);
        labels.insert(HASH_LABEL.into(), hash.clone());
        let labels = labels.clone();
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), hash);
        let all_total: i32 = sets.iter().map(util::pods_or_wanted).sum();
        let replicas = rollout::new_rs_new_replicas(&self.limits, all_total, 0);
        let mut annotations = BTreeMap::new();
        util::set_new_rs_annotations(&self.d, &mut annotations, new_revision, false, &self.limits);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: Some(vec![self.controller_ref()]),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: Some(self.min_ready_seconds()),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let (index, created) = match self.replica_sets.create(&PostParams::default(), &rs).await {
            Ok(created) => {
                tracing::info!(replica_set = %rs_name, replicas, "created new replica set");
                if replicas > 0 {
                    self.event(
                        "ScalingReplicaSet",
                        format!("Scaled up replica set {rs_name} to {replicas}"),
                    );
                }
                sets.push(created);
                (sets.len() - 1, true)
            }
            Err(e) if is_status(&e, 409) => {
                let existing = self
                    .replica_sets
                    .get(&rs_name)
                    .await
                    .map_err(api_error(format!("get {rs_name}")))?;
                let ours = existing
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| {
                        o.controller == Some(true) && Some(&o.uid) == self.d.metadata.uid.as_ref()
                    });
                if !ours || !util::equal_ignore_hash(&spec.template, &util::rs_template(&existing))
                {
                    let mut status = self.d.status.clone().unwrap_or_default();
                    status.collision_count = Some(collision_count.unwrap_or(0).saturating_add(1));
                    self.write_status(status).await?;
                    return Err(Error::HashCollision(rs_name));
                }
                match sets
                    .iter()
                    .position(|s| s.metadata.name.as_deref() == Some(rs_name.as_str()))
                {
                    Some(i) => (i, false),
                    None => {
                        sets.push(existing);
                        (sets.len() - 1, false)
                    }
                }
            }
            Err(e) => {
                if progress_deadline(&self.d).is_some() {
                    let mut status = self.d.status.clone().unwrap_or_default();
                    set_condition(
                        &mut status,
                        condition(
                            PROGRESSING,
                            "False",
                            RS_CREATE_ERROR,
                            format!("Failed to create new replica set {rs_name:?}: {e}"),
                            self.now,
                        ),
                    );
                    if let Err(status_error) = self.write_status(status).await {
                        tracing::debug!(error = %status_error, "cannot record the failure");
                    }
                }
                return Err(api_error(format!("create {rs_name}"))(e));
            }
        };
        self.set_revision(&new_revision.to_string()).await?;
        if created && progress_deadline(&self.d).is_some() {
            let mut status = self.d.status.clone().unwrap_or_default();
            set_condition(
                &mut status,
                condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_CREATED,
                    format!("Created new replica set {rs_name:?}"),
                    self.now,
                ),
            );
            self.write_status(status).await?;
        }
        Ok(index)
    }

    /// Record `revision` on the Deployment.
    async fn set_revision(&mut self, revision: &str) -> Result<(), Error> {
        if annotation(self.d.metadata.annotations.as_ref(), REVISION) == Some(revision) {
            return Ok(());
        }
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
        self.d = self
            .deployments
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_error("record the revision"))?;
        Ok(())
    }

    /// Write the status if it changed.
    async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut d = self.d.clone();
        d.status = Some(status);
        self.d = self
            .deployments
            .replace_status(&self.name, &PostParams::default(), &d)
            .await
            .map_err(api_error("update status"))?;
        Ok(())
    }

    async fn patch_replica_set(
        &self,
        rs: &ReplicaSet,
        patch: serde_json::Value,
    ) -> Result<ReplicaSet, Error> {
        let rs_name = rs.metadata.name.as_deref().unwrap_or_default();
        self.replica_sets
            .patch(rs_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_error(format!("update {rs_name}")))
    }

    /// Scale `sets[i]` to `size`, refreshing its desired/max annotations; whether its size
    /// changed.
    async fn scale(&mut self, sets: &mut [ReplicaSet], i: usize, size: i32) -> Result<bool, Error> {
        let before = spec_replicas(&sets[i]);
        let resize = before != size;
        if !resize && !util::replicas_annotations_differ(&sets[i], &self.limits) {
            return Ok(false);
        }
        let patch = json!({
            "metadata": {"annotations": {
                DESIRED_REPLICAS: self.limits.replicas.to_string(),
                MAX_REPLICAS: self.limits.max_total().to_string(),
            }},
            "spec": {"replicas": size},
        });
        sets[i] = self.patch_replica_set(&sets[i], patch).await?;
        if resize {
            let rs_name = sets[i].metadata.name.clone().unwrap_or_default();
            let direction = if size > before { "up" } else { "down" };
            tracing::info!(replica_set = %rs_name, from = before, to = size, "scaled");
            self.event(
                "ScalingReplicaSet",
                format!("Scaled {direction} replica set {rs_name} to {size} from {before}"),
            );
        }
        Ok(resize)
    }

    /// Whether `spec.replicas` changed since the active ReplicaSets were last scaled.
    async fn is_scaling_event(&mut self, sets: &mut Vec<ReplicaSet>) -> Result<bool, Error> {
        self.new_replica_set(sets, false).await?;
        Ok(sets.iter().filter(|rs| spec_replicas(rs) > 0).any(|rs| {
            int_annotation(rs, DESIRED_REPLICAS).is_some_and(|n| n != self.limits.replicas)
        }))
    }

    /// A paused Deployment or a scaling event: resize without rolling (`sync`).
    async fn sync_scale(&mut self, sets: &mut Vec<ReplicaSet>) -> Result<Action, Error> {
        let new = self.new_replica_set(sets, false).await?;
        let status_replicas = self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        for (i, size) in rollout::scale(&self.limits, sets, new, status_replicas) {
            self.scale(sets, i, size).await?;
        }
        if self.paused() {
            self.clean_up(sets, new).await?;
        }
        self.sync_status(sets, new).await?;
        Ok(Action::requeue(RESYNC))
    }

    /// RollingUpdate (`rolloutRolling`): grow the new ReplicaSet within maxSurge, else shrink
    /// the old ones within maxUnavailable; prune history once complete.
    async fn rolling(&mut self, sets: &mut Vec<ReplicaSet>) -> Result<Action, Error> {
        let new = self
            .new_replica_set(sets, true)
            .await?
            .ok_or_else(|| Error::InvalidSpec("no replica set for the template".into()))?;
        let replicas = self.limits.replicas;
        let current = spec_replicas(&sets[new]);
        let target = if current >= replicas {
            replicas
        } else {
            let all_total: i32 = sets.iter().map(util::pods_or_wanted).sum();
            rollout::new_rs_new_replicas(&self.limits, all_total, current)
        };
        if current != replicas && self.scale(sets, new, target).await? {
            return self.sync_rollout_status(sets, Some(new)).await;
        }
        let old: Vec<usize> = (0..sets.len())
            .filter(|&i| i != new && spec_replicas(&sets[i]) > 0)
            .collect();
        let old_sets: Vec<&ReplicaSet> = old.iter().map(|&i| &sets[i]).collect();
        let plan = rollout::scale_down_old(&self.limits, &old_sets, &sets[new]);
        let mut scaled_down = false;
        for (j, size) in plan {
            scaled_down |= self.scale(sets, old[j], size).await?;
        }
        if scaled_down {
            return self.sync_rollout_status(sets, Some(new)).await;
        }
        if status::is_complete(&self.d, self.d.status.as_ref(), replicas) {
            self.clean_up(sets, Some(new)).await?;
        }
        self.sync_rollout_status(sets, Some(new)).await
    }

    /// Recreate (`rolloutRecreate`): old ReplicaSets to zero, wait until their pods are gone,
    /// then the new ReplicaSet at full size.
    async fn recreate(
        &mut self,
        sets: &mut Vec<ReplicaSet>,
        selector: &LabelSelector,
    ) -> Result<Action, Error> {
        let new = self.new_replica_set(sets, false).await?;
        let old: Vec<usize> = (0..sets.len())
            .filter(|&i| Some(i) != new && spec_replicas(&sets[i]) > 0)
            .collect();
        let mut scaled_down = false;
        for i in old {
            scaled_down |= self.scale(sets, i, 0).await?;
        }
        if scaled_down || self.old_pods_running(sets, new, selector).await? {
            return self.sync_rollout_status(sets, new).await;
        }
        let new = match new {
            Some(i) => i,
            None => self
                .new_replica_set(sets, true)
                .await?
                .ok_or_else(|| Error::InvalidSpec("no replica set for the template".into()))?,
        };
        self.scale(sets, new, self.limits.replicas).await?;
        if status::is_complete(&self.d, self.d.status.as_ref(), self.limits.replicas) {
            self.clean_up(sets, Some(new)).await?;
        }
        self.sync_rollout_status(sets, Some(new)).await
    }

    /// Whether any pod of an old ReplicaSet is still there and not terminated.
    async fn old_pods_running(
        &self,
        sets: &[ReplicaSet],
        new: Option<usize>,
        selector: &LabelSelector,
    ) -> Result<bool, Error> {
        let old = (0..sets.len()).filter(|&i| Some(i) != new);
        if old.clone().map(|i| status_replicas(&sets[i])).sum::<i32>() > 0 {
            return Ok(true);
        }
        let old_uids: HashSet<&str> = old
            .filter_map(|i| sets[i].metadata.uid.as_deref())
            .collect();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods = pods
            .list(&ListParams::default().labels(&selector.to_string()))
            .await
            .map_err(api_error("list pods"))?;
        Ok(pods.items.iter().any(|pod| {
            let owned_by_old = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && old_uids.contains(o.uid.as_str()));
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            owned_by_old && !matches!(phase, Some("Succeeded" | "Failed"))
        }))
    }

    /// Delete old ReplicaSets beyond `revisionHistoryLimit` (`cleanupDeployment`).
    async fn clean_up(&self, sets: &[ReplicaSet], new: Option<usize>) -> Result<(), Error> {
        let limit = self.d.spec.as_ref().and_then(|s| s.revision_history_limit);
        let old: Vec<usize> = (0..sets.len()).filter(|&i| Some(i) != new).collect();
        for i in rollout::history_to_delete(limit, sets, &old) {
            let rs_name = sets[i].metadata.name.as_deref().unwrap_or_default();
            match self
                .replica_sets
                .delete(rs_name, &DeleteParams::default())
                .await
            {
                Ok(_) => tracing::info!(replica_set = %rs_name, "deleted old replica set"),
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(api_error(format!("delete {rs_name}"))(e)),
            }
        }
        Ok(())
    }

    /// Write the counts and the Available condition (`syncDeploymentStatus`).
    async fn sync_status(&mut self, sets: &[ReplicaSet], new: Option<usize>) -> Result<(), Error> {
        let all: Vec<&ReplicaSet> = sets.iter().collect();
        let status =
            status::calculate(&self.d, &all, new.map(|i| &sets[i]), &self.limits, self.now);
        self.write_status(status).await
    }

    /// Write the status with the Progressing condition (`syncRolloutStatus`); look again
    /// when a stalled rollout would pass its deadline.
    async fn sync_rollout_status(
        &mut self,
        sets: &[ReplicaSet],
        new: Option<usize>,
    ) -> Result<Action, Error> {
        let all: Vec<&ReplicaSet> = sets.iter().collect();
        let status = status::rollout(&self.d, &all, new.map(|i| &sets[i]), &self.limits, self.now);
        let recheck = status::recheck_after(&self.d, &status, self.limits.replicas, self.now);
        self.write_status(status).await?;
        Ok(Action::requeue(
            recheck.map_or(RESYNC, |after| after.min(RESYNC)),
        ))
    }

    /// Record a `Normal` event about the Deployment, in the background.
    fn event(&self, reason: &str, message: String) {
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", self.name, now.as_nanosecond())),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                uid: self.d.metadata.uid.clone(),
                resource_version: self.d.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some("Normal".into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource {
                component: Some(COMPONENT.into()),
                host: None,
            }),
            reporting_component: Some(COMPONENT.into()),
            reporting_instance: Some(COMPONENT.into()),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        tokio::spawn(async move {
            if let Err(e) = events.create(&PostParams::default(), &event).await {
                tracing::debug!(error = %e, "cannot record event");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("pod")
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(3), BACKOFF_BASE * 4);
        assert_eq!(backoff(1000), BACKOFF_MAX);
    }

    #[test]
    fn leaving_pods_lead_to_their_deployment() {
        let owned = |deleting: bool, phase: &str| {
            let mut meta = json!({
                "name": "web-7d9f8c6b5-x2x4z",
                "namespace": "default",
                "labels": {"app": "web", HASH_LABEL: "7d9f8c6b5"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "my-web-7d9f8c6b5",
                    "uid": "u1", "controller": true,
                }],
            });
            if deleting {
                meta["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
            }
            pod(json!({"metadata": meta, "status": {"phase": phase}}))
        };
        assert_eq!(
            deployment_of_leaving_pod(owned(true, "Running")),
            Some(ObjectRef::new("my-web").within("default"))
        );
        assert_eq!(
            deployment_of_leaving_pod(owned(false, "Succeeded")),
            Some(ObjectRef::new("my-web").within("default"))
        );
        assert_eq!(deployment_of_leaving_pod(owned(false, "Running")), None);
        // A bare ReplicaSet's pods (no hash suffix) or orphans lead nowhere.
        let bare = pod(json!({
            "metadata": {
                "name": "x", "namespace": "default",
                "deletionTimestamp": "2025-01-01T00:00:00Z",
                "labels": {HASH_LABEL: "abc"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "plain", "uid": "u", "controller": true}],
            },
        }));
        assert_eq!(deployment_of_leaving_pod(bare), None);
    }
}
