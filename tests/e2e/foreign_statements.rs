//! Real accounts hold other teams' statements in the policies the integration writes (an
//! SSL-only rule on the log bucket, a SIEM's grant on the key, an org-wide deny). For each of
//! the four documents (key, bucket, queue, trust policy): another party adds a statement and
//! removes one of ours; the plan names ours; apply restores ours and keeps theirs; a rename
//! and a destroy keep theirs too. A foreign statement that defeats ours is reported.
use expel_e2e::{sids, Stack, Workdir, APPLY, DESTROY, PLAN, TF_HEADER};
use serde_json::{json, Value as Json};

fn hcl(names: &str) -> String {
    format!(
        r#"{TF_HEADER}resource "expel_cloudtrail_integration" "this" {{
  name = "Acme - AWS CloudTrail"
{names}
}}
"#
    )
}

/// The live document, through tests/e2e/oob.py.
fn live(stack: &Stack, doc: &str, extra: &[&str]) -> Json {
    stack.policy_show(doc, extra)
}

/// (document, one of our Sids, a foreign statement that only adds, one that defeats ours)
fn cases() -> Vec<(&'static str, &'static str, Json, Json)> {
    vec![
        (
            "bucket",
            "AWSCloudTrailWrite",
            json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                   "Resource": ["arn:aws:s3:::expel-cloudtrail-123456789012-us-east-1",
                                "arn:aws:s3:::expel-cloudtrail-123456789012-us-east-1/*"],
                   "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
            json!({"Sid": "NoWritesAtAll", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                   "Resource": "arn:aws:s3:::expel-cloudtrail-123456789012-us-east-1/*"}),
        ),
        (
            "key",
            "Allow cloudtrail bucket to encrypt/decrypt SQS",
            json!({"Sid": "SiemDecrypt", "Effect": "Allow",
                   "Principal": {"AWS": "arn:aws:iam::123456789012:role/Siem"},
                   "Action": "kms:Decrypt", "Resource": "*"}),
            json!({"Sid": "FreezeKey", "Effect": "Deny", "Principal": "*", "Action": "kms:GenerateDataKey*",
                   "Resource": "*"}),
        ),
        (
            "queue",
            "__owner_statement",
            json!({"Sid": "SiemReads", "Effect": "Allow",
                   "Principal": {"AWS": "arn:aws:iam::123456789012:role/Siem"},
                   "Action": "sqs:ReceiveMessage",
                   "Resource": "arn:aws:sqs:us-east-1:123456789012:ExpelMasterCloudTrailNotify"}),
            json!({"Sid": "NoSends", "Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage",
                   "Resource": "arn:aws:sqs:us-east-1:123456789012:ExpelMasterCloudTrailNotify"}),
        ),
        (
            "trust",
            "ExpelAssumeRole",
            json!({"Sid": "BreakGlassDeny", "Effect": "Deny", "Principal": {"AWS": "*"},
                   "Action": "sts:AssumeRole",
                   "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"},
                                 "StringNotEquals": {"aws:PrincipalAccount": "012205512454"}}}),
            json!({"Sid": "SomeoneElse", "Effect": "Allow",
                   "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}),
        ),
    ]
}

#[test]
fn repair_restores_ours_and_keeps_theirs_in_every_document() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(""), &stack);
    w.tf_expect(APPLY, 0);
    for (doc, ours, theirs, _) in cases() {
        let add = format!("add={theirs}");
        stack.oob_with(
            "policy-foreign",
            &[&format!("doc={doc}"), &format!("drop={ours}"), &add],
        );
        let plan = w.tf_expect(PLAN, 2);
        assert!(
            plan.all().contains(ours),
            "{doc}: the plan does not name our statement {ours:?}:\n{}",
            plan.all()
        );
        w.tf_expect(APPLY, 0);
        w.tf_expect(PLAN, 0);
        let now = live(&stack, doc, &[]);
        let names = sids(&now);
        assert!(names.contains(&ours.to_string()), "{doc}: ours back: {now}");
        let kept = now["Statement"]
            .as_array()
            .is_some_and(|s| s.contains(&theirs));
        assert!(kept, "{doc}: theirs kept byte for byte in meaning: {now}");
    }
}

#[test]
fn a_foreign_statement_that_defeats_ours_is_reported() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(""), &stack);
    w.tf_expect(APPLY, 0);
    for (doc, _, _, defeats) in cases() {
        let sid = defeats["Sid"].as_str().unwrap_or_default().to_string();
        stack.oob_with(
            "policy-foreign",
            &[&format!("doc={doc}"), &format!("add={defeats}")],
        );
        let plan = w.terraform(PLAN);
        let text = plan.all();
        assert!(
            text.contains("defeats") && text.contains(&sid),
            "{doc}: {sid} not reported:\n{text}"
        );
        // Ours are intact, so there is nothing to repair: a warning, not a change.
        assert_eq!(plan.code, 0, "{doc}:\n{text}");
    }
}

#[test]
fn a_rename_and_a_destroy_keep_theirs() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(""), &stack);
    w.tf_expect(APPLY, 0);
    let (_, _, bucket_theirs, _) = cases().remove(0);
    let (_, _, key_theirs, _) = cases().remove(1);
    stack.oob_with(
        "policy-foreign",
        &["doc=bucket", &format!("add={bucket_theirs}")],
    );
    stack.oob_with("policy-foreign", &["doc=key", &format!("add={key_theirs}")]);

    // Renaming the trail and the queue rewrites the bucket and key policies: theirs stay.
    w.write(
        "main.tf",
        &hcl("  trail_name = \"ExpelTrail2\"\n  queue_name = \"ExpelQueue2\""),
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    for (doc, theirs) in [("bucket", &bucket_theirs), ("key", &key_theirs)] {
        let now = live(&stack, doc, &["trail=ExpelTrail2", "queue=ExpelQueue2"]);
        let kept = now["Statement"]
            .as_array()
            .is_some_and(|s| s.contains(theirs));
        assert!(kept, "{doc} after rename: {now}");
    }

    // Destroy keeps the bucket and the key (logs are evidence), and theirs in them; our
    // CloudTrail statements leave the bucket's policy with the trail.
    w.tf_expect(DESTROY, 0);
    for (doc, theirs) in [("bucket", &bucket_theirs), ("key", &key_theirs)] {
        let now = live(&stack, doc, &[]);
        let kept = now["Statement"]
            .as_array()
            .is_some_and(|s| s.contains(theirs));
        assert!(kept, "{doc} after destroy: {now}");
    }
    assert_eq!(
        sids(&live(&stack, "bucket", &[])),
        vec!["DenyInsecureTransport".to_string()],
        "only theirs is left in the kept bucket's policy"
    );
}

/// A live document that is not a policy at all is reported and never overwritten: it may be
/// someone's half-finished edit holding their grants.
#[test]
fn an_unreadable_live_document_is_reported_not_overwritten() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(&hcl(""), &stack);
    w.tf_expect(APPLY, 0);
    stack.oob_with("policy-foreign", &["doc=key", "raw={\"Statement\": [oops"]);
    let plan = w.tf_expect(PLAN, 2);
    assert!(
        plan.all().contains("key policy is unreadable"),
        "{}",
        plan.all()
    );
    let out = w.tf_expect(APPLY, 1);
    assert!(
        out.all().contains("cannot be read") && out.all().contains("left as it is"),
        "{}",
        out.all()
    );
    assert_eq!(
        live(&stack, "key", &[]),
        json!("{\"Statement\": [oops"),
        "the document is untouched"
    );
}
