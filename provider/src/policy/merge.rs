//! Writing a resource-based or trust policy without damaging anyone else's statements (we write
//! only what we own: docs/ARCHITECTURE.md#writing-only-what-we-own). Every write reads the live
//! document first and sends ours merged into it: our statements (by Sid) are replaced, every other
//! statement is kept exactly as it is. Foreign statements are not drift, unless they defeat ours:
//! an unconditional Deny of an action we grant to a principal we grant it to, or a trust policy
//! that lets other principals assume the role.
use serde_json::Value;

use super::compare::{merge_owned, values_of};
use super::{checked, lint::PolicyKind, parse_document, render, sid_of, statements, PolicyError};

/// The document to send: `ours` (linted, as [`checked`] does) merged into the live document
/// (`None` when the object has no policy yet). A live document that cannot be read is an
/// error: we never overwrite what we cannot read, since it may hold others' grants.
pub fn merged_for_write(
    ours: &Value,
    live: Option<&str>,
    kind: PolicyKind,
) -> Result<String, PolicyError> {
    checked(ours, kind)?;
    match live.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(render(ours)),
        Some(text) => {
            let doc = parse_document(text).map_err(|e| PolicyError::Unreadable {
                kind,
                reason: e.to_string(),
            })?;
            Ok(render(&merge_owned(ours, &doc)))
        }
    }
}

/// Like [`merged_for_write`], for a document in which every Sid of `owned` is ours whether or
/// not `ours` has it now: a statement with such a Sid that `ours` no longer carries (an auto
/// remediation switched off) is dropped; every statement of someone else stays.
pub fn merged_retiring(
    ours: &Value,
    live: Option<&str>,
    kind: PolicyKind,
    owned: &[&str],
) -> Result<String, PolicyError> {
    let merged = merged_for_write(ours, live, kind)?;
    let Some(retired) = retired_sids(ours, owned) else {
        return Ok(merged);
    };
    let mut doc = parse_document(&merged).map_err(|e| PolicyError::Unreadable {
        kind,
        reason: e.to_string(),
    })?;
    if let Some(Value::Array(list)) = doc.get_mut("Statement") {
        list.retain(|s| sid_of(s).is_none_or(|sid| !retired.contains(&sid)));
    }
    Ok(render(&doc))
}

/// The statements of the live document that carry a Sid of `owned` that `ours` no longer has,
/// in words ("`what` statement "Sid": present, though not wanted"): drift beside
/// [`super::drift`], which only looks at the statements `ours` has.
pub fn retired_present(what: &str, ours: &Value, live: &str, owned: &[&str]) -> Vec<String> {
    let (Some(retired), Ok(doc)) = (retired_sids(ours, owned), parse_document(live)) else {
        return Vec::new();
    };
    statements(&doc)
        .into_iter()
        .filter_map(sid_of)
        .filter(|sid| retired.contains(sid))
        .map(|sid| format!("{what} statement {sid:?}: present, though not wanted"))
        .collect()
}

/// The Sids of `owned` that `ours` does not carry, if any.
fn retired_sids<'a>(ours: &Value, owned: &[&'a str]) -> Option<Vec<&'a str>> {
    let current: Vec<&str> = statements(ours).into_iter().filter_map(sid_of).collect();
    let retired: Vec<&str> = owned
        .iter()
        .copied()
        .filter(|sid| !current.contains(sid))
        .collect();
    (!retired.is_empty()).then_some(retired)
}

/// The live document without our statements, for a delete or a rename that retires them:
/// `None` when nothing foreign remains (then the policy itself can go).
pub fn without_ours(ours: &Value, live: &str) -> Result<Option<String>, PolicyError> {
    let doc = parse_document(live)?;
    let our_sids: Vec<&str> = statements(ours).into_iter().filter_map(sid_of).collect();
    let theirs: Vec<Value> = statements(&doc)
        .into_iter()
        .filter(|s| sid_of(s).is_none_or(|sid| !our_sids.contains(&sid)))
        .cloned()
        .collect();
    if theirs.is_empty() {
        return Ok(None);
    }
    let mut out = doc.clone();
    if let Value::Object(m) = &mut out {
        m.insert("Statement".into(), Value::Array(theirs));
    }
    Ok(Some(render(&out)))
}

/// Foreign statements of the live document that defeat ours, in words naming each (by Sid, or
/// position): an unconditional Deny whose principals and actions overlap a grant of ours, or
/// (in a trust policy) an Allow that lets a principal we do not trust assume the role.
/// Statements that only add are not reported. Conditional Denies (say, an SSL-only rule)
/// are not reported either: whether they apply depends on the request.
pub fn foreign_defeats(what: &str, ours: &Value, live: &str, kind: PolicyKind) -> Vec<String> {
    let Ok(doc) = parse_document(live) else {
        return Vec::new();
    };
    let our_statements = statements(ours);
    let our_sids: Vec<&str> = our_statements.iter().filter_map(|s| sid_of(s)).collect();
    let mut out = Vec::new();
    for (i, theirs) in statements(&doc).into_iter().enumerate() {
        if sid_of(theirs).is_some_and(|sid| our_sids.contains(&sid)) {
            continue;
        }
        let name = sid_of(theirs)
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|| format!("#{}", i + 1));
        let effect = theirs.get("Effect").and_then(Value::as_str).unwrap_or("");
        let conditional = theirs.get("Condition").is_some_and(|c| !c.is_null());
        if effect == "Deny" && !conditional {
            let defeated: Vec<&str> = our_statements
                .iter()
                .filter(|o| o.get("Effect").and_then(Value::as_str) == Some("Allow"))
                .filter(|o| overlaps(o, theirs))
                .filter_map(|o| sid_of(o))
                .collect();
            if !defeated.is_empty() {
                out.push(format!(
                    "{what}: another party's statement {name} denies what ours grant ({})",
                    defeated.join(", ")
                ));
            }
        } else if effect == "Allow" && kind == PolicyKind::Trust && grants_assume(theirs) {
            let ours_principals: Vec<String> =
                our_statements.iter().flat_map(|s| principals(s)).collect();
            let others: Vec<String> = principals(theirs)
                .into_iter()
                .filter(|p| !ours_principals.contains(p))
                .collect();
            if !others.is_empty() {
                out.push(format!(
                    "{what}: another party's statement {name} also lets {} assume the role",
                    others.join(", ")
                ));
            }
        }
    }
    out
}

/// Whether a Deny statement covers some action and principal a grant of ours names.
fn overlaps(ours: &Value, deny: &Value) -> bool {
    let our_actions = values(ours.get("Action"));
    let denied = values(deny.get("Action"));
    let actions_hit = our_actions
        .iter()
        .any(|a| denied.iter().any(|d| wildcard(d, a)));
    let our_principals = principals(ours);
    let denied_principals = principals(deny);
    let principals_hit = denied_principals.iter().any(|d| d == "*")
        || our_principals.iter().any(|p| denied_principals.contains(p))
        || (deny.get("Principal").is_none() && deny.get("NotPrincipal").is_none());
    actions_hit && principals_hit
}

fn grants_assume(s: &Value) -> bool {
    values(s.get("Action"))
        .iter()
        .any(|a| wildcard(a, "sts:AssumeRole"))
}

/// Every principal a statement names, as `type:value` ("*" for everyone).
fn principals(s: &Value) -> Vec<String> {
    match s.get("Principal") {
        Some(Value::String(star)) if star == "*" => vec!["*".into()],
        Some(Value::Object(m)) => m
            .iter()
            .flat_map(|(kind, v)| {
                values(Some(v)).into_iter().map(move |p| {
                    if p == "*" {
                        "*".to_string()
                    } else {
                        format!("{kind}:{p}")
                    }
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn values(v: Option<&Value>) -> Vec<String> {
    v.map(values_of).unwrap_or_default()
}

/// IAM action matching: `*` and `?` wildcards, case-insensitive.
fn wildcard(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours() -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "AWSCloudTrailWrite", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": "arn:aws:s3:::logs/AWSLogs/123456789012/*"}
        ]})
    }

    const SSL_ONLY: &str = r#"{"Sid": "DenyInsecure", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::logs", "arn:aws:s3:::logs/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}"#;

    #[test]
    fn a_write_keeps_foreign_statements_and_replaces_ours() {
        let live = format!(
            r#"{{"Version":"2012-10-17","Statement":[{SSL_ONLY},{{"Sid":"AWSCloudTrailWrite","Effect":"Allow","Principal":{{"Service":"cloudtrail.amazonaws.com"}},"Action":"s3:GetObject","Resource":"*"}}]}}"#
        );
        let sent = merged_for_write(&ours(), Some(&live), PolicyKind::Bucket).expect("merged");
        let doc: Value = serde_json::from_str(&sent).expect("json");
        let sts = doc["Statement"].as_array().expect("statements");
        assert_eq!(sts.len(), 2);
        assert_eq!(sts[0], ours()["Statement"][0], "ours, as we want it");
        let ssl: Value = serde_json::from_str(SSL_ONLY).expect("json");
        assert_eq!(sts[1], ssl, "theirs, untouched");
        assert_eq!(
            merged_for_write(&ours(), None, PolicyKind::Bucket).expect("fresh"),
            render(&ours())
        );
    }

    #[test]
    fn an_unreadable_live_document_is_never_overwritten() {
        let e =
            merged_for_write(&ours(), Some("{not json"), PolicyKind::Bucket).expect_err("refused");
        assert!(e.to_string().contains("cannot be read"), "{e}");
    }

    #[test]
    fn removing_ours_keeps_theirs_or_says_nothing_is_left() {
        let live = format!(
            r#"{{"Version":"2012-10-17","Statement":[{SSL_ONLY},{}]}}"#,
            ours()["Statement"][0]
        );
        let left = without_ours(&ours(), &live)
            .expect("ok")
            .expect("theirs left");
        assert!(left.contains("DenyInsecure") && !left.contains("AWSCloudTrailWrite"));
        assert_eq!(without_ours(&ours(), &render(&ours())).expect("ok"), None);
    }

    #[test]
    fn only_foreign_statements_that_defeat_ours_are_reported() {
        let with = |extra: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{},{extra}]}}"#,
                ours()["Statement"][0]
            )
        };
        // An SSL-only deny (conditional) and an extra grant only add: not reported.
        assert!(foreign_defeats(
            "bucket policy",
            &ours(),
            &with(SSL_ONLY),
            PolicyKind::Bucket
        )
        .is_empty());
        let grant = r#"{"Sid":"Reader","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"s3:GetObject","Resource":"*"}"#;
        assert!(
            foreign_defeats("bucket policy", &ours(), &with(grant), PolicyKind::Bucket).is_empty()
        );
        // An unconditional deny of what we grant, to everyone: reported, naming both.
        let deny = r#"{"Sid":"NoWrites","Effect":"Deny","Principal":"*","Action":"s3:Put*","Resource":"*"}"#;
        let r = foreign_defeats("bucket policy", &ours(), &with(deny), PolicyKind::Bucket);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].contains("NoWrites") && r[0].contains("AWSCloudTrailWrite"),
            "{r:?}"
        );
    }

    #[test]
    fn a_widened_trust_is_reported() {
        let trust = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "ExpelAssumeRole", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::012205512454:root"},
             "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"sts:ExternalId": "org"}}}
        ]});
        let live = format!(
            r#"{{"Version":"2012-10-17","Statement":[{},{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::999999999999:root"}},"Action":"sts:AssumeRole"}}]}}"#,
            trust["Statement"][0]
        );
        let r = foreign_defeats("trust policy", &trust, &live, PolicyKind::Trust);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].contains("#2") && r[0].contains("999999999999"),
            "{r:?}"
        );
    }

    #[test]
    fn action_wildcards_match_as_iam_does() {
        assert!(wildcard("s3:Put*", "s3:PutObject"));
        assert!(wildcard("*", "kms:Decrypt"));
        assert!(wildcard("KMS:decrypt", "kms:Decrypt"));
        assert!(wildcard("kms:Generate?ataKey*", "kms:GenerateDataKey"));
        assert!(!wildcard("s3:Get*", "s3:PutObject"));
    }
}
