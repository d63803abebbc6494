//! The update loop (kubectl's `RollingUpdater`): create or resume the new controller, then
//! scale it up by one and the old one down by one, never exceeding `desired + 1` pods and
//! never going below `desired` available ones, until the old controller is empty; then clean
//! up. Progress lives in annotations, so an interrupted update resumes when re-run.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use super::Error;
use super::manifest::NewController;
use super::rules::{self, DESIRED_REPLICAS, ORIGINAL_REPLICAS, SOURCE_ID};

/// What happens to the old controller once the new one is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Delete the old controller.
    Delete,
    /// Delete the old controller and give its name to the new one.
    Rename,
}

/// Talks to the API for one update.
pub struct Updater {
    client: Client,
    namespace: String,
    /// The namespace's replication controllers.
    pub rcs: Api<ReplicationController>,
    pods: Api<Pod>,
    /// Pause between scaling up and scaling down.
    pub period: Duration,
    /// Pause between two looks at the cluster while waiting.
    pub poll: Duration,
    /// Longest time without progress.
    pub timeout: Duration,
}

fn name(rc: &ReplicationController) -> String {
    rc.name_any()
}

impl Updater {
    /// An updater for `namespace`.
    pub fn new(client: Client, namespace: &str) -> Updater {
        Updater {
            rcs: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client.clone(), namespace),
            client,
            namespace: namespace.to_string(),
            period: Duration::from_secs(60),
            poll: Duration::from_secs(3),
            timeout: Duration::from_secs(300),
        }
    }

    /// The controller `name`, if it exists.
    pub async fn get_opt(&self, name: &str) -> Result<Option<ReplicationController>, Error> {
        self.rcs.get_opt(name).await.map_err(Error::Api)
    }

    /// Merge `patch` into controller `name`.
    pub async fn patch(&self, name: &str, patch: Value) -> Result<ReplicationController, Error> {
        self.rcs
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(Error::Api)
    }

    /// Run the update from `old` to `target` and clean up.
    pub async fn update(
        &self,
        old: ReplicationController,
        target: NewController,
        cleanup: Cleanup,
    ) -> Result<ReplicationController, Error> {
        let source_id = format!("{}:{}", name(&old), old.uid().unwrap_or_default());
        let (mut new, existed) = self.get_or_create(target, &source_id).await?;
        if existed {
            println!("Continuing update with existing controller {}.", name(&new));
        } else {
            println!("Created {}", name(&new));
        }
        let desired = rules::annotated_replicas(&new, DESIRED_REPLICAS).map_err(Error::Invalid)?;
        let mut old = old;
        if rules::annotation(&old, ORIGINAL_REPLICAS).is_none() {
            let fresh = self.rcs.get(&name(&old)).await.map_err(Error::Api)?;
            let original = rules::replicas(&fresh).to_string();
            old = self
                .patch(
                    &name(&old),
                    json!({"metadata": {"annotations": {ORIGINAL_REPLICAS: original}}}),
                )
                .await?;
        }
        let min_available = if desired == 0 {
            0
        } else {
            rules::min_available(desired)
        };
        println!(
            "Scaling up {} from {} to {desired}, scaling down {} from {} to 0 (keep {min_available} pods available, don't exceed {} pods)",
            name(&new),
            rules::replicas(&new),
            name(&old),
            rules::replicas(&old),
            desired + rules::MAX_SURGE,
        );

        let mut deadline = Instant::now() + self.timeout;
        while rules::replicas(&new) != desired || rules::replicas(&old) != 0 {
            let before = (rules::replicas(&new), rules::replicas(&old));
            if let Some(to) = rules::scale_up_to(desired, before.1, before.0) {
                println!("Scaling {} up to {to}", name(&new));
                new = self.scale_and_wait(&new, to).await?;
            }
            self.wait_available(&new, deadline).await?;
            sleep(self.period).await;
            let available = self.available(&new).await?;
            if let Some(to) = rules::scale_down_to(
                desired,
                min_available,
                rules::replicas(&old),
                rules::replicas(&new),
                available,
            ) {
                println!("Scaling {} down to {to}", name(&old));
                old = self.scale_and_wait(&old, to).await?;
            }
            if (rules::replicas(&new), rules::replicas(&old)) != before {
                deadline = Instant::now() + self.timeout;
            } else if Instant::now() > deadline {
                return Err(Error::Timeout(
                    "timed out waiting for any update progress to be made".into(),
                ));
            }
        }
        self.cleanup(&old, new, cleanup).await
    }

    /// The existing target (checked to belong to this update), or a new one with zero
    /// replicas. Returns whether it existed.
    async fn get_or_create(
        &self,
        mut target: NewController,
        source_id: &str,
    ) -> Result<(ReplicationController, bool), Error> {
        let target_name = target.name().to_string();
        if let Some(existing) = self.get_opt(&target_name).await? {
            let source = rules::annotation(&existing, SOURCE_ID);
            if source != Some(source_id) || rules::annotation(&existing, DESIRED_REPLICAS).is_none()
            {
                return Err(Error::Invalid(format!(
                    "replication controller {target_name} already exists and is not the target of this update (expected {SOURCE_ID}={source_id}, found {})",
                    source.unwrap_or("none")
                )));
            }
            return Ok((existing, true));
        }
        let replicas = rules::replicas(&target.rc);
        if replicas <= 0 {
            return Err(Error::Invalid(format!(
                "invalid controller spec for {target_name}; required: > 0 replicas, actual: {replicas}"
            )));
        }
        target.prepare(replicas, source_id);
        match &target.legacy {
            Some(doc) => {
                // As `kubectl create` does with such a document: through the legacy API.
                let body = serde_json::to_vec(doc).map_err(|e| Error::Invalid(e.to_string()))?;
                let request = http::Request::post(format!(
                    "/api/v1beta1/namespaces/{}/replicationcontrollers",
                    self.namespace
                ))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
                .map_err(|e| Error::Invalid(e.to_string()))?;
                self.client
                    .request_text(request)
                    .await
                    .map_err(Error::Api)?;
                let created = self.rcs.get(&target_name).await.map_err(Error::Api)?;
                Ok((created, false))
            }
            None => {
                let mut rc = target.rc;
                rc.metadata.namespace = Some(self.namespace.clone());
                let created = self
                    .rcs
                    .create(&PostParams::default(), &rc)
                    .await
                    .map_err(Error::Api)?;
                Ok((created, false))
            }
        }
    }

    /// Set the replicas of `rc` through `/scale`, then wait until its status shows them
    /// (or someone else changed the count).
    async fn scale_and_wait(
        &self,
        rc: &ReplicationController,
        replicas: i32,
    ) -> Result<ReplicationController, Error> {
        let rc_name = name(rc);
        self.rcs
            .patch_scale(
                &rc_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .map_err(Error::Api)?;
        self.wait_synced(&rc_name, replicas).await
    }

    /// Wait until controller `rc_name` has observed its spec and has `replicas` pods.
    async fn wait_synced(
        &self,
        rc_name: &str,
        replicas: i32,
    ) -> Result<ReplicationController, Error> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let rc = self.rcs.get(rc_name).await.map_err(Error::Api)?;
            let status = rc.status.as_ref();
            let observed = status.and_then(|s| s.observed_generation).unwrap_or(0)
                >= rc.metadata.generation.unwrap_or(0);
            let current = status.map_or(0, |s| s.replicas);
            if rules::replicas(&rc) != replicas || (observed && current == replicas) {
                return Ok(rc);
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout(format!(
                    "timed out waiting for \"{rc_name}\" to be synced"
                )));
            }
            sleep(self.poll).await;
        }
    }

    /// How many pods of `rc`'s selector are available.
    async fn available(&self, rc: &ReplicationController) -> Result<i32, Error> {
        let selector = rules::selector(rc);
        if selector.is_empty() {
            return Ok(0);
        }
        let pods = self
            .pods
            .list(&ListParams::default().labels(&rules::selector_string(&selector)))
            .await
            .map_err(Error::Api)?;
        let min_ready = rc
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = Timestamp::now();
        let n = pods
            .items
            .iter()
            .filter(|p| rules::is_available(p, min_ready, now))
            .count();
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Wait until `rc`'s pods are all available, or `deadline` (the caller then reports the
    /// lack of progress).
    async fn wait_available(
        &self,
        rc: &ReplicationController,
        deadline: Instant,
    ) -> Result<(), Error> {
        let wanted = rules::replicas(rc);
        while self.available(rc).await? < wanted && Instant::now() < deadline {
            sleep(self.poll).await;
        }
        Ok(())
    }

    /// After the loop: drop the update's annotations, wait for the new controller, then
    /// delete (or replace by the new one) the old controller.
    async fn cleanup(
        &self,
        old: &ReplicationController,
        new: ReplicationController,
        cleanup: Cleanup,
    ) -> Result<ReplicationController, Error> {
        let new_name = name(&new);
        let old_name = name(old);
        // When renaming, the annotations stay until the copy exists: an interrupted rename
        // is found again through them.
        if cleanup == Cleanup::Delete {
            self.patch(
                &new_name,
                json!({"metadata": {"annotations": {SOURCE_ID: null, DESIRED_REPLICAS: null}}}),
            )
            .await?;
        }
        let new = self.wait_synced(&new_name, rules::replicas(&new)).await?;
        match cleanup {
            Cleanup::Delete => {
                println!("Update succeeded. Deleting {old_name}");
                self.delete(&old_name, &DeleteParams::default()).await?;
                Ok(new)
            }
            Cleanup::Rename => {
                println!("Update succeeded. Deleting old controller: {old_name}");
                self.delete(&old_name, &DeleteParams::default()).await?;
                println!("Renaming {new_name} to {old_name}");
                self.rename(&new, &old_name).await
            }
        }
    }

    async fn delete(&self, rc_name: &str, params: &DeleteParams) -> Result<(), Error> {
        match self.rcs.delete(rc_name, params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::Api(e)),
        }
    }

    /// Give `rc` the name `to`: delete it leaving its pods (orphans), wait until it is gone,
    /// create the same controller under the new name; it adopts the pods.
    pub async fn rename(
        &self,
        rc: &ReplicationController,
        to: &str,
    ) -> Result<ReplicationController, Error> {
        let from = name(rc);
        self.delete(&from, &DeleteParams::orphan()).await?;
        let deadline = Instant::now() + self.timeout;
        while self.get_opt(&from).await?.is_some() {
            if Instant::now() > deadline {
                return Err(Error::Timeout(format!(
                    "timed out waiting for {from} to be deleted"
                )));
            }
            sleep(self.poll).await;
        }
        self.rcs
            .create(&PostParams::default(), &rules::renamed(rc, to))
            .await
            .map_err(Error::Api)
    }

    /// Add `key=value` to `old`'s selector and relabel its pods first, so that the old and
    /// new controllers select disjoint pods (kubectl's `AddDeploymentKeyToReplicationController`);
    /// record `next` as the controller replacing it.
    pub async fn add_deployment_key(
        &self,
        old: &ReplicationController,
        next: &str,
        key: &str,
        value: &str,
    ) -> Result<ReplicationController, Error> {
        let old_name = name(old);
        let old_selector = rules::selector(old);
        if old_selector.contains_key(key) {
            return self
                .patch(
                    &old_name,
                    json!({"metadata": {"annotations": {rules::NEXT_CONTROLLER: next}}}),
                )
                .await;
        }
        // The template first, so that new pods carry the label.
        self.patch(
            &old_name,
            json!({
                "metadata": {"annotations": {rules::NEXT_CONTROLLER: next}},
                "spec": {"template": {"metadata": {"labels": {key: value}}}},
            }),
        )
        .await?;
        let uid = old.uid().unwrap_or_default();
        let controlled_by = |pod: &Pod| {
            pod.owner_references()
                .iter()
                .find(|r| r.controller == Some(true))
                .map(|r| r.uid.clone())
        };
        let listed = self
            .pods
            .list(&ListParams::default().labels(&rules::selector_string(&old_selector)))
            .await
            .map_err(Error::Api)?;
        // The old controller's pods, and orphans it would adopt; not other controllers'.
        for pod in listed
            .items
            .iter()
            .filter(|p| controlled_by(p).is_none_or(|owner| owner == uid))
        {
            let patch = json!({"metadata": {"labels": {key: value}}});
            match self
                .pods
                .patch(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(Error::Api(e)),
            }
        }
        let updated = self
            .patch(&old_name, json!({"spec": {"selector": {key: value}}}))
            .await?;
        // Pods the controller made from the old template meanwhile would be left behind
        // unlabelled: remove them.
        let listed = self
            .pods
            .list(&ListParams::default().labels(&rules::selector_string(&old_selector)))
            .await
            .map_err(Error::Api)?;
        for pod in &listed.items {
            let labelled = pod.labels().get(key).is_some_and(|v| v == value);
            let ours = controlled_by(pod).is_some_and(|owner| owner == uid);
            if !labelled && ours && pod.metadata.deletion_timestamp.is_none() {
                match self
                    .pods
                    .delete(&pod.name_any(), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(Error::Api(e)),
                }
            }
        }
        Ok(updated)
    }
}
