//! Name and metadata validation with Kubernetes-identical error messages.
//!
//! The string checks mirror `k8s.io/apimachinery/pkg/util/validation` (written by hand, without a
//! regex engine) and the object checks mirror `ValidateObjectMeta` / `ValidatePodSpec`. Errors are
//! returned as [`Cause`]s, which serialize like a `metav1.StatusCause`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, ResourceRequirements, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";

/// Maximum total size in bytes of all annotation keys and values of one object.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Kubernetes' `RegexError`: a message with examples and the regex used for validation.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = String::from(msg);
    if examples.is_empty() {
        out.push_str(" (regex used for validation is '");
    } else {
        out.push_str(" (e.g. ");
        for (i, e) in examples.iter().enumerate() {
            if i > 0 {
                out.push_str(" or ");
            }
            out.push('\'');
            out.push_str(e);
            out.push_str("', ");
        }
        out.push_str("regex used for validation is '");
    }
    out.push_str(fmt);
    out.push_str("')");
    out
}

/// Kubernetes' `MaxLenError`.
fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Matches `[a-z0-9]([-a-z0-9]*[a-z0-9])?` exactly.
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// Matches the DNS-1123 subdomain regex exactly.
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// Matches `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]` exactly.
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

/// Validates a lowercase RFC 1123 subdomain (most object names); returns Kubernetes' messages.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Validates a lowercase RFC 1123 label (namespace, service and container names).
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Validates a qualified name (label, annotation and finalizer keys): `[prefix/]name`.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for msg in dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Validates a label value (may be empty).
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Validates an environment variable name (`IsEnvVarName`).
pub fn env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let b = value.as_bytes();
    let ok = match b.first() {
        Some(&f) => {
            (f.is_ascii_alphabetic() || matches!(f, b'-' | b'.' | b'_'))
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        }
        None => false,
    };
    if !ok {
        errs.push(regex_error(
            ENV_VAR_NAME_ERR,
            ENV_VAR_NAME_FMT,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_string());
    } else if value == ".." {
        errs.push("must not be '..'".to_string());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// Validates a named port (`IsValidPortName`): IANA service name rules.
pub fn port_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 15 {
        errs.push(max_len_error(15));
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !value.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if value.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if value.starts_with('-') || value.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// Validates a port number (`IsValidPortNum`): 1..=65535.
pub fn port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// Quotes a string like Go's `%q` / `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One field validation error, serialized like a `metav1.StatusCause`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Cause {
    /// The cause type, e.g. `FieldValueInvalid`, `FieldValueRequired`.
    pub reason: String,
    /// The error body without the field, e.g. `Invalid value: "Foo": ...`.
    pub message: String,
    /// The field path, e.g. `metadata.name` or `spec.containers[0].image`.
    pub field: String,
}

impl Cause {
    fn new(reason: &str, field: impl Into<String>, body: String, detail: &str) -> Cause {
        let message = if detail.is_empty() {
            body
        } else {
            format!("{body}: {detail}")
        };
        Cause {
            reason: reason.to_string(),
            message,
            field: field.into(),
        }
    }

    /// `Invalid value: "<value>": <detail>` for a string value (quoted like Go's `%q`).
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Cause {
        Cause::invalid_raw(field, &go_quote(value), detail)
    }

    /// `Invalid value: <value_display>: <detail>` with the value printed verbatim (numbers,
    /// booleans, or an already formatted value).
    pub fn invalid_raw(field: impl Into<String>, value_display: &str, detail: &str) -> Cause {
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {value_display}"),
            detail,
        )
    }

    /// `Required value`.
    pub fn required(field: impl Into<String>) -> Cause {
        Cause::required_with(field, "")
    }

    /// `Required value: <detail>`.
    pub fn required_with(field: impl Into<String>, detail: &str) -> Cause {
        Cause::new(
            "FieldValueRequired",
            field,
            "Required value".to_string(),
            detail,
        )
    }

    /// `Unsupported value: "<value>": supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Cause {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Cause::new(
            "FieldValueNotSupported",
            field,
            format!("Unsupported value: {}", go_quote(value)),
            &detail,
        )
    }

    /// `Duplicate value: "<value>"`.
    pub fn duplicate(field: impl Into<String>, value: &str) -> Cause {
        Cause::new(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", go_quote(value)),
            "",
        )
    }

    /// `Not found: "<value>"`.
    pub fn not_found(field: impl Into<String>, value: &str) -> Cause {
        Cause::new(
            "FieldValueNotFound",
            field,
            format!("Not found: {}", go_quote(value)),
            "",
        )
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
        Cause::new(
            "FieldValueForbidden",
            field,
            "Forbidden".to_string(),
            detail,
        )
    }

    /// `Too long: may not be more than <max> bytes`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Cause {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Cause::new(
            "FieldValueTooLong",
            field,
            "Too long".to_string(),
            &format!("may not be more than {max} {unit}"),
        )
    }

    /// `"{field}: {message}"`, the form used in the aggregated Status message.
    pub fn full_message(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Replaces a trailing '-' by 'a' so a `generateName` prefix can be checked as a name.
/// (Like Kubernetes' `maskTrailingDash`, which also drops the character before the dash.)
fn mask_trailing_dash(s: &str) -> String {
    if s.len() > 1 && s.ends_with('-') {
        let mut bytes = s.as_bytes()[..s.len() - 2].to_vec();
        bytes.push(b'a');
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        s.to_string()
    }
}

/// Validates labels (keys qualified names, values label values) at `field`.
pub fn validate_labels(labels: &BTreeMap<String, String>, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (k, v) in labels {
        for msg in qualified_name(k) {
            causes.push(Cause::invalid(field, k, &msg));
        }
        for msg in label_value(v) {
            causes.push(Cause::invalid(field, v, &msg));
        }
    }
    causes
}

/// Validates annotations (keys are case-insensitive qualified names, total size ≤ 256 KiB).
pub fn validate_annotations(annotations: &BTreeMap<String, String>, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for msg in qualified_name(&k.to_lowercase()) {
            causes.push(Cause::invalid(field, k, &msg));
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(Cause::too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    causes
}

/// Validates `metadata` like Kubernetes' `ValidateObjectMeta`.
///
/// `namespaced` is the resource scope (the server fills the namespace before calling);
/// `name_check` validates `name` (and `generateName`, with a trailing '-' masked).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    name_check: fn(&str) -> Vec<String>,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        for msg in name_check(&mask_trailing_dash(generate_name)) {
            causes.push(Cause::invalid("metadata.generateName", generate_name, &msg));
        }
    }
    let name = meta.name.as_deref().unwrap_or("");
    if name.is_empty() {
        if generate_name.is_empty() {
            causes.push(Cause::required_with(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_check(name) {
            causes.push(Cause::invalid("metadata.name", name, &msg));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            causes.push(Cause::required("metadata.namespace"));
        } else {
            for msg in dns1123_label(namespace) {
                causes.push(Cause::invalid("metadata.namespace", namespace, &msg));
            }
        }
    } else if !namespace.is_empty() {
        causes.push(Cause::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta.generation
        && g < 0
    {
        causes.push(Cause::invalid_raw(
            "metadata.generation",
            &g.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(labels) = &meta.labels {
        causes.extend(validate_labels(labels, "metadata.labels"));
    }
    if let Some(annotations) = &meta.annotations {
        causes.extend(validate_annotations(annotations, "metadata.annotations"));
    }
    if let Some(refs) = &meta.owner_references {
        let field = "metadata.ownerReferences";
        let mut first_controller: Option<String> = None;
        for r in refs {
            let version_empty = match r.api_version.split('/').collect::<Vec<_>>().as_slice() {
                [v] => v.is_empty(),
                [_, v] => v.is_empty(),
                _ => true,
            };
            if version_empty {
                causes.push(Cause::invalid(
                    format!("{field}.apiVersion"),
                    &r.api_version,
                    "version must not be empty",
                ));
            }
            if r.kind.is_empty() {
                causes.push(Cause::invalid(
                    format!("{field}.kind"),
                    &r.kind,
                    "must not be empty",
                ));
            }
            if r.name.is_empty() {
                causes.push(Cause::invalid(
                    format!("{field}.name"),
                    &r.name,
                    "must not be empty",
                ));
            }
            if r.uid.is_empty() {
                causes.push(Cause::invalid(
                    format!("{field}.uid"),
                    &r.uid,
                    "must not be empty",
                ));
            }
            if r.controller == Some(true) {
                let cur = format!("{}/{}", r.kind, r.name);
                match &first_controller {
                    Some(first) => causes.push(Cause::invalid_raw(
                        field,
                        "[]",
                        &format!(
                            "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"
                        ),
                    )),
                    None => first_controller = Some(cur),
                }
            }
        }
    }
    if let Some(finalizers) = &meta.finalizers {
        for f in finalizers {
            for msg in qualified_name(f) {
                causes.push(Cause::invalid("metadata.finalizers", f, &msg));
            }
        }
    }
    causes
}

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

const QUANTITY_REGEX_ERR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed resource quantity, as an exact-enough numeric value.
#[derive(Clone, Copy, Debug, PartialEq)]
struct QuantityValue {
    /// The value in nano units when representable, for exact comparisons.
    nanos: Option<i128>,
    /// Approximate value, used when `nanos` overflows.
    approx: f64,
}

impl QuantityValue {
    fn is_negative(&self) -> bool {
        match self.nanos {
            Some(n) => n < 0,
            None => self.approx < 0.0,
        }
    }

    fn cmp(&self, other: &QuantityValue) -> std::cmp::Ordering {
        match (self.nanos, other.nanos) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self
                .approx
                .partial_cmp(&other.approx)
                .unwrap_or(std::cmp::Ordering::Equal),
        }
    }
}

/// A quantity in thousandths of its unit, rounded up as Kubernetes'
/// `MilliValue` does (`"250m"` → 250, `"2"` → 2000), or `None` when it is not a
/// quantity or does not fit an `i64`.
pub fn quantity_milli_value(quantity: &str) -> Option<i64> {
    let nanos = parse_quantity(quantity)?.nanos?;
    i64::try_from((nanos + 999_999).div_euclid(1_000_000)).ok()
}

/// A quantity in whole units, rounded up as Kubernetes' `Value` does
/// (`"1Ki"` → 1024, `"100m"` → 1), or `None` when it is not a quantity or does
/// not fit an `i64`.
pub fn quantity_value(quantity: &str) -> Option<i64> {
    let nanos = parse_quantity(quantity)?.nanos?;
    i64::try_from((nanos + 999_999_999).div_euclid(1_000_000_000)).ok()
}

/// Parses a Kubernetes quantity (`1`, `100m`, `1.5Gi`, `1e3`, `-2k`).
fn parse_quantity(s: &str) -> Option<QuantityValue> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if let Some(&c) = b.first()
        && (c == b'+' || c == b'-')
    {
        negative = c == b'-';
        i = 1;
    }
    let num_start = i;
    let mut seen_dot = false;
    let mut digits = 0;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        if b[i] == b'.' {
            if seen_dot {
                return None;
            }
            seen_dot = true;
        } else {
            digits += 1;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let number = &s[num_start..i];
    let suffix = &s[i..];
    // (power of ten, power of two)
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => {
            let rest = &s[1..];
            let digits_part = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits_part.is_empty() || !digits_part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let e: i32 = rest.parse().ok()?;
            (e, 0)
        }
        _ => return None,
    };
    let (int_part, frac_part) = match number.split_once('.') {
        Some((a, b)) => (a, b),
        None => (number, ""),
    };
    let approx = {
        let v: f64 = format!("0{number}").parse().ok()?;
        let v = v * 10f64.powi(exp10) * 2f64.powi(exp2 as i32);
        if negative { -v } else { v }
    };
    // Exact value in nanos: mantissa * 10^(exp10 - frac_len + 9) * 2^exp2.
    let nanos = (|| -> Option<i128> {
        let mut mantissa: i128 = 0;
        for c in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(c - b'0'))?;
        }
        let scale = i64::from(exp10) - i64::try_from(frac_part.len()).ok()? + 9;
        let mut v = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
        if scale >= 0 {
            v = v.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)?;
        } else {
            let d = 10i128.checked_pow(u32::try_from(-scale).ok()?)?;
            // Kubernetes rounds up sub-nano precision.
            v = v.checked_add(d - 1)? / d;
        }
        Some(if negative { -v } else { v })
    })();
    Some(QuantityValue { nanos, approx })
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

fn validate_resources(res: &ResourceRequirements, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let check =
        |kind: &str,
         map: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
         causes: &mut Vec<Cause>| {
            let mut parsed = BTreeMap::new();
            for (name, q) in map {
                let f = format!("{field}.{kind}[{name}]");
                if !name.contains('/')
                    && !matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage")
                    && !name.starts_with("hugepages-")
                {
                    causes.push(Cause::invalid(
                        &f,
                        name,
                        "must be a standard resource for containers",
                    ));
                } else {
                    for msg in qualified_name(name) {
                        causes.push(Cause::invalid(&f, name, &msg));
                    }
                }
                match parse_quantity(&q.0) {
                    None => causes.push(Cause::invalid(&f, &q.0, QUANTITY_REGEX_ERR)),
                    Some(v) => {
                        if v.is_negative() {
                            causes.push(Cause::invalid(
                                &f,
                                &q.0,
                                "must be greater than or equal to 0",
                            ));
                        }
                        parsed.insert(name.clone(), v);
                    }
                }
            }
            parsed
        };
    let empty = BTreeMap::new();
    let limits = check("limits", res.limits.as_ref().unwrap_or(&empty), &mut causes);
    let requests_raw = res.requests.as_ref().unwrap_or(&empty);
    let requests = check("requests", requests_raw, &mut causes);
    for (name, req) in &requests {
        let Some(lim) = limits.get(name) else {
            continue;
        };
        let req_str = &requests_raw[name].0;
        let lim_str = res
            .limits
            .as_ref()
            .and_then(|l| l.get(name))
            .map(|q| q.0.as_str())
            .unwrap_or("");
        let ord = req.cmp(lim);
        if ord != std::cmp::Ordering::Equal && !is_overcommit_allowed(name) {
            causes.push(Cause::invalid(
                format!("{field}.requests"),
                req_str,
                &format!("must be equal to {name} limit of {lim_str}"),
            ));
        } else if ord == std::cmp::Ordering::Greater {
            causes.push(Cause::invalid(
                format!("{field}.requests"),
                req_str,
                &format!("must be less than or equal to {name} limit of {lim_str}"),
            ));
        }
    }
    causes
}

// ---------------------------------------------------------------------------------------------
// Pod spec
// ---------------------------------------------------------------------------------------------

/// The parts of a (regular, init or ephemeral) container that are validated.
struct ContainerView<'a> {
    name: &'a str,
    image: Option<&'a str>,
    ports: &'a [k8s_openapi::api::core::v1::ContainerPort],
    env: &'a [EnvVar],
    volume_mounts: &'a [VolumeMount],
    resources: Option<&'a ResourceRequirements>,
    image_pull_policy: Option<&'a str>,
}

impl<'a> ContainerView<'a> {
    fn from_container(c: &'a Container) -> Self {
        ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            ports: c.ports.as_deref().unwrap_or(&[]),
            env: c.env.as_deref().unwrap_or(&[]),
            volume_mounts: c.volume_mounts.as_deref().unwrap_or(&[]),
            resources: c.resources.as_ref(),
            image_pull_policy: c.image_pull_policy.as_deref(),
        }
    }

    fn from_ephemeral(c: &'a k8s_openapi::api::core::v1::EphemeralContainer) -> Self {
        ContainerView {
            name: &c.name,
            image: c.image.as_deref(),
            ports: c.ports.as_deref().unwrap_or(&[]),
            env: c.env.as_deref().unwrap_or(&[]),
            volume_mounts: c.volume_mounts.as_deref().unwrap_or(&[]),
            resources: c.resources.as_ref(),
            image_pull_policy: c.image_pull_policy.as_deref(),
        }
    }
}

fn validate_container(c: &ContainerView<'_>, path: &str, volumes: &BTreeSet<String>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name_path = format!("{path}.name");
    if c.name.is_empty() {
        causes.push(Cause::required(&name_path));
    } else {
        for msg in dns1123_label(c.name) {
            causes.push(Cause::invalid(&name_path, c.name, &msg));
        }
    }
    if c.image.unwrap_or("").is_empty() {
        causes.push(Cause::required(format!("{path}.image")));
    }
    // Ports.
    let mut port_names = BTreeSet::new();
    for (i, p) in c.ports.iter().enumerate() {
        let ip = format!("{path}.ports[{i}]");
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = port_name(n);
            if !msgs.is_empty() {
                for msg in msgs {
                    causes.push(Cause::invalid(format!("{ip}.name"), n, &msg));
                }
            } else if !port_names.insert(n) {
                causes.push(Cause::duplicate(format!("{ip}.name"), n));
            }
        }
        if p.container_port == 0 {
            causes.push(Cause::required(format!("{ip}.containerPort")));
        } else {
            for msg in port_num(i64::from(p.container_port)) {
                causes.push(Cause::invalid_raw(
                    format!("{ip}.containerPort"),
                    &p.container_port.to_string(),
                    &msg,
                ));
            }
        }
        if let Some(hp) = p.host_port
            && hp != 0
        {
            for msg in port_num(i64::from(hp)) {
                causes.push(Cause::invalid_raw(
                    format!("{ip}.hostPort"),
                    &hp.to_string(),
                    &msg,
                ));
            }
        }
        if let Some(proto) = p.protocol.as_deref() {
            if proto.is_empty() {
                causes.push(Cause::required(format!("{ip}.protocol")));
            } else if !matches!(proto, "TCP" | "UDP" | "SCTP") {
                causes.push(Cause::not_supported(
                    format!("{ip}.protocol"),
                    proto,
                    &["SCTP", "TCP", "UDP"],
                ));
            }
        }
    }
    // Env.
    for (i, e) in c.env.iter().enumerate() {
        let np = format!("{path}.env[{i}].name");
        if e.name.is_empty() {
            causes.push(Cause::required(&np));
        }
        for msg in env_var_name(&e.name) {
            causes.push(Cause::invalid(&np, &e.name, &msg));
        }
    }
    // Volume mounts.
    let mut mount_points = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mp = format!("{path}.volumeMounts[{i}]");
        if m.name.is_empty() {
            causes.push(Cause::required(format!("{mp}.name")));
        }
        if !volumes.contains(&m.name) {
            causes.push(Cause::not_found(format!("{mp}.name"), &m.name));
        }
        if m.mount_path.is_empty() {
            causes.push(Cause::required(format!("{mp}.mountPath")));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            causes.push(Cause::invalid(
                format!("{mp}.mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
    }
    // Image pull policy.
    if let Some(pp) = c.image_pull_policy {
        if pp.is_empty() {
            causes.push(Cause::required(format!("{path}.imagePullPolicy")));
        } else if !matches!(pp, "Always" | "IfNotPresent" | "Never") {
            causes.push(Cause::not_supported(
                format!("{path}.imagePullPolicy"),
                pp,
                &["Always", "IfNotPresent", "Never"],
            ));
        }
    }
    if let Some(res) = c.resources {
        causes.extend(validate_resources(res, &format!("{path}.resources")));
    }
    causes
}

/// Validates a pod spec like Kubernetes' `ValidatePodSpec` (common checks). `field` is the path
/// of the spec, e.g. `spec` for a Pod or `spec.template.spec` for a workload.
pub fn validate_pod_spec(spec: &PodSpec, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();

    // Volumes.
    let mut volume_names = BTreeSet::new();
    for (i, v) in spec.volumes.as_deref().unwrap_or(&[]).iter().enumerate() {
        let ip = format!("{field}.volumes[{i}]");
        let np = format!("{ip}.name");
        let mut el = Vec::new();
        if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(v) {
            let sources: Vec<&String> = m.keys().filter(|k| k.as_str() != "name").collect();
            for extra in sources.iter().skip(1) {
                el.push(Cause::forbidden(
                    format!("{ip}.{extra}"),
                    "may not specify more than 1 volume type",
                ));
            }
        }
        if v.name.is_empty() {
            el.push(Cause::required(&np));
        } else {
            for msg in dns1123_label(&v.name) {
                el.push(Cause::invalid(&np, &v.name, &msg));
            }
        }
        if volume_names.contains(&v.name) {
            el.push(Cause::duplicate(&np, &v.name));
        }
        if el.is_empty() {
            volume_names.insert(v.name.clone());
        } else {
            causes.extend(el);
        }
    }

    // Containers.
    let cpath = format!("{field}.containers");
    if spec.containers.is_empty() {
        causes.push(Cause::required(&cpath));
    }
    let mut all_names: BTreeSet<&str> = BTreeSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let p = format!("{cpath}[{i}]");
        causes.extend(validate_container(
            &ContainerView::from_container(c),
            &p,
            &volume_names,
        ));
        if !all_names.insert(&c.name) {
            causes.push(Cause::duplicate(format!("{p}.name"), &c.name));
        }
    }
    for (i, c) in spec
        .init_containers
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let p = format!("{field}.initContainers[{i}]");
        causes.extend(validate_container(
            &ContainerView::from_container(c),
            &p,
            &volume_names,
        ));
        if !all_names.insert(&c.name) {
            causes.push(Cause::duplicate(format!("{p}.name"), &c.name));
        }
    }
    for (i, c) in spec
        .ephemeral_containers
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let p = format!("{field}.ephemeralContainers[{i}]");
        causes.extend(validate_container(
            &ContainerView::from_ephemeral(c),
            &p,
            &volume_names,
        ));
        if !all_names.insert(&c.name) {
            causes.push(Cause::duplicate(format!("{p}.name"), &c.name));
        }
    }

    if let Some(rp) = spec.restart_policy.as_deref() {
        let f = format!("{field}.restartPolicy");
        if rp.is_empty() {
            causes.push(Cause::required(f));
        } else if !matches!(rp, "Always" | "OnFailure" | "Never") {
            causes.push(Cause::not_supported(
                f,
                rp,
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
    if let Some(dp) = spec.dns_policy.as_deref() {
        let f = format!("{field}.dnsPolicy");
        if dp.is_empty() {
            causes.push(Cause::required(f));
        } else if !matches!(
            dp,
            "ClusterFirst" | "ClusterFirstWithHostNet" | "Default" | "None"
        ) {
            causes.push(Cause::not_supported(
                f,
                dp,
                &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
            ));
        }
    }
    if let Some(ns) = &spec.node_selector {
        causes.extend(validate_labels(ns, &format!("{field}.nodeSelector")));
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        for msg in dns1123_subdomain(sa) {
            causes.push(Cause::invalid(
                format!("{field}.serviceAccountName"),
                sa,
                &msg,
            ));
        }
    }
    if let Some(nn) = spec.node_name.as_deref().filter(|s| !s.is_empty()) {
        for msg in dns1123_subdomain(nn) {
            causes.push(Cause::invalid(format!("{field}.nodeName"), nn, &msg));
        }
    }
    if let Some(ads) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        causes.push(Cause::invalid_raw(
            format!("{field}.activeDeadlineSeconds"),
            &ads.to_string(),
            &inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for (key, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|s| !s.is_empty()) {
            for msg in dns1123_label(v) {
                causes.push(Cause::invalid(format!("{field}.{key}"), v, &msg));
            }
        }
    }
    if let Some(g) = spec.termination_grace_period_seconds
        && g < 0
    {
        causes.push(Cause::invalid_raw(
            format!("{field}.terminationGracePeriodSeconds"),
            &g.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_values() {
        assert_eq!(quantity_milli_value("250m"), Some(250));
        assert_eq!(quantity_milli_value("2"), Some(2000));
        assert_eq!(quantity_milli_value("1.5"), Some(1500));
        assert_eq!(quantity_milli_value("1n"), Some(1));
        assert_eq!(quantity_value("1Ki"), Some(1024));
        assert_eq!(quantity_value("256Gi"), Some(256 << 30));
        assert_eq!(quantity_value("100m"), Some(1));
        assert_eq!(quantity_value("1e3"), Some(1000));
        assert_eq!(quantity_value("lots"), None);
    }
    use k8s_openapi::api::core::v1::{ContainerPort, EnvVar, Volume};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn subdomain() {
        assert!(dns1123_subdomain("example.com").is_empty());
        assert!(dns1123_subdomain("a").is_empty());
        assert!(dns1123_subdomain("1-2.x-y").is_empty());
        assert_eq!(dns1123_subdomain("Foo"), vec![SUBDOMAIN_MSG.to_string()]);
        assert_eq!(dns1123_subdomain(""), vec![SUBDOMAIN_MSG.to_string()]);
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(!dns1123_subdomain("-a").is_empty());
        assert!(!dns1123_subdomain("a-").is_empty());
        assert!(!dns1123_subdomain("a.").is_empty());
        let long = "a".repeat(254);
        assert_eq!(
            dns1123_subdomain(&long),
            vec!["must be no more than 253 characters".to_string()]
        );
        assert!(dns1123_subdomain(&"a".repeat(253)).is_empty());
    }

    #[test]
    fn label() {
        assert!(dns1123_label("my-name").is_empty());
        assert!(dns1123_label("123-abc").is_empty());
        assert_eq!(
            dns1123_label("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(
            dns1123_label("My_Name"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()]
        );
        assert_eq!(
            dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn qualified() {
        for ok in [
            "app",
            "app.kubernetes.io/name",
            "a",
            "A_b.c-D",
            "example.com/MyName",
            "1",
        ] {
            assert!(qualified_name(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            qualified_name("a b"),
            vec!["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string()]
        );
        assert_eq!(
            qualified_name("/a"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(qualified_name("a/").len(), 2);
        assert_eq!(qualified_name("a/b/c").len(), 1);
        assert!(qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert_eq!(
            qualified_name("Foo.com/x"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(
            qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn label_values() {
        assert!(label_value("").is_empty());
        assert!(label_value("my_value").is_empty());
        assert!(label_value("12345").is_empty());
        assert_eq!(
            label_value("-x"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string()]
        );
        assert_eq!(label_value(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn env_names() {
        assert!(env_var_name("MY_VAR").is_empty());
        assert!(env_var_name("my.env-name").is_empty());
        assert_eq!(env_var_name("1A").len(), 1);
        assert_eq!(env_var_name(".."), vec!["must not be '..'".to_string()]);
        assert_eq!(env_var_name("A=B").len(), 1);
    }

    #[test]
    fn cause_messages() {
        let c = Cause::invalid("metadata.name", "Foo", SUBDOMAIN_MSG);
        assert_eq!(c.reason, "FieldValueInvalid");
        assert_eq!(
            c.message,
            format!("Invalid value: \"Foo\": {SUBDOMAIN_MSG}")
        );
        assert_eq!(
            c.full_message(),
            format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}")
        );
        let c = Cause::required("spec.containers");
        assert_eq!(c.full_message(), "spec.containers: Required value");
        let c = Cause::not_supported("spec.restartPolicy", "x", &["a", "b"]);
        assert_eq!(
            c.message,
            "Unsupported value: \"x\": supported values: \"a\", \"b\""
        );
        assert_eq!(c.reason, "FieldValueNotSupported");
        let c = Cause::duplicate("spec.containers[1].name", "a");
        assert_eq!(c.message, "Duplicate value: \"a\"");
        assert_eq!(c.reason, "FieldValueDuplicate");
        assert_eq!(
            Cause::invalid("f", "a\"b", "x").message,
            "Invalid value: \"a\\\"b\": x"
        );
        let json = serde_json::to_value(Cause::required("f")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"reason":"FieldValueRequired","message":"Required value","field":"f"})
        );
    }

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some("default".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn object_meta() {
        assert!(validate_object_meta(&meta("ok"), true, dns1123_subdomain).is_empty());
        let c = validate_object_meta(&meta(""), true, dns1123_subdomain);
        assert_eq!(
            c[0].full_message(),
            "metadata.name: Required value: name or generateName is required"
        );
        let c = validate_object_meta(&meta("Foo"), true, dns1123_subdomain);
        assert_eq!(
            c[0].full_message(),
            format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}")
        );
        let mut m = meta("");
        m.generate_name = Some("web-".into());
        assert!(validate_object_meta(&m, true, dns1123_subdomain).is_empty());
        let mut m = meta("x");
        m.namespace = None;
        let c = validate_object_meta(&m, true, dns1123_subdomain);
        assert_eq!(c[0].full_message(), "metadata.namespace: Required value");
        assert!(validate_object_meta(&m, false, dns1123_subdomain).is_empty());
        let c = validate_object_meta(&meta("x"), false, dns1123_subdomain);
        assert_eq!(
            c[0].full_message(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );

        let mut m = meta("x");
        m.labels = Some(BTreeMap::from([
            ("a b".to_string(), "ok".to_string()),
            ("ok".to_string(), "-bad".to_string()),
        ]));
        m.annotations = Some(BTreeMap::from([(
            "Example.com/Key".to_string(),
            "v".into(),
        )]));
        let c = validate_object_meta(&m, true, dns1123_subdomain);
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| c.field == "metadata.labels"));
        assert!(
            c[0].message
                .starts_with("Invalid value: \"a b\": name part")
        );
        assert!(
            c[1].message
                .starts_with("Invalid value: \"-bad\": a valid label")
        );

        let mut m = meta("x");
        m.annotations = Some(BTreeMap::from([(
            "big".to_string(),
            "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT),
        )]));
        let c = validate_object_meta(&m, true, dns1123_subdomain);
        assert_eq!(
            c[0].full_message(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );

        let mut m = meta("x");
        m.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "rs".into(),
            uid: String::new(),
            ..Default::default()
        }]);
        m.finalizers = Some(vec!["example.com/ok".into(), "bad/x/y".into()]);
        let c = validate_object_meta(&m, true, dns1123_subdomain);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].full_message(),
            "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty"
        );
        assert_eq!(c[1].field, "metadata.finalizers");
    }

    fn container(name: &str, image: &str) -> Container {
        Container {
            name: name.into(),
            image: Some(image.into()),
            ..Default::default()
        }
    }

    #[test]
    fn pod_spec_ok() {
        let spec = PodSpec {
            containers: vec![Container {
                ports: Some(vec![ContainerPort {
                    container_port: 80,
                    protocol: Some("TCP".into()),
                    name: Some("http".into()),
                    ..Default::default()
                }]),
                env: Some(vec![EnvVar {
                    name: "A_B".into(),
                    value: Some("x".into()),
                    ..Default::default()
                }]),
                volume_mounts: Some(vec![VolumeMount {
                    name: "data".into(),
                    mount_path: "/data".into(),
                    ..Default::default()
                }]),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_string(), Quantity("100m".into())),
                        ("memory".to_string(), Quantity("1Gi".into())),
                    ])),
                    limits: Some(BTreeMap::from([
                        ("cpu".to_string(), Quantity("0.5".into())),
                        ("memory".to_string(), Quantity("1073741824".into())),
                    ])),
                    ..Default::default()
                }),
                ..container("nginx", "nginx:1.27")
            }],
            volumes: Some(vec![Volume {
                name: "data".into(),
                empty_dir: Some(Default::default()),
                ..Default::default()
            }]),
            restart_policy: Some("Always".into()),
            dns_policy: Some("ClusterFirst".into()),
            termination_grace_period_seconds: Some(30),
            ..Default::default()
        };
        assert_eq!(validate_pod_spec(&spec, "spec"), vec![]);
    }

    #[test]
    fn pod_spec_errors() {
        let spec = PodSpec::default();
        let c = validate_pod_spec(&spec, "spec");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].full_message(), "spec.containers: Required value");

        let spec = PodSpec {
            containers: vec![
                container("a", ""),
                Container {
                    ports: Some(vec![
                        ContainerPort {
                            container_port: 70000,
                            host_port: Some(-1),
                            protocol: Some("HTTP".into()),
                            ..Default::default()
                        },
                        ContainerPort::default(),
                    ]),
                    env: Some(vec![EnvVar {
                        name: "1x".into(),
                        ..Default::default()
                    }]),
                    volume_mounts: Some(vec![VolumeMount {
                        name: "missing".into(),
                        mount_path: "/x".into(),
                        ..Default::default()
                    }]),
                    ..container("a", "img")
                },
            ],
            init_containers: Some(vec![container("Bad_Name", "img")]),
            restart_policy: Some("Sometimes".into()),
            dns_policy: Some("Weird".into()),
            termination_grace_period_seconds: Some(-1),
            ..Default::default()
        };
        let msgs: Vec<String> = validate_pod_spec(&spec, "spec.template.spec")
            .iter()
            .map(Cause::full_message)
            .collect();
        let expect = [
            "spec.template.spec.containers[0].image: Required value",
            "spec.template.spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.template.spec.containers[1].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
            "spec.template.spec.containers[1].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.template.spec.containers[1].ports[1].containerPort: Required value",
            "spec.template.spec.containers[1].env[0].name: Invalid value: \"1x\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
            "spec.template.spec.containers[1].volumeMounts[0].name: Not found: \"missing\"",
            "spec.template.spec.containers[1].name: Duplicate value: \"a\"",
            "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.template.spec.dnsPolicy: Unsupported value: \"Weird\": supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\"",
            "spec.template.spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0",
        ];
        for e in expect {
            assert!(msgs.iter().any(|m| m == e), "missing {e}\n{msgs:#?}");
        }
        assert!(msgs.iter().any(|m| m.starts_with(
            "spec.template.spec.initContainers[0].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label"
        )));
    }

    #[test]
    fn pod_spec_volumes_and_resources() {
        let spec = PodSpec {
            containers: vec![Container {
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_string(), Quantity("2".into())),
                        ("memory".to_string(), Quantity("-1Mi".into())),
                        ("bogus".to_string(), Quantity("1".into())),
                        ("example.com/gpu".to_string(), Quantity("1".into())),
                    ])),
                    limits: Some(BTreeMap::from([
                        ("cpu".to_string(), Quantity("1".into())),
                        ("example.com/gpu".to_string(), Quantity("2".into())),
                        ("memory".to_string(), Quantity("1x".into())),
                    ])),
                    ..Default::default()
                }),
                ..container("c", "img")
            }],
            volumes: Some(vec![
                Volume {
                    name: "v".into(),
                    ..Default::default()
                },
                Volume {
                    name: "v".into(),
                    ..Default::default()
                },
                Volume {
                    name: "V".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let msgs: Vec<String> = validate_pod_spec(&spec, "spec")
            .iter()
            .map(Cause::full_message)
            .collect();
        let expect = [
            "spec.volumes[1].name: Duplicate value: \"v\"",
            "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Mi\": must be greater than or equal to 0",
            "spec.containers[0].resources.requests[bogus]: Invalid value: \"bogus\": must be a standard resource for containers",
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            "spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2",
            "spec.containers[0].resources.limits[memory]: Invalid value: \"1x\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ];
        for e in expect {
            assert!(msgs.iter().any(|m| m == e), "missing {e}\n{msgs:#?}");
        }
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("spec.volumes[2].name: Invalid value: \"V\""))
        );
    }

    #[test]
    fn quantities() {
        let q = |s: &str| parse_quantity(s).unwrap();
        assert_eq!(q("1Gi").cmp(&q("1073741824")), std::cmp::Ordering::Equal);
        assert_eq!(q("500m").cmp(&q("0.5")), std::cmp::Ordering::Equal);
        assert_eq!(q("1k").cmp(&q("1e3")), std::cmp::Ordering::Equal);
        assert_eq!(q("1.5").cmp(&q("1")), std::cmp::Ordering::Greater);
        assert!(q("-1").is_negative());
        assert!(parse_quantity("").is_none());
        assert!(parse_quantity("1.2.3").is_none());
        assert!(parse_quantity("abc").is_none());
        assert!(parse_quantity("1Zi").is_none());
        assert!(parse_quantity("99999999999999999999999999999999Ei").is_some());
        assert!(parse_quantity("1e2147483647").is_some());
        assert!(parse_quantity("1e-2147483648").is_some());
        assert!(parse_quantity("1e99999999999").is_none());
    }
}
