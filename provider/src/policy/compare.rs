//! Semantic comparison of policy documents, for drift detection
//! (docs/ARCHITECTURE.md#rules-real-aws-and-terraform-impose).
//!
//! We compare only what we own: each statement of the expected document is looked up by Sid in
//! the live document; statements with other Sids are someone else's and never drift.
//!
//! Normalisation (what AWS or a person may rewrite without changing meaning):
//! - `Action`/`NotAction`: a set; a string is a one-element list; service prefix and action
//!   name are case-insensitive (`SQS:SendMessage` == `sqs:SendMessage`).
//! - `Resource`/`NotResource`: a set (case-sensitive, as ARNs are).
//! - `Principal`/`NotPrincipal`: type -> set; `"*"` == `{"AWS": "*"}`; a bare 12-digit account
//!   id == `arn:<p>:iam::<id>:root` (IAM rewrites the former into the latter); service
//!   principals are case-insensitive.
//! - `Condition`: operator -> key -> set of values; operators and keys case-insensitive;
//!   a string is a one-element list; booleans and numbers compare as their text.
//!
//! Statements without a Sid (only in documents we did not write) get the synthetic id
//! `#<n>`, their 1-based position in the expected document. Such a statement is satisfied by any
//! Sid-less live statement equal to it; otherwise it is compared with the Sid-less live
//! statement at the same position, and reported missing when there is none.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use super::arn::parse_arn;
use super::{render, sid_of, statements};

/// One thing wrong with one of our statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementDiff {
    /// The statement's Sid, or `#<n>` for a Sid-less expected statement.
    pub sid: String,
    /// What is wrong, in words: "missing", "Action lacks kms:Decrypt", ...
    pub problem: String,
}

impl fmt::Display for StatementDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "statement {:?}: {}", self.sid, self.problem)
    }
}

/// The drift of `actual` against `expected`, one entry per problem (empty: no drift).
pub fn compare(expected: &Value, actual: &Value) -> Vec<StatementDiff> {
    let live = statements(actual);
    let mut diffs = Vec::new();
    for (position, wanted) in statements(expected).into_iter().enumerate() {
        let (id, problems) = match sid_of(wanted) {
            Some(sid) => {
                let same_sid: Vec<&Value> = live
                    .iter()
                    .copied()
                    .filter(|s| sid_of(s) == Some(sid))
                    .collect();
                (sid.to_string(), best_match(wanted, &same_sid, None))
            }
            None => {
                let sidless: Vec<&Value> = live
                    .iter()
                    .copied()
                    .filter(|s| sid_of(s).is_none())
                    .collect();
                let same_position = live.get(position).copied().filter(|s| sid_of(s).is_none());
                (
                    format!("#{}", position + 1),
                    best_match(wanted, &sidless, Some(same_position)),
                )
            }
        };
        diffs.extend(problems.into_iter().map(|problem| StatementDiff {
            sid: id.clone(),
            problem,
        }));
    }
    diffs
}

/// No problems if any candidate equals `wanted`; otherwise the problems of the statement to
/// compare with (the first candidate, or `fallback` when given); "missing" when there is none.
fn best_match(
    wanted: &Value,
    candidates: &[&Value],
    fallback: Option<Option<&Value>>,
) -> Vec<String> {
    let mut first_problems = None;
    for candidate in candidates {
        let problems = statement_problems(wanted, candidate);
        if problems.is_empty() {
            return problems;
        }
        first_problems.get_or_insert(problems);
    }
    match fallback {
        Some(Some(at_position)) => statement_problems(wanted, at_position),
        Some(None) => vec!["missing".to_string()],
        None => first_problems.unwrap_or_else(|| vec!["missing".to_string()]),
    }
}

/// A document made of our statements (from `expected`) followed by every statement of
/// `actual` that is not ours, for repairing a live document without removing others' grants.
/// Foreign Sid-less statements are kept unless equal to one of ours.
pub fn merge_owned(expected: &Value, actual: &Value) -> Value {
    let ours = statements(expected);
    let our_sids: BTreeSet<&str> = ours.iter().filter_map(|s| sid_of(s)).collect();
    let mut merged: Vec<Value> = ours.iter().map(|s| (*s).clone()).collect();
    for theirs in statements(actual) {
        let keep = match sid_of(theirs) {
            Some(sid) => !our_sids.contains(sid),
            None => !ours
                .iter()
                .any(|s| sid_of(s).is_none() && statement_problems(s, theirs).is_empty()),
        };
        if keep {
            merged.push(theirs.clone());
        }
    }
    let mut doc = match expected {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    doc.insert("Statement".to_string(), Value::Array(merged));
    Value::Object(doc)
}

/// Everything that differs between two statements, in words.
fn statement_problems(wanted: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let effect = |s: &Value| s.get("Effect").and_then(Value::as_str).map(str::to_string);
    if let Some(want) = effect(wanted) {
        match effect(live) {
            Some(have) if have == want => {}
            Some(have) => out.push(format!("Effect is {have} instead of {want}")),
            None => out.push(format!("Effect is missing (expected {want})")),
        }
    }
    diff_list_field("Action", "NotAction", wanted, live, canon_action, &mut out);
    diff_list_field(
        "Resource",
        "NotResource",
        wanted,
        live,
        str::to_string,
        &mut out,
    );
    diff_principal(wanted, live, &mut out);
    diff_condition(wanted, live, &mut out);
    out
}

/// Text of the values of a field: a string is one value, a list its elements.
pub(super) fn values_of(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(values_of).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Null => Vec::new(),
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::Object(_) => vec![render(v)],
    }
}

/// canonical form -> the spelling to show.
type CanonSet = BTreeMap<String, String>;

fn canon_set(v: &Value, canon: impl Fn(&str) -> String) -> CanonSet {
    values_of(v)
        .into_iter()
        .map(|text| (canon(&text), text))
        .collect()
}

fn canon_action(a: &str) -> String {
    a.to_ascii_lowercase()
}

fn canon_aws_principal(p: &str) -> String {
    let is_account = |s: &str| s.len() == 12 && s.chars().all(|c| c.is_ascii_digit());
    if is_account(p) {
        return format!("account:{p}");
    }
    if let Some(arn) = parse_arn(p) {
        if arn.service == "iam" && arn.resource == "root" && is_account(arn.account) {
            return format!("account:{}", arn.account);
        }
    }
    p.to_string()
}

fn show(items: &[&String]) -> String {
    match items {
        [one] => (*one).clone(),
        many => many
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn show_set(set: &CanonSet) -> String {
    let items: Vec<&String> = set.values().collect();
    match items.as_slice() {
        [one] => (*one).clone(),
        _ => format!("[{}]", show(&items)),
    }
}

fn diff_sets(name: &str, wanted: &CanonSet, live: &CanonSet, out: &mut Vec<String>) {
    let lacks: Vec<&String> = wanted
        .iter()
        .filter(|(k, _)| !live.contains_key(*k))
        .map(|(_, shown)| shown)
        .collect();
    let extra: Vec<&String> = live
        .iter()
        .filter(|(k, _)| !wanted.contains_key(*k))
        .map(|(_, shown)| shown)
        .collect();
    if !lacks.is_empty() {
        out.push(format!("{name} lacks {}", show(&lacks)));
    }
    if !extra.is_empty() {
        out.push(format!("{name} has extra {}", show(&extra)));
    }
}

/// Compares a list-valued element that has a negated twin (Action/NotAction, ...).
fn diff_list_field(
    positive: &str,
    negative: &str,
    wanted: &Value,
    live: &Value,
    canon: fn(&str) -> String,
    out: &mut Vec<String>,
) {
    let (key, twin) = if wanted.get(positive).is_some() {
        (positive, negative)
    } else if wanted.get(negative).is_some() {
        (negative, positive)
    } else {
        for key in [positive, negative] {
            if live.get(key).is_some() {
                out.push(format!("has a {key}, expected none"));
            }
        }
        return;
    };
    match (wanted.get(key), live.get(key)) {
        (Some(want), Some(have)) => {
            diff_sets(key, &canon_set(want, canon), &canon_set(have, canon), out)
        }
        (Some(_), None) if live.get(twin).is_some() => {
            out.push(format!("uses {twin} instead of {key}"))
        }
        _ => out.push(format!("{key} is missing")),
    }
}

/// principal type (lower case) -> (type as shown, values).
type PrincipalMap = BTreeMap<String, (String, CanonSet)>;

fn principal_map(v: &Value) -> PrincipalMap {
    let mut map = PrincipalMap::new();
    match v {
        Value::Object(types) => {
            for (kind, values) in types {
                let lower = kind.to_ascii_lowercase();
                let set = match lower.as_str() {
                    "aws" => canon_set(values, canon_aws_principal),
                    "service" => canon_set(values, |s| s.to_ascii_lowercase()),
                    _ => canon_set(values, str::to_string),
                };
                map.insert(lower, (kind.clone(), set));
            }
        }
        // "*" (and, leniently, any bare string) means AWS principals.
        other => {
            map.insert(
                "aws".to_string(),
                ("AWS".to_string(), canon_set(other, canon_aws_principal)),
            );
        }
    }
    map
}

fn diff_principal(wanted: &Value, live: &Value, out: &mut Vec<String>) {
    let (key, twin) = if wanted.get("Principal").is_some() {
        ("Principal", "NotPrincipal")
    } else if wanted.get("NotPrincipal").is_some() {
        ("NotPrincipal", "Principal")
    } else {
        for key in ["Principal", "NotPrincipal"] {
            if live.get(key).is_some() {
                out.push(format!("has a {key}, expected none"));
            }
        }
        return;
    };
    let Some(want) = wanted.get(key).map(principal_map) else {
        return;
    };
    let Some(have) = live.get(key).map(principal_map) else {
        if live.get(twin).is_some() {
            out.push(format!("uses {twin} instead of {key}"));
        } else {
            out.push(format!("{key} is missing"));
        }
        return;
    };
    for (kind, (shown, want_set)) in &want {
        match have.get(kind) {
            Some((_, have_set)) => diff_sets(&format!("{key} {shown}"), want_set, have_set, out),
            None => out.push(format!(
                "{key} {shown} is missing (expected {})",
                show_set(want_set)
            )),
        }
    }
    for (kind, (shown, have_set)) in &have {
        if !want.contains_key(kind) {
            out.push(format!("{key} has extra {shown} {}", show_set(have_set)));
        }
    }
}

/// operator (lower) -> (operator as shown, key (lower) -> (key as shown, values)).
type ConditionMap = BTreeMap<String, (String, BTreeMap<String, (String, CanonSet)>)>;

fn condition_map(v: Option<&Value>) -> ConditionMap {
    let mut map = ConditionMap::new();
    let Some(Value::Object(operators)) = v else {
        return map;
    };
    for (operator, keys) in operators {
        let lower_op = operator.to_ascii_lowercase();
        // Bool and Null take "true"/"false"; AWS reads them case-insensitively.
        let base = lower_op
            .rsplit(':')
            .next()
            .unwrap_or(&lower_op)
            .trim_end_matches("ifexists");
        let fold_case = base == "bool" || base == "null";
        let mut by_key = BTreeMap::new();
        if let Value::Object(keys) = keys {
            for (key, values) in keys {
                let set = if fold_case {
                    canon_set(values, |s| s.to_ascii_lowercase())
                } else {
                    canon_set(values, str::to_string)
                };
                by_key.insert(key.to_ascii_lowercase(), (key.clone(), set));
            }
        }
        map.insert(lower_op, (operator.clone(), by_key));
    }
    map
}

fn diff_condition(wanted: &Value, live: &Value, out: &mut Vec<String>) {
    let want = condition_map(wanted.get("Condition"));
    let have = condition_map(live.get("Condition"));
    for (op, (op_shown, want_keys)) in &want {
        let have_keys = have.get(op).map(|(_, keys)| keys);
        for (key, (key_shown, want_values)) in want_keys {
            match have_keys.and_then(|keys| keys.get(key)) {
                None => out.push(format!(
                    "Condition {op_shown} {key_shown} is missing (expected {})",
                    show_set(want_values)
                )),
                Some((_, have_values)) => {
                    let same: BTreeSet<&String> = want_values.keys().collect();
                    if same != have_values.keys().collect() {
                        out.push(format!(
                            "Condition {op_shown} {key_shown} is {} instead of {}",
                            show_set(have_values),
                            show_set(want_values)
                        ));
                    }
                }
            }
        }
    }
    for (op, (op_shown, have_keys)) in &have {
        let want_keys = want.get(op).map(|(_, keys)| keys);
        for (key, (key_shown, have_values)) in have_keys {
            if want_keys.is_none_or(|keys| !keys.contains_key(key)) {
                out.push(format!(
                    "Condition has extra {op_shown} {key_shown} = {}",
                    show_set(have_values)
                ));
            }
        }
    }
}
