//! Expel's onboarding guide "AWS CloudTrail: new trail", one engine step per guide step. Each step
//! creates or adopts its object, observes it for drift, repairs it and deletes it. Objects we
//! create carry the ownership tags (`ownership`); we adopt or delete nothing else.
use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value as Json};

use crate::clients::aws::{err, AwsClients, AwsError};
use crate::clients::workbench::{check_device_spec, DeviceSpec, WorkbenchClient, WorkbenchError};
use crate::engine::{Deadline, Observed, Step, StepContext, StepError};
use crate::policy::{self, CloudTrailNames, Location, PolicyKind};
use crate::resources::iam::{iam_tags, Iam, Kept, ServiceRoleSpec, POLICY_KEPT};
use crate::resources::ownership::{self, Claim, Mark, Owner, OWNER_KEY};
use crate::resources::s3::S3;

const NOTIFICATION_ID: &str = "ExpelNotifyQueue";

/// The desired state, from the plan.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: String,
    pub device_location: String,
    pub trail_name: String,
    pub bucket_name: String,
    pub queue_name: String,
    pub kms_alias: String,
    pub policy_name: String,
    pub role_name: String,
    pub role_session_name: String,
    pub principals: Vec<String>,
    pub external_id: String,
    pub organization_trail: bool,
    pub bucket_key_enabled: bool,
    pub retention_seconds: i64,
    pub tags: BTreeMap<String, String>,
    pub verify: bool,
    pub wait_for_healthy: bool,
    pub force_destroy: bool,
    pub key_deletion_window_days: i32,
    pub plugin_slug: String,
    pub workbench_org: String,
    /// The instance whose objects these are (`ownership`).
    pub owner: Owner,
}

/// Ids only known once objects exist.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    pub key_arn: Option<String>,
    pub key_id: Option<String>,
    pub queue_url: Option<String>,
    pub device_id: Option<String>,
    pub device_status: Option<String>,
    pub aws_org_id: Option<String>,
    /// When this run last made or changed what Workbench's health check uses (the role, its
    /// trust policy, ExpelAPIPolicy): until IAM has propagated it, "unhealthy" means "not
    /// yet" (`wait_for_healthy`). Never stored: a later run's verdict is final.
    pub credentials_changed: Option<std::time::Instant>,
    /// This run adopted an object made before owners existed: every piece gets the owner
    /// tag once the steps are done (`retag`).
    pub unclaimed: bool,
}

pub struct Cx {
    pub aws: AwsClients,
    pub data: std::sync::Arc<crate::resources::ExpelData>,
    pub loc: Location,
    pub s: Settings,
    pub journal: Mutex<Journal>,
    pub deadline: Deadline,
    /// Warnings for the user (summary, detail), e.g. an unhealthy device: not drift.
    pub warnings: Mutex<Vec<(&'static str, String)>>,
    /// Our roles destroy kept because others attached things to them.
    pub roles_kept: Mutex<Vec<Kept>>,
}

impl StepContext for Cx {
    fn deadline(&self) -> &Deadline {
        &self.deadline
    }
}

impl Cx {
    fn wbc(&self) -> &WorkbenchClient {
        &self.data.workbench
    }
    fn j(&self) -> std::sync::MutexGuard<'_, Journal> {
        match self.journal.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
    /// Reports foreign policy statements that defeat ours: a warning on every plan, not
    /// drift, since we never remove others' statements and apply could not "repair" them.
    /// `summary` names the document: Terraform folds warnings that share a summary.
    fn warn_defeats(&self, summary: &'static str, found: Vec<String>) {
        for f in found {
            self.warn(summary, format!("{f}. The provider leaves others' statements alone; remove or narrow that statement if the integration should work."));
        }
    }
    fn warn(&self, summary: &'static str, detail: String) {
        match self.warnings.lock() {
            Ok(mut g) => g.push((summary, detail)),
            Err(p) => p.into_inner().push((summary, detail)),
        }
    }
    /// Destroy deletes only this instance's objects: any other is left in place, and said.
    fn deletable(&self, what: &str, claim: Claim) -> bool {
        if claim.is_ours() {
            return true;
        }
        let detail = ownership::left_in_place(what, &self.loc.account_id, &claim);
        self.warn(ownership::NOT_OURS_LEFT, detail);
        false
    }
    /// Notes that the device's credentials were just made or changed (see the journal).
    fn credentials_changed(&self) {
        self.j().credentials_changed = Some(std::time::Instant::now());
    }
    fn keep_role(&self, kept: Kept) {
        match self.roles_kept.lock() {
            Ok(mut g) => g.push(kept),
            Err(p) => p.into_inner().push(kept),
        }
    }
    fn iam(&self, step: &'static str) -> Iam<'_> {
        Iam {
            aws: &self.aws,
            deadline: &self.deadline,
            step,
        }
    }
    fn s3(&self, step: &'static str) -> S3<'_> {
        S3 {
            aws: &self.aws,
            deadline: &self.deadline,
            step,
        }
    }
    fn iam_tags(&self) -> Vec<aws_sdk_iam::types::Tag> {
        iam_tags(
            &self.s.owner,
            self.s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
    /// The same integration under other settings: the names it had before a rename.
    pub fn with_settings(&self, s: Settings) -> Cx {
        Cx {
            aws: self.aws.clone(),
            data: self.data.clone(),
            loc: self.loc.clone(),
            s,
            journal: Mutex::new(self.j().clone()),
            deadline: self.deadline.clone(),
            warnings: Mutex::new(Vec::new()),
            roles_kept: Mutex::new(Vec::new()),
        }
    }
    pub fn names(&self) -> CloudTrailNames {
        CloudTrailNames {
            trail_name: self.s.trail_name.clone(),
            bucket_name: self.s.bucket_name.clone(),
            queue_name: self.s.queue_name.clone(),
            organization_id: if self.s.organization_trail {
                self.j().aws_org_id.clone()
            } else {
                None
            },
        }
    }
    pub fn bucket_arn(&self) -> String {
        policy::bucket_arn(&self.loc, &self.s.bucket_name)
    }
    pub fn queue_arn(&self) -> String {
        policy::queue_arn(&self.loc, &self.s.queue_name)
    }
    pub fn policy_arn(&self) -> String {
        policy::policy_arn(&self.loc, &self.s.policy_name)
    }
    pub fn role_arn(&self) -> String {
        policy::role_arn(&self.loc, &self.s.role_name)
    }
    fn tags(&self) -> Vec<(String, String)> {
        self.s
            .owner
            .tags(self.s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
    /// Whose an object is, from its tags.
    fn claim<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Claim {
        self.s.owner.claim(tags)
    }
    /// An existing object may be adopted only if it is this instance's; one made before
    /// owners existed is, and is re-marked once the steps are done.
    fn adopt(&self, step: &'static str, what: &str, claim: Claim) -> Result<(), StepError> {
        if claim == Claim::Unclaimed {
            self.j().unclaimed = true;
        }
        if claim.is_ours() {
            return Ok(());
        }
        Err(StepError {
            step,
            message: claim.refusal(
                what,
                &self.s.owner,
                Mark::Tags,
                "Import the integration (terraform import) or choose another name.",
            ),
        })
    }
    /// An AWS call on an object that exists (made by this run or recorded in the state).
    async fn aws<T, F, Fut>(&self, step: &'static str, mut op: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        self.deadline
            .retry(|| {
                let call = op();
                async move { call.await.map_err(AwsError::expecting_existence) }
            })
            .await
            .map_err(|e| fail(step, e))
    }
    /// Like `aws`, but "not found" is `None`.
    async fn aws_opt<T, F, Fut>(&self, step: &'static str, op: F) -> Result<Option<T>, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        match self.deadline.retry(op).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(fail(step, e)),
        }
    }
    async fn wb<T, F, Fut>(&self, step: &'static str, op: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, WorkbenchError>>,
    {
        self.deadline.retry(op).await.map_err(|e| fail(step, e))
    }
}

fn fail(step: &'static str, e: impl std::fmt::Display) -> StepError {
    StepError {
        step,
        message: e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
pub struct KmsKey;
const KEY: &str = "Step 1/4: KMS key, key policy and alias";
const ALIAS_MISSING: &str = "does not exist";
const ALIAS_ELSEWHERE: &str = "points at another key";

impl KmsKey {
    async fn find(&self, cx: &Cx) -> Result<Option<(String, String, String)>, StepError> {
        let id = cx
            .j()
            .key_id
            .clone()
            .unwrap_or_else(|| cx.s.kms_alias.clone());
        let meta = cx
            .aws_opt(KEY, || async {
                cx.aws
                    .kms
                    .describe_key()
                    .key_id(&id)
                    .send()
                    .await
                    .map_err(err("kms", "DescribeKey"))
            })
            .await?;
        Ok(meta.and_then(|m| m.key_metadata).map(|m| {
            let state = m
                .key_state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            (
                m.key_id().to_string(),
                m.arn().unwrap_or_default().to_string(),
                state,
            )
        }))
    }
    async fn owned(&self, cx: &Cx, key_id: &str) -> Result<Claim, StepError> {
        let tags = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .list_resource_tags()
                    .key_id(key_id)
                    .send()
                    .await
                    .map_err(err("kms", "ListResourceTags"))
            })
            .await?;
        Ok(cx.claim(tags.tags().iter().map(|t| (t.tag_key(), t.tag_value()))))
    }
    /// The key policy as CreateKey sends it (a new key has no one else's statements), once
    /// it passes the linter.
    fn policy(&self, cx: &Cx) -> Result<String, StepError> {
        policy::checked(&policy::key_policy(&cx.loc, &cx.names()), PolicyKind::Key)
            .map_err(|e| fail(KEY, e))
    }
}

#[async_trait]
impl Step<Cx> for KmsKey {
    fn key(&self) -> &'static str {
        "kms_key"
    }
    fn title(&self) -> &'static str {
        KEY
    }
    fn needs(&self) -> &'static [&'static str] {
        &[]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if let Some((id, arn, _)) = self.find(cx).await? {
            let claim = self.owned(cx, &id).await?;
            cx.adopt(KEY, &format!("KMS key {}", cx.s.kms_alias), claim)?;
            {
                let mut j = cx.j();
                j.key_id = Some(id.clone());
                j.key_arn = Some(arn);
            }
            let problems = self.inspect(cx, &id).await?;
            return if problems.is_empty() {
                Ok(())
            } else {
                self.repair(cx, &problems).await
            };
        }
        let tags: Vec<_> = cx
            .tags()
            .into_iter()
            .filter_map(|(k, v)| {
                aws_sdk_kms::types::Tag::builder()
                    .tag_key(k)
                    .tag_value(v)
                    .build()
                    .ok()
            })
            .collect();
        let doc = self.policy(cx)?;
        let created = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .create_key()
                    .description("Expel CloudTrail: encrypts the trail's logs, its bucket and the notification queue")
                    .policy(&doc)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(err("kms", "CreateKey"))
            })
            .await?;
        let meta = created
            .key_metadata
            .ok_or_else(|| fail(KEY, "CreateKey returned no key"))?;
        let id = meta.key_id().to_string();
        {
            let mut j = cx.j();
            j.key_id = Some(id.clone());
            j.key_arn = meta.arn().map(str::to_string);
        }
        cx.aws(KEY, || async {
            cx.aws
                .kms
                .create_alias()
                .alias_name(&cx.s.kms_alias)
                .target_key_id(&id)
                .send()
                .await
                .map_err(err("kms", "CreateAlias"))
        })
        .await?;
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        match self.find(cx).await? {
            None => Ok(Observed::Gone),
            Some((id, arn, _)) => {
                {
                    let mut j = cx.j();
                    j.key_id = Some(id.clone());
                    j.key_arn = Some(arn);
                }
                Ok(Observed::Present(self.inspect(cx, &id).await?))
            }
        }
    }
    async fn repair(&self, cx: &Cx, problems: &[String]) -> Result<(), StepError> {
        let id = cx
            .j()
            .key_id
            .clone()
            .ok_or_else(|| fail(KEY, "no key recorded"))?;
        if problems
            .iter()
            .any(|p| p.contains("scheduled for deletion"))
        {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .cancel_key_deletion()
                    .key_id(&id)
                    .send()
                    .await
                    .map_err(err("kms", "CancelKeyDeletion"))
            })
            .await?;
        }
        if problems
            .iter()
            .any(|p| p.contains("disabled") || p.contains("scheduled for deletion"))
        {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .enable_key()
                    .key_id(&id)
                    .send()
                    .await
                    .map_err(err("kms", "EnableKey"))
            })
            .await?;
        }
        let live = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .get_key_policy()
                    .key_id(&id)
                    .policy_name("default")
                    .send()
                    .await
                    .map_err(err("kms", "GetKeyPolicy"))
            })
            .await?
            .policy;
        let doc = policy::merged_for_write(
            &policy::key_policy(&cx.loc, &cx.names()),
            live.as_deref(),
            PolicyKind::Key,
        )
        .map_err(|e| fail(KEY, e))?;
        cx.aws(KEY, || async {
            cx.aws
                .kms
                .put_key_policy()
                .key_id(&id)
                .policy_name("default")
                .policy(&doc)
                .send()
                .await
                .map_err(err("kms", "PutKeyPolicy"))
        })
        .await?;
        self.point_alias(cx, &id, problems).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some((id, _, state)) = self.find(cx).await? else {
            return Ok(());
        };
        let claim = self.owned(cx, &id).await?;
        // Logs are evidence: the key stays unless force_destroy, and is no longer this
        // instance's, so that a later integration with the same alias adopts it.
        if !cx.s.force_destroy {
            if claim == Claim::Ours {
                cx.aws(KEY, || async {
                    cx.aws
                        .kms
                        .untag_resource()
                        .key_id(&id)
                        .tag_keys(OWNER_KEY)
                        .send()
                        .await
                        .map_err(err("kms", "UntagResource"))
                })
                .await?;
            }
            return Ok(());
        }
        if !cx.deletable(&format!("KMS key {}", cx.s.kms_alias), claim) {
            return Ok(());
        }
        cx.aws_opt(KEY, || async {
            cx.aws
                .kms
                .delete_alias()
                .alias_name(&cx.s.kms_alias)
                .send()
                .await
                .map_err(err("kms", "DeleteAlias"))
        })
        .await?;
        if state != "PendingDeletion" {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .schedule_key_deletion()
                    .key_id(&id)
                    .pending_window_in_days(cx.s.key_deletion_window_days)
                    .send()
                    .await
                    .map_err(err("kms", "ScheduleKeyDeletion"))
            })
            .await?;
        }
        Ok(())
    }
}

impl KmsKey {
    async fn inspect(&self, cx: &Cx, id: &str) -> Result<Vec<String>, StepError> {
        let mut problems = Vec::new();
        let meta = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .describe_key()
                    .key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "DescribeKey"))
            })
            .await?;
        match meta
            .key_metadata()
            .and_then(|m| m.key_state())
            .map(|s| s.as_str())
        {
            Some("PendingDeletion") => {
                problems.push("KMS key is scheduled for deletion".to_string())
            }
            Some("Disabled") => problems.push("KMS key is disabled".to_string()),
            _ => {}
        }
        let pol = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .get_key_policy()
                    .key_id(id)
                    .policy_name("default")
                    .send()
                    .await
                    .map_err(err("kms", "GetKeyPolicy"))
            })
            .await?;
        let expected = policy::key_policy(&cx.loc, &cx.names());
        let live = pol.policy().unwrap_or_default();
        problems.extend(policy::drift("key policy", &expected, live));
        cx.warn_defeats(
            "Another party's statement defeats ours in the key policy",
            policy::foreign_defeats("key policy", &expected, live, PolicyKind::Key),
        );
        match self.alias_target(cx, &cx.s.kms_alias).await? {
            None => problems.push(format!("alias {} {ALIAS_MISSING}", cx.s.kms_alias)),
            Some(k) if k != id => {
                problems.push(format!("alias {} {ALIAS_ELSEWHERE} ({k})", cx.s.kms_alias))
            }
            Some(_) => {}
        }
        Ok(problems)
    }
    /// The id of the key an alias points at, if the alias exists.
    async fn alias_target(&self, cx: &Cx, alias: &str) -> Result<Option<String>, StepError> {
        let meta = cx
            .aws_opt(KEY, || async {
                cx.aws
                    .kms
                    .describe_key()
                    .key_id(alias)
                    .send()
                    .await
                    .map_err(err("kms", "DescribeKey"))
            })
            .await?;
        Ok(meta
            .and_then(|m| m.key_metadata)
            .map(|m| m.key_id().to_string()))
    }
    /// Points the configured alias at the key: created when missing, moved when it names
    /// another key.
    async fn point_alias(&self, cx: &Cx, id: &str, problems: &[String]) -> Result<(), StepError> {
        let about_alias = |what: &str| {
            problems
                .iter()
                .any(|p| p.starts_with("alias ") && p.ends_with(what))
        };
        if about_alias(ALIAS_MISSING) {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .create_alias()
                    .alias_name(&cx.s.kms_alias)
                    .target_key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "CreateAlias"))
            })
            .await?;
        } else if problems
            .iter()
            .any(|p| p.starts_with("alias ") && p.contains(ALIAS_ELSEWHERE))
        {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .update_alias()
                    .alias_name(&cx.s.kms_alias)
                    .target_key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "UpdateAlias"))
            })
            .await?;
        }
        Ok(())
    }
    /// Removes an alias the configuration no longer names, only while it points at our key.
    async fn retire_alias(&self, old: &Cx, id: &str) -> Result<(), StepError> {
        if self.alias_target(old, &old.s.kms_alias).await?.as_deref() != Some(id) {
            return Ok(());
        }
        old.aws_opt(KEY, || async {
            old.aws
                .kms
                .delete_alias()
                .alias_name(&old.s.kms_alias)
                .send()
                .await
                .map_err(err("kms", "DeleteAlias"))
        })
        .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
pub struct TrailBucket;
const BUCKET: &str =
    "Step 1/2: log bucket with SSE-KMS, public access block and CloudTrail bucket policy";

impl TrailBucket {
    /// Removes our statements from the policy of a bucket that is kept: the policy is
    /// deleted when nothing of anyone else's remains in it.
    async fn retire_our_statements(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(live) = self.live_policy(cx).await? else {
            return Ok(());
        };
        let ours = policy::bucket_policy(&cx.loc, &cx.names());
        let b = &cx.s.bucket_name;
        match policy::without_ours(&ours, &live).map_err(|e| fail(BUCKET, e))? {
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
    async fn exists(&self, cx: &Cx) -> Result<bool, StepError> {
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
            .map_err(|e| fail(BUCKET, e))?;
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
    async fn owned(&self, cx: &Cx) -> Result<Claim, StepError> {
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
            .ok_or_else(|| fail(BUCKET, "the KMS key does not exist"))?;
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
                    .map_err(|e| fail(BUCKET, e))?,
            )
            .bucket_key_enabled(cx.s.bucket_key_enabled)
            .build();
        let sse = ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| fail(BUCKET, e))?;
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
        .map_err(|e| fail(BUCKET, e))?;
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
    fn key(&self) -> &'static str {
        "bucket"
    }
    fn title(&self) -> &'static str {
        BUCKET
    }
    fn needs(&self) -> &'static [&'static str] {
        &["kms_key"]
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
                .map_err(|e| fail(BUCKET, e))?;
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
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
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
        Ok(Observed::Present(problems))
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
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

// ---------------------------------------------------------------------------------------
pub struct NotifyQueue;
const QUEUE: &str = "Step 3: SQS queue ExpelMasterCloudTrailNotify with SSE-KMS and access policy";

impl NotifyQueue {
    fn attributes(&self, cx: &Cx) -> Vec<(aws_sdk_sqs::types::QueueAttributeName, String)> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        vec![
            (A::VisibilityTimeout, "30".into()),
            (
                A::MessageRetentionPeriod,
                cx.s.retention_seconds.to_string(),
            ),
            (A::DelaySeconds, "0".into()),
            (A::MaximumMessageSize, "262144".into()),
            (A::ReceiveMessageWaitTimeSeconds, "0".into()),
            (
                A::KmsMasterKeyId,
                cx.j().key_arn.clone().unwrap_or_default(),
            ),
            (
                A::Policy,
                policy::render(&policy::queue_policy(&cx.queue_arn(), &cx.bucket_arn())),
            ),
        ]
    }
    /// What CreateQueue and SetQueueAttributes send: `attributes`, once the access policy in
    /// them passes the linter.
    /// With `live`, the queue's current access policy: ours is merged into it, so others'
    /// statements stay.
    fn to_send(
        &self,
        cx: &Cx,
        live: Option<&str>,
    ) -> Result<Vec<(aws_sdk_sqs::types::QueueAttributeName, String)>, StepError> {
        let access = policy::queue_policy(&cx.queue_arn(), &cx.bucket_arn());
        let checked = policy::merged_for_write(&access, live, PolicyKind::Queue)
            .map_err(|e| fail(QUEUE, e))?;
        let mut attrs = self.attributes(cx);
        for (name, value) in &mut attrs {
            if *name == aws_sdk_sqs::types::QueueAttributeName::Policy {
                *value = checked.clone();
            }
        }
        Ok(attrs)
    }
    async fn url(&self, cx: &Cx) -> Result<Option<String>, StepError> {
        let r = cx
            .aws_opt(QUEUE, || async {
                cx.aws
                    .sqs
                    .get_queue_url()
                    .queue_name(&cx.s.queue_name)
                    .send()
                    .await
                    .map_err(err("sqs", "GetQueueUrl"))
            })
            .await?;
        Ok(r.and_then(|r| r.queue_url))
    }
    async fn owned(&self, cx: &Cx, url: &str) -> Result<Claim, StepError> {
        let t = cx
            .aws(QUEUE, || async {
                cx.aws
                    .sqs
                    .list_queue_tags()
                    .queue_url(url)
                    .send()
                    .await
                    .map_err(err("sqs", "ListQueueTags"))
            })
            .await?;
        Ok(cx.claim(
            t.tags()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ))
    }
}

#[async_trait]
impl Step<Cx> for NotifyQueue {
    fn key(&self) -> &'static str {
        "queue"
    }
    fn title(&self) -> &'static str {
        QUEUE
    }
    fn needs(&self) -> &'static [&'static str] {
        &["kms_key"]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let attrs = self.to_send(cx, None)?;
        if let Some(url) = self.url(cx).await? {
            let claim = self.owned(cx, &url).await?;
            cx.adopt(QUEUE, &format!("SQS queue {}", cx.s.queue_name), claim)?;
            cx.j().queue_url = Some(url);
            return self.repair(cx, &[]).await;
        }
        let tags: std::collections::HashMap<String, String> = cx.tags().into_iter().collect();
        let r = cx
            .aws(QUEUE, || async {
                cx.aws
                    .sqs
                    .create_queue()
                    .queue_name(&cx.s.queue_name)
                    .set_attributes(Some(attrs.iter().cloned().collect()))
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(err("sqs", "CreateQueue"))
            })
            .await?;
        cx.j().queue_url = r.queue_url;
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        let Some(url) = self.url(cx).await? else {
            return Ok(Observed::Gone);
        };
        cx.j().queue_url = Some(url.clone());
        let got = cx
            .aws(QUEUE, || async {
                cx.aws
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                    .send()
                    .await
                    .map_err(err("sqs", "GetQueueAttributes"))
            })
            .await?;
        let live = got.attributes().cloned().unwrap_or_default();
        let mut problems = Vec::new();
        for (name, want) in self.attributes(cx) {
            let have = live.get(&name).cloned().unwrap_or_default();
            if name == aws_sdk_sqs::types::QueueAttributeName::Policy {
                if have.is_empty() {
                    problems.push(
                        "queue access policy removed: S3 cannot notify the queue".to_string(),
                    );
                } else if let Ok(expected) = serde_json::from_str::<Json>(&want) {
                    problems.extend(policy::drift("queue access policy", &expected, &have));
                    cx.warn_defeats(
                        "Another party's statement defeats ours in the queue access policy",
                        policy::foreign_defeats(
                            "queue access policy",
                            &expected,
                            &have,
                            PolicyKind::Queue,
                        ),
                    );
                }
            } else if have != want {
                problems.push(format!(
                    "queue {} is {:?} instead of {want:?}",
                    name.as_str(),
                    have
                ));
            }
        }
        Ok(Observed::Present(problems))
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        let url = cx
            .j()
            .queue_url
            .clone()
            .ok_or_else(|| fail(QUEUE, "no queue recorded"))?;
        let live = cx
            .aws(QUEUE, || async {
                cx.aws
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
                    .send()
                    .await
                    .map_err(err("sqs", "GetQueueAttributes"))
            })
            .await?
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::Policy)
                    .cloned()
            });
        let attrs = self.to_send(cx, live.as_deref())?;
        cx.aws(QUEUE, || async {
            cx.aws
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attrs.iter().cloned().collect()))
                .send()
                .await
                .map_err(err("sqs", "SetQueueAttributes"))
        })
        .await?;
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(url) = self.url(cx).await? else {
            return Ok(());
        };
        let claim = self.owned(cx, &url).await?;
        if !cx.deletable(&format!("SQS queue {}", cx.s.queue_name), claim) {
            return Ok(());
        }
        cx.aws_opt(QUEUE, || async {
            cx.aws
                .sqs
                .delete_queue()
                .queue_url(&url)
                .send()
                .await
                .map_err(err("sqs", "DeleteQueue"))
        })
        .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
pub struct BucketNotice;
const NOTICE: &str =
    "Step 5: S3 event notification ExpelNotifyQueue (all object-create events to the queue)";

impl BucketNotice {
    async fn current(&self, cx: &Cx) -> Result<Option<aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput>, StepError>{
        cx.aws_opt(NOTICE, || async {
            cx.aws
                .s3
                .get_bucket_notification_configuration()
                .bucket(&cx.s.bucket_name)
                .send()
                .await
                .map_err(err("s3", "GetBucketNotificationConfiguration"))
        })
        .await
    }
    /// Writes the bucket's notification configuration with ours replaced (`keep_ours`) or
    /// removed, leaving everyone else's configurations alone.
    async fn put(&self, cx: &Cx, keep_ours: bool) -> Result<(), StepError> {
        use aws_sdk_s3::types::*;
        let cur = self.current(cx).await?;
        let mut queues: Vec<QueueConfiguration> = cur
            .as_ref()
            .map(|c| {
                c.queue_configurations()
                    .iter()
                    .filter(|q| q.id() != Some(NOTIFICATION_ID))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if keep_ours {
            queues.push(
                QueueConfiguration::builder()
                    .id(NOTIFICATION_ID)
                    .queue_arn(cx.queue_arn())
                    .events(Event::from("s3:ObjectCreated:*"))
                    .build()
                    .map_err(|e| fail(NOTICE, e))?,
            );
        }
        let conf = NotificationConfiguration::builder()
            .set_queue_configurations(Some(queues))
            .set_topic_configurations(cur.as_ref().map(|c| c.topic_configurations().to_vec()))
            .set_lambda_function_configurations(
                cur.as_ref()
                    .map(|c| c.lambda_function_configurations().to_vec()),
            )
            .set_event_bridge_configuration(
                cur.as_ref()
                    .and_then(|c| c.event_bridge_configuration().cloned()),
            )
            .build();
        cx.aws(NOTICE, || async {
            cx.aws
                .s3
                .put_bucket_notification_configuration()
                .bucket(&cx.s.bucket_name)
                .notification_configuration(conf.clone())
                .send()
                .await
                .map_err(err("s3", "PutBucketNotificationConfiguration"))
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for BucketNotice {
    fn key(&self) -> &'static str {
        "bucket_notification"
    }
    fn title(&self) -> &'static str {
        NOTICE
    }
    fn needs(&self) -> &'static [&'static str] {
        &["bucket", "queue"]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        self.put(cx, true).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        let Some(cur) = self.current(cx).await? else {
            return Ok(Observed::Gone);
        };
        let ours = cur
            .queue_configurations()
            .iter()
            .find(|q| q.id() == Some(NOTIFICATION_ID));
        Ok(match ours {
            None => Observed::Gone,
            Some(q) => {
                let mut p = Vec::new();
                if q.queue_arn() != cx.queue_arn() {
                    p.push(format!(
                        "notification targets {} instead of {}",
                        q.queue_arn(),
                        cx.queue_arn()
                    ));
                }
                if !q
                    .events()
                    .iter()
                    .any(|e| e.as_str() == "s3:ObjectCreated:*")
                {
                    p.push("notification no longer covers all object-create events".to_string());
                }
                Observed::Present(p)
            }
        })
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        self.put(cx, true).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        if self.current(cx).await?.is_none() {
            return Ok(());
        }
        self.put(cx, false).await
    }
}

// ---------------------------------------------------------------------------------------
pub struct Trail;
const TRAIL: &str = "Step 1: multi-region trail with log file validation, SSE-KMS and management events; logging on";

impl Trail {
    async fn get(&self, cx: &Cx) -> Result<Option<aws_sdk_cloudtrail::types::Trail>, StepError> {
        let r = cx
            .aws_opt(TRAIL, || async {
                cx.aws
                    .cloudtrail
                    .get_trail()
                    .name(&cx.s.trail_name)
                    .send()
                    .await
                    .map_err(err("cloudtrail", "GetTrail"))
            })
            .await?;
        Ok(r.and_then(|r| r.trail))
    }
    async fn owned(&self, cx: &Cx, arn: &str) -> Result<Claim, StepError> {
        let r = cx
            .aws(TRAIL, || async {
                cx.aws
                    .cloudtrail
                    .list_tags()
                    .resource_id_list(arn)
                    .send()
                    .await
                    .map_err(err("cloudtrail", "ListTags"))
            })
            .await?;
        Ok(cx.claim(
            r.resource_tag_list()
                .iter()
                .flat_map(|t| t.tags_list())
                .map(|t| (t.key(), t.value().unwrap_or_default())),
        ))
    }
    async fn settle(&self, cx: &Cx) -> Result<(), StepError> {
        use aws_sdk_cloudtrail::types::*;
        let sel = EventSelector::builder()
            .read_write_type(ReadWriteType::All)
            .include_management_events(true)
            .build();
        cx.aws(TRAIL, || async {
            cx.aws
                .cloudtrail
                .put_event_selectors()
                .trail_name(&cx.s.trail_name)
                .event_selectors(sel.clone())
                .send()
                .await
                .map_err(err("cloudtrail", "PutEventSelectors"))
        })
        .await?;
        cx.aws(TRAIL, || async {
            cx.aws
                .cloudtrail
                .start_logging()
                .name(&cx.s.trail_name)
                .send()
                .await
                .map_err(err("cloudtrail", "StartLogging"))
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for Trail {
    fn key(&self) -> &'static str {
        "trail"
    }
    fn title(&self) -> &'static str {
        TRAIL
    }
    fn needs(&self) -> &'static [&'static str] {
        &["kms_key", "bucket", "bucket_notification"]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if let Some(t) = self.get(cx).await? {
            let claim = self.owned(cx, t.trail_arn().unwrap_or_default()).await?;
            cx.adopt(TRAIL, &format!("trail {}", cx.s.trail_name), claim)?;
            return self.repair(cx, &[]).await;
        }
        let key = cx
            .j()
            .key_arn
            .clone()
            .ok_or_else(|| fail(TRAIL, "the KMS key does not exist"))?;
        let tags: Vec<_> = cx
            .tags()
            .into_iter()
            .filter_map(|(k, v)| {
                aws_sdk_cloudtrail::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .ok()
            })
            .collect();
        cx.aws(TRAIL, || async {
            cx.aws
                .cloudtrail
                .create_trail()
                .name(&cx.s.trail_name)
                .s3_bucket_name(&cx.s.bucket_name)
                .is_multi_region_trail(true)
                .include_global_service_events(true)
                .enable_log_file_validation(true)
                .kms_key_id(&key)
                .is_organization_trail(cx.s.organization_trail)
                .set_tags_list(Some(tags.clone()))
                .send()
                .await
                .map_err(err("cloudtrail", "CreateTrail"))
        })
        .await?;
        self.settle(cx).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        let Some(t) = self.get(cx).await? else {
            return Ok(Observed::Gone);
        };
        let mut p = Vec::new();
        if t.is_multi_region_trail() != Some(true) {
            p.push("trail is no longer multi-region".to_string());
        }
        if t.log_file_validation_enabled() != Some(true) {
            p.push("trail log file validation is off".to_string());
        }
        let key = cx.j().key_arn.clone().unwrap_or_default();
        if t.kms_key_id().unwrap_or_default() != key {
            p.push("trail logs are no longer encrypted with the integration's KMS key".to_string());
        }
        if t.s3_bucket_name().unwrap_or_default() != cx.s.bucket_name {
            p.push(format!(
                "trail writes to {} instead of {}",
                t.s3_bucket_name().unwrap_or_default(),
                cx.s.bucket_name
            ));
        }
        if t.is_organization_trail().unwrap_or(false) != cx.s.organization_trail {
            p.push("trail's organization setting differs".to_string());
        }
        let status = cx
            .aws(TRAIL, || async {
                cx.aws
                    .cloudtrail
                    .get_trail_status()
                    .name(&cx.s.trail_name)
                    .send()
                    .await
                    .map_err(err("cloudtrail", "GetTrailStatus"))
            })
            .await?;
        if status.is_logging() != Some(true) {
            p.push("trail logging is stopped".to_string());
        }
        let sel = cx
            .aws(TRAIL, || async {
                cx.aws
                    .cloudtrail
                    .get_event_selectors()
                    .trail_name(&cx.s.trail_name)
                    .send()
                    .await
                    .map_err(err("cloudtrail", "GetEventSelectors"))
            })
            .await?;
        let mgmt_rw = sel.event_selectors().iter().any(|s| {
            s.include_management_events() == Some(true)
                && s.read_write_type().map(|r| r.as_str()) == Some("All")
                && s.exclude_management_event_sources().is_empty()
        });
        if !mgmt_rw {
            p.push("trail no longer records all read and write management events".to_string());
        }
        Ok(Observed::Present(p))
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        let key = cx
            .j()
            .key_arn
            .clone()
            .ok_or_else(|| fail(TRAIL, "the KMS key does not exist"))?;
        cx.aws(TRAIL, || async {
            cx.aws
                .cloudtrail
                .update_trail()
                .name(&cx.s.trail_name)
                .s3_bucket_name(&cx.s.bucket_name)
                .is_multi_region_trail(true)
                .include_global_service_events(true)
                .enable_log_file_validation(true)
                .kms_key_id(&key)
                .is_organization_trail(cx.s.organization_trail)
                .send()
                .await
                .map_err(err("cloudtrail", "UpdateTrail"))
        })
        .await?;
        self.settle(cx).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(t) = self.get(cx).await? else {
            return Ok(());
        };
        let claim = self.owned(cx, t.trail_arn().unwrap_or_default()).await?;
        if !cx.deletable(&format!("trail {}", cx.s.trail_name), claim) {
            return Ok(());
        }
        cx.aws_opt(TRAIL, || async {
            cx.aws
                .cloudtrail
                .delete_trail()
                .name(&cx.s.trail_name)
                .send()
                .await
                .map_err(err("cloudtrail", "DeleteTrail"))
        })
        .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
pub struct ApiPolicy;
const POLICY: &str = "Step 6: IAM policy ExpelAPIPolicy";

impl ApiPolicy {
    fn document(&self, cx: &Cx) -> Json {
        policy::api_policy(
            &cx.queue_arn(),
            &cx.bucket_arn(),
            &cx.j().key_arn.clone().unwrap_or_default(),
        )
    }
}

#[async_trait]
impl Step<Cx> for ApiPolicy {
    fn key(&self) -> &'static str {
        "api_policy"
    }
    fn title(&self) -> &'static str {
        POLICY
    }
    fn needs(&self) -> &'static [&'static str] {
        &["kms_key", "bucket", "queue"]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let iam = cx.iam(POLICY);
        if iam.policy(&cx.policy_arn()).await?.is_some() {
            let claim = iam.policy_claim(&cx.policy_arn(), &cx.s.owner).await?;
            cx.adopt(POLICY, &format!("IAM policy {}", cx.s.policy_name), claim)?;
            return match self.observe(cx).await? {
                Observed::Present(p) if !p.is_empty() => self.repair(cx, &p).await,
                _ => Ok(()),
            };
        }
        iam.create_policy(
            &cx.s.policy_name,
            "Expel Workbench: read-only investigation access plus the CloudTrail queue, logs and key",
            &self.document(cx),
            &cx.iam_tags(),
        )
        .await?;
        cx.credentials_changed();
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        cx.iam(POLICY)
            .observe_policy(&cx.policy_arn(), "ExpelAPIPolicy", &self.document(cx))
            .await
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        cx.iam(POLICY)
            .put_policy_document(&cx.policy_arn(), &self.document(cx))
            .await?;
        cx.credentials_changed();
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let iam = cx.iam(POLICY);
        let arn = cx.policy_arn();
        if iam.policy(&arn).await?.is_none() {
            return Ok(());
        }
        let claim = iam.policy_claim(&arn, &cx.s.owner).await?;
        if !cx.deletable(&format!("IAM policy {}", cx.s.policy_name), claim) {
            return Ok(());
        }
        if let Some(kept) = iam.delete_policy(&arn, &cx.s.role_name).await? {
            cx.warn(POLICY_KEPT, kept.policy());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
pub struct ServiceRole;
const ROLE: &str =
    "Step 7: IAM role ExpelServiceRole trusting Expel with the organization's external id";

impl ServiceRole {
    fn spec<'a>(cx: &'a Cx, policy_arn: &'a str) -> ServiceRoleSpec<'a> {
        ServiceRoleSpec {
            name: &cx.s.role_name,
            description:
                "Expel Workbench assumes this role to read CloudTrail logs and investigate",
            trust: policy::trust_policy(&cx.s.principals, &cx.s.external_id),
            policy_arn,
            policy_name: &cx.s.policy_name,
        }
    }
}

#[async_trait]
impl Step<Cx> for ServiceRole {
    fn key(&self) -> &'static str {
        "service_role"
    }
    fn title(&self) -> &'static str {
        ROLE
    }
    fn needs(&self) -> &'static [&'static str] {
        &["api_policy"]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let iam = cx.iam(ROLE);
        if iam.role(&cx.s.role_name).await?.is_some() {
            let claim = iam.role_claim(&cx.s.role_name, &cx.s.owner).await?;
            cx.adopt(ROLE, &format!("IAM role {}", cx.s.role_name), claim)?;
            // Adopted: repaired only where it differs, so a role left as it was does not
            // count as new credentials for `wait_for_healthy`.
            return match self.observe(cx).await? {
                Observed::Present(p) if !p.is_empty() => self.repair(cx, &p).await,
                _ => Ok(()),
            };
        }
        iam.create_service_role(&Self::spec(cx, &cx.policy_arn()), &cx.iam_tags())
            .await?;
        cx.credentials_changed();
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        let (seen, widened) = cx
            .iam(ROLE)
            .observe_service_role(&Self::spec(cx, &cx.policy_arn()))
            .await?;
        cx.warn_defeats(
            "Another party's statement defeats ours in the role's trust policy",
            widened,
        );
        Ok(seen)
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        cx.iam(ROLE)
            .repair_service_role(&Self::spec(cx, &cx.policy_arn()))
            .await?;
        cx.credentials_changed();
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let iam = cx.iam(ROLE);
        if iam.role(&cx.s.role_name).await?.is_none() {
            return Ok(());
        }
        let claim = iam.role_claim(&cx.s.role_name, &cx.s.owner).await?;
        if !cx.deletable(&format!("IAM role {}", cx.s.role_name), claim) {
            return Ok(());
        }
        // Kept with what others attached: the resource reports it once the rest is done.
        if let Some(kept) = iam.delete_role(&cx.s.role_name, &cx.policy_arn()).await? {
            cx.keep_role(kept);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
pub struct Canary;
const CANARY: &str =
    "Verify: a canary object in the bucket reaches the queue as an ObjectCreated message";

#[async_trait]
impl Step<Cx> for Canary {
    fn key(&self) -> &'static str {
        "pipeline"
    }
    fn title(&self) -> &'static str {
        CANARY
    }
    fn needs(&self) -> &'static [&'static str] {
        &["bucket_notification", "trail"]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if !cx.s.verify {
            return Ok(());
        }
        let url = cx
            .j()
            .queue_url
            .clone()
            .ok_or_else(|| fail(CANARY, "no queue recorded"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // No "/" in the key: S3 URL-encodes keys in event records.
        let key = format!("expel-canary-{nanos}.txt");
        let b = &cx.s.bucket_name;
        cx.aws(CANARY, || async {
            cx.aws
                .s3
                .put_object()
                .bucket(b)
                .key(&key)
                .body(aws_sdk_s3::primitives::ByteStream::from_static(
                    b"terraform-provider-expel pipeline check",
                ))
                .send()
                .await
                .map_err(err("s3", "PutObject"))
        })
        .await?;
        let started = std::time::Instant::now();
        let mut delivered = false;
        while !delivered
            && started.elapsed() < std::time::Duration::from_secs(60)
            && std::time::Instant::now() < cx.deadline.until
        {
            let r = cx
                .aws(CANARY, || async {
                    cx.aws
                        .sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .map_err(err("sqs", "ReceiveMessage"))
                })
                .await?;
            for m in r.messages() {
                let body = m.body().unwrap_or_default();
                // Only our own messages are removed: S3's test event and the canary's.
                let ours = body.contains(&key) || body.contains("s3:TestEvent");
                if body.contains(&key) {
                    delivered = true;
                }
                if let (true, Some(h)) = (ours, m.receipt_handle()) {
                    cx.aws(CANARY, || async {
                        cx.aws
                            .sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(h)
                            .send()
                            .await
                            .map_err(err("sqs", "DeleteMessage"))
                    })
                    .await?;
                }
            }
        }
        cx.aws_opt(CANARY, || async {
            cx.aws
                .s3
                .delete_object()
                .bucket(b)
                .key(&key)
                .send()
                .await
                .map_err(err("s3", "DeleteObject"))
        })
        .await?;
        if delivered {
            Ok(())
        } else {
            Err(fail(
                CANARY,
                format!("the canary object {key} in {b} produced no ObjectCreated message in {} within 60 s; check the bucket notification, the queue policy and the key policy (S3 must be allowed to use the key)", cx.s.queue_name),
            ))
        }
    }
    async fn observe(&self, _cx: &Cx) -> Result<Observed, StepError> {
        Ok(Observed::Present(vec![]))
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        self.create(cx).await
    }
    async fn delete(&self, _cx: &Cx) -> Result<(), StepError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
pub struct WorkbenchDevice;
const DEVICE: &str = "Step 8: register AWS CloudTrail as a security device in Workbench";

impl WorkbenchDevice {
    pub fn spec(cx: &Cx) -> DeviceSpec {
        DeviceSpec {
            name: cx.s.name.clone(),
            location: cx.s.device_location.clone(),
            device_type: "CLOUD".into(),
            plugin_slug: cx.s.plugin_slug.clone(),
            device_spec: json!({
                "role_arn": cx.role_arn(),
                "role_session_name": cx.s.role_session_name,
                "region": cx.loc.region,
                "sqs_queue_url": cx.j().queue_url.clone().unwrap_or_default(),
            }),
        }
    }
    /// Validates the device_spec against the plugin's JSON schema before any call.
    async fn check_spec(&self, cx: &Cx, spec: &DeviceSpec) -> Result<(), StepError> {
        let plugins = cx.wb(DEVICE, || cx.wbc().plugins()).await?;
        check_device_spec(&plugins, &spec.plugin_slug, &spec.device_spec)
            .map_err(|e| fail(DEVICE, e))
    }
    async fn wait_healthy(&self, cx: &Cx, id: &str) -> Result<(), StepError> {
        let changed = cx.j().credentials_changed;
        match crate::resources::device_health::wait_healthy(cx.wbc(), &cx.deadline, id, changed)
            .await
        {
            Ok(d) => {
                cx.j().device_status = d.status;
                Ok(())
            }
            Err(e) => {
                if e.status.is_some() {
                    cx.j().device_status = e.status;
                }
                Err(fail(DEVICE, e.message))
            }
        }
    }
    fn differences(&self, cx: &Cx, d: &crate::clients::workbench::SecurityDevice) -> Vec<String> {
        let want = Self::spec(cx);
        let mut p = Vec::new();
        if d.name != want.name {
            p.push(format!(
                "device name is {:?} instead of {:?}",
                d.name, want.name
            ));
        }
        if d.location != want.location {
            p.push(format!(
                "device location is {:?} instead of {:?}",
                d.location, want.location
            ));
        }
        if d.plugin_slug != want.plugin_slug {
            p.push(format!(
                "device plugin is {:?} instead of {:?}",
                d.plugin_slug, want.plugin_slug
            ));
        }
        if let Some(fields) = want.device_spec.as_object() {
            for (k, v) in fields {
                if d.device_spec.get(k) != Some(v) {
                    p.push(format!(
                        "device {k} is {} instead of {v}",
                        d.device_spec.get(k).cloned().unwrap_or(Json::Null)
                    ));
                }
            }
        }
        p
    }
}

#[async_trait]
impl Step<Cx> for WorkbenchDevice {
    fn key(&self) -> &'static str {
        "workbench_device"
    }
    fn title(&self) -> &'static str {
        DEVICE
    }
    fn needs(&self) -> &'static [&'static str] {
        &["service_role", "queue", "pipeline"]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let spec = Self::spec(cx);
        self.check_spec(cx, &spec).await?;
        let org = cx.s.workbench_org.clone();
        let role_arn = cx.role_arn();
        // Look up before every attempt: a create whose answer was lost must not register the
        // device twice.
        let found = cx
            .wb(DEVICE, || async {
                let existing = cx.wbc().devices_named(&org, &spec.name).await?;
                match existing.into_iter().next() {
                    Some(d) => Ok((d, false)),
                    None => cx.wbc().create_device(&org, &spec).await.map(|d| (d, true)),
                }
            })
            .await?;
        let id = match found {
            (d, true) => {
                cx.j().device_id = Some(d.id.clone());
                cx.j().device_status = d.status.clone();
                d.id
            }
            // Ours when it points at our role: a rerun after a crash adopts it.
            (d, false)
                if d.device_spec.get("role_arn").and_then(Json::as_str) == Some(role_arn.as_str()) =>
            {
                cx.j().device_id = Some(d.id.clone());
                if !self.differences(cx, &d).is_empty() {
                    self.repair(cx, &[]).await?;
                }
                d.id
            }
            (d, false) => {
                return Err(fail(
                    DEVICE,
                    format!("Workbench already has a device named {:?} ({}) for another role; import it (terraform import) or choose another name", d.name, d.id),
                ))
            }
        };
        if cx.s.wait_for_healthy {
            self.wait_healthy(cx, &id).await?;
        }
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        let Some(id) = cx.j().device_id.clone() else {
            return Ok(Observed::NotCreated);
        };
        let Some(d) = cx.wb(DEVICE, || cx.wbc().device(&id)).await? else {
            return Ok(Observed::Gone);
        };
        cx.j().device_status = d.status.clone();
        if d.status.as_deref() == Some("unhealthy") {
            cx.warn(
                "Security device is not healthy",
                format!(
                    "Workbench reports the security device {:?} unhealthy: {}",
                    d.name,
                    d.attributes
                        .get("status_details")
                        .cloned()
                        .unwrap_or(Json::Null)
                ),
            );
        }
        Ok(Observed::Present(self.differences(cx, &d)))
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        let id = cx
            .j()
            .device_id
            .clone()
            .ok_or_else(|| fail(DEVICE, "no device recorded"))?;
        let spec = Self::spec(cx);
        self.check_spec(cx, &spec).await?;
        let attrs = json!({"name": spec.name, "location": spec.location, "plugin_slug": spec.plugin_slug, "device_spec": spec.device_spec});
        let d = cx
            .wb(DEVICE, || cx.wbc().update_device(&id, attrs.clone()))
            .await?;
        cx.j().device_status = d.status.clone();
        if cx.s.wait_for_healthy {
            self.wait_healthy(cx, &id).await?;
        }
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(id) = cx.j().device_id.clone() else {
            return Ok(());
        };
        cx.wb(DEVICE, || cx.wbc().delete_device(&id)).await
    }
}

// ---------------------------------------------------------------------------------------
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
    if TrailBucket.exists(cx).await? {
        let claim = TrailBucket.owned(cx).await?;
        cx.adopt(BUCKET, &format!("S3 bucket {}", cx.s.bucket_name), claim)?;
    }
    if let Some(url) = NotifyQueue.url(cx).await? {
        let claim = NotifyQueue.owned(cx, &url).await?;
        cx.adopt(QUEUE, &format!("SQS queue {}", cx.s.queue_name), claim)?;
    }
    if let Some(t) = Trail.get(cx).await? {
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

/// Applies the configured tags to every AWS object (the ownership tag stays) and removes the
/// keys the configuration dropped. Tags others add are left alone.
pub async fn retag(cx: &Cx, removed: &[String]) -> Result<(), StepError> {
    let tags = cx.tags();
    let key_id = cx.j().key_id.clone();
    let queue_url = cx.j().queue_url.clone();
    if let Some(k) = &key_id {
        let t: Vec<_> = tags
            .iter()
            .filter_map(|(k, v)| {
                aws_sdk_kms::types::Tag::builder()
                    .tag_key(k)
                    .tag_value(v)
                    .build()
                    .ok()
            })
            .collect();
        cx.aws(TAGS, || async {
            cx.aws
                .kms
                .tag_resource()
                .key_id(k)
                .set_tags(Some(t.clone()))
                .send()
                .await
                .map_err(err("kms", "TagResource"))
        })
        .await?;
        if !removed.is_empty() {
            cx.aws(TAGS, || async {
                cx.aws
                    .kms
                    .untag_resource()
                    .key_id(k)
                    .set_tag_keys(Some(removed.to_vec()))
                    .send()
                    .await
                    .map_err(err("kms", "UntagResource"))
            })
            .await?;
        }
    }
    let b = &cx.s.bucket_name;
    let current = cx
        .aws_opt(TAGS, || async {
            cx.aws
                .s3
                .get_bucket_tagging()
                .bucket(b)
                .send()
                .await
                .map_err(err("s3", "GetBucketTagging"))
        })
        .await?;
    let mut set: BTreeMap<String, String> = current
        .map(|c| {
            c.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default();
    for k in removed {
        set.remove(k);
    }
    set.extend(tags.iter().cloned());
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
        .map_err(|e| fail(TAGS, e))?;
    cx.aws(TAGS, || async {
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
    if let Some(url) = &queue_url {
        let map: std::collections::HashMap<String, String> = tags.iter().cloned().collect();
        cx.aws(TAGS, || async {
            cx.aws
                .sqs
                .tag_queue()
                .queue_url(url)
                .set_tags(Some(map.clone()))
                .send()
                .await
                .map_err(err("sqs", "TagQueue"))
        })
        .await?;
        if !removed.is_empty() {
            cx.aws(TAGS, || async {
                cx.aws
                    .sqs
                    .untag_queue()
                    .queue_url(url)
                    .set_tag_keys(Some(removed.to_vec()))
                    .send()
                    .await
                    .map_err(err("sqs", "UntagQueue"))
            })
            .await?;
        }
    }
    let trail = policy::trail_arn(&cx.loc, &cx.s.trail_name);
    let ct: Vec<_> = tags
        .iter()
        .filter_map(|(k, v)| {
            aws_sdk_cloudtrail::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect();
    cx.aws(TAGS, || async {
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
        cx.aws(TAGS, || async {
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
    let iam = cx.iam(TAGS);
    iam.retag_policy(&cx.policy_arn(), &cx.iam_tags(), removed)
        .await?;
    iam.retag_role(&cx.s.role_name, &cx.iam_tags(), removed)
        .await?;
    Ok(())
}
