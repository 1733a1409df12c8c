//! An existing trail (`existing_trail`, Control Tower's among them): its bucket, key and trail
//! stay as they are. What the integration adds to them is ours alone and removed on destroy:
//! our configuration in the bucket's notifications (or our queue's subscription to the topic
//! the bucket already publishes to) and our statement in the key's policy.
use async_trait::async_trait;
use serde_json::Value as Json;

use super::{Cause, Cx, Existing, Piece};
use crate::clients::aws::{err, AwsClients};
use crate::engine::{Observed, Problem, Step, StepError};
use crate::policy::{self, parse_arn, Location, PolicyKind};

/// The event our notification asks for: every object the trail writes.
pub(super) const OBJECT_CREATED: &str = "s3:ObjectCreated:*";

/// Whether an S3 event type overlaps ours: any object-create event does (S3 refuses two
/// configurations of a bucket that share an event type unless their key filters are
/// disjoint, and ours has no filter).
fn creates_objects(event: &str) -> bool {
    event.starts_with("s3:ObjectCreated:")
}

/// The other configurations of the bucket's notifications that share an event type with
/// ours, in words: S3 accepts no second configuration for them ("Configurations overlap").
pub(super) fn overlapping(
    conf: &aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
    our_id: &str,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut check =
        |kind: &str, id: Option<&str>, target: &str, events: &[aws_sdk_s3::types::Event]| {
            if id == Some(our_id) {
                return;
            }
            if let Some(e) = events.iter().find(|e| creates_objects(e.as_str())) {
                found.push(format!(
                    "{kind} configuration {} to {target} ({})",
                    id.map(|i| format!("{i:?}"))
                        .unwrap_or_else(|| "without id".into()),
                    e.as_str()
                ));
            }
        };
    for q in conf.queue_configurations() {
        check("queue", q.id(), q.queue_arn(), q.events());
    }
    for t in conf.topic_configurations() {
        check("topic", t.id(), t.topic_arn(), t.events());
    }
    for l in conf.lambda_function_configurations() {
        check("Lambda", l.id(), l.lambda_function_arn(), l.events());
    }
    found
}

/// Whether the bucket publishes its object-create events to `topic` (with or without a key
/// filter: a trail writes under `AWSLogs/`).
fn publishes_to(
    conf: &aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
    topic: &str,
) -> bool {
    conf.topic_configurations()
        .iter()
        .any(|t| t.topic_arn() == topic && t.events().iter().any(|e| creates_objects(e.as_str())))
}

/// A problem of the configuration found before anything is written: the attribute of
/// `existing_trail` it is about, a summary and what to do.
#[derive(Debug, PartialEq)]
pub struct Finding {
    pub attr: &'static str,
    pub summary: &'static str,
    pub detail: String,
    /// Said, but not in the way: what could not be checked.
    pub warning: bool,
}

fn finding(attr: &'static str, summary: &'static str, detail: String) -> Finding {
    Finding {
        attr,
        summary,
        detail,
        warning: false,
    }
}

/// What can be checked of `existing_trail` without AWS: each ARN in the provider's partition,
/// the key and topic in its region, the bucket in its account.
pub fn offline_findings(e: &Existing, loc: &Location) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(acct) = &e.bucket_account_id {
        if acct != &loc.account_id {
            out.push(finding("bucket_account_id", "The log bucket is in another account", format!(
                "`existing_trail.bucket_account_id` = {acct:?}, but the provider's credentials are for account {}. \
                 The queue, the notification and ExpelServiceRole are made in the bucket's account (S3 notifies only a queue or topic of its own region, and the role reads the logs there): \
                 configure this resource's provider for account {acct} (for Control Tower, the Log Archive account, e.g. an `aws.assume_role` into it), \
                 see the guide \"Existing trails and Control Tower\".",
                loc.account_id
            )));
        }
    }
    let arns = [
        ("kms_key_arn", e.kms_key_arn.as_deref(), "kms"),
        ("sns_topic_arn", e.sns_topic_arn.as_deref(), "sns"),
        ("trail_arn", e.trail_arn.as_deref(), "cloudtrail"),
    ];
    for (attr, arn, service) in arns {
        let Some(arn) = arn else { continue };
        let Some(p) = parse_arn(arn).filter(|p| p.service == service) else {
            out.push(finding(attr, "Not an ARN of the right kind", format!(
                "`existing_trail.{attr}` = {arn:?} is not an ARN of {service} (arn:<partition>:{service}:<region>:<account>:...). Copy the ARN from the console or the CLI."
            )));
            continue;
        };
        if p.partition != loc.partition {
            out.push(finding(attr, "An ARN of another AWS partition", format!(
                "`existing_trail.{attr}` = {arn:?} is in partition {:?}, but the provider's credentials are for partition {:?}. \
                 A trail's bucket, key and topic are in the partition of the account the integration is made in: configure the provider for that partition's account, or correct the ARN.",
                p.partition, loc.partition
            )));
            continue;
        }
        if service != "cloudtrail" && p.region != loc.region {
            let why = if service == "kms" {
                "S3 and CloudTrail use a KMS key of the bucket's region only"
            } else {
                "S3 publishes only to a topic of the bucket's region"
            };
            out.push(finding(attr, "An ARN of another region", format!(
                "`existing_trail.{attr}` = {arn:?} is in region {:?}, but the provider (and the log bucket) are in {:?}: {why}. \
                 Configure the provider's region as the bucket's, or correct the ARN.",
                p.region, loc.region
            )));
        }
    }
    out
}

/// What AWS says of `existing_trail`, before anything is written: the bucket exists in the
/// provider's region; with `sns_topic_arn`, the bucket publishes to it; without, no other
/// configuration of the bucket's notifications already takes its object-create events;
/// with `trail_arn`, that trail writes to the bucket (and with the key, if both say one).
pub async fn findings(aws: &AwsClients, loc: &Location, e: &Existing) -> Vec<Finding> {
    let bucket = &e.bucket_name;
    let located = aws
        .s3
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(err("s3", "GetBucketLocation"));
    match located {
        Ok(l) => {
            // S3 answers no constraint for us-east-1 (S3 API reference, GetBucketLocation).
            let region = l
                .location_constraint()
                .map(|c| c.as_str().to_string())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "us-east-1".into());
            if region != loc.region {
                return vec![finding("bucket_name", "The log bucket is in another region", format!(
                    "`existing_trail.bucket_name` = {bucket:?} is in region {region:?}, but the provider is configured for {:?}. S3 notifies only a queue or topic of the bucket's own region: set the provider's region to {region:?}.",
                    loc.region
                ))];
            }
        }
        Err(e) if e.is_not_found() => {
            return vec![finding("bucket_name", "No such log bucket", format!(
                "`existing_trail.bucket_name` = {bucket:?}: no such bucket. Name the bucket your trail writes to (for Control Tower, `aws-controltower-logs-<Log Archive account>-<region>`)."
            ))];
        }
        Err(e) => {
            return vec![finding("bucket_name", "Cannot read the log bucket", format!(
                "`existing_trail.bucket_name` = {bucket:?}: {e}. The provider's credentials need s3:GetBucketLocation and s3:GetBucketNotification on it."
            ))];
        }
    }
    let mut out = Vec::new();
    match aws
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(err("s3", "GetBucketNotificationConfiguration"))
    {
        Ok(conf) => match &e.sns_topic_arn {
            Some(topic) if !publishes_to(&conf, topic) => out.push(finding("sns_topic_arn", "The log bucket does not publish to this topic", format!(
                "`existing_trail.sns_topic_arn` = {topic:?}, but the notifications of bucket {bucket:?} send no object-create events to it. \
                 Name the topic the bucket already publishes to (its Properties > Event notifications), or leave `sns_topic_arn` unset to have the queue notified directly."
            ))),
            Some(_) => {}
            None => {
                let others = overlapping(&conf, super::notice::NOTIFICATION_ID);
                if !others.is_empty() {
                    out.push(finding("sns_topic_arn", "The log bucket already notifies another consumer of new objects", format!(
                        "Bucket {bucket:?} already has {}. S3 allows one configuration per event type and key prefix, so ours cannot be added beside it, and replacing it would cut the other consumer off. \
                         Set `existing_trail.sns_topic_arn` to a topic the bucket publishes to (if that configuration is a topic) so that the queue subscribes to it; \
                         or have the bucket's owner move that consumer to an SNS topic (fan-out) first.",
                        others.join("; ")
                    )));
                }
            }
        },
        Err(e) => out.push(finding("bucket_name", "Cannot read the log bucket's notifications", format!(
            "`existing_trail.bucket_name` = {bucket:?}: {e}. The provider's credentials need s3:GetBucketNotification on it."
        ))),
    }
    if let Some(trail) = &e.trail_arn {
        match aws
            .cloudtrail
            .get_trail()
            .name(trail)
            .send()
            .await
            .map_err(err("cloudtrail", "GetTrail"))
        {
            Ok(t) => {
                if let Some(t) = t.trail() {
                    let writes_to = t.s3_bucket_name().unwrap_or_default();
                    if writes_to != bucket {
                        out.push(finding("trail_arn", "The trail writes to another bucket", format!(
                            "`existing_trail.trail_arn` = {trail:?} writes its logs to bucket {writes_to:?}, not to `existing_trail.bucket_name` = {bucket:?}. Name the trail's own bucket, or leave `trail_arn` unset."
                        )));
                    }
                    if let (Some(want), Some(have)) = (&e.kms_key_arn, t.kms_key_id()) {
                        if want != have {
                            out.push(finding("kms_key_arn", "The trail encrypts with another key", format!(
                                "`existing_trail.kms_key_arn` = {want:?}, but trail {trail:?} encrypts its logs with {have:?}. Name the trail's key (its KmsKeyId)."
                            )));
                        }
                    }
                }
            }
            // A trail of this account must be found. An organization trail of the management
            // account is visible in member accounts in AWS (CloudTrail user guide, "Creating a
            // trail for an organization": member accounts can see it, not change it), but
            // not to every principal, and not in moto: `trail_arn` is for validation only,
            // so an unseen trail of another account is said, not refused.
            Err(e) if e.is_not_found() => {
                let elsewhere = parse_arn(trail).is_some_and(|p| p.account != loc.account_id);
                out.push(Finding {
                    warning: elsewhere,
                    ..finding("trail_arn", if elsewhere { "The existing trail could not be checked" } else { "No such trail" }, format!(
                        "`existing_trail.trail_arn` = {trail:?}: CloudTrail finds no such trail from account {}. {}",
                        loc.account_id,
                        if elsewhere {
                            "Its bucket and key are not checked against these settings."
                        } else {
                            "Copy the trail's ARN (an organization trail's ARN names the management account), or leave `trail_arn` unset."
                        }
                    ))
                })
            }
            Err(_) => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The queue's subscription to the bucket's topic (`existing_trail.sns_topic_arn`).

/// Our queue's subscription to the topic, if any.
pub(super) async fn subscription(
    cx: &Cx,
    step: &'static str,
    topic: &str,
) -> Result<Option<String>, StepError> {
    let queue = cx.queue_arn();
    let mut token: Option<String> = None;
    loop {
        let page = cx
            .aws_opt(step, || async {
                cx.aws
                    .sns
                    .list_subscriptions_by_topic()
                    .topic_arn(topic)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(err("sns", "ListSubscriptionsByTopic"))
            })
            .await?;
        let Some(page) = page else {
            return Ok(None);
        };
        if let Some(s) = page
            .subscriptions()
            .iter()
            .find(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(queue.as_str()))
        {
            return Ok(s.subscription_arn().map(str::to_string));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
}

pub(super) async fn subscribe(cx: &Cx, step: &'static str, topic: &str) -> Result<(), StepError> {
    if subscription(cx, step, topic).await?.is_some() {
        return Ok(());
    }
    let queue = cx.queue_arn();
    cx.aws(step, || async {
        cx.aws
            .sns
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(&queue)
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(err("sns", "Subscribe"))
    })
    .await?;
    Ok(())
}

pub(super) async fn unsubscribe(cx: &Cx, step: &'static str, topic: &str) -> Result<(), StepError> {
    let Some(arn) = subscription(cx, step, topic).await? else {
        return Ok(());
    };
    cx.aws_opt(step, || async {
        cx.aws
            .sns
            .unsubscribe()
            .subscription_arn(&arn)
            .send()
            .await
            .map_err(err("sns", "Unsubscribe"))
    })
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------

/// Our statement in the existing trail's KMS key policy: ExpelServiceRole may decrypt the log
/// files. Only when the key is in the integration's account (KMS lets only the key's own
/// account read or write its policy); a key of another account is a warning that says what
/// its owner adds. Without `existing_trail`, nothing (the key the resource makes grants
/// decryption through ExpelAPIPolicy and the key policy's root statement).
pub struct KeyAccess;
const KEY_ACCESS: &str =
    "Existing trail: our statement in the KMS key policy (ExpelServiceRole may decrypt the logs)";

impl KeyAccess {
    /// The existing key, when its policy is ours to add to.
    fn key(cx: &Cx) -> Option<&str> {
        let arn = cx.s.existing.as_ref()?.kms_key_arn.as_deref()?;
        let p = parse_arn(arn)?;
        if p.account == cx.loc.account_id {
            Some(arn)
        } else {
            cx.warn(
                "The existing trail's KMS key is in another account",
                format!(
                    "Key {arn} belongs to account {}: only that account can change its policy. ExpelAPIPolicy grants kms:Decrypt on it; \
                     the key's policy must also allow it. In account {}, add this statement to the key's policy: {}",
                    p.account,
                    p.account,
                    policy::render(&policy::statements(&Self::ours(cx))[0].clone())
                ),
            );
            None
        }
    }
    fn ours(cx: &Cx) -> Json {
        policy::existing_key_statement(&cx.role_arn())
    }
    async fn live(&self, cx: &Cx, key: &str) -> Result<Option<String>, StepError> {
        Ok(cx
            .aws_opt(KEY_ACCESS, || cx.get_key_policy(key))
            .await?
            .flatten())
    }
    async fn put(&self, cx: &Cx, key: &str, doc: String) -> Result<(), StepError> {
        cx.aws(KEY_ACCESS, || cx.put_key_policy(key, &doc)).await
    }
}

#[async_trait]
impl Step<Cx> for KeyAccess {
    fn id(&self) -> Piece {
        Piece::KeyAccess
    }
    fn title(&self) -> &'static str {
        KEY_ACCESS
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::ServiceRole]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        self.repair(cx, &[]).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let Some(key) = Self::key(cx) else {
            return Ok(Observed::Present(Vec::new()));
        };
        match self.live(cx, key).await? {
            // The key is not ours: its absence is the existing trail's problem, said below.
            None => Ok(Observed::differs(vec![format!(
                "the existing trail's KMS key {key} does not exist (any more)"
            )])),
            Some(live) => Ok(Observed::differs(policy::drift(
                "existing key policy",
                &Self::ours(cx),
                &live,
            ))),
        }
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        let Some(key) = Self::key(cx) else {
            return Ok(());
        };
        let Some(live) = self.live(cx, key).await? else {
            return Err(StepError::new(
                KEY_ACCESS,
                format!("the existing trail's KMS key {key} does not exist: correct `existing_trail.kms_key_arn`"),
            ));
        };
        // Never written without the live policy: it holds the key's owners' grants.
        let doc = policy::merged_for_write(&Self::ours(cx), Some(&live), PolicyKind::Key)
            .map_err(|e| StepError::caused_by(KEY_ACCESS, e))?;
        self.put(cx, key, doc).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(key) = Self::key(cx) else {
            return Ok(());
        };
        let Some(live) = self.live(cx, key).await? else {
            return Ok(());
        };
        let ours_there = policy::parse_document(&live).is_ok_and(|doc| {
            policy::statements(&doc).iter().any(|s| {
                s.get("Sid").and_then(Json::as_str) == Some(policy::sid::KEY_EXPEL_DECRYPT)
            })
        });
        if !ours_there {
            return Ok(());
        }
        match policy::without_ours(&Self::ours(cx), &live)
            .map_err(|e| StepError::caused_by(KEY_ACCESS, e))?
        {
            Some(rest) => self.put(cx, key, rest).await,
            // A key policy cannot be empty; one with only our statement is left alone, said.
            None => {
                cx.warn(
                    "Our statement is the existing key's only one",
                    format!("The policy of key {key} holds only our statement; KMS refuses an empty key policy, so it is left in place. Remove it with the key's owner."),
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput as Conf;
    use aws_sdk_s3::types::{Event, QueueConfiguration, TopicConfiguration};

    fn loc() -> Location {
        Location {
            partition: "aws".into(),
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
        }
    }

    fn existing() -> Existing {
        Existing {
            bucket_name: "aws-controltower-logs-111111111111-us-east-1".into(),
            bucket_account_id: None,
            kms_key_arn: None,
            sns_topic_arn: None,
            trail_arn: None,
        }
    }

    fn queue(id: &str, event: &str) -> QueueConfiguration {
        QueueConfiguration::builder()
            .id(id)
            .queue_arn("arn:aws:sqs:us-east-1:111111111111:q")
            .events(Event::from(event))
            .build()
            .unwrap()
    }

    #[test]
    fn only_other_object_create_configurations_overlap_ours() {
        let conf = Conf::builder()
            .queue_configurations(queue("ExpelNotifyQueue", OBJECT_CREATED))
            .queue_configurations(queue("deletes", "s3:ObjectRemoved:*"))
            .build();
        assert!(overlapping(&conf, "ExpelNotifyQueue").is_empty());
        let topic = "arn:aws:sns:us-east-1:111111111111:logs";
        let conf = Conf::builder()
            .queue_configurations(queue("siem", "s3:ObjectCreated:Put"))
            .topic_configurations(
                TopicConfiguration::builder()
                    .topic_arn(topic)
                    .events(Event::from(OBJECT_CREATED))
                    .build()
                    .unwrap(),
            )
            .build();
        let found = overlapping(&conf, "ExpelNotifyQueue");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("\"siem\"") && found[1].contains("without id"));
        assert!(publishes_to(&conf, topic));
        assert!(!publishes_to(
            &conf,
            "arn:aws:sns:us-east-1:111111111111:other"
        ));
    }

    #[test]
    fn arns_of_another_partition_region_or_kind_and_another_account_are_findings() {
        assert_eq!(offline_findings(&existing(), &loc()), vec![]);
        let cases = [
            (
                Existing {
                    kms_key_arn: Some("arn:aws-us-gov:kms:us-east-1:111111111111:key/k".into()),
                    ..existing()
                },
                "kms_key_arn",
                "partition",
            ),
            (
                Existing {
                    kms_key_arn: Some("arn:aws:kms:eu-west-1:111111111111:key/k".into()),
                    ..existing()
                },
                "kms_key_arn",
                "region",
            ),
            (
                Existing {
                    sns_topic_arn: Some("arn:aws:sqs:us-east-1:111111111111:q".into()),
                    ..existing()
                },
                "sns_topic_arn",
                "not an ARN of sns",
            ),
            (
                Existing {
                    bucket_account_id: Some("222222222222".into()),
                    ..existing()
                },
                "bucket_account_id",
                "account 222222222222",
            ),
        ];
        for (e, attr, words) in cases {
            let found = offline_findings(&e, &loc());
            assert_eq!(found.len(), 1, "{e:?}: {found:?}");
            assert_eq!(found[0].attr, attr);
            assert!(found[0].detail.contains(words), "{}", found[0].detail);
            assert!(found[0]
                .detail
                .contains(&format!("`existing_trail.{attr}`")));
        }
        // A trail of another region is fine: organization trails are multi-region.
        let e = Existing {
            trail_arn: Some("arn:aws:cloudtrail:eu-west-1:222222222222:trail/t".into()),
            ..existing()
        };
        assert_eq!(offline_findings(&e, &loc()), vec![]);
    }
}
