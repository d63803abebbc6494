//! Kubernetes label and field selectors (`k8s.io/apimachinery/pkg/labels` and `.../fields`).

use std::collections::BTreeMap;
use std::fmt;

use crate::validation;

/// An error parsing or building a selector; messages follow Kubernetes.
#[derive(Debug, thiserror::Error)]
pub enum SelectorError {
    /// A label selector requirement could not be parsed.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// An unexpected token in a label selector.
    #[error("found '{found}', expected: {expected}")]
    Unexpected {
        /// The literal found.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// An invalid `metav1.LabelSelector` (bad operator, key or values).
    #[error("{0}")]
    InvalidLabelSelector(String),
    /// An invalid field selector.
    #[error("{0}")]
    InvalidFieldSelector(String),
}

/// A label selector operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelOp {
    /// `k=v`
    Equals,
    /// `k==v`
    DoubleEquals,
    /// `k!=v`
    NotEquals,
    /// `k in (a,b)`
    In,
    /// `k notin (a,b)`
    NotIn,
    /// `k`
    Exists,
    /// `!k`
    DoesNotExist,
    /// `k>n`
    GreaterThan,
    /// `k<n`
    LessThan,
}

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub op: LabelOp,
    /// The values, sorted and de-duplicated.
    pub values: Vec<String>,
}

impl LabelRequirement {
    /// Builds a requirement validating key and values like Kubernetes' `NewRequirement`.
    pub fn new(key: &str, op: LabelOp, values: Vec<String>) -> Result<Self, String> {
        let mut values = values;
        values.sort();
        values.dedup();
        let mut errs: Vec<String> = Vec::new();
        let key_errs = validation::qualified_name(key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "key: Invalid value: {}: {}",
                validation::go_quote(key),
                key_errs.join("; ")
            ));
        }
        let vals_display = format!("[]string{{{}}}", {
            let q: Vec<String> = values.iter().map(|v| validation::go_quote(v)).collect();
            q.join(", ")
        });
        match op {
            LabelOp::In | LabelOp::NotIn => {
                if values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {vals_display}: for 'in', 'notin' operators, values set can't be empty"
                    ));
                }
            }
            LabelOp::Equals | LabelOp::DoubleEquals | LabelOp::NotEquals => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {vals_display}: exact-match compatibility requires one single value"
                    ));
                }
            }
            LabelOp::Exists | LabelOp::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {vals_display}: values set must be empty for exists and does not exist"
                    ));
                }
            }
            LabelOp::GreaterThan | LabelOp::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {vals_display}: for 'Gt', 'Lt' operators, exactly one value is required"
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            validation::go_quote(v)
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let verrs = validation::label_value(v);
            if !verrs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    validation::go_quote(v),
                    verrs.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => Ok(LabelRequirement {
                key: key.to_string(),
                op,
                values,
            }),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Whether the requirement matches, given a label lookup.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        let value = get(&self.key);
        match self.op {
            LabelOp::In | LabelOp::Equals | LabelOp::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            LabelOp::NotIn | LabelOp::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            LabelOp::Exists => value.is_some(),
            LabelOp::DoesNotExist => value.is_none(),
            LabelOp::GreaterThan | LabelOp::LessThan => {
                let Some(Ok(lv)) = value.map(|v| v.parse::<i64>()) else {
                    return false;
                };
                let [rv] = self.values.as_slice() else {
                    return false;
                };
                let Ok(rv) = rv.parse::<i64>() else {
                    return false;
                };
                if self.op == LabelOp::GreaterThan {
                    lv > rv
                } else {
                    lv < rv
                }
            }
        }
    }
}

impl fmt::Display for LabelRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == LabelOp::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.op {
            LabelOp::Equals => "=",
            LabelOp::DoubleEquals => "==",
            LabelOp::NotEquals => "!=",
            LabelOp::In => " in ",
            LabelOp::NotIn => " notin ",
            LabelOp::GreaterThan => ">",
            LabelOp::LessThan => "<",
            LabelOp::Exists | LabelOp::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.op, LabelOp::In | LabelOp::NotIn);
        if set {
            f.write_str("(")?;
        }
        f.write_str(&self.values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: a conjunction of requirements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
    nothing: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Error,
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Vec<(Tok, String)> {
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < chars.len() && is_whitespace(chars[pos]) {
            pos += 1;
        }
        if pos >= chars.len() {
            out.push((Tok::End, String::new()));
            return out;
        }
        if is_special(chars[pos]) {
            let mut buffer = String::new();
            let mut last: Option<(Tok, String)> = None;
            while pos < chars.len() && is_special(chars[pos]) {
                buffer.push(chars[pos]);
                if let Some(t) = keyword(&buffer) {
                    last = Some((t, buffer.clone()));
                    pos += 1;
                } else if last.is_some() {
                    break;
                } else {
                    pos += 1;
                }
            }
            match last {
                Some(item) => out.push(item),
                None => {
                    out.push((
                        Tok::Error,
                        format!("error expected: keyword found '{buffer}'"),
                    ));
                }
            }
        } else {
            let mut buffer = String::new();
            while pos < chars.len() && !is_special(chars[pos]) && !is_whitespace(chars[pos]) {
                buffer.push(chars[pos]);
                pos += 1;
            }
            match keyword(&buffer) {
                Some(t) => out.push((t, buffer)),
                None => out.push((Tok::Identifier, buffer)),
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

impl Parser {
    fn item(&self, i: usize, ctx: Ctx) -> (Tok, String) {
        let (t, l) = self
            .items
            .get(i)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        let t = match (ctx, t) {
            (Ctx::Values, Tok::In | Tok::NotIn) => Tok::Identifier,
            (_, t) => t,
        };
        (t, l)
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.item(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.item(self.pos, ctx);
        if self.pos < self.items.len() {
            self.pos += 1;
        }
        r
    }

    fn unexpected(found: &str, expected: &str) -> String {
        format!("found '{found}', expected: {expected}")
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, SelectorError> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(SelectorError::Requirement)?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(SelectorError::Unexpected {
                                    found: l2,
                                    expected: "identifier after ','".into(),
                                });
                            }
                        }
                        _ => {
                            return Err(SelectorError::Unexpected {
                                found: l,
                                expected: "',' or 'end of string'".into(),
                            });
                        }
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(SelectorError::Unexpected {
                        found: lit,
                        expected: "!, identifier, or 'end of string'".into(),
                    });
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<LabelRequirement, String> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op) = op {
            return LabelRequirement::new(&key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            LabelOp::In | LabelOp::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        LabelRequirement::new(&key, op, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<LabelOp>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(LabelOp::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(Self::unexpected(&lit, "identifier"));
        }
        let errs = validation::qualified_name(&lit);
        if !errs.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                validation::go_quote(&lit),
                errs.join("; ")
            ));
        }
        let (t, _) = self.lookahead(Ctx::Values);
        if (t == Tok::End || t == Tok::Comma) && op.is_none() {
            op = Some(LabelOp::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<LabelOp, String> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => LabelOp::In,
            Tok::Equals => LabelOp::Equals,
            Tok::DoubleEquals => LabelOp::DoubleEquals,
            Tok::GreaterThan => LabelOp::GreaterThan,
            Tok::LessThan => LabelOp::LessThan,
            Tok::NotIn => LabelOp::NotIn,
            Tok::NotEquals => LabelOp::NotEquals,
            _ => {
                return Err(Self::unexpected(&lit, "in, notin, =, ==, !=, gt, lt"));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(Self::unexpected(&lit, "')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(Self::unexpected(&lit, "',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    s.push(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => return Err(Self::unexpected(&l2, "',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.push(String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        s.push(String::new());
                        return Ok(s);
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        s.push(String::new());
                    }
                }
                _ => return Err(Self::unexpected(&lit, "',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::End || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            Ok(vec![lit])
        } else {
            Err(Self::unexpected(&lit, "identifier"))
        }
    }
}

impl LabelSelector {
    /// Parses the Kubernetes label selector syntax; the empty string selects everything.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut p = Parser {
            items: lex(s),
            pos: 0,
        };
        let mut requirements = p.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A selector that matches every object.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// A selector that matches no object (a nil `metav1.LabelSelector`).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// An equality selector from a map (as used by ReplicationController and Service selectors).
    pub fn from_map(map: &BTreeMap<String, String>) -> LabelSelector {
        LabelSelector {
            requirements: map
                .iter()
                .map(|(k, v)| LabelRequirement {
                    key: k.clone(),
                    op: LabelOp::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    /// Converts a `metav1.LabelSelector` (matchLabels + matchExpressions); an empty one selects
    /// everything.
    pub fn from_label_selector(
        sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            requirements.push(
                LabelRequirement::new(k, LabelOp::Equals, vec![v.clone()])
                    .map_err(SelectorError::InvalidLabelSelector)?,
            );
        }
        for expr in sel.match_expressions.iter().flatten() {
            let op = match expr.operator.as_str() {
                "In" => LabelOp::In,
                "NotIn" => LabelOp::NotIn,
                "Exists" => LabelOp::Exists,
                "DoesNotExist" => LabelOp::DoesNotExist,
                other => {
                    return Err(SelectorError::InvalidLabelSelector(format!(
                        "{} is not a valid label selector operator",
                        validation::go_quote(other)
                    )));
                }
            };
            requirements.push(
                LabelRequirement::new(&expr.key, op, expr.values.clone().unwrap_or_default())
                    .map_err(SelectorError::InvalidLabelSelector)?,
            );
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[LabelRequirement] {
        &self.requirements
    }

    /// Whether the selector has no requirements (selects everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing
            && self
                .requirements
                .iter()
                .all(|r| r.matches_with(|k| labels.get(k).map(String::as_str)))
    }

    /// Like [`LabelSelector::matches`], for a JSON labels object (non-string values are ignored,
    /// `None` means no labels).
    pub fn matches_json(
        &self,
        labels: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> bool {
        !self.nothing
            && self
                .requirements
                .iter()
                .all(|r| r.matches_with(|k| labels.and_then(|l| l.get(k)).and_then(|v| v.as_str())))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// A field selector operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOp {
    /// `f=v` or `f==v`
    Equals,
    /// `f!=v`
    NotEquals,
}

/// One requirement of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The operator.
    pub op: FieldOp,
    /// The (unescaped) value.
    pub value: String,
}

/// A parsed field selector: a conjunction of requirements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, fop) in [
            ("!=", FieldOp::NotEquals),
            ("==", FieldOp::Equals),
            ("=", FieldOp::Equals),
        ] {
            if rest.starts_with(op) {
                return Some((&term[..i], fop, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_field_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(SelectorError::InvalidFieldSelector(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    )));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError::InvalidFieldSelector(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidFieldSelector(
            "invalid field selector: invalid escape sequence: \\".into(),
        ));
    }
    Ok(out)
}

fn escape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl FieldSelector {
    /// Parses `f=v`, `f==v`, `f!=v` terms joined by commas (`\,`, `\=`, `\\` escape values).
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut requirements = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::InvalidFieldSelector(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            requirements.push(FieldRequirement {
                field: lhs.to_string(),
                op,
                value: unescape_field_value(rhs)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The requirements (sorted by their textual form).
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object matches; `get(field)` returns its value for a field (`None` = "").
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = get(&r.field).unwrap_or_default();
            match r.op {
                FieldOp::Equals => v == r.value,
                FieldOp::NotEquals => v != r.value,
            }
        })
    }

    /// Whether a JSON object matches, resolving fields with [`field_value`].
    pub fn matches_object(&self, object: &serde_json::Value) -> bool {
        self.matches(|f| field_value(object, f))
    }

    /// The value required by an equality requirement on `field`, if any.
    pub fn value_for(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.op == FieldOp::Equals)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.op {
                FieldOp::Equals => "=",
                FieldOp::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape_field_value(&r.value))?;
        }
        Ok(())
    }
}

/// Resolves a dotted path (`metadata.name`, `spec.nodeName`, `involvedObject.kind`) in a JSON
/// object; strings, numbers and booleans are stringified, anything else is `None`.
pub fn field_value(object: &serde_json::Value, path: &str) -> Option<String> {
    let mut cur = object;
    for seg in path.split('.') {
        cur = cur.as_object()?.get(seg)?;
    }
    match cur {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parse_and_display() {
        let cases = [
            ("", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x", "x"),
            ("!x", "!x"),
            ("  x  =  a  ", "x=a"),
            ("x=a,y!=b", "x=a,y!=b"),
            ("y=b,x=a", "x=a,y=b"),
            (
                "environment in (production, qa),tier notin (frontend)",
                "environment in (production,qa),tier notin (frontend)",
            ),
            ("x in (b,a,a)", "x in (a,b)"),
            ("x in ()", "x in ()"),
            ("x=", "x="),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            ("app!=x,app", "app!=x,app"),
            ("example.com/app=web", "example.com/app=web"),
            ("in=notin", "in=notin"),
            ("x in (in, notin)", "x in (in,notin)"),
            ("x notin (,a)", "x notin (,a)"),
        ];
        for (input, want) in cases {
            assert_eq!(sel(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("x=a,,", "found ',', expected: identifier after ','"),
            ("x==a==b", "found '==', expected: ',' or 'end of string'"),
            ("x=a,", "found '', expected: identifier after ','"),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "x in a",
                "unable to parse requirement: found 'a' expected: '('",
            ),
            (
                "x in (a",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "x a",
                "unable to parse requirement: found 'a', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "x>a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
        ];
        for (input, want) in cases {
            let err = LabelSelector::parse(input).expect_err(input).to_string();
            assert_eq!(err, want, "{input}");
        }
        let err = LabelSelector::parse("a b c=d").unwrap_err().to_string();
        assert_eq!(
            err,
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        let err = LabelSelector::parse("x/y/z=a").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "unable to parse requirement: <nil>: Invalid value: \"x/y/z\": a qualified name"
            ),
            "{err}"
        );
        let err = LabelSelector::parse("x=-a").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "unable to parse requirement: values[0][x]: Invalid value: \"-a\": a valid label"
            ),
            "{err}"
        );
        assert!(LabelSelector::parse("x=a b").is_err());
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            " ",
            ",",
            "!",
            "!!",
            "(",
            ")",
            "()",
            "a in",
            "a in (",
            "a notin ()",
            "é=ü",
            "a=b,,c",
            "a==",
            "a!=",
            "a>",
            "a<b",
            "!a=b",
            "in",
            "notin",
            "a in (b c)",
            "=",
            "a\\=b",
            "\u{0}",
            "a=b)",
            "a (",
            "a=(",
            "🙂",
        ] {
            let _ = LabelSelector::parse(s);
            let _ = FieldSelector::parse(s);
        }
        assert!(LabelSelector::parse("!a=b").is_err());
        assert!(LabelSelector::parse("in").unwrap().to_string() == "in");
    }

    #[test]
    fn matching() {
        let l = labels(&[
            ("environment", "production"),
            ("tier", "backend"),
            ("n", "5"),
        ]);
        assert!(sel("").matches(&l));
        assert!(sel("environment in (production, qa),tier notin (frontend)").matches(&l));
        assert!(!sel("environment in (qa)").matches(&l));
        assert!(sel("environment").matches(&l));
        assert!(!sel("!environment").matches(&l));
        assert!(sel("!foo").matches(&l));
        assert!(!sel("foo").matches(&l));
        assert!(sel("foo notin (a)").matches(&l));
        assert!(sel("foo!=a").matches(&l));
        assert!(!sel("foo=a").matches(&l));
        assert!(sel("tier=backend,environment==production").matches(&l));
        assert!(!sel("tier!=backend").matches(&l));
        assert!(sel("n>4").matches(&l) && !sel("n>5").matches(&l) && sel("n<6").matches(&l));
        assert!(!sel("tier>1").matches(&l));
        assert!(sel("name=httpd").matches(&labels(&[("name", "httpd")])));
        assert!(!sel("name=httpd").matches(&labels(&[("name", "nginx")])));
        let s = sel("app!=x,app");
        assert!(s.matches(&labels(&[("app", "y")])));
        assert!(!s.matches(&labels(&[("app", "x")])));
        assert!(!s.matches(&labels(&[])));
        assert!(sel("x=").matches(&labels(&[("x", "")])));
        assert!(!sel("x=").matches(&labels(&[])));
    }

    #[test]
    fn matching_json() {
        let obj = serde_json::json!({"app": "web", "n": 1});
        let m = obj.as_object();
        assert!(sel("app=web").matches_json(m));
        assert!(!sel("app=db").matches_json(m));
        assert!(!sel("n").matches_json(m));
        assert!(sel("!x").matches_json(None));
        assert!(!sel("x").matches_json(None));
        assert!(sel("").matches_json(None));
    }

    #[test]
    fn from_map_and_label_selector() {
        let s = LabelSelector::from_map(&labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(s.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
        assert!(!s.matches(&labels(&[("a", "1")])));
        assert!(LabelSelector::from_map(&BTreeMap::new()).is_empty());

        let ls = metav1::LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                metav1::LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["fe".into(), "be".into()]),
                },
                metav1::LabelSelectorRequirement {
                    key: "legacy".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        let s = LabelSelector::from_label_selector(&ls).unwrap();
        assert_eq!(s.to_string(), "app=web,!legacy,tier in (be,fe)");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("legacy", "1")])));
        assert!(
            LabelSelector::from_label_selector(&Default::default())
                .unwrap()
                .is_empty()
        );

        let bad = metav1::LabelSelector {
            match_expressions: Some(vec![metav1::LabelSelectorRequirement {
                key: "a".into(),
                operator: "Bogus".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert_eq!(
            LabelSelector::from_label_selector(&bad)
                .unwrap_err()
                .to_string(),
            "\"Bogus\" is not a valid label selector operator"
        );
        let bad = metav1::LabelSelector {
            match_expressions: Some(vec![metav1::LabelSelectorRequirement {
                key: "a".into(),
                operator: "In".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert_eq!(
            LabelSelector::from_label_selector(&bad)
                .unwrap_err()
                .to_string(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        let n = LabelSelector::nothing();
        assert!(!n.is_empty() && !n.matches(&BTreeMap::new()));
    }

    #[test]
    fn field_selectors() {
        let obj = serde_json::json!({
            "metadata": {"name": "p1", "namespace": "default"},
            "spec": {"nodeName": "n1", "replicas": 3, "x": true},
            "status": {"phase": "Running"},
            "involvedObject": {"kind": "Pod"}
        });
        assert_eq!(field_value(&obj, "metadata.name").as_deref(), Some("p1"));
        assert_eq!(field_value(&obj, "spec.replicas").as_deref(), Some("3"));
        assert_eq!(field_value(&obj, "spec.x").as_deref(), Some("true"));
        assert_eq!(
            field_value(&obj, "involvedObject.kind").as_deref(),
            Some("Pod")
        );
        assert_eq!(field_value(&obj, "spec.missing"), None);
        assert_eq!(field_value(&obj, "spec"), None);

        let fs = FieldSelector::parse("status.phase=Running,spec.nodeName!=n2").unwrap();
        assert!(fs.matches_object(&obj));
        assert_eq!(fs.to_string(), "spec.nodeName!=n2,status.phase=Running");
        assert_eq!(fs.requirements().len(), 2);
        assert_eq!(fs.value_for("status.phase"), Some("Running"));
        assert_eq!(fs.value_for("spec.nodeName"), None);
        assert!(
            !FieldSelector::parse("metadata.name==p2")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(|_| None)
        );
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert!(
            FieldSelector::parse("a=x\\,y")
                .unwrap()
                .matches(|_| Some("x,y".into()))
        );
        assert_eq!(
            FieldSelector::parse("a=x\\,y").unwrap().to_string(),
            "a=x\\,y"
        );
        assert_eq!(
            FieldSelector::parse("foo").unwrap_err().to_string(),
            "invalid selector: 'foo'; can't understand 'foo'"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse("a=\\x").unwrap_err().to_string(),
            "invalid field selector: invalid escape sequence: \\x"
        );
    }
}
