//! Small helpers every resource uses to read and write its state object.
use std::collections::BTreeMap;
use std::time::Duration;

use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::schema::{Attribute, Block, NestedBlock};
use tfplugin::value::Value;

/// A string attribute, empty when null or absent.
pub fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub fn bool_of(v: &Value, k: &str, default: bool) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(default)
}

/// Sets an attribute of an object value (no-op on anything else).
pub fn set(v: &mut Value, k: &str, x: Value) {
    if let Value::Object(m) = v {
        m.insert(k.to_string(), x);
    }
}

/// Whether the provider chooses the planned value of an Optional+Computed attribute: the
/// configuration leaves it null and nothing is planned for it yet (a create). A value the
/// configuration takes from another resource is unknown, not null: it stays unknown, as
/// Terraform requires (the central plan check refuses anything else).
pub fn needs_default(config: &Value, planned: &Value, k: &str) -> bool {
    config.get(k).is_none_or(Value::is_null)
        && !planned.get(k).is_some_and(|v| v.is_known() && !v.is_null())
}

/// After a create that Terraform interrupted (Ctrl-C: StopProvider): what was made is
/// returned as the state with a warning, not an error, so Terraform keeps it untainted and
/// the next apply finishes the rest in place (no needless re-creation, no new secrets for
/// pieces that exist); `terraform destroy` removes what was made. Returns whether the create
/// was interrupted.
pub fn interrupted_create(
    diags: &mut Diagnostics,
    deadline: &crate::engine::Deadline,
    errors: &[crate::engine::StepError],
) -> bool {
    if errors.is_empty() || !deadline.cancel.is_cancelled() {
        return false;
    }
    let unfinished: Vec<String> = errors.iter().map(|e| e.step.to_string()).collect();
    diags.warning(
        "Interrupted: the create stopped part-way",
        format!(
            "Terraform was interrupted, so the provider stopped after the steps in progress finished. What was made is saved in the state: the next `terraform apply` finishes the rest (it starts at: {}), and `terraform destroy` removes what was made.",
            unfinished.join("; ")
        ),
    );
    true
}

/// `expel_principals` (CloudTrail integration and member role): at least one principal when
/// set, each a 12-digit account id or an IAM ARN.
pub fn check_expel_principals(config: &Value, diags: &mut Diagnostics) {
    let Some(list) = config.get("expel_principals").and_then(Value::as_list) else {
        return;
    };
    if list.is_empty() {
        diags.attr_error(
            AttrPath::root("expel_principals"),
            "No principal",
            "`expel_principals` must name at least one principal; leave it unset for Expel's account.",
        );
    }
    for (i, p) in list.iter().enumerate() {
        if let Some(s) = p.as_str() {
            if !principal_ok(s) {
                diags.attr_error(AttrPath::root("expel_principals").index(i), "Malformed principal", format!("{s:?} is neither a 12-digit account id nor an IAM ARN such as \"arn:aws:iam::012205512454:root\"."));
            }
        }
    }
}

/// A principal a trust policy can name: a 12-digit account id or an IAM ARN.
pub fn principal_ok(s: &str) -> bool {
    (s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()))
        || crate::policy::parse_arn(s).is_some_and(|a| a.service == "iam")
}

/// A string, or null.
pub fn opt(s: Option<String>) -> Value {
    s.map(Value::string).unwrap_or(Value::Null)
}

/// Parses `30m`, `1h`, `90s`, `1h30m`, `365d`; zero, a bare number or an overflow is None.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (num.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// The `timeouts.<which>` duration of a state or plan, or `default`.
pub fn timeout(v: &Value, which: &str, default: Duration) -> Duration {
    v.get("timeouts")
        .and_then(|t| t.get(which))
        .and_then(Value::as_str)
        .and_then(parse_duration)
        .unwrap_or(default)
}

/// Says each drifted piece as a warning (`place` tells where, e.g. " (account 1234)").
pub fn warn_drift(diags: &mut Diagnostics, drift: &BTreeMap<String, String>, place: &str) {
    for (k, d) in drift {
        diags.warning(format!("Drift in {k}{place}"), d.clone());
    }
}

/// The `timeouts` block: `create`, `update` and `delete` durations, each `default` when unset.
pub fn timeouts_block(default: &str) -> NestedBlock {
    let d = format!("Default `{default}`.");
    let b = Block::new("How long each operation may take: durations such as `30m`, `1h`, `90s`; throttling and transient errors are retried until then. A malformed value is an error on `timeouts.<operation>`.")
        .attr(Attribute::string("create").description(&d).optional())
        .attr(Attribute::string("update").description(&d).optional())
        .attr(Attribute::string("delete").description(&d).optional());
    NestedBlock::single("timeouts", b)
}

/// The `auto_remediation` block of the AWS resources: which of Expel's auto remediations are
/// switched on. `description` says what switching one on does for the resource.
pub fn auto_remediation_block(description: &str) -> NestedBlock {
    let b = Block::new(description).attr(
        Attribute::bool("deactivate_access_keys")
            .required()
            .description("Deactivate Access Keys: Workbench deactivates a long-term IAM access key that Expel's SOC finds compromised. `true` switches it on (the statement `ExpelDeactivateAccessKeys` in the policy), `false` off (and removes what switching it on added)."),
    );
    NestedBlock::single("auto_remediation", b)
}

/// The auto remediations the `auto_remediation` block switches on (none without the block).
pub fn remediations_of(v: &Value) -> crate::policy::Remediations {
    let block = v.get("auto_remediation").filter(|b| !b.is_null());
    crate::policy::Remediations {
        deactivate_access_keys: block.is_some_and(|b| bool_of(b, "deactivate_access_keys", false)),
    }
}

/// Names each malformed duration of the `timeouts` block.
pub fn check_timeouts(config: &Value, diags: &mut Diagnostics) {
    let Some(t) = config.get("timeouts").filter(|t| !t.is_null()) else {
        return;
    };
    for k in ["create", "update", "delete"] {
        if let Some(s) = t.get(k).and_then(Value::as_str) {
            if parse_duration(s).is_none() {
                diags.attr_error(
                    AttrPath::root("timeouts").attr(k),
                    "Malformed duration",
                    format!("`timeouts.{k}` = {s:?} is not a duration such as \"30m\", \"1h\" or \"90s\"."),
                );
            }
        }
    }
}

/// What ValidateResourceConfig answers for `config`, as the server computes it: the
/// attribute validators of the resource's schema, then the resource's own `validate`.
#[cfg(test)]
pub fn validate_config<D>(
    resource: &dyn tfplugin::provider::Resource<D>,
    config: &Value,
) -> Diagnostics {
    let mut d = Diagnostics::default();
    tfplugin::schema::run_validators(
        &resource.schema().block,
        config,
        &AttrPath::default(),
        &mut d,
    );
    resource.validate(config, &mut d);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0m"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn principals_are_account_ids_or_iam_arns() {
        assert!(principal_ok("012205512454"));
        assert!(principal_ok("arn:aws:iam::012205512454:root"));
        assert!(principal_ok("arn:aws-us-gov:iam::012205512454:role/x"));
        assert!(!principal_ok("12345"));
        assert!(!principal_ok("arn:aws:s3:::bucket"));
    }

    #[test]
    fn an_empty_principal_list_is_refused_naming_the_attribute() {
        let mut d = Diagnostics::default();
        check_expel_principals(
            &Value::object([("expel_principals", Value::List(vec![]))]),
            &mut d,
        );
        let found: Vec<_> = d.iter().collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, Some(AttrPath::root("expel_principals")));
    }
}
