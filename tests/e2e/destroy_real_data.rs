//! Destroy against accounts where real things happened after the apply: a log bucket with
//! versioning turned on and a history of log files, log deliveries that outlast the trail,
//! a version under legal hold, and IAM objects that others attached things to. Destroy
//! removes what is ours and nothing else.
use expel_e2e::{flat, names, tf_config, Stack, Workdir, APPLY, DESTROY};
use serde_json::{json, Value};

const BUCKET: &str = "expel-cloudtrail-123456789012-us-east-1";
const ACCOUNT: &str = "123456789012";

/// How many calls of each operation the provider made through the proxy since the last clear.
fn calls(stack: &Stack, operation: &str) -> u64 {
    let (code, body) = stack.aws_proxy("GET", "/_proxy/calls", None);
    assert_eq!(code, 200, "{body}");
    body["operations"][operation].as_u64().unwrap_or(0)
}

fn clear_calls(stack: &Stack) {
    let (code, body) = stack.aws_proxy("DELETE", "/_proxy/calls", None);
    assert!(code < 300, "{body}");
}

fn attachments(stack: &Stack) -> Value {
    serde_json::from_str(&stack.oob("iam-attachments")).expect("oob.py iam-attachments prints JSON")
}

fn state_list(w: &Workdir) -> String {
    w.tf_expect(&["state", "list"], 0).stdout
}

#[test]
fn force_destroy_empties_a_versioned_log_bucket_page_by_page() {
    let stack = Stack::local();
    let w = Workdir::cloudtrail_force_destroy(&stack, "");
    w.tf_expect(APPLY, 0);

    // Versioning turned on behind Terraform's back after five log files were written, then
    // 400 files written three times each and 150 of them deleted: 1205 versions (five with
    // the id "null") and 150 delete markers, more than one page of ListObjectVersions; and
    // three multipart uploads never finished.
    let made: Value = serde_json::from_str(&stack.oob_with(
        "bucket-versions",
        &[
            "null=5",
            "keys=400",
            "versions=3",
            "markers=150",
            "uploads=3",
        ],
    ))
    .expect("oob.py bucket-versions prints JSON");
    assert_eq!(made, json!({"versions": 1205, "delete_markers": 150}));

    clear_calls(&stack);
    w.tf_expect(DESTROY, 0);
    let left = stack.aws_listing();
    assert!(names(&left["buckets"]).is_empty(), "{left}");
    assert!(state_list(&w).trim().is_empty());
    // 1355 entries: a page of 1000 and one of 355, each deleted in one request, then an
    // empty page; one DeleteBucket.
    assert_eq!(calls(&stack, "s3.ListObjectVersions"), 3);
    assert_eq!(calls(&stack, "s3.DeleteObjects"), 2);
    assert_eq!(calls(&stack, "s3.DeleteBucket"), 1);
    // Three unfinished multipart uploads, listed by neither listing above: aborted from one
    // page, then an empty page.
    assert_eq!(calls(&stack, "s3.AbortMultipartUpload"), 3);
    assert_eq!(calls(&stack, "s3.ListMultipartUploads"), 2);
}

#[test]
fn force_destroy_names_a_version_it_may_not_delete_and_finishes_once_it_is_released() {
    let stack = Stack::local();
    let w = Workdir::cloudtrail_force_destroy(&stack, "");
    w.tf_expect(APPLY, 0);
    let held = "AWSLogs/legal-hold/evidence.json.gz";
    stack.oob_with("bucket-hold", &[&format!("key={held}"), "keys=3"]);

    // S3 answers DeleteObjects with 200 and AccessDenied for the held version: destroy fails
    // at the bucket, naming the key and S3's reason; the resource stays in the state.
    let failed = w.tf_expect(DESTROY, 1);
    let out = flat(&failed.all());
    assert!(out.contains("Step 1/2: log bucket"), "{out}");
    assert!(out.contains(&format!("s3://{BUCKET}/{held}")), "{out}");
    assert!(out.contains("AccessDenied"), "{out}");
    assert!(out.contains("object lock"), "{out}");
    assert!(
        names(&stack.aws_listing()["buckets"]).contains(&BUCKET.to_string()),
        "the bucket is kept"
    );
    assert!(state_list(&w).contains("expel_cloudtrail_integration.this"));

    stack.oob_with("bucket-release", &[&format!("key={held}")]);
    w.tf_expect(DESTROY, 0);
    let left = stack.aws_listing();
    assert!(names(&left["buckets"]).is_empty(), "{left}");
}

#[test]
fn a_bucket_that_is_not_empty_when_deleted_is_emptied_and_deleted_again_within_the_timeout() {
    let stack = Stack::local();
    let w = Workdir::cloudtrail_force_destroy(&stack, "");
    w.tf_expect(APPLY, 0);

    // Log deliveries that arrive after the trail stops: DeleteBucket answers BucketNotEmpty
    // twice.
    let not_empty = |count: i64| {
        json!({"service": "s3", "operation": "DeleteBucket", "count": count, "kind": "status", "status": 409,
               "code": "BucketNotEmpty", "message": "The bucket you tried to delete is not empty"})
    };
    let (code, body) = stack.aws_proxy("POST", "/_proxy/faults", Some(&not_empty(2)));
    assert!(code < 300, "{body}");
    clear_calls(&stack);
    w.tf_expect(DESTROY, 0);
    assert!(names(&stack.aws_listing()["buckets"]).is_empty());
    assert_eq!(calls(&stack, "s3.DeleteBucket"), 3);
    assert_eq!(
        calls(&stack, "s3.ListObjectVersions"),
        3,
        "emptied again before each DeleteBucket"
    );

    // A bucket that never empties gives up at the delete timeout, naming the reason.
    let w = Workdir::cloudtrail_force_destroy(&stack, "  timeouts {\n    delete = \"8s\"\n  }\n");
    w.tf_expect(APPLY, 0);
    let (code, body) = stack.aws_proxy("POST", "/_proxy/faults", Some(&not_empty(-1)));
    assert!(code < 300, "{body}");
    let started = std::time::Instant::now();
    let failed = w.tf_expect(DESTROY, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded by the delete timeout: {:?}",
        started.elapsed()
    );
    let out = flat(&failed.all());
    assert!(out.contains("BucketNotEmpty"), "{out}");
    assert!(out.contains("timeouts.delete"), "{out}");
    let (code, _) = stack.aws_proxy("DELETE", "/_proxy/faults", None);
    assert!(code < 300);
    w.tf_expect(DESTROY, 0);
    assert!(names(&stack.aws_listing()["buckets"]).is_empty());
}

#[test]
fn cloudtrail_destroy_keeps_the_role_someone_attached_a_policy_to_and_deletes_ours() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    w.tf_expect(APPLY, 0);
    stack.oob_with("role-attach-foreign", &["foreign=AuditorsGuardDuty"]);
    let foreign = format!("arn:aws:iam::{ACCOUNT}:policy/AuditorsGuardDuty");

    // The role is kept with their policy; ours is detached and deleted, and the rest of the
    // integration is destroyed. The error names their policy and both ways out.
    let failed = w.tf_expect(DESTROY, 1);
    let out = flat(&failed.all());
    assert!(
        out.contains("IAM role kept: others attached to it"),
        "{out}"
    );
    assert!(
        out.contains(&format!("the managed policy {foreign}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "aws iam detach-role-policy --role-name ExpelServiceRole --policy-arn {foreign}"
        )),
        "{out}"
    );
    assert!(out.contains("terraform state rm"), "{out}");
    let iam = attachments(&stack);
    assert_eq!(
        iam["roles"]["ExpelServiceRole"]["managed"],
        json!([foreign]),
        "{iam}"
    );
    assert!(iam["policies"].get("ExpelAPIPolicy").is_none(), "{iam}");
    assert_eq!(
        iam["policies"]["AuditorsGuardDuty"]["roles"],
        json!(["ExpelServiceRole"]),
        "{iam}"
    );
    let left = stack.aws_listing();
    assert!(names(&left["trails"]).is_empty(), "{left}");
    assert!(names(&left["queues"]).is_empty(), "{left}");
    assert!(state_list(&w).contains("expel_cloudtrail_integration.this"));

    // Once their policy is detached, destroying again deletes the role; their policy stays.
    stack.oob_with("role-foreign-off", &["foreign=AuditorsGuardDuty"]);
    let done = w.tf_expect(DESTROY, 0);
    assert!(!done.all().contains("IAM role kept"), "{}", done.all());
    let iam = attachments(&stack);
    assert!(iam["roles"].get("ExpelServiceRole").is_none(), "{iam}");
    assert_eq!(
        iam["policies"]["AuditorsGuardDuty"]["roles"],
        json!([]),
        "{iam}"
    );
}

#[test]
fn member_role_destroy_keeps_what_others_attached_and_says_what_to_do() {
    let stack = Stack::local();
    let w = Workdir::with_hcl(
        &tf_config(
            r#"
resource "expel_aws_member_role" "this" {}
"#,
        ),
        &stack,
    );
    w.tf_expect(APPLY, 0);

    // An inline policy someone put on our role: the role is kept with it (an error that
    // names it), our policy is detached and deleted.
    stack.oob_with("role-inline-foreign", &["foreign=AuditorsInline"]);
    let failed = w.tf_expect(DESTROY, 1);
    let out = flat(&failed.all());
    assert!(
        out.contains("IAM role kept: others attached to it"),
        "{out}"
    );
    assert!(out.contains("the inline policy AuditorsInline"), "{out}");
    assert!(
        out.contains(
            "aws iam delete-role-policy --role-name ExpelServiceRole --policy-name AuditorsInline"
        ),
        "{out}"
    );
    let iam = attachments(&stack);
    assert_eq!(
        iam["roles"]["ExpelServiceRole"]["inline"],
        json!(["AuditorsInline"]),
        "{iam}"
    );
    assert_eq!(
        iam["roles"]["ExpelServiceRole"]["managed"],
        json!([]),
        "{iam}"
    );
    assert!(iam["policies"].get("ExpelAPIPolicy").is_none(), "{iam}");

    // Keeping the role for them: Terraform forgets it, AWS keeps it.
    w.tf_expect(&["state", "rm", "expel_aws_member_role.this"], 0);
    assert!(state_list(&w).trim().is_empty());
    assert!(names(&stack.aws_listing()["roles"]).contains(&"ExpelServiceRole".to_string()));

    // Applied again, the role (ours by its tag) is adopted and the policy made again. Then
    // someone attaches our policy to their role and user: destroy deletes our role (their
    // inline policy gone first) and keeps our policy for them, with a warning.
    w.tf_expect(APPLY, 0);
    stack.oob_with("role-foreign-off", &["foreign=AuditorsInline"]);
    stack.oob_with("policy-attach-foreign", &["foreign=Auditor"]);
    let done = w.tf_expect(DESTROY, 0);
    let out = flat(&done.all());
    assert!(out.contains("IAM policy kept: attached to others"), "{out}");
    assert!(out.contains("the role Auditor; the user Auditor"), "{out}");
    assert!(
        out.contains(&format!(
            "aws iam detach-user-policy --user-name Auditor --policy-arn arn:aws:iam::{ACCOUNT}:policy/ExpelAPIPolicy"
        )),
        "{out}"
    );
    let iam = attachments(&stack);
    assert!(iam["roles"].get("ExpelServiceRole").is_none(), "{iam}");
    assert_eq!(
        iam["policies"]["ExpelAPIPolicy"],
        json!({"roles": ["Auditor"], "users": ["Auditor"]}),
        "{iam}"
    );
    assert!(state_list(&w).trim().is_empty());
}
