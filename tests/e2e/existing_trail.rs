//! `existing_trail`: a Control Tower-shaped organization (an organization trail in the
//! management account writing to the Log Archive account's bucket, encrypted with a
//! customer-managed key, another consumer already taking the bucket's object-create events)
//! onboarded through examples/control-tower, the real terraform CLI, moto and the Workbench
//! emulator. The trail, the bucket's settings, the key and the other consumers are compared
//! before and after: only what the resource adds changes, and destroy takes only that away.
use expel_e2e::{tf_config, Stack, Workdir, APPLY, DESTROY, PLAN};
use serde_json::Value;

const ACCESS_ROLE: &str = "OrganizationAccountAccessRole";

/// What of the landing zone is others' (oob.py ct-snapshot): never changed by us.
const THEIRS: &[&str] = &[
    "trail",
    "trail_logging",
    "bucket_versioning",
    "bucket_encryption",
    "bucket_policy",
    "bucket_tags",
    "other_notifications",
    "key_policy_others",
    "key_rotation",
    "key_tags",
];

/// The landing zone (`consumer` = topic or queue); its ids as JSON (oob.py control-tower).
fn landing_zone(stack: &Stack, consumer: &str) -> Value {
    let out = stack.oob_with("control-tower", &[&format!("consumer={consumer}")]);
    let last = out.lines().last().expect("control-tower prints JSON last");
    serde_json::from_str(last).expect("control-tower JSON")
}

fn snapshot(stack: &Stack, lz: &Value) -> Value {
    let out = stack.oob_with(
        "ct-snapshot",
        &[
            &format!("account={}", lz["log_archive"].as_str().unwrap()),
            &format!("key={}", lz["key_arn"].as_str().unwrap()),
        ],
    );
    serde_json::from_str(&out).expect("ct-snapshot JSON")
}

fn tfvars(lz: &Value, topic: bool) -> String {
    let s = |k: &str| lz[k].as_str().unwrap().to_string();
    let mut v = format!(
        "log_archive_account_id = \"{}\"\nlog_archive_access_role = \"{ACCESS_ROLE}\"\nkms_key_arn = \"{}\"\ntrail_arn = \"{}\"\n",
        s("log_archive"),
        s("key_arn"),
        s("trail_arn")
    );
    if topic {
        v.push_str(&format!("sns_topic_arn = \"{}\"\n", s("topic_arn")));
    }
    v
}

/// Which of `queues` received the ObjectCreated event of a new log file (oob.py ct-deliver).
fn delivered(stack: &Stack, lz: &Value, queues: &str, object: &str) -> Value {
    let out = stack.oob_with(
        "ct-deliver",
        &[
            &format!("account={}", lz["log_archive"].as_str().unwrap()),
            &format!("queues={queues}"),
            &format!("object={object}"),
        ],
    );
    serde_json::from_str(&out).expect("ct-deliver JSON")
}

#[test]
fn control_tower_is_onboarded_through_its_topic_without_touching_the_trail_bucket_or_key() {
    let stack = Stack::local();
    let lz = landing_zone(&stack, "topic");
    let before = snapshot(&stack, &lz);
    let w = Workdir::from_example("control-tower", &stack);
    w.write("terraform.tfvars", &tfvars(&lz, true));

    let plan = w.tf_expect(PLAN, 2);
    assert!(
        plan.stdout.contains("existing_trail"),
        "plan shows the block:\n{}",
        plan.all()
    );
    w.tf_expect(APPLY, 0);
    let after = snapshot(&stack, &lz);
    // What belongs to others is exactly as it was; only our statement and subscription are new.
    for k in THEIRS {
        assert_eq!(before[*k], after[*k], "{k} changed by apply");
    }
    assert_eq!(
        after["our_notification"],
        serde_json::json!([]),
        "with a topic, no notification of ours"
    );
    let statement = &after["our_key_statement"][0];
    assert_eq!(statement["Action"], "kms:Decrypt");
    let role_arn = w.outputs()["role_arn"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(statement["Principal"]["AWS"], role_arn);
    assert!(
        role_arn.contains(lz["log_archive"].as_str().unwrap()),
        "the role is made in the Log Archive account: {role_arn}"
    );
    let subs = after["topic_subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "the other consumer's and ours: {subs:?}");

    // A log file reaches our queue (through the topic) and still the other consumer.
    let got = delivered(
        &stack,
        &lz,
        "siem-consumer,ExpelMasterCloudTrailNotify",
        "delivery-check.json.gz",
    );
    assert_eq!(
        got,
        serde_json::json!({"siem-consumer": true, "ExpelMasterCloudTrailNotify": true})
    );
    w.tf_expect(PLAN, 0);

    // Import by device id finds the attachment: the same block, nothing to re-make (the
    // configuration's checks, bucket_account_id and trail_arn, are recorded in place).
    let device = w.state_of("expel_cloudtrail_integration")["id"]
        .as_str()
        .expect("device id")
        .to_string();
    w.tf_expect(
        &[
            "state",
            "rm",
            "-no-color",
            "expel_cloudtrail_integration.control_tower",
        ],
        0,
    );
    w.tf_expect(
        &[
            "import",
            "-no-color",
            "expel_cloudtrail_integration.control_tower",
            &device,
        ],
        0,
    );
    let plan = w.tf_expect(PLAN, 2);
    let text = plan.all();
    assert!(
        text.contains("0 to add, 1 to change, 0 to destroy") && !text.contains("must be replaced"),
        "an in-place update only:\n{text}"
    );
    w.tf_expect(APPLY, 0);
    w.tf_expect(PLAN, 0);

    // Our statement taken out of the key policy, our subscription removed: drift, repaired.
    let la = format!("account={}", lz["log_archive"].as_str().unwrap());
    stack.oob_with(
        "key-statement-drop",
        &[&la, &format!("key={}", lz["key_arn"].as_str().unwrap())],
    );
    w.drift_repaired(
        "key statement removed",
        &["key_access", "ExpelServiceRoleDecryptLogs"],
    );
    stack.oob_with(
        "topic-unsubscribe",
        &[&la, &format!("topic={}", lz["topic_arn"].as_str().unwrap())],
    );
    w.drift_repaired("subscription removed", &["bucket_notification"]);

    // default_tags reach what the resource made, never the existing trail, bucket or key.
    w.edit_main(|m| {
        m.replace(
            "  aws {\n    region = var.region",
            "  aws {\n    default_tags {\n      tags = { team = \"secops\" }\n    }\n    region = var.region",
        )
    });
    w.tf_expect(APPLY, 0);
    let tagged = snapshot(&stack, &lz);
    for k in ["trail", "bucket_tags", "key_tags"] {
        assert_eq!(before[k], tagged[k], "{k} changed by default_tags");
    }
    let role_tags = stack.aws_listing_in(lz["log_archive"].as_str().unwrap())["role_tags"]
        ["ExpelServiceRole"]
        .clone();
    assert_eq!(
        role_tags["team"], "secops",
        "our role is tagged: {role_tags}"
    );
    w.tf_expect(PLAN, 0);

    w.tf_expect(DESTROY, 0);
    let gone = snapshot(&stack, &lz);
    for k in THEIRS {
        assert_eq!(before[*k], gone[*k], "{k} changed by destroy");
    }
    assert_eq!(gone["our_key_statement"], serde_json::json!([]));
    assert_eq!(gone["topic_subscriptions"], before["topic_subscriptions"]);
    assert_eq!(
        gone["queues"], before["queues"],
        "our queue is gone, theirs stay"
    );
    let listing = stack.aws_listing_in(lz["log_archive"].as_str().unwrap());
    for (kind, name) in [
        ("roles", "ExpelServiceRole"),
        ("policies", "ExpelAPIPolicy"),
    ] {
        assert!(
            !listing[kind].as_array().unwrap().iter().any(|r| r == name),
            "{name} left after destroy: {listing}"
        );
    }
}

#[test]
fn a_bucket_whose_events_another_consumer_takes_needs_the_topic_and_merges_otherwise() {
    let stack = Stack::local();
    let lz = landing_zone(&stack, "queue");
    let w = Workdir::from_example("control-tower", &stack);
    // The SIEM's queue already takes the object-create events: ours would overlap.
    w.write("terraform.tfvars", &tfvars(&lz, false));
    let plan = w.tf_expect(PLAN, 1);
    assert!(
        plan.all().contains("existing_trail.sns_topic_arn"),
        "names the attribute:\n{}",
        plan.all()
    );
    assert!(
        plan.all().contains("already notifies another consumer"),
        "{}",
        plan.all()
    );

    // Only a deletions consumer (another event type): ours is merged in beside it.
    let stack2 = Stack::local();
    let lz2 = landing_zone(&stack2, "none");
    let before = snapshot(&stack2, &lz2);
    let w2 = Workdir::from_example("control-tower", &stack2);
    w2.write("terraform.tfvars", &tfvars(&lz2, false));
    w2.tf_expect(APPLY, 0);
    let after = snapshot(&stack2, &lz2);
    assert_eq!(before["other_notifications"], after["other_notifications"]);
    assert_eq!(after["our_notification"].as_array().unwrap().len(), 1);
    let got = delivered(
        &stack2,
        &lz2,
        "ExpelMasterCloudTrailNotify",
        "merge-check.json.gz",
    );
    assert_eq!(got["ExpelMasterCloudTrailNotify"], true);
    w2.tf_expect(DESTROY, 0);
    let gone = snapshot(&stack2, &lz2);
    assert_eq!(gone["other_notifications"], before["other_notifications"]);
    assert_eq!(gone["our_notification"], serde_json::json!([]));
}

#[test]
fn bad_existing_trail_inputs_name_the_attribute() {
    let stack = Stack::local();
    let lz = landing_zone(&stack, "topic");
    let la = lz["log_archive"].as_str().unwrap();
    let key = lz["key_arn"].as_str().unwrap();
    let bucket = format!("aws-controltower-logs-{la}-us-east-1");
    let other_trail = stack
        .oob_with("trail-elsewhere", &[&format!("account={la}")])
        .trim()
        .to_string();
    let cases = [
        (
            format!("trail_arn = \"{other_trail}\""),
            "existing_trail.trail_arn",
            "writes its logs to bucket",
        ),
        (
            format!(
                "kms_key_arn = \"{}\"",
                key.replace("arn:aws:", "arn:aws-us-gov:")
            ),
            "existing_trail.kms_key_arn",
            "partition",
        ),
        (
            format!(
                "kms_key_arn = \"{}\"",
                key.replace("us-east-1", "eu-west-1")
            ),
            "existing_trail.kms_key_arn",
            "region",
        ),
        (
            format!("sns_topic_arn = \"arn:aws:sns:us-east-1:{la}:someone-elses-topic\""),
            "existing_trail.sns_topic_arn",
            "does not publish",
        ),
        (
            "bucket_account_id = \"111122223333\"".to_string(),
            "existing_trail.bucket_account_id",
            "configure this resource's provider",
        ),
    ];
    for (line, attr, words) in cases {
        let hcl = tf_config(&format!(
            r#"
provider "expel" {{
  alias = "log_archive"
  aws {{
    assume_role {{
      role_arn = "arn:aws:iam::{la}:role/{ACCESS_ROLE}"
    }}
  }}
}}
resource "expel_cloudtrail_integration" "ct" {{
  provider = expel.log_archive
  name     = "Acme - AWS Control Tower"
  existing_trail {{
    bucket_name = "{bucket}"
    {line}
  }}
}}
"#
        ));
        let w = Workdir::with_hcl(&hcl, &stack);
        let out = w.tf_expect(PLAN, 1);
        let text = expel_e2e::flat(&out.all());
        assert!(text.contains(words), "{line}: {text}");
        let attr_seen = attr.rsplit('.').next().unwrap();
        assert!(
            text.contains(attr_seen) && text.contains("existing_trail"),
            "{line}: names {attr}: {text}"
        );
    }
}
