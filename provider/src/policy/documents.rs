//! The documents themselves, one function per document of the guide.
//!
//! Every statement carries a stable Sid: drift is detected and repaired per statement, and only
//! statements with our Sids are ours (docs/ARCHITECTURE.md#writing-only-what-we-own); anything
//! else in a live document is left alone.

use serde_json::{json, Value};

use super::arn::{account_root_arn, bucket_arn, expel_principal, trail_arn};
use super::{CloudTrailNames, Location, POLICY_VERSION};

/// Expel's AWS account (guide Step 7: "Account ID: 012205512454").
pub const EXPEL_ACCOUNT_ID: &str = "012205512454";
/// The CloudTrail service principal.
pub const CLOUDTRAIL_SERVICE: &str = "cloudtrail.amazonaws.com";
/// The S3 service principal (sends the bucket's event notifications).
pub const S3_SERVICE: &str = "s3.amazonaws.com";

/// The Sids of our statements; the engine names drift by them.
pub mod sid {
    /// Key policy: what the console generates for a CloudTrail key.
    pub const KEY_ROOT: &str = "Enable IAM User Permissions";
    pub const KEY_CLOUDTRAIL_ENCRYPT: &str = "Allow CloudTrail to encrypt logs";
    pub const KEY_CLOUDTRAIL_DESCRIBE: &str = "Allow CloudTrail to describe key";
    /// Key policy: guide Step 4, Sid text exactly as the guide writes it.
    pub const KEY_S3_NOTIFICATIONS: &str = "Allow cloudtrail bucket to encrypt/decrypt SQS";
    /// Bucket policy (the statements CloudTrail's console writes, by their usual Sids).
    pub const BUCKET_ACL_CHECK: &str = "AWSCloudTrailAclCheck";
    pub const BUCKET_WRITE: &str = "AWSCloudTrailWrite";
    pub const BUCKET_ORGANIZATION_WRITE: &str = "AWSCloudTrailOrganizationWrite";
    /// Queue policy: guide Step 3.
    pub const QUEUE_OWNER: &str = "__owner_statement";
    /// ExpelAPIPolicy: guide Step 6. Only the first has a Sid in the guide; we name the others.
    pub const API_READ_ONLY: &str = "VisualEditor0";
    pub const API_READ_QUEUE: &str = "ExpelReadQueue";
    pub const API_READ_LOGS: &str = "ExpelReadLogs";
    pub const API_DECRYPT_LOGS: &str = "ExpelDecryptLogs";
    /// ExpelAPIPolicy: the auto remediation "Deactivate Access Keys" (`auto_remediation`).
    pub const API_DEACTIVATE_ACCESS_KEYS: &str = "ExpelDeactivateAccessKeys";
    /// ExpelServiceRole trust policy: guide Step 7.
    pub const TRUST_EXPEL: &str = "ExpelAssumeRole";
    /// Queue policy of an existing trail whose bucket publishes to an SNS topic
    /// (`existing_trail.sns_topic_arn`): the topic may send to our queue.
    pub const QUEUE_FROM_TOPIC: &str = "ExpelFromTopic";
    /// The statement we add to an existing trail's KMS key policy: our role may decrypt.
    pub const KEY_EXPEL_DECRYPT: &str = "ExpelServiceRoleDecryptLogs";
}

/// The SNS service principal (delivers a topic's messages to a subscribed queue).
pub const SNS_SERVICE: &str = "sns.amazonaws.com";

/// The guide's Step 6 read-only actions, in the guide's order.
pub const READ_ONLY_ACTIONS: &[&str] = &[
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
];

/// Every Sid we ever write in ExpelAPIPolicy. A statement with one of them is ours: written,
/// compared and removed by us; any other statement in the policy is someone else's and stays.
pub const API_POLICY_SIDS: &[&str] = &[
    sid::API_READ_ONLY,
    sid::API_READ_QUEUE,
    sid::API_READ_LOGS,
    sid::API_DECRYPT_LOGS,
    sid::API_DEACTIVATE_ACCESS_KEYS,
];

/// What the auto remediation "Deactivate Access Keys" needs beyond the read-only statement.
/// Expel's setup guide for it (support.expel.io, "AWS GuardDuty: Deactivate Access Keys",
/// Step 2) has the customer add `iam:List*`, `iam:Get*` and `iam:UpdateAccessKey` to the
/// Expel policy's `"Resource": "*"` section; `iam:List*` and `iam:Get*` are already in the
/// read-only statement. [G] The exact list for CloudTrail devices is not public: the statement
/// names the two calls that deactivate a key (list a user's keys, set one Inactive) so that it
/// stands on its own if the read-only statement is ever narrowed.
pub const DEACTIVATE_ACCESS_KEYS_ACTIONS: &[&str] = &["iam:ListAccessKeys", "iam:UpdateAccessKey"];

fn deactivate_access_keys_statement() -> Value {
    json!({
        "Sid": sid::API_DEACTIVATE_ACCESS_KEYS,
        "Effect": "Allow",
        "Action": DEACTIVATE_ACCESS_KEYS_ACTIONS,
        "Resource": "*"
    })
}

/// Whether ExpelAPIPolicy carries the permissions of auto remediations (`auto_remediation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remediations {
    pub deactivate_access_keys: bool,
}

impl Remediations {
    fn statements(self) -> Vec<Value> {
        let mut out = Vec::new();
        if self.deactivate_access_keys {
            out.push(deactivate_access_keys_statement());
        }
        out
    }
}

/// Key policy of the trail's KMS key (guide Steps 1 and 4; docs/ARCHITECTURE.md#aws).
///
/// The first three statements are what the CloudTrail console generates for a new key; the fourth
/// is the guide's Step 4 snippet, plus `aws:SourceAccount` (docs/ARCHITECTURE.md#aws) so that only
/// our account's bucket named in `aws:SourceArn` qualifies.
///
/// The console's default policy also lets every principal of the account decrypt log files.
/// We do not add that statement: the only reader is ExpelServiceRole, in this account, whose
/// ExpelAPIPolicy grants `kms:Decrypt` on this key (Step 6), and the root statement delegates
/// the key to IAM, so that identity grant suffices.
pub fn key_policy(loc: &Location, names: &CloudTrailNames) -> Value {
    let root = account_root_arn(&loc.partition, &loc.account_id);
    let trail = trail_arn(loc, &names.trail_name);
    let any_trail_of_account = format!(
        "arn:{}:cloudtrail:*:{}:trail/*",
        loc.partition, loc.account_id
    );
    let bucket = bucket_arn(loc, &names.bucket_name);
    json!({
        "Version": POLICY_VERSION,
        "Id": "ExpelCloudTrailKeyPolicy",
        "Statement": [
            {
                "Sid": sid::KEY_ROOT,
                "Effect": "Allow",
                "Principal": { "AWS": root },
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": sid::KEY_CLOUDTRAIL_ENCRYPT,
                "Effect": "Allow",
                "Principal": { "Service": CLOUDTRAIL_SERVICE },
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": any_trail_of_account
                    },
                    "StringEquals": { "aws:SourceArn": trail }
                }
            },
            {
                "Sid": sid::KEY_CLOUDTRAIL_DESCRIBE,
                "Effect": "Allow",
                "Principal": { "Service": CLOUDTRAIL_SERVICE },
                "Action": "kms:DescribeKey",
                "Resource": "*"
            },
            {
                "Sid": sid::KEY_S3_NOTIFICATIONS,
                "Effect": "Allow",
                "Principal": { "Service": S3_SERVICE },
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {
                    "StringLike": { "aws:SourceArn": bucket },
                    "StringEquals": { "aws:SourceAccount": loc.account_id }
                }
            }
        ]
    })
}

fn cloudtrail_write(sid: &str, bucket: &str, prefix_owner: &str, trail: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": { "Service": CLOUDTRAIL_SERVICE },
        "Action": "s3:PutObject",
        "Resource": format!("{bucket}/AWSLogs/{prefix_owner}/*"),
        "Condition": {
            "StringEquals": {
                "s3:x-amz-acl": "bucket-owner-full-control",
                "aws:SourceArn": trail
            }
        }
    })
}

/// Bucket policy of the log bucket (guide Step 1: "Create new S3 bucket" lets the console
/// write CloudTrail's statements; CreateTrail fails without them).
///
/// An organization trail writes member accounts' logs under `AWSLogs/<org id>/`, so it needs a
/// second write statement (docs/ARCHITECTURE.md#aws). Nothing else: the guide's bucket is what the
/// console creates, and its public access is blocked separately.
pub fn bucket_policy(loc: &Location, names: &CloudTrailNames) -> Value {
    let bucket = bucket_arn(loc, &names.bucket_name);
    let trail = trail_arn(loc, &names.trail_name);
    let mut statements = vec![
        json!({
            "Sid": sid::BUCKET_ACL_CHECK,
            "Effect": "Allow",
            "Principal": { "Service": CLOUDTRAIL_SERVICE },
            "Action": "s3:GetBucketAcl",
            "Resource": bucket,
            "Condition": { "StringEquals": { "aws:SourceArn": trail } }
        }),
        cloudtrail_write(sid::BUCKET_WRITE, &bucket, &loc.account_id, &trail),
    ];
    if let Some(org) = names
        .organization_id
        .as_deref()
        .filter(|org| !org.is_empty())
    {
        statements.push(cloudtrail_write(
            sid::BUCKET_ORGANIZATION_WRITE,
            &bucket,
            org,
            &trail,
        ));
    }
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

/// Access policy of the notification queue: exactly the guide's Step 3 JSON.
///
/// It allows `SQS:SendMessage` to any principal, but only with `aws:SourceArn` = the log bucket's
/// ARN (docs/ARCHITECTURE.md#aws), which is what S3 presents when it delivers a notification.
/// Bucket names are unique within a partition, so the ARN names our bucket alone. We keep the
/// guide's statement verbatim (no extra `aws:SourceAccount`) so that the live document is the one
/// users and Expel's engagement managers recognise from the guide.
pub fn queue_policy(queue_arn: &str, bucket_arn: &str) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": sid::QUEUE_OWNER,
                "Effect": "Allow",
                "Principal": { "AWS": "*" },
                "Action": "SQS:SendMessage",
                "Resource": queue_arn,
                "Condition": { "ArnLike": { "aws:SourceArn": bucket_arn } }
            }
        ]
    })
}

/// Access policy of the queue of an existing trail whose bucket publishes to an SNS topic
/// (`existing_trail.sns_topic_arn`): the topic, and only it, may send. The SNS developer guide
/// ("Sending Amazon SNS messages to an Amazon SQS queue": the queue policy allows the
/// `sns.amazonaws.com` principal `sqs:SendMessage` with `aws:SourceArn` the topic), as Expel's
/// own module writes it for an existing topic.
pub fn queue_policy_from_topic(queue_arn: &str, topic_arn: &str) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": sid::QUEUE_FROM_TOPIC,
                "Effect": "Allow",
                "Principal": { "Service": SNS_SERVICE },
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": { "ArnEquals": { "aws:SourceArn": topic_arn } }
            }
        ]
    })
}

/// Our statement in an existing trail's KMS key policy (`existing_trail.kms_key_arn`):
/// ExpelServiceRole may decrypt the log files. Merged by Sid into the key's policy, every
/// other statement kept; removed on destroy. A key policy's Resource is always `*` (the key
/// itself), and KMS refuses a principal that does not exist yet: written once the role exists.
pub fn existing_key_statement(role_arn: &str) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": sid::KEY_EXPEL_DECRYPT,
                "Effect": "Allow",
                "Principal": { "AWS": role_arn },
                "Action": "kms:Decrypt",
                "Resource": "*"
            }
        ]
    })
}

fn read_only_statement() -> Value {
    json!({
        "Sid": sid::API_READ_ONLY,
        "Effect": "Allow",
        "Action": READ_ONLY_ACTIONS,
        "Resource": "*"
    })
}

/// ExpelAPIPolicy (guide Step 6): the guide's actions exactly, statements named by Sid, plus
/// the statements of the auto remediations switched on.
pub fn api_policy(
    queue_arn: &str,
    bucket_arn: &str,
    key_arn: Option<&str>,
    remediations: Remediations,
) -> Value {
    let mut doc = json!({
        "Version": POLICY_VERSION,
        "Statement": [
            read_only_statement(),
            {
                "Sid": sid::API_READ_QUEUE,
                "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:ReceiveMessage"],
                "Resource": queue_arn
            },
            {
                "Sid": sid::API_READ_LOGS,
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": format!("{bucket_arn}/*")
            },
        ]
    });
    if let Some(Value::Array(list)) = doc.get_mut("Statement") {
        // An existing trail's logs may be encrypted with SSE-S3 only: nothing to decrypt.
        if let Some(key_arn) = key_arn {
            list.push(json!({
                "Sid": sid::API_DECRYPT_LOGS,
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": key_arn
            }));
        }
        list.extend(remediations.statements());
    }
    doc
}

/// ExpelAPIPolicy for member accounts of an organization: the read-only statement (guide
/// Step 6: "The policy in the sub-accounts can be changed to exclude the SQS and S3
/// resources"), plus the statements of the auto remediations switched on: Workbench acts in
/// the account where the access key lives.
pub fn member_api_policy(remediations: Remediations) -> Value {
    let mut statements = vec![read_only_statement()];
    statements.extend(remediations.statements());
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

/// Trust policy of ExpelServiceRole (guide Step 7: another AWS account, with an external id).
///
/// One principal is written as a string, several as a list, as IAM itself returns them.
pub fn trust_policy(principals: &[String], external_id: &str) -> Value {
    let principal = match principals {
        [only] => json!(only),
        many => json!(many),
    };
    json!({
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": sid::TRUST_EXPEL,
                "Effect": "Allow",
                "Principal": { "AWS": principal },
                "Action": "sts:AssumeRole",
                "Condition": { "StringEquals": { "sts:ExternalId": external_id } }
            }
        ]
    })
}

/// The default trusted principals: Expel's account root in the given partition.
pub fn default_trust_principals(partition: &str) -> Vec<String> {
    vec![expel_principal(partition, EXPEL_ACCOUNT_ID)]
}
