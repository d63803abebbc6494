//! The bodies under `proto/testdata/` were sent by the real kubectl (v1.32) to a server that
//! recorded them: `kubectl create namespace team-a`, `create configmap app-config
//! --from-literal=mode=fast --from-literal=empty=`, `create secret generic creds
//! --from-literal=password=s3cr3t`, `create deployment web --image=127.0.0.1:5000/httpd:1
//! --replicas=0 --port=80` (all in team-a) and `create service nodeport web --tcp=80:8080`.

use serde_json::json;

use super::*;

fn fixture(name: &str) -> Json {
    let path = format!("{}/proto/testdata/{name}.pb", env!("CARGO_MANIFEST_DIR"));
    decode(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn namespace_from_kubectl_create_namespace() {
    assert_eq!(
        fixture("namespace"),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a"},
            "spec": {},
            "status": {},
        })
    );
}

#[test]
fn configmap_keeps_empty_values_of_maps() {
    assert_eq!(
        fixture("configmap"),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app-config", "namespace": "team-a"},
            "data": {"empty": "", "mode": "fast"},
        })
    );
}

#[test]
fn secret_data_is_base64() {
    let secret = fixture("secret");
    assert_eq!(secret["data"], json!({"password": "czNjcjN0"}));
    assert_eq!(secret["metadata"]["name"], "creds");
}

#[test]
fn deployment_keeps_zero_replicas_and_drops_unset_values() {
    let deployment = fixture("deployment");
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(
        deployment["metadata"],
        json!({"name": "web", "namespace": "team-a", "labels": {"app": "web"}})
    );
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 0, "a pointer set to 0 is a value: {spec}");
    assert_eq!(spec["selector"], json!({"matchLabels": {"app": "web"}}));
    assert_eq!(spec["strategy"], json!({}));
    let template = &spec["template"];
    assert_eq!(template["metadata"], json!({"labels": {"app": "web"}}));
    let container = &template["spec"]["containers"][0];
    assert_eq!(container["name"], "httpd");
    assert_eq!(container["image"], "127.0.0.1:5000/httpd:1");
    assert_eq!(
        container["ports"],
        json!([{"containerPort": 80}]),
        "hostPort 0 is Go's unset value"
    );
    assert!(template["metadata"].get("creationTimestamp").is_none());
    // The result is what the typed model accepts.
    serde_json::from_value::<k8s_openapi::api::apps::v1::Deployment>(deployment.clone()).unwrap();
}

#[test]
fn service_target_port_and_node_port() {
    let service = fixture("service-nodeport");
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}])
    );
    serde_json::from_value::<k8s_openapi::api::core::v1::Service>(service).unwrap();
}

#[test]
fn bad_bodies_are_errors() {
    assert!(matches!(
        decode(b"{\"kind\":\"Pod\"}"),
        Err(ProtobufError::NoMagic)
    ));
    assert!(matches!(
        decode(b"k8s\0\x0a\x05\x0a"),
        Err(ProtobufError::Decode(_))
    ));
    let mut truncated = std::fs::read(format!(
        "{}/proto/testdata/deployment.pb",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    truncated.truncate(100);
    assert!(decode(&truncated).is_err());
}

#[test]
fn unknown_kinds_are_named() {
    // Envelope: typeMeta {apiVersion: "batch/v1", kind: "CronJob"}, raw: empty.
    let mut body = b"k8s\0".to_vec();
    let type_meta = [b"\x0a\x08batch/v1".as_slice(), b"\x12\x07CronJob"].concat();
    body.push(0x0a);
    body.push(u8::try_from(type_meta.len()).unwrap());
    body.extend_from_slice(&type_meta);
    match decode(&body) {
        Err(ProtobufError::UnknownKind { api_version, kind }) => {
            assert_eq!(
                (api_version.as_str(), kind.as_str()),
                ("batch/v1", "CronJob")
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A message of the `k8s.io.` type `name` with the given fields.
fn message(name: &str, fields: Vec<(&str, Value)>) -> Value {
    let pool = POOL.as_ref().unwrap();
    let desc = pool.get_message_by_name(&format!("k8s.io.{name}")).unwrap();
    let mut message = DynamicMessage::new(desc);
    for (field, value) in fields {
        message.set_field_by_name(field, value);
    }
    Value::Message(message)
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

#[test]
fn times_quantities_int_or_strings_and_inlined_fields() {
    let meta = message(
        "apimachinery.pkg.apis.meta.v1.ObjectMeta",
        vec![
            ("name", string("p")),
            (
                "creationTimestamp",
                message(
                    "apimachinery.pkg.apis.meta.v1.Time",
                    vec![("seconds", Value::I64(1_700_000_000))],
                ),
            ),
        ],
    );
    let limits = [(
        MapKey::String("memory".into()),
        message(
            "apimachinery.pkg.api.resource.Quantity",
            vec![("string", string("128Mi"))],
        ),
    )];
    let port = message(
        "apimachinery.pkg.util.intstr.IntOrString",
        vec![("type", Value::I64(1)), ("strVal", string("http"))],
    );
    let probe = message(
        "api.core.v1.Probe",
        vec![(
            "handler",
            message(
                "api.core.v1.ProbeHandler",
                vec![(
                    "httpGet",
                    message("api.core.v1.HTTPGetAction", vec![("port", port)]),
                )],
            ),
        )],
    );
    let container = message(
        "api.core.v1.Container",
        vec![
            ("name", string("c")),
            (
                "resources",
                message(
                    "api.core.v1.ResourceRequirements",
                    vec![("limits", Value::Map(limits.into_iter().collect()))],
                ),
            ),
            ("readinessProbe", probe),
            ("stdin", Value::Bool(false)),
        ],
    );
    let volume = message(
        "api.core.v1.Volume",
        vec![
            ("name", string("scratch")),
            (
                "volumeSource",
                message(
                    "api.core.v1.VolumeSource",
                    vec![(
                        "emptyDir",
                        message("api.core.v1.EmptyDirVolumeSource", vec![]),
                    )],
                ),
            ),
        ],
    );
    let spec = message(
        "api.core.v1.PodSpec",
        vec![
            ("containers", Value::List(vec![container])),
            ("volumes", Value::List(vec![volume])),
            ("terminationGracePeriodSeconds", Value::I64(0)),
            ("hostNetwork", Value::Bool(false)),
        ],
    );
    let Value::Message(pod) = message("api.core.v1.Pod", vec![("metadata", meta), ("spec", spec)])
    else {
        unreachable!()
    };
    let mut object = Map::new();
    write_fields(&pod, &mut object).unwrap();
    assert_eq!(
        Json::Object(object),
        json!({
            "metadata": {"name": "p", "creationTimestamp": "2023-11-14T22:13:20Z"},
            "spec": {
                "containers": [{
                    "name": "c",
                    "resources": {"limits": {"memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"port": "http"}},
                }],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
                "terminationGracePeriodSeconds": 0,
            },
        })
    );
}

#[test]
fn micro_time_has_microseconds() {
    let Value::Message(time) = message(
        "apimachinery.pkg.apis.meta.v1.MicroTime",
        vec![
            ("seconds", Value::I64(1_700_000_000)),
            ("nanos", Value::I32(123_456_789)),
        ],
    ) else {
        unreachable!()
    };
    assert_eq!(
        message_json(&time).unwrap(),
        Some(json!("2023-11-14T22:13:20.123456Z"))
    );
}
