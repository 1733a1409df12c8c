//! The AWS lifecycle under the proxy's eventual-consistency mode: for every new bucket, key,
//! role and policy, the next calls real AWS refuses while it propagates (NoSuchBucket, KMS
//! NotFoundException, KmsKeyNotFoundException on CreateTrail, IAM NoSuchEntity on attach)
//! are refused with AWS's own codes, and AssumeRole of a new role is refused for seconds.
//! Create, drift repair, rename and destroy all converge with nothing left behind; a typo'd
//! principal fails within the bounded propagation window, naming `expel_principals`.
use expel_e2e::{names, Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER, TF_REQUIRED};
use serde_json::{json, Value as Json};

fn eventual(stack: &Stack) {
    let (code, body) = stack.aws_proxy(
        "PUT",
        "/_proxy/eventual",
        Some(&json!({"enabled": true, "refusals": 2, "assume_role_seconds": 3})),
    );
    assert_eq!(code, 200, "{body}");
}

/// Refusals answered so far, per operation.
fn refused(stack: &Stack) -> Json {
    let (code, body) = stack.aws_proxy("GET", "/_proxy/eventual", None);
    assert_eq!(code, 200, "{body}");
    body["refused"].clone()
}

fn cloudtrail_hcl(names: &str) -> String {
    format!(
        r#"{TF_HEADER}resource "expel_cloudtrail_integration" "this" {{
  name          = "Acme - AWS CloudTrail"
  force_destroy = true
{names}
}}
"#
    )
}

#[test]
fn cloudtrail_lifecycle_converges_while_aws_propagates() {
    let stack = Stack::local();
    eventual(&stack);
    let w = Workdir::with_hcl(&cloudtrail_hcl(""), &stack);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    // Every kind of refusal fired: the key's, the bucket's, the trail's and the role's.
    let seen = refused(&stack);
    for prefix in [
        "s3.",
        "kms.",
        "cloudtrail.CreateTrail",
        "iam.AttachRolePolicy",
    ] {
        let fired = seen.as_object().is_some_and(|m| {
            m.iter()
                .any(|(op, n)| op.starts_with(prefix) && n.as_u64() > Some(0))
        });
        assert!(fired, "no {prefix} refusal fired: {seen}");
    }

    // Drift repaired while AWS is slow to show it.
    for action in [
        "bucket-encryption-remove",
        "queue-policy-change",
        "role-trust-change",
    ] {
        stack.oob(action);
    }
    w.tf_expect(PLAN, 2);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);

    // Renames make new objects, which AWS again does not show at once.
    w.write(
        "main.tf",
        &cloudtrail_hcl(
            "  trail_name  = \"ExpelTrail2\"\n  bucket_name = \"expel-logs-renamed\"\n  kms_alias   = \"alias/Expel2\"\n  policy_name = \"ExpelAPIPolicy2\"\n  role_name   = \"ExpelServiceRole2\"",
        ),
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let l = stack.aws_listing();
    assert_eq!(names(&l["trails"]), vec!["ExpelTrail2"], "{l}");
    assert_eq!(names(&l["policies"]), vec!["ExpelAPIPolicy2"], "{l}");

    // A third-party check beside ours: the documents as they stand now pass parliament
    // (the guide's read actions on `*` are the accepted findings).
    let (clean, report) = stack.policy_audit();
    assert!(clean, "parliament findings: {}", report["unaccepted"]);
    let kinds: Vec<&str> = report["documents"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x["kind"].as_str()).collect())
        .unwrap_or_default();
    assert!(kinds.len() >= 5, "every document was audited: {report}");

    w.tf_expect(DESTROY, 0);
    let l = stack.aws_listing();
    for kind in ["trails", "queues", "policies", "aliases"] {
        assert!(names(&l[kind]).is_empty(), "{kind} left: {l}");
    }
    assert!(
        !names(&l["roles"])
            .iter()
            .any(|r| r.starts_with("ExpelServiceRole")),
        "{l}"
    );
    assert!(names(&l["buckets"]).is_empty(), "force_destroy: {l}");
}

fn member_hcl(role: &str) -> String {
    format!(
        r#"{TF_HEADER}resource "expel_aws_member_role" "this" {{
  role_name   = "{role}"
  policy_name = "{role}Policy"
}}
"#
    )
}

#[test]
fn member_role_lifecycle_converges_while_aws_propagates() {
    let stack = Stack::local();
    eventual(&stack);
    let w = Workdir::with_hcl(&member_hcl("ExpelServiceRole"), &stack);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert!(
        refused(&stack)["iam.AttachRolePolicy"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{}",
        refused(&stack)
    );
    stack.oob_with("policy-detach", &["policy=ExpelServiceRolePolicy"]);
    w.tf_expect(PLAN, 2);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    w.write("main.tf", &member_hcl("ExpelMemberRole2"));
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let l = stack.aws_listing();
    assert_eq!(names(&l["policies"]), vec!["ExpelMemberRole2Policy"], "{l}");
    w.tf_expect(DESTROY, 0);
    let l = stack.aws_listing();
    assert!(names(&l["policies"]).is_empty(), "{l}");
    assert!(
        !names(&l["roles"]).iter().any(|r| r.starts_with("Expel")),
        "{l}"
    );
}

/// IAM answers "Invalid principal" both while a new principal propagates and, for good,
/// when it does not exist: the retry is bounded by `aws.propagation_timeout`, and the error
/// says what to check.
#[test]
fn a_typo_in_a_principal_fails_within_the_propagation_window() {
    let stack = Stack::local();
    let (code, body) = stack.aws_proxy(
        "POST",
        "/_proxy/faults",
        Some(&json!({
            "service": "iam", "operation": "CreateRole", "count": -1, "kind": "status",
            "status": 400, "code": "MalformedPolicyDocument",
            "message": "Invalid principal in policy: \"AWS\":\"arn:aws:iam::012205512455:root\""
        })),
    );
    assert_eq!(code, 201, "{body}");
    let w = Workdir::with_hcl(
        &[
            TF_REQUIRED,
            r#"
provider "expel" {
  aws {
    propagation_timeout = "4s"
  }
}
resource "expel_aws_member_role" "this" {
  expel_principals = ["arn:aws:iam::012205512455:root"]
}
"#,
        ]
        .concat(),
        &stack,
    );
    let start = std::time::Instant::now();
    let out = w.tf_expect(APPLY, 1);
    let took = start.elapsed();
    let text = out.all();
    for words in [
        "Invalid principal",
        "expel_principals",
        "propagation_timeout",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{text}");
    }
    assert!(
        took < std::time::Duration::from_secs(40),
        "bounded by the 4 s window, not the 20 min timeout: {took:?}"
    );
    // It was retried meanwhile, not failed at the first answer.
    let (_, calls) = stack.aws_proxy("GET", "/_proxy/calls", None);
    assert!(
        calls["operations"]["iam.CreateRole"]
            .as_u64()
            .is_some_and(|n| n >= 2),
        "{calls}"
    );
}
