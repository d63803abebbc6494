//! `require-labels`: an example validating admission plugin.
//!
//! On create and update of the configured resources (the main resource, not a
//! subresource such as `status`), it refuses objects that lack any of the
//! configured labels in `metadata.labels`, with code 403 and the reason
//! `missing required label(s): app, team` (the missing labels in
//! configuration order). Everything else is allowed.
//!
//! Configuration (the plugin's `config` table in `hortator.toml`):
//!
//! ```toml
//! [[plugins.admission]]
//! name = "require-labels"
//! module = "examples/plugins/require_labels.wasm"
//! phase = "validating"
//! config = { labels = ["app", "team"], resources = ["pods"] }
//! ```
//!
//! * `labels`: label keys every object must carry (default `["app"]`);
//! * `resources`: plural resource names to check, in any API group (default
//!   `["pods", "replicationcontrollers", "services", "deployments"]`).

use hortator_sdk::admission::{Admission, Operation, Request, Response};
use hortator_sdk::serde_json::{Map, Value};

/// The labels required when the configuration names none.
const DEFAULT_LABELS: [&str; 1] = ["app"];
/// The resources checked when the configuration names none.
const DEFAULT_RESOURCES: [&str; 4] = ["pods", "replicationcontrollers", "services", "deployments"];

/// The plugin: its parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RequireLabels {
    /// Label keys every checked object must carry, in configuration order.
    labels: Vec<String>,
    /// Plural resource names (`pods`, `deployments` ...) that are checked.
    resources: Vec<String>,
}

impl Admission for RequireLabels {
    fn init(config: Value) -> Result<Self, String> {
        RequireLabels::from_config(&config)
    }

    fn admit(&self, request: &Request) -> Response {
        if !self.applies_to(request) {
            return Response::allow();
        }
        let object: Value = match request.object() {
            Ok(object) => object,
            // No or undecodable object: deny with 400 and the decoder's message.
            Err(error) => return error.into(),
        };
        let labels = object
            .get("metadata")
            .and_then(|metadata| metadata.get("labels"))
            .and_then(Value::as_object);
        self.verdict(labels)
    }
}

hortator_sdk::export_admission!(RequireLabels);

impl RequireLabels {
    /// Parses the configuration: a table with the optional keys `labels` and
    /// `resources`, each a list of non-empty strings.
    fn from_config(config: &Value) -> Result<Self, String> {
        let table = config.as_object().ok_or_else(|| {
            format!("require-labels: the configuration must be a table, not {config}")
        })?;
        if let Some(unknown) = table
            .keys()
            .find(|key| !matches!(key.as_str(), "labels" | "resources"))
        {
            return Err(format!(
                "require-labels: unknown configuration key {unknown:?} (expected \"labels\" and/or \"resources\")"
            ));
        }
        Ok(RequireLabels {
            labels: string_list(table, "labels", &DEFAULT_LABELS)?,
            resources: string_list(table, "resources", &DEFAULT_RESOURCES)?,
        })
    }

    /// Whether the request is checked: a create or update of a configured
    /// resource itself (not of a subresource).
    fn applies_to(&self, request: &Request) -> bool {
        matches!(request.operation, Operation::Create | Operation::Update)
            && request.sub_resource.is_empty()
            && self.resources.contains(&request.resource.resource)
    }

    /// The configured labels absent from `labels`, in configuration order.
    fn missing<'a>(&'a self, labels: Option<&Map<String, Value>>) -> Vec<&'a str> {
        self.labels
            .iter()
            .filter(|key| !labels.is_some_and(|labels| labels.contains_key(key.as_str())))
            .map(String::as_str)
            .collect()
    }

    /// Allows the object if it carries every configured label, else denies it.
    fn verdict(&self, labels: Option<&Map<String, Value>>) -> Response {
        let missing = self.missing(labels);
        if missing.is_empty() {
            Response::allow()
        } else {
            Response::deny(format!("missing required label(s): {}", missing.join(", ")))
        }
    }
}

/// The list of strings under `key`, or `default` when the key is absent.
fn string_list(
    table: &Map<String, Value>,
    key: &str,
    default: &[&str],
) -> Result<Vec<String>, String> {
    let Some(value) = table.get(key) else {
        return Ok(default.iter().map(|item| (*item).to_owned()).collect());
    };
    let not_a_list =
        || format!("require-labels: {key} must be a list of non-empty strings, not {value}");
    value
        .as_array()
        .ok_or_else(not_a_list)?
        .iter()
        .map(|item| match item.as_str() {
            Some(text) if !text.is_empty() => Ok(text.to_owned()),
            _ => Err(not_a_list()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hortator_sdk::GroupVersionResource;
    use hortator_sdk::admission::UserInfo;
    use hortator_sdk::serde_json::json;

    fn plugin(config: Value) -> RequireLabels {
        RequireLabels::from_config(&config).unwrap()
    }

    fn request(operation: Operation, group: &str, resource: &str, object: Value) -> Request {
        Request {
            uid: "1".into(),
            operation,
            resource: GroupVersionResource::new(group, "v1", resource),
            sub_resource: String::new(),
            kind: String::new(),
            namespace: "default".into(),
            name: "x".into(),
            user_info: UserInfo {
                username: "admin".into(),
                uid: String::new(),
                groups: Vec::new(),
            },
            object: Some(object.to_string()),
            old_object: None,
            dry_run: false,
        }
    }

    fn pod(labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "labels": labels}})
    }

    #[test]
    fn defaults() {
        for config in [json!({}), json!({"labels": ["app"]})] {
            let plugin = plugin(config);
            assert_eq!(plugin.labels, ["app"]);
            assert_eq!(
                plugin.resources,
                ["pods", "replicationcontrollers", "services", "deployments"]
            );
        }
    }

    #[test]
    fn denies_missing_labels_in_configuration_order() {
        let plugin = plugin(json!({"labels": ["app", "team", "tier"], "resources": ["pods"]}));
        let response = plugin.admit(&request(
            Operation::Create,
            "",
            "pods",
            pod(json!({"tier": "web"})),
        ));
        assert!(!response.allowed);
        assert_eq!(response.code, 403);
        assert_eq!(response.reason, "missing required label(s): app, team");

        let response = plugin.admit(&request(
            Operation::Update,
            "",
            "pods",
            pod(json!({"team": "a", "tier": "web"})),
        ));
        assert_eq!(
            (response.allowed, response.reason.as_str()),
            (false, "missing required label(s): app")
        );
    }

    #[test]
    fn allows_labelled_objects() {
        let plugin = plugin(json!({"labels": ["app", "team"]}));
        let labels = json!({"app": "web", "team": "", "extra": "1"});
        for (group, resource) in [
            ("", "pods"),
            ("", "services"),
            ("", "replicationcontrollers"),
            ("apps", "deployments"),
        ] {
            let object = json!({"metadata": {"name": "x", "labels": labels}});
            let response = plugin.admit(&request(Operation::Create, group, resource, object));
            assert!(response.allowed, "{resource}: {}", response.reason);
        }
    }

    #[test]
    fn objects_without_labels_miss_them_all() {
        let plugin = plugin(json!({"labels": ["app", "team"]}));
        for object in [
            json!({"metadata": {"name": "x"}}),
            json!({"metadata": {"name": "x", "labels": null}}),
            json!({}),
        ] {
            let response = plugin.admit(&request(Operation::Create, "apps", "deployments", object));
            assert_eq!(response.reason, "missing required label(s): app, team");
        }
    }

    #[test]
    fn ignores_other_requests() {
        let plugin = plugin(json!({"resources": ["pods"]}));
        let unlabelled = pod(json!({}));
        // Another resource.
        assert!(
            plugin
                .admit(&request(
                    Operation::Create,
                    "",
                    "services",
                    unlabelled.clone()
                ))
                .allowed
        );
        // Delete and connect.
        for operation in [Operation::Delete, Operation::Connect] {
            assert!(
                plugin
                    .admit(&request(operation, "", "pods", unlabelled.clone()))
                    .allowed
            );
        }
        // A subresource.
        let mut status = request(Operation::Update, "", "pods", unlabelled);
        status.sub_resource = "status".into();
        assert!(plugin.admit(&status).allowed);
    }

    #[test]
    fn undecodable_object_is_a_bad_request() {
        let plugin = plugin(json!({}));
        let mut broken = request(Operation::Create, "", "pods", json!({}));
        broken.object = Some("{not json".into());
        let response = plugin.admit(&broken);
        assert!(!response.allowed);
        assert_eq!(response.code, 400);
    }

    #[test]
    fn bad_configuration_is_refused() {
        for (config, message) in [
            (
                json!({"labels": "app"}),
                r#"require-labels: labels must be a list of non-empty strings, not "app""#,
            ),
            (
                json!({"labels": ["app", 7]}),
                r#"require-labels: labels must be a list of non-empty strings, not ["app",7]"#,
            ),
            (
                json!({"resources": [""]}),
                r#"require-labels: resources must be a list of non-empty strings, not [""]"#,
            ),
            (
                json!({"lables": ["app"]}),
                r#"require-labels: unknown configuration key "lables" (expected "labels" and/or "resources")"#,
            ),
            (
                json!(["app"]),
                r#"require-labels: the configuration must be a table, not ["app"]"#,
            ),
        ] {
            assert_eq!(RequireLabels::from_config(&config), Err(message.to_owned()));
        }
    }
}
