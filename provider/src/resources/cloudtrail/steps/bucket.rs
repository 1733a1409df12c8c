//! The log bucket (guide steps 1 and 2).
use async_trait::async_trait;

use super::{Cause, Cx, Piece};
use crate::clients::aws::{err, AwsError};
use crate::engine::{Observed, Problem, Step, StepError};
use crate::policy::{self, PolicyKind};
use crate::resources::support::ownership::{Claim, OWNER_KEY};
use crate::resources::support::tags::Tags;

pub struct TrailBucket;
pub(super) const BUCKET: &str =
    "Step 1/2: log bucket with SSE-KMS, public access block and CloudTrail bucket policy";
/// What S3 answers when the access-log bucket cannot take the logs (S3 API reference, error
/// codes: "The target bucket for logging does not exist, is not owned by you, or does not
/// have the appropriate grants for the log-delivery group"; the other: the target bucket is
/// in another Region).
const LOGGING_REFUSED: &[&str] = &[
    "InvalidTargetBucketForLogging",
    "CrossLocationLoggingProhibited",
];

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
    /// The log bucket's versioning status (`Enabled`, `Suspended`; `None`: never enabled).
    async fn versioning(&self, cx: &Cx) -> Result<Option<String>, StepError> {
        let v = cx
            .aws(BUCKET, || async {
                cx.aws
                    .s3
                    .get_bucket_versioning()
                    .bucket(&cx.s.bucket_name)
                    .send()
                    .await
                    .map_err(err("s3", "GetBucketVersioning"))
            })
            .await?;
        Ok(v.status().map(|s| s.as_str().to_string()))
    }
    async fn put_versioning(&self, cx: &Cx, on: bool) -> Result<(), StepError> {
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        let status = if on {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        let config = VersioningConfiguration::builder().status(status).build();
        cx.aws(BUCKET, || async {
            cx.aws
                .s3
                .put_bucket_versioning()
                .bucket(&cx.s.bucket_name)
                .versioning_configuration(config.clone())
                .send()
                .await
                .map_err(err("s3", "PutBucketVersioning"))
        })
        .await?;
        cx.j().versioning_ours = on;
        Ok(())
    }
    /// Where the log bucket's server access logs go: (target bucket, prefix), if anywhere.
    async fn logging(&self, cx: &Cx) -> Result<Option<(String, String)>, StepError> {
        let l = cx
            .aws(BUCKET, || async {
                cx.aws
                    .s3
                    .get_bucket_logging()
                    .bucket(&cx.s.bucket_name)
                    .send()
                    .await
                    .map_err(err("s3", "GetBucketLogging"))
            })
            .await?;
        Ok(l.logging_enabled()
            .map(|e| (e.target_bucket().to_string(), e.target_prefix().to_string())))
    }
    /// The key prefix of the log bucket's access logs in `access_logging_bucket`.
    fn logging_prefix(cx: &Cx) -> String {
        format!("{}/", cx.s.bucket_name)
    }
    /// Points the log bucket's server access logging at `target` (`None`: off). A target S3
    /// refuses is an error naming `access_logging_bucket` and what that bucket needs.
    async fn put_logging(&self, cx: &Cx, target: Option<&str>) -> Result<(), StepError> {
        use aws_sdk_s3::types::{BucketLoggingStatus, LoggingEnabled};
        let enabled = match target {
            Some(t) => Some(
                LoggingEnabled::builder()
                    .target_bucket(t)
                    .target_prefix(Self::logging_prefix(cx))
                    .build()
                    .map_err(|e| StepError::caused_by(BUCKET, e))?,
            ),
            None => None,
        };
        let status = BucketLoggingStatus::builder()
            .set_logging_enabled(enabled)
            .build();
        let put = cx
            .deadline
            .retry(|| async {
                cx.aws
                    .s3
                    .put_bucket_logging()
                    .bucket(&cx.s.bucket_name)
                    .bucket_logging_status(status.clone())
                    .send()
                    .await
                    .map_err(err("s3", "PutBucketLogging"))
                    .map_err(AwsError::expecting_existence)
            })
            .await;
        match (put, target) {
            (Ok(_), _) => {
                cx.j().logging_ours = target.map(str::to_string);
                Ok(())
            }
            (Err(e), Some(t)) if LOGGING_REFUSED.contains(&e.code.as_str()) => {
                Err(StepError::new(BUCKET, format!(
                    "access_logging_bucket = {t:?}: S3 refused to log into it ({e}). The bucket must exist in the same account and region as the log bucket {b} and let the logging service write: a bucket policy statement allowing the principal logging.s3.amazonaws.com s3:PutObject on arn:{p}:s3:::{t}/{prefix}* with aws:SourceArn = {arn} (S3 user guide, \"Enabling Amazon S3 server access logging\"). The provider does not change that bucket: add the statement, then apply again, or unset access_logging_bucket.",
                    b = cx.s.bucket_name,
                    p = cx.loc.partition,
                    prefix = Self::logging_prefix(cx),
                    arn = cx.bucket_arn(),
                )))
            }
            (Err(e), _) => Err(StepError::caused_by(BUCKET, e)),
        }
    }
    /// Versioning and server access logging as the configuration says. `fresh`: the bucket
    /// was just made (neither is on yet, nothing to read). Turned off only what this resource
    /// turned on.
    async fn secure(&self, cx: &Cx, fresh: bool) -> Result<(), StepError> {
        let versioning_ours = cx.j().versioning_ours;
        if cx.s.bucket_versioning || versioning_ours {
            let status = if fresh {
                None
            } else {
                self.versioning(cx).await?
            };
            let enabled = status.as_deref() == Some("Enabled");
            if cx.s.bucket_versioning && !enabled {
                self.put_versioning(cx, true).await?;
            } else if !cx.s.bucket_versioning {
                // A versioned bucket can only be suspended (S3 user guide, "Using versioning").
                if enabled {
                    self.put_versioning(cx, false).await?;
                }
                cx.j().versioning_ours = false;
            }
        }
        let logging_ours = cx.j().logging_ours.clone();
        if cx.s.access_logging_bucket.is_none() && logging_ours.is_none() {
            return Ok(());
        }
        let live = if fresh { None } else { self.logging(cx).await? };
        match &cx.s.access_logging_bucket {
            Some(t) => {
                if live != Some((t.clone(), Self::logging_prefix(cx))) {
                    self.put_logging(cx, Some(t)).await?;
                }
            }
            None => {
                if live.is_some_and(|(target, _)| Some(target) == logging_ours) {
                    self.put_logging(cx, None).await?;
                }
                cx.j().logging_ours = None;
            }
        }
        Ok(())
    }
    /// What differs in versioning and server access logging.
    async fn security_problems(&self, cx: &Cx) -> Result<Vec<String>, StepError> {
        let mut problems = Vec::new();
        let (versioning_ours, logging_ours) = {
            let j = cx.j();
            (j.versioning_ours, j.logging_ours.clone())
        };
        if cx.s.bucket_versioning || versioning_ours {
            let status = self.versioning(cx).await?;
            let enabled = status.as_deref() == Some("Enabled");
            if cx.s.bucket_versioning && !enabled {
                problems.push(format!(
                    "log bucket versioning is {} (bucket_versioning = true)",
                    status.as_deref().unwrap_or("off")
                ));
            } else if !cx.s.bucket_versioning && enabled {
                problems.push("log bucket versioning is Enabled, as this resource set it, but bucket_versioning = false".to_string());
            }
        }
        if cx.s.access_logging_bucket.is_none() && logging_ours.is_none() {
            return Ok(problems);
        }
        let live = self.logging(cx).await?;
        let prefix = Self::logging_prefix(cx);
        match (&cx.s.access_logging_bucket, live) {
            (Some(t), None) => problems.push(format!(
                "server access logging of the log bucket is off (access_logging_bucket = {t:?})"
            )),
            (Some(t), Some((target, p))) if *t != target || p != prefix => problems.push(format!(
                "server access logging of the log bucket goes to {target}/{p} instead of {t}/{prefix}"
            )),
            (None, Some((target, _))) if Some(&target) == logging_ours.as_ref() => {
                problems.push(format!("server access logging of the log bucket still goes to {target}, as this resource set it, but access_logging_bucket is not set"))
            }
            _ => {}
        }
        Ok(problems)
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
    /// The bucket's tags; `None` when it has no tag set.
    pub(super) async fn tags_of(&self, cx: &Cx) -> Result<Option<Tags>, StepError> {
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
        Ok(tags.map(|t| {
            t.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        }))
    }
    pub(super) async fn owned(&self, cx: &Cx) -> Result<Claim, StepError> {
        Ok(match self.tags_of(cx).await? {
            Some(t) => cx.claim(t.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
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
        if cx.s.existing.is_some() {
            // An existing trail's bucket is never made, changed or deleted here.
            return if self.exists(cx).await? {
                Ok(())
            } else {
                Err(StepError::new(BUCKET, format!("the existing trail's bucket {b} does not exist; it is never made here: correct `existing_trail.bucket_name`")))
            };
        }
        let fresh = !self.exists(cx).await?;
        if !fresh {
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
            super::tagging::put_bucket_tags(cx, BUCKET, cx.tags()).await?;
        }
        self.configure(cx).await?;
        self.secure(cx, fresh).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        if !self.exists(cx).await? {
            return Ok(Observed::Gone);
        }
        if cx.s.existing.is_some() {
            // Its settings are its owner's: only its existence matters here.
            return Ok(Observed::Present(Vec::new()));
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
        problems.extend(self.security_problems(cx).await?);
        Ok(Observed::differs(problems))
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        if cx.s.existing.is_some() {
            return self.create(cx).await;
        }
        self.configure(cx).await?;
        self.secure(cx, false).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        if cx.s.existing.is_some() || !self.exists(cx).await? {
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
