//! Import: rebuild the state of an integration from the objects it made, starting from the
//! Workbench security device (id) or, when no device exists yet, from the role (name). The
//! role's ExpelAPIPolicy names the queue, the bucket and the key; the trail is the one
//! writing to that bucket. Everything read must carry our ownership tag.
use serde_json::Value as Json;

use crate::clients::aws::{err, AwsClients, AwsError};
use crate::clients::workbench::SecurityDevice;
use crate::policy::{self, sid};
use crate::resources::config::is_uuid;
use crate::resources::support::ownership::{MARKER_KEY, MARKER_VALUE, OWNER_KEY};
use crate::resources::ExpelData;
use tfplugin::value::Value;

/// What import found, before it becomes a state.
pub struct Found {
    pub device: Option<SecurityDevice>,
    pub role_name: String,
    pub role_session_name: String,
    pub principals: Vec<String>,
    pub external_id: String,
    pub tags: Vec<(String, String)>,
    /// The role's `expel:owner`: the imported instance is that owner from now on (none on a
    /// role made before owners existed: the next apply adds one).
    pub owner: Option<String>,
    pub policy_name: String,
    pub queue_name: String,
    pub bucket_name: String,
    pub key_arn: String,
    pub kms_alias: String,
    pub trail_name: String,
    pub organization_trail: bool,
    pub bucket_key_enabled: bool,
    pub enable_key_rotation: bool,
    pub bucket_versioning: bool,
    pub access_logging_bucket: Option<String>,
    pub retention_seconds: i64,
    /// The bucket is not one this provider made: the integration was attached to an existing
    /// trail (`existing_trail`), with the queue subscribed to this topic, if any.
    pub existing: Option<ExistingFound>,
}

/// What import finds of an integration attached to an existing trail.
pub struct ExistingFound {
    pub sns_topic_arn: Option<String>,
}

fn last_segment(arn: &str, sep: char) -> String {
    arn.rsplit(sep).next().unwrap_or_default().to_string()
}

fn resource_of(doc: &Json, sid: &str) -> Option<String> {
    policy::statements(doc)
        .into_iter()
        .find(|s| s.get("Sid").and_then(Json::as_str) == Some(sid))
        .and_then(|s| match s.get("Resource") {
            Some(Json::String(r)) => Some(r.clone()),
            Some(Json::Array(a)) => a.first().and_then(Json::as_str).map(str::to_string),
            _ => None,
        })
}

fn aws_err(e: AwsError) -> String {
    e.to_string()
}

/// What a role made by this provider says of itself: whom it trusts, with which external id,
/// its tags (the ownership tag aside) and the attached policy carrying our tag.
pub struct RoleParts {
    pub principals: Vec<String>,
    pub external_id: String,
    pub tags: Vec<(String, String)>,
    pub owner: Option<String>,
    pub policy_arn: String,
    pub policy_name: String,
}

/// Reads `role_name` back; an error names what is missing (the role, our tag, our policy).
pub async fn role_parts(aws: &AwsClients, role_name: &str) -> Result<RoleParts, String> {
    let role = aws
        .iam
        .get_role()
        .role_name(role_name)
        .send()
        .await
        .map_err(err("iam", "GetRole"))
        .map_err(aws_err)?;
    let role = role.role.ok_or("GetRole returned no role")?;
    let role_tags = aws
        .iam
        .list_role_tags()
        .role_name(role_name)
        .send()
        .await
        .map_err(err("iam", "ListRoleTags"))
        .map_err(aws_err)?;
    if !role_tags
        .tags()
        .iter()
        .any(|t| t.key() == MARKER_KEY && t.value() == MARKER_VALUE)
    {
        return Err(format!("role {role_name} does not carry the tag {MARKER_KEY}={MARKER_VALUE}: it was not made by this provider"));
    }
    let tags = role_tags
        .tags()
        .iter()
        .filter(|t| t.key() != MARKER_KEY && t.key() != OWNER_KEY)
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let owner = role_tags
        .tags()
        .iter()
        .find(|t| t.key() == OWNER_KEY)
        .map(|t| t.value().to_string());
    let trust = policy::parse_document(role.assume_role_policy_document().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let trust_stmt = policy::statements(&trust)
        .into_iter()
        .find(|s| s.get("Sid").and_then(Json::as_str) == Some(sid::TRUST_EXPEL))
        .cloned()
        .unwrap_or(Json::Null);
    let principals = match trust_stmt.pointer("/Principal/AWS") {
        Some(Json::String(p)) => vec![p.clone()],
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(Json::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![],
    };
    let external_id = trust_stmt
        .pointer("/Condition/StringEquals/sts:ExternalId")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();

    // The attached policy carrying our tag is ExpelAPIPolicy (whatever its name).
    let attached = aws
        .iam
        .list_attached_role_policies()
        .role_name(role_name)
        .send()
        .await
        .map_err(err("iam", "ListAttachedRolePolicies"))
        .map_err(aws_err)?;
    let mut api = None;
    for p in attached.attached_policies() {
        let arn = p.policy_arn().unwrap_or_default();
        let t = aws
            .iam
            .list_policy_tags()
            .policy_arn(arn)
            .send()
            .await
            .map_err(err("iam", "ListPolicyTags"))
            .map_err(aws_err)?;
        if t.tags()
            .iter()
            .any(|t| t.key() == MARKER_KEY && t.value() == MARKER_VALUE)
        {
            api = Some((
                arn.to_string(),
                p.policy_name().unwrap_or_default().to_string(),
            ));
            break;
        }
    }
    let (policy_arn, policy_name) = api
        .ok_or_else(|| format!("role {role_name} has no attached policy made by this provider"))?;
    Ok(RoleParts {
        principals,
        external_id,
        tags,
        owner,
        policy_arn,
        policy_name,
    })
}

pub async fn find(data: &ExpelData, aws: &AwsClients, id: &str) -> Result<Found, String> {
    let (device, role_name) = if is_uuid(id) {
        let d = data
            .workbench
            .device(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("Workbench has no security device {id}"))?;
        let role_arn = d
            .device_spec
            .get("role_arn")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        if role_arn.is_empty() {
            return Err(format!(
                "security device {id} has no role_arn: it is not an AWS CloudTrail device"
            ));
        }
        (Some(d), last_segment(&role_arn, '/'))
    } else {
        (None, id.to_string())
    };

    let RoleParts {
        principals,
        external_id,
        tags,
        owner,
        policy_arn,
        policy_name,
    } = role_parts(aws, &role_name).await?;
    let pol = aws
        .iam
        .get_policy()
        .policy_arn(&policy_arn)
        .send()
        .await
        .map_err(err("iam", "GetPolicy"))
        .map_err(aws_err)?;
    let version = pol
        .policy()
        .and_then(|p| p.default_version_id())
        .unwrap_or("v1")
        .to_string();
    let v = aws
        .iam
        .get_policy_version()
        .policy_arn(&policy_arn)
        .version_id(&version)
        .send()
        .await
        .map_err(err("iam", "GetPolicyVersion"))
        .map_err(aws_err)?;
    let doc = policy::parse_document(
        v.policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    let queue_arn =
        resource_of(&doc, sid::API_READ_QUEUE).ok_or("ExpelAPIPolicy names no queue")?;
    let logs = resource_of(&doc, sid::API_READ_LOGS).ok_or("ExpelAPIPolicy names no log bucket")?;
    let key_arn = resource_of(&doc, sid::API_DECRYPT_LOGS);
    let queue_name = last_segment(&queue_arn, ':');
    let bucket_name = logs
        .trim_end_matches("/*")
        .rsplit(":::")
        .next()
        .unwrap_or_default()
        .to_string();
    let url = aws
        .sqs
        .get_queue_url()
        .queue_name(&queue_name)
        .send()
        .await
        .map_err(err("sqs", "GetQueueUrl"))
        .map_err(aws_err)?;
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url.queue_url().unwrap_or_default())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .map_err(err("sqs", "GetQueueAttributes"))
        .map_err(aws_err)?;
    let attr = |name: aws_sdk_sqs::types::QueueAttributeName| {
        attrs.attributes().and_then(|a| a.get(&name)).cloned()
    };
    let retention_seconds = attr(aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod)
        .and_then(|r| r.parse().ok())
        .unwrap_or(604800);
    let role_session_name = device
        .as_ref()
        .and_then(|d| d.device_spec.get("role_session_name"))
        .and_then(Json::as_str)
        .unwrap_or("ExpelCloudTrail")
        .to_string();
    let base = Found {
        role_session_name,
        device,
        role_name,
        principals,
        external_id,
        tags,
        owner,
        policy_name,
        queue_name,
        bucket_name: bucket_name.clone(),
        key_arn: key_arn.clone().unwrap_or_default(),
        kms_alias: "alias/ExpelCloudTrail".into(),
        trail_name: "GlobalCloudTrail".into(),
        organization_trail: false,
        bucket_key_enabled: true,
        enable_key_rotation: true,
        bucket_versioning: true,
        access_logging_bucket: None,
        retention_seconds,
        existing: None,
    };
    // A bucket without our marker is an existing trail's: the integration was attached to it,
    // and the trail, bucket and key settings are not ours to read back.
    if !bucket_is_ours(aws, &bucket_name).await? {
        let topic = attr(aws_sdk_sqs::types::QueueAttributeName::Policy)
            .and_then(|p| policy::parse_document(&p).ok())
            .and_then(|doc| {
                policy::statements(&doc)
                    .into_iter()
                    .find(|s| s.get("Sid").and_then(Json::as_str) == Some(sid::QUEUE_FROM_TOPIC))
                    .and_then(|s| s.pointer("/Condition/ArnEquals/aws:SourceArn").cloned())
            })
            .and_then(|t| t.as_str().map(str::to_string));
        return Ok(Found {
            existing: Some(ExistingFound {
                sns_topic_arn: topic,
            }),
            ..base
        });
    }
    let key_arn = key_arn.ok_or("ExpelAPIPolicy names no key")?;

    let aliases = aws
        .kms
        .list_aliases()
        .key_id(&key_arn)
        .send()
        .await
        .map_err(err("kms", "ListAliases"))
        .map_err(aws_err)?;
    let kms_alias = aliases
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name())
        .find(|a| !a.starts_with("alias/aws/"))
        .unwrap_or("alias/ExpelCloudTrail")
        .to_string();
    let trails = aws
        .cloudtrail
        .describe_trails()
        .send()
        .await
        .map_err(err("cloudtrail", "DescribeTrails"))
        .map_err(aws_err)?;
    let trail = trails
        .trail_list()
        .iter()
        .find(|t| t.s3_bucket_name() == Some(bucket_name.as_str()))
        .ok_or_else(|| format!("no trail writes to {bucket_name}"))?;
    let enc = aws
        .s3
        .get_bucket_encryption()
        .bucket(&bucket_name)
        .send()
        .await
        .map_err(err("s3", "GetBucketEncryption"))
        .map_err(aws_err)?;
    let bucket_key_enabled = enc
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.bucket_key_enabled())
        .unwrap_or(false);
    let enable_key_rotation = aws
        .kms
        .get_key_rotation_status()
        .key_id(&key_arn)
        .send()
        .await
        .map_err(err("kms", "GetKeyRotationStatus"))
        .map_err(aws_err)?
        .key_rotation_enabled();
    let bucket_versioning = aws
        .s3
        .get_bucket_versioning()
        .bucket(&bucket_name)
        .send()
        .await
        .map_err(err("s3", "GetBucketVersioning"))
        .map_err(aws_err)?
        .status()
        .is_some_and(|s| s.as_str() == "Enabled");
    let access_logging_bucket = aws
        .s3
        .get_bucket_logging()
        .bucket(&bucket_name)
        .send()
        .await
        .map_err(err("s3", "GetBucketLogging"))
        .map_err(aws_err)?
        .logging_enabled()
        .map(|l| l.target_bucket().to_string());
    Ok(Found {
        key_arn,
        kms_alias,
        trail_name: trail.name().unwrap_or_default().to_string(),
        organization_trail: trail.is_organization_trail().unwrap_or(false),
        bucket_key_enabled,
        enable_key_rotation,
        bucket_versioning,
        access_logging_bucket,
        ..base
    })
}

/// Whether the log bucket carries our marker (this provider made it).
async fn bucket_is_ours(aws: &AwsClients, bucket: &str) -> Result<bool, String> {
    match aws
        .s3
        .get_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .map_err(err("s3", "GetBucketTagging"))
    {
        Ok(t) => Ok(t
            .tag_set()
            .iter()
            .any(|t| t.key() == MARKER_KEY && t.value() == MARKER_VALUE)),
        // NoSuchTagSet: a bucket without tags is not ours.
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(aws_err(e)),
    }
}

/// The state import hands to Read: every configurable attribute as found (client-only
/// settings at their defaults, so that a following plan is empty), ids filled by Read.
pub fn state(f: Found) -> Value {
    let s = Value::string;
    let bucket = f.bucket_name.clone();
    let (id, name, location, slug) = match &f.device {
        Some(d) => (
            s(d.id.clone()),
            s(d.name.clone()),
            s(d.location.clone()),
            s(d.plugin_slug.clone()),
        ),
        None => (Value::Null, Value::Null, Value::Null, Value::string("aws")),
    };
    let tags = if f.tags.is_empty() {
        Value::Null
    } else {
        Value::Map(f.tags.into_iter().map(|(k, v)| (k, s(v))).collect())
    };
    Value::object([
        ("id", id.clone()),
        ("security_device_id", id),
        ("name", name),
        ("device_location", location),
        ("plugin_slug", slug),
        ("trail_name", s(f.trail_name)),
        ("bucket_name", s(f.bucket_name.clone())),
        ("queue_name", s(f.queue_name)),
        ("kms_alias", s(f.kms_alias)),
        ("policy_name", s(f.policy_name)),
        ("role_name", s(f.role_name)),
        ("role_session_name", s(f.role_session_name)),
        (
            "expel_principals",
            Value::List(f.principals.into_iter().map(s).collect()),
        ),
        ("external_id", s(f.external_id)),
        ("organization_trail", Value::Bool(f.organization_trail)),
        ("bucket_key_enabled", Value::Bool(f.bucket_key_enabled)),
        ("enable_key_rotation", Value::Bool(f.enable_key_rotation)),
        ("bucket_versioning", Value::Bool(f.bucket_versioning)),
        (
            "access_logging_bucket",
            f.access_logging_bucket.map(s).unwrap_or(Value::Null),
        ),
        (
            "message_retention_seconds",
            Value::from(f.retention_seconds),
        ),
        ("tags", tags),
        (
            crate::resources::support::ownership::OWNER_ATTR,
            f.owner.map(s).unwrap_or(Value::Null),
        ),
        ("verify", Value::Bool(true)),
        ("wait_for_healthy", Value::Bool(false)),
        ("force_destroy", Value::Bool(false)),
        ("key_deletion_window_days", Value::from(30i64)),
        (
            "key_arn",
            if f.key_arn.is_empty() {
                Value::Null
            } else {
                s(f.key_arn.clone())
            },
        ),
        ("drift", Value::Map(Default::default())),
        (
            "existing_trail",
            match f.existing {
                None => Value::Null,
                // `bucket_account_id` and `trail_arn` are checks of the configuration, not
                // found in AWS: the first plan records them in place.
                Some(e) => Value::object([
                    ("bucket_name", s(bucket)),
                    ("bucket_account_id", Value::Null),
                    (
                        "kms_key_arn",
                        if f.key_arn.is_empty() {
                            Value::Null
                        } else {
                            s(f.key_arn)
                        },
                    ),
                    (
                        "sns_topic_arn",
                        e.sns_topic_arn.map(s).unwrap_or(Value::Null),
                    ),
                    ("trail_arn", Value::Null),
                ]),
            },
        ),
    ])
}
