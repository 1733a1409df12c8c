//! The log bucket (guide steps 1 and 2).
use async_trait::async_trait;

use super::{Cause, Cx, Piece};
use crate::clients::aws::err;
use crate::engine::{Observed, Problem, Step, StepError};
use crate::policy::{self, PolicyKind};
use crate::resources::support::ownership::{Claim, OWNER_KEY};

pub struct TrailBucket;
pub(super) const BUCKET: &str =
    "Step 1/2: log bucket with SSE-KMS, public access block and CloudTrail bucket policy";

impl TrailBucket {
    /// Removes our statements from the policy of a bucket that is kept: the policy is
    /// deleted when nothing of anyone else's remains in it.
    pub(super) async fn retire_our_statements(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(live) = self.live_policy(cx).await? else {
            return Ok(());
        };
        let ours = policy::bucket_policy(&cx.loc, &cx.names());
        let b = &cx.s.bucket_name;
        match policy::without_ours(&ours, &live).map_err(|e| StepError::caused_by(BUCKET, e))? {
            None => {
                cx.aws_opt(BUCKET, || async {
                    cx.aws
                        .s3
                        .delete_bucket_policy()
                        .bucket(b)
                        .send()
                        .await
                        .map_err(err("s3", "DeleteBucketPolicy"))
                })
                .await?;
            }
            Some(theirs) if theirs != live => {
                cx.aws(BUCKET, || async {
                    cx.aws
                        .s3
                        .put_bucket_policy()
                        .bucket(b)
                        .policy(&theirs)
                        .send()
                        .await
                        .map_err(err("s3", "PutBucketPolicy"))
                })
                .await?;
            }
            Some(_) => {}
        }
        Ok(())
    }
    /// The bucket's policy as it stands (`None`: it has none).
    async fn live_policy(&self, cx: &Cx) -> Result<Option<String>, StepError> {
        let pol = cx
            .aws_opt(BUCKET, || async {
                cx.aws
                    .s3
                    .get_bucket_policy()
                    .bucket(&cx.s.bucket_name)
                    .send()
                    .await
                    .map_err(err("s3", "GetBucketPolicy"))
            })
            .await?;
        Ok(pol.and_then(|p| p.policy))
    }
    pub(super) async fn exists(&self, cx: &Cx) -> Result<bool, StepError> {
        Ok(cx
            .aws_opt(BUCKET, || async {
                cx.aws
                    .s3
                    .head_bucket()
                    .bucket(&cx.s.bucket_name)
                    .send()
                    .await
                    .map_err(err("s3", "HeadBucket"))
            })
            .await?
            .is_some())
    }
    /// Takes this instance's owner tag off the bucket (the marker and others' tags stay).
    async fn release(&self, cx: &Cx) -> Result<(), StepError> {
        let b = &cx.s.bucket_name;
        let current = cx
            .aws(BUCKET, || async {
                cx.aws
                    .s3
                    .get_bucket_tagging()
                    .bucket(b)
                    .send()
                    .await
                    .map_err(err("s3", "GetBucketTagging"))
            })
            .await?;
        let kept: Vec<aws_sdk_s3::types::Tag> = current
            .tag_set()
            .iter()
            .filter(|t| t.key() != OWNER_KEY)
            .cloned()
            .collect();
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .set_tag_set(Some(kept))
            .build()
            .map_err(|e| StepError::caused_by(BUCKET, e))?;
        cx.aws(BUCKET, || async {
            cx.aws
                .s3
                .put_bucket_tagging()
                .bucket(b)
                .tagging(tagging.clone())
                .send()
                .await
                .map_err(err("s3", "PutBucketTagging"))
        })
        .await?;
        Ok(())
    }
    pub(super) async fn owned(&self, cx: &Cx) -> Result<Claim, StepError> {
        let tags = cx
            .aws_opt(BUCKET, || async {
                cx.aws
                    .s3
                    .get_bucket_tagging()
                    .bucket(&cx.s.bucket_name)
                    .send()
                    .await
                    .map_err(err("s3", "GetBucketTagging"))
            })
            .await?;
        Ok(match tags {
            Some(t) => cx.claim(t.tag_set().iter().map(|t| (t.key(), t.value()))),
            None => Claim::Foreign,
        })
    }
    async fn configure(&self, cx: &Cx) -> Result<(), StepError> {
        use aws_sdk_s3::types::*;
        let b = &cx.s.bucket_name;
        let key_arn = cx
            .j()
            .key_arn
            .clone()
            .ok_or_else(|| StepError::new(BUCKET, "the KMS key does not exist"))?;
        let pab = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        cx.aws(BUCKET, || async {
            cx.aws
                .s3
                .put_public_access_block()
                .bucket(b)
                .public_access_block_configuration(pab.clone())
                .send()
                .await
                .map_err(err("s3", "PutPublicAccessBlock"))
        })
        .await?;
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::AwsKms)
                    .kms_master_key_id(&key_arn)
                    .build()
                    .map_err(|e| StepError::caused_by(BUCKET, e))?,
            )
            .bucket_key_enabled(cx.s.bucket_key_enabled)
            .build();
        let sse = ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| StepError::caused_by(BUCKET, e))?;
        cx.aws(BUCKET, || async {
            cx.aws
                .s3
                .put_bucket_encryption()
                .bucket(b)
                .server_side_encryption_configuration(sse.clone())
                .send()
                .await
                .map_err(err("s3", "PutBucketEncryption"))
        })
        .await?;
        // Ours merged into the live policy: others' statements (an SSL-only rule, a SIEM's
        // read grant) stay.
        let live = self.live_policy(cx).await?;
        let doc = policy::merged_for_write(
            &policy::bucket_policy(&cx.loc, &cx.names()),
            live.as_deref(),
            PolicyKind::Bucket,
        )
        .map_err(|e| StepError::caused_by(BUCKET, e))?;
        cx.aws(BUCKET, || async {
            cx.aws
                .s3
                .put_bucket_policy()
                .bucket(b)
                .policy(&doc)
                .send()
                .await
                .map_err(err("s3", "PutBucketPolicy"))
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for TrailBucket {
    fn id(&self) -> Piece {
        Piece::Bucket
    }
    fn title(&self) -> &'static str {
        BUCKET
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::KmsKey]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        use aws_sdk_s3::types::*;
        let b = &cx.s.bucket_name;
        if self.exists(cx).await? {
            cx.adopt(BUCKET, &format!("S3 bucket {b}"), self.owned(cx).await?)?;
        } else {
            let cfg = (cx.loc.region != "us-east-1").then(|| {
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(cx.loc.region.as_str()))
                    .build()
            });
            cx.aws(BUCKET, || async {
                cx.aws
                    .s3
                    .create_bucket()
                    .bucket(b)
                    .set_create_bucket_configuration(cfg.clone())
                    .send()
                    .await
                    .map_err(err("s3", "CreateBucket"))
            })
            .await?;
            let tagging = Tagging::builder()
                .set_tag_set(Some(
                    cx.tags()
                        .into_iter()
                        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
                        .collect(),
                ))
                .build()
                .map_err(|e| StepError::caused_by(BUCKET, e))?;
            cx.aws(BUCKET, || async {
                cx.aws
                    .s3
                    .put_bucket_tagging()
                    .bucket(b)
                    .tagging(tagging.clone())
                    .send()
                    .await
                    .map_err(err("s3", "PutBucketTagging"))
            })
            .await?;
        }
        self.configure(cx).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        if !self.exists(cx).await? {
            return Ok(Observed::Gone);
        }
        let b = &cx.s.bucket_name;
        let mut problems = Vec::new();
        let enc = cx
            .aws_opt(BUCKET, || async {
                cx.aws
                    .s3
                    .get_bucket_encryption()
                    .bucket(b)
                    .send()
                    .await
                    .map_err(err("s3", "GetBucketEncryption"))
            })
            .await?;
        let key_arn = cx.j().key_arn.clone().unwrap_or_default();
        let bucket_key = enc
            .as_ref()
            .and_then(|e| e.server_side_encryption_configuration())
            .and_then(|c| c.rules().first())
            .map(|r| r.bucket_key_enabled().unwrap_or(false));
        if bucket_key.is_some_and(|b| b != cx.s.bucket_key_enabled) {
            problems.push(format!(
                "log bucket's S3 Bucket Key is {} instead of {}",
                if cx.s.bucket_key_enabled { "off" } else { "on" },
                if cx.s.bucket_key_enabled { "on" } else { "off" }
            ));
        }
        let rule = enc
            .as_ref()
            .and_then(|e| e.server_side_encryption_configuration())
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        match rule {
            None => problems
                .push("default encryption (SSE-KMS) removed from the log bucket".to_string()),
            Some(r) if r.sse_algorithm().as_str() != "aws:kms" => problems.push(format!(
                "log bucket encryption is {} instead of SSE-KMS",
                r.sse_algorithm().as_str()
            )),
            Some(r)
                if !key_arn.is_empty()
                    && r.kms_master_key_id()
                        .is_some_and(|k| k != key_arn && !key_arn.ends_with(k)) =>
            {
                problems.push(format!(
                    "log bucket encrypts with {} instead of the integration's key",
                    r.kms_master_key_id().unwrap_or_default()
                ))
            }
            Some(_) => {}
        }
        let expected = policy::bucket_policy(&cx.loc, &cx.names());
        match self.live_policy(cx).await? {
            None => {
                problems.push("bucket policy removed: CloudTrail cannot write logs".to_string())
            }
            Some(p) => {
                problems.extend(policy::drift("bucket policy", &expected, &p));
                cx.warn_defeats(
                    "Another party's statement defeats ours in the log bucket policy",
                    policy::foreign_defeats("log bucket policy", &expected, &p, PolicyKind::Bucket),
                );
            }
        }
        let pab = cx
            .aws_opt(BUCKET, || async {
                cx.aws
                    .s3
                    .get_public_access_block()
                    .bucket(b)
                    .send()
                    .await
                    .map_err(err("s3", "GetPublicAccessBlock"))
            })
            .await?;
        let blocked = pab
            .and_then(|p| p.public_access_block_configuration)
            .is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            });
        if !blocked {
            problems.push("public access block of the log bucket is off".to_string());
        }
        Ok(Observed::differs(problems))
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        self.configure(cx).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        if !self.exists(cx).await? {
            return Ok(());
        }
        let claim = self.owned(cx).await?;
        if !cx.s.force_destroy {
            // The bucket stays (logs are evidence); our statements go, theirs stay, and it is
            // no longer this instance's, so that a later integration with its name adopts it.
            if claim == Claim::Ours {
                self.release(cx).await?;
            }
            return self.retire_our_statements(cx).await;
        }
        if !cx.deletable(&format!("S3 bucket {}", cx.s.bucket_name), claim) {
            return Ok(());
        }
        cx.s3(BUCKET).delete_bucket(&cx.s.bucket_name).await
    }
}
