//! Server-side Table printing (`meta.k8s.io/v1` `Table`), as kube-apiserver does it for
//! `kubectl get` and `kubectl get -o wide`.
//!
//! The column definitions and cell logic follow kube-apiserver's printers
//! (`k8s.io/kubernetes/pkg/printers/internalversion/printers.go`). Like kube-apiserver, the rows
//! always carry every column (the server prints "wide"); kubectl hides the columns of priority 1
//! unless `-o wide` is asked for. Objects are plain JSON and may lack any field: missing values
//! print as kube prints the zero value (`<none>`, `<unknown>`, `0`, ...), never panic.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value};

/// One column: serialises as a metav1.TableColumnDefinition {name, type, format, description, priority}.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Column {
    /// Human-readable column name (kubectl upper-cases it for the header).
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean`, `date`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// OpenAPI format hint, e.g. `name` for the object-name column; empty otherwise.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0 = always shown; 1 = only shown by `kubectl get -o wide`.
    pub priority: i32,
}

const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
const AGE: Column = col("Age", "string", AGE_DESC);

static DEFAULT_COLUMNS: [Column; 2] = [NAME, AGE];

static POD_COLUMNS: [Column; 9] = [
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled.",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
];

static SERVICE_COLUMNS: [Column; 7] = [
    NAME,
    col(
        "Type",
        "string",
        "type determines how the Service is exposed.",
    ),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service.",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
];

static REPLICATION_CONTROLLER_COLUMNS: [Column; 8] = [
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replication controller.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the Replicas count.",
    ),
];

static REPLICA_SET_COLUMNS: [Column; 8] = [
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired pods.",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of non-terminating pods.",
    ),
    col(
        "Ready",
        "integer",
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count.",
    ),
];

static DEPLOYMENT_COLUMNS: [Column; 8] = [
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", "Label selector for pods."),
];

static DAEMON_SET_COLUMNS: [Column; 11] = [
    NAME,
    col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    col(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
    ),
    col(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod.",
    ),
    col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
    ),
    col(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set.",
    ),
];

static STATEFUL_SET_COLUMNS: [Column; 5] = [
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
];

static JOB_COLUMNS: [Column; 8] = [
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

static CRON_JOB_COLUMNS: [Column; 10] = [
    NAME,
    col("Schedule", "string", "The schedule in Cron format."),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule.",
    ),
    col(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions.",
    ),
    col(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    col(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

static NODE_COLUMNS: [Column; 10] = [
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node.",
    ),
    wide(
        "External-IP",
        "string",
        "List of addresses reachable to the node.",
    ),
    wide(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

static NAMESPACE_COLUMNS: [Column; 3] = [
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

static ENDPOINTS_COLUMNS: [Column; 3] = [
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
    ),
    AGE,
];

static CONFIG_MAP_COLUMNS: [Column; 3] = [
    NAME,
    col("Data", "string", "Data contains the configuration data."),
    AGE,
];

static SECRET_COLUMNS: [Column; 4] = [
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    col("Data", "string", "Data contains the secret data."),
    AGE,
];

static SERVICE_ACCOUNT_COLUMNS: [Column; 3] = [
    NAME,
    col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
    ),
    AGE,
];

static LEASE_COLUMNS: [Column; 3] = [
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE,
];

static EVENT_COLUMNS: [Column; 10] = [
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

/// Columns for a kind (by `kind` string, e.g. "Pod"); unknown kinds get Name + Age.
///
/// (kube-apiserver's own default convertor, used for kinds without a printer, shows Name and
/// "Created At"; Hortator shows Name and Age for them, like kubectl does for custom resources.)
pub fn columns(kind: &str) -> &'static [Column] {
    match kind {
        "Pod" => &POD_COLUMNS,
        "Service" => &SERVICE_COLUMNS,
        "ReplicationController" => &REPLICATION_CONTROLLER_COLUMNS,
        "ReplicaSet" => &REPLICA_SET_COLUMNS,
        "Deployment" => &DEPLOYMENT_COLUMNS,
        "DaemonSet" => &DAEMON_SET_COLUMNS,
        "StatefulSet" => &STATEFUL_SET_COLUMNS,
        "Job" => &JOB_COLUMNS,
        "CronJob" => &CRON_JOB_COLUMNS,
        "Node" => &NODE_COLUMNS,
        "Namespace" => &NAMESPACE_COLUMNS,
        "Endpoints" => &ENDPOINTS_COLUMNS,
        "ConfigMap" => &CONFIG_MAP_COLUMNS,
        "Secret" => &SECRET_COLUMNS,
        "ServiceAccount" => &SERVICE_ACCOUNT_COLUMNS,
        "Lease" => &LEASE_COLUMNS,
        "Event" => &EVENT_COLUMNS,
        _ => &DEFAULT_COLUMNS,
    }
}

/// Row cells (JSON values: strings, integers) for one object, same length/order as columns(kind).
pub fn cells(kind: &str, object: &Value, now: Timestamp) -> Vec<Value> {
    let o = object;
    let name = || Value::from(s(o, "/metadata/name"));
    let age = || Value::from(since(time(o, "/metadata/creationTimestamp"), now));
    match kind {
        "Pod" => pod_cells(o, now),
        "Service" => service_cells(o, now),
        "ReplicationController" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name(),
                Value::from(int_or(o, "/spec/replicas", 1)),
                Value::from(int(o, "/status/replicas")),
                Value::from(int(o, "/status/readyReplicas")),
                age(),
                Value::from(names),
                Value::from(images),
                Value::from(format_labels(o.pointer("/spec/selector"))),
            ]
        }
        "ReplicaSet" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name(),
                Value::from(int_or(o, "/spec/replicas", 1)),
                Value::from(int(o, "/status/replicas")),
                Value::from(int(o, "/status/readyReplicas")),
                age(),
                Value::from(names),
                Value::from(images),
                Value::from(format_label_selector(o.pointer("/spec/selector"))),
            ]
        }
        "Deployment" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            let selector = match label_selector_string(o.pointer("/spec/selector")) {
                Ok(selector) => selector,
                Err(()) => "<invalid>".to_owned(),
            };
            vec![
                name(),
                Value::from(format!(
                    "{}/{}",
                    int(o, "/status/readyReplicas"),
                    int_or(o, "/spec/replicas", 1)
                )),
                Value::from(int(o, "/status/updatedReplicas")),
                Value::from(int(o, "/status/availableReplicas")),
                age(),
                Value::from(names),
                Value::from(images),
                Value::from(selector),
            ]
        }
        "DaemonSet" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name(),
                Value::from(int(o, "/status/desiredNumberScheduled")),
                Value::from(int(o, "/status/currentNumberScheduled")),
                Value::from(int(o, "/status/numberReady")),
                Value::from(int(o, "/status/updatedNumberScheduled")),
                Value::from(int(o, "/status/numberAvailable")),
                Value::from(format_labels(o.pointer("/spec/template/spec/nodeSelector"))),
                age(),
                Value::from(names),
                Value::from(images),
                Value::from(format_label_selector(o.pointer("/spec/selector"))),
            ]
        }
        "StatefulSet" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name(),
                Value::from(format!(
                    "{}/{}",
                    int(o, "/status/readyReplicas"),
                    int_or(o, "/spec/replicas", 1)
                )),
                age(),
                Value::from(names),
                Value::from(images),
            ]
        }
        "Job" => job_cells(o, now),
        "CronJob" => {
            let (names, images) =
                container_cells(o, "/spec/jobTemplate/spec/template/spec/containers");
            let last_schedule = match time(o, "/status/lastScheduleTime") {
                Some(t) => since(Some(t), now),
                None => "<none>".to_owned(),
            };
            let suspend = match o.pointer("/spec/suspend").and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            vec![
                name(),
                Value::from(s(o, "/spec/schedule")),
                Value::from(non_empty_or(s(o, "/spec/timeZone"), "<none>")),
                Value::from(suspend),
                Value::from(arr(o, "/status/active").len()),
                Value::from(last_schedule),
                age(),
                Value::from(names),
                Value::from(images),
                Value::from(format_label_selector(
                    o.pointer("/spec/jobTemplate/spec/selector"),
                )),
            ]
        }
        "Node" => node_cells(o, now),
        "Namespace" => vec![name(), Value::from(s(o, "/status/phase")), age()],
        "Endpoints" => vec![name(), Value::from(format_endpoints(o)), age()],
        "ConfigMap" => vec![
            name(),
            Value::from(map_len(o, "/data") + map_len(o, "/binaryData")),
            age(),
        ],
        "Secret" => vec![
            name(),
            Value::from(s(o, "/type")),
            Value::from(map_len(o, "/data")),
            age(),
        ],
        "ServiceAccount" => vec![name(), Value::from(arr(o, "/secrets").len()), age()],
        "Lease" => vec![name(), Value::from(s(o, "/spec/holderIdentity")), age()],
        "Event" => event_cells(o, now),
        _ => vec![name(), age()],
    }
}

/// kubectl's human duration (duration.HumanDuration): "0s","59s","2m3s","10m","3h4m","2d3h","8d","3y45d" etc.
pub fn human_duration(d: Duration) -> String {
    human_duration_nanos(d.as_nanos().min(i128::MAX as u128) as i128)
}

/// `duration.HumanDuration` of k8s.io/apimachinery for a signed duration in nanoseconds.
fn human_duration_nanos(nanos: i128) -> String {
    const SECOND: i128 = 1_000_000_000;
    const MINUTE: i128 = 60 * SECOND;
    const HOUR: i128 = 60 * MINUTE;
    // Go converts with int(d.Seconds()), which truncates toward zero.
    let seconds = nanos / SECOND;
    if seconds < -1 {
        return "<invalid>".to_owned();
    } else if seconds < 0 {
        return "0s".to_owned();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MINUTE;
    if minutes < 10 {
        let s = (nanos / SECOND) % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = (nanos / MINUTE) % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{}h", hours / 24, h)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{}d", hours / 24 / 365, dy)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON access helpers: every one tolerates absent or ill-typed fields.

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, pointer: &str) -> i64 {
    int_or(v, pointer, 0)
}

fn int_or(v: &Value, pointer: &str, default: i64) -> i64 {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

fn boolean(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_len(v: &Value, pointer: &str) -> usize {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

/// Whether a pointer designates an object (a non-nil pointer field in Go).
fn present(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).is_some_and(Value::is_object)
}

fn time(v: &Value, pointer: &str) -> Option<Timestamp> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
}

fn non_empty_or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
}

/// `translateTimestampSince`: the human duration since `t`, or `<unknown>` without one.
fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration_nanos(now.duration_since(t).as_nanos()),
        None => "<unknown>".to_owned(),
    }
}

/// `layoutContainerCells`: the comma-joined names and images of the containers.
fn container_cells(v: &Value, pointer: &str) -> (String, String) {
    let containers = arr(v, pointer);
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, or `<none>`.
fn format_labels(labels: Option<&Value>) -> String {
    let Some(labels) = labels.and_then(Value::as_object) else {
        return "<none>".to_owned();
    };
    let mut pairs: Vec<(&String, &str)> = labels
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_owned();
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`; `Err` for an invalid selector.
fn label_selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let selector = selector.as_object().ok_or(())?;
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").filter(|v| !v.is_null()) {
        for (k, v) in labels.as_object().ok_or(())? {
            let v = v.as_str().ok_or(())?;
            requirements.push((k.clone(), format!("{k}={v}")));
        }
    }
    if let Some(expressions) = selector.get("matchExpressions").filter(|v| !v.is_null()) {
        for e in expressions.as_array().ok_or(())? {
            let key = e.get("key").and_then(Value::as_str).ok_or(())?;
            let mut values: Vec<&str> = Vec::new();
            for v in e
                .get("values")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
            {
                values.push(v.as_str().ok_or(())?);
            }
            values.sort_unstable();
            values.dedup();
            let text = match e.get("operator").and_then(Value::as_str) {
                Some("In") if !values.is_empty() => format!("{key} in ({})", values.join(",")),
                Some("NotIn") if !values.is_empty() => {
                    format!("{key} notin ({})", values.join(","))
                }
                Some("Exists") if values.is_empty() => key.to_owned(),
                Some("DoesNotExist") if values.is_empty() => format!("!{key}"),
                _ => return Err(()),
            };
            requirements.push((key.to_owned(), text));
        }
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: like [`label_selector_string`], `<none>` when empty.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Ok(text) if text.is_empty() => "<none>".to_owned(),
        Ok(text) => text,
        Err(()) => "<error>".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Pods

fn condition_status<'a>(conditions: &'a [Value], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| s(c, "/type") == type_)
        .map(|c| s(c, "/status"))
}

fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let spec_containers = arr(pod, "/spec/containers");
    let init_specs = arr(pod, "/spec/initContainers");
    let conditions = arr(pod, "/status/conditions");

    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total_containers = spec_containers.len();
    let mut ready_containers: usize = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = s(pod, "/status/phase");
    let mut reason = non_empty_or(phase, "Pending").to_owned();
    let status_reason = s(pod, "/status/reason");
    if !status_reason.is_empty() {
        reason = status_reason.to_owned();
    }
    if conditions
        .iter()
        .any(|c| s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_owned();
    }

    let is_restartable_init = |name: &str| {
        init_specs
            .iter()
            .find(|c| s(c, "/name") == name)
            .is_some_and(|c| s(c, "/restartPolicy") == "Always")
    };
    total_containers += init_specs
        .iter()
        .filter(|c| s(c, "/restartPolicy") == "Always")
        .count();

    let later =
        |current: Option<Timestamp>, candidate: Option<Timestamp>| match (current, candidate) {
            (Some(a), Some(b)) if b > a => Some(b),
            (None, b) => b,
            (a, _) => a,
        };

    let mut initializing = false;
    for (i, container) in arr(pod, "/status/initContainerStatuses").iter().enumerate() {
        let count = int(container, "/restartCount");
        restarts += count;
        let last_terminated = present(container, "/lastState/terminated");
        if last_terminated {
            last_restart = later(
                last_restart,
                time(container, "/lastState/terminated/finishedAt"),
            );
        }
        let restartable = is_restartable_init(s(container, "/name"));
        if restartable {
            restartable_init_restarts += count;
            if last_terminated {
                last_restartable_init_restart = later(
                    last_restartable_init_restart,
                    time(container, "/lastState/terminated/finishedAt"),
                );
            }
        }
        let terminated = present(container, "/state/terminated");
        let waiting_reason = s(container, "/state/waiting/reason");
        if terminated && int(container, "/state/terminated/exitCode") == 0 {
            continue;
        } else if restartable && boolean(container, "/started") {
            if boolean(container, "/ready") {
                ready_containers += 1;
            }
            continue;
        } else if terminated {
            let terminated_reason = s(container, "/state/terminated/reason");
            reason = if terminated_reason.is_empty() {
                let signal = int(container, "/state/terminated/signal");
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!(
                        "Init:ExitCode:{}",
                        int(container, "/state/terminated/exitCode")
                    )
                }
            } else {
                format!("Init:{terminated_reason}")
            };
        } else if present(container, "/state/waiting")
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_status(conditions, "Initialized") == Some("True") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for container in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(container, "/restartCount");
            if present(container, "/lastState/terminated") {
                last_restart = later(
                    last_restart,
                    time(container, "/lastState/terminated/finishedAt"),
                );
            }
            let waiting_reason = s(container, "/state/waiting/reason");
            let terminated = present(container, "/state/terminated");
            let terminated_reason = s(container, "/state/terminated/reason");
            if present(container, "/state/waiting") && !waiting_reason.is_empty() {
                reason = waiting_reason.to_owned();
            } else if terminated && !terminated_reason.is_empty() {
                reason = terminated_reason.to_owned();
            } else if terminated {
                let signal = int(container, "/state/terminated/signal");
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int(container, "/state/terminated/exitCode"))
                };
            } else if boolean(container, "/ready") && present(container, "/state/running") {
                has_running = true;
                ready_containers += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if conditions
                .iter()
                .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True")
            {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }

    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_owned();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let mut pod_ip = arr(pod, "/status/podIPs")
        .first()
        .map_or("", |ip| s(ip, "/ip"));
    if pod_ip.is_empty() {
        pod_ip = s(pod, "/status/podIP");
    }

    let gates = arr(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| condition_status(conditions, s(g, "/conditionType")) == Some("True"))
            .count();
        format!("{true_conditions}/{}", gates.len())
    };

    vec![
        Value::from(s(pod, "/metadata/name")),
        Value::from(format!("{ready_containers}/{total_containers}")),
        Value::from(reason),
        Value::from(restarts_text),
        Value::from(since(time(pod, "/metadata/creationTimestamp"), now)),
        Value::from(non_empty_or(pod_ip, "<none>")),
        Value::from(non_empty_or(s(pod, "/spec/nodeName"), "<none>")),
        Value::from(non_empty_or(s(pod, "/status/nominatedNodeName"), "<none>")),
        Value::from(readiness_gates),
    ]
}

// ---------------------------------------------------------------------------------------------
// Services

fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    let svc_type = non_empty_or(s(svc, "/spec/type"), "ClusterIP");
    let mut cluster_ip = arr(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or("");
    if cluster_ip.is_empty() {
        cluster_ip = s(svc, "/spec/clusterIP");
    }
    let ports: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int(p, "/port");
            let protocol = non_empty_or(s(p, "/protocol"), "TCP");
            let node_port = int(p, "/nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports.join(",")
    };
    vec![
        Value::from(s(svc, "/metadata/name")),
        Value::from(svc_type),
        Value::from(non_empty_or(cluster_ip, "<none>")),
        Value::from(service_external_ip(svc, svc_type)),
        Value::from(ports),
        Value::from(since(time(svc, "/metadata/creationTimestamp"), now)),
        Value::from(format_labels(svc.pointer("/spec/selector"))),
    ]
}

/// `getServiceExternalIP` (wide: the server always prints wide, so no clipping).
fn service_external_ip(svc: &Value, svc_type: &str) -> String {
    let external_ips: Vec<&str> = arr(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_owned()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let ingress: BTreeSet<&str> = arr(svc, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| non_empty_or(s(i, "/ip"), s(i, "/hostname")))
                .filter(|a| !a.is_empty())
                .collect();
            let mut results: Vec<&str> = ingress.into_iter().collect();
            results.extend(external_ips);
            if results.is_empty() {
                "<pending>".to_owned()
            } else {
                results.join(",")
            }
        }
        "ExternalName" => s(svc, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs

fn job_condition(job: &Value, type_: &str) -> bool {
    condition_status(arr(job, "/status/conditions"), type_) == Some("True")
}

fn job_cells(job: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int(job, "/status/succeeded");
    let completions = match job.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => {
            let parallelism = int(job, "/spec/parallelism");
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time(job, "/status/startTime"),
        time(job, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration_nanos(now.duration_since(start).as_nanos()),
        (Some(start), Some(end)) => human_duration_nanos(end.duration_since(start).as_nanos()),
    };
    let deleting = job
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let status = if job_condition(job, "Complete") {
        "Complete"
    } else if job_condition(job, "Failed") {
        "Failed"
    } else if deleting {
        "Terminating"
    } else if job_condition(job, "Suspended") {
        "Suspended"
    } else if job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(job, "/spec/template/spec/containers");
    vec![
        Value::from(s(job, "/metadata/name")),
        Value::from(status),
        Value::from(completions),
        Value::from(duration),
        Value::from(since(time(job, "/metadata/creationTimestamp"), now)),
        Value::from(names),
        Value::from(images),
        Value::from(format_label_selector(job.pointer("/spec/selector"))),
    ]
}

// ---------------------------------------------------------------------------------------------
// Nodes

fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    // The last condition of a type wins, as in kube's condition map.
    let ready = arr(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| s(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if s(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if boolean(node, "/spec/unschedulable") {
        status.push("SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    if let Some(labels) = node.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_owned());
                }
            } else if k == "kubernetes.io/role" {
                let v = v.as_str().unwrap_or("");
                if !v.is_empty() {
                    roles.insert(v.to_owned());
                }
            }
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };

    let address = |type_: &str| {
        arr(node, "/status/addresses")
            .iter()
            .find(|a| s(a, "/type") == type_)
            .map_or("<none>", |a| s(a, "/address"))
    };

    vec![
        Value::from(s(node, "/metadata/name")),
        Value::from(status.join(",")),
        Value::from(roles),
        Value::from(since(time(node, "/metadata/creationTimestamp"), now)),
        Value::from(s(node, "/status/nodeInfo/kubeletVersion")),
        Value::from(address("InternalIP")),
        Value::from(address("ExternalIP")),
        Value::from(non_empty_or(
            s(node, "/status/nodeInfo/osImage"),
            "<unknown>",
        )),
        Value::from(non_empty_or(
            s(node, "/status/nodeInfo/kernelVersion"),
            "<unknown>",
        )),
        Value::from(non_empty_or(
            s(node, "/status/nodeInfo/containerRuntimeVersion"),
            "<unknown>",
        )),
    ]
}

// ---------------------------------------------------------------------------------------------
// Endpoints

/// `formatEndpoints` with all ports: at most 3 `ip:port` then ` + N more...`.
fn format_endpoints(endpoints: &Value) -> String {
    let subsets = arr(endpoints, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets {
        let addresses = arr(subset, "/addresses");
        let ports = arr(subset, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(s(address, "/ip").to_owned());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = s(address, "/ip");
                let port = int(port, "/port");
                if ip.contains(':') {
                    list.push(format!("[{ip}]:{port}"));
                } else {
                    list.push(format!("{ip}:{port}"));
                }
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

// ---------------------------------------------------------------------------------------------
// Events (core/v1, and events.k8s.io/v1 field names as a fallback)

fn first_non_empty<'a>(values: &[&'a str]) -> &'a str {
    values.iter().copied().find(|v| !v.is_empty()).unwrap_or("")
}

fn event_cells(event: &Value, now: Timestamp) -> Vec<Value> {
    let first_time =
        time(event, "/firstTimestamp").or_else(|| time(event, "/deprecatedFirstTimestamp"));
    let first_seen = match first_time {
        Some(t) => since(Some(t), now),
        None => since(time(event, "/eventTime"), now),
    };
    let last_time =
        time(event, "/lastTimestamp").or_else(|| time(event, "/deprecatedLastTimestamp"));
    let mut last_seen = match last_time {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = event
        .pointer("/count")
        .or_else(|| event.pointer("/deprecatedCount"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if present(event, "/series") {
        last_seen = since(time(event, "/series/lastObservedTime"), now);
        count = int(event, "/series/count");
    } else if count == 0 {
        count = 1;
    }

    let involved = if present(event, "/involvedObject") {
        "/involvedObject"
    } else {
        "/regarding"
    };
    let kind = s(event, &format!("{involved}/kind")).to_lowercase();
    let object_name = s(event, &format!("{involved}/name"));
    let target = if object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{object_name}")
    };

    let component = first_non_empty(&[
        s(event, "/source/component"),
        s(event, "/deprecatedSource/component"),
        s(event, "/reportingComponent"),
        s(event, "/reportingController"),
    ]);
    let host = first_non_empty(&[
        s(event, "/source/host"),
        s(event, "/deprecatedSource/host"),
        s(event, "/reportingInstance"),
    ]);
    let source = if host.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {host}")
    };
    let message = first_non_empty(&[s(event, "/message"), s(event, "/note")]).trim();

    vec![
        Value::from(last_seen),
        Value::from(s(event, "/type")),
        Value::from(s(event, "/reason")),
        Value::from(target),
        Value::from(s(event, &format!("{involved}/fieldPath"))),
        Value::from(source),
        Value::from(message),
        Value::from(first_seen),
        Value::from(count),
        Value::from(s(event, "/metadata/name")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2025-01-10T12:00:00Z".parse().unwrap()
    }

    fn strings(cells: &[Value]) -> Vec<String> {
        cells
            .iter()
            .map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn human_duration_thresholds() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (123, "2m3s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 4 * 60 + 5, "3h4m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 59 * 60, "47h"),
            (48 * 3600, "2d"),
            (51 * 3600, "2d3h"),
            (8 * 86400 - 1, "7d23h"),
            (8 * 86400, "8d"),
            (2 * 365 * 86400 - 1, "729d"),
            (2 * 365 * 86400, "2y"),
            ((3 * 365 + 45) * 86400, "3y45d"),
            (8 * 365 * 86400, "8y"),
            (20 * 365 * 86400 + 86400, "20y"),
        ];
        for &(secs, expected) in cases {
            assert_eq!(
                human_duration(Duration::from_secs(secs)),
                expected,
                "{secs}s"
            );
        }
        assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
        assert_eq!(human_duration_nanos(-1_500_000_000), "0s");
        assert_eq!(human_duration_nanos(-2_000_000_000), "<invalid>");
    }

    #[test]
    fn column_and_cell_counts_agree() {
        for kind in [
            "Pod",
            "Service",
            "ReplicationController",
            "ReplicaSet",
            "Deployment",
            "DaemonSet",
            "StatefulSet",
            "Job",
            "CronJob",
            "Node",
            "Namespace",
            "Endpoints",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Lease",
            "Event",
            "Widget",
        ] {
            for object in [
                json!({}),
                json!(null),
                json!({"metadata": 3, "spec": "x", "status": []}),
            ] {
                assert_eq!(
                    columns(kind).len(),
                    cells(kind, &object, now()).len(),
                    "{kind}"
                );
            }
        }
    }

    #[test]
    fn column_definitions_serialise_like_kube() {
        let pod = columns("Pod");
        let names: Vec<_> = pod.iter().map(|c| (c.name, c.priority)).collect();
        assert_eq!(
            names,
            [
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1)
            ]
        );
        let v = serde_json::to_value(&pod[0]).unwrap();
        assert_eq!(v["name"], "Name");
        assert_eq!(v["type"], "string");
        assert_eq!(v["format"], "name");
        assert_eq!(v["priority"], 0);
        assert!(v["description"].is_string());
        let events: Vec<_> = columns("Event")
            .iter()
            .map(|c| (c.name, c.priority))
            .collect();
        assert_eq!(
            events,
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ]
        );
        let unknown: Vec<_> = columns("Widget").iter().map(|c| c.name).collect();
        assert_eq!(unknown, ["Name", "Age"]);
    }

    #[test]
    fn running_pod() {
        let pod = json!({
            "metadata": {"name": "httpd", "creationTimestamp": "2025-01-10T11:55:00Z"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "master", "image": "httpd"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.20.1.2",
                "podIPs": [{"ip": "10.20.1.2"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "master", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2025-01-10T11:55:02Z"}}
                }]
            }
        });
        assert_eq!(
            strings(&cells("Pod", &pod, now())),
            [
                "httpd",
                "1/1",
                "Running",
                "0",
                "5m",
                "10.20.1.2",
                "node-1",
                "<none>",
                "<none>"
            ]
        );
    }

    #[test]
    fn crash_looping_pod() {
        let pod = json!({
            "metadata": {"name": "web", "creationTimestamp": "2025-01-10T10:00:00Z"},
            "spec": {"nodeName": "node-2", "containers": [{"name": "a"}, {"name": "b"}],
                     "readinessGates": [{"conditionType": "example.com/gate"}]},
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.20.2.3"}],
                "conditions": [{"type": "Ready", "status": "False"},
                               {"type": "example.com/gate", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "ready": false, "restartCount": 3,
                     "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                     "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                  "finishedAt": "2025-01-10T11:55:00Z"}}},
                    {"name": "b", "ready": true, "restartCount": 1,
                     "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 2, "finishedAt": "2025-01-10T11:00:00Z"}}}
                ]
            }
        });
        assert_eq!(
            strings(&cells("Pod", &pod, now())),
            [
                "web",
                "1/2",
                "CrashLoopBackOff",
                "4 (5m ago)",
                "120m",
                "10.20.2.3",
                "node-2",
                "<none>",
                "1/1"
            ]
        );
    }

    #[test]
    fn pending_and_creating_pods() {
        let pending = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
                             "status": {"phase": "Pending"}});
        let c = strings(&cells("Pod", &pending, now()));
        assert_eq!(&c[..5], ["p", "0/1", "Pending", "0", "<unknown>"]);
        assert_eq!(&c[5..7], ["<none>", "<none>"]);

        let creating = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
                              "status": {"phase": "Pending", "containerStatuses": [
                                  {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(
            strings(&cells("Pod", &creating, now()))[2],
            "ContainerCreating"
        );

        let no_status = json!({"metadata": {"name": "p"}});
        assert_eq!(
            strings(&cells("Pod", &no_status, now()))[..3],
            ["p", "0/0", "Pending"]
        );
    }

    #[test]
    fn init_container_states() {
        let base = |statuses: Value| {
            json!({"metadata": {"name": "p"},
                   "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]},
                   "status": {"phase": "Pending", "initContainerStatuses": statuses,
                              "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "PodInitializing"}}}]}})
        };
        let status = |statuses: Value| strings(&cells("Pod", &base(statuses), now()))[2].clone();
        assert_eq!(
            status(
                json!([{"name": "i1", "state": {"running": {}}}, {"name": "i2", "state": {"waiting": {}}}])
            ),
            "Init:0/2"
        );
        assert_eq!(
            status(
                json!([{"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                          {"name": "i2", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])
            ),
            "Init:CrashLoopBackOff"
        );
        assert_eq!(
            status(json!([{"name": "i1", "state": {"terminated": {"exitCode": 3}}}])),
            "Init:ExitCode:3"
        );
        assert_eq!(
            status(
                json!([{"name": "i1", "state": {"terminated": {"exitCode": 137, "signal": 9}}}])
            ),
            "Init:Signal:9"
        );
        assert_eq!(
            status(
                json!([{"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                          {"name": "i2", "state": {"terminated": {"exitCode": 0}}}])
            ),
            "PodInitializing"
        );
    }

    #[test]
    fn terminated_pods() {
        let completed = json!({"metadata": {"name": "job-x"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
        assert_eq!(
            strings(&cells("Pod", &completed, now()))[..3],
            ["job-x", "0/1", "Completed"]
        );

        let killed = json!({"metadata": {"name": "k"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
        assert_eq!(strings(&cells("Pod", &killed, now()))[2], "Signal:9");

        let exit = json!({"metadata": {"name": "k"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 2}}}]}});
        assert_eq!(strings(&cells("Pod", &exit, now()))[2], "ExitCode:2");

        // One container completed, another still running: Running or NotReady.
        let mixed = |ready: &str| {
            json!({"metadata": {"name": "m"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": ready}],
                    "containerStatuses": [
                        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        {"name": "b", "ready": true, "state": {"running": {}}}]}})
        };
        assert_eq!(
            strings(&cells("Pod", &mixed("True"), now()))[1..3],
            ["1/2", "Running"]
        );
        assert_eq!(
            strings(&cells("Pod", &mixed("False"), now()))[2],
            "NotReady"
        );
    }

    #[test]
    fn terminating_and_lost_pods() {
        let terminating = json!({
            "metadata": {"name": "httpd", "creationTimestamp": "2025-01-09T12:00:00Z",
                         "deletionTimestamp": "2025-01-10T11:59:30Z"},
            "spec": {"containers": [{"name": "c"}], "nodeName": "n"},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "c", "ready": true, "state": {"running": {}}}]}
        });
        assert_eq!(
            strings(&cells("Pod", &terminating, now()))[..5],
            ["httpd", "1/1", "Terminating", "0", "24h"]
        );
        let lost = json!({"metadata": {"name": "p", "deletionTimestamp": "2025-01-10T11:59:30Z"},
                          "status": {"phase": "Running", "reason": "NodeLost"}});
        assert_eq!(strings(&cells("Pod", &lost, now()))[2], "Unknown");
        let finished = json!({"metadata": {"name": "p", "deletionTimestamp": "2025-01-10T11:59:30Z"},
                              "status": {"phase": "Succeeded"}});
        assert_eq!(strings(&cells("Pod", &finished, now()))[2], "Succeeded");
        let evicted =
            json!({"metadata": {"name": "p"}, "status": {"phase": "Failed", "reason": "Evicted"}});
        assert_eq!(strings(&cells("Pod", &evicted, now()))[2], "Evicted");
    }

    #[test]
    fn services() {
        let node_port = json!({
            "metadata": {"name": "httpd", "creationTimestamp": "2025-01-10T11:00:00Z"},
            "spec": {"type": "NodePort", "clusterIP": "10.0.0.12", "clusterIPs": ["10.0.0.12"],
                     "selector": {"name": "httpd", "app": "web"},
                     "ports": [{"port": 80, "targetPort": 80, "nodePort": 30080, "protocol": "TCP"},
                               {"port": 53, "protocol": "UDP", "nodePort": 30053}]}
        });
        assert_eq!(
            strings(&cells("Service", &node_port, now())),
            [
                "httpd",
                "NodePort",
                "10.0.0.12",
                "<none>",
                "80:30080/TCP,53:30053/UDP",
                "60m",
                "app=web,name=httpd"
            ]
        );
        let cluster_ip = json!({"metadata": {"name": "kubernetes"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "ports": [{"port": 443, "protocol": "TCP"}]}});
        assert_eq!(
            strings(&cells("Service", &cluster_ip, now())),
            [
                "kubernetes",
                "ClusterIP",
                "10.0.0.1",
                "<none>",
                "443/TCP",
                "<unknown>",
                "<none>"
            ]
        );
        let lb = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.0.0.7"], "ports": [{"port": 80, "nodePort": 31000}]}});
        assert_eq!(strings(&cells("Service", &lb, now()))[3], "<pending>");
        let lb_ready = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "externalIPs": ["192.168.1.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.5"}, {"hostname": "lb.example.com"}]}}});
        let c = strings(&cells("Service", &lb_ready, now()));
        assert_eq!(c[3], "203.0.113.5,lb.example.com,192.168.1.9");
        assert_eq!(c[4], "<none>");
        let headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "externalIPs": ["1.2.3.4"]}});
        assert_eq!(
            strings(&cells("Service", &headless, now()))[1..4],
            ["ClusterIP", "None", "1.2.3.4"]
        );
        let external = json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(
            strings(&cells("Service", &external, now()))[3],
            "db.example.com"
        );
    }

    #[test]
    fn controllers() {
        let rc = json!({
            "metadata": {"name": "httpdController", "creationTimestamp": "2025-01-10T11:58:00Z"},
            "spec": {"replicas": 3, "selector": {"name": "httpd"},
                     "template": {"spec": {"containers": [{"name": "httpd", "image": "registry-host:5000/httpd:latest"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2}
        });
        let c = cells("ReplicationController", &rc, now());
        assert_eq!(c[1], json!(3));
        assert_eq!(c[3], json!(2));
        assert_eq!(
            strings(&c),
            [
                "httpdController",
                "3",
                "3",
                "2",
                "2m",
                "httpd",
                "registry-host:5000/httpd:latest",
                "name=httpd"
            ]
        );

        let rs = json!({"metadata": {"name": "web-5d4f"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f"}},
                     "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}},
            "status": {"replicas": 2}});
        assert_eq!(
            strings(&cells("ReplicaSet", &rs, now())),
            [
                "web-5d4f",
                "2",
                "2",
                "0",
                "<unknown>",
                "a,b",
                "x,y",
                "app=web,pod-template-hash=5d4f"
            ]
        );

        let deploy = json!({"metadata": {"name": "web", "creationTimestamp": "2025-01-07T09:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                          {"key": "canary", "operator": "DoesNotExist"}]},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
            "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}});
        let c = cells("Deployment", &deploy, now());
        assert_eq!(c[2], json!(3));
        assert_eq!(
            strings(&c),
            [
                "web",
                "2/3",
                "3",
                "2",
                "3d3h",
                "nginx",
                "nginx:1.27",
                "app=web,!canary,tier in (a,b)"
            ]
        );
        // kube sorts requirements by key: "!canary" sorts under "canary".
        let no_selector = json!({"metadata": {"name": "d"}});
        assert_eq!(strings(&cells("Deployment", &no_selector, now()))[7], "");
        assert_eq!(
            strings(&cells("ReplicaSet", &no_selector, now()))[7],
            "<none>"
        );
    }

    #[test]
    fn nodes() {
        let node = json!({
            "metadata": {"name": "node-1", "creationTimestamp": "2025-01-01T12:00:00Z",
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker",
                                    "node-role.kubernetes.io/": "x", "kubernetes.io/hostname": "node-1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.0.10"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "hortator://0.1.0"}
            }
        });
        assert_eq!(
            strings(&cells("Node", &node, now())),
            [
                "node-1",
                "Ready,SchedulingDisabled",
                "control-plane,worker",
                "9d",
                "v1.32.0",
                "192.168.0.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "hortator://0.1.0"
            ]
        );
        let not_ready = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(
            strings(&cells("Node", &not_ready, now())),
            [
                "n",
                "NotReady",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]
        );
        let bare = json!({"metadata": {"name": "n"}});
        assert_eq!(strings(&cells("Node", &bare, now()))[1], "Unknown");
    }

    #[test]
    fn simple_kinds() {
        let ns = json!({"metadata": {"name": "default", "creationTimestamp": "2025-01-10T11:59:00Z"},
                        "status": {"phase": "Active"}});
        assert_eq!(
            strings(&cells("Namespace", &ns, now())),
            ["default", "Active", "60s"]
        );

        let cm = json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(
            cells("ConfigMap", &cm, now()),
            [json!("cfg"), json!(3), json!("<unknown>")]
        );

        let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}});
        assert_eq!(
            cells("Secret", &secret, now()),
            [json!("s"), json!("Opaque"), json!(1), json!("<unknown>")]
        );

        let lease = json!({"metadata": {"name": "node-1", "creationTimestamp": "2025-01-10T11:59:58Z"},
                           "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}});
        assert_eq!(
            strings(&cells("Lease", &lease, now())),
            ["node-1", "node-1", "2s"]
        );

        let widget =
            json!({"metadata": {"name": "w", "creationTimestamp": "2025-01-10T12:00:01Z"}});
        assert_eq!(strings(&cells("Widget", &widget, now())), ["w", "0s"]);
        let future =
            json!({"metadata": {"name": "w", "creationTimestamp": "2025-01-10T12:00:30Z"}});
        assert_eq!(
            strings(&cells("Widget", &future, now())),
            ["w", "<invalid>"]
        );
    }

    #[test]
    fn endpoints() {
        let ep = |n: usize| {
            let addresses: Vec<Value> = (1..=n)
                .map(|i| json!({"ip": format!("10.20.{i}.2")}))
                .collect();
            json!({"metadata": {"name": "httpd"}, "subsets": [{"addresses": addresses, "ports": [{"port": 80}]}]})
        };
        assert_eq!(
            strings(&cells("Endpoints", &ep(2), now()))[1],
            "10.20.1.2:80,10.20.2.2:80"
        );
        assert_eq!(
            strings(&cells("Endpoints", &ep(5), now()))[1],
            "10.20.1.2:80,10.20.2.2:80,10.20.3.2:80 + 2 more..."
        );
        let none = json!({"metadata": {"name": "httpd"}});
        assert_eq!(strings(&cells("Endpoints", &none, now()))[1], "<none>");
        let headless = json!({"metadata": {"name": "h"},
            "subsets": [{"addresses": [{"ip": "10.1.1.1"}, {"ip": "fd00::1"}]}, {"addresses": [{"ip": "fd00::2"}], "ports": [{"port": 53}]}]});
        assert_eq!(
            strings(&cells("Endpoints", &headless, now()))[1],
            "10.1.1.1,fd00::1,[fd00::2]:53"
        );
    }

    #[test]
    fn events() {
        let event = json!({
            "metadata": {"name": "httpd.17a0b2c3d4e5f601", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "httpd", "namespace": "default",
                               "fieldPath": "spec.containers{master}"},
            "reason": "Pulled",
            "message": "Successfully pulled image \"httpd\"\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2025-01-10T11:50:00Z",
            "lastTimestamp": "2025-01-10T11:58:30Z",
            "count": 2,
            "type": "Normal"
        });
        let c = cells("Event", &event, now());
        assert_eq!(c[8], json!(2));
        assert_eq!(
            strings(&c),
            [
                "90s",
                "Normal",
                "Pulled",
                "pod/httpd",
                "spec.containers{master}",
                "kubelet, node-1",
                "Successfully pulled image \"httpd\"",
                "10m",
                "2",
                "httpd.17a0b2c3d4e5f601"
            ]
        );
        let new_style = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node"},
            "eventTime": "2025-01-10T11:59:00.000000Z",
            "reportingComponent": "scheduler",
            "type": "Warning", "reason": "FailedScheduling", "message": "0/1 nodes are available"
        });
        assert_eq!(
            strings(&cells("Event", &new_style, now())),
            [
                "60s",
                "Warning",
                "FailedScheduling",
                "node",
                "",
                "scheduler",
                "0/1 nodes are available",
                "60s",
                "1",
                "e"
            ]
        );
        let series = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
                            "eventTime": "2025-01-10T11:00:00.000000Z",
                            "series": {"count": 7, "lastObservedTime": "2025-01-10T11:59:55.000000Z"}});
        let c = strings(&cells("Event", &series, now()));
        assert_eq!(
            (c[0].as_str(), c[7].as_str(), c[8].as_str()),
            ("5s", "60m", "7")
        );
    }

    #[test]
    fn jobs_and_others() {
        let job = json!({"metadata": {"name": "pi", "creationTimestamp": "2025-01-10T11:50:00Z"},
            "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {"succeeded": 1, "startTime": "2025-01-10T11:50:00Z", "completionTime": "2025-01-10T11:50:42Z",
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
        assert_eq!(
            strings(&cells("Job", &job, now())),
            [
                "pi",
                "Complete",
                "1/1",
                "42s",
                "10m",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=u"
            ]
        );
        let ds = json!({"metadata": {"name": "ds"}, "spec": {"template": {"spec": {"nodeSelector": {"os": "linux"}}}},
                        "status": {"desiredNumberScheduled": 2, "numberReady": 1}});
        assert_eq!(
            strings(&cells("DaemonSet", &ds, now()))[1..7],
            ["2", "0", "1", "0", "0", "os=linux"]
        );
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 1}});
        assert_eq!(strings(&cells("StatefulSet", &sts, now()))[1], "1/3");
        let cj = json!({"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "suspend": false}});
        assert_eq!(
            strings(&cells("CronJob", &cj, now()))[1..6],
            ["*/5 * * * *", "<none>", "False", "0", "<none>"]
        );
    }
}
