//! expel_cloudtrail_integration through the real terraform CLI, moto (behind the fault proxy)
//! and the Workbench emulator.
use expel_e2e::{names, tf_config, Stack, Workdir, APPLY, DESTROY, PLAN};
use serde_json::{json, Value};

#[test]
fn apply_detects_and_repairs_every_drift_then_destroys() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let device_id = w.outputs()["security_device_id"]["value"]
        .as_str()
        .map(str::to_string);
    assert_eq!(stack.workbench_devices().len(), 1);

    // Several pieces changed behind Terraform's back: one plan names each, one apply fixes all.
    for action in [
        "key-policy-edit",
        "bucket-encryption-remove",
        "notification-remove",
        "queue-policy-change",
        "trail-stop",
        "role-trust-change",
        "policy-detach",
    ] {
        stack.oob(action);
    }
    let plan = w.tf_expect(PLAN, 2);
    let out = plan.all();
    for words in [
        "Allow cloudtrail bucket to encrypt/decrypt SQS",
        "default encryption (SSE-KMS) removed",
        "bucket_notification",
        "queue access policy",
        "trail logging is stopped",
        "trust policy",
        "ExpelAPIPolicy is detached from the role",
    ] {
        assert!(out.contains(words), "plan does not name {words:?}:\n{out}");
    }
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);

    // A disabled key, then one scheduled for deletion.
    for (action, words) in [
        ("key-disable", "KMS key is disabled"),
        ("key-schedule-deletion", "scheduled for deletion"),
    ] {
        stack.oob(action);
        let plan = w.tf_expect(PLAN, 2);
        assert!(
            plan.all().contains(words),
            "plan does not name {words:?}:\n{}",
            plan.all()
        );
        w.tf_expect(APPLY, 0);
        w.tf_expect(PLAN, 0);
    }

    // Deleted pieces are re-created: the trail in AWS and the device in Workbench.
    stack.oob("trail-delete");
    let id = device_id.expect("device id output");
    let (code, _) = stack.workbench("DELETE", &format!("/api/v2/security_devices/{id}"), None);
    assert_eq!(code, 204);
    let plan = w.tf_expect(PLAN, 2);
    assert!(
        plan.all().contains("deleted outside Terraform"),
        "{}",
        plan.all()
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(stack.workbench_devices().len(), 1);
    assert_eq!(stack.aws_listing()["trails"], json!(["GlobalCloudTrail"]));

    // Destroy removes everything but the key and the log bucket (kept: logs are evidence).
    w.tf_expect(DESTROY, 0);
    let left = stack.aws_listing();
    assert!(names(&left["trails"]).is_empty(), "{left}");
    assert!(
        left["queues"].as_array().is_some_and(|q| q.is_empty()),
        "{left}"
    );
    assert!(
        !names(&left["roles"]).contains(&"ExpelServiceRole".to_string()),
        "{left}"
    );
    assert!(names(&left["policies"]).is_empty(), "{left}");
    assert_eq!(
        names(&left["buckets"]),
        vec!["expel-cloudtrail-123456789012-us-east-1"],
        "{left}"
    );
    assert!(stack.workbench_devices().is_empty());
}

#[test]
fn force_destroy_removes_the_bucket_and_schedules_the_key() {
    let stack = Stack::local();
    let w = Workdir::cloudtrail_force_destroy(&stack, "  key_deletion_window_days = 7\n");
    w.tf_expect(APPLY, 0);
    w.tf_expect(DESTROY, 0);
    let left = stack.aws_listing();
    assert!(names(&left["buckets"]).is_empty(), "{left}");
    assert!(names(&left["aliases"]).is_empty(), "{left}");
    let states: Vec<&str> = left["keys"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(states, vec!["PendingDeletion"], "{left}");
}

#[test]
fn faults_leave_nothing_orphaned_and_a_rerun_converges() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    // Throttling storms and server errors are retried within the apply.
    for fault in [
        json!({"service": "iam", "operation": "CreateRole", "nth": 1, "count": 3, "kind": "status", "status": 400, "code": "Throttling"}),
        json!({"service": "sqs", "operation": "CreateQueue", "nth": 1, "count": 1, "kind": "status", "status": 500, "phase": "after"}),
        json!({"service": "kms", "operation": "*", "nth": 2, "count": 1, "kind": "reset"}),
    ] {
        let (code, body) = stack.aws_proxy("POST", "/_proxy/faults", Some(&fault));
        assert!(code < 300, "{body}");
    }
    let (code, _) = stack.admin("POST", "/_admin/faults", Some(&json!({"route": "POST /api/v2/security_devices", "nth": 1, "status": 500, "phase": "after"})));
    assert!(code < 300);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(
        stack.workbench_devices().len(),
        1,
        "a lost create answer does not register the device twice"
    );

    // A user error stops the apply; the state lists what exists; the rerun finishes the job.
    let (code, body) = stack.aws_proxy("POST", "/_proxy/faults", Some(&json!({"service": "cloudtrail", "operation": "CreateTrail", "nth": 1, "count": 1, "kind": "status", "status": 400, "code": "InvalidParameterCombinationException"})));
    assert!(code < 300, "{body}");
    w.tf_expect(DESTROY, 0);
    let failed = w.tf_expect(APPLY, 1);
    assert!(
        failed.all().contains("Step 1: multi-region trail"),
        "{}",
        failed.all()
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    w.tf_expect(DESTROY, 0);
    let left = stack.aws_listing();
    assert!(
        names(&left["trails"]).is_empty() && names(&left["policies"]).is_empty(),
        "{left}"
    );
    assert!(stack.workbench_devices().is_empty());
}

#[test]
fn bad_inputs_name_the_attribute() {
    let stack = Stack::local();
    let hcl = &tf_config(
        r#"
resource "expel_cloudtrail_integration" "bad" {
  name                     = " "
  kms_alias                = "ExpelCloudTrail"
  expel_principals         = ["arn:aws:s3:::not-a-principal"]
  key_deletion_window_days = 3
}
"#,
    );
    let w = Workdir::with_hcl(hcl, &stack);
    let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
    for words in [
        "name",
        "Malformed KMS alias",
        "Malformed principal",
        "key_deletion_window_days",
    ] {
        assert!(out.contains(words), "{words:?} missing:\n{out}");
    }

    // Names and regions AWS would refuse part-way through an apply are refused at plan.
    let ok_names = |hcl: &str| {
        hcl.replace("= \" \"", "= \"Acme\"")
            .replace("\"ExpelCloudTrail\"", "\"alias/ExpelCloudTrail\"")
            .replace("[\"arn:aws:s3:::not-a-principal\"]", "null")
            .replace("= 3", "= 7")
    };
    let aws_rules = ok_names(hcl)
        .replace("= 7", "= 7\n  bucket_name = \"Expel_Logs\"\n  queue_name = \"notify.fifo\"\n  trail_name = \"my-_trail\"\n  access_logging_bucket = \"Access..Logs\"");
    stack.aws_proxy("DELETE", "/_proxy/calls", None);
    let w = Workdir::with_hcl(&aws_rules, &stack);
    let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
    for words in [
        "bucket_name",
        "Expel_Logs",
        "queue_name",
        "trail_name",
        "access_logging_bucket",
        "Access..Logs",
    ] {
        assert!(out.contains(words), "{words:?} missing:\n{out}");
    }
    let region = ok_names(hcl).replace(
        "provider \"expel\" {}",
        "provider \"expel\" {\n  aws {\n    region = \"us-eats-1\"\n  }\n}",
    );
    let w = Workdir::with_hcl(&region, &stack);
    let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
    for words in ["aws.region", "us-eats-1", "us-east-1"] {
        assert!(out.contains(words), "{words:?} missing:\n{out}");
    }
    let (_, calls) = stack.aws_proxy("GET", "/_proxy/calls", None);
    assert_eq!(calls["total"], 0, "nothing was asked of AWS: {calls}");

    let ok = hcl
        .replace("= \" \"", "= \"Acme\"")
        .replace("\"ExpelCloudTrail\"", "\"alias/ExpelCloudTrail\"")
        .replace("[\"arn:aws:s3:::not-a-principal\"]", "null")
        .replace("= 3", "= 7");
    let mut w = Workdir::with_hcl(&ok, &stack);
    w.set_env("AWS_REGION", Some("moon"));
    let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
    assert!(out.contains("aws.region") && out.contains("moon"), "{out}");

    w.set_env("AWS_REGION", Some("us-east-1"));
    w.set_env(
        "EXPEL_ORGANIZATION_ID",
        Some("00000000-0000-4000-8000-000000000000"),
    );
    let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
    assert!(
        out.contains("Unknown Workbench organization") && out.contains("organization_id"),
        "{out}"
    );
}

/// `aws.allowed_account_ids` / `aws.forbidden_account_ids` keep the provider out of an
/// account: the plan fails naming the attribute and the account, after asking AWS only who
/// the caller is; both lists at once, or a malformed id, are refused before any call.
#[test]
fn account_lists_refuse_an_account_before_any_write() {
    let stack = Stack::local();
    let resource = r#"
resource "expel_cloudtrail_integration" "ct" {
  name = "Acme"
}
"#;
    let with_aws = |aws: &str| {
        tf_config(resource).replace(
            "provider \"expel\" {}",
            &format!("provider \"expel\" {{\n  aws {{\n    {aws}\n  }}\n}}"),
        )
    };
    let account = stack.aws_account();
    for (aws, attr) in [
        (
            r#"allowed_account_ids = ["111111111111"]"#.to_string(),
            "aws.allowed_account_ids",
        ),
        (
            format!("forbidden_account_ids = [\"{account}\"]"),
            "aws.forbidden_account_ids",
        ),
    ] {
        stack.aws_proxy("DELETE", "/_proxy/calls", None);
        let w = Workdir::with_hcl(&with_aws(&aws), &stack);
        let out = w.tf_expect(&["plan", "-no-color"], 1).stderr;
        assert!(
            out.contains("AWS account not allowed") && out.contains(attr) && out.contains(&account),
            "{out}"
        );
        let (_, calls) = stack.aws_proxy("GET", "/_proxy/calls", None);
        let ops = calls["operations"].as_object().expect("operations").clone();
        assert!(
            ops.keys().all(|o| o == "sts.GetCallerIdentity"),
            "only who the caller is was asked: {calls}"
        );
    }
    // The account itself is allowed: the plan goes on.
    let w = Workdir::with_hcl(
        &with_aws(&format!("allowed_account_ids = [\"{account}\"]")),
        &stack,
    );
    w.tf_expect(&["plan", "-no-color"], 0);
    let both = with_aws(
        r#"allowed_account_ids = ["111111111111"]
    forbidden_account_ids = ["222222222222"]"#,
    );
    let out = Workdir::with_hcl(&both, &stack)
        .tf_expect(&["plan", "-no-color"], 1)
        .stderr;
    assert!(out.contains("Conflicting account lists"), "{out}");
    let bad = with_aws(r#"allowed_account_ids = ["12345"]"#);
    let out = Workdir::with_hcl(&bad, &stack)
        .tf_expect(&["plan", "-no-color"], 1)
        .stderr;
    assert!(
        out.contains("Malformed AWS account id") && out.contains("12345"),
        "{out}"
    );
}

#[test]
fn import_by_device_id_then_by_role_name() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    w.tf_expect(APPLY, 0);
    let id = w.outputs()["security_device_id"]["value"]
        .as_str()
        .map(str::to_string)
        .expect("device id");
    let addr = "expel_cloudtrail_integration.this";

    w.tf_expect(&["state", "rm", addr], 0);
    w.tf_expect(&["import", "-no-color", addr, &id], 0);
    w.tf_expect(PLAN, 0);

    // No device yet: import by role name; the plan registers the device.
    w.tf_expect(&["state", "rm", addr], 0);
    let (code, _) = stack.workbench("DELETE", &format!("/api/v2/security_devices/{id}"), None);
    assert_eq!(code, 204);
    w.tf_expect(&["import", "-no-color", addr, "ExpelServiceRole"], 0);
    w.tf_expect(PLAN, 2);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(stack.workbench_devices().len(), 1);

    // Something that is not ours cannot be imported.
    let mut bad = Workdir::from_example("cloudtrail", &stack);
    bad.set_env("TF_IN_AUTOMATION", Some("1"));
    let out = bad.tf_expect(
        &[
            "import",
            "-no-color",
            addr,
            "00000000-0000-4000-8000-000000000000",
        ],
        1,
    );
    assert!(out.stderr.contains("no security device"), "{}", out.stderr);
}

#[test]
fn untaint_resumes_a_failed_apply() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    let (code, _) = stack.admin(
        "POST",
        "/_admin/faults",
        Some(&json!({"route": "POST /api/v2/security_devices", "nth": 1, "status": 422})),
    );
    assert!(code < 300);
    let failed = w.tf_expect(APPLY, 1);
    assert!(
        failed.all().contains("Step 8: register AWS CloudTrail"),
        "{}",
        failed.all()
    );
    assert!(
        failed.all().contains("terraform untaint"),
        "the error says how to resume"
    );
    w.tf_expect(&["untaint", "expel_cloudtrail_integration.this"], 0);
    let plan = w.tf_expect(PLAN, 2);
    assert!(plan.all().contains("not created yet"), "{}", plan.all());
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(stack.workbench_devices().len(), 1);
}

#[test]
fn tag_changes_update_every_piece_in_place() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    w.tf_expect(APPLY, 0);
    w.edit_main(|main| main.replace("team = \"platform\"", "env = \"prod\""));
    let plan = w.tf_expect(PLAN, 2);
    assert!(plan.all().contains("update in-place"), "{}", plan.all());
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let tags: Value = serde_json::from_str(&stack.oob("tags")).expect("tags JSON");
    for piece in ["key", "bucket", "queue", "trail", "policy", "role"] {
        assert_eq!(tags[piece]["env"], json!("prod"), "{piece}: {tags}");
        assert!(
            tags[piece].get("team").is_none(),
            "{piece} keeps a removed tag: {tags}"
        );
        assert_eq!(
            tags[piece]["expel:managed-by"],
            json!("terraform-provider-expel"),
            "{piece}: {tags}"
        );
    }
}

#[test]
fn a_fault_at_each_step_is_retried_or_leaves_nothing_orphaned() {
    let stack = Stack::local();
    // Destroy everything each round, so that every round creates every piece again.
    let w = Workdir::cloudtrail_force_destroy(&stack, "  key_deletion_window_days = 7\n");
    // One create call per guide step.
    let steps = [
        ("kms", "CreateKey"),
        ("s3", "CreateBucket"),
        ("sqs", "CreateQueue"),
        ("s3", "PutBucketNotificationConfiguration"),
        ("cloudtrail", "CreateTrail"),
        ("iam", "CreatePolicy"),
        ("iam", "CreateRole"),
    ];
    for (service, operation) in steps {
        // Server errors then a 429 storm, or a reset: retried inside the apply.
        for round in [
            vec![
                json!({"service": service, "operation": operation, "nth": 1, "count": 2, "kind": "status", "status": 503}),
                json!({"service": service, "operation": operation, "nth": 3, "count": 3, "kind": "status", "status": 429}),
            ],
            vec![
                json!({"service": service, "operation": operation, "nth": 1, "count": 1, "kind": "reset"}),
            ],
        ] {
            for fault in &round {
                let (code, body) = stack.aws_proxy("POST", "/_proxy/faults", Some(fault));
                assert!(code < 300, "{body}");
            }
            w.tf_expect(APPLY, 0);
            w.tf_expect(PLAN, 0);
            w.tf_expect(DESTROY, 0);
            let (_, faults) = stack.aws_proxy("GET", "/_proxy/faults", None);
            for f in faults["faults"].as_array().into_iter().flatten() {
                assert!(
                    f["exhausted"] == json!(true),
                    "{service}.{operation}: a fault never fired, the step did not retry: {f}"
                );
            }
            stack.aws_proxy("DELETE", "/_proxy/faults", None);
        }
        // A refusal stops the apply; destroy then leaves nothing behind.
        let refusal = json!({"service": service, "operation": operation, "nth": 1, "count": 1, "kind": "status", "status": 400, "code": "ValidationError"});
        let (code, body) = stack.aws_proxy("POST", "/_proxy/faults", Some(&refusal));
        assert!(code < 300, "{body}");
        let failed = w.tf_expect(APPLY, 1);
        assert!(
            failed.all().contains("failed at"),
            "{service}.{operation}: {}",
            failed.all()
        );
        w.tf_expect(DESTROY, 0);
        let left = stack.aws_listing();
        assert!(
            names(&left["trails"]).is_empty(),
            "{service}.{operation}: {left}"
        );
        assert!(
            left["queues"].as_array().is_some_and(|q| q.is_empty()),
            "{service}.{operation}: {left}"
        );
        assert!(
            !names(&left["roles"]).contains(&"ExpelServiceRole".to_string()),
            "{service}.{operation}: {left}"
        );
        assert!(
            names(&left["policies"]).is_empty(),
            "{service}.{operation}: {left}"
        );
        assert!(
            stack.workbench_devices().is_empty(),
            "{service}.{operation}"
        );
    }
    // Workbench failing the registration for good: nothing orphaned in Workbench either.
    let (code, _) = stack.admin(
        "POST",
        "/_admin/faults",
        Some(&json!({"route": "POST /api/v2/security_devices", "nth": 1, "status": 422})),
    );
    assert!(code < 300);
    w.tf_expect(APPLY, 1);
    w.tf_expect(DESTROY, 0);
    assert!(stack.workbench_devices().is_empty());
    assert!(names(&stack.aws_listing()["trails"]).is_empty());
}

#[test]
fn renaming_every_piece_updates_in_place_and_retires_the_old_ones() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    w.tf_expect(APPLY, 0);
    let before = w.outputs();
    let main = std::fs::read_to_string(w.dir.path().join("main.tf")).expect("main.tf");
    let renamed = |queue: &str| {
        main.replace(
            "  tags = {",
            &format!(
                "  trail_name  = \"ExpelTrail2\"\n  bucket_name = \"expel-logs-renamed\"\n  queue_name  = \"{queue}\"\n  kms_alias   = \"alias/Expel2\"\n  policy_name = \"ExpelAPIPolicy2\"\n  role_name   = \"ExpelServiceRole2\"\n\n  tags = {{"
            ),
        )
    };
    w.write("main.tf", &renamed("ExpelQueue2"));
    let plan = w.tf_expect(PLAN, 2);
    assert!(plan.all().contains("update in-place"), "{}", plan.all());
    assert!(!plan.all().contains("must be replaced"), "{}", plan.all());
    let applied = w.tf_expect(APPLY, 0);
    assert!(
        applied.all().contains("previous log bucket is kept"),
        "{}",
        applied.all()
    );
    w.tf_expect(PLAN, 0);
    let after = w.outputs();
    // The device is updated, not re-registered; it now names the new role and queue.
    assert_eq!(
        before["security_device_id"]["value"],
        after["security_device_id"]["value"]
    );
    let d = stack.workbench_devices();
    assert_eq!(d.len(), 1);
    let spec = &d[0]["attributes"]["device_spec"];
    assert!(
        spec["role_arn"]
            .as_str()
            .unwrap_or_default()
            .ends_with(":role/ExpelServiceRole2"),
        "{spec}"
    );
    assert!(
        spec["sqs_queue_url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/ExpelQueue2"),
        "{spec}"
    );
    let left = stack.aws_listing();
    assert_eq!(names(&left["trails"]), vec!["ExpelTrail2"], "{left}");
    assert_eq!(names(&left["policies"]), vec!["ExpelAPIPolicy2"], "{left}");
    let roles = names(&left["roles"]);
    assert!(
        roles.contains(&"ExpelServiceRole2".into()) && !roles.contains(&"ExpelServiceRole".into()),
        "{left}"
    );
    assert_eq!(names(&left["aliases"]), vec!["alias/Expel2"], "{left}");
    let queues = names(&left["queues"]);
    assert!(
        queues.len() == 1 && queues[0].ends_with("/ExpelQueue2"),
        "{left}"
    );
    let mut buckets = names(&left["buckets"]);
    buckets.sort();
    assert_eq!(
        buckets,
        vec![
            "expel-cloudtrail-123456789012-us-east-1",
            "expel-logs-renamed"
        ],
        "{left}"
    );

    // Retiring the old queue fails: state keeps the old name, so the next apply finishes the
    // rename instead of forgetting the old queue.
    let refusal = json!({"service": "sqs", "operation": "DeleteQueue", "nth": 1, "count": 1, "kind": "status", "status": 400, "code": "ValidationError"});
    let (code, body) = stack.aws_proxy("POST", "/_proxy/faults", Some(&refusal));
    assert!(code < 300, "{body}");
    w.write("main.tf", &renamed("ExpelQueue3"));
    w.tf_expect(APPLY, 1);
    let shown = w.tf_expect(&["show", "-json"], 0);
    let state: Value = serde_json::from_str(&shown.stdout).expect("show -json");
    assert_eq!(
        state["values"]["root_module"]["resources"][0]["values"]["queue_name"],
        json!("ExpelQueue2"),
        "{state}"
    );
    stack.aws_proxy("DELETE", "/_proxy/faults", None);
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    let queues = names(&stack.aws_listing()["queues"]);
    assert!(
        queues.len() == 1 && queues[0].ends_with("/ExpelQueue3"),
        "{queues:?}"
    );
}

/// `main` (the example's main.tf) with `wait_for_healthy = true` and `extra` lines.
fn waiting(main: &str, extra: &str) -> String {
    main.replace(
        "  tags = {",
        &format!("  wait_for_healthy = true\n{extra}\n  tags = {{"),
    )
}

/// How often the device was PATCHed, i.e. asked to check its health again (the provider's
/// re-check; the create itself is a POST).
fn device_patches(stack: &Stack, device_id: &str) -> usize {
    let (_, calls) = stack.admin("GET", "/_admin/calls", None);
    let path = format!("/api/v2/security_devices/{device_id}");
    calls["log"]
        .as_array()
        .expect("call log")
        .iter()
        .filter(|c| c["method"] == json!("PATCH") && c["path"] == json!(path))
        .count()
}

fn device_status_in_state(w: &Workdir) -> Value {
    let shown = w.tf_expect(&["show", "-json"], 0);
    let state: Value = serde_json::from_str(&shown.stdout).expect("show -json");
    state["values"]["root_module"]["resources"][0]["values"]["device_status"].clone()
}

/// A role Workbench can never use (its trust names another account): "unhealthy" right
/// after the role was made is re-checked, but the create timeout (shorter than the settle
/// window) ends the wait with Workbench's verdict and its details. Trusting Expel, the
/// device is healthy once apply returns.
#[test]
fn wait_for_healthy_reports_workbench_verdict() {
    let stack = Stack::local();
    let w = Workdir::from_example("cloudtrail", &stack);
    let main = std::fs::read_to_string(w.dir.path().join("main.tf")).expect("main.tf");
    w.write(
        "main.tf",
        &waiting(
            &main,
            "  expel_principals = [\"999999999999\"]\n  timeouts {\n    create = \"30s\"\n  }\n",
        ),
    );
    let started = std::time::Instant::now();
    let failed = w.tf_expect(APPLY, 1);
    let took = started.elapsed();
    let text = failed.all().replace('\n', " ");
    for words in [
        "Step 8",
        "unhealthy",
        "trust policy does not allow account",
        "timeout",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{}", failed.all());
    }
    assert!(
        took < std::time::Duration::from_secs(45),
        "took {took:?}: the create timeout (30s) bounds the wait"
    );
    let d = stack.workbench_devices();
    assert_eq!(d.len(), 1);
    let id = d[0]["id"].as_str().expect("device id").to_string();
    assert!(
        device_patches(&stack, &id) >= 1,
        "a fresh role's unhealthy verdict is re-checked before failing"
    );
    assert_eq!(d[0]["attributes"]["status"], json!("unhealthy"), "{}", d[0]);

    // Trusting Expel (the default), the device is healthy once apply returns.
    w.write("main.tf", &waiting(&main, ""));
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(device_status_in_state(&w), json!("healthy"));
    assert_eq!(stack.workbench_devices().len(), 1);
}

/// What Workbench says while a new role propagates through IAM ("cannot assume role ...:
/// AccessDenied", forced for its first two checks): the apply asks it to check again, with
/// backoff, and ends with a healthy device.
#[test]
fn wait_for_healthy_rechecks_while_a_new_role_propagates() {
    let stack = Stack::local();
    let (s, b) = stack.admin(
        "PUT",
        "/_admin/workbench/health",
        Some(&json!({"unhealthy_first_checks": 2})),
    );
    assert_eq!(s, 200, "{b}");
    let w = Workdir::from_example("cloudtrail", &stack);
    w.edit_main(|main| waiting(main, ""));
    let out = w.tf_expect(APPLY, 0);
    assert!(!out.all().contains("unhealthy"), "{}", out.all());
    assert_eq!(device_status_in_state(&w), json!("healthy"));
    let d = stack.workbench_devices();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["attributes"]["status"], json!("healthy"), "{}", d[0]);
    assert_eq!(
        d[0]["attributes"]["is_verifying_status"],
        json!(false),
        "{}",
        d[0]
    );
    let id = d[0]["id"].as_str().expect("device id");
    assert!(
        device_patches(&stack, id) >= 2,
        "two unhealthy verdicts, so at least two re-checks"
    );
    let (_, health) = stack.admin("GET", "/_admin/workbench/health", None);
    assert_eq!(health["unhealthy_remaining"], json!(0), "{health}");
    w.tf_expect(PLAN, 0);
}

/// As real AWS: under the proxy's eventual-consistency mode, Workbench's own AssumeRole of
/// the new role is refused for 12 s after CreateRole, so its first check finds the device
/// unhealthy; the apply re-checks until the role works and ends healthy.
#[test]
fn wait_for_healthy_outlasts_iam_propagation_of_the_new_role() {
    let stack = Stack::local();
    let eventual = json!({"enabled": true, "refusals": 1, "assume_role_seconds": 12});
    let (s, b) = stack.aws_proxy("PUT", "/_proxy/eventual", Some(&eventual));
    assert_eq!(s, 200, "{b}");
    let w = Workdir::from_example("cloudtrail", &stack);
    w.edit_main(|main| waiting(main, ""));
    w.tf_expect(APPLY, 0);
    assert_eq!(device_status_in_state(&w), json!("healthy"));
    let (_, seen) = stack.aws_proxy("GET", "/_proxy/eventual", None);
    let refused = seen["refused_internal"]["sts.AssumeRole"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        refused >= 1,
        "Workbench's AssumeRole was refused first: {seen}"
    );
    let d = stack.workbench_devices();
    assert_eq!(d.len(), 1);
    let id = d[0]["id"].as_str().expect("device id");
    assert!(
        device_patches(&stack, id) >= 1,
        "the unhealthy verdict was re-checked"
    );
    w.tf_expect(PLAN, 0);
}

/// The log bucket's security defaults (issue 11, part 4): KMS key rotation, bucket versioning
/// and, with `access_logging_bucket`, server access logging into the customer's own bucket are
/// on after apply; switched off out of band they are drift that apply repairs; switched off in
/// the configuration, rotation is disabled, versioning suspended (the resource enabled it) and
/// logging removed, and the customer's access-log bucket is never touched.
#[test]
fn log_bucket_security_defaults_on_drift_repaired_and_switched_off() {
    let stack = Stack::local();
    stack.oob_with("access-log-bucket", &["name=acme-access-logs"]);
    let w = Workdir::from_example("cloudtrail", &stack);
    w.edit_main(|m| {
        m.replace(
            "  tags = {",
            "  access_logging_bucket = \"acme-access-logs\"\n\n  tags = {",
        )
    });
    let show = || -> Value { serde_json::from_str(&stack.oob("security-show")).expect("json") };
    let on = json!({
        "key_rotation": true,
        "versioning": "Enabled",
        "logging": {
            "bucket": "acme-access-logs",
            "prefix": "expel-cloudtrail-123456789012-us-east-1/"
        }
    });
    w.tf_expect(APPLY, 0);
    assert_eq!(show(), on);
    w.tf_expect(PLAN, 0);

    stack.oob("security-off");
    w.drift_repaired(
        "security defaults switched off out of band",
        &["key rotation", "versioning", "server access logging"],
    );
    assert_eq!(show(), on);

    // A logging bucket that does not let the logging service write: a clear error.
    w.edit_main(|m| m.replace("\"acme-access-logs\"", "\"no-grant-logs\""));
    stack.oob_with("access-log-bucket", &["name=no-grant-logs", "grant=no"]);
    let out = w.tf_expect(APPLY, 1);
    let text = expel_e2e::flat(&out.all());
    for words in [
        "access_logging_bucket",
        "no-grant-logs",
        "logging.s3.amazonaws.com",
    ] {
        assert!(text.contains(words), "no {words:?} in:\n{}", out.all());
    }

    let off = "enable_key_rotation = false\n  bucket_versioning = false";
    w.edit_main(|m| m.replace("access_logging_bucket = \"no-grant-logs\"", off));
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);
    assert_eq!(
        show(),
        json!({"key_rotation": false, "versioning": "Suspended", "logging": null})
    );
    w.tf_expect(DESTROY, 0);
    let left = stack.aws_listing();
    for b in ["acme-access-logs", "no-grant-logs"] {
        assert!(names(&left["buckets"]).contains(&b.to_string()), "{left}");
    }
}
