//! Field management (`metadata.managedFields`): which manager owns which fields of an object,
//! as Kubernetes' structured-merge-diff keeps it for server-side apply.
//!
//! - An **apply** by manager M owns exactly the fields of M's configuration. A field whose
//!   value would change while another manager owns it is a conflict, unless forced (then M
//!   takes it). Fields M applied before and no longer applies are removed from the object,
//!   unless another manager owns them too.
//! - Any other write (create, update, patch) by manager U gives U the fields it changed and
//!   takes them from the others.
//!
//! Field sets use the `FieldsV1` form: `f:<name>` for a field, `k:<json>` for an element of a
//! list keyed by its merge key, `v:<json>` for an element of a set of primitives, `.` for a
//! keyed element itself. List semantics come from the strategic-merge metadata in
//! [`crate::patch`]; lists without it are atomic (owned whole).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use crate::patch::patch_meta;

/// A field path: `FieldsV1` keys from the object's root.
type Path = Vec<String>;

/// Metadata fields that belong to the server, never to a manager.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

/// The operation a manager's fields came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who writes: a field manager's name, its operation and the apiVersion it wrote.
#[derive(Clone, Copy, Debug)]
pub struct Writer<'a> {
    /// The field manager (`fieldManager`, or derived from the client's User-Agent).
    pub manager: &'a str,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion of the object written.
    pub api_version: &'a str,
    /// The time of the write, RFC 3339.
    pub time: &'a str,
    /// The subresource written (`status`, `scale`), `None` for the object itself. A manager's
    /// writes through a subresource are an entry of their own, as in kube-apiserver.
    pub subresource: Option<&'a str>,
}

#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    fields: BTreeSet<Path>,
}

impl Entry {
    /// An entry of `writer`'s, without fields.
    fn new(writer: &Writer<'_>) -> Entry {
        Entry {
            manager: writer.manager.to_owned(),
            operation: writer.operation.as_str().to_owned(),
            api_version: writer.api_version.to_owned(),
            time: writer.time.to_owned(),
            subresource: writer.subresource.map(str::to_owned),
            fields: BTreeSet::new(),
        }
    }

    fn to_json(&self, fields_v1: Value) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1,
        });
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }

    fn is(&self, writer: &Writer<'_>) -> bool {
        self.manager == writer.manager
            && self.operation == writer.operation.as_str()
            && self.subresource.as_deref() == writer.subresource
    }
}

/// A field another manager owns, which an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The subresource that manager wrote through, if any.
    pub subresource: Option<String>,
    /// The apiVersion that manager wrote.
    pub api_version: String,
    /// The field, as Kubernetes prints it (`.spec.replicas`,
    /// `.spec.containers[name="web"].image`).
    pub field: String,
}

impl Conflict {
    /// The other manager as kube-apiserver names it: `"kubectl" using apps/v1`, or
    /// `"kubectl" with subresource "scale" using apps/v1`.
    pub fn owner(&self) -> String {
        match &self.subresource {
            Some(sub) => format!(
                "\"{}\" with subresource \"{sub}\" using {}",
                self.manager, self.api_version
            ),
            None => format!("\"{}\" using {}", self.manager, self.api_version),
        }
    }
}

/// The conflicts of an apply, with Kubernetes' message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", conflicts_message(.0))]
pub struct Conflicts(pub Vec<Conflict>);

fn conflicts_message(conflicts: &[Conflict]) -> String {
    let mut by_owner: Vec<(String, Vec<&str>)> = Vec::new();
    for c in conflicts {
        let owner = c.owner();
        match by_owner.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, fields)) => fields.push(&c.field),
            None => by_owner.push((owner, vec![&c.field])),
        }
    }
    let n = conflicts.len();
    let mut message = format!(
        "Apply failed with {n} conflict{}: ",
        if n == 1 { "" } else { "s" }
    );
    let parts: Vec<String> = by_owner
        .iter()
        .map(|(owner, fields)| match fields.as_slice() {
            [one] => format!("conflict with {owner}: {one}"),
            many => format!("conflicts with {owner}:\n- {}", many.join("\n- ")),
        })
        .collect();
    message.push_str(&parts.join("\n"));
    message
}

/// The managers of an object and their fields.
#[derive(Clone, Debug, Default)]
pub struct ManagedFields {
    entries: Vec<Entry>,
}

impl ManagedFields {
    /// The managed fields recorded in `object` (entries that cannot be read are dropped, as
    /// kube-apiserver resets unreadable managed fields).
    pub fn of(object: &Value) -> ManagedFields {
        let entries = object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(parse_entry).collect())
            .unwrap_or_default();
        ManagedFields { entries }
    }

    /// Whether `object` carries managed fields different from `old`'s — a writer that sets
    /// them itself, whose version is taken as given.
    pub fn set_by_writer(old: &Value, object: &Value) -> bool {
        let new = object.pointer("/metadata/managedFields");
        new.is_some() && new != old.pointer("/metadata/managedFields")
    }

    /// Store these managed fields in `object`'s metadata (removed when there are none).
    pub fn write(&self, object: &mut Value) {
        if self.entries.is_empty() {
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
            return;
        }
        let Some(meta) = metadata_mut(object) else {
            return;
        };
        let list = self
            .entries
            .iter()
            .map(|e| e.to_json(to_fields_v1(&e.fields)))
            .collect();
        meta.insert("managedFields".into(), Value::Array(list));
    }

    /// Give `writer` the `changed` fields, taking them from the others; forget `removed`.
    fn take(&mut self, changed: BTreeSet<Path>, removed: &BTreeSet<Path>, writer: &Writer<'_>) {
        for entry in &mut self.entries {
            entry.fields.retain(|p| !removed.contains(p));
            if !entry.is(writer) {
                entry.fields.retain(|p| !changed.contains(p));
            }
        }
        if !changed.is_empty() {
            let entry = self.entry(writer);
            entry.fields.extend(changed);
        }
        self.entries.retain(|e| !e.fields.is_empty());
    }

    /// Apply `config` (the manager's whole intent) of `kind`: `merged` is the stored object
    /// `old` with `config` merged in. Checks conflicts, removes from `merged` the fields this
    /// manager stopped applying, and records the new ownership.
    pub fn apply(
        &mut self,
        kind: &str,
        old: &Value,
        config: &Value,
        merged: &mut Value,
        writer: &Writer<'_>,
        force: bool,
    ) -> Result<(), Conflicts> {
        let mut applied = BTreeSet::new();
        fields_of(
            kind,
            config,
            writer.subresource == Some("status"),
            &mut applied,
        );
        let mut conflicts = Vec::new();
        for path in applied.iter().filter(|p| !is_element_marker(p)) {
            let current = get(old, path);
            if current.is_none() || current == get(config, path) {
                continue;
            }
            for entry in self.entries.iter_mut().filter(|e| !e.is(writer)) {
                if entry.fields.contains(path) {
                    if force {
                        entry.fields.remove(path);
                    } else {
                        conflicts.push(Conflict {
                            manager: entry.manager.clone(),
                            subresource: entry.subresource.clone(),
                            api_version: entry.api_version.clone(),
                            field: display(path),
                        });
                    }
                }
            }
        }
        if !conflicts.is_empty() {
            return Err(Conflicts(conflicts));
        }
        let previous = self
            .entries
            .iter()
            .find(|e| e.is(writer))
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        let mut dropped: Vec<&Path> = previous.difference(&applied).collect();
        // Deepest first, so that an element's fields go before the element.
        dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for path in dropped {
            let owned_elsewhere = self.entries.iter().filter(|e| !e.is(writer)).any(|e| {
                if is_element_marker(path) {
                    let element = &path[..path.len() - 1];
                    e.fields.iter().any(|p| p.starts_with(element))
                } else {
                    e.fields.contains(path)
                }
            });
            if !owned_elsewhere {
                remove(merged, path);
            }
        }
        let entry = self.entry(writer);
        entry.fields = applied;
        self.entries.retain(|e| !e.fields.is_empty());
        Ok(())
    }

    fn entry(&mut self, writer: &Writer<'_>) -> &mut Entry {
        let at = match self.entries.iter().position(|e| e.is(writer)) {
            Some(at) => at,
            None => {
                self.entries.push(Entry::new(writer));
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[at];
        entry.api_version = writer.api_version.to_owned();
        entry.time = writer.time.to_owned();
        entry
    }
}

/// Record in `new`'s metadata a create (`old` is `None`), update or patch of `kind` by
/// `writer`: it owns the fields it changed. A write that changes no field keeps the managed
/// fields as they were, without reading them.
pub fn record_write(kind: &str, old: Option<&Value>, new: &mut Value, writer: &Writer<'_>) {
    let Some(old) = old else {
        // A create: the writer owns every field; the tree is built straight from the object.
        let tree = tree_of_object(kind, new);
        if !tree.is_empty()
            && let Some(meta) = metadata_mut(new)
        {
            let entry = Entry::new(writer).to_json(Value::Object(tree));
            meta.insert("managedFields".into(), json!([entry]));
        }
        return;
    };
    let through_status = writer.subresource == Some("status");
    let Changes { changed, removed } = changes(kind, Some(old), new, through_status);
    if changed.is_empty() && removed.is_empty() {
        if let (Some(fields), Some(meta)) = (
            old.pointer("/metadata/managedFields"),
            new.get_mut("metadata").and_then(Value::as_object_mut),
        ) {
            meta.insert("managedFields".into(), fields.clone());
        }
        return;
    }
    let mut managed = ManagedFields::of(old);
    managed.take(changed, &removed, writer);
    managed.write(new);
}

fn parse_entry(value: &Value) -> Option<Entry> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut fields = BTreeSet::new();
    if let Some(tree) = value.get("fieldsV1").and_then(Value::as_object) {
        from_fields_v1(tree, &mut Vec::new(), &mut fields);
    }
    Some(Entry {
        manager: text("manager").unwrap_or_default(),
        operation: text("operation")?,
        api_version: text("apiVersion").unwrap_or_default(),
        time: text("time").unwrap_or_default(),
        subresource: text("subresource"),
        fields,
    })
}

fn from_fields_v1(tree: &Map<String, Value>, path: &mut Path, out: &mut BTreeSet<Path>) {
    for (key, child) in tree {
        path.push(key.clone());
        match child.as_object() {
            Some(children) if !children.is_empty() => from_fields_v1(children, path, out),
            _ => {
                out.insert(path.clone());
            }
        }
        path.pop();
    }
}

fn to_fields_v1(fields: &BTreeSet<Path>) -> Value {
    let mut tree = Tree::default();
    for path in fields {
        tree.add(path);
    }
    Value::Object(tree.0)
}

fn is_element_marker(path: &[String]) -> bool {
    path.last().is_some_and(|k| k == ".")
}

/// Where the fields found in an object go: a set of paths, or a `FieldsV1` tree.
trait Sink {
    fn add(&mut self, path: &[String]);
}

impl Sink for BTreeSet<Path> {
    fn add(&mut self, path: &[String]) {
        self.insert(path.to_vec());
    }
}

/// A `FieldsV1` tree under construction.
#[derive(Default)]
struct Tree(Map<String, Value>);

impl Sink for Tree {
    fn add(&mut self, path: &[String]) {
        let mut node = &mut self.0;
        for key in path {
            if !node.get(key).is_some_and(Value::is_object) {
                node.insert(key.clone(), json!({}));
            }
            let Some(Value::Object(next)) = node.get_mut(key) else {
                return;
            };
            node = next;
        }
    }
}

/// The manager-owned fields at the top of an object and in its metadata: `visit(key, path,
/// names)` for each, with the path and field names pushed. A write through the status
/// subresource (`through_status`) owns `status` alone, as it changes nothing else; other
/// writes own everything but `status` (they keep the stored status).
fn top_level<'v>(
    keys: impl Iterator<Item = &'v String>,
    meta_keys: impl Iterator<Item = &'v String>,
    through_status: bool,
    mut visit: impl FnMut(&'v str, &mut Path, &mut Vec<&'v str>),
) {
    let mut path = Vec::new();
    let mut names = Vec::new();
    for key in keys {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
            || ((key == "status") != through_status)
        {
            continue;
        }
        path.push(format!("f:{key}"));
        names.push(key.as_str());
        visit(key, &mut path, &mut names);
        names.pop();
        path.pop();
    }
    if through_status {
        return;
    }
    path.push("f:metadata".to_owned());
    names.push("metadata");
    for key in meta_keys.filter(|k| !SERVER_METADATA.contains(&k.as_str())) {
        path.push(format!("f:{key}"));
        names.push(key.as_str());
        visit(key, &mut path, &mut names);
        names.pop();
        path.pop();
    }
}

fn metadata(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata").and_then(Value::as_object)
}

/// `object`'s metadata, created when absent; `None` when `object` is not an object.
fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = object.as_object_mut()?;
    if !map.get("metadata").is_some_and(Value::is_object) {
        map.insert("metadata".into(), json!({}));
    }
    map.get_mut("metadata").and_then(Value::as_object_mut)
}

/// The fields set in `object` of `kind`, leaves and keyed elements: its status alone when
/// written `through_status`, everything else otherwise.
fn fields_of(kind: &str, object: &Value, through_status: bool, out: &mut impl Sink) {
    let empty = Map::new();
    let map = object.as_object().unwrap_or(&empty);
    let meta = metadata(object).unwrap_or(&empty);
    top_level(
        map.keys(),
        meta.keys(),
        through_status,
        |key, path, names| {
            let value = if names.len() == 2 {
                &meta[key]
            } else {
                &map[key]
            };
            collect(kind, value, path, names, out);
        },
    );
}

/// The `FieldsV1` tree of every field set in `object` of `kind`: what [`fields_of`] finds,
/// built in one pass instead of path by path from the root.
fn tree_of_object(kind: &str, object: &Value) -> Map<String, Value> {
    let empty = Map::new();
    let map = object.as_object().unwrap_or(&empty);
    let meta = metadata(object).unwrap_or(&empty);
    let mut tree = Map::new();
    let mut meta_tree = Map::new();
    top_level(map.keys(), meta.keys(), false, |key, _path, names| {
        let (value, into) = if names.len() == 2 {
            (&meta[key], &mut meta_tree)
        } else {
            (&map[key], &mut tree)
        };
        let subtree = tree_of(kind, value, names);
        merge_tree(into, format!("f:{key}"), subtree);
    });
    if !meta_tree.is_empty() {
        tree.insert("f:metadata".to_owned(), Value::Object(meta_tree));
    }
    tree
}

/// The `FieldsV1` subtree of `value`, found at the field names `names`.
fn tree_of<'v>(kind: &str, value: &'v Value, names: &mut Vec<&'v str>) -> Map<String, Value> {
    let mut tree = Map::new();
    match value {
        Value::Object(map) => fields_tree(kind, map, names, &mut tree),
        Value::Array(items) if !items.is_empty() => match list_kind(kind, names, items.iter()) {
            ListKind::Keyed(keys) => {
                for item in items {
                    let mut element = Map::new();
                    element.insert(".".to_owned(), Value::Object(Map::new()));
                    if let Some(fields) = item.as_object() {
                        fields_tree(kind, fields, names, &mut element);
                    }
                    merge_tree(&mut tree, element_key(keys, item), element);
                }
            }
            ListKind::Set => {
                for item in items {
                    tree.insert(format!("v:{item}"), Value::Object(Map::new()));
                }
            }
            ListKind::Atomic => {}
        },
        _ => {}
    }
    tree
}

fn fields_tree<'v>(
    kind: &str,
    map: &'v Map<String, Value>,
    names: &mut Vec<&'v str>,
    out: &mut Map<String, Value>,
) {
    for (key, child) in map {
        names.push(key);
        let subtree = tree_of(kind, child, names);
        names.pop();
        merge_tree(out, format!("f:{key}"), subtree);
    }
}

/// Add `subtree` at `key` of `tree`, merged with what is there (two list elements with the
/// same key are one element).
fn merge_tree(tree: &mut Map<String, Value>, key: String, subtree: Map<String, Value>) {
    match tree.get_mut(&key) {
        Some(Value::Object(existing)) => {
            for (k, v) in subtree {
                match v {
                    Value::Object(inner) => merge_tree(existing, k, inner),
                    other => {
                        existing.insert(k, other);
                    }
                }
            }
        }
        _ => {
            tree.insert(key, Value::Object(subtree));
        }
    }
}

/// How the list at `names` of `kind` is merged: by a key, as a set, or whole.
enum ListKind {
    Keyed(&'static [&'static str]),
    Set,
    Atomic,
}

/// The `x-kubernetes-list-map-keys` of a list whose strategic-merge key is `merge_key`. They
/// are the merge key alone except where the schema adds a second key (ports are told apart by
/// their protocol too). Sorted, as structured-merge-diff writes them in `k:` keys.
fn list_map_keys(merge_key: &'static str) -> &'static [&'static str] {
    match merge_key {
        "containerPort" => &["containerPort", "protocol"],
        "port" => &["port", "protocol"],
        "topologyKey" => &["topologyKey", "whenUnsatisfiable"],
        "type" => &["type"],
        "name" => &["name"],
        "uid" => &["uid"],
        "ip" => &["ip"],
        "mountPath" => &["mountPath"],
        "devicePath" => &["devicePath"],
        // A merge key without a known schema: the list is treated as atomic.
        _ => &[],
    }
}

/// The value of a key field of a list element. `protocol` has a schema default (TCP) that
/// structured-merge-diff uses when an element leaves it out.
fn key_value<'v>(item: &'v Value, key: &str) -> Option<&'v Value> {
    static TCP: LazyLock<Value> = LazyLock::new(|| Value::from("TCP"));
    match item.get(key) {
        Some(v) => Some(v),
        None if key == "protocol" && item.is_object() => Some(&TCP),
        None => None,
    }
}

/// Whether two elements of a keyed list are the same element.
fn same_element(keys: &[&str], a: &Value, b: &Value) -> bool {
    keys.iter().all(|k| key_value(a, k) == key_value(b, k))
}

fn list_kind<'a>(kind: &str, names: &[&str], items: impl Iterator<Item = &'a Value>) -> ListKind {
    match patch_meta(kind, &names.join(".")) {
        Some(m) if m.merge => match m.merge_key {
            None => ListKind::Set,
            Some(key) => {
                let keys = list_map_keys(key);
                let mut items = items;
                if !keys.is_empty()
                    && items.all(|item| keys.iter().all(|k| key_value(item, k).is_some()))
                {
                    ListKind::Keyed(keys)
                } else {
                    ListKind::Atomic
                }
            }
        },
        _ => ListKind::Atomic,
    }
}

/// The `k:` key of a list element: its key fields as a JSON object, in key order.
fn element_key(keys: &[&str], item: &Value) -> String {
    let id: Map<String, Value> = keys
        .iter()
        .map(|k| {
            (
                (*k).to_owned(),
                key_value(item, k).cloned().unwrap_or_default(),
            )
        })
        .collect();
    format!("k:{}", Value::Object(id))
}

fn collect<'v>(
    kind: &str,
    value: &'v Value,
    path: &mut Path,
    names: &mut Vec<&'v str>,
    out: &mut impl Sink,
) {
    match value {
        Value::Object(map) if !map.is_empty() => collect_fields(kind, map, path, names, out),
        Value::Array(items) if !items.is_empty() => match list_kind(kind, names, items.iter()) {
            ListKind::Keyed(key) => {
                for item in items {
                    path.push(element_key(key, item));
                    collect_element(kind, item, path, names, out);
                    path.pop();
                }
            }
            ListKind::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.add(path);
                    path.pop();
                }
            }
            ListKind::Atomic => out.add(path),
        },
        _ => out.add(path),
    }
}

fn collect_fields<'v>(
    kind: &str,
    map: &'v Map<String, Value>,
    path: &mut Path,
    names: &mut Vec<&'v str>,
    out: &mut impl Sink,
) {
    for (key, child) in map {
        path.push(format!("f:{key}"));
        names.push(key);
        collect(kind, child, path, names, out);
        names.pop();
        path.pop();
    }
}

/// A keyed list element (the path ends with its `k:` key): the element and its fields.
fn collect_element<'v>(
    kind: &str,
    item: &'v Value,
    path: &mut Path,
    names: &mut Vec<&'v str>,
    out: &mut impl Sink,
) {
    path.push(".".to_owned());
    out.add(path);
    path.pop();
    if let Some(fields) = item.as_object() {
        collect_fields(kind, fields, path, names, out);
    }
}

/// The fields a write changed (set, or set to another value) and removed.
struct Changes {
    changed: BTreeSet<Path>,
    removed: BTreeSet<Path>,
}

fn changes(kind: &str, old: Option<&Value>, new: &Value, through_status: bool) -> Changes {
    let mut changes = Changes {
        changed: BTreeSet::new(),
        removed: BTreeSet::new(),
    };
    let empty = Map::new();
    let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
    let new_map = new.as_object().unwrap_or(&empty);
    let old_meta = old.and_then(metadata).unwrap_or(&empty);
    let new_meta = metadata(new).unwrap_or(&empty);
    let keys = union(old_map, new_map);
    let meta_keys = union(old_meta, new_meta);
    top_level(
        keys.into_iter(),
        meta_keys.into_iter(),
        through_status,
        |key, path, names| {
            let (before, after) = if names.len() == 2 {
                (old_meta.get(key), new_meta.get(key))
            } else {
                (old_map.get(key), new_map.get(key))
            };
            compare(kind, before, after, path, names, &mut changes);
        },
    );
    let Changes { changed, removed } = &mut changes;
    removed.retain(|p| !changed.contains(p));
    changes
}

/// The keys of two objects, each once, `a`'s first.
fn union<'v>(a: &'v Map<String, Value>, b: &'v Map<String, Value>) -> Vec<&'v String> {
    a.keys()
        .chain(b.keys().filter(|k| !a.contains_key(*k)))
        .collect()
}

fn compare<'v>(
    kind: &str,
    old: Option<&'v Value>,
    new: Option<&'v Value>,
    path: &mut Path,
    names: &mut Vec<&'v str>,
    changes: &mut Changes,
) {
    if old == new {
        return;
    }
    match (old, new) {
        (Some(Value::Object(o)), Some(Value::Object(n))) if !o.is_empty() && !n.is_empty() => {
            compare_fields(kind, o, n, path, names, changes);
        }
        (Some(Value::Array(o)), Some(Value::Array(n))) if !o.is_empty() && !n.is_empty() => {
            match list_kind(kind, names, o.iter().chain(n.iter())) {
                ListKind::Keyed(key) => {
                    for item in n {
                        path.push(element_key(key, item));
                        match o.iter().find(|prev| same_element(key, prev, item)) {
                            Some(Value::Object(prev)) => {
                                if let Some(fields) = item.as_object() {
                                    compare_fields(kind, prev, fields, path, names, changes);
                                }
                            }
                            _ => collect_element(kind, item, path, names, &mut changes.changed),
                        }
                        path.pop();
                    }
                    for item in o
                        .iter()
                        .filter(|i| !n.iter().any(|x| same_element(key, x, i)))
                    {
                        path.push(element_key(key, item));
                        collect_element(kind, item, path, names, &mut changes.removed);
                        path.pop();
                    }
                }
                ListKind::Set => {
                    for item in n.iter().filter(|i| !o.contains(i)) {
                        path.push(format!("v:{item}"));
                        changes.changed.add(path);
                        path.pop();
                    }
                    for item in o.iter().filter(|i| !n.contains(i)) {
                        path.push(format!("v:{item}"));
                        changes.removed.add(path);
                        path.pop();
                    }
                }
                ListKind::Atomic => changes.changed.add(path),
            }
        }
        _ => {
            if let Some(new) = new {
                collect(kind, new, path, names, &mut changes.changed);
            }
            if let Some(old) = old {
                collect(kind, old, path, names, &mut changes.removed);
            }
        }
    }
}

fn compare_fields<'v>(
    kind: &str,
    old: &'v Map<String, Value>,
    new: &'v Map<String, Value>,
    path: &mut Path,
    names: &mut Vec<&'v str>,
    changes: &mut Changes,
) {
    for key in union(old, new) {
        path.push(format!("f:{key}"));
        names.push(key);
        compare(kind, old.get(key), new.get(key), path, names, changes);
        names.pop();
        path.pop();
    }
}

/// The value at `path` in `object`.
fn get<'v>(object: &'v Value, path: &Path) -> Option<&'v Value> {
    let mut node = object;
    for key in path {
        node = step(node, key)?;
    }
    Some(node)
}

fn step<'v>(node: &'v Value, key: &str) -> Option<&'v Value> {
    if key == "." {
        return Some(node);
    }
    if let Some(field) = key.strip_prefix("f:") {
        return node.get(field);
    }
    let items = node.as_array()?;
    items.get(element_index(items, key)?)
}

/// The index of the list element a `k:` or `v:` key names.
fn element_index(items: &[Value], key: &str) -> Option<usize> {
    if let Some(id) = key.strip_prefix("k:") {
        let id: Map<String, Value> = serde_json::from_str(id).ok()?;
        items
            .iter()
            .position(|item| id.iter().all(|(k, v)| key_value(item, k) == Some(v)))
    } else if let Some(v) = key.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        items.iter().position(|item| *item == v)
    } else {
        None
    }
}

/// Remove the field, or list element, at `path` from `object`.
fn remove(object: &mut Value, path: &Path) {
    let path: &[String] = if is_element_marker(path) {
        &path[..path.len() - 1]
    } else {
        path
    };
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for key in parents {
        let next = if let Some(field) = key.strip_prefix("f:") {
            node.get_mut(field)
        } else {
            let index = node.as_array().and_then(|items| element_index(items, key));
            index.and_then(|i| node.get_mut(i))
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(i) = node.as_array().and_then(|items| element_index(items, last))
        && let Some(items) = node.as_array_mut()
    {
        items.remove(i);
    }
}

/// A path as Kubernetes prints it in conflicts: `.spec.containers[name="web"].image`.
fn display(path: &Path) -> String {
    let mut out = String::new();
    for key in path {
        if let Some(field) = key.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(id) = key.strip_prefix("k:") {
            let id: Map<String, Value> = serde_json::from_str(id).unwrap_or_default();
            let parts: Vec<String> = id.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = key.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
