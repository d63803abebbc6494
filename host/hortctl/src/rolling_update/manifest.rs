//! The new controller of `-f`: a JSON or YAML document, v1 or the legacy v1beta1 of the seed.
//! A v1beta1 document is read through Hortator's conversion and created through the legacy
//! API, as `kubectl create -f` does, so that names of that era stay accepted.

use std::collections::BTreeMap;

use hortator_api::convert;
use k8s_openapi::api::core::v1::ReplicationController;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::rules::{DESIRED_REPLICAS, SOURCE_ID};

/// A replication controller read from a file.
#[derive(Debug)]
pub struct NewController {
    /// The controller, in v1.
    pub rc: ReplicationController,
    /// The v1beta1 document it was read from, when it was one.
    pub legacy: Option<Value>,
    /// Whether the document left `replicas` unset (the old controller's count applies).
    pub replicas_defaulted: bool,
}

impl NewController {
    /// A controller built here rather than read from a file.
    pub fn from_rc(rc: ReplicationController) -> NewController {
        NewController {
            rc,
            legacy: None,
            replicas_defaulted: false,
        }
    }

    /// The name of the controller.
    pub fn name(&self) -> &str {
        self.rc.metadata.name.as_deref().unwrap_or_default()
    }

    /// Set `spec.replicas`.
    pub fn set_replicas(&mut self, replicas: i32) {
        self.rc.spec.get_or_insert_default().replicas = Some(replicas);
        if let Some(doc) = self.legacy.as_mut() {
            set(doc, "desiredState", "replicas", Value::from(replicas));
        }
    }

    /// Prepare for creation as the target of an update from `source_id`: zero replicas, the
    /// wanted count in an annotation.
    pub fn prepare(&mut self, desired: i32, source_id: &str) {
        let entries = [
            (DESIRED_REPLICAS, desired.to_string()),
            (SOURCE_ID, source_id.to_string()),
        ];
        let annotations = self.rc.metadata.annotations.get_or_insert_default();
        for (k, v) in &entries {
            annotations.insert(k.to_string(), v.clone());
        }
        if let Some(doc) = self.legacy.as_mut() {
            for (k, v) in entries {
                set(doc, "annotations", k, Value::from(v));
            }
        }
        self.set_replicas(0);
    }

    /// The namespace named in the document, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.rc
            .metadata
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
    }
}

/// `doc[object][key] = value`, creating `doc[object]` when missing.
fn set(doc: &mut Value, object: &str, key: &str, value: Value) {
    if let Value::Object(root) = doc {
        let entry = root
            .entry(object)
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let Value::Object(m) = entry {
            m.insert(key.to_string(), value);
        }
    }
}

/// The documents of `text`: one JSON value, or YAML documents (empty ones skipped); lists
/// are flattened into their items.
fn documents(text: &str, source: &str) -> Result<Vec<Value>, String> {
    let values: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(value) => vec![value],
        Err(_) => serde_yaml::Deserializer::from_str(text)
            .map(Value::deserialize)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{source}: cannot parse as JSON or YAML: {e}"))?,
    };
    let mut out = Vec::new();
    for value in values {
        match value {
            Value::Null => {}
            Value::Object(ref m)
                if m.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && m.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = m.get("items") {
                    out.extend(items.iter().cloned());
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Read the one replication controller of `text` (from `source`, for messages).
pub fn parse(text: &str, source: &str) -> Result<NewController, String> {
    let mut docs = documents(text, source)?;
    if docs.len() > 1 {
        return Err(format!("{source} specifies multiple items"));
    }
    let doc = docs
        .pop()
        .ok_or_else(|| format!("please make sure {source} exists and is not empty"))?;
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind != "ReplicationController" || !matches!(api_version.as_str(), "v1" | "v1beta1") {
        return Err(format!(
            "{source} contains a {} ({}), not a ReplicationController",
            if kind.is_empty() {
                "document without kind"
            } else {
                &kind
            },
            if api_version.is_empty() {
                "no apiVersion"
            } else {
                &api_version
            },
        ));
    }
    let (v1, legacy, replicas_defaulted) = if api_version == "v1beta1" {
        let v1 = convert::v1beta1_to_v1(&doc).map_err(|e| format!("{source}: {e}"))?;
        let defaulted = doc.pointer("/desiredState/replicas").is_none();
        (v1, Some(doc), defaulted)
    } else {
        let defaulted = doc.pointer("/spec/replicas").is_none_or(Value::is_null);
        (doc, None, defaulted)
    };
    let rc: ReplicationController =
        serde_json::from_value(v1).map_err(|e| format!("{source}: {e}"))?;
    if rc.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(format!("{source}: the new controller needs a name"));
    }
    Ok(NewController {
        rc,
        legacy,
        replicas_defaulted,
    })
}

/// The selector of the new controller (empty when unset).
pub fn selector(new: &NewController) -> BTreeMap<String, String> {
    super::rules::selector(&new.rc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../../../examples/seed/httpd-controller.json");

    #[test]
    fn the_seed_controller_reads_as_v1beta1() {
        let new = parse(SEED, "httpd-controller.json").unwrap();
        assert_eq!(new.name(), "httpdController");
        assert_eq!(selector(&new)["name"], "httpd");
        assert!(!new.replicas_defaulted);
        assert_eq!(new.rc.spec.as_ref().unwrap().replicas, Some(3));
        assert!(new.legacy.is_some());
    }

    #[test]
    fn prepare_sets_annotations_and_zero_replicas_in_both_forms() {
        let mut new = parse(SEED, "f").unwrap();
        new.prepare(3, "httpd:uid");
        let doc = new.legacy.as_ref().unwrap();
        assert_eq!(doc["desiredState"]["replicas"], 0);
        assert_eq!(doc["annotations"][DESIRED_REPLICAS], "3");
        assert_eq!(doc["annotations"][SOURCE_ID], "httpd:uid");
        // The legacy document still converts, with the annotations.
        let v1 = convert::v1beta1_to_v1(doc).unwrap();
        assert_eq!(v1["metadata"]["annotations"][DESIRED_REPLICAS], "3");
        assert_eq!(new.rc.spec.as_ref().unwrap().replicas, Some(0));
    }

    #[test]
    fn yaml_v1_with_defaulted_replicas() {
        let yaml = "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: web-v2\nspec:\n  selector: {app: web, version: v2}\n  template:\n    metadata:\n      labels: {app: web, version: v2}\n    spec:\n      containers:\n      - {name: web, image: 'img:2'}\n";
        let new = parse(yaml, "web.yaml").unwrap();
        assert_eq!(new.name(), "web-v2");
        assert!(new.replicas_defaulted && new.legacy.is_none());
        let list = format!(
            "{{\"kind\": \"List\", \"apiVersion\": \"v1\", \"items\": [{}]}}",
            serde_json::to_string(&serde_yaml::from_str::<Value>(yaml).unwrap()).unwrap()
        );
        assert_eq!(parse(&list, "l").unwrap().name(), "web-v2");
    }

    #[test]
    fn wrong_documents_are_refused() {
        let pod = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"p\"}}";
        assert_eq!(
            parse(pod, "p.json").unwrap_err(),
            "p.json contains a Pod (v1), not a ReplicationController"
        );
        assert_eq!(
            parse("", "e.yaml").unwrap_err(),
            "please make sure e.yaml exists and is not empty"
        );
        let two = "kind: ReplicationController\napiVersion: v1\n---\nkind: ReplicationController\napiVersion: v1\n";
        assert_eq!(
            parse(two, "two.yaml").unwrap_err(),
            "two.yaml specifies multiple items"
        );
        assert!(
            parse("{not json", "x")
                .unwrap_err()
                .starts_with("x: cannot parse")
        );
    }
}
