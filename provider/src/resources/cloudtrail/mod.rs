//! Resource `expel_cloudtrail_integration`: the AWS CloudTrail guide as one resource.
use super::support::common::{
    auto_remediation_block, bool_of, check_expel_principals, needs_default, opt, remediations_of,
    set, str_of, timeouts_block,
};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::support::aws_names::{self, AwsName};
use super::support::guided::{plan_repairs, Closed, Fixes, Guided, Import, Op, Opening, Plan};
use super::support::iam::{Kept, OLD_ROLE_KEPT, ROLE_KEPT};
use super::support::ownership::{Owner, OWNER_ATTR, OWNER_DESCRIPTION};
use super::support::tags::{self, WithTags};
use super::support::workbench_pin;
use super::ExpelData;
use crate::engine::{Checked, Deadline, Step, StepError};
use crate::policy::{self, Location};
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::provider::{Ctx, PlanInput};
use tfplugin::schema::{validators, Attribute, Block, NestedBlock, Schema};
use tfplugin::value::{Type, Value};

pub(crate) mod import;
mod steps;

use steps::{Cx, Existing, Journal, Piece, Settings};

/// How long an operation may take when `timeouts` does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

pub struct CloudTrailIntegration;

fn steps() -> Vec<&'static dyn Step<Cx>> {
    vec![
        &WithTags(steps::KmsKey),
        &WithTags(steps::TrailBucket),
        &WithTags(steps::NotifyQueue),
        &steps::BucketNotice,
        &WithTags(steps::Trail),
        &WithTags(steps::ApiPolicy),
        &WithTags(steps::ServiceRole),
        &steps::KeyAccess,
        &Checked(steps::Canary),
        &steps::WorkbenchDevice,
        &steps::AutoRemediation,
    ]
}

/// Computed attributes that hold the ids of each piece: unknown in a plan that re-creates it.
const IDS_OF_PIECE: &[(Piece, &[&str])] = &[
    (Piece::KmsKey, &["key_arn", "key_id"]),
    (Piece::Queue, &["queue_url"]),
    (Piece::WorkbenchDevice, &["id", "security_device_id"]),
];

/// What a replacement for a changed Workbench organization re-makes besides the device.
const REPLACED_WITH_ORGANIZATION: &str = "Every AWS piece is destroyed and made again (the log bucket and the KMS key are kept unless `force_destroy`, and the create adopts them), and `ExpelServiceRole` is made trusting the new organization id as its external id (unless `external_id` is set).";

fn schema() -> Schema {
    let s = |n: &str, d: &str| Attribute::string(n).description(d);
    let mut block = Block::new("The AWS CloudTrail onboarding guide as one resource: KMS key, log bucket, notification queue, bucket notification, multi-region trail, `ExpelAPIPolicy`, `ExpelServiceRole`, and the security device in Workbench.")
            .attr(s("name", "Name of the security device in Workbench. Must not be empty.").required().validator(validators::non_empty()))
            .attr(s("device_location", "Location shown for the device in Workbench. Default: the AWS region.").optional().computed())
            .attr(s("trail_name", "Name of the trail (guide: `GlobalCloudTrail`). Renaming updates in place, see [Renaming a piece](#renaming-a-piece).").default(Value::string("GlobalCloudTrail")).validator(aws_names::validator(AwsName::Trail)))
            .attr(s("bucket_name", "Log bucket. Default: `expel-cloudtrail-<account>-<region>`, known at plan time. Renaming updates in place, see [Renaming a piece](#renaming-a-piece).").optional().computed().validator(aws_names::validator(AwsName::S3Bucket)))
            .attr(s("queue_name", "Notification queue (guide: `ExpelMasterCloudTrailNotify`). Renaming updates in place, see [Renaming a piece](#renaming-a-piece).").default(Value::string("ExpelMasterCloudTrailNotify")).validator(aws_names::validator(AwsName::SqsQueue)))
            .attr(s("kms_alias", "Alias of the KMS key. Must start with `alias/` and not with the reserved `alias/aws/`. Renaming updates in place, see [Renaming a piece](#renaming-a-piece).").default(Value::string("alias/ExpelCloudTrail")).validator(aws_names::validator(AwsName::KmsAlias)))
            .attr(s("policy_name", "IAM policy (guide: `ExpelAPIPolicy`). Renaming updates in place, see [Renaming a piece](#renaming-a-piece).").default(Value::string("ExpelAPIPolicy")).validator(aws_names::validator(AwsName::IamPolicy)))
            .attr(s("role_name", "IAM role (guide: `ExpelServiceRole`; the same name in every account of an organization). Renaming updates in place, see [Renaming a piece](#renaming-a-piece).").default(Value::string("ExpelServiceRole")).validator(aws_names::validator(AwsName::IamRole)))
            .attr(s("role_session_name", "Role session name Workbench uses.").default(Value::string("ExpelCloudTrail")).validator(aws_names::validator(AwsName::RoleSession)))
            .attr(Attribute::new("expel_principals", Type::list(Type::String)).optional().computed().description("Principals trusted to assume the role: 12-digit account ids or IAM ARNs. Default: Expel's account `012205512454` in the caller's partition (`arn:<partition>:iam::012205512454:root`)."))
            .attr(s("external_id", "External id required in the trust policy. Default: the Workbench organization id.").optional().computed().validator(validators::non_empty()))
            .attr(Attribute::bool("organization_trail").default(Value::Bool(false)).description("Log every account of the AWS Organization (run in the management account)."))
            .attr(Attribute::bool("bucket_key_enabled").default(Value::Bool(true)).description("Use an S3 Bucket Key for SSE-KMS (fewer KMS calls)."))
            .attr(Attribute::bool("enable_key_rotation").default(Value::Bool(true)).description("Yearly automatic rotation of the KMS key the resource made (KMS EnableKeyRotation), as AWS Security Hub (KMS.4) and Checkov expect. `false` turns rotation off again only if this resource turned it on."))
            .attr(Attribute::bool("bucket_versioning").default(Value::Bool(true)).description("Versioning of the log bucket the resource made (S3 PutBucketVersioning `Enabled`), as Security Hub (S3.14) and Checkov expect. `false` suspends versioning only if this resource enabled it (a bucket once versioned can only be suspended, never unversioned)."))
            .attr(s("access_logging_bucket", "Server access logging of the log bucket into this bucket of yours (S3 PutBucketLogging, objects under `<bucket_name>/`), as Security Hub (CloudTrail.7, S3.9) and Checkov expect. It must be in the same account and region and let the logging service `logging.s3.amazonaws.com` put objects (a bucket policy statement); the provider never changes it. Not the log bucket itself. Unset: logging that this resource set is removed.").optional().validator(aws_names::validator(AwsName::S3Bucket)))
            .attr(Attribute::number("message_retention_seconds").default(Value::from(604800i64)).description("Queue retention (guide: 7 days), 60 to 1209600."))
            .attr(Attribute::new("tags", Type::map(Type::String)).optional().description("Tags for every AWS object made, over the provider's `aws.default_tags` (these win on equal keys; `tags_all` shows the result). The ownership tags `expel:managed-by` and `expel:owner` are always added; `tags` cannot set them. A change is applied in place: keys removed from the configuration are removed from the objects; tags others add are left alone and are not drift."))
            .attr(tags::tags_all_attribute())
            .attr(s(OWNER_ATTR, OWNER_DESCRIPTION).computed().use_state_for_unknown())
            .attr(Attribute::bool("verify").default(Value::Bool(true)).description("After apply, put a canary object in the bucket and wait for its ObjectCreated message in the queue. The check runs when the resource is created."))
            .attr(Attribute::bool("wait_for_healthy").default(Value::Bool(false)).description("Wait (within the create/update timeout) until Workbench reports the device healthy. An unhealthy verdict within 2 minutes after this apply made or changed the role or its policy is re-checked (IAM propagation); later, it fails the apply with Workbench's verdict."))
            .attr(Attribute::bool("force_destroy").default(Value::Bool(false)).description("On destroy, also empty and delete the log bucket and schedule the key for deletion. By default both are kept: logs are evidence. Default: `false`."))
            .attr(Attribute::number("key_deletion_window_days").default(Value::from(30i64)).description("Waiting period before a key scheduled for deletion (with `force_destroy`) is deleted, 7 to 30 days."))
            .attr(s("plugin_slug", "Workbench plugin of the device.").default(Value::string("aws")))
            .attr(s("id", "The Workbench security device id.").computed().use_state_for_unknown())
            .attr(s("security_device_id", "The Workbench security device id.").computed().use_state_for_unknown())
            .attr(s("account_id", "AWS account the integration lives in (pinned).").computed().use_state_for_unknown())
            .attr(s("region", "Home region of the trail, bucket and queue (pinned).").computed().use_state_for_unknown())
            .attr(s("partition", "AWS partition (pinned).").computed().use_state_for_unknown())
            .attr(s("key_arn", "ARN of the KMS key.").computed().use_state_for_unknown())
            .attr(s("key_id", "Id of the KMS key.").computed().use_state_for_unknown())
            .attr(s("bucket_arn", "ARN of the log bucket.").computed())
            .attr(s("queue_arn", "ARN of the notification queue.").computed())
            .attr(s("queue_url", "URL of the notification queue (the Workbench device's SQS URL).").computed().use_state_for_unknown())
            .attr(s("trail_arn", "ARN of the trail.").computed())
            .attr(s("policy_arn", "ARN of ExpelAPIPolicy.").computed())
            .attr(s("role_arn", "ARN of ExpelServiceRole (the Workbench device's role ARN).").computed())
            .attr(s("device_status", "Workbench health of the device (`healthy`, `unhealthy`, ...); not drift.").computed())
            .attr(Attribute::new("drift", Type::map(Type::String)).computed().description("What differs from the guide, per piece, in words; filled by refresh, emptied by the plan that repairs it."))
            .block(existing_trail_block())
            .block(timeouts_block("20m"))
            .block(auto_remediation_block("Expel's auto remediations for this integration. Switching one on adds its permissions to `ExpelAPIPolicy` as a statement of ours and opts the device in through Workbench's remediation settings; refresh reports either undone as drift and apply restores it. Switching it off (or removing the block after it was on) removes both: our statement only, and our device only from Workbench's record."));
    for a in workbench_pin::attributes() {
        block = block.attr(a);
    }
    // Version 0 had no `owner`: the next plan records it and the apply re-marks the objects.
    Schema::new(1, block).readable_from(0)
}

/// `existing_trail`: attach to a trail that already exists (Control Tower's, an organization's).
fn existing_trail_block() -> NestedBlock {
    let s = |n: &str, d: &str| Attribute::string(n).description(d).requires_replace();
    NestedBlock::single("existing_trail", Block::new("Attach to a trail that already exists, such as the organization trail of an AWS Control Tower landing zone, instead of making the KMS key, log bucket and trail. The resource then makes only what is missing: the queue (SQS-managed encryption), the bucket's notification to it (merged into the bucket's notification configuration, every other consumer's kept) or, with `sns_topic_arn`, the queue's subscription to the topic the bucket already publishes to; with `kms_key_arn` in this account, our statement in the key's policy (ExpelServiceRole may decrypt); and ExpelServiceRole with ExpelAPIPolicy reading that bucket and key. It never modifies or deletes the existing trail, bucket or key: destroy removes only what it added. Run it with the provider configured for the account that holds the bucket (Control Tower: the Log Archive account), see the guide \"Existing trails and Control Tower\". `trail_name`, `kms_alias`, `organization_trail`, `bucket_key_enabled`, `enable_key_rotation`, `bucket_versioning`, `access_logging_bucket` and `force_destroy` concern what the resource makes and are not used with it; `bucket_name` is the existing bucket's.")
        .attr(s("bucket_name", "The bucket the existing trail writes to (Control Tower: `aws-controltower-logs-<Log Archive account>-<region>`). It must be in the provider's account and region.").required().validator(aws_names::validator(AwsName::S3Bucket)))
        .attr(Attribute::string("bucket_account_id").description("The account that holds the bucket, checked against the provider's: a plan for another account fails and says to configure the provider for the bucket's account. A check only: changing it updates in place.").optional().validator(validators::non_empty()))
        .attr(s("kms_key_arn", "The KMS key the trail encrypts its logs with, if any (in the bucket's region). ExpelAPIPolicy grants kms:Decrypt on it; if the key is in this account, our statement is merged into its key policy (and removed on destroy); a key of another account is a warning that shows the statement its owner adds.").optional().validator(validators::non_empty()))
        .attr(s("sns_topic_arn", "A topic the bucket already publishes its object-create events to: the queue subscribes to it instead of a notification of its own. Needed when another consumer already takes the bucket's object-create events (S3 allows one configuration per event type and prefix), as in many Control Tower setups. Checked at plan time.").optional().validator(validators::non_empty()))
        .attr(Attribute::string("trail_arn").description("The existing trail, for validation only: the plan fails if it writes to another bucket or encrypts with another key than these settings say. A check only: changing it updates in place.").optional().validator(validators::non_empty())))
}

/// The `existing_trail` block of a configuration, plan or state, if set.
fn existing_of(v: &Value) -> Option<Existing> {
    let b = v.get("existing_trail").filter(|b| !b.is_null())?;
    let o = |k: &str| {
        b.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(Existing {
        bucket_name: o("bucket_name")?,
        bucket_account_id: o("bucket_account_id"),
        kms_key_arn: o("kms_key_arn"),
        sns_topic_arn: o("sns_topic_arn"),
        trail_arn: o("trail_arn"),
    })
}

/// Settings that concern what the resource makes, refused beside `existing_trail` when set
/// to what would change the existing trail or bucket.
fn check_existing_conflicts(config: &Value, diags: &mut Diagnostics) {
    if config.get("existing_trail").is_none_or(Value::is_null) {
        return;
    }
    let set_true = |k: &str| config.get(k).and_then(Value::as_bool) == Some(true);
    for (attr, why) in [
        (
            "organization_trail",
            "the existing trail decides whether it logs the organization",
        ),
        (
            "force_destroy",
            "the existing bucket and key are never deleted by this resource",
        ),
    ] {
        if set_true(attr) {
            diags.attr_error(
                AttrPath::root(attr),
                "Not used with existing_trail",
                format!("`{attr}` = true with `existing_trail`: {why}. Remove `{attr}`."),
            );
        }
    }
    if config
        .get("access_logging_bucket")
        .and_then(Value::as_str)
        .is_some()
    {
        diags.attr_error(AttrPath::root("access_logging_bucket"), "Not used with existing_trail", "`access_logging_bucket` with `existing_trail`: the existing bucket's settings are its owner's and never changed here. Remove `access_logging_bucket` (and turn on its access logging where the bucket is managed).".to_string());
    }
    let bucket = config.get("bucket_name").and_then(Value::as_str);
    let existing = config
        .get("existing_trail")
        .and_then(|b| b.get("bucket_name"))
        .and_then(Value::as_str);
    if let (Some(b), Some(e)) = (bucket, existing) {
        if b != e {
            diags.attr_error(AttrPath::root("bucket_name"), "Two log buckets", format!("`bucket_name` = {b:?} but `existing_trail.bucket_name` = {e:?}. With `existing_trail`, the log bucket is the existing one: remove `bucket_name`."));
        }
    }
}

fn default_bucket(loc: &Location) -> String {
    format!("expel-cloudtrail-{}-{}", loc.account_id, loc.region)
}

/// The instance's owner: the device it registers (its name in the Workbench organization)
/// in its account.
fn owner(loc: &Location, workbench_org: &str, name: &str) -> Owner {
    Owner::derive(
        "expel_cloudtrail_integration",
        &[&loc.account_id, workbench_org, name],
    )
}

fn settings(v: &Value, loc: &Location, workbench_org: &str) -> Settings {
    Settings {
        owner: Owner::recorded(v).unwrap_or_else(|| owner(loc, workbench_org, &str_of(v, "name"))),
        name: str_of(v, "name"),
        device_location: str_of(v, "device_location"),
        trail_name: str_of(v, "trail_name"),
        bucket_name: str_of(v, "bucket_name"),
        queue_name: str_of(v, "queue_name"),
        kms_alias: str_of(v, "kms_alias"),
        policy_name: str_of(v, "policy_name"),
        role_name: str_of(v, "role_name"),
        role_session_name: str_of(v, "role_session_name"),
        principals: v
            .get("expel_principals")
            .and_then(Value::as_list)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        external_id: str_of(v, "external_id"),
        organization_trail: bool_of(v, "organization_trail", false),
        bucket_key_enabled: bool_of(v, "bucket_key_enabled", true),
        retention_seconds: v
            .get("message_retention_seconds")
            .and_then(Value::as_i64)
            .unwrap_or(604800),
        tags: v
            .get("tags")
            .and_then(Value::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        enable_key_rotation: bool_of(v, "enable_key_rotation", true),
        bucket_versioning: bool_of(v, "bucket_versioning", true),
        access_logging_bucket: v
            .get("access_logging_bucket")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
            .map(str::to_string),
        verify: bool_of(v, "verify", true),
        wait_for_healthy: bool_of(v, "wait_for_healthy", false),
        force_destroy: bool_of(v, "force_destroy", false),
        key_deletion_window_days: v
            .get("key_deletion_window_days")
            .and_then(Value::as_i64)
            .unwrap_or(30) as i32,
        plugin_slug: str_of(v, "plugin_slug"),
        workbench_org: workbench_org.to_string(),
        remediations: remediations_of(v),
        existing: existing_of(v),
    }
}

/// Private state: what the journal knows that no attribute shows. Which of the log bucket's
/// security settings this resource switched on, so that switching them off in the
/// configuration undoes only what it did; the Workbench remediation record our device was
/// put in, and whether this instance made it.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Private {
    #[serde(default)]
    rotation_ours: bool,
    #[serde(default)]
    versioning_ours: bool,
    #[serde(default)]
    logging_ours: Option<String>,
    #[serde(default)]
    remediation_id: Option<String>,
    #[serde(default)]
    remediation_made: bool,
}

fn private_of(cx: &Cx) -> Vec<u8> {
    let j = cx.journal.lock().map(|g| g.clone()).unwrap_or_default();
    serde_json::to_vec(&Private {
        rotation_ours: j.rotation_ours,
        versioning_ours: j.versioning_ours,
        logging_ours: j.logging_ours,
        remediation_id: j.remediation_id,
        remediation_made: j.remediation_made,
    })
    .unwrap_or_default()
}

fn journal(v: &Value, private: &[u8]) -> Journal {
    let p: Private = serde_json::from_slice(private).unwrap_or_default();
    let o = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Journal {
        key_arn: o("key_arn"),
        key_id: o("key_id"),
        queue_url: o("queue_url"),
        device_id: o("id"),
        device_status: o("device_status"),
        aws_org_id: None,
        credentials_changed: None,
        unclaimed: false,
        rotation_ours: p.rotation_ours,
        versioning_ours: p.versioning_ours,
        logging_ours: p.logging_ours,
        remediation_id: p.remediation_id,
        remediation_made: p.remediation_made,
    }
}

/// The state after an operation: the plan's values with the journal's ids filled in.
fn state_from(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
    let j = cx.journal.lock().map(|g| g.clone()).unwrap_or_default();
    let mut v = base.clone();
    set(&mut v, "key_arn", opt(j.key_arn));
    set(&mut v, "key_id", opt(j.key_id));
    set(&mut v, "queue_url", opt(j.queue_url));
    set(&mut v, "id", opt(j.device_id.clone()));
    set(&mut v, "security_device_id", opt(j.device_id));
    set(&mut v, "device_status", opt(j.device_status));
    set(
        &mut v,
        "drift",
        Value::Map(
            drift
                .into_iter()
                .map(|(k, x)| (k, Value::string(x)))
                .collect(),
        ),
    );
    // Derived from names and location, as the plan computes them (import leaves them out).
    set(&mut v, "bucket_arn", Value::string(cx.bucket_arn()));
    set(&mut v, "queue_arn", Value::string(cx.queue_arn()));
    let trail_arn = match &cx.s.existing {
        Some(e) => opt(e.trail_arn.clone()),
        None => Value::string(policy::trail_arn(&cx.loc, &cx.s.trail_name)),
    };
    set(&mut v, "trail_arn", trail_arn);
    set(&mut v, "policy_arn", Value::string(cx.policy_arn()));
    set(&mut v, "role_arn", Value::string(cx.role_arn()));
    tags::record(&mut v, &cx.s.tags);
    workbench_pin::record(&mut v, &cx.s.workbench_org, &cx.data);
    v
}

impl CloudTrailIntegration {
    /// The AWS location and Workbench organization the provider points at.
    async fn location(
        &self,
        ctx: &Ctx<ExpelData>,
        diags: &mut Diagnostics,
    ) -> Option<(Location, String)> {
        let Some(org) = ctx.data.organization_id.clone() else {
            diags.error("Missing Workbench organization id", "expel_cloudtrail_integration needs the organization id (the role's external id): set `organization_id` in the provider block or EXPEL_ORGANIZATION_ID.");
            return None;
        };
        match ctx.data.aws_location().await {
            Ok(l) if !ctx.data.account_allowed(&l.account_id, diags) => None,
            Ok(l) => Some((
                Location {
                    partition: l.partition,
                    account_id: l.account_id,
                    region: l.region,
                },
                org,
            )),
            Err(e) => {
                diags.error("Cannot determine the AWS account", format!("{e}."));
                None
            }
        }
    }

    /// `existing_trail` checked before anything is written: what needs no AWS call on every
    /// plan, what does (the bucket, its notifications, the trail) when the block is new or
    /// changed. Each finding is an error naming its attribute.
    async fn existing_ok(
        &self,
        ctx: &Ctx<ExpelData>,
        loc: &Location,
        e: &Existing,
        changed: bool,
        diags: &mut Diagnostics,
    ) -> bool {
        let mut found = steps::existing::offline_findings(e, loc);
        if found.is_empty() && changed {
            found = steps::existing::findings(ctx.data.aws_clients().await, loc, e).await;
        }
        for f in &found {
            let path = AttrPath::root("existing_trail").attr(f.attr);
            if f.warning {
                diags.attr_warning(path, f.summary, f.detail.clone());
            } else {
                diags.attr_error(path, f.summary, f.detail.clone());
            }
        }
        !found.iter().any(|f| !f.warning)
    }

    /// State pins the location: a provider now pointing elsewhere is an error, never "gone".
    fn check_pinned(&self, state: &Value, loc: &Location, diags: &mut Diagnostics) -> bool {
        let pinned = (str_of(state, "account_id"), str_of(state, "region"));
        if pinned.0.is_empty() || (pinned.0 == loc.account_id && pinned.1 == loc.region) {
            return true;
        }
        diags.error(
            "The provider points at another AWS account or region",
            format!(
                "This integration lives in account {} region {}, but the provider is configured for account {} region {}. Point the provider (aws.assume_role / aws.region) back at {} / {}, or remove the resource from state.",
                pinned.0, pinned.1, loc.account_id, loc.region, pinned.0, pinned.1
            ),
        );
        false
    }

    /// An organization trail writes under `AWSLogs/<org id>/`: the AWS Organization id is
    /// needed by every operation that builds the bucket policy.
    async fn organization(
        &self,
        aws: &crate::clients::aws::AwsClients,
        cx: &Cx,
        diags: &mut Diagnostics,
    ) -> bool {
        if !cx.s.organization_trail {
            return true;
        }
        match aws.organizations.describe_organization().send().await {
            Ok(o) => {
                if let Ok(mut j) = cx.journal.lock() {
                    j.aws_org_id = o.organization().and_then(|o| o.id()).map(str::to_string);
                }
                true
            }
            Err(e) => {
                diags.attr_error(
                    AttrPath::root("organization_trail"),
                    "Not in an AWS Organization",
                    format!(
                        "organization_trail needs the management account of an AWS Organization: {}",
                        crate::clients::aws::AwsError::from_sdk("organizations", "DescribeOrganization", e)
                    ),
                );
                false
            }
        }
    }

    /// The step context for the values (plan or state) and the resource's private state.
    fn cx(
        &self,
        ctx: &Ctx<ExpelData>,
        aws: &crate::clients::aws::AwsClients,
        loc: Location,
        (v, private): (&Value, &[u8]),
        org: &str,
        deadline: Deadline,
    ) -> Cx {
        let mut s = settings(v, &loc, org);
        s.tags = tags::wanted(v, &ctx.data.aws.default_tags);
        Cx {
            aws: aws.clone(),
            data: ctx.data.clone(),
            loc,
            s,
            journal: Mutex::new(journal(v, private)),
            deadline: deadline
                .with_propagation(ctx.data.aws.propagation_timeout)
                .with_max_retries(ctx.data.aws.max_retries),
            warnings: Mutex::new(Vec::new()),
            roles_kept: Mutex::new(Vec::new()),
        }
    }
}

/// The service principal AWS Organizations must trust for an organization trail.
pub const CLOUDTRAIL_PRINCIPAL: &str = "cloudtrail.amazonaws.com";

/// What to tell the user when CloudTrail trusted access is off.
pub fn trusted_access_missing() -> (&'static str, String) {
    ("CloudTrail trusted access is not enabled in AWS Organizations", format!(
        "organization_trail = true needs trusted access for {CLOUDTRAIL_PRINCIPAL} in AWS Organizations. \
         In the management account, enable it from the CloudTrail console (Settings > Organization > enable trusted access) \
         or with `aws organizations enable-aws-service-access --service-principal {CLOUDTRAIL_PRINCIPAL}`, then apply again; \
         or set organization_trail = false."
    ))
}

/// Organization trails need CloudTrail trusted access (ListAWSServiceAccessForOrganization).
async fn cloudtrail_trusted_access(
    aws: &crate::clients::aws::AwsClients,
) -> Result<(), (&'static str, String)> {
    let mut token: Option<String> = None;
    loop {
        let page = aws
            .organizations
            .list_aws_service_access_for_organization()
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                (
                    "Cannot check CloudTrail trusted access",
                    format!(
                        "organization_trail = true needs the management (or delegated administrator) account of the AWS Organization: {}",
                        crate::clients::aws::AwsError::from_sdk(
                            "organizations",
                            "ListAWSServiceAccessForOrganization",
                            e
                        )
                    ),
                )
            })?;
        if page
            .enabled_service_principals()
            .iter()
            .any(|p| p.service_principal() == Some(CLOUDTRAIL_PRINCIPAL))
        {
            return Ok(());
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => {
                let (s, d) = trusted_access_missing();
                return Err((s, d));
            }
        }
    }
}

/// An organization trail without CloudTrail trusted access cannot log the organization:
/// create and update stop before touching anything, naming what to enable.
async fn trusted_access_ok(
    aws: &crate::clients::aws::AwsClients,
    cx: &Cx,
    diags: &mut Diagnostics,
) -> bool {
    if !cx.s.organization_trail {
        return true;
    }
    match cloudtrail_trusted_access(aws).await {
        Ok(()) => true,
        Err((summary, detail)) => {
            diags.attr_error(AttrPath::root("organization_trail"), summary, detail);
            false
        }
    }
}

/// Names AWS cannot change in place, with the computed attributes that follow from each.
const RENAMABLE: &[(&str, &[&str])] = &[
    ("trail_name", &["trail_arn"]),
    ("bucket_name", &["bucket_arn"]),
    ("queue_name", &["queue_arn", "queue_url"]),
    ("kms_alias", &[]),
    ("policy_name", &["policy_arn"]),
    ("role_name", &["role_arn"]),
];

/// The names an update changes (a piece under a new name is a new piece).
fn renamed(prior: &Value, planned: &Value) -> Vec<&'static str> {
    RENAMABLE
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !str_of(prior, k).is_empty() && str_of(prior, k) != str_of(planned, k))
        .collect()
}

fn roles_kept(cx: &Cx) -> Vec<Kept> {
    cx.roles_kept.lock().map(|g| g.clone()).unwrap_or_default()
}

#[async_trait]
impl Guided for CloudTrailIntegration {
    type Cx = Cx;
    const TYPE_NAME: &'static str = "expel_cloudtrail_integration";
    const WHAT: &'static str = "the CloudTrail integration";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    const STATE_IDS: &'static [&'static str] = &["key_arn", "key_id", "queue_url", "id"];
    // The pipeline check leaves nothing behind.
    // Auto remediation is a setting of the device and the policy, not an object of its own.
    const TRANSIENT: &'static [Piece] = &[Piece::Pipeline, Piece::AutoRemediation];

    fn schema() -> Schema {
        schema()
    }

    fn validate(config: &Value, diags: &mut Diagnostics) {
        check_expel_principals(config, diags);
        check_existing_conflicts(config, diags);
        if let Some(n) = config
            .get("key_deletion_window_days")
            .and_then(Value::as_i64)
        {
            if !(7..=30).contains(&n) {
                diags.attr_error(
                    AttrPath::root("key_deletion_window_days"),
                    "Out of range",
                    format!("`key_deletion_window_days` = {n}; AWS accepts 7 to 30 days."),
                );
            }
        }
        if let Some(n) = config
            .get("message_retention_seconds")
            .and_then(Value::as_i64)
        {
            if !(60..=1_209_600).contains(&n) {
                diags.attr_error(
                    AttrPath::root("message_retention_seconds"),
                    "Out of range",
                    format!(
                        "`message_retention_seconds` = {n}; SQS accepts 60 to 1209600 (14 days)."
                    ),
                );
            }
        }
    }

    fn steps() -> Vec<&'static dyn Step<Cx>> {
        steps()
    }

    async fn open(
        &self,
        ctx: &Ctx<ExpelData>,
        o: Opening<'_>,
        diags: &mut Diagnostics,
    ) -> Result<Cx, Closed> {
        let Opening {
            op,
            values,
            prior,
            private,
            deadline,
        } = o;
        let (loc, org) = self.location(ctx, diags).await.ok_or(Closed::Failed)?;
        let org = if op == Op::Create {
            org
        } else {
            if !self.check_pinned(prior, &loc, diags) {
                return Err(Closed::Failed);
            }
            // The device lives in the organization it was made in (a replacement for a
            // changed organization destroys with the provider already pointing at the new one).
            workbench_pin::organization(&ctx.data, prior, &org, diags)
                .await
                .ok_or(Closed::Failed)?
        };
        let aws = ctx.data.aws_clients().await;
        let cx = self.cx(ctx, aws, loc, (values, private), &org, deadline);
        if op == Op::Delete {
            return Ok(cx);
        }
        if !self.organization(aws, &cx, diags).await {
            return Err(Closed::Failed);
        }
        // What the plan could not check (names known only now) is checked before any write.
        if let (Op::Create, Some(e)) = (op, &cx.s.existing) {
            if !self.existing_ok(ctx, &cx.loc, e, true, diags).await {
                return Err(Closed::Failed);
            }
        }
        if op == Op::Read {
            if cx.s.organization_trail {
                if let Err((summary, detail)) = cloudtrail_trusted_access(aws).await {
                    diags.warning(summary, detail);
                }
            }
        } else if !trusted_access_ok(aws, &cx, diags).await {
            return Err(Closed::Failed);
        }
        Ok(cx)
    }

    fn state_from(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
        state_from(base, cx, drift)
    }

    fn private_of(cx: &Cx, _previous: &[u8]) -> Vec<u8> {
        private_of(cx)
    }

    fn warnings(cx: &Cx) -> Vec<(String, String)> {
        let found = cx.warnings.lock().map(|g| g.clone()).unwrap_or_default();
        found.into_iter().map(|(s, d)| (s.to_string(), d)).collect()
    }

    async fn claim(cx: &Cx) -> Result<(), StepError> {
        steps::claim(cx).await
    }

    async fn after_create(cx: &Cx) -> Result<(), StepError> {
        if steps::adopted_unclaimed(cx) {
            steps::retag(cx, &[]).await?;
        }
        Ok(())
    }

    async fn after_converge(
        &self,
        cx: &Cx,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Result<(), StepError> {
        // `tags_all` before and now: a change of `tags` or of the provider's `default_tags`.
        let (before, after) = (tags::recorded(prior), &cx.s.tags);
        if before != *after || steps::adopted_unclaimed(cx) {
            steps::retag(cx, &tags::removed(&before, after)).await?;
        }
        if renamed(prior, planned).is_empty() {
            return Ok(());
        }
        let old = cx.with_settings(Settings {
            trail_name: str_of(prior, "trail_name"),
            bucket_name: str_of(prior, "bucket_name"),
            queue_name: str_of(prior, "queue_name"),
            kms_alias: str_of(prior, "kms_alias"),
            policy_name: str_of(prior, "policy_name"),
            role_name: str_of(prior, "role_name"),
            ..cx.s.clone()
        });
        let retired = steps::retire(cx, &old).await;
        for (summary, detail) in Self::warnings(&old) {
            diags.warning(summary, detail);
        }
        for kept in roles_kept(&old) {
            diags.warning(OLD_ROLE_KEPT, kept.role_on_rename());
        }
        retired
    }

    /// The previous pieces may still exist: state keeps their names so that the next apply
    /// finishes the rename and retires them, instead of forgetting them.
    fn after_failed_update(state: &mut Value, prior: &Value, planned: &Value) {
        let renames = renamed(prior, planned);
        for (name, derived) in RENAMABLE.iter().filter(|(k, _)| renames.contains(k)) {
            for k in std::iter::once(name).chain(derived.iter()) {
                set(state, k, prior.get(k).cloned().unwrap_or(Value::Null));
            }
        }
    }

    /// An error keeps the resource in the state: the kept role still trusts Expel.
    fn after_delete(cx: &Cx, diags: &mut Diagnostics) {
        for kept in roles_kept(cx) {
            diags.error(ROLE_KEPT, kept.role_on_destroy());
        }
    }

    fn plan(&self) -> Option<&dyn Plan> {
        Some(self)
    }

    fn import(&self) -> Option<&dyn Import> {
        Some(self)
    }
}

#[async_trait]
impl Plan for CloudTrailIntegration {
    async fn modify_plan(
        &self,
        ctx: &Ctx<ExpelData>,
        input: &PlanInput<'_>,
        fixes: &Fixes,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        tags::plan(planned, &ctx.data.aws.default_tags);
        let Some((loc, org)) = self.location(ctx, diags).await else {
            return;
        };
        if !input.prior.is_null() && !self.check_pinned(input.prior, &loc, diags) {
            return;
        }
        if !workbench_pin::plan(
            &ctx.data,
            input.prior,
            planned,
            &org,
            REPLACED_WITH_ORGANIZATION,
            diags,
        )
        .await
        {
            return;
        }
        if input.prior.is_null() {
            if let Err(e) = ctx.data.workbench.organization(&org).await {
                let what = if e.status() == Some(404) {
                    "Unknown Workbench organization"
                } else {
                    "Cannot read the Workbench organization"
                };
                diags.error(what, format!("{e}. Check the provider's `organization_id` (or EXPEL_ORGANIZATION_ID): it is the role's external id and the organization the device is registered in."));
                return;
            }
        }
        let block = planned
            .get("existing_trail")
            .filter(|b| !b.is_null())
            .cloned();
        let existing = existing_of(planned);
        if block.as_ref().is_some_and(|b| !b.is_wholly_known()) {
            // Names from other resources: known at apply, and checked then (`open`).
            let bucket = block
                .as_ref()
                .and_then(|b| b.get("bucket_name"))
                .filter(|b| b.is_known())
                .cloned()
                .unwrap_or(Value::unknown());
            set(planned, "bucket_name", bucket);
        } else if let Some(e) = &existing {
            set(planned, "bucket_name", Value::string(e.bucket_name.clone()));
            let changed = input.prior.is_null() || existing_of(input.prior).as_ref() != Some(e);
            if !self.existing_ok(ctx, &loc, e, changed, diags).await {
                return;
            }
        } else if needs_default(input.config, planned, "bucket_name") {
            set(planned, "bucket_name", Value::string(default_bucket(&loc)));
        }
        let known = |k: &str| planned.get(k).and_then(Value::as_str).map(str::to_string);
        if let (Some(logs), Some(bucket)) = (known("access_logging_bucket"), known("bucket_name")) {
            if logs == bucket {
                diags.attr_error(AttrPath::root("access_logging_bucket"), "Access logs into the log bucket itself", format!("`access_logging_bucket` is the log bucket {bucket:?}: its access logs would land next to the CloudTrail logs, and each log object would notify Expel's queue. Name another bucket of yours in the same account and region, or leave it unset."));
                return;
            }
        }
        if needs_default(input.config, planned, "device_location") {
            set(
                planned,
                "device_location",
                Value::string(loc.region.clone()),
            );
        }
        if needs_default(input.config, planned, "external_id") {
            set(planned, "external_id", Value::string(org.clone()));
        }
        if needs_default(input.config, planned, "expel_principals") {
            let p = policy::default_trust_principals(&loc.partition);
            set(
                planned,
                "expel_principals",
                Value::List(p.into_iter().map(Value::string).collect()),
            );
        }
        set(planned, "account_id", Value::string(loc.account_id.clone()));
        set(planned, "region", Value::string(loc.region.clone()));
        set(planned, "partition", Value::string(loc.partition.clone()));
        if Owner::recorded(input.prior).is_none() {
            let o = planned
                .get("name")
                .and_then(Value::as_str)
                .map(|n| Value::string(owner(&loc, &org, n).as_str()));
            set(planned, OWNER_ATTR, o.unwrap_or(Value::unknown()));
        }
        // ARNs follow from names and location: known at plan time.
        let name = |k: &str| planned.get(k).and_then(Value::as_str).map(str::to_string);
        let arns = [
            (
                "bucket_arn",
                name("bucket_name").map(|b| policy::bucket_arn(&loc, &b)),
            ),
            (
                "queue_arn",
                name("queue_name").map(|q| policy::queue_arn(&loc, &q)),
            ),
            (
                "trail_arn",
                name("trail_name").map(|t| policy::trail_arn(&loc, &t)),
            ),
            (
                "policy_arn",
                name("policy_name").map(|p| policy::policy_arn(&loc, &p)),
            ),
            (
                "role_arn",
                name("role_name").map(|r| policy::role_arn(&loc, &r)),
            ),
        ];
        for (k, v) in arns {
            set(planned, k, v.map(Value::string).unwrap_or(Value::unknown()));
        }
        if let Some(e) = existing
            .as_ref()
            .filter(|_| block.as_ref().is_some_and(Value::is_wholly_known))
        {
            // The existing trail is not ours: its ARN only if given; the key is the trail's.
            set(planned, "trail_arn", opt(e.trail_arn.clone()));
            set(planned, "key_arn", opt(e.kms_key_arn.clone()));
            set(planned, "key_id", Value::Null);
        }
        plan_repairs(planned, IDS_OF_PIECE, fixes);
        // A renamed queue is a new queue: its URL is known once it exists.
        if !input.prior.is_null() && renamed(input.prior, planned).contains(&"queue_name") {
            set(planned, "queue_url", Value::unknown());
        }
        if !input.prior.is_null() && planned != input.prior {
            set(planned, "device_status", Value::unknown());
        }
    }
}

#[async_trait]
impl Import for CloudTrailIntegration {
    async fn import(
        &self,
        ctx: &Ctx<ExpelData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let (loc, _org) = self.location(ctx, diags).await?;
        let aws = ctx.data.aws_clients().await;
        match import::find(&ctx.data, aws, id).await {
            Ok(found) => {
                let mut v = import::state(found);
                tags::imported(&mut v, &ctx.data.aws.default_tags);
                set(&mut v, "account_id", Value::string(loc.account_id));
                set(&mut v, "region", Value::string(loc.region));
                set(&mut v, "partition", Value::string(loc.partition));
                Some(v)
            }
            Err(e) => {
                diags.error(
                    "Cannot import the CloudTrail integration",
                    format!("{e}. Import by the Workbench security device id, or by the role name (e.g. ExpelServiceRole) when no device exists yet."),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::support::common::validate_config;
    use crate::resources::support::guided::{needs, Guide};

    /// The errors of a configuration with the guide's defaults and `attr` = `value`.
    fn errors_with(attr: &str, value: Value) -> Vec<(String, String)> {
        let mut config = Value::object([
            ("name", Value::string("Acme CloudTrail")),
            ("trail_name", Value::string("GlobalCloudTrail")),
            ("bucket_name", Value::string("expel-cloudtrail-logs")),
            ("queue_name", Value::string("ExpelMasterCloudTrailNotify")),
            ("kms_alias", Value::string("alias/ExpelCloudTrail")),
            ("policy_name", Value::string("ExpelAPIPolicy")),
            ("role_name", Value::string("ExpelServiceRole")),
            ("role_session_name", Value::string("ExpelCloudTrail")),
        ]);
        set(&mut config, attr, value);
        validate_config(&Guide::new(CloudTrailIntegration), &config)
            .iter()
            .map(|d| {
                let path = d.path.as_ref().map(|p| p.to_string()).unwrap_or_default();
                (path, d.detail.clone())
            })
            .collect()
    }

    #[test]
    fn what_the_security_defaults_turned_on_survives_in_private_state() {
        let j = journal(
            &Value::Null,
            br#"{"rotation_ours":true,"versioning_ours":true,"logging_ours":"acme-logs"}"#,
        );
        assert!(j.rotation_ours && j.versioning_ours);
        assert_eq!(j.logging_ours.as_deref(), Some("acme-logs"));
        // Private state written before these settings (or none): nothing was turned on.
        let j = journal(&Value::Null, b"");
        assert!(!j.rotation_ours && !j.versioning_ours && j.logging_ours.is_none());
    }

    #[test]
    fn the_guide_names_pass_validation() {
        assert_eq!(errors_with("name", Value::string("Acme")), vec![]);
    }

    #[test]
    fn names_aws_would_refuse_fail_validation_naming_the_attribute() {
        for (attr, value, needle) in [
            ("bucket_name", "Expel_Logs", "lowercase"),
            ("bucket_name", "192.168.5.4", "IP address"),
            ("bucket_name", "my..bucket", "two adjacent periods"),
            ("bucket_name", "sthree-logs", "\"sthree-\""),
            ("access_logging_bucket", "Access-Logs", "lowercase"),
            ("queue_name", "ExpelNotify.fifo", "FIFO"),
            ("queue_name", "Expel Notify", "\" \""),
            ("trail_name", "my-_namespace", "\"-_\""),
            ("trail_name", "10.0.0.1", "IP address"),
            ("role_name", "Expel Service Role", "\" \""),
            ("policy_name", "Expel/API", "\"/\""),
            ("role_session_name", "x", "AWS allows 2 to 64"),
            ("kms_alias", "ExpelCloudTrail", "\"alias/\""),
            ("kms_alias", "alias/aws/cloudtrail", "alias/aws/"),
            ("kms_alias", "alias/Expel.Trail", "\".\""),
        ] {
            let errors = errors_with(attr, Value::string(value));
            let [(path, detail)] = errors.as_slice() else {
                panic!("{attr} = {value:?}: {errors:?}")
            };
            assert_eq!(path, attr);
            assert!(
                detail.contains(&format!("`{attr}` = {value:?}")),
                "{detail}"
            );
            assert!(detail.contains(needle), "{attr} = {value:?}: {detail}");
            assert!(detail.contains("Use "), "no remedy: {detail}");
        }
    }

    #[test]
    fn unknown_and_unset_names_pass_untouched() {
        for attr in [
            "bucket_name",
            "queue_name",
            "trail_name",
            "kms_alias",
            "role_name",
        ] {
            assert_eq!(errors_with(attr, Value::unknown()), vec![], "{attr}");
            assert_eq!(errors_with(attr, Value::Null), vec![], "{attr}");
        }
    }

    #[test]
    fn missing_trusted_access_says_how_to_enable_it() {
        let (summary, detail) = trusted_access_missing();
        assert!(summary.contains("trusted access"));
        assert!(detail
            .contains("enable-aws-service-access --service-principal cloudtrail.amazonaws.com"));
        assert!(detail.contains("organization_trail"));
    }

    #[test]
    fn steps_follow_the_guide_order() {
        // AWS enforces: the key and bucket policies before the trail, the queue policy
        // before the bucket notification.
        let trail = needs::<CloudTrailIntegration>(Piece::Trail);
        assert!(trail.contains(&Piece::KmsKey) && trail.contains(&Piece::Bucket));
        let notice = needs::<CloudTrailIntegration>(Piece::BucketNotification);
        assert!(notice.contains(&Piece::Queue));
        // The opt-in names the device, and follows the permission it relies on; it is a
        // setting, not an object: it never makes the integration look gone.
        let remediation = needs::<CloudTrailIntegration>(Piece::AutoRemediation);
        assert!(
            remediation.contains(&Piece::WorkbenchDevice)
                && remediation.contains(&Piece::ApiPolicy)
        );
        assert!(CloudTrailIntegration::TRANSIENT.contains(&Piece::AutoRemediation));
    }

    #[test]
    fn the_auto_remediation_block_switches_the_policy_statement() {
        let with = |block: Value| Value::object([("auto_remediation", block)]);
        let on = Value::object([("deactivate_access_keys", Value::Bool(true))]);
        let off = Value::object([("deactivate_access_keys", Value::Bool(false))]);
        assert!(remediations_of(&with(on)).deactivate_access_keys);
        assert!(!remediations_of(&with(off)).deactivate_access_keys);
        assert!(!remediations_of(&with(Value::Null)).deactivate_access_keys);
    }
}
