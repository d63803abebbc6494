//! A container's environment: service variables (Kubernetes and docker-links style), then
//! `envFrom`, then `env` with `valueFrom` and `$(VAR)` expansion, as the kubelet builds it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret, Service};
use kube::Api;

/// Why a container's configuration cannot be built (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConfigError(pub String);

/// Variables in definition order; a later definition of a name replaces the earlier value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Environment {
    order: Vec<String>,
    values: BTreeMap<String, String>,
}

impl Environment {
    fn set(&mut self, name: String, value: String) {
        if self.values.insert(name.clone(), value).is_none() {
            self.order.push(name);
        }
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `NAME=value` strings for the engine.
    pub fn to_docker(&self) -> Vec<String> {
        self.order
            .iter()
            .map(|name| format!("{name}={}", self.values[name]))
            .collect()
    }
}

/// The variables a service contributes, e.g. for `httpd` on 10.254.0.1:80/TCP:
/// `HTTPD_SERVICE_HOST`, `HTTPD_SERVICE_PORT`, `HTTPD_PORT=tcp://10.254.0.1:80`,
/// `HTTPD_PORT_80_TCP`, `…_PROTO`, `…_PORT`, `…_ADDR`.
pub(crate) fn service_variables(service: &Service) -> Vec<(String, String)> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    let ip = match spec.cluster_ip.as_deref() {
        Some(ip) if !ip.is_empty() && ip != "None" => ip,
        _ => return Vec::new(),
    };
    let ports = spec.ports.as_deref().unwrap_or_default();
    let Some(first) = ports.first() else {
        return Vec::new();
    };
    let prefix = env_name(service.metadata.name.as_deref().unwrap_or_default());
    let mut vars = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.to_string()),
        (format!("{prefix}_SERVICE_PORT"), first.port.to_string()),
    ];
    for port in ports {
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            vars.push((
                format!("{prefix}_SERVICE_PORT_{}", env_name(name)),
                port.port.to_string(),
            ));
        }
    }
    let protocol = |p: &k8s_openapi::api::core::v1::ServicePort| {
        p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase()
    };
    vars.push((
        format!("{prefix}_PORT"),
        format!("{}://{ip}:{}", protocol(first), first.port),
    ));
    for port in ports {
        let proto = protocol(port);
        let base = format!("{prefix}_PORT_{}_{}", port.port, proto.to_ascii_uppercase());
        vars.push((base.clone(), format!("{proto}://{ip}:{}", port.port)));
        vars.push((format!("{base}_PROTO"), proto));
        vars.push((format!("{base}_PORT"), port.port.to_string()));
        vars.push((format!("{base}_ADDR"), ip.to_string()));
    }
    vars
}

/// `my-svc.x` → `MY_SVC_X`.
fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Expand `$(NAME)` with the variables defined so far; `$$` is a literal `$`; unknown
/// references stay as written (Kubernetes' rules).
pub(crate) fn expand(text: &str, env: &Environment) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Where `envFrom` and `valueFrom` read keys.
#[derive(Debug, Clone, Copy)]
enum Source {
    ConfigMap,
    Secret,
}

impl Source {
    fn kind(self) -> &'static str {
        match self {
            Source::ConfigMap => "ConfigMap",
            Source::Secret => "Secret",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Source::ConfigMap => "configmap",
            Source::Secret => "secret",
        }
    }
}

/// What an environment needs from the cluster.
pub(crate) struct Sources<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// Services of the pod's namespace (and `kubernetes` of `default`).
    pub services: &'a [Service],
    /// The client for config maps and secrets.
    pub client: &'a kube::Client,
    /// The node's address (`status.hostIP`).
    pub host_ip: &'a str,
    /// The pod's address (`status.podIP`).
    pub pod_ip: &'a str,
}

impl Sources<'_> {
    fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The data of a config map or a secret (secret values decoded), if it exists.
    async fn data(
        &self,
        kind: Source,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
        let client = self.client.clone();
        let failed =
            |e: kube::Error| ConfigError(format!("cannot read {} {name:?}: {e}", kind.noun()));
        Ok(match kind {
            Source::ConfigMap => Api::<ConfigMap>::namespaced(client, self.namespace())
                .get_opt(name)
                .await
                .map_err(failed)?
                .map(|map| map.data.unwrap_or_default()),
            Source::Secret => Api::<Secret>::namespaced(client, self.namespace())
                .get_opt(name)
                .await
                .map_err(failed)?
                .map(|secret| {
                    secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                }),
        })
    }

    /// The environment of `container`.
    pub async fn environment(&self, container: &Container) -> Result<Environment, ConfigError> {
        let mut env = Environment::default();
        let links = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let mut services: Vec<&Service> = self
            .services
            .iter()
            .filter(|s| {
                let ns = s.metadata.namespace.as_deref().unwrap_or_default();
                let name = s.metadata.name.as_deref().unwrap_or_default();
                (links && ns == self.namespace()) || (ns == "default" && name == "kubernetes")
            })
            .collect();
        services.sort_by_key(|s| s.metadata.name.clone());
        for service in services {
            for (name, value) in service_variables(service) {
                env.set(name, value);
            }
        }
        for source in container.env_from.as_deref().unwrap_or_default() {
            let prefix = source.prefix.clone().unwrap_or_default();
            let references = [
                source
                    .config_map_ref
                    .as_ref()
                    .map(|r| (Source::ConfigMap, &r.name, r.optional)),
                source
                    .secret_ref
                    .as_ref()
                    .map(|r| (Source::Secret, &r.name, r.optional)),
            ];
            for (kind, name, optional) in references.into_iter().flatten() {
                match self.data(kind, name).await? {
                    Some(data) => {
                        for (key, value) in data {
                            env.set(format!("{prefix}{key}"), value);
                        }
                    }
                    None if optional.unwrap_or(false) => {}
                    None => {
                        return Err(ConfigError(format!("{} {name:?} not found", kind.noun())));
                    }
                }
            }
        }
        for var in container.env.as_deref().unwrap_or_default() {
            if let Some(value) = self.value_of(var, &env).await? {
                env.set(var.name.clone(), value);
            }
        }
        Ok(env)
    }

    /// The value of one `env` entry; `None` for an optional reference that is absent.
    async fn value_of(
        &self,
        var: &EnvVar,
        env: &Environment,
    ) -> Result<Option<String>, ConfigError> {
        let Some(from) = &var.value_from else {
            return Ok(Some(expand(var.value.as_deref().unwrap_or_default(), env)));
        };
        if let Some(field) = &from.field_ref {
            return self.field(&field.field_path).map(Some);
        }
        let reference = from
            .config_map_key_ref
            .as_ref()
            .map(|k| (Source::ConfigMap, &k.name, &k.key, k.optional))
            .or_else(|| {
                from.secret_key_ref
                    .as_ref()
                    .map(|k| (Source::Secret, &k.name, &k.key, k.optional))
            });
        if let Some((kind, name, key, optional)) = reference {
            let value = self.data(kind, name).await?.and_then(|mut d| d.remove(key));
            return match value {
                Some(v) => Ok(Some(v)),
                None if optional.unwrap_or(false) => Ok(None),
                None => Err(ConfigError(format!(
                    "couldn't find key {key} in {} {}/{name}",
                    kind.kind(),
                    self.namespace(),
                ))),
            };
        }
        Err(ConfigError(format!(
            "env {}: only fieldRef, configMapKeyRef and secretKeyRef are supported in valueFrom",
            var.name
        )))
    }

    /// A `fieldRef` path of the downward API.
    fn field(&self, path: &str) -> Result<String, ConfigError> {
        let meta = &self.pod.metadata;
        let spec = self.pod.spec.as_ref();
        let indexed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
            path.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix("']"))
                .map(|key| map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
        };
        if let Some(v) = indexed("metadata.labels['", meta.labels.as_ref()) {
            return Ok(v);
        }
        if let Some(v) = indexed("metadata.annotations['", meta.annotations.as_ref()) {
            return Ok(v);
        }
        let value = match path {
            "metadata.name" => meta.name.clone(),
            "metadata.namespace" => Some(self.namespace().to_string()),
            "metadata.uid" => meta.uid.clone(),
            "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
            "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
            "status.hostIP" | "status.hostIPs" => Some(self.host_ip.to_string()),
            "status.podIP" | "status.podIPs" => Some(self.pod_ip.to_string()),
            _ => return Err(ConfigError(format!("unsupported fieldRef path {path:?}"))),
        };
        Ok(value.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip, "ports": ports},
        }))
        .unwrap()
    }

    #[test]
    fn service_variables_match_the_seed() {
        let vars = service_variables(&service(
            "docker-registry",
            "10.254.0.1",
            json!([{"port": 5000, "protocol": "TCP"}]),
        ));
        let text: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            text,
            [
                "DOCKER_REGISTRY_SERVICE_HOST=10.254.0.1",
                "DOCKER_REGISTRY_SERVICE_PORT=5000",
                "DOCKER_REGISTRY_PORT=tcp://10.254.0.1:5000",
                "DOCKER_REGISTRY_PORT_5000_TCP=tcp://10.254.0.1:5000",
                "DOCKER_REGISTRY_PORT_5000_TCP_PROTO=tcp",
                "DOCKER_REGISTRY_PORT_5000_TCP_PORT=5000",
                "DOCKER_REGISTRY_PORT_5000_TCP_ADDR=10.254.0.1",
            ]
        );
    }

    #[test]
    fn named_and_udp_ports_and_headless_services() {
        let vars = service_variables(&service(
            "dns",
            "10.0.0.10",
            json!([{"name": "dns", "port": 53, "protocol": "UDP"}]),
        ));
        assert!(vars.contains(&("DNS_SERVICE_PORT_DNS".into(), "53".into())));
        assert!(vars.contains(&("DNS_PORT".into(), "udp://10.0.0.10:53".into())));
        assert!(vars.contains(&("DNS_PORT_53_UDP_PROTO".into(), "udp".into())));
        assert!(service_variables(&service("h", "None", json!([{"port": 1}]))).is_empty());
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let mut env = Environment::default();
        env.set("A".into(), "x".into());
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
        assert_eq!(expand("a$(A", &env), "a$(A");
        env.set("A".into(), "y".into());
        assert_eq!(env.to_docker(), ["A=y"]);
    }
}
