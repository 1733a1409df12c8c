//! The documents checked statement by statement against the guide, and compare/lint/parse.

use serde_json::{json, Value};

use super::*;

/// Guide Step 3, copied from the guide text.
const GUIDE_STEP3_QUEUE_POLICY: &str = r#"{ "Version": "2012-10-17", "Id": "__default_policy_ID", "Statement": [ { "Sid": "__owner_statement", "Effect": "Allow", "Principal": { "AWS": "*" }, "Action": "SQS:SendMessage", "Resource": "<your_sqs_queue_arn>", "Condition": { "ArnLike": { "aws:SourceArn": "<your_S3_bucket_arn>" } } } ] }"#;

/// Guide Step 4, copied from the guide text (without the leading ", ").
const GUIDE_STEP4_KEY_STATEMENT: &str = r#"{ "Sid": "Allow cloudtrail bucket to encrypt/decrypt SQS", "Effect": "Allow", "Principal": { "Service": "s3.amazonaws.com" }, "Action": [ "kms:GenerateDataKey", "kms:Decrypt" ], "Resource": "*", "Condition": { "StringLike": { "aws:SourceArn": "<your_S3_bucket_arn>" } } }"#;

/// Guide Step 6, copied from the guide text.
const GUIDE_STEP6_API_POLICY: &str = r#"{ "Version": "2012-10-17", "Statement": [ { "Sid": "VisualEditor0", "Effect": "Allow", "Action": [ "ec2:DescribeInstances", "ec2:DescribeRegions", "ec2:DescribeSecurityGroups", "iam:List*", "iam:Get*", "rds:DescribeDBInstances", "rds:ListTagsForResource", "organizations:ListAccounts", "ec2:DescribeVolumes", "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions", "lambda:GetFunction", "lambda:ListFunctions", "lightsail:GetInstances", "lightsail:GetRegions", "s3:ListAllMyBuckets", "s3:GetBucketNotification", "s3:GetEncryptionConfiguration", "cloudtrail:GetTrailStatus", "cloudtrail:DescribeTrails", "cloudtrail:GetTrail", "cloudtrail:ListTrails", "config:ListDiscoveredResources", "config:GetDiscoveredResourceCounts", "eks:DescribeCluster", "eks:ListClusters", "ecs:ListContainerInstances", "ecs:DescribeContainerInstances", "ecs:DescribeClusters", "ecs:ListClusters", "organizations:DescribeOrganization" ], "Resource": "*" }, { "Effect": "Allow", "Action": [ "sqs:DeleteMessage", "sqs:ReceiveMessage" ], "Resource": "<YOUR_SQS_ARN>" }, { "Effect": "Allow", "Action": [ "s3:GetObject" ], "Resource": "<YOUR_S3_ARN>/*" }, { "Effect": "Allow", "Action": [ "kms:Decrypt" ], "Resource": "<YOUR_KMS_KEY_ARN>" } ] }"#;

const ACCOUNT: &str = "111122223333";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn loc(partition: &str) -> Location {
    Location {
        partition: partition.to_string(),
        account_id: ACCOUNT.to_string(),
        region: "us-east-2".to_string(),
    }
}

fn names(org: Option<&str>) -> CloudTrailNames {
    CloudTrailNames {
        trail_name: "GlobalCloudTrail".to_string(),
        bucket_name: "acme-cloudtrail-logs".to_string(),
        queue_name: "ExpelMasterCloudTrailNotify".to_string(),
        organization_id: org.map(str::to_string),
    }
}

fn statement<'a>(doc: &'a Value, sid: &str) -> &'a Value {
    statements(doc)
        .into_iter()
        .find(|s| sid_of(s) == Some(sid))
        .unwrap_or_else(|| panic!("no statement {sid:?} in {doc:#}"))
}

fn sids(doc: &Value) -> Vec<&str> {
    statements(doc).into_iter().filter_map(sid_of).collect()
}

fn string_set(v: &Value) -> std::collections::BTreeSet<String> {
    match v {
        Value::String(s) => [s.clone()].into(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("string").to_string())
            .collect(),
        other => panic!("not a string or list: {other}"),
    }
}

fn api_policy_for(l: &Location) -> Value {
    let n = names(None);
    api_policy(
        &queue_arn(l, &n.queue_name),
        &bucket_arn(l, &n.bucket_name),
        Some(&key_arn(l, KEY_ID)),
        Remediations::default(),
    )
}

fn all_documents(l: &Location, org: Option<&str>) -> Vec<(&'static str, PolicyKind, Value)> {
    let n = names(org);
    vec![
        ("key", PolicyKind::Key, key_policy(l, &n)),
        ("bucket", PolicyKind::Bucket, bucket_policy(l, &n)),
        (
            "queue",
            PolicyKind::Queue,
            queue_policy(&queue_arn(l, &n.queue_name), &bucket_arn(l, &n.bucket_name)),
        ),
        ("api", PolicyKind::Identity, api_policy_for(l)),
        (
            "member api",
            PolicyKind::Identity,
            member_api_policy(Remediations::default()),
        ),
        (
            "member api with remediation",
            PolicyKind::Identity,
            member_api_policy(KEYS_ON),
        ),
        (
            "trust",
            PolicyKind::Trust,
            trust_policy(
                &default_trust_principals(&l.partition),
                "0a1b2c3d-aaaa-bbbb-cccc-0123456789ab",
            ),
        ),
    ]
}

// ---------- ARNs ----------

#[test]
fn arn_helpers_follow_each_service_format() {
    let l = loc("aws");
    assert_eq!(bucket_arn(&l, "b"), "arn:aws:s3:::b");
    assert_eq!(queue_arn(&l, "q"), "arn:aws:sqs:us-east-2:111122223333:q");
    assert_eq!(
        trail_arn(&l, "t"),
        "arn:aws:cloudtrail:us-east-2:111122223333:trail/t"
    );
    assert_eq!(role_arn(&l, "r"), "arn:aws:iam::111122223333:role/r");
    assert_eq!(
        role_arn(&l, "/expel/r"),
        "arn:aws:iam::111122223333:role/expel/r"
    );
    assert_eq!(policy_arn(&l, "p"), "arn:aws:iam::111122223333:policy/p");
    assert_eq!(
        key_arn(&l, KEY_ID),
        format!("arn:aws:kms:us-east-2:111122223333:key/{KEY_ID}")
    );
    assert_eq!(
        expel_principal("aws", EXPEL_ACCOUNT_ID),
        "arn:aws:iam::012205512454:root"
    );
    assert_eq!(
        default_trust_principals("aws-cn"),
        vec!["arn:aws-cn:iam::012205512454:root".to_string()]
    );
}

#[test]
fn arn_problem_accepts_our_arns_and_rejects_malformed_ones() {
    let l = loc("aws-us-gov");
    for arn in [
        bucket_arn(&l, "b"),
        queue_arn(&l, "q"),
        trail_arn(&l, "t"),
        key_arn(&l, KEY_ID),
        "arn:aws:cloudtrail:*:111122223333:trail/*".to_string(),
        "arn:aws:iam::aws:policy/SecurityAudit".to_string(),
    ] {
        assert_eq!(arn_problem(&arn), None, "{arn}");
    }
    for bad in [
        "arn:aws:s3:::",
        "arn:aws:s3:bucket",
        "bucket",
        "arn:amazon:s3:::b",
        "arn:aws:sqs:us-east-1:1234:q",
        "arn:aws::us-east-1:111122223333:q",
    ] {
        assert!(arn_problem(bad).is_some(), "{bad} accepted");
    }
}

// ---------- key policy (Steps 1 and 4) ----------

#[test]
fn key_policy_has_the_console_statements_and_the_guide_step4_statement() {
    let l = loc("aws");
    let doc = key_policy(&l, &names(None));
    assert_eq!(doc["Version"], "2012-10-17");
    assert_eq!(
        sids(&doc),
        vec![
            "Enable IAM User Permissions",
            "Allow CloudTrail to encrypt logs",
            "Allow CloudTrail to describe key",
            "Allow cloudtrail bucket to encrypt/decrypt SQS",
        ]
    );

    let root = statement(&doc, "Enable IAM User Permissions");
    assert_eq!(root["Effect"], "Allow");
    assert_eq!(
        root["Principal"],
        json!({"AWS": "arn:aws:iam::111122223333:root"})
    );
    assert_eq!(root["Action"], "kms:*");
    assert_eq!(root["Resource"], "*");

    let encrypt = statement(&doc, "Allow CloudTrail to encrypt logs");
    assert_eq!(
        encrypt["Principal"],
        json!({"Service": "cloudtrail.amazonaws.com"})
    );
    assert_eq!(encrypt["Action"], "kms:GenerateDataKey*");
    assert_eq!(encrypt["Resource"], "*");
    assert_eq!(
        encrypt["Condition"],
        json!({
            "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": "arn:aws:cloudtrail:*:111122223333:trail/*"},
            "StringEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-2:111122223333:trail/GlobalCloudTrail"}
        })
    );

    let describe = statement(&doc, "Allow CloudTrail to describe key");
    assert_eq!(
        describe["Principal"],
        json!({"Service": "cloudtrail.amazonaws.com"})
    );
    assert_eq!(describe["Action"], "kms:DescribeKey");
    assert!(describe.get("Condition").is_none());

    // Step 4: the guide's snippet, with the bucket ARN filled in, plus aws:SourceAccount.
    let bucket = bucket_arn(&l, "acme-cloudtrail-logs");
    let guide: Value =
        serde_json::from_str(&GUIDE_STEP4_KEY_STATEMENT.replace("<your_S3_bucket_arn>", &bucket))
            .expect("guide JSON");
    let mut ours = statement(&doc, "Allow cloudtrail bucket to encrypt/decrypt SQS").clone();
    assert_eq!(
        ours["Condition"]["StringEquals"],
        json!({"aws:SourceAccount": ACCOUNT})
    );
    ours["Condition"]
        .as_object_mut()
        .expect("condition object")
        .remove("StringEquals");
    assert_eq!(ours, guide, "Step 4 statement differs from the guide");
}

// ---------- bucket policy ----------

#[test]
fn bucket_policy_lets_cloudtrail_check_acl_and_write_under_the_account_prefix() {
    let l = loc("aws");
    let doc = bucket_policy(&l, &names(None));
    let trail = "arn:aws:cloudtrail:us-east-2:111122223333:trail/GlobalCloudTrail";
    assert_eq!(
        sids(&doc),
        vec!["AWSCloudTrailAclCheck", "AWSCloudTrailWrite"]
    );
    assert_eq!(
        *statement(&doc, "AWSCloudTrailAclCheck"),
        json!({
            "Sid": "AWSCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": "arn:aws:s3:::acme-cloudtrail-logs",
            "Condition": {"StringEquals": {"aws:SourceArn": trail}}
        })
    );
    assert_eq!(
        *statement(&doc, "AWSCloudTrailWrite"),
        json!({
            "Sid": "AWSCloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::acme-cloudtrail-logs/AWSLogs/111122223333/*",
            "Condition": {"StringEquals": {
                "s3:x-amz-acl": "bucket-owner-full-control",
                "aws:SourceArn": trail
            }}
        })
    );
}

#[test]
fn organization_trail_adds_the_org_id_write_statement() {
    let l = loc("aws");
    let doc = bucket_policy(&l, &names(Some("o-a1b2c3d4e5")));
    let org = statement(&doc, "AWSCloudTrailOrganizationWrite");
    assert_eq!(
        org["Resource"],
        "arn:aws:s3:::acme-cloudtrail-logs/AWSLogs/o-a1b2c3d4e5/*"
    );
    assert_eq!(org["Action"], "s3:PutObject");
    assert_eq!(
        org["Condition"]["StringEquals"]["s3:x-amz-acl"],
        "bucket-owner-full-control"
    );
    // The account prefix stays: the management account's own logs go there.
    assert_eq!(
        statement(&doc, "AWSCloudTrailWrite")["Resource"],
        "arn:aws:s3:::acme-cloudtrail-logs/AWSLogs/111122223333/*"
    );
    // An empty organization id is no organization.
    let none = bucket_policy(&l, &names(Some("")));
    assert!(!sids(&none).contains(&"AWSCloudTrailOrganizationWrite"));
}

// ---------- queue policy (Step 3) ----------

#[test]
fn queue_policy_is_the_guide_step3_json_with_arns_filled_in() {
    let l = loc("aws");
    let queue = queue_arn(&l, "ExpelMasterCloudTrailNotify");
    let bucket = bucket_arn(&l, "acme-cloudtrail-logs");
    let guide: Value = serde_json::from_str(
        &GUIDE_STEP3_QUEUE_POLICY
            .replace("<your_sqs_queue_arn>", &queue)
            .replace("<your_S3_bucket_arn>", &bucket),
    )
    .expect("guide JSON");
    assert_eq!(queue_policy(&queue, &bucket), guide);
}

// ---------- ExpelAPIPolicy (Step 6) ----------

#[test]
fn api_policy_matches_the_guide_step6_statement_by_statement() {
    let l = loc("aws");
    let queue = queue_arn(&l, "ExpelMasterCloudTrailNotify");
    let bucket = bucket_arn(&l, "acme-cloudtrail-logs");
    let key = key_arn(&l, KEY_ID);
    let guide: Value = serde_json::from_str(
        &GUIDE_STEP6_API_POLICY
            .replace("<YOUR_SQS_ARN>", &queue)
            .replace("<YOUR_S3_ARN>", &bucket)
            .replace("<YOUR_KMS_KEY_ARN>", &key),
    )
    .expect("guide JSON");
    let ours = api_policy(&queue, &bucket, Some(&key), Remediations::default());
    assert_eq!(ours["Version"], guide["Version"]);
    let guide_statements = statements(&guide);
    let our_statements = statements(&ours);
    assert_eq!(our_statements.len(), guide_statements.len());
    let added_sids = [
        "VisualEditor0",
        "ExpelReadQueue",
        "ExpelReadLogs",
        "ExpelDecryptLogs",
    ];
    for (i, (ours, guide)) in our_statements.iter().zip(&guide_statements).enumerate() {
        assert_eq!(sid_of(ours), Some(added_sids[i]));
        let mut ours = (*ours).clone();
        if guide.get("Sid").is_none() {
            ours.as_object_mut().expect("object").remove("Sid");
        }
        assert_eq!(&ours, *guide, "statement {i} differs from the guide");
    }

    // The read-only action list, as a set, against the guide's text.
    let guide_actions: std::collections::BTreeSet<String> = [
        "ec2:DescribeInstances",
        "ec2:DescribeRegions",
        "ec2:DescribeSecurityGroups",
        "iam:List*",
        "iam:Get*",
        "rds:DescribeDBInstances",
        "rds:ListTagsForResource",
        "organizations:ListAccounts",
        "ec2:DescribeVolumes",
        "ecs:DescribeTaskDefinition",
        "ecs:ListTaskDefinitions",
        "lambda:GetFunction",
        "lambda:ListFunctions",
        "lightsail:GetInstances",
        "lightsail:GetRegions",
        "s3:ListAllMyBuckets",
        "s3:GetBucketNotification",
        "s3:GetEncryptionConfiguration",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrail",
        "cloudtrail:ListTrails",
        "config:ListDiscoveredResources",
        "config:GetDiscoveredResourceCounts",
        "eks:DescribeCluster",
        "eks:ListClusters",
        "ecs:ListContainerInstances",
        "ecs:DescribeContainerInstances",
        "ecs:DescribeClusters",
        "ecs:ListClusters",
        "organizations:DescribeOrganization",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(guide_actions.len(), 31);
    assert_eq!(
        string_set(&statement(&ours, "VisualEditor0")["Action"]),
        guide_actions
    );
    assert_eq!(
        string_set(&statement(&ours, "ExpelReadQueue")["Action"]),
        [
            "sqs:DeleteMessage".to_string(),
            "sqs:ReceiveMessage".to_string()
        ]
        .into()
    );
    assert_eq!(statement(&ours, "ExpelReadQueue")["Resource"], queue);
    assert_eq!(
        statement(&ours, "ExpelReadLogs")["Resource"],
        "arn:aws:s3:::acme-cloudtrail-logs/*"
    );
    assert_eq!(statement(&ours, "ExpelDecryptLogs")["Resource"], key);
}

#[test]
fn member_api_policy_has_only_the_read_only_statement() {
    let doc = member_api_policy(Remediations::default());
    assert_eq!(sids(&doc), vec!["VisualEditor0"]);
    let text = render(&doc);
    for absent in ["sqs:", "s3:GetObject\"", "kms:"] {
        assert!(!text.contains(absent), "{absent} in member policy");
    }
    let full = api_policy_for(&loc("aws"));
    assert_eq!(
        statement(&doc, "VisualEditor0"),
        statement(&full, "VisualEditor0")
    );
}

// ---------- auto remediation "Deactivate Access Keys" ----------

const KEYS_ON: Remediations = Remediations {
    deactivate_access_keys: true,
};

#[test]
fn deactivate_access_keys_adds_one_statement_of_ours_to_both_api_policies() {
    let l = loc("aws");
    let off = api_policy_for(&l);
    let on = api_policy(
        &queue_arn(&l, "ExpelMasterCloudTrailNotify"),
        &bucket_arn(&l, "expel-cloudtrail-logs"),
        Some(&key_arn(&l, KEY_ID)),
        KEYS_ON,
    );
    let mut wanted = sids(&off);
    wanted.push("ExpelDeactivateAccessKeys");
    assert_eq!(sids(&on), wanted);
    let keys = statement(&on, "ExpelDeactivateAccessKeys");
    assert_eq!(
        keys,
        &json!({"Sid": "ExpelDeactivateAccessKeys", "Effect": "Allow",
                "Action": ["iam:ListAccessKeys", "iam:UpdateAccessKey"], "Resource": "*"})
    );
    assert_eq!(
        sids(&member_api_policy(KEYS_ON)),
        vec!["VisualEditor0", "ExpelDeactivateAccessKeys"]
    );
    for sid in sids(&on) {
        assert!(API_POLICY_SIDS.contains(&sid), "{sid} not owned");
    }
}

#[test]
fn switching_a_remediation_off_retires_our_statement_and_keeps_everyone_elses() {
    let on = member_api_policy(KEYS_ON);
    let off = member_api_policy(Remediations::default());
    let theirs = json!({"Sid": "GuardDutyRemediation", "Effect": "Allow",
                        "Action": "iam:UpdateAccessKey", "Resource": "*"});
    let mut live = on.clone();
    live["Statement"]
        .as_array_mut()
        .unwrap()
        .push(theirs.clone());
    let live = render(&live);

    assert_eq!(
        retired_present("ExpelAPIPolicy", &off, &live, API_POLICY_SIDS),
        vec!["ExpelAPIPolicy statement \"ExpelDeactivateAccessKeys\": present, though not wanted"]
    );
    assert!(retired_present("ExpelAPIPolicy", &on, &live, API_POLICY_SIDS).is_empty());
    assert!(
        drift("ExpelAPIPolicy", &off, &live).is_empty(),
        "drift alone misses it"
    );

    let written: Value = serde_json::from_str(
        &merged_retiring(&off, Some(&live), PolicyKind::Identity, API_POLICY_SIDS).unwrap(),
    )
    .unwrap();
    assert_eq!(
        sids(&written),
        vec!["VisualEditor0", "GuardDutyRemediation"]
    );
    assert_eq!(statement(&written, "GuardDutyRemediation"), &theirs);

    let back: Value = serde_json::from_str(
        &merged_retiring(
            &on,
            Some(&render(&written)),
            PolicyKind::Identity,
            API_POLICY_SIDS,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        sids(&back),
        vec![
            "VisualEditor0",
            "ExpelDeactivateAccessKeys",
            "GuardDutyRemediation"
        ]
    );
    let bad = merged_retiring(&on, Some("not json"), PolicyKind::Identity, API_POLICY_SIDS);
    assert!(
        matches!(bad, Err(PolicyError::Unreadable { .. })),
        "{bad:?}"
    );
}

// ---------- trust policy (Step 7) ----------

#[test]
fn trust_policy_trusts_the_principals_with_the_external_id() {
    let one = trust_policy(&default_trust_principals("aws"), "ext-123");
    let st = statement(&one, "ExpelAssumeRole");
    assert_eq!(st["Effect"], "Allow");
    assert_eq!(st["Action"], "sts:AssumeRole");
    assert_eq!(
        st["Principal"],
        json!({"AWS": "arn:aws:iam::012205512454:root"})
    );
    assert_eq!(
        st["Condition"],
        json!({"StringEquals": {"sts:ExternalId": "ext-123"}})
    );
    let two = trust_policy(
        &[
            "arn:aws:iam::012205512454:root".to_string(),
            "arn:aws:iam::012205512454:user/ExpelCloudService".to_string(),
        ],
        "ext-123",
    );
    assert_eq!(
        string_set(&statement(&two, "ExpelAssumeRole")["Principal"]["AWS"]).len(),
        2
    );
}

// ---------- partition ----------

#[test]
fn govcloud_partition_is_used_everywhere_and_no_commercial_arn_remains() {
    let l = loc("aws-us-gov");
    for (name, _, doc) in all_documents(&l, Some("o-a1b2c3d4e5")) {
        let text = render(&doc);
        assert!(!text.contains("arn:aws:"), "{name}: {text}");
        if !name.starts_with("member api") {
            assert!(text.contains("arn:aws-us-gov:"), "{name}: {text}");
        }
    }
    let key = key_policy(&l, &names(None));
    assert_eq!(
        statement(&key, "Allow CloudTrail to encrypt logs")["Condition"]["StringLike"]
            ["kms:EncryptionContext:aws:cloudtrail:arn"],
        "arn:aws-us-gov:cloudtrail:*:111122223333:trail/*"
    );
}

// ---------- compare ----------

#[test]
fn compare_identical_documents_is_empty() {
    for (name, _, doc) in all_documents(&loc("aws"), Some("o-a1b2c3d4e5")) {
        assert_eq!(compare(&doc, &doc), vec![], "{name}");
    }
}

#[test]
fn compare_ignores_action_order_and_case_and_string_vs_list() {
    let l = loc("aws");
    let queue = queue_arn(&l, "q");
    let bucket = bucket_arn(&l, "b");
    let expected = queue_policy(&queue, &bucket);
    let mut actual = expected.clone();
    // SQS may return the action in another case and as a list, the condition as a list.
    actual["Statement"][0]["Action"] = json!(["sqs:sendmessage"]);
    actual["Statement"][0]["Condition"]["ArnLike"]["aws:sourcearn"] = json!([bucket]);
    actual["Statement"][0]["Condition"]["ArnLike"]
        .as_object_mut()
        .expect("object")
        .remove("aws:SourceArn");
    actual["Statement"][0]["Principal"] = json!("*");
    assert_eq!(compare(&expected, &actual), vec![]);

    let api = api_policy_for(&l);
    let mut reordered = api.clone();
    let actions = reordered["Statement"][0]["Action"]
        .as_array_mut()
        .expect("list");
    actions.reverse();
    for a in actions.iter_mut() {
        *a = json!(a.as_str().expect("string").to_uppercase());
    }
    reordered["Statement"]
        .as_array_mut()
        .expect("list")
        .reverse();
    assert_eq!(compare(&api, &reordered), vec![]);
}

#[test]
fn compare_treats_an_account_id_as_its_root_arn() {
    let expected = trust_policy(&default_trust_principals("aws"), "ext");
    let mut actual = expected.clone();
    actual["Statement"][0]["Principal"]["AWS"] = json!(EXPEL_ACCOUNT_ID);
    assert_eq!(compare(&expected, &actual), vec![]);
    assert_eq!(compare(&actual, &expected), vec![]);
    // ... but not as another account's root.
    actual["Statement"][0]["Principal"]["AWS"] = json!("999999999999");
    let diffs = compare(&expected, &actual);
    assert_eq!(diffs.len(), 2, "{diffs:?}");
    assert!(diffs
        .iter()
        .any(|d| d.problem == "Principal AWS lacks arn:aws:iam::012205512454:root"));
}

#[test]
fn compare_names_a_removed_action() {
    let l = loc("aws");
    let expected = key_policy(&l, &names(None));
    let mut actual = expected.clone();
    actual["Statement"][3]["Action"] = json!(["kms:GenerateDataKey"]);
    assert_eq!(
        compare(&expected, &actual),
        vec![StatementDiff {
            sid: "Allow cloudtrail bucket to encrypt/decrypt SQS".to_string(),
            problem: "Action lacks kms:Decrypt".to_string(),
        }]
    );
    // A read-only action removed from ExpelAPIPolicy.
    let api = api_policy_for(&l);
    let mut trimmed = api.clone();
    trimmed["Statement"][0]["Action"]
        .as_array_mut()
        .expect("list")
        .retain(|a| a != "eks:ListClusters");
    let diffs = compare(&api, &trimmed);
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].sid, "VisualEditor0");
    assert!(diffs[0].problem.contains("eks:ListClusters"));
}

#[test]
fn compare_names_a_changed_condition_key_and_both_values() {
    let l = loc("aws");
    let expected = queue_policy(&queue_arn(&l, "q"), &bucket_arn(&l, "ours"));
    let mut actual = expected.clone();
    actual["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"] = json!("arn:aws:s3:::theirs");
    let diffs = compare(&expected, &actual);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(diffs[0].sid, "__owner_statement");
    let p = &diffs[0].problem;
    assert!(p.contains("aws:SourceArn"), "{p}");
    assert!(
        p.contains("arn:aws:s3:::theirs instead of arn:aws:s3:::ours"),
        "{p}"
    );
}

#[test]
fn compare_reports_a_removed_statement_as_missing() {
    let l = loc("aws");
    let expected = key_policy(&l, &names(None));
    let mut actual = expected.clone();
    actual["Statement"]
        .as_array_mut()
        .expect("list")
        .retain(|s| s["Sid"] != "Allow cloudtrail bucket to encrypt/decrypt SQS");
    assert_eq!(
        compare(&expected, &actual),
        vec![StatementDiff {
            sid: "Allow cloudtrail bucket to encrypt/decrypt SQS".to_string(),
            problem: "missing".to_string(),
        }]
    );
    // A document that is gone entirely: every statement is missing.
    assert_eq!(compare(&expected, &Value::Null).len(), 4);
}

#[test]
fn compare_ignores_foreign_statements() {
    let l = loc("aws");
    let expected = bucket_policy(&l, &names(None));
    let mut actual = expected.clone();
    actual["Statement"]
        .as_array_mut()
        .expect("list")
        .push(json!({
            "Sid": "SomeoneElsesReader",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::acme-cloudtrail-logs/*"
        }));
    actual["Statement"]
        .as_array_mut()
        .expect("list")
        .push(json!({
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::acme-cloudtrail-logs"
        }));
    assert_eq!(compare(&expected, &actual), vec![]);
}

#[test]
fn compare_reports_effect_extra_condition_and_wrong_service() {
    let l = loc("aws");
    let expected = key_policy(&l, &names(None));
    let mut actual = expected.clone();
    actual["Statement"][2]["Effect"] = json!("Deny");
    actual["Statement"][2]["Principal"] = json!({"Service": "s3.amazonaws.com"});
    actual["Statement"][2]["Condition"] = json!({"StringEquals": {"aws:SourceVpc": "vpc-1"}});
    let problems: Vec<String> = compare(&expected, &actual)
        .into_iter()
        .inspect(|d| assert_eq!(d.sid, "Allow CloudTrail to describe key"))
        .map(|d| d.problem)
        .collect();
    assert_eq!(
        problems,
        vec![
            "Effect is Deny instead of Allow".to_string(),
            "Principal Service lacks cloudtrail.amazonaws.com".to_string(),
            "Principal Service has extra s3.amazonaws.com".to_string(),
            "Condition has extra StringEquals aws:SourceVpc = vpc-1".to_string(),
        ]
    );
}

#[test]
fn compare_gives_sidless_statements_positional_ids() {
    let expected = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}
    ]});
    // Reordered but equal: no drift.
    let mut swapped = expected.clone();
    swapped["Statement"].as_array_mut().expect("list").reverse();
    assert_eq!(compare(&expected, &swapped), vec![]);
    // The second changed in place: reported under its position.
    let mut changed = expected.clone();
    changed["Statement"][1]["Action"] = json!("sqs:DeleteMessage");
    let diffs = compare(&expected, &changed);
    assert_eq!(diffs.len(), 2, "{diffs:?}");
    assert!(diffs.iter().all(|d| d.sid == "#2"));
    // Gone: missing.
    changed["Statement"].as_array_mut().expect("list").pop();
    assert_eq!(
        compare(&expected, &changed),
        vec![StatementDiff {
            sid: "#2".to_string(),
            problem: "missing".to_string()
        }]
    );
}

#[test]
fn merge_owned_replaces_ours_and_keeps_foreign_statements() {
    let l = loc("aws");
    let expected = key_policy(&l, &names(None));
    let mut live = expected.clone();
    let list = live["Statement"].as_array_mut().expect("list");
    list.retain(|s| s["Sid"] != "Allow CloudTrail to describe key");
    list[0]["Action"] = json!("kms:Decrypt");
    list.push(json!({
        "Sid": "Allow alias creation during setup",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "kms:CreateAlias",
        "Resource": "*"
    }));
    let merged = compare::merge_owned(&expected, &live);
    assert_eq!(compare(&expected, &merged), vec![]);
    assert!(sids(&merged).contains(&"Allow alias creation during setup"));
    assert_eq!(statements(&merged).len(), 5);
    assert_eq!(lint_as(&merged, PolicyKind::Key), Vec::<String>::new());
}

// ---------- parse / render ----------

#[test]
fn parse_accepts_plain_and_percent_encoded_json() {
    let doc = trust_policy(&default_trust_principals("aws"), "ext id/with+chars%");
    let text = render(&doc);
    assert_eq!(parse_document(&text).expect("plain"), doc);
    let encoded = percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    assert!(encoded.starts_with("%7B"));
    assert_eq!(parse_document(&encoded).expect("encoded"), doc);
    // Pretty-printed with surrounding whitespace, as KMS keeps what was sent.
    let pretty = format!("\n{}\n", serde_json::to_string_pretty(&doc).expect("json"));
    assert_eq!(parse_document(&pretty).expect("pretty"), doc);
}

#[test]
fn parse_rejects_invalid_and_non_object_documents() {
    assert!(matches!(
        parse_document("{\"Version\": "),
        Err(PolicyError::Json(_))
    ));
    assert!(matches!(
        parse_document("%7B%22Version"),
        Err(PolicyError::Json(_))
    ));
    assert!(matches!(
        parse_document("%FF%FE"),
        Err(PolicyError::Encoding(_))
    ));
    assert!(matches!(
        parse_document("[1, 2]"),
        Err(PolicyError::NotAnObject("a list"))
    ));
}

// ---------- lint ----------

#[test]
fn lint_passes_all_our_documents() {
    for partition in ["aws", "aws-us-gov", "aws-cn"] {
        for (name, kind, doc) in all_documents(&loc(partition), Some("o-a1b2c3d4e5")) {
            assert_eq!(
                lint_as(&doc, kind),
                Vec::<String>::new(),
                "{name} {partition}"
            );
        }
    }
    assert_eq!(lint(&api_policy_for(&loc("aws"))), Vec::<String>::new());
}

#[test]
fn checked_renders_our_documents_as_sent() {
    for partition in ["aws", "aws-us-gov", "aws-cn"] {
        for org in [None, Some("o-a1b2c3d4e5")] {
            for (name, kind, doc) in all_documents(&loc(partition), org) {
                match checked(&doc, kind) {
                    Ok(sent) => assert_eq!(sent, render(&doc), "{name} {partition}"),
                    Err(e) => panic!("{name} {partition}: {e}"),
                }
            }
        }
    }
}

#[test]
fn checked_refuses_a_document_naming_its_kind_statement_and_problem() {
    // A malformed principal that slipped past validation (an account id of 10 digits).
    let trust = trust_policy(&["arn:aws:iam::0122055124:root".to_string()], "x");
    let Err(e) = checked(&trust, PolicyKind::Trust) else {
        panic!("accepted {trust}")
    };
    let message = e.to_string();
    assert!(message.contains("IAM role trust policy"), "{message}");
    assert!(
        message.contains("statement \"ExpelAssumeRole\": Principal AWS"),
        "{message}"
    );
    assert!(message.contains("was not sent"), "{message}");
    assert!(
        matches!(e, PolicyError::Rejected { kind: PolicyKind::Trust, ref problems } if problems.len() == 1)
    );

    // An empty action list; a statement without Sid is named by its position.
    let mut queue = queue_policy(
        &queue_arn(&loc("aws"), "q"),
        &bucket_arn(&loc("aws"), "expel-cloudtrail-logs"),
    );
    queue["Statement"][0]["Action"] = json!([]);
    queue["Statement"][0]
        .as_object_mut()
        .map(|statement| statement.remove("Sid"));
    let Err(e) = checked(&queue, PolicyKind::Queue) else {
        panic!("accepted {queue}")
    };
    let message = e.to_string();
    assert!(message.contains("SQS queue access policy"), "{message}");
    assert!(
        message.contains("statement #1: Action must be a string or a non-empty list"),
        "{message}"
    );
}

fn assert_lint_finds(doc: &Value, kind: PolicyKind, needle: &str) {
    let problems = lint_as(doc, kind);
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem containing {needle:?}, got {problems:?}"
    );
}

#[test]
fn lint_catches_malformed_documents() {
    let good = api_policy_for(&loc("aws"));

    let mut bad_version = good.clone();
    bad_version["Version"] = json!("2008-10-17");
    assert_lint_finds(&bad_version, PolicyKind::Identity, "Version");
    let mut no_version = good.clone();
    no_version
        .as_object_mut()
        .expect("object")
        .remove("Version");
    assert_lint_finds(&no_version, PolicyKind::Identity, "Version is missing");

    let mut no_colon = good.clone();
    no_colon["Statement"][1]["Action"] = json!(["sqsReceiveMessage"]);
    assert_lint_finds(&no_colon, PolicyKind::Identity, "service:Action");

    let mut mid_wildcard = good.clone();
    mid_wildcard["Statement"][1]["Action"] = json!("s3:Get*Object");
    assert_lint_finds(&mid_wildcard, PolicyKind::Identity, "wildcard");

    let mut duplicate = good.clone();
    duplicate["Statement"][2]["Sid"] = json!("ExpelReadQueue");
    assert_lint_finds(&duplicate, PolicyKind::Identity, "duplicate Sid");

    let mut bad_arn = good.clone();
    bad_arn["Statement"][1]["Resource"] = json!("arn:aws:sqs:ExpelMasterCloudTrailNotify");
    assert_lint_finds(&bad_arn, PolicyKind::Identity, "is not an ARN");
    let mut empty_bucket = good.clone();
    empty_bucket["Statement"][2]["Resource"] = json!("arn:aws:s3:::");
    assert_lint_finds(&empty_bucket, PolicyKind::Identity, "names no resource");

    let mut oversize = good.clone();
    let many: Vec<String> = (0..400)
        .map(|i| format!("ec2:DescribeThing{i:04}"))
        .collect();
    oversize["Statement"][0]["Action"] = json!(many);
    assert_lint_finds(&oversize, PolicyKind::Identity, "the limit is 6144");
    // A key policy may be larger, up to 32 KB.
    let mut big_key = key_policy(&loc("aws"), &names(None));
    big_key["Statement"][0]["Action"] = json!(many);
    assert_eq!(lint_as(&big_key, PolicyKind::Key), Vec::<String>::new());
    let huge: Vec<String> = (0..2000)
        .map(|i| format!("kms:DescribeThing{i:04}"))
        .collect();
    big_key["Statement"][0]["Action"] = json!(huge);
    assert_lint_finds(&big_key, PolicyKind::Key, "the limit is 32768");

    let mut empty = good.clone();
    empty["Statement"] = json!([]);
    assert_lint_finds(&empty, PolicyKind::Identity, "Statement is an empty list");

    let mut bad_effect = good.clone();
    bad_effect["Statement"][0]["Effect"] = json!("allow");
    assert_lint_finds(&bad_effect, PolicyKind::Identity, "Allow or Deny");

    let mut no_resource = good.clone();
    no_resource["Statement"][0]
        .as_object_mut()
        .expect("object")
        .remove("Resource");
    assert_lint_finds(
        &no_resource,
        PolicyKind::Identity,
        "Resource (or NotResource) is missing",
    );
}

#[test]
fn lint_applies_the_rules_of_each_kind() {
    let l = loc("aws");
    let n = names(None);
    // Identity policies have no Principal; resource policies need one.
    let key = key_policy(&l, &n);
    assert_lint_finds(&key, PolicyKind::Identity, "must not name a Principal");
    // Key policy Sids may have spaces; IAM Sids may not.
    assert_lint_finds(&key, PolicyKind::Identity, "only letters and digits");
    let mut no_principal = queue_policy(&queue_arn(&l, "q"), &bucket_arn(&l, "b"));
    no_principal["Statement"][0]
        .as_object_mut()
        .expect("object")
        .remove("Principal");
    assert_lint_finds(
        &no_principal,
        PolicyKind::Queue,
        "Principal (or NotPrincipal) is missing",
    );
    // Trust policies: sts actions only, no Resource.
    let mut trust = trust_policy(&default_trust_principals("aws"), "ext");
    trust["Statement"][0]["Resource"] = json!("*");
    trust["Statement"][0]["Action"] = json!("s3:GetObject");
    assert_lint_finds(&trust, PolicyKind::Trust, "must not name a Resource");
    assert_lint_finds(&trust, PolicyKind::Trust, "only sts: actions");
    // An empty principal list is caught.
    let nobody = trust_policy(&[], "ext");
    assert_lint_finds(&nobody, PolicyKind::Trust, "Principal AWS must be");
    // A malformed ARN in a condition.
    let mut bad_condition = queue_policy(&queue_arn(&l, "q"), &bucket_arn(&l, "b"));
    bad_condition["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"] = json!("arn:aws:s3:::");
    assert_lint_finds(
        &bad_condition,
        PolicyKind::Queue,
        "Condition ArnLike aws:SourceArn",
    );
}
