//! `hortctl rolling-update`: kubectl 1.17's `rolling-update`. Replaces a replication
//! controller by a new one (from `-f FILE`, or the old one with another `--image`) one pod at
//! a time, keeping every desired pod available and at most one extra; resumes an
//! interrupted update when re-run; `--rollback` reverses a partial one.

mod manifest;
mod rules;
mod updater;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::ReplicationController;
use kube::{Client, ResourceExt};
use serde_json::json;

use manifest::NewController;
use rules::{NEXT_CONTROLLER, ORIGINAL_REPLICAS, SOURCE_ID};
use updater::{Cleanup, Updater};

/// The arguments of `rolling-update`.
#[derive(clap::Args)]
pub struct Args {
    /// The replication controller to replace.
    #[arg(value_name = "OLD_CONTROLLER")]
    old: String,
    /// The new controller (JSON or YAML, v1 or v1beta1; `-` reads standard input).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    filename: Option<PathBuf>,
    /// The new image of the pods (instead of --filename).
    #[arg(long)]
    image: Option<String>,
    /// The container whose image changes (needed when the pod has several).
    #[arg(long)]
    container: Option<String>,
    /// The image pull policy of the new pods (needed when --image is the current image).
    #[arg(long, value_parser = ["Always", "Never", "IfNotPresent"])]
    image_pull_policy: Option<String>,
    /// The label key that tells old and new pods apart (with --image).
    #[arg(long, default_value = "deployment", value_name = "KEY")]
    deployment_label_key: String,
    /// Time to wait between updating pods (ns, us, ms, s, m, h).
    #[arg(long, default_value = "1m", value_parser = rules::parse_duration, value_name = "DURATION")]
    update_period: Duration,
    /// Time between polls of the controllers' status.
    #[arg(long, default_value = "3s", value_parser = rules::parse_duration, value_name = "DURATION")]
    poll_interval: Duration,
    /// Longest time without progress before giving up.
    #[arg(long, default_value = "5m", value_parser = rules::parse_duration, value_name = "DURATION")]
    timeout: Duration,
    /// Abort a partial update and roll back to the old controller.
    #[arg(long)]
    rollback: bool,
    /// Print what would be done, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// Why a rolling update failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or documents, or a state the update cannot proceed from.
    #[error("{0}")]
    Invalid(String),
    /// The API refused a request.
    #[error("{}", api_message(.0))]
    Api(kube::Error),
    /// No progress in time.
    #[error("{0}")]
    Timeout(String),
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

impl Args {
    /// kubectl's argument checks.
    fn validate(&self) -> Result<(), Error> {
        let invalid = |m: &str| Err(Error::Invalid(m.to_string()));
        if self.deployment_label_key.is_empty() {
            return invalid("--deployment-label-key can not be empty");
        }
        match (self.rollback, &self.filename, &self.image) {
            (false, None, None) => invalid("must specify --filename or --image for new controller"),
            (false, Some(_), Some(_)) => {
                invalid("--filename and --image can not both be specified")
            }
            (true, Some(_), _) | (true, _, Some(_)) => {
                invalid("don't specify --filename or --image on rollback")
            }
            _ => Ok(()),
        }
    }

    /// The file name, for messages.
    fn source(&self) -> String {
        self.filename
            .as_ref()
            .map_or_else(String::new, |f| f.display().to_string())
    }
}

fn read_file(path: &PathBuf) -> Result<String, Error> {
    let read = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// Run `rolling-update` in `namespace`.
pub async fn run(client: Client, namespace: &str, args: Args) -> Result<(), Error> {
    args.validate()?;
    let mut updater = Updater::new(client, namespace);
    updater.period = args.update_period;
    updater.poll = args.poll_interval;
    updater.timeout = args.timeout;
    // As kubectl: with --image (or --rollback) the new controller ends up with the old name.
    let keep_old_name = args.filename.is_none();

    let mut old = match updater.get_opt(&args.old).await? {
        Some(old) => old,
        None if args.image.is_some() => {
            // Interrupted while renaming: the new controller still names the old one.
            let list = updater
                .rcs
                .list(&Default::default())
                .await
                .map_err(Error::Api)?;
            let prefix = format!("{}:", args.old);
            let Some(source) = list.items.into_iter().find(|rc| {
                rules::annotation(rc, SOURCE_ID).is_some_and(|s| s.starts_with(&prefix))
            }) else {
                return Err(Error::Invalid(format!(
                    "replicationcontrollers \"{}\" not found",
                    args.old
                )));
            };
            println!("Renaming {} to {}", source.name_any(), args.old);
            updater.rename(&source, &args.old).await?;
            println!("replicationcontroller/{} rolling updated", args.old);
            return Ok(());
        }
        None => {
            return Err(Error::Invalid(format!(
                "replicationcontrollers \"{}\" not found",
                args.old
            )));
        }
    };

    let mut target = match &args.filename {
        Some(path) => {
            let new = manifest::parse(&read_file(path)?, &args.source()).map_err(Error::Invalid)?;
            if let Some(ns) = new.namespace().filter(|ns| *ns != namespace) {
                return Err(Error::Invalid(format!(
                    "the namespace from the provided object \"{ns}\" does not match the namespace \"{namespace}\""
                )));
            }
            Some(new)
        }
        None => None,
    };

    if let Some(image) = &args.image {
        let next = rules::annotation(&old, NEXT_CONTROLLER)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let existing = match &next {
            Some(next) => updater.get_opt(next).await?,
            None => None,
        };
        let new = match existing {
            Some(existing) => {
                let index = rules::container_index(&existing, args.container.as_deref())
                    .map_err(Error::Invalid)?;
                let current = rules::image(&existing, index).unwrap_or_default();
                if current != image {
                    return Err(Error::Invalid(format!(
                        "found an update in progress to image {current}: continue it with --image={current} or roll it back with --rollback"
                    )));
                }
                println!(
                    "Found existing update in progress ({}), resuming.",
                    existing.name_any()
                );
                existing
            }
            None => rules::controller_for_image(
                &old,
                &rules::ImageChange {
                    image,
                    container: args.container.as_deref(),
                    pull_policy: args.image_pull_policy.as_deref(),
                    deployment_key: &args.deployment_label_key,
                    name: next.as_deref(),
                },
            )
            .map_err(Error::Invalid)?,
        };
        // "-orig": the old hash must differ from the new one even for the same image.
        let old_hash = format!("{}-orig", rules::hash(&old));
        if args.dry_run {
            // What the update would write, in memory only.
            let selector = old
                .spec
                .get_or_insert_default()
                .selector
                .get_or_insert_default();
            if !selector.contains_key(&args.deployment_label_key) {
                selector.insert(args.deployment_label_key.clone(), old_hash);
            }
        } else {
            old = updater
                .add_deployment_key(&old, &new.name_any(), &args.deployment_label_key, &old_hash)
                .await?;
        }
        target = Some(NewController::from_rc(new));
    }

    if args.rollback {
        let next = rules::annotation(&old, NEXT_CONTROLLER).unwrap_or_default();
        let partial = match next {
            "" => None,
            next => updater.get_opt(next).await?,
        };
        let Some(partial) = partial else {
            return Err(Error::Invalid(format!(
                "could not find the controller replacing {} to roll back",
                args.old
            )));
        };
        target = Some(NewController::from_rc(partial));
    }

    let Some(mut target) = target else {
        return Err(Error::Invalid(
            "must specify --filename or --image for new controller".into(),
        ));
    };
    if target.name() == args.old {
        return Err(Error::Invalid(format!(
            "{} cannot have the same name as the existing ReplicationController {}",
            args.source(),
            args.old
        )));
    }
    if !rules::selectors_differ(&rules::selector(&old), &manifest::selector(&target)) {
        return Err(Error::Invalid(format!(
            "{} must specify a matching key with non-equal value in Selector for {}",
            if args.filename.is_some() {
                args.source()
            } else {
                target.name().to_string()
            },
            args.old
        )));
    }
    if target.replicas_defaulted {
        target.set_replicas(rules::replicas(&old));
    }
    if args.dry_run {
        println!("Rolling from:\n{}\nTo:\n{}", args.old, target.name());
        return Ok(());
    }

    let new_name = target.name().to_string();
    let (old, target, cleanup) = if args.rollback {
        rollback(&updater, old, target.rc).await?
    } else {
        if rules::annotation(&old, NEXT_CONTROLLER) != Some(new_name.as_str()) {
            old = updater
                .patch(
                    &args.old,
                    json!({"metadata": {"annotations": {NEXT_CONTROLLER: new_name}}}),
                )
                .await?;
        }
        let cleanup = if keep_old_name {
            Cleanup::Rename
        } else {
            Cleanup::Delete
        };
        (old, target, cleanup)
    };
    updater.update(old, target, cleanup).await?;
    if keep_old_name {
        println!("replicationcontroller/{} rolling updated", args.old);
    } else {
        println!(
            "replicationcontroller/{} rolling updated to \"{new_name}\"",
            args.old
        );
    }
    Ok(())
}

/// kubectl's `AbortRollingUpdate`: swap the roles, so that the original controller grows
/// back to its original size while the partial new one shrinks and is deleted.
async fn rollback(
    updater: &Updater,
    original: ReplicationController,
    partial: ReplicationController,
) -> Result<(ReplicationController, NewController, Cleanup), Error> {
    let size = rules::annotation(&original, ORIGINAL_REPLICAS)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "couldn't find original replica count of \"{}\"",
                original.name_any()
            ))
        })?
        .to_string();
    println!("Setting \"{}\" replicas to {size}", original.name_any());
    let source_id = format!(
        "{}:{}",
        partial.name_any(),
        partial.uid().unwrap_or_default()
    );
    let original = updater
        .patch(
            &original.name_any(),
            json!({"metadata": {"annotations": {
                SOURCE_ID: source_id,
                rules::DESIRED_REPLICAS: size,
            }}}),
        )
        .await?;
    Ok((partial, NewController::from_rc(original), Cleanup::Delete))
}
