//! Checks that a policy document is well-formed the way AWS requires. moto accepts anything
//! (docs/ARCHITECTURE.md#what-moto-does-not-do), so this is how our own documents are checked
//! before they are sent.

use std::collections::BTreeSet;

use serde_json::Value;

use super::arn::arn_problem;
use super::{render, sid_of, statements, POLICY_VERSION};

/// Which kind of document, since AWS's rules differ by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// IAM managed policy (ExpelAPIPolicy): no Principal, Resource required, Sids alphanumeric,
    /// at most 6,144 characters without whitespace.
    Identity,
    /// IAM role trust policy: Principal required, no Resource, only `sts:` actions,
    /// at most 2,048 characters without whitespace (the default quota).
    Trust,
    /// KMS key policy: Principal and Resource required, at most 32 KB.
    Key,
    /// S3 bucket policy: Principal and Resource required, at most 20 KB.
    Bucket,
    /// SQS access policy: Principal and Resource required, at most 8,192 bytes,
    /// 20 statements and 7 actions per statement.
    Queue,
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PolicyKind::Identity => "IAM policy",
            PolicyKind::Trust => "IAM role trust policy",
            PolicyKind::Key => "KMS key policy",
            PolicyKind::Bucket => "S3 bucket policy",
            PolicyKind::Queue => "SQS queue access policy",
        })
    }
}

enum SizeLimit {
    /// IAM counts characters, not counting whitespace.
    CharsWithoutWhitespace(usize),
    Bytes(usize),
}

impl PolicyKind {
    fn is_iam(self) -> bool {
        matches!(self, PolicyKind::Identity | PolicyKind::Trust)
    }

    fn size_limit(self) -> SizeLimit {
        match self {
            PolicyKind::Identity => SizeLimit::CharsWithoutWhitespace(6144),
            PolicyKind::Trust => SizeLimit::CharsWithoutWhitespace(2048),
            PolicyKind::Key => SizeLimit::Bytes(32 * 1024),
            PolicyKind::Bucket => SizeLimit::Bytes(20 * 1024),
            PolicyKind::Queue => SizeLimit::Bytes(8192),
        }
    }
}

/// Problems of an IAM identity (managed) policy; empty when AWS would accept it.
pub fn lint(doc: &Value) -> Vec<String> {
    lint_as(doc, PolicyKind::Identity)
}

/// Problems of a policy document of the given kind; empty when AWS would accept it.
pub fn lint_as(doc: &Value, kind: PolicyKind) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(top) = doc.as_object() else {
        return vec!["the policy document is not a JSON object".to_string()];
    };
    for key in top.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            problems.push(format!("unknown top-level element {key:?}"));
        }
    }
    match top.get("Version") {
        Some(Value::String(v)) if v == POLICY_VERSION => {}
        Some(other) => problems.push(format!(
            "Version is {other}; AWS requires \"{POLICY_VERSION}\""
        )),
        None => problems.push(format!(
            "Version is missing; AWS requires \"{POLICY_VERSION}\""
        )),
    }
    if top.get("Id").is_some_and(|id| !id.is_string()) {
        problems.push("Id must be a string".to_string());
    }
    match top.get("Statement") {
        None => problems.push("Statement is missing".to_string()),
        Some(Value::Array(list)) if list.is_empty() => {
            problems.push("Statement is an empty list".to_string())
        }
        Some(Value::Array(_) | Value::Object(_)) => {}
        Some(_) => problems.push("Statement must be a list or an object".to_string()),
    }
    let all = statements(doc);
    if kind == PolicyKind::Queue && all.len() > 20 {
        problems.push(format!(
            "{} statements; an SQS policy allows at most 20",
            all.len()
        ));
    }
    let mut sids = BTreeSet::new();
    for (position, statement) in all.into_iter().enumerate() {
        lint_statement(position, statement, kind, &mut sids, &mut problems);
    }
    let rendered = render(doc);
    match kind.size_limit() {
        SizeLimit::CharsWithoutWhitespace(limit) => {
            let size = rendered.chars().filter(|c| !c.is_whitespace()).count();
            if size > limit {
                problems.push(format!(
                    "the document is {size} characters without whitespace; the limit is {limit}"
                ));
            }
        }
        SizeLimit::Bytes(limit) => {
            if rendered.len() > limit {
                problems.push(format!(
                    "the document is {} bytes; the limit is {limit}",
                    rendered.len()
                ));
            }
        }
    }
    problems
}

const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn lint_statement(
    position: usize,
    statement: &Value,
    kind: PolicyKind,
    sids: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let label = match sid_of(statement) {
        Some(sid) => format!("statement {sid:?}"),
        None => format!("statement #{}", position + 1),
    };
    let mut push = |problem: String| problems.push(format!("{label}: {problem}"));
    let Some(fields) = statement.as_object() else {
        push("is not a JSON object".to_string());
        return;
    };
    for key in fields.keys() {
        if !STATEMENT_KEYS.contains(&key.as_str()) {
            push(format!("unknown element {key:?}"));
        }
    }

    match fields.get("Sid") {
        None => {}
        Some(Value::String(sid)) => {
            if kind.is_iam() && !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
                push("IAM allows only letters and digits in a Sid".to_string());
            }
            if !sid.is_empty() && !sids.insert(sid.clone()) {
                push("duplicate Sid".to_string());
            }
        }
        Some(_) => push("Sid must be a string".to_string()),
    }

    match fields.get("Effect").and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        Some(other) => push(format!("Effect is {other:?}; it must be Allow or Deny")),
        None => push("Effect is missing".to_string()),
    }

    match one_of(fields.get("Action"), fields.get("NotAction")) {
        Ok(Some(actions)) => {
            let names = string_list(actions);
            match names {
                None => push("Action must be a string or a non-empty list of strings".into()),
                Some(names) => {
                    if kind == PolicyKind::Queue && names.len() > 7 {
                        push("an SQS policy allows at most 7 actions per statement".into());
                    }
                    for name in names {
                        if let Some(problem) = action_problem(name) {
                            push(problem);
                        } else if kind == PolicyKind::Trust
                            && !name.to_ascii_lowercase().starts_with("sts:")
                        {
                            push(format!(
                                "a trust policy allows only sts: actions, not {name:?}"
                            ));
                        }
                    }
                }
            }
        }
        Ok(None) => push("Action (or NotAction) is missing".to_string()),
        Err(()) => push("has both Action and NotAction".to_string()),
    }

    match one_of(fields.get("Resource"), fields.get("NotResource")) {
        Ok(Some(_)) if kind == PolicyKind::Trust => {
            push("a trust policy must not name a Resource".to_string())
        }
        Ok(Some(resources)) => match string_list(resources) {
            None => push("Resource must be a string or a non-empty list of strings".into()),
            Some(list) => {
                for resource in list {
                    if resource != "*" {
                        if let Some(problem) = arn_problem(resource) {
                            push(format!("Resource {problem}"));
                        }
                    }
                }
            }
        },
        Ok(None) if kind != PolicyKind::Trust => {
            push("Resource (or NotResource) is missing".to_string())
        }
        Ok(None) => {}
        Err(()) => push("has both Resource and NotResource".to_string()),
    }

    match one_of(fields.get("Principal"), fields.get("NotPrincipal")) {
        Ok(Some(_)) if kind == PolicyKind::Identity => {
            push("an identity policy must not name a Principal".to_string())
        }
        Ok(Some(principal)) => {
            for problem in principal_problems(principal) {
                push(problem);
            }
        }
        Ok(None) if kind != PolicyKind::Identity => {
            push("Principal (or NotPrincipal) is missing; a resource policy needs one".into())
        }
        Ok(None) => {}
        Err(()) => push("has both Principal and NotPrincipal".to_string()),
    }

    if let Some(condition) = fields.get("Condition") {
        for problem in condition_problems(condition) {
            push(problem);
        }
    }
}

/// Exactly one of an element and its negated twin: Ok(Some), Ok(None) for neither, Err for both.
fn one_of<'a>(
    positive: Option<&'a Value>,
    negative: Option<&'a Value>,
) -> Result<Option<&'a Value>, ()> {
    match (positive, negative) {
        (Some(_), Some(_)) => Err(()),
        (one, None) | (None, one) => Ok(one),
    }
}

/// A string, or a non-empty list of strings.
fn string_list(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) if !items.is_empty() => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// `service:Action`, letters and digits, with a wildcard only at the end; or `*`.
fn action_problem(action: &str) -> Option<String> {
    if action == "*" {
        return None;
    }
    let Some((service, name)) = action.split_once(':') else {
        return Some(format!(
            "action {action:?} is not of the form service:Action"
        ));
    };
    if service.is_empty()
        || !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Some(format!("action {action:?} has an invalid service prefix"));
    }
    let stem = name.trim_end_matches(['*', '?']);
    if name.is_empty() {
        return Some(format!("action {action:?} names no action"));
    }
    if stem.contains(['*', '?']) {
        return Some(format!(
            "action {action:?} has a wildcard before its end; we allow wildcards only as a suffix"
        ));
    }
    if !stem.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Some(format!("action {action:?} has invalid characters"));
    }
    None
}

fn principal_problems(principal: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let types = match principal {
        Value::String(s) if s == "*" => return problems,
        Value::Object(types) if !types.is_empty() => types,
        _ => return vec!["Principal must be \"*\" or an object such as {\"AWS\": ...}".into()],
    };
    for (kind, values) in types {
        let Some(values) = string_list(values) else {
            problems.push(format!(
                "Principal {kind} must be a string or a non-empty list of strings"
            ));
            continue;
        };
        for value in values {
            let problem = match kind.as_str() {
                "AWS" => {
                    let account = value.len() == 12 && value.chars().all(|c| c.is_ascii_digit());
                    if value == "*" || account {
                        None
                    } else {
                        arn_problem(value)
                    }
                }
                "Service" => (!value.contains('.') || value.contains(char::is_whitespace))
                    .then(|| format!("{value:?} is not a service principal")),
                "Federated" | "CanonicalUser" => {
                    value.is_empty().then(|| "an empty principal".to_string())
                }
                other => Some(format!("unknown principal type {other:?}")),
            };
            if let Some(problem) = problem {
                problems.push(format!("Principal {kind}: {problem}"));
            }
        }
    }
    problems
}

fn condition_problems(condition: &Value) -> Vec<String> {
    let Some(operators) = condition.as_object() else {
        return vec!["Condition must be an object of operators".to_string()];
    };
    let mut problems = Vec::new();
    for (operator, keys) in operators {
        let Some(keys) = keys.as_object().filter(|keys| !keys.is_empty()) else {
            problems.push(format!(
                "Condition {operator} must be a non-empty object of keys"
            ));
            continue;
        };
        for (key, values) in keys {
            let scalars: Option<Vec<&Value>> = match values {
                Value::Array(items) if !items.is_empty() => Some(items.iter().collect()),
                Value::String(_) | Value::Bool(_) | Value::Number(_) => Some(vec![values]),
                _ => None,
            };
            let Some(scalars) = scalars else {
                problems.push(format!(
                    "Condition {operator} {key} must be a value or a non-empty list of values"
                ));
                continue;
            };
            for value in scalars {
                match value {
                    Value::String(s) if s.starts_with("arn:") => {
                        if let Some(problem) = arn_problem(s) {
                            problems.push(format!("Condition {operator} {key}: {problem}"));
                        }
                    }
                    Value::String(_) | Value::Bool(_) | Value::Number(_) => {}
                    _ => problems.push(format!(
                        "Condition {operator} {key} values must be strings, booleans or numbers"
                    )),
                }
            }
        }
    }
    problems
}
