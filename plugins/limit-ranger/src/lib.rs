//! Kubernetes' `LimitRanger` admission plugin for pods (mutating).
//!
//! On pod creation it lists the `LimitRange`s of the pod's namespace (and
//! allows the pod untouched, without decoding it, when there are none), then:
//!
//! 1. Defaults: a container with a limit but no request for a resource gets
//!    the limit as request (Kubernetes' API defaulting); then every container
//!    and init container missing a request or limit gets the `defaultRequest`
//!    or `default` of the ranges' `Container` items. A range item's own
//!    defaults follow Kubernetes too: `default` falls back to `max`,
//!    `defaultRequest` to `default`, then to `min`. What was set is recorded
//!    in the annotation `kubernetes.io/limit-ranger`, e.g.
//!    `LimitRanger plugin set: cpu, memory request for container app; cpu limit for container app`.
//! 2. Limits: `min`, `max` and `maxLimitRequestRatio` of `Container` items
//!    hold for each container, and of `Pod` items for the pod's total (sum of
//!    the containers, at least any init container). Violations deny the pod
//!    (403) with Kubernetes' messages, several inside `[...]`:
//!    `maximum cpu usage per Container is 2, but limit is 4`.
//!
//! The changes come back as an RFC 6902 patch. Needs `cluster-read`.

use std::collections::BTreeMap;

use hortator_sdk::admission::{Admission, Operation, PatchOp, Request, Response, json_pointer};
use hortator_sdk::k8s::api::core::v1::{
    Container, LimitRange, LimitRangeItem, Pod, ResourceRequirements,
};
use hortator_sdk::k8s::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use hortator_sdk::quantity::Quantity;
use hortator_sdk::serde_json::{self, Map, Value};
use hortator_sdk::{GroupVersionResource, cluster};

/// The annotation that records the defaults applied.
const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Resource name to amount.
type ResourceList = BTreeMap<String, Quantity>;

struct LimitRanger;

impl Admission for LimitRanger {
    fn init(_config: Value) -> Result<Self, String> {
        Ok(LimitRanger)
    }

    fn admit(&self, request: &Request) -> Response {
        admit(request, |namespace| {
            cluster::list(&GroupVersionResource::of::<LimitRange>(), namespace, "")
        })
    }
}

hortator_sdk::export_admission!(LimitRanger);

/// The decision, with the namespace's limit ranges listed through `list`.
fn admit(
    request: &Request,
    list: impl FnOnce(&str) -> Result<Vec<LimitRange>, cluster::Error>,
) -> Response {
    let is_pod_create = request.resource.group.is_empty()
        && request.resource.resource == "pods"
        && request.sub_resource.is_empty()
        && request.operation == Operation::Create;
    if !is_pod_create {
        return Response::allow();
    }
    // The ranges first: without any, the pod need not be decoded at all.
    let mut ranges = match list(&request.namespace) {
        Ok(ranges) => ranges,
        Err(cluster::Error::NotGranted) => {
            return Response::deny(
                "limit-ranger needs cluster-read: set cluster-read = true in its plugin configuration",
            )
            .with_code(500);
        }
        Err(error) => {
            return Response::deny(format!(
                "limit-ranger cannot list the limit ranges of namespace {}: {error}",
                request.namespace
            ))
            .with_code(500);
        }
    };
    if ranges.is_empty() {
        return Response::allow();
    }
    let pod: Pod = match request.object() {
        Ok(pod) => pod,
        Err(error) => return error.into(),
    };
    ranges.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    match limit_pod(&pod, &ranges) {
        Ok(patch) => Response::allow().with_patch(patch),
        Err(reason) => Response::deny(reason),
    }
}

/// One item of a LimitRange, parsed, with Kubernetes' defaults in place.
struct Item {
    kind: String,
    min: ResourceList,
    max: ResourceList,
    default: ResourceList,
    default_request: ResourceList,
    max_limit_request_ratio: ResourceList,
}

impl Item {
    fn parse(range: &LimitRange, item: &LimitRangeItem) -> Result<Self, String> {
        let parse = |list: &Option<BTreeMap<String, K8sQuantity>>| {
            parse_list(list).map_err(|error| {
                format!(
                    "LimitRange {}: {error}",
                    range.metadata.name.as_deref().unwrap_or_default()
                )
            })
        };
        let mut item = Item {
            kind: item.type_.clone(),
            min: parse(&item.min)?,
            max: parse(&item.max)?,
            default: parse(&item.default)?,
            default_request: parse(&item.default_request)?,
            max_limit_request_ratio: parse(&item.max_limit_request_ratio)?,
        };
        if item.kind == "Container" {
            fill_missing(&mut item.default, &item.max);
            fill_missing(&mut item.default_request, &item.default);
            fill_missing(&mut item.default_request, &item.min);
        }
        Ok(item)
    }
}

fn parse_list(list: &Option<BTreeMap<String, K8sQuantity>>) -> Result<ResourceList, String> {
    list.iter()
        .flatten()
        .map(|(name, quantity)| {
            Quantity::try_from(quantity)
                .map(|quantity| (name.clone(), quantity))
                .map_err(|error| error.to_string())
        })
        .collect()
}

/// Copies into `list` the entries of `defaults` it lacks; returns their names.
fn fill_missing(list: &mut ResourceList, defaults: &ResourceList) -> Vec<String> {
    let mut filled = Vec::new();
    for (name, quantity) in defaults {
        if !list.contains_key(name) {
            list.insert(name.clone(), quantity.clone());
            filled.push(name.clone());
        }
    }
    filled
}

/// A container or init container being admitted.
struct Working<'a> {
    container: &'a Container,
    /// Its index in `containers` or `initContainers`.
    index: usize,
    init: bool,
    requests: ResourceList,
    limits: ResourceList,
    changed: bool,
}

impl<'a> Working<'a> {
    fn new(container: &'a Container, index: usize, init: bool) -> Result<Self, String> {
        let resources = container.resources.as_ref();
        let list = |pick: fn(&ResourceRequirements) -> &Option<BTreeMap<String, K8sQuantity>>| {
            parse_list(resources.map_or(&None, pick))
                .map_err(|error| format!("container {}: {error}", container.name))
        };
        Ok(Working {
            container,
            index,
            init,
            requests: list(|r| &r.requests)?,
            limits: list(|r| &r.limits)?,
            changed: false,
        })
    }

    fn restartable(&self) -> bool {
        self.init && self.container.restart_policy.as_deref() == Some("Always")
    }

    fn describe(&self) -> String {
        let kind = if self.init {
            "init container"
        } else {
            "container"
        };
        format!("{kind} {}", self.container.name)
    }

    fn patch(&self) -> PatchOp {
        let to_k8s = |list: &ResourceList| {
            (!list.is_empty()).then(|| {
                list.iter()
                    .map(|(name, quantity)| (name.clone(), K8sQuantity(quantity.to_string())))
                    .collect()
            })
        };
        let mut resources = self.container.resources.clone().unwrap_or_default();
        resources.requests = to_k8s(&self.requests);
        resources.limits = to_k8s(&self.limits);
        let field = if self.init {
            "initContainers"
        } else {
            "containers"
        };
        PatchOp::add(
            json_pointer(["spec", field, &self.index.to_string(), "resources"]),
            serde_json::to_value(resources).expect("resource requirements serialize"),
        )
    }
}

/// Applies the ranges' defaults and checks their limits: the patch, or why
/// the pod is refused.
fn limit_pod(pod: &Pod, ranges: &[LimitRange]) -> Result<Vec<PatchOp>, String> {
    let Some(spec) = &pod.spec else {
        return Ok(Vec::new());
    };
    let items = ranges
        .iter()
        .map(|range| {
            range
                .spec
                .iter()
                .flat_map(|spec| &spec.limits)
                .map(|item| Item::parse(range, item))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut containers = Vec::new();
    for (index, container) in spec.containers.iter().enumerate() {
        containers.push(Working::new(container, index, false)?);
    }
    for (index, container) in spec.init_containers.iter().flatten().enumerate() {
        containers.push(Working::new(container, index, true)?);
    }

    // Kubernetes' API defaulting: a limit without a request is the request.
    for container in &mut containers {
        let limits = container.limits.clone();
        container.changed |= !fill_missing(&mut container.requests, &limits).is_empty();
    }

    let mut notes = Vec::new();
    for range_items in &items {
        let mut default_limits = ResourceList::new();
        let mut default_requests = ResourceList::new();
        for item in range_items.iter().filter(|item| item.kind == "Container") {
            default_limits.extend(item.default.clone());
            default_requests.extend(item.default_request.clone());
        }
        for container in &mut containers {
            let limits = fill_missing(&mut container.limits, &default_limits);
            let requests = fill_missing(&mut container.requests, &default_requests);
            if !requests.is_empty() {
                notes.push(format!(
                    "{} request for {}",
                    requests.join(", "),
                    container.describe()
                ));
            }
            if !limits.is_empty() {
                notes.push(format!(
                    "{} limit for {}",
                    limits.join(", "),
                    container.describe()
                ));
            }
            container.changed |= !(limits.is_empty() && requests.is_empty());
        }
    }

    let mut errors = Vec::new();
    for item in items.iter().flatten() {
        match item.kind.as_str() {
            "Container" => {
                for container in &containers {
                    check(
                        item,
                        "Container",
                        &container.requests,
                        &container.limits,
                        &mut errors,
                    );
                }
            }
            "Pod" => {
                let requests = pod_total(&containers, |c| &c.requests);
                let limits = pod_total(&containers, |c| &c.limits);
                check(item, "Pod", &requests, &limits, &mut errors);
            }
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(aggregate(errors));
    }

    let mut patch: Vec<PatchOp> = containers
        .iter()
        .filter(|container| container.changed)
        .map(Working::patch)
        .collect();
    if !notes.is_empty() {
        let value = format!("LimitRanger plugin set: {}", notes.join("; "));
        patch.push(if pod.metadata.annotations.is_some() {
            PatchOp::add(json_pointer(["metadata", "annotations", ANNOTATION]), value)
        } else {
            let mut annotations = Map::new();
            annotations.insert(ANNOTATION.to_owned(), value.into());
            PatchOp::add(json_pointer(["metadata", "annotations"]), annotations)
        });
    }
    Ok(patch)
}

/// The pod's total of requests or limits, as Kubernetes computes it: the sum
/// over the containers and restartable (sidecar) init containers, at least
/// the largest need of any other init container plus the sidecars started
/// before it.
fn pod_total(
    containers: &[Working],
    pick: for<'a> fn(&'a Working) -> &'a ResourceList,
) -> ResourceList {
    let mut total = ResourceList::new();
    for container in containers.iter().filter(|c| !c.init) {
        add_into(&mut total, pick(container));
    }
    let mut sidecars = ResourceList::new();
    let mut init_peak = ResourceList::new();
    for container in containers.iter().filter(|c| c.init) {
        let need = if container.restartable() {
            add_into(&mut total, pick(container));
            add_into(&mut sidecars, pick(container));
            sidecars.clone()
        } else {
            let mut need = pick(container).clone();
            add_into(&mut need, &sidecars);
            need
        };
        max_into(&mut init_peak, &need);
    }
    max_into(&mut total, &init_peak);
    total
}

fn add_into(total: &mut ResourceList, amounts: &ResourceList) {
    for (name, amount) in amounts {
        match total.get_mut(name) {
            Some(sum) => *sum = &*sum + amount,
            None => {
                total.insert(name.clone(), amount.clone());
            }
        }
    }
}

fn max_into(peak: &mut ResourceList, amounts: &ResourceList) {
    for (name, amount) in amounts {
        if peak.get(name).is_none_or(|current| amount > current) {
            peak.insert(name.clone(), amount.clone());
        }
    }
}

/// Checks one item's min, max and maxLimitRequestRatio against requests and
/// limits, with Kubernetes' messages.
fn check(
    item: &Item,
    kind: &str,
    requests: &ResourceList,
    limits: &ResourceList,
    errors: &mut Vec<String>,
) {
    let milli = |list: &ResourceList, name: &str| list.get(name).map(Quantity::milli_value);
    for (name, enforced) in &item.min {
        let minimum = enforced.milli_value();
        match (requests.get(name), milli(limits, name)) {
            (None, _) => errors.push(format!(
                "minimum {name} usage per {kind} is {enforced}.  No request is specified"
            )),
            (Some(request), _) if request.milli_value() < minimum => errors.push(format!(
                "minimum {name} usage per {kind} is {enforced}, but request is {request}"
            )),
            (_, Some(limit)) if limit < minimum => errors.push(format!(
                "minimum {name} usage per {kind} is {enforced}, but limit is {}",
                limits[name]
            )),
            _ => {}
        }
    }
    for (name, enforced) in &item.max {
        let maximum = enforced.milli_value();
        match (limits.get(name), milli(requests, name)) {
            (None, _) => errors.push(format!(
                "maximum {name} usage per {kind} is {enforced}.  No limit is specified"
            )),
            (Some(limit), _) if limit.milli_value() > maximum => errors.push(format!(
                "maximum {name} usage per {kind} is {enforced}, but limit is {limit}"
            )),
            (_, Some(request)) if request > maximum => errors.push(format!(
                "maximum {name} usage per {kind} is {enforced}, but request is {}",
                requests[name]
            )),
            _ => {}
        }
    }
    for (name, enforced) in &item.max_limit_request_ratio {
        let request = milli(requests, name).unwrap_or(0);
        let limit = milli(limits, name).unwrap_or(0);
        if request == 0 {
            errors.push(format!(
                "{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
            ));
        } else if limit == 0 {
            errors.push(format!(
                "{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
            ));
        } else {
            let ratio = limit as f64 / request as f64;
            if ratio * 1000.0 > enforced.milli_value() as f64 {
                errors.push(format!(
                    "{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {ratio:.6}"
                ));
            }
        }
    }
}

/// Kubernetes' aggregate error text: one message alone, several (without
/// repeats) as `[a, b]`.
fn aggregate(errors: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::new();
    for error in errors {
        if !unique.contains(&error) {
            unique.push(error);
        }
    }
    if unique.len() == 1 {
        unique.remove(0)
    } else {
        format!("[{}]", unique.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hortator_sdk::admission::UserInfo;
    use hortator_sdk::serde_json::{from_value, json};

    fn range(name: &str, limits: Value) -> LimitRange {
        from_value(
            json!({"metadata": {"name": name, "namespace": "team"}, "spec": {"limits": limits}}),
        )
        .unwrap()
    }

    fn pod(spec: Value) -> Pod {
        from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn patch_json(patch: Vec<PatchOp>) -> Value {
        serde_json::to_value(patch).unwrap()
    }

    #[test]
    fn applies_defaults_and_annotates() {
        let ranges = [range(
            "defaults",
            json!([{"type": "Container",
                    "default": {"cpu": "500m", "memory": "256Mi"},
                    "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]),
        )];
        let pod = pod(json!({
            "initContainers": [{"name": "setup", "resources": {"requests": {"cpu": "50m"}}}],
            "containers": [
                {"name": "app"},
                {"name": "sized", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}},
            ],
        }));
        let patch = patch_json(limit_pod(&pod, &ranges).unwrap());
        assert_eq!(
            patch,
            json!([
                {"op": "add", "path": "/spec/containers/0/resources", "value": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"}}},
                {"op": "add", "path": "/spec/initContainers/0/resources", "value": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"}}},
                {"op": "add", "path": "/metadata/annotations", "value": {
                    ANNOTATION: "LimitRanger plugin set: cpu, memory request for container app; \
                                 cpu, memory limit for container app; \
                                 memory request for init container setup; \
                                 cpu, memory limit for init container setup"}},
            ])
        );
    }

    #[test]
    fn a_limit_without_request_becomes_the_request() {
        let ranges = [range(
            "defaults",
            json!([{"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "200m"}}]),
        )];
        let pod =
            pod(json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "750m"}}}]}));
        let patch = patch_json(limit_pod(&pod, &ranges).unwrap());
        // The request comes from the limit, not from defaultRequest, and no
        // default was needed, so there is no annotation.
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/containers/0/resources", "value": {
                "requests": {"cpu": "750m"}, "limits": {"cpu": "750m"}}}])
        );
    }

    #[test]
    fn range_items_default_from_max_and_min() {
        let ranges = [range(
            "bounds",
            json!([{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]),
        )];
        let pod = pod(json!({"containers": [{"name": "c"}]}));
        let mut with_annotations = pod.clone();
        with_annotations.metadata.annotations = Some(BTreeMap::new());
        let patch = patch_json(limit_pod(&with_annotations, &ranges).unwrap());
        assert_eq!(
            patch,
            json!([
                {"op": "add", "path": "/spec/containers/0/resources", "value": {
                    "requests": {"cpu": "2", "memory": "64Mi"}, "limits": {"cpu": "2"}}},
                {"op": "add", "path": "/metadata/annotations/kubernetes.io~1limit-ranger",
                 "value": "LimitRanger plugin set: cpu, memory request for container c; cpu limit for container c"},
            ])
        );
    }

    #[test]
    fn nothing_to_do_is_an_empty_patch() {
        let ranges = [range(
            "bounds",
            json!([{"type": "Container", "max": {"cpu": "2"}}]),
        )];
        let pod = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}}]}),
        );
        assert_eq!(limit_pod(&pod, &ranges).unwrap(), Vec::new());
    }

    #[test]
    fn container_maximum() {
        let ranges = [range(
            "max",
            json!([{"type": "Container", "max": {"cpu": "2"}}]),
        )];
        let pod =
            pod(json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "4"}}}]}));
        assert_eq!(
            limit_pod(&pod, &ranges).unwrap_err(),
            "maximum cpu usage per Container is 2, but limit is 4"
        );
    }

    #[test]
    fn container_minimum_and_ratio() {
        let ranges = [range(
            "rules",
            json!([{"type": "Container", "min": {"memory": "128Mi"}, "maxLimitRequestRatio": {"cpu": "2"}}]),
        )];
        let pod = pod(json!({"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "250m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "100Mi"}}}]}));
        assert_eq!(
            limit_pod(&pod, &ranges).unwrap_err(),
            "[minimum memory usage per Container is 128Mi, but request is 64Mi, \
             cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]"
        );

        let low_limit = self::pod(json!({"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "1", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "100Mi"}}}]}));
        assert_eq!(
            limit_pod(&low_limit, &ranges).unwrap_err(),
            "minimum memory usage per Container is 128Mi, but limit is 100Mi"
        );
    }

    #[test]
    fn missing_values_under_bounds() {
        // Without defaults, a minimum needs a request and a maximum a limit.
        let ranges = [range(
            "rules",
            json!([{"type": "Pod", "min": {"cpu": "100m"}, "max": {"memory": "1Gi"}, "maxLimitRequestRatio": {"memory": "1"}}]),
        )];
        let pod = pod(json!({"containers": [{"name": "c"}]}));
        assert_eq!(
            limit_pod(&pod, &ranges).unwrap_err(),
            "[minimum cpu usage per Pod is 100m.  No request is specified, \
             maximum memory usage per Pod is 1Gi.  No limit is specified, \
             memory max limit to request ratio per Pod is 1, but no request is specified or request is 0]"
        );
    }

    #[test]
    fn pod_totals_sum_containers_and_respect_init_containers() {
        let ranges = [range(
            "pod",
            json!([{"type": "Pod", "max": {"cpu": "2", "memory": "1Gi"}}]),
        )];
        let two = pod(json!({"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "1500m", "memory": "512Mi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}},
        ]}));
        assert_eq!(
            limit_pod(&two, &ranges).unwrap_err(),
            "maximum cpu usage per Pod is 2, but limit is 2500m"
        );

        // A big init container counts as the pod's peak ...
        let init = pod(json!({
            "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "3", "memory": "1Mi"}}}],
            "containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Mi"}}}],
        }));
        assert_eq!(
            limit_pod(&init, &ranges).unwrap_err(),
            "maximum cpu usage per Pod is 2, but limit is 3"
        );
        // ... and a sidecar adds to every container after it.
        let sidecar = pod(json!({
            "initContainers": [
                {"name": "proxy", "restartPolicy": "Always", "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}},
                {"name": "migrate", "resources": {"limits": {"cpu": "1", "memory": "768Mi"}}},
            ],
            "containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "256Mi"}}}],
        }));
        assert_eq!(
            limit_pod(&sidecar, &ranges).unwrap_err(),
            "maximum memory usage per Pod is 1Gi, but limit is 1280Mi"
        );
    }

    #[test]
    fn repeated_messages_are_reported_once() {
        let ranges = [
            range("a", json!([{"type": "Container", "max": {"cpu": "1"}}])),
            range("b", json!([{"type": "Container", "max": {"cpu": "1"}}])),
        ];
        let pod =
            pod(json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "2"}}}]}));
        assert_eq!(
            limit_pod(&pod, &ranges).unwrap_err(),
            "maximum cpu usage per Container is 1, but limit is 2"
        );
    }

    #[test]
    fn invalid_quantities_are_refused() {
        let ranges = [range(
            "bad",
            json!([{"type": "Container", "max": {"cpu": "lots"}}]),
        )];
        let pod = pod(json!({"containers": [{"name": "c"}]}));
        assert_eq!(
            limit_pod(&pod, &ranges).unwrap_err(),
            r#"LimitRange bad: invalid quantity "lots": expected a number"#
        );
        let ranges = [range(
            "ok",
            json!([{"type": "Container", "max": {"cpu": "1"}}]),
        )];
        let pod = self::pod(
            json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "1 core"}}}]}),
        );
        assert_eq!(
            limit_pod(&pod, &ranges).unwrap_err(),
            r#"container c: invalid quantity "1 core": unknown suffix"#
        );
    }

    fn request(operation: Operation, object: Value) -> Request {
        Request {
            uid: "1".into(),
            operation,
            resource: GroupVersionResource::new("", "v1", "pods"),
            sub_resource: String::new(),
            kind: "Pod".into(),
            namespace: "team".into(),
            name: "p".into(),
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

    #[test]
    fn admission_responses() {
        let object = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        let ranges = || {
            Ok(vec![range(
                "d",
                json!([{"type": "Container", "default": {"cpu": "1"}}]),
            )])
        };

        let response = admit(&request(Operation::Create, object.clone()), |namespace| {
            assert_eq!(namespace, "team");
            ranges()
        });
        assert!(response.allowed);
        assert!(response.patch.is_some());

        let none = admit(&request(Operation::Create, object.clone()), |_| {
            Ok(Vec::new())
        });
        assert!(none.allowed && none.patch.is_none());

        let update = admit(&request(Operation::Update, object.clone()), |_| {
            panic!("no lookup")
        });
        assert!(update.allowed && update.patch.is_none());

        let denied = admit(&request(Operation::Create, object.clone()), |_| {
            Ok(vec![range(
                "m",
                json!([{"type": "Pod", "max": {"cpu": "1"}}]),
            )])
        });
        assert!(!denied.allowed);
        assert_eq!(denied.code, 403);

        // Without ranges the pod is not decoded; with some, a bad one is a 400.
        let bad = json!({"metadata": {"name": "p"}, "spec": 3});
        assert!(admit(&request(Operation::Create, bad.clone()), |_| Ok(Vec::new())).allowed);
        assert_eq!(
            admit(&request(Operation::Create, bad), |_| ranges()).code,
            400
        );

        let not_granted = admit(&request(Operation::Create, object), |_| {
            Err(cluster::Error::NotGranted)
        });
        assert_eq!(not_granted.code, 500);
        assert!(
            not_granted
                .reason
                .starts_with("limit-ranger needs cluster-read")
        );
    }
}
