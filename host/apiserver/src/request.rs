//! Parsing of resource paths and query parameters.

use std::collections::HashMap;

use hortator_api::registry::{self, ResourceInfo};

use crate::error::ApiError;

/// What a path under `/api` or `/apis` names.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/api` or `/apis`.
    Root {
        /// True for `/api` (core), false for `/apis`.
        core: bool,
    },
    /// `/apis/<group>`.
    Group(String),
    /// `/api/<v>` or `/apis/<g>/<v>`: the resource list.
    GroupVersion {
        /// Group.
        group: String,
        /// Version.
        version: String,
    },
    /// A resource, collection or object, maybe with a subresource.
    Resource(Target),
}

/// A resource request target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The served resource.
    pub info: &'static ResourceInfo,
    /// Namespace from the path (namespaced resources only).
    pub namespace: Option<String>,
    /// Object name, if the path names one.
    pub name: Option<String>,
    /// Subresource, if any.
    pub subresource: Option<String>,
}

impl Target {
    /// The object's storage key (requires a name).
    pub fn key(&self) -> String {
        self.info.key(
            self.namespace.as_deref(),
            self.name.as_deref().unwrap_or(""),
        )
    }

    /// The key prefix of the collection (namespace-scoped when a namespace is given).
    pub fn collection_prefix(&self) -> String {
        match (&self.namespace, self.info.namespaced()) {
            (Some(ns), true) => format!("{}{ns}/", self.info.key_prefix()),
            _ => self.info.key_prefix(),
        }
    }

    /// The name for error messages.
    pub fn subject(&self) -> crate::error::Subject<'_> {
        crate::error::Subject {
            group: self.info.group,
            plural: self.info.storage().plural,
            name: self.name.as_deref().unwrap_or(""),
        }
    }
}

/// Parse the segments after `/api` (core) or `/apis`.
pub fn parse(core: bool, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = if core {
        ("", &segments[..])
    } else {
        match segments.split_first() {
            None => return Ok(Route::Root { core }),
            Some((g, rest)) => (*g, rest),
        }
    };
    let Some((version, rest)) = rest.split_first() else {
        return if core {
            Ok(Route::Root { core })
        } else {
            Ok(Route::Group(group.to_string()))
        };
    };
    if !registry::serves(group, version) {
        return Err(ApiError::no_route());
    }
    if rest.is_empty() {
        return Ok(Route::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        });
    }
    let find = |plural: &str| registry::find(group, version, plural).ok_or_else(ApiError::no_route);
    let target = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if registry::find(group, version, plural).is_some_and(ResourceInfo::namespaced) =>
        {
            let info = find(plural)?;
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(*name), None),
                [name, sub] => (Some(*name), Some(*sub)),
                _ => return Err(ApiError::no_route()),
            };
            Target {
                info,
                namespace: Some(ns.to_string()),
                name: name.map(str::to_string),
                subresource: sub.map(str::to_string),
            }
        }
        [plural, tail @ ..] => {
            let info = find(plural)?;
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(*name), None),
                [name, sub] => (Some(*name), Some(*sub)),
                // `nodes/{name}/proxy/{path}`: the path is the agent's.
                [name, "proxy", ..] if info.storage().plural == "nodes" => {
                    (Some(*name), Some("proxy"))
                }
                _ => return Err(ApiError::no_route()),
            };
            if name.is_some() && info.namespaced() {
                return Err(ApiError::no_route());
            }
            Target {
                info,
                namespace: None,
                name: name.map(str::to_string),
                subresource: sub.map(str::to_string),
            }
        }
        [] => return Err(ApiError::no_route()),
    };
    if let Some(sub) = &target.subresource
        && target.info.subresource(sub).is_none()
    {
        return Err(ApiError::no_route());
    }
    Ok(Route::Resource(target))
}

/// Query parameters of resource requests, and the client's User-Agent (the default field
/// manager).
#[derive(Debug, Default, Clone)]
pub struct Query {
    params: HashMap<String, String>,
    user_agent: String,
}

impl Query {
    /// Parse a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut params = HashMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(decode(k), decode(v));
        }
        Query {
            params,
            user_agent: String::new(),
        }
    }

    /// The same query from a client with this User-Agent.
    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = user_agent.to_owned();
        self
    }

    /// The field manager of a write: `fieldManager`, or as kube-apiserver derives it, the
    /// User-Agent up to its first `/` (`kubectl/v1.32.4 (linux/amd64) …` → `kubectl`);
    /// `unknown` for a client that sends neither.
    pub fn field_manager(&self) -> String {
        let manager = match self.get("fieldManager") {
            Some(manager) => manager,
            None => self.user_agent.split('/').next().unwrap_or_default(),
        };
        if manager.is_empty() {
            "unknown".to_owned()
        } else {
            manager.to_owned()
        }
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean flag (`true`, `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    /// An integer parameter.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    }

    /// Whether `dryRun=All` was asked.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: supported values: \"All\""
            ))),
        }
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        let Route::Resource(t) = parse(true, "/v1/namespaces/default/pods/x/status").unwrap()
        else {
            panic!()
        };
        assert_eq!(t.info.plural, "pods");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let Route::Resource(t) = parse(true, "/v1/namespaces/foo/status").unwrap() else {
            panic!()
        };
        assert_eq!(t.info.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("foo"));
        let Route::Resource(t) = parse(false, "/apps/v1/deployments").unwrap() else {
            panic!()
        };
        assert!(t.namespace.is_none() && t.name.is_none());
        assert!(matches!(
            parse(false, "/apps/v1").unwrap(),
            Route::GroupVersion { .. }
        ));
        assert!(parse(true, "/v1/bogus").is_err());
        assert!(parse(true, "/v1/pods/x").is_err());
        assert!(parse(true, "/v1/namespaces/a/pods/x/nope").is_err());
    }

    #[test]
    fn decodes_query() {
        let q = Query::parse(Some(
            "labelSelector=environment+in+%28production%2Cqa%29&watch=1",
        ));
        assert_eq!(
            q.get("labelSelector"),
            Some("environment in (production,qa)")
        );
        assert!(q.flag("watch"));
    }
}
