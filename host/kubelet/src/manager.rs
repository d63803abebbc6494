//! Watches the pods bound to this node and keeps one worker per pod; removes containers and
//! networks of pods that no longer exist; wakes workers when the engine reports a container
//! exit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::query_parameters::EventsOptionsBuilder;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher::{self, Event};

use crate::pods::{Context, WorkerHandle, spawn_worker};
use crate::runtime::{LABEL_NODE, LABEL_POD_UID, SANDBOX};

type Workers = Arc<Mutex<HashMap<String, WorkerHandle>>>;

/// Run the pod loop until the task is dropped.
pub(crate) async fn run(ctx: Arc<Context>) {
    let workers: Workers = Arc::default();
    tokio::spawn(engine_events(ctx.clone(), workers.clone()));
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.node_name));
    let mut stream = watcher::watcher(api, config).boxed();
    let mut listed: HashSet<String> = HashSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(pod)) => {
                listed.insert(uid(&pod));
                update(&ctx, &workers, pod);
            }
            Ok(Event::InitDone) => {
                // Pods deleted while the watch was down.
                let gone: Vec<String> = workers
                    .lock()
                    .expect("workers lock")
                    .keys()
                    .filter(|uid| !listed.contains(*uid))
                    .cloned()
                    .collect();
                for uid in gone {
                    remove(&workers, &uid);
                }
                remove_orphans(&ctx, &listed).await;
            }
            Ok(Event::Apply(pod)) => update(&ctx, &workers, pod),
            Ok(Event::Delete(pod)) => remove(&workers, &uid(&pod)),
            Err(e) => {
                tracing::warn!(error = %e, "pod watch failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Hand the pod to its worker, starting one if needed.
fn update(ctx: &Arc<Context>, workers: &Workers, pod: Pod) {
    let uid = uid(&pod);
    let mut map = workers.lock().expect("workers lock");
    if let Some(worker) = map.get(&uid) {
        worker.pod.send_replace(Some(pod));
        return;
    }
    let done = workers.clone();
    let done_uid = uid.clone();
    let handle = spawn_worker(ctx.clone(), pod, move || {
        done.lock().expect("workers lock").remove(&done_uid);
    });
    map.insert(uid, handle);
}

/// The pod is gone from the API: its worker tears it down.
fn remove(workers: &Workers, uid: &str) {
    if let Some(worker) = workers.lock().expect("workers lock").get(uid) {
        worker.pod.send_replace(None);
    }
}

/// Containers and networks of this node whose pod does not exist (deleted while the agent
/// was down) are removed.
async fn remove_orphans(ctx: &Context, live: &HashSet<String>) {
    let instances = match ctx.runtime.list(None).await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list containers for cleanup");
            return;
        }
    };
    let mut orphans: HashSet<String> = HashSet::new();
    for instance in instances.iter().filter(|i| !live.contains(&i.uid)) {
        orphans.insert(instance.uid.clone());
        if instance.running && instance.container != SANDBOX {
            let _ = ctx.runtime.stop(&instance.id, Duration::from_secs(2)).await;
        }
        if let Err(e) = ctx.runtime.remove(&instance.id).await {
            tracing::warn!(error = %e, id = %instance.id, "cannot remove orphaned container");
        }
    }
    orphans.extend(
        ctx.network
            .known_pods()
            .into_iter()
            .filter(|uid| !live.contains(uid)),
    );
    for uid in orphans {
        tracing::info!(%uid, "removing what is left of a deleted pod");
        if let Err(e) = ctx.network.teardown_pod(&uid).await {
            tracing::warn!(%uid, error = %e, "network teardown failed");
        }
        let _ = crate::volumes::remove(&ctx.pods_dir.join(&uid));
    }
}

/// Wake a pod's worker whenever one of its containers exits.
async fn engine_events(ctx: Arc<Context>, workers: Workers) {
    loop {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                vec!["die".to_string(), "oom".to_string()],
            ),
            (
                "label".to_string(),
                vec![format!("{LABEL_NODE}={}", ctx.node_name)],
            ),
        ]);
        let options = EventsOptionsBuilder::new().filters(&filters).build();
        let mut events = ctx.runtime.docker.events(Some(options));
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            let uid = event
                .actor
                .and_then(|a| a.attributes)
                .and_then(|mut a| a.remove(LABEL_POD_UID));
            if let Some(uid) = uid
                && let Some(worker) = workers.lock().expect("workers lock").get(&uid)
            {
                worker.wake.notify_one();
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
