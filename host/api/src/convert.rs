//! The legacy v1beta1 API of late-2014/early-2015 Kubernetes, converted to and from v1.
//!
//! Hortator accepts at `/api/v1beta1/...` the documents of that era (kinds `Pod`, `Service`,
//! `ReplicationController` and `Minion`, and their lists) and stores their v1 form. The
//! conversion is faithful and structural: it renames and reshapes fields, drops those v1 has no
//! place for, and rejects ill-typed input with an error naming the field. It does not validate
//! or default v1 values: that is the API server's business afterwards (a v1beta1 name such as
//! `httpdController` is passed through unchanged).

use serde_json::{Map, Value, json};

/// Why a document could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    /// The document (or a list item) is not a JSON object.
    #[error("expected a JSON object")]
    NotAnObject,
    /// A required field is absent or null.
    #[error("{field}: required")]
    Missing {
        /// Dotted path of the field, e.g. `desiredState.manifest.containers`.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("{field}: expected {expected}")]
    WrongType {
        /// Dotted path of the field, e.g. `desiredState.manifest.containers[0].ports[0].containerPort`.
        field: String,
        /// What was expected, e.g. `an integer`.
        expected: &'static str,
    },
    /// A field has a value the conversion does not accept.
    #[error("{field}: {message}")]
    InvalidValue {
        /// Dotted path of the field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The kind has no conversion between v1beta1 and v1.
    #[error("kind: {kind:?} cannot be converted between v1beta1 and v1")]
    UnsupportedKind {
        /// The kind found in the document (empty when absent).
        kind: String,
    },
}

type Result<T> = std::result::Result<T, ConversionError>;

/// Convert a v1beta1 object (kind Pod, Service, ReplicationController, Minion) to its v1 form (apiVersion "v1"; Minion → Node). Unknown kinds → error.
///
/// Lists of those kinds (`PodList`, `MinionList`, ...) convert item by item; their items come
/// out without `kind`/`apiVersion`, as in the lists kube-apiserver serves.
pub fn v1beta1_to_v1(object: &Value) -> std::result::Result<Value, ConversionError> {
    let o = Obj::root(object)?;
    match o.str("apiVersion")? {
        None | Some("v1beta1" | "v1beta2") => {}
        Some(other) => {
            return Err(ConversionError::InvalidValue {
                field: "apiVersion".into(),
                message: format!("unsupported value {other:?}: expected \"v1beta1\""),
            });
        }
    }
    let kind = o.str("kind")?.ok_or_else(|| o.missing("kind"))?;
    if let Some(item_kind) = kind.strip_suffix("List") {
        return list_from_v1beta1(&o, item_kind);
    }
    from_v1beta1(&o, kind)
}

/// The inverse, for serving GETs on /api/v1beta1 (best effort for the fields that existed then).
///
/// Accepts v1 `Pod`, `Service`, `ReplicationController` and `Node` (→ `Minion`), and their
/// lists. Fields of the wrong type are skipped rather than reported.
pub fn v1_to_v1beta1(object: &Value) -> std::result::Result<Value, ConversionError> {
    let map = object.as_object().ok_or(ConversionError::NotAnObject)?;
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if let Some(item_kind) = kind.strip_suffix("List") {
        let out_kind = match item_kind {
            "Node" => "MinionList",
            "Pod" | "Service" | "ReplicationController" => kind,
            _ => return Err(ConversionError::UnsupportedKind { kind: kind.into() }),
        };
        let mut items = Vec::new();
        for item in map
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut converted = to_v1beta1(item, item_kind)?;
            if let Some(converted) = converted.as_object_mut() {
                converted.remove("kind");
                converted.remove("apiVersion");
            }
            items.push(converted);
        }
        let mut out = Map::new();
        out.insert("kind".into(), out_kind.into());
        out.insert("apiVersion".into(), "v1beta1".into());
        if let Some(rv) = map.get("metadata").and_then(|m| m.get("resourceVersion")) {
            out.insert("resourceVersion".into(), resource_version_to_v1beta1(rv));
        }
        out.insert("items".into(), Value::Array(items));
        return Ok(Value::Object(out));
    }
    to_v1beta1(object, kind)
}

// =============================================================================================
// Reading v1beta1 input: typed accessors that report the dotted path of the offending field.

/// A JSON object of the input together with its dotted path.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

fn as_int(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64).then_some(f as i64)
}

impl<'a> Obj<'a> {
    fn root(v: &'a Value) -> Result<Self> {
        let map = v.as_object().ok_or(ConversionError::NotAnObject)?;
        Ok(Obj {
            map,
            path: String::new(),
        })
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn missing(&self, key: &str) -> ConversionError {
        ConversionError::Missing {
            field: self.field(key),
        }
    }

    fn wrong(&self, key: &str, expected: &'static str) -> ConversionError {
        ConversionError::WrongType {
            field: self.field(key),
            expected,
        }
    }

    fn invalid(&self, key: &str, message: String) -> ConversionError {
        ConversionError::InvalidValue {
            field: self.field(key),
            message,
        }
    }

    /// The value of a field; JSON null counts as absent (Go decodes it as the zero value).
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a string")),
        }
    }

    /// A string field, absent when empty (Go's `omitempty`).
    fn non_empty_str(&self, key: &str) -> Result<Option<&'a str>> {
        Ok(self.str(key)?.filter(|s| !s.is_empty()))
    }

    fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => as_int(v)
                .map(Some)
                .ok_or_else(|| self.wrong(key, "an integer")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a boolean")),
        }
    }

    fn obj(&self, key: &str) -> Result<Option<Obj<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_object()
                .map(|map| {
                    Some(Obj {
                        map,
                        path: self.field(key),
                    })
                })
                .ok_or_else(|| self.wrong(key, "an object")),
        }
    }

    fn req_obj(&self, key: &str) -> Result<Obj<'a>> {
        self.obj(key)?.ok_or_else(|| self.missing(key))
    }

    /// An array of objects, each with its path `key[i]`.
    fn objs(&self, key: &str) -> Result<Option<Vec<Obj<'a>>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let items = v.as_array().ok_or_else(|| self.wrong(key, "an array"))?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.field(key));
            let map = item.as_object().ok_or_else(|| ConversionError::WrongType {
                field: path.clone(),
                expected: "an object",
            })?;
            out.push(Obj { map, path });
        }
        Ok(Some(out))
    }

    /// An array of strings.
    fn strings(&self, key: &str) -> Result<Option<Value>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let items = v
            .as_array()
            .ok_or_else(|| self.wrong(key, "an array of strings"))?;
        for (i, item) in items.iter().enumerate() {
            if !item.is_string() {
                return Err(ConversionError::WrongType {
                    field: format!("{}[{i}]", self.field(key)),
                    expected: "a string",
                });
            }
        }
        Ok(Some(v.clone()))
    }

    /// An object of strings (labels, selectors, annotations).
    fn string_map(&self, key: &str) -> Result<Option<Value>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let map = v
            .as_object()
            .ok_or_else(|| self.wrong(key, "an object of strings"))?;
        for (k, item) in map {
            if !item.is_string() {
                return Err(ConversionError::WrongType {
                    field: format!("{}.{k}", self.field(key)),
                    expected: "a string",
                });
            }
        }
        Ok(Some(v.clone()))
    }

    /// An IntOrString: an integer or a string.
    fn int_or_string(&self, key: &str) -> Result<Option<Value>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(Value::String(s.clone()))),
            Some(v) => as_int(v)
                .map(|i| Some(Value::from(i)))
                .ok_or_else(|| self.wrong(key, "an integer or a string")),
        }
    }
}

/// Insert `value` under `key` when present.
fn put(out: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        out.insert(key.to_owned(), value);
    }
}

// =============================================================================================
// v1beta1 → v1

fn list_from_v1beta1(o: &Obj, item_kind: &str) -> Result<Value> {
    let out_kind = match item_kind {
        "Minion" => "NodeList".to_owned(),
        "Pod" | "Service" | "ReplicationController" => format!("{item_kind}List"),
        _ => {
            return Err(ConversionError::UnsupportedKind {
                kind: format!("{item_kind}List"),
            });
        }
    };
    let mut items = Vec::new();
    for item in o.objs("items")?.unwrap_or_default() {
        let kind = item.non_empty_str("kind")?.unwrap_or(item_kind);
        if kind != item_kind {
            return Err(item.invalid("kind", format!("expected {item_kind:?}, found {kind:?}")));
        }
        let mut converted = from_v1beta1(&item, item_kind)?;
        if let Some(converted) = converted.as_object_mut() {
            converted.remove("kind");
            converted.remove("apiVersion");
        }
        items.push(converted);
    }
    let mut metadata = Map::new();
    put(
        &mut metadata,
        "resourceVersion",
        resource_version_from_v1beta1(o)?,
    );
    Ok(json!({"apiVersion": "v1", "kind": out_kind, "metadata": metadata, "items": items}))
}

fn from_v1beta1(o: &Obj, kind: &str) -> Result<Value> {
    match kind {
        "Pod" => pod_from_v1beta1(o),
        "Service" => service_from_v1beta1(o),
        "ReplicationController" => replication_controller_from_v1beta1(o),
        "Minion" | "Node" => minion_from_v1beta1(o),
        _ => Err(ConversionError::UnsupportedKind { kind: kind.into() }),
    }
}

fn resource_version_from_v1beta1(o: &Obj) -> Result<Option<Value>> {
    match o.get("resourceVersion") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(Value::String(s.clone()))),
        Some(v) => match as_int(v) {
            Some(0) => Ok(None),
            Some(i) if i > 0 => Ok(Some(Value::String(i.to_string()))),
            _ => Err(o.wrong("resourceVersion", "a non-negative integer")),
        },
    }
}

/// The v1 `metadata` of a v1beta1 object (its TypeMeta fields and top-level labels).
fn metadata_from_v1beta1(o: &Obj, namespaced: bool) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    put(&mut m, "name", o.non_empty_str("id")?.map(Value::from));
    put(
        &mut m,
        "generateName",
        o.non_empty_str("generateName")?.map(Value::from),
    );
    if namespaced {
        put(
            &mut m,
            "namespace",
            o.non_empty_str("namespace")?.map(Value::from),
        );
    } else {
        o.str("namespace")?;
    }
    put(&mut m, "uid", o.non_empty_str("uid")?.map(Value::from));
    put(&mut m, "resourceVersion", resource_version_from_v1beta1(o)?);
    put(
        &mut m,
        "creationTimestamp",
        o.non_empty_str("creationTimestamp")?.map(Value::from),
    );
    put(&mut m, "labels", o.string_map("labels")?);
    put(&mut m, "annotations", o.string_map("annotations")?);
    Ok(m)
}

fn pod_from_v1beta1(o: &Obj) -> Result<Value> {
    let metadata = metadata_from_v1beta1(o, true)?;
    let state = o.req_obj("desiredState")?;
    let spec = pod_spec_from_v1beta1(&state, o.string_map("nodeSelector")?)?;
    o.obj("currentState")?; // status is server-owned: checked for shape, then ignored
    Ok(json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}))
}

/// A v1 PodSpec from a v1beta1 PodState (`desiredState`: `manifest` and `host`).
fn pod_spec_from_v1beta1(state: &Obj, node_selector: Option<Value>) -> Result<Map<String, Value>> {
    let manifest = state.req_obj("manifest")?;
    for key in ["version", "id", "uuid"] {
        manifest.str(key)?;
    }
    let mut spec = Map::new();
    if let Some(volumes) = manifest.objs("volumes")? {
        let volumes = volumes
            .iter()
            .map(volume_from_v1beta1)
            .collect::<Result<Vec<_>>>()?;
        if !volumes.is_empty() {
            spec.insert("volumes".into(), Value::Array(volumes));
        }
    }
    let containers = manifest
        .objs("containers")?
        .ok_or_else(|| manifest.missing("containers"))?;
    let containers = containers
        .iter()
        .map(container_from_v1beta1)
        .collect::<Result<Vec<_>>>()?;
    spec.insert("containers".into(), Value::Array(containers));
    spec.insert(
        "restartPolicy".into(),
        restart_policy_from_v1beta1(&manifest)?.into(),
    );
    put(
        &mut spec,
        "dnsPolicy",
        manifest.non_empty_str("dnsPolicy")?.map(Value::from),
    );
    put(&mut spec, "nodeSelector", node_selector);
    put(
        &mut spec,
        "nodeName",
        state.non_empty_str("host")?.map(Value::from),
    );
    if manifest.bool("hostNetwork")? == Some(true) {
        spec.insert("hostNetwork".into(), true.into());
    }
    Ok(spec)
}

fn restart_policy_from_v1beta1(manifest: &Obj) -> Result<&'static str> {
    const KEY: &str = "restartPolicy";
    match manifest.get(KEY) {
        None => Ok("Always"),
        Some(Value::String(s)) => match s.as_str() {
            "Always" | "always" => Ok("Always"),
            "OnFailure" | "onFailure" => Ok("OnFailure"),
            "Never" | "never" => Ok("Never"),
            other => Err(manifest.invalid(
                KEY,
                format!("unsupported value {other:?}: expected Always, OnFailure or Never"),
            )),
        },
        Some(Value::Object(policy)) => {
            let mut chosen = None;
            for (key, value) in policy {
                if value.is_null() {
                    continue;
                }
                let name = match key.as_str() {
                    "always" => "Always",
                    "onFailure" => "OnFailure",
                    "never" => "Never",
                    other => {
                        return Err(manifest.invalid(
                            KEY,
                            format!(
                                "unsupported policy {other:?}: expected always, onFailure or never"
                            ),
                        ));
                    }
                };
                if chosen.is_some() {
                    return Err(manifest.invalid(
                        KEY,
                        "only one of always, onFailure and never may be set".into(),
                    ));
                }
                chosen = Some(name);
            }
            Ok(chosen.unwrap_or("Always"))
        }
        Some(_) => Err(manifest.wrong(KEY, "an object")),
    }
}

fn volume_from_v1beta1(v: &Obj) -> Result<Value> {
    let mut out = Map::new();
    put(&mut out, "name", v.str("name")?.map(Value::from));
    let Some(source) = v.obj("source")? else {
        // v1beta1: "If not specified, the Volume is implied to be an EmptyDir."
        out.insert("emptyDir".into(), json!({}));
        return Ok(Value::Object(out));
    };
    let mut found = false;
    for (key, value) in source.map {
        if value.is_null() {
            continue;
        }
        found = true;
        match key.as_str() {
            "emptyDir" => {
                let e = source.req_obj("emptyDir")?;
                let mut dir = Map::new();
                put(
                    &mut dir,
                    "medium",
                    e.non_empty_str("medium")?.map(Value::from),
                );
                out.insert("emptyDir".into(), Value::Object(dir));
            }
            "hostDir" => {
                let h = source.req_obj("hostDir")?;
                let path = h.str("path")?.ok_or_else(|| h.missing("path"))?;
                out.insert("hostPath".into(), json!({"path": path}));
            }
            "persistentDisk" => {
                let d = source.req_obj("persistentDisk")?;
                let mut disk = Map::new();
                put(&mut disk, "pdName", d.str("pdName")?.map(Value::from));
                put(
                    &mut disk,
                    "fsType",
                    d.non_empty_str("fsType")?.map(Value::from),
                );
                put(
                    &mut disk,
                    "partition",
                    d.int("partition")?.filter(|p| *p != 0).map(Value::from),
                );
                put(
                    &mut disk,
                    "readOnly",
                    d.bool("readOnly")?.filter(|r| *r).map(Value::from),
                );
                out.insert("gcePersistentDisk".into(), Value::Object(disk));
            }
            "gitRepo" => {
                let g = source.req_obj("gitRepo")?;
                let mut repo = Map::new();
                put(
                    &mut repo,
                    "repository",
                    g.str("repository")?.map(Value::from),
                );
                put(
                    &mut repo,
                    "revision",
                    g.non_empty_str("revision")?.map(Value::from),
                );
                out.insert("gitRepo".into(), Value::Object(repo));
            }
            "secret" => {
                let s = source.req_obj("secret")?;
                let name = match s.obj("target")? {
                    Some(target) => target.str("name")?,
                    None => s.str("secretName")?,
                };
                let mut secret = Map::new();
                put(&mut secret, "secretName", name.map(Value::from));
                out.insert("secret".into(), Value::Object(secret));
            }
            other => {
                return Err(source.invalid(other, "unsupported volume source".into()));
            }
        }
    }
    if !found {
        out.insert("emptyDir".into(), json!({}));
    }
    Ok(Value::Object(out))
}

fn pull_policy_from_v1beta1(c: &Obj) -> Result<Option<Value>> {
    let Some(policy) = c.non_empty_str("imagePullPolicy")? else {
        return Ok(None);
    };
    let v1 = match policy {
        "PullAlways" | "Always" => "Always",
        "PullNever" | "Never" => "Never",
        "PullIfNotPresent" | "IfNotPresent" => "IfNotPresent",
        other => {
            return Err(c.invalid(
                "imagePullPolicy",
                format!("unsupported value {other:?}: expected PullAlways, PullNever or PullIfNotPresent"),
            ));
        }
    };
    Ok(Some(v1.into()))
}

fn container_from_v1beta1(c: &Obj) -> Result<Value> {
    let mut out = Map::new();
    put(&mut out, "name", c.str("name")?.map(Value::from));
    put(&mut out, "image", c.str("image")?.map(Value::from));
    put(&mut out, "command", c.strings("command")?);
    put(
        &mut out,
        "workingDir",
        c.non_empty_str("workingDir")?.map(Value::from),
    );

    if let Some(ports) = c.objs("ports")? {
        let mut list = Vec::new();
        for p in &ports {
            let mut port = Map::new();
            put(&mut port, "name", p.non_empty_str("name")?.map(Value::from));
            let container_port = p
                .int("containerPort")?
                .ok_or_else(|| p.missing("containerPort"))?;
            port.insert("containerPort".into(), container_port.into());
            put(
                &mut port,
                "hostPort",
                p.int("hostPort")?.filter(|h| *h != 0).map(Value::from),
            );
            put(
                &mut port,
                "protocol",
                p.non_empty_str("protocol")?.map(Value::from),
            );
            put(
                &mut port,
                "hostIP",
                p.non_empty_str("hostIP")?.map(Value::from),
            );
            list.push(Value::Object(port));
        }
        if !list.is_empty() {
            out.insert("ports".into(), Value::Array(list));
        }
    }

    if let Some(env) = c.objs("env")? {
        let mut list = Vec::new();
        for e in &env {
            let name = match e.non_empty_str("name")? {
                Some(name) => name,
                None => e.non_empty_str("key")?.ok_or_else(|| e.missing("name"))?,
            };
            let mut var = Map::new();
            var.insert("name".into(), name.into());
            put(&mut var, "value", e.str("value")?.map(Value::from));
            list.push(Value::Object(var));
        }
        if !list.is_empty() {
            out.insert("env".into(), Value::Array(list));
        }
    }

    let mut limits = Map::new();
    match c.get("cpu") {
        None => {}
        Some(Value::String(q)) if q.is_empty() => {}
        Some(Value::String(q)) => {
            limits.insert("cpu".into(), q.clone().into());
        }
        Some(v) => match as_int(v) {
            Some(0) => {}
            Some(millis) if millis > 0 => {
                limits.insert("cpu".into(), format!("{millis}m").into());
            }
            _ => return Err(c.wrong("cpu", "a non-negative integer (millicores)")),
        },
    }
    match c.get("memory") {
        None => {}
        Some(Value::String(q)) if q.is_empty() => {}
        Some(Value::String(q)) => {
            limits.insert("memory".into(), q.clone().into());
        }
        Some(v) => match as_int(v) {
            Some(0) => {}
            Some(bytes) if bytes > 0 => {
                limits.insert("memory".into(), bytes.to_string().into());
            }
            _ => return Err(c.wrong("memory", "a non-negative integer (bytes)")),
        },
    }
    if !limits.is_empty() {
        out.insert("resources".into(), json!({"limits": limits}));
    }

    if let Some(mounts) = c.objs("volumeMounts")? {
        let mut list = Vec::new();
        for m in &mounts {
            let mut mount = Map::new();
            put(&mut mount, "name", m.str("name")?.map(Value::from));
            let path = match m.non_empty_str("mountPath")? {
                Some(path) => Some(path),
                None => m.non_empty_str("path")?,
            };
            put(&mut mount, "mountPath", path.map(Value::from));
            put(
                &mut mount,
                "readOnly",
                m.bool("readOnly")?.filter(|r| *r).map(Value::from),
            );
            m.str("mountType")?;
            list.push(Value::Object(mount));
        }
        if !list.is_empty() {
            out.insert("volumeMounts".into(), Value::Array(list));
        }
    }

    if let Some(probe) = c.obj("livenessProbe")? {
        out.insert("livenessProbe".into(), probe_from_v1beta1(&probe)?);
    }
    if let Some(probe) = c.obj("readinessProbe")? {
        out.insert("readinessProbe".into(), probe_from_v1beta1(&probe)?);
    }
    if let Some(lifecycle) = c.obj("lifecycle")? {
        let mut l = Map::new();
        for hook in ["postStart", "preStop"] {
            if let Some(handler) = lifecycle.obj(hook)? {
                l.insert(hook.into(), Value::Object(handler_from_v1beta1(&handler)?));
            }
        }
        out.insert("lifecycle".into(), Value::Object(l));
    }
    put(
        &mut out,
        "terminationMessagePath",
        c.non_empty_str("terminationMessagePath")?.map(Value::from),
    );
    put(&mut out, "imagePullPolicy", pull_policy_from_v1beta1(c)?);

    let mut security = Map::new();
    if c.bool("privileged")? == Some(true) {
        security.insert("privileged".into(), true.into());
    }
    if let Some(caps) = c.obj("capabilities")? {
        let mut capabilities = Map::new();
        put(&mut capabilities, "add", caps.strings("add")?);
        put(&mut capabilities, "drop", caps.strings("drop")?);
        if !capabilities.is_empty() {
            security.insert("capabilities".into(), Value::Object(capabilities));
        }
    }
    if !security.is_empty() {
        out.insert("securityContext".into(), Value::Object(security));
    }
    Ok(Value::Object(out))
}

/// The action of a v1beta1 Handler or LivenessProbe (`exec`, `httpGet`, `tcpSocket`).
fn handler_from_v1beta1(h: &Obj) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(exec) = h.obj("exec")? {
        let mut e = Map::new();
        put(&mut e, "command", exec.strings("command")?);
        out.insert("exec".into(), Value::Object(e));
    }
    if let Some(get) = h.obj("httpGet")? {
        let mut g = Map::new();
        put(&mut g, "path", get.non_empty_str("path")?.map(Value::from));
        put(&mut g, "port", get.int_or_string("port")?);
        put(&mut g, "host", get.non_empty_str("host")?.map(Value::from));
        out.insert("httpGet".into(), Value::Object(g));
    }
    if let Some(tcp) = h.obj("tcpSocket")? {
        let mut t = Map::new();
        put(&mut t, "port", tcp.int_or_string("port")?);
        out.insert("tcpSocket".into(), Value::Object(t));
    }
    Ok(out)
}

fn probe_from_v1beta1(p: &Obj) -> Result<Value> {
    p.str("type")?; // deprecated; the action itself says what it is
    let mut out = handler_from_v1beta1(p)?;
    put(
        &mut out,
        "initialDelaySeconds",
        p.int("initialDelaySeconds")?
            .filter(|s| *s != 0)
            .map(Value::from),
    );
    put(
        &mut out,
        "timeoutSeconds",
        p.int("timeoutSeconds")?
            .filter(|s| *s != 0)
            .map(Value::from),
    );
    Ok(Value::Object(out))
}

fn service_from_v1beta1(o: &Obj) -> Result<Value> {
    let metadata = metadata_from_v1beta1(o, true)?;
    let port = o.int("port")?.ok_or_else(|| o.missing("port"))?;
    let mut service_port = Map::new();
    service_port.insert(
        "protocol".into(),
        o.non_empty_str("protocol")?.unwrap_or("TCP").into(),
    );
    service_port.insert("port".into(), port.into());
    let target = match o.int_or_string("containerPort")? {
        None => Value::from(port),
        Some(Value::String(s)) if s.is_empty() => Value::from(port),
        Some(v) if v.as_i64() == Some(0) => Value::from(port),
        Some(v) => v,
    };
    service_port.insert("targetPort".into(), target);

    let mut spec = Map::new();
    spec.insert("ports".into(), json!([service_port]));
    put(&mut spec, "selector", o.string_map("selector")?);
    put(
        &mut spec,
        "clusterIP",
        o.non_empty_str("portalIP")?.map(Value::from),
    );
    let load_balancer = o.bool("createExternalLoadBalancer")? == Some(true);
    spec.insert(
        "type".into(),
        if load_balancer {
            "LoadBalancer"
        } else {
            "ClusterIP"
        }
        .into(),
    );
    if let Some(ips) = o.strings("publicIPs")?
        && ips.as_array().is_some_and(|a| !a.is_empty())
    {
        spec.insert("externalIPs".into(), ips);
    }
    put(
        &mut spec,
        "sessionAffinity",
        o.non_empty_str("sessionAffinity")?.map(Value::from),
    );
    o.int("proxyPort")?; // allocated by the 2014 proxy; v1 has no equivalent
    Ok(json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}))
}

fn replication_controller_from_v1beta1(o: &Obj) -> Result<Value> {
    let metadata = metadata_from_v1beta1(o, true)?;
    let state = o.req_obj("desiredState")?;
    let mut spec = Map::new();
    // v1beta1 `replicas` had no omitempty: absent decodes as 0.
    spec.insert(
        "replicas".into(),
        state.int("replicas")?.unwrap_or(0).into(),
    );
    put(&mut spec, "selector", state.string_map("replicaSelector")?);
    if let Some(template) = state.obj("podTemplate")? {
        let mut template_meta = Map::new();
        put(&mut template_meta, "labels", template.string_map("labels")?);
        put(
            &mut template_meta,
            "annotations",
            template.string_map("annotations")?,
        );
        let pod_state = template.req_obj("desiredState")?;
        let pod_spec = pod_spec_from_v1beta1(&pod_state, template.string_map("nodeSelector")?)?;
        spec.insert(
            "template".into(),
            json!({"metadata": template_meta, "spec": pod_spec}),
        );
    }
    o.obj("currentState")?;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": metadata,
        "spec": spec,
    }))
}

fn capacity_from_v1beta1(capacity: &Obj) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (name, value) in capacity.map {
        let quantity = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            v => match as_int(v) {
                // v1beta1 counted CPU in millicores.
                Some(i) if name == "cpu" => format!("{i}m"),
                Some(i) => i.to_string(),
                None => return Err(capacity.wrong(name, "an integer or a quantity string")),
            },
        };
        out.insert(name.clone(), quantity.into());
    }
    Ok(out)
}

fn minion_from_v1beta1(o: &Obj) -> Result<Value> {
    let metadata = metadata_from_v1beta1(o, false)?;
    let mut spec = Map::new();
    put(
        &mut spec,
        "externalID",
        o.non_empty_str("externalID")?.map(Value::from),
    );
    put(
        &mut spec,
        "podCIDR",
        o.non_empty_str("podCIDR")?.map(Value::from),
    );
    if o.bool("unschedulable")? == Some(true) {
        spec.insert("unschedulable".into(), true.into());
    }
    let mut status = Map::new();
    if let Some(ip) = o.non_empty_str("hostIP")? {
        status.insert(
            "addresses".into(),
            json!([{"type": "InternalIP", "address": ip}]),
        );
    }
    if let Some(resources) = o.obj("resources")?
        && let Some(capacity) = resources.obj("capacity")?
    {
        status.insert(
            "capacity".into(),
            Value::Object(capacity_from_v1beta1(&capacity)?),
        );
    }
    let mut out = Map::new();
    out.insert("apiVersion".into(), "v1".into());
    out.insert("kind".into(), "Node".into());
    out.insert("metadata".into(), Value::Object(metadata));
    if !spec.is_empty() {
        out.insert("spec".into(), Value::Object(spec));
    }
    if !status.is_empty() {
        out.insert("status".into(), Value::Object(status));
    }
    Ok(Value::Object(out))
}

// =============================================================================================
// v1 → v1beta1 (best effort: wrong-typed fields are skipped)

fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer).filter(|v| !v.is_null())
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    at(v, pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn items_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    at(v, pointer)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// Copy `pointer` of `from` to `key` of `out`, when present (and non-empty for strings).
fn copy(out: &mut Map<String, Value>, key: &str, from: &Value, pointer: &str) {
    match at(from, pointer) {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(v) => {
            out.insert(key.to_owned(), v.clone());
        }
    }
}

fn resource_version_to_v1beta1(rv: &Value) -> Value {
    match rv.as_str().map(|s| s.parse::<u64>()) {
        Some(Ok(n)) => n.into(),
        _ => rv.clone(),
    }
}

/// The v1beta1 TypeMeta fields and labels of a v1 object.
fn meta_to_v1beta1(object: &Value, kind: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("kind".into(), kind.into());
    copy(&mut out, "id", object, "/metadata/name");
    copy(&mut out, "uid", object, "/metadata/uid");
    copy(
        &mut out,
        "creationTimestamp",
        object,
        "/metadata/creationTimestamp",
    );
    if let Some(rv) = str_at(object, "/metadata/resourceVersion") {
        out.insert(
            "resourceVersion".into(),
            resource_version_to_v1beta1(&rv.into()),
        );
    }
    out.insert("apiVersion".into(), "v1beta1".into());
    copy(&mut out, "namespace", object, "/metadata/namespace");
    copy(&mut out, "generateName", object, "/metadata/generateName");
    copy(&mut out, "annotations", object, "/metadata/annotations");
    copy(&mut out, "labels", object, "/metadata/labels");
    out
}

fn to_v1beta1(object: &Value, kind: &str) -> Result<Value> {
    if !object.is_object() {
        return Err(ConversionError::NotAnObject);
    }
    let out = match kind {
        "Pod" => pod_to_v1beta1(object),
        "Service" => service_to_v1beta1(object),
        "ReplicationController" => replication_controller_to_v1beta1(object),
        "Node" => node_to_v1beta1(object),
        _ => return Err(ConversionError::UnsupportedKind { kind: kind.into() }),
    };
    Ok(Value::Object(out))
}

/// A Kubernetes quantity as a number (`"128Mi"` → 134217728, `"500m"` → 0.5).
fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let exp: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(exp)
        }
    };
    let value = number * factor;
    value.is_finite().then_some(value)
}

/// A quantity as v1beta1's integer: millicores for CPU, plain units (bytes) otherwise.
fn quantity_to_v1beta1(resource: &str, quantity: &Value) -> Option<Value> {
    let value = match quantity {
        Value::String(s) => parse_quantity(s)?,
        v => v.as_f64()?,
    };
    let value = if resource == "cpu" {
        value * 1000.0
    } else {
        value
    };
    // Like Quantity.Value()/MilliValue(), round up, but ignore floating-point noise
    // ("100m" is 0.1 * 1000 = 100.00000000000001).
    let rounded = value.round();
    let value = if (value - rounded).abs() <= 1e-9 * rounded.abs().max(1.0) {
        rounded
    } else {
        value.ceil()
    };
    Some(Value::from(value as i64))
}

fn handler_to_v1beta1(handler: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(exec) = at(handler, "/exec") {
        let mut e = Map::new();
        copy(&mut e, "command", exec, "/command");
        out.insert("exec".into(), Value::Object(e));
    }
    if let Some(get) = at(handler, "/httpGet") {
        let mut g = Map::new();
        copy(&mut g, "path", get, "/path");
        copy(&mut g, "port", get, "/port");
        copy(&mut g, "host", get, "/host");
        out.insert("httpGet".into(), Value::Object(g));
    }
    if let Some(tcp) = at(handler, "/tcpSocket") {
        let mut t = Map::new();
        copy(&mut t, "port", tcp, "/port");
        out.insert("tcpSocket".into(), Value::Object(t));
    }
    out
}

fn probe_to_v1beta1(probe: &Value) -> Value {
    let mut out = handler_to_v1beta1(probe);
    copy(
        &mut out,
        "initialDelaySeconds",
        probe,
        "/initialDelaySeconds",
    );
    copy(&mut out, "timeoutSeconds", probe, "/timeoutSeconds");
    Value::Object(out)
}

fn container_to_v1beta1(c: &Value) -> Value {
    let mut out = Map::new();
    copy(&mut out, "name", c, "/name");
    copy(&mut out, "image", c, "/image");
    copy(&mut out, "command", c, "/command");
    copy(&mut out, "workingDir", c, "/workingDir");
    let ports: Vec<Value> = items_at(c, "/ports")
        .iter()
        .map(|p| {
            let mut port = Map::new();
            copy(&mut port, "name", p, "/name");
            copy(&mut port, "hostPort", p, "/hostPort");
            copy(&mut port, "containerPort", p, "/containerPort");
            copy(&mut port, "protocol", p, "/protocol");
            copy(&mut port, "hostIP", p, "/hostIP");
            Value::Object(port)
        })
        .collect();
    if !ports.is_empty() {
        out.insert("ports".into(), Value::Array(ports));
    }
    let env: Vec<Value> = items_at(c, "/env")
        .iter()
        .map(|e| {
            let mut var = Map::new();
            copy(&mut var, "name", e, "/name");
            copy(&mut var, "value", e, "/value");
            Value::Object(var)
        })
        .collect();
    if !env.is_empty() {
        out.insert("env".into(), Value::Array(env));
    }
    for resource in ["memory", "cpu"] {
        if let Some(q) = at(c, &format!("/resources/limits/{resource}"))
            .and_then(|q| quantity_to_v1beta1(resource, q))
        {
            out.insert(resource.into(), q);
        }
    }
    let mounts: Vec<Value> = items_at(c, "/volumeMounts")
        .iter()
        .map(|m| {
            let mut mount = Map::new();
            copy(&mut mount, "name", m, "/name");
            copy(&mut mount, "readOnly", m, "/readOnly");
            copy(&mut mount, "mountPath", m, "/mountPath");
            copy(&mut mount, "path", m, "/mountPath");
            Value::Object(mount)
        })
        .collect();
    if !mounts.is_empty() {
        out.insert("volumeMounts".into(), Value::Array(mounts));
    }
    for probe in ["livenessProbe", "readinessProbe"] {
        if let Some(p) = at(c, &format!("/{probe}")) {
            out.insert(probe.into(), probe_to_v1beta1(p));
        }
    }
    if let Some(lifecycle) = at(c, "/lifecycle") {
        let mut l = Map::new();
        for hook in ["postStart", "preStop"] {
            if let Some(h) = at(lifecycle, &format!("/{hook}")) {
                l.insert(hook.into(), Value::Object(handler_to_v1beta1(h)));
            }
        }
        out.insert("lifecycle".into(), Value::Object(l));
    }
    copy(
        &mut out,
        "terminationMessagePath",
        c,
        "/terminationMessagePath",
    );
    if at(c, "/securityContext/privileged").and_then(Value::as_bool) == Some(true) {
        out.insert("privileged".into(), true.into());
    }
    copy(&mut out, "capabilities", c, "/securityContext/capabilities");
    if let Some(policy) = str_at(c, "/imagePullPolicy") {
        let legacy = match policy {
            "Always" => "PullAlways",
            "Never" => "PullNever",
            "IfNotPresent" => "PullIfNotPresent",
            other => other,
        };
        out.insert("imagePullPolicy".into(), legacy.into());
    }
    Value::Object(out)
}

fn volume_to_v1beta1(v: &Value) -> Value {
    let mut source = Map::new();
    if let Some(dir) = at(v, "/emptyDir") {
        let mut e = Map::new();
        copy(&mut e, "medium", dir, "/medium");
        source.insert("emptyDir".into(), Value::Object(e));
    }
    if let Some(host) = at(v, "/hostPath") {
        let mut h = Map::new();
        copy(&mut h, "path", host, "/path");
        source.insert("hostDir".into(), Value::Object(h));
    }
    if let Some(disk) = at(v, "/gcePersistentDisk") {
        source.insert("persistentDisk".into(), disk.clone());
    }
    if let Some(repo) = at(v, "/gitRepo") {
        source.insert("gitRepo".into(), repo.clone());
    }
    if let Some(secret) = at(v, "/secret") {
        let mut target = Map::new();
        target.insert("kind".into(), "Secret".into());
        copy(&mut target, "name", secret, "/secretName");
        source.insert("secret".into(), json!({"target": target}));
    }
    let mut out = Map::new();
    copy(&mut out, "name", v, "/name");
    out.insert("source".into(), Value::Object(source));
    Value::Object(out)
}

/// A v1beta1 ContainerManifest from a v1 PodSpec.
fn manifest_to_v1beta1(spec: &Value, id: Option<&Value>, uid: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("version".into(), "v1beta1".into());
    m.insert("id".into(), id.cloned().unwrap_or_else(|| "".into()));
    if let Some(uid) = uid {
        m.insert("uuid".into(), uid.clone());
    }
    let volumes: Vec<Value> = items_at(spec, "/volumes")
        .iter()
        .map(volume_to_v1beta1)
        .collect();
    m.insert(
        "volumes".into(),
        if volumes.is_empty() {
            Value::Null
        } else {
            Value::Array(volumes)
        },
    );
    let containers: Vec<Value> = items_at(spec, "/containers")
        .iter()
        .map(container_to_v1beta1)
        .collect();
    m.insert("containers".into(), Value::Array(containers));
    let policy = match str_at(spec, "/restartPolicy") {
        Some("OnFailure") => "onFailure",
        Some("Never") => "never",
        _ => "always",
    };
    let mut restart_policy = Map::new();
    restart_policy.insert(policy.into(), json!({}));
    m.insert("restartPolicy".into(), Value::Object(restart_policy));
    copy(&mut m, "dnsPolicy", spec, "/dnsPolicy");
    if at(spec, "/hostNetwork").and_then(Value::as_bool) == Some(true) {
        m.insert("hostNetwork".into(), true.into());
    }
    Value::Object(m)
}

/// v1beta1 ContainerState: `termination` was the name of today's `terminated`.
fn container_state_to_v1beta1(state: &Value) -> Value {
    let mut out = Map::new();
    copy(&mut out, "waiting", state, "/waiting");
    copy(&mut out, "running", state, "/running");
    copy(&mut out, "termination", state, "/terminated");
    Value::Object(out)
}

fn pod_to_v1beta1(pod: &Value) -> Map<String, Value> {
    let mut out = meta_to_v1beta1(pod, "Pod");
    let spec = at(pod, "/spec").cloned().unwrap_or_else(|| json!({}));
    let mut desired = Map::new();
    desired.insert(
        "manifest".into(),
        manifest_to_v1beta1(&spec, at(pod, "/metadata/name"), at(pod, "/metadata/uid")),
    );
    copy(&mut desired, "host", pod, "/spec/nodeName");
    out.insert("desiredState".into(), Value::Object(desired));

    let mut current = Map::new();
    copy(&mut current, "status", pod, "/status/phase");
    copy(&mut current, "host", pod, "/spec/nodeName");
    copy(&mut current, "hostIP", pod, "/status/hostIP");
    copy(&mut current, "podIP", pod, "/status/podIP");
    let mut info = Map::new();
    for status in items_at(pod, "/status/containerStatuses") {
        let Some(name) = str_at(status, "/name") else {
            continue;
        };
        let mut s = Map::new();
        if let Some(state) = at(status, "/state") {
            s.insert("state".into(), container_state_to_v1beta1(state));
        }
        if let Some(state) = at(status, "/lastState") {
            s.insert("lastState".into(), container_state_to_v1beta1(state));
        }
        copy(&mut s, "ready", status, "/ready");
        copy(&mut s, "restartCount", status, "/restartCount");
        copy(&mut s, "podIP", pod, "/status/podIP");
        copy(&mut s, "image", status, "/image");
        copy(&mut s, "containerID", status, "/containerID");
        info.insert(name.to_owned(), Value::Object(s));
    }
    if !info.is_empty() {
        current.insert("info".into(), Value::Object(info));
    }
    out.insert("currentState".into(), Value::Object(current));
    copy(&mut out, "nodeSelector", pod, "/spec/nodeSelector");
    out
}

fn service_to_v1beta1(svc: &Value) -> Map<String, Value> {
    let mut out = meta_to_v1beta1(svc, "Service");
    if let Some(port) = items_at(svc, "/spec/ports").first() {
        copy(&mut out, "port", port, "/port");
        copy(&mut out, "protocol", port, "/protocol");
        copy(&mut out, "containerPort", port, "/targetPort");
    }
    copy(&mut out, "selector", svc, "/spec/selector");
    if str_at(svc, "/spec/type") == Some("LoadBalancer") {
        out.insert("createExternalLoadBalancer".into(), true.into());
    }
    let mut public_ips: Vec<Value> = items_at(svc, "/spec/externalIPs").to_vec();
    for ingress in items_at(svc, "/status/loadBalancer/ingress") {
        if let Some(ip) = str_at(ingress, "/ip") {
            public_ips.push(ip.into());
        }
    }
    if !public_ips.is_empty() {
        out.insert("publicIPs".into(), Value::Array(public_ips));
    }
    copy(&mut out, "portalIP", svc, "/spec/clusterIP");
    copy(&mut out, "sessionAffinity", svc, "/spec/sessionAffinity");
    out
}

fn replication_controller_to_v1beta1(rc: &Value) -> Map<String, Value> {
    let mut out = meta_to_v1beta1(rc, "ReplicationController");
    let mut desired = Map::new();
    desired.insert(
        "replicas".into(),
        at(rc, "/spec/replicas")
            .cloned()
            .unwrap_or_else(|| 1.into()),
    );
    copy(&mut desired, "replicaSelector", rc, "/spec/selector");
    if let Some(template) = at(rc, "/spec/template") {
        let spec = at(template, "/spec").cloned().unwrap_or_else(|| json!({}));
        let mut pod_state = Map::new();
        pod_state.insert("manifest".into(), manifest_to_v1beta1(&spec, None, None));
        copy(&mut pod_state, "host", template, "/spec/nodeName");
        let mut t = Map::new();
        t.insert("desiredState".into(), Value::Object(pod_state));
        copy(&mut t, "nodeSelector", template, "/spec/nodeSelector");
        copy(&mut t, "labels", template, "/metadata/labels");
        copy(&mut t, "annotations", template, "/metadata/annotations");
        desired.insert("podTemplate".into(), Value::Object(t));
    }
    out.insert("desiredState".into(), Value::Object(desired));
    let replicas = at(rc, "/status/replicas")
        .cloned()
        .unwrap_or_else(|| 0.into());
    out.insert("currentState".into(), json!({"replicas": replicas}));
    out
}

fn node_to_v1beta1(node: &Value) -> Map<String, Value> {
    let mut out = meta_to_v1beta1(node, "Minion");
    let addresses = items_at(node, "/status/addresses");
    let host_ip = ["InternalIP", "LegacyHostIP", "ExternalIP"]
        .iter()
        .find_map(|t| {
            addresses
                .iter()
                .find(|a| str_at(a, "/type") == Some(*t))
                .and_then(|a| str_at(a, "/address"))
        });
    if let Some(ip) = host_ip {
        out.insert("hostIP".into(), ip.into());
    }
    if let Some(capacity) = at(node, "/status/capacity").and_then(Value::as_object) {
        let capacity: Map<String, Value> = capacity
            .iter()
            .map(|(name, q)| {
                let value = quantity_to_v1beta1(name, q).unwrap_or_else(|| q.clone());
                (name.clone(), value)
            })
            .collect();
        out.insert("resources".into(), json!({"capacity": capacity}));
    }
    let mut status = Map::new();
    copy(&mut status, "phase", node, "/status/phase");
    let conditions: Vec<Value> = items_at(node, "/status/conditions")
        .iter()
        .map(|c| {
            let mut cond = Map::new();
            copy(&mut cond, "kind", c, "/type");
            let s = match str_at(c, "/status") {
                Some("True") => "Full",
                Some("False") => "None",
                _ => "Unknown",
            };
            cond.insert("status".into(), s.into());
            copy(&mut cond, "lastProbeTime", c, "/lastHeartbeatTime");
            copy(&mut cond, "lastTransitionTime", c, "/lastTransitionTime");
            copy(&mut cond, "reason", c, "/reason");
            copy(&mut cond, "message", c, "/message");
            Value::Object(cond)
        })
        .collect();
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    if !addresses.is_empty() {
        status.insert("addresses".into(), Value::Array(addresses.to_vec()));
    }
    if !status.is_empty() {
        out.insert("status".into(), Value::Object(status));
    }
    copy(&mut out, "externalID", node, "/spec/externalID");
    if at(node, "/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        out.insert("unschedulable".into(), true.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod, ReplicationController, Service};

    fn seed_service() -> Value {
        serde_json::from_str(
            r#"{"id": "httpd","kind": "Service","apiVersion": "v1beta1","selector": {"name": "httpd"},"containerPort": 80,"protocol": "TCP","port": 80}"#,
        )
        .unwrap()
    }

    fn seed_pod() -> Value {
        serde_json::from_str(
            r#"{"kind": "Pod", "apiVersion": "v1beta1", "id": "httpd","labels": {"name": "httpd"},"desiredState": {"manifest": {"version": "v1beta1", "id": "httpd", "volumes": null,"containers": [ { "name": "master", "image": "registry-host:5000/httpd:latest","ports": [ { "containerPort": 80, "hostPort": 80, "protocol": "TCP" } ]} ],"restartPolicy": { "always": {} }}}}"#,
        )
        .unwrap()
    }

    fn seed_rc() -> Value {
        serde_json::from_str(
            r#"{"id": "httpdController", "kind": "ReplicationController", "apiVersion": "v1beta1","desiredState": {"replicas": 3, "replicaSelector": { "name": "httpd" },"podTemplate": {"desiredState": {"manifest": {"version": "v1beta1", "id": "httpd","containers": [{"name": "httpd", "image": "registry-host:5000/httpd:latest","ports": [{ "containerPort": 80, "hostPort": 80 }]}]}}, "labels": { "name": "httpd" } }},"labels": { "name": "httpdController" }}"#,
        )
        .unwrap()
    }

    #[test]
    fn seed_service_converts() {
        let v1 = v1beta1_to_v1(&seed_service()).unwrap();
        assert_eq!(
            v1,
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "httpd"},
                "spec": {
                    "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
                    "selector": {"name": "httpd"},
                    "type": "ClusterIP"
                }
            })
        );
        let svc: Service = serde_json::from_value(v1).unwrap();
        let spec = svc.spec.unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("httpd"));
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, 80);
        assert_eq!(spec.ports.as_ref().unwrap()[0].name, None);
        assert_eq!(
            spec.ports.as_ref().unwrap()[0].target_port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
        );
    }

    #[test]
    fn seed_pod_converts() {
        let v1 = v1beta1_to_v1(&seed_pod()).unwrap();
        assert_eq!(
            v1,
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "httpd", "labels": {"name": "httpd"}},
                "spec": {
                    "containers": [{
                        "name": "master",
                        "image": "registry-host:5000/httpd:latest",
                        "ports": [{"containerPort": 80, "hostPort": 80, "protocol": "TCP"}]
                    }],
                    "restartPolicy": "Always"
                }
            })
        );
        let pod: Pod = serde_json::from_value(v1).unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.containers[0].name, "master");
        assert_eq!(
            spec.containers[0].ports.as_ref().unwrap()[0].host_port,
            Some(80)
        );
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    }

    #[test]
    fn seed_replication_controller_converts() {
        let v1 = v1beta1_to_v1(&seed_rc()).unwrap();
        assert_eq!(
            v1,
            json!({
                "apiVersion": "v1",
                "kind": "ReplicationController",
                "metadata": {"name": "httpdController", "labels": {"name": "httpdController"}},
                "spec": {
                    "replicas": 3,
                    "selector": {"name": "httpd"},
                    "template": {
                        "metadata": {"labels": {"name": "httpd"}},
                        "spec": {
                            "containers": [{
                                "name": "httpd",
                                "image": "registry-host:5000/httpd:latest",
                                "ports": [{"containerPort": 80, "hostPort": 80}]
                            }],
                            "restartPolicy": "Always"
                        }
                    }
                }
            })
        );
        let rc: ReplicationController = serde_json::from_value(v1).unwrap();
        let spec = rc.spec.unwrap();
        assert_eq!(rc.metadata.name.as_deref(), Some("httpdController"));
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.template.unwrap().spec.unwrap().containers[0]
                .image
                .as_deref(),
            Some("registry-host:5000/httpd:latest")
        );
    }

    #[test]
    fn seeds_round_trip() {
        for seed in [seed_pod(), seed_service(), seed_rc()] {
            let v1 = v1beta1_to_v1(&seed).unwrap();
            let back = v1_to_v1beta1(&v1).unwrap();
            assert_eq!(back["kind"], seed["kind"]);
            assert_eq!(back["apiVersion"], "v1beta1");
            assert_eq!(back["id"], seed["id"]);
            assert_eq!(v1beta1_to_v1(&back).unwrap(), v1, "{back}");
        }
        let back = v1_to_v1beta1(&v1beta1_to_v1(&seed_pod()).unwrap()).unwrap();
        assert_eq!(
            back["desiredState"]["manifest"]["containers"][0]["ports"][0],
            json!({"hostPort": 80, "containerPort": 80, "protocol": "TCP"})
        );
        assert_eq!(
            back["desiredState"]["manifest"]["restartPolicy"],
            json!({"always": {}})
        );
        assert_eq!(back["desiredState"]["manifest"]["volumes"], Value::Null);
    }

    #[test]
    fn full_pod_converts() {
        let pod = json!({
            "kind": "Pod", "apiVersion": "v1beta1", "id": "web", "namespace": "prod",
            "uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "resourceVersion": 42,
            "creationTimestamp": "2015-01-20T10:00:00Z", "annotations": {"a": "b"},
            "nodeSelector": {"disk": "ssd"},
            "desiredState": {
                "host": "minion-1",
                "manifest": {
                    "version": "v1beta1", "id": "web", "uuid": "x",
                    "volumes": [{"name": "data", "source": {"hostDir": {"path": "/srv"}}},
                                {"name": "scratch", "source": {"emptyDir": {}}},
                                {"name": "implied", "source": null}],
                    "containers": [{
                        "name": "app", "image": "app:1", "command": ["/app", "-v"], "workingDir": "/w",
                        "env": [{"key": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "0"}],
                        "memory": 134217728, "cpu": 250,
                        "volumeMounts": [{"name": "data", "path": "/data", "readOnly": true},
                                         {"name": "scratch", "mountPath": "/tmp"}],
                        "livenessProbe": {"type": "http", "httpGet": {"path": "/healthz", "port": "8080"},
                                          "initialDelaySeconds": 15},
                        "imagePullPolicy": "PullIfNotPresent",
                        "privileged": true
                    }],
                    "restartPolicy": {"onFailure": {}},
                    "dnsPolicy": "ClusterFirst"
                }
            },
            "currentState": {"status": "Running", "host": "minion-1"}
        });
        let v1 = v1beta1_to_v1(&pod).unwrap();
        assert_eq!(v1["metadata"]["namespace"], "prod");
        assert_eq!(v1["metadata"]["resourceVersion"], "42");
        assert_eq!(v1["spec"]["nodeName"], "minion-1");
        assert_eq!(v1["spec"]["nodeSelector"], json!({"disk": "ssd"}));
        assert_eq!(v1["spec"]["restartPolicy"], "OnFailure");
        assert_eq!(v1["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(
            v1["spec"]["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/srv"}},
                   {"name": "scratch", "emptyDir": {}},
                   {"name": "implied", "emptyDir": {}}])
        );
        let c = &v1["spec"]["containers"][0];
        assert_eq!(
            c["env"],
            json!([{"name": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "0"}])
        );
        assert_eq!(
            c["resources"],
            json!({"limits": {"cpu": "250m", "memory": "134217728"}})
        );
        assert_eq!(
            c["volumeMounts"],
            json!([{"name": "data", "mountPath": "/data", "readOnly": true}, {"name": "scratch", "mountPath": "/tmp"}])
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"path": "/healthz", "port": "8080"}, "initialDelaySeconds": 15})
        );
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["securityContext"], json!({"privileged": true}));
        assert!(v1.get("status").is_none());
        let typed: Pod = serde_json::from_value(v1.clone()).unwrap();
        assert_eq!(
            typed.spec.unwrap().containers[0]
                .resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()["cpu"]
                .0,
            "250m"
        );

        let back = v1_to_v1beta1(&v1).unwrap();
        assert_eq!(back["resourceVersion"], 42);
        let bc = &back["desiredState"]["manifest"]["containers"][0];
        assert_eq!(bc["cpu"], 250);
        assert_eq!(bc["memory"], 134217728);
        assert_eq!(bc["imagePullPolicy"], "PullIfNotPresent");
        assert_eq!(
            back["desiredState"]["manifest"]["restartPolicy"],
            json!({"onFailure": {}})
        );
        assert_eq!(
            back["desiredState"]["manifest"]["volumes"][0]["source"],
            json!({"hostDir": {"path": "/srv"}})
        );
    }

    #[test]
    fn service_variants() {
        let svc = json!({"kind": "Service", "id": "frontend", "port": 8000, "containerPort": "http",
                         "portalIP": "10.0.0.9", "createExternalLoadBalancer": true,
                         "publicIPs": ["1.2.3.4"], "sessionAffinity": "ClientIP", "labels": {"tier": "fe"}});
        let v1 = v1beta1_to_v1(&svc).unwrap();
        assert_eq!(v1["metadata"]["labels"], json!({"tier": "fe"}));
        assert_eq!(
            v1["spec"],
            json!({"ports": [{"protocol": "TCP", "port": 8000, "targetPort": "http"}],
                   "clusterIP": "10.0.0.9", "type": "LoadBalancer", "externalIPs": ["1.2.3.4"],
                   "sessionAffinity": "ClientIP"})
        );
        let _: Service = serde_json::from_value(v1.clone()).unwrap();
        let back = v1_to_v1beta1(&v1).unwrap();
        assert_eq!(back["createExternalLoadBalancer"], true);
        assert_eq!(back["containerPort"], "http");
        assert_eq!(back["portalIP"], "10.0.0.9");

        let no_target = json!({"kind": "Service", "id": "s", "port": 53, "protocol": "UDP"});
        let v1 = v1beta1_to_v1(&no_target).unwrap();
        assert_eq!(
            v1["spec"]["ports"],
            json!([{"protocol": "UDP", "port": 53, "targetPort": 53}])
        );
    }

    #[test]
    fn minion_converts_to_node() {
        let minion = json!({"kind": "Minion", "apiVersion": "v1beta1", "id": "10.245.1.3",
                            "hostIP": "10.245.1.3", "labels": {"zone": "a"},
                            "resources": {"capacity": {"cpu": 1000, "memory": 3892314112u64, "pods": "110"}}});
        let v1 = v1beta1_to_v1(&minion).unwrap();
        assert_eq!(
            v1,
            json!({"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": "10.245.1.3", "labels": {"zone": "a"}},
                   "status": {"addresses": [{"type": "InternalIP", "address": "10.245.1.3"}],
                              "capacity": {"cpu": "1000m", "memory": "3892314112", "pods": "110"}}})
        );
        let _: Node = serde_json::from_value(v1.clone()).unwrap();
        let back = v1_to_v1beta1(&v1).unwrap();
        assert_eq!(back["kind"], "Minion");
        assert_eq!(back["hostIP"], "10.245.1.3");
        assert_eq!(
            back["resources"]["capacity"],
            json!({"cpu": 1000, "memory": 3892314112u64, "pods": 110})
        );
    }

    #[test]
    fn lists_convert() {
        let list = json!({"kind": "PodList", "apiVersion": "v1beta1", "resourceVersion": 7, "items": [seed_pod()]});
        let v1 = v1beta1_to_v1(&list).unwrap();
        assert_eq!(v1["kind"], "PodList");
        assert_eq!(v1["metadata"]["resourceVersion"], "7");
        assert_eq!(v1["items"][0]["metadata"]["name"], "httpd");
        assert!(v1["items"][0].get("kind").is_none());
        let back = v1_to_v1beta1(&v1).unwrap();
        assert_eq!(back["kind"], "PodList");
        assert_eq!(back["resourceVersion"], 7);
        assert_eq!(back["items"][0]["id"], "httpd");
        let nodes = v1_to_v1beta1(&json!({"kind": "NodeList", "apiVersion": "v1", "items": [{"metadata": {"name": "n"}}]})).unwrap();
        assert_eq!(nodes["kind"], "MinionList");
        assert_eq!(nodes["items"][0]["id"], "n");
    }

    #[test]
    fn errors_name_the_field() {
        let mut pod = seed_pod();
        pod["desiredState"]["manifest"]["containers"][0]["ports"][0]["containerPort"] = json!("80");
        assert_eq!(
            v1beta1_to_v1(&pod).unwrap_err().to_string(),
            "desiredState.manifest.containers[0].ports[0].containerPort: expected an integer"
        );

        let mut pod = seed_pod();
        pod["desiredState"]["manifest"]
            .as_object_mut()
            .unwrap()
            .remove("containers");
        assert_eq!(
            v1beta1_to_v1(&pod).unwrap_err().to_string(),
            "desiredState.manifest.containers: required"
        );

        let mut pod = seed_pod();
        pod.as_object_mut().unwrap().remove("desiredState");
        assert_eq!(
            v1beta1_to_v1(&pod).unwrap_err().to_string(),
            "desiredState: required"
        );

        let mut rc = seed_rc();
        rc["desiredState"]["podTemplate"]["desiredState"]["manifest"]["containers"][0]["imagePullPolicy"] =
            json!("Sometimes");
        let err = v1beta1_to_v1(&rc).unwrap_err().to_string();
        assert!(
            err.starts_with("desiredState.podTemplate.desiredState.manifest.containers[0].imagePullPolicy: unsupported value"),
            "{err}"
        );

        let mut pod = seed_pod();
        pod["labels"]["name"] = json!(1);
        assert_eq!(
            v1beta1_to_v1(&pod).unwrap_err().to_string(),
            "labels.name: expected a string"
        );

        let mut pod = seed_pod();
        pod["desiredState"]["manifest"]["volumes"] =
            json!([{"name": "v", "source": {"nfs": {"server": "x"}}}]);
        assert_eq!(
            v1beta1_to_v1(&pod).unwrap_err().to_string(),
            "desiredState.manifest.volumes[0].source.nfs: unsupported volume source"
        );

        let mut svc = seed_service();
        svc.as_object_mut().unwrap().remove("port");
        assert_eq!(
            v1beta1_to_v1(&svc).unwrap_err().to_string(),
            "port: required"
        );

        assert!(matches!(
            v1beta1_to_v1(&json!({"kind": "Endpoints", "id": "x"})),
            Err(ConversionError::UnsupportedKind { .. })
        ));
        assert_eq!(
            v1beta1_to_v1(&json!({"id": "x"})).unwrap_err().to_string(),
            "kind: required"
        );
        assert!(matches!(
            v1beta1_to_v1(&json!([1])),
            Err(ConversionError::NotAnObject)
        ));
        assert!(matches!(
            v1_to_v1beta1(&json!({"kind": "ConfigMap"})),
            Err(ConversionError::UnsupportedKind { .. })
        ));
        assert!(v1beta1_to_v1(&json!({"kind": "Pod", "apiVersion": "v1", "id": "x"})).is_err());
    }

    #[test]
    fn v1_to_v1beta1_tolerates_sparse_objects() {
        for kind in ["Pod", "Service", "ReplicationController", "Node"] {
            let out = v1_to_v1beta1(&json!({"kind": kind, "apiVersion": "v1"})).unwrap();
            assert_eq!(out["apiVersion"], "v1beta1");
            let out =
                v1_to_v1beta1(&json!({"kind": kind, "metadata": 5, "spec": [], "status": "x"}))
                    .unwrap();
            assert_eq!(out["apiVersion"], "v1beta1");
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("128Mi"), Some(134217728.0));
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(
            parse_quantity("1.5Gi"),
            Some(1.5 * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(parse_quantity("abc"), None);
        assert_eq!(quantity_to_v1beta1("cpu", &json!("1")), Some(json!(1000)));
        assert_eq!(quantity_to_v1beta1("cpu", &json!("100m")), Some(json!(100)));
    }
}
