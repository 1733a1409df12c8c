//! The tags of the integration's AWS objects (`support::tags`): each tagged piece reads and
//! writes its object's tags, and `retag` brings every object to the configured tags after an
//! update, removing the keys the configuration dropped. Others' tags are left alone.
use async_trait::async_trait;

use super::api_policy::POLICY;
use super::bucket::BUCKET;
use super::kms_key::KEY;
use super::queue::QUEUE;
use super::service_role::ROLE;
use super::trail::TRAIL;
use super::{ApiPolicy, Cause, Cx, KmsKey, NotifyQueue, ServiceRole, Trail, TrailBucket};
use crate::clients::aws::err;
use crate::engine::StepError;
use crate::policy;
use crate::resources::support::iam::tag_map;
use crate::resources::support::tags::{TagContext, TaggedPiece, Tags};

impl TagContext for Cx {
    fn wanted_tags(&self) -> &Tags {
        &self.s.tags
    }
    fn tag_cause() -> Cause {
        Cause::Tags
    }
}

const TAGS: &str = "Tags of every AWS object of the integration";

fn key_id(cx: &Cx) -> Result<String, StepError> {
    cx.j()
        .key_id
        .clone()
        .ok_or_else(|| StepError::new(KEY, "no key recorded"))
}

fn queue_url(cx: &Cx) -> Result<String, StepError> {
    cx.j()
        .queue_url
        .clone()
        .ok_or_else(|| StepError::new(QUEUE, "no queue recorded"))
}

/// The object's tags (the wanted ones and the ownership tags) as KMS takes them.
pub(super) fn kms_tags(cx: &Cx) -> Vec<aws_sdk_kms::types::Tag> {
    cx.tags()
        .into_iter()
        .filter_map(|(k, v)| {
            aws_sdk_kms::types::Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .ok()
        })
        .collect()
}

/// The object's tags as CloudTrail takes them.
pub(super) fn trail_tags(cx: &Cx) -> Vec<aws_sdk_cloudtrail::types::Tag> {
    cx.tags()
        .into_iter()
        .filter_map(|(k, v)| {
            aws_sdk_cloudtrail::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

/// Replaces the bucket's tag set by `set` (S3 has no call that adds tags).
pub(super) async fn put_bucket_tags(
    cx: &Cx,
    step: &'static str,
    set: impl IntoIterator<Item = (String, String)>,
) -> Result<(), StepError> {
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .set_tag_set(Some(
            set.into_iter()
                .filter_map(|(k, v)| {
                    aws_sdk_s3::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .ok()
                })
                .collect(),
        ))
        .build()
        .map_err(|e| StepError::caused_by(step, e))?;
    cx.aws(step, || async {
        cx.aws
            .s3
            .put_bucket_tagging()
            .bucket(&cx.s.bucket_name)
            .tagging(tagging.clone())
            .send()
            .await
            .map_err(err("s3", "PutBucketTagging"))
    })
    .await?;
    Ok(())
}

async fn tag_key(cx: &Cx, step: &'static str, removed: &[String]) -> Result<(), StepError> {
    let k = key_id(cx)?;
    let t = kms_tags(cx);
    cx.aws(step, || async {
        cx.aws
            .kms
            .tag_resource()
            .key_id(&k)
            .set_tags(Some(t.clone()))
            .send()
            .await
            .map_err(err("kms", "TagResource"))
    })
    .await?;
    if !removed.is_empty() {
        cx.aws(step, || async {
            cx.aws
                .kms
                .untag_resource()
                .key_id(&k)
                .set_tag_keys(Some(removed.to_vec()))
                .send()
                .await
                .map_err(err("kms", "UntagResource"))
        })
        .await?;
    }
    Ok(())
}

/// S3 replaces a bucket's whole tag set: ours are merged into what is there.
async fn tag_bucket(cx: &Cx, step: &'static str, removed: &[String]) -> Result<(), StepError> {
    let mut set = TrailBucket.tags_of(cx).await?.unwrap_or_default();
    for k in removed {
        set.remove(k);
    }
    set.extend(cx.tags());
    put_bucket_tags(cx, step, set).await
}

async fn tag_queue(cx: &Cx, step: &'static str, removed: &[String]) -> Result<(), StepError> {
    let url = queue_url(cx)?;
    let map: std::collections::HashMap<String, String> = cx.tags().into_iter().collect();
    cx.aws(step, || async {
        cx.aws
            .sqs
            .tag_queue()
            .queue_url(&url)
            .set_tags(Some(map.clone()))
            .send()
            .await
            .map_err(err("sqs", "TagQueue"))
    })
    .await?;
    if !removed.is_empty() {
        cx.aws(step, || async {
            cx.aws
                .sqs
                .untag_queue()
                .queue_url(&url)
                .set_tag_keys(Some(removed.to_vec()))
                .send()
                .await
                .map_err(err("sqs", "UntagQueue"))
        })
        .await?;
    }
    Ok(())
}

async fn tag_trail(cx: &Cx, step: &'static str, removed: &[String]) -> Result<(), StepError> {
    let trail = policy::trail_arn(&cx.loc, &cx.s.trail_name);
    let ct = trail_tags(cx);
    cx.aws(step, || async {
        cx.aws
            .cloudtrail
            .add_tags()
            .resource_id(&trail)
            .set_tags_list(Some(ct.clone()))
            .send()
            .await
            .map_err(err("cloudtrail", "AddTags"))
    })
    .await?;
    if !removed.is_empty() {
        let gone: Vec<_> = removed
            .iter()
            .filter_map(|k| {
                aws_sdk_cloudtrail::types::Tag::builder()
                    .key(k)
                    .build()
                    .ok()
            })
            .collect();
        cx.aws(step, || async {
            cx.aws
                .cloudtrail
                .remove_tags()
                .resource_id(&trail)
                .set_tags_list(Some(gone.clone()))
                .send()
                .await
                .map_err(err("cloudtrail", "RemoveTags"))
        })
        .await?;
    }
    Ok(())
}

/// Applies the configured tags to every AWS object (the ownership tags stay) and removes
/// the keys the configuration dropped. Tags others add are left alone, and so are an
/// existing trail's bucket, trail and key.
pub async fn retag(cx: &Cx, removed: &[String]) -> Result<(), StepError> {
    if cx.j().key_id.is_some() {
        tag_key(cx, TAGS, removed).await?;
    }
    if cx.j().queue_url.is_some() {
        tag_queue(cx, TAGS, removed).await?;
    }
    let iam = cx.iam(TAGS);
    iam.retag_policy(&cx.policy_arn(), &cx.iam_tags(), removed)
        .await?;
    iam.retag_role(&cx.s.role_name, &cx.iam_tags(), removed)
        .await?;
    if cx.s.existing.is_some() {
        return Ok(());
    }
    tag_bucket(cx, TAGS, removed).await?;
    tag_trail(cx, TAGS, removed).await
}

/// Beside an existing trail, its key, bucket and trail are its owner's: never tagged here.
fn ours(cx: &Cx) -> bool {
    cx.s.existing.is_none()
}

#[async_trait]
impl TaggedPiece<Cx> for KmsKey {
    fn tagged(&self, cx: &Cx) -> bool {
        ours(cx)
    }
    async fn live_tags(&self, cx: &Cx) -> Result<Tags, StepError> {
        self.tags_of(cx, &key_id(cx)?).await
    }
    async fn put_tags(&self, cx: &Cx) -> Result<(), StepError> {
        tag_key(cx, KEY, &[]).await
    }
}

#[async_trait]
impl TaggedPiece<Cx> for TrailBucket {
    fn tagged(&self, cx: &Cx) -> bool {
        ours(cx)
    }
    async fn live_tags(&self, cx: &Cx) -> Result<Tags, StepError> {
        Ok(self.tags_of(cx).await?.unwrap_or_default())
    }
    async fn put_tags(&self, cx: &Cx) -> Result<(), StepError> {
        tag_bucket(cx, BUCKET, &[]).await
    }
}

#[async_trait]
impl TaggedPiece<Cx> for NotifyQueue {
    async fn live_tags(&self, cx: &Cx) -> Result<Tags, StepError> {
        self.tags_of(cx, &queue_url(cx)?).await
    }
    async fn put_tags(&self, cx: &Cx) -> Result<(), StepError> {
        tag_queue(cx, QUEUE, &[]).await
    }
}

#[async_trait]
impl TaggedPiece<Cx> for Trail {
    fn tagged(&self, cx: &Cx) -> bool {
        ours(cx)
    }
    async fn live_tags(&self, cx: &Cx) -> Result<Tags, StepError> {
        self.tags_of(cx, &policy::trail_arn(&cx.loc, &cx.s.trail_name))
            .await
    }
    async fn put_tags(&self, cx: &Cx) -> Result<(), StepError> {
        tag_trail(cx, TRAIL, &[]).await
    }
}

#[async_trait]
impl TaggedPiece<Cx> for ApiPolicy {
    async fn live_tags(&self, cx: &Cx) -> Result<Tags, StepError> {
        Ok(tag_map(
            &cx.iam(POLICY).policy_tags(&cx.policy_arn()).await?,
        ))
    }
    async fn put_tags(&self, cx: &Cx) -> Result<(), StepError> {
        cx.iam(POLICY)
            .retag_policy(&cx.policy_arn(), &cx.iam_tags(), &[])
            .await
    }
}

#[async_trait]
impl TaggedPiece<Cx> for ServiceRole {
    async fn live_tags(&self, cx: &Cx) -> Result<Tags, StepError> {
        Ok(tag_map(&cx.iam(ROLE).role_tags(&cx.s.role_name).await?))
    }
    async fn put_tags(&self, cx: &Cx) -> Result<(), StepError> {
        cx.iam(ROLE)
            .retag_role(&cx.s.role_name, &cx.iam_tags(), &[])
            .await
    }
}
