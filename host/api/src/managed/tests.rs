use serde_json::json;

use super::*;
use crate::patch::strategic_merge_patch;

const TIME: &str = "2026-11-28T00:00:00Z";

fn writer(manager: &str, operation: Operation) -> Writer<'_> {
    Writer {
        manager,
        operation,
        api_version: "apps/v1",
        time: TIME,
        subresource: None,
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
        "status": {"replicas": 0},
    })
}

/// Create `object` as `manager` (an Update), as the API server records it.
fn created(object: &Value, manager: &str) -> Value {
    let mut object = object.clone();
    record_write(
        "Deployment",
        None,
        &mut object,
        &writer(manager, Operation::Update),
    );
    object
}

/// Server-side apply `config` over `old` as `manager`.
fn apply(old: &Value, config: &Value, manager: &str, force: bool) -> Result<Value, Conflicts> {
    let mut managed = ManagedFields::of(old);
    let mut merged = strategic_merge_patch(old, config, "Deployment").unwrap();
    managed.apply(
        "Deployment",
        old,
        config,
        &mut merged,
        &writer(manager, Operation::Apply),
        force,
    )?;
    managed.write(&mut merged);
    Ok(merged)
}

fn owners(object: &Value) -> Vec<(String, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_owned(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_create_owns_every_field_it_set() {
    let object = created(&deployment(1, "httpd:1"), "kubectl-create");
    let entry = &object["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "kubectl-create");
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert_eq!(
        entry["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {"f:matchLabels": {"f:app": {}}},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}},
                },
            },
        })
    );
    // What is written reads back the same.
    let mut again = object.clone();
    ManagedFields::of(&object).write(&mut again);
    assert_eq!(again, object);
}

#[test]
fn an_apply_that_changes_another_managers_field_conflicts() {
    let object = created(&deployment(1, "httpd:1"), "kubectl-create");
    let err = apply(&object, &deployment(3, "httpd:2"), "deployer", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using apps/v1:\n\
         - .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
    // Same values: shared, no conflict.
    let shared = apply(&object, &deployment(1, "httpd:1"), "deployer", false).unwrap();
    assert_eq!(owners(&shared).len(), 2);
}

#[test]
fn a_forced_apply_takes_the_fields() {
    let object = created(&deployment(1, "httpd:1"), "kubectl-create");
    let forced = apply(&object, &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}}), "deployer", true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let entries = owners(&forced);
    let create = &entries
        .iter()
        .find(|(m, _)| m == "kubectl-create")
        .unwrap()
        .1;
    assert!(create["f:spec"].get("f:replicas").is_none(), "{create}");
    let deployer = &entries.iter().find(|(m, _)| m == "deployer").unwrap().1;
    assert_eq!(deployer, &json!({"f:spec": {"f:replicas": {}}}));
    // Now an update by the first manager takes it back, without a conflict check.
    let mut updated = forced.clone();
    updated["spec"]["replicas"] = json!(5);
    record_write(
        "Deployment",
        Some(&forced),
        &mut updated,
        &writer("kubectl-create", Operation::Update),
    );
    assert!(owners(&updated).iter().all(|(m, _)| m != "deployer"));
}

#[test]
fn fields_an_apply_drops_are_removed_unless_owned_elsewhere() {
    let mut config = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "httpd:1"},
            {"name": "sidecar", "image": "busybox"},
        ]}}},
    });
    let first = apply(&json!({}), &config, "deployer", false).unwrap();
    config["metadata"]["labels"] = json!({"a": "1"});
    config["spec"]["template"]["spec"]["containers"] = json!([{"name": "web", "image": "httpd:1"}]);
    let second = apply(&first, &config, "deployer", false).unwrap();
    assert_eq!(second["metadata"]["labels"], json!({"a": "1"}));
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "httpd:1"}])
    );

    // A label another manager also set stays when the applier drops it.
    let mut labelled = first.clone();
    labelled["metadata"]["labels"]["b"] = json!("3");
    record_write(
        "Deployment",
        Some(&first),
        &mut labelled,
        &writer("kubectl-label", Operation::Update),
    );
    let kept = apply(&labelled, &config, "deployer", false).unwrap();
    assert_eq!(kept["metadata"]["labels"], json!({"a": "1", "b": "3"}));
}

#[test]
fn sets_of_primitives_and_atomic_lists() {
    let mut object = json!({
        "metadata": {"name": "p", "finalizers": ["example.com/a"]},
        "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["sleep", "1"]}]},
    });
    record_write(
        "Pod",
        None,
        &mut object,
        &writer("creator", Operation::Update),
    );
    let fields = &object["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(
        fields["f:metadata"]["f:finalizers"],
        json!({"v:\"example.com/a\"": {}})
    );
    assert_eq!(
        fields["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:args"],
        json!({}),
        "a list without merge metadata is owned whole"
    );
}

#[test]
fn unreadable_entries_are_dropped() {
    let object = json!({"metadata": {"managedFields": [7, {"manager": "x"}, {"manager": "y", "operation": "Update", "fieldsV1": {"f:data": {"f:a": {}}}}]}});
    let managed = ManagedFields::of(&object);
    let mut out = json!({"metadata": {}});
    managed.write(&mut out);
    assert_eq!(
        out["metadata"]["managedFields"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        out["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
}

#[test]
fn updates_take_changed_fields_and_forget_removed_ones() {
    let created = created(&deployment(1, "httpd:1"), "kubectl-create");
    let mut same = created.clone();
    record_write(
        "Deployment",
        Some(&created),
        &mut same,
        &writer("other", Operation::Update),
    );
    assert_eq!(
        same, created,
        "a write that changes nothing changes no ownership"
    );

    let mut relabelled = created.clone();
    relabelled["metadata"]["labels"] = json!({"tier": "web"});
    record_write(
        "Deployment",
        Some(&created),
        &mut relabelled,
        &writer("kubectl-label", Operation::Update),
    );
    let entries = owners(&relabelled);
    let create = &entries
        .iter()
        .find(|(m, _)| m == "kubectl-create")
        .unwrap()
        .1;
    assert!(create["f:metadata"].get("f:labels").is_none(), "{create}");
    let label = &entries
        .iter()
        .find(|(m, _)| m == "kubectl-label")
        .unwrap()
        .1;
    assert_eq!(label, &json!({"f:metadata": {"f:labels": {"f:tier": {}}}}));
}

#[test]
fn ports_are_keyed_by_port_and_protocol() {
    let old = json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "dns", "image": "busybox", "ports": [
            {"containerPort": 53, "protocol": "UDP"},
            {"containerPort": 53},
        ]}]},
    });
    let mut object = old.clone();
    record_write(
        "Pod",
        None,
        &mut object,
        &writer("creator", Operation::Update),
    );
    let ports = &object["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"dns\"}"]
        ["f:ports"];
    assert_eq!(
        ports,
        &json!({
            "k:{\"containerPort\":53,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}},
            "k:{\"containerPort\":53,\"protocol\":\"UDP\"}":
                {".": {}, "f:containerPort": {}, "f:protocol": {}},
        }),
        "two ports told apart by protocol alone are two elements; TCP is the default"
    );

    // Dropping the UDP port removes that element only.
    let mut new = object.clone();
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 53}]);
    record_write(
        "Pod",
        Some(&object),
        &mut new,
        &writer("creator", Operation::Update),
    );
    let ports = &new["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"dns\"}"]
        ["f:ports"];
    assert_eq!(
        ports,
        &json!({"k:{\"containerPort\":53,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
    );

    let mut service = json!({
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}]},
    });
    record_write(
        "Service",
        None,
        &mut service,
        &writer("creator", Operation::Update),
    );
    let ports = service["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:ports"]
        .as_object()
        .unwrap();
    assert!(
        ports.contains_key("k:{\"port\":80,\"protocol\":\"TCP\"}"),
        "{ports:?}"
    );
    assert!(
        ports.contains_key("k:{\"port\":80,\"protocol\":\"UDP\"}"),
        "{ports:?}"
    );
}

#[test]
fn a_create_builds_the_same_tree_in_one_pass() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": {"app": "web"},
            "finalizers": ["a/b", "c/d"],
            "ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "rs"}],
        },
        "spec": {
            "containers": [
                {"name": "web", "image": "httpd", "args": ["-f"], "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}],
                 "resources": {}},
                {"name": "web", "image": "again"},
                {"name": "side", "image": "busybox", "volumeMounts": [{"name": "d", "mountPath": "/d"}]},
            ],
            "volumes": [{"name": "d", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "nodeSelector": {},
        },
        "status": {"phase": "Pending"},
    });
    for (kind, object) in [("Pod", pod), ("Deployment", deployment(2, "httpd:1"))] {
        let mut by_path = Tree::default();
        fields_of(kind, &object, false, &mut by_path);
        assert_eq!(
            Value::Object(tree_of_object(kind, &object)),
            Value::Object(by_path.0),
            "{kind}"
        );
    }
}

#[test]
fn status_writes_are_an_entry_of_their_own() {
    let object = created(&deployment(1, "httpd:1"), "kubectl-create");
    let mut new = object.clone();
    new["status"] = json!({"replicas": 1, "readyReplicas": 1});
    let through_status = Writer {
        subresource: Some("status"),
        ..writer("controller", Operation::Update)
    };
    record_write("Deployment", Some(&object), &mut new, &through_status);
    let entries = new["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["manager"], "kubectl-create");
    assert_eq!(entries[1]["manager"], "controller");
    assert_eq!(entries[1]["subresource"], "status");
    assert_eq!(
        entries[1]["fieldsV1"],
        json!({"f:status": {"f:replicas": {}, "f:readyReplicas": {}}})
    );
    // The same manager writing the object itself is another entry.
    let mut relabelled = new.clone();
    relabelled["metadata"]["labels"]["tier"] = json!("web");
    record_write(
        "Deployment",
        Some(&new),
        &mut relabelled,
        &writer("controller", Operation::Update),
    );
    let entries = relabelled["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(entries[2].get("subresource").is_none());
}

#[test]
fn an_apply_through_status_owns_the_status_alone() {
    let object = created(&deployment(1, "httpd:1"), "kubectl-create");
    let config = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "x"}},
        "spec": {"replicas": 7},
        "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]},
    });
    let through_status = Writer {
        subresource: Some("status"),
        ..writer("status-applier", Operation::Apply)
    };
    let mut managed = ManagedFields::of(&object);
    let mut merged = strategic_merge_patch(&object, &config, "Deployment").unwrap();
    // The spec it holds belongs to kubectl-create, yet it is not applied here: no conflict.
    managed
        .apply(
            "Deployment",
            &object,
            &config,
            &mut merged,
            &through_status,
            false,
        )
        .unwrap();
    managed.write(&mut merged);
    let entries = merged["metadata"]["managedFields"].as_array().unwrap();
    let entry = entries
        .iter()
        .find(|e| e["manager"] == "status-applier")
        .unwrap();
    assert_eq!(entry["subresource"], "status");
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:status": {
            "f:replicas": {},
            "f:conditions": {"k:{\"type\":\"Available\"}": {".": {}, "f:type": {}, "f:status": {}}},
        }})
    );
}
