//! The policy documents of Expel's onboarding guide "AWS CloudTrail: new trail", built from
//! typed inputs, with a semantic comparison for drift detection and a linter.
//!
//! moto stores policies and evaluates none of them (docs/ARCHITECTURE.md#what-moto-does-not-do), so
//! the unit tests here check every document statement by statement against the guide, and
//! [`lint_as`] checks what AWS would reject (shape, action names, ARNs, Sids, sizes); [`checked`]
//! runs it on every document before we send it.
//!
//! Documents are `serde_json::Value`s: that is what the AWS SDK calls take (as strings, via
//! [`render`]) and return (via [`parse_document`]).

mod arn;
mod compare;
mod documents;
mod lint;
mod merge;
mod template;
#[cfg(test)]
mod tests;

pub use arn::{
    account_root_arn, arn_problem, bucket_arn, expel_principal, key_arn, parse_arn, policy_arn,
    queue_arn, role_arn, trail_arn, ArnParts,
};
pub use compare::{compare, StatementDiff};
pub use documents::{
    api_policy, bucket_policy, default_trust_principals, existing_key_statement, key_policy,
    member_api_policy, queue_policy, queue_policy_from_topic, sid, trust_policy, Remediations,
    API_POLICY_SIDS, CLOUDTRAIL_SERVICE, DEACTIVATE_ACCESS_KEYS_ACTIONS, EXPEL_ACCOUNT_ID,
    READ_ONLY_ACTIONS, S3_SERVICE,
};
pub use lint::{lint, lint_as, PolicyKind};
pub use merge::{
    foreign_defeats, merged_for_write, merged_retiring, retired_present, without_ours,
};
pub use template::{
    member_roles_template, template_documents, MemberRolesTemplate, ROLE_LOGICAL_ID,
};

use serde_json::Value;

/// The only policy language version AWS accepts for new documents.
pub const POLICY_VERSION: &str = "2012-10-17";

/// Where the documents live. `partition` comes from STS GetCallerIdentity (the ARN's second
/// field), never from a literal, so GovCloud and China work unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// "aws", "aws-us-gov", "aws-cn".
    pub partition: String,
    /// 12-digit account id of the account the trail, bucket, queue and key live in.
    pub account_id: String,
    /// Home region of the trail (where the bucket and queue are).
    pub region: String,
}

/// The names the guide asks the user to choose (Steps 1 and 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudTrailNames {
    /// Trail name; the guide recommends `GlobalCloudTrail`.
    pub trail_name: String,
    /// Log bucket name.
    pub bucket_name: String,
    /// Notification queue name; the guide uses `ExpelMasterCloudTrailNotify`.
    pub queue_name: String,
    /// AWS Organizations id (`o-...`) when the trail is an organization trail.
    pub organization_id: Option<String>,
}

/// A policy document that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy document is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("policy document is percent-encoded but does not decode to UTF-8: {0}")]
    Encoding(#[from] std::str::Utf8Error),
    #[error("policy document must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// The live document cannot be read, so ours cannot be merged into it without risking
    /// others' statements.
    #[error("the live {kind} cannot be read ({reason}); it was left as it is rather than overwritten, since it may hold others' grants. Fix or remove it by hand, then apply again")]
    Unreadable { kind: PolicyKind, reason: String },
    /// Our document breaks a rule AWS enforces: caught before it is sent.
    #[error(
        "the {kind} we would send breaks AWS's rules, so it was not sent: {}. A value from the configuration that goes into it (a name, `expel_principals`, `external_id`) is likely malformed: correct it and apply again; if the configuration is right, this is a bug in the provider, please report it",
        problems.join("; ")
    )]
    Rejected {
        kind: PolicyKind,
        /// Each names its statement (Sid, or #position) and the problem.
        problems: Vec<String>,
    },
}

/// The one way a document leaves the provider: linted as a `kind` document, then rendered
/// as we send it. A document AWS would refuse is an error naming each statement and problem,
/// so the step fails before its call instead of AWS rejecting it (or, in an emulator, not).
pub fn checked(doc: &Value, kind: PolicyKind) -> Result<String, PolicyError> {
    let problems = lint_as(doc, kind);
    if problems.is_empty() {
        Ok(render(doc))
    } else {
        Err(PolicyError::Rejected { kind, problems })
    }
}

/// Parses a policy document as AWS returns it: plain JSON (KMS, S3, SQS) or percent-encoded
/// JSON (IAM GetRole / GetPolicyVersion, from AWS and moto alike, which the Rust SDK does not
/// decode; docs/ARCHITECTURE.md#what-moto-does-not-do).
pub fn parse_document(s: &str) -> Result<Value, PolicyError> {
    let trimmed = s.trim();
    let value = match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => v,
        Err(plain) => {
            // Percent-encoded JSON never parses as JSON (it starts with "%7B"), so decoding
            // only after a failed parse cannot corrupt a plain document containing '%'.
            if !trimmed.contains('%') {
                return Err(plain.into());
            }
            let decoded = percent_encoding::percent_decode_str(trimmed).decode_utf8()?;
            serde_json::from_str::<Value>(decoded.trim())?
        }
    };
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Err(PolicyError::NotAnObject("null")),
        Value::Bool(_) => Err(PolicyError::NotAnObject("a boolean")),
        Value::Number(_) => Err(PolicyError::NotAnObject("a number")),
        Value::String(_) => Err(PolicyError::NotAnObject("a string")),
        Value::Array(_) => Err(PolicyError::NotAnObject("a list")),
    }
}

/// What differs between our document and the live one (`actual`, as AWS returns it), in
/// words, each prefixed with `what` ("key policy", "trust policy", ...). Only our statements
/// (by Sid) count; others' extra statements are not drift.
pub fn drift(what: &str, expected: &Value, actual: &str) -> Vec<String> {
    match parse_document(actual) {
        Ok(doc) => compare(expected, &doc)
            .into_iter()
            .map(|d| format!("{what} statement {:?}: {}", d.sid, d.problem))
            .collect(),
        Err(e) => vec![format!("{what} is unreadable: {e}")],
    }
}

/// Renders a document compactly, as we send it to AWS (compact keeps it far from the size
/// limits, which count characters).
pub fn render(v: &Value) -> String {
    v.to_string()
}

/// The statements of a document: `Statement` may be a list or a single object.
pub fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    }
}

/// The Sid of a statement, if it has a string one.
pub(crate) fn sid_of(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}
