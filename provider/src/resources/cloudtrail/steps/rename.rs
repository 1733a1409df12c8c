//! After the steps: a rename retires the old pieces; objects made before owners existed
//! are claimed and retagged.

use super::api_policy::POLICY;
use super::bucket::BUCKET;
use super::kms_key::KEY;
use super::queue::QUEUE;
use super::service_role::ROLE;
use super::trail::TRAIL;
use super::{ApiPolicy, BucketNotice, Cx, KmsKey, NotifyQueue, ServiceRole, Trail, TrailBucket};
use crate::engine::{Step, StepError};

/// AWS renames none of the trail, queue, bucket, policy, role or alias. An update that
/// renames one has already made the new piece and repointed what depends on it (converge);
/// this retires the old one, dependents first, and only what carries our marker. `old` is
/// the integration under its previous names.
pub async fn retire(cx: &Cx, old: &Cx) -> Result<(), StepError> {
    let (n, o) = (&cx.s, &old.s);
    if o.trail_name != n.trail_name {
        Trail.delete(old).await?;
    }
    if o.bucket_name != n.bucket_name {
        // The old bucket no longer notifies anyone.
        BucketNotice.delete(old).await?;
    }
    if o.queue_name != n.queue_name {
        NotifyQueue.delete(old).await?;
    }
    if o.role_name != n.role_name {
        ServiceRole.delete(old).await?;
    }
    if o.policy_name != n.policy_name {
        cx.iam(ROLE).detach(&n.role_name, &old.policy_arn()).await?;
        ApiPolicy.delete(old).await?;
    }
    if o.kms_alias != n.kms_alias {
        let key_id = cx.j().key_id.clone();
        if let Some(id) = key_id {
            KmsKey.retire_alias(old, &id).await?;
        }
    }
    if o.bucket_name != n.bucket_name {
        if n.force_destroy {
            TrailBucket.delete(old).await?;
        } else if TrailBucket.exists(old).await? {
            TrailBucket.retire_our_statements(old).await?;
            cx.warn(
                "The previous log bucket is kept",
                format!(
                    "The trail now writes to {}. {} still holds the logs written so far and is kept: logs are evidence. \
                     Delete it yourself when it is no longer needed (set force_destroy = true before a rename to have it emptied and deleted).",
                    n.bucket_name, o.bucket_name
                ),
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
const TAGS: &str = "Tags of every AWS object of the integration";

/// A state written before owners existed names objects that carry only the marker: they
/// become this instance's (`retag` adds the owner once the steps are done), unless another
/// instance has claimed them since.
pub async fn claim(cx: &Cx) -> Result<(), StepError> {
    if let Some((id, _, _)) = KmsKey.find(cx).await? {
        let claim = KmsKey.owned(cx, &id).await?;
        cx.adopt(KEY, &format!("KMS key {}", cx.s.kms_alias), claim)?;
    }
    // An existing trail's bucket and trail are not ours to claim.
    let existing = cx.s.existing.is_some();
    if !existing && TrailBucket.exists(cx).await? {
        let claim = TrailBucket.owned(cx).await?;
        cx.adopt(BUCKET, &format!("S3 bucket {}", cx.s.bucket_name), claim)?;
    }
    if let Some(url) = NotifyQueue.url(cx).await? {
        let claim = NotifyQueue.owned(cx, &url).await?;
        cx.adopt(QUEUE, &format!("SQS queue {}", cx.s.queue_name), claim)?;
    }
    if let Some(t) = Trail.get(cx).await?.filter(|_| !existing) {
        let claim = Trail.owned(cx, t.trail_arn().unwrap_or_default()).await?;
        cx.adopt(TRAIL, &format!("trail {}", cx.s.trail_name), claim)?;
    }
    let iam = cx.iam(TAGS);
    if iam.policy(&cx.policy_arn()).await?.is_some() {
        let claim = iam.policy_claim(&cx.policy_arn(), &cx.s.owner).await?;
        cx.adopt(POLICY, &format!("IAM policy {}", cx.s.policy_name), claim)?;
    }
    if iam.role(&cx.s.role_name).await?.is_some() {
        let claim = iam.role_claim(&cx.s.role_name, &cx.s.owner).await?;
        cx.adopt(ROLE, &format!("IAM role {}", cx.s.role_name), claim)?;
    }
    Ok(())
}

/// Whether this run adopted an object made before owners existed (see `claim`).
pub fn adopted_unclaimed(cx: &Cx) -> bool {
    cx.j().unclaimed
}
