//! Expel's onboarding guide "AWS CloudTrail: new trail", one engine step per guide step. Each step
//! creates or adopts its object, observes it for drift, repairs it and deletes it. Objects we
//! create carry the ownership tags (`ownership`); we adopt or delete nothing else.
//!
//! One file per guide step; this one holds what they share: the desired `Settings`, the
//! `Journal` of ids and the step context `Cx`.
mod api_policy;
mod bucket;
mod canary;
mod device;
pub mod existing;
mod kms_key;
mod notice;
mod queue;
mod remediation;
mod rename;
mod service_role;
mod tagging;
mod trail;

pub use api_policy::ApiPolicy;
pub use bucket::TrailBucket;
pub use canary::Canary;
pub use device::WorkbenchDevice;
pub use existing::KeyAccess;
pub use kms_key::KmsKey;
pub use notice::BucketNotice;
pub use queue::NotifyQueue;
pub use remediation::AutoRemediation;
pub use rename::{adopted_unclaimed, claim, retire};
pub use service_role::ServiceRole;
pub use tagging::retag;
pub use trail::Trail;

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::clients::aws::{AwsClients, AwsError};
use crate::clients::workbench::WorkbenchClient;
use crate::engine::{self, Deadline, Fix, StepContext, StepError};
use crate::policy::{self, CloudTrailNames, Location};
use crate::resources::support::iam::{iam_tags, Iam, Kept};
use crate::resources::support::ownership::{self, Claim, Mark, Owner};
use crate::resources::support::s3::S3;

/// The trail, bucket and key that already exist (`existing_trail`): the integration adds its
/// queue, notification (or subscription), role and policy, and never changes or deletes these.
#[derive(Clone, Debug, PartialEq)]
pub struct Existing {
    pub bucket_name: String,
    pub bucket_account_id: Option<String>,
    pub kms_key_arn: Option<String>,
    pub sns_topic_arn: Option<String>,
    pub trail_arn: Option<String>,
}

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
    /// KMS automatic key rotation on.
    pub enable_key_rotation: bool,
    /// Log bucket versioning on.
    pub bucket_versioning: bool,
    /// Server access logging of the log bucket into this bucket.
    pub access_logging_bucket: Option<String>,
    pub retention_seconds: i64,
    /// What every object carries besides the ownership tags: `tags_all` (the provider's
    /// `default_tags` under `tags`).
    pub tags: BTreeMap<String, String>,
    pub verify: bool,
    pub wait_for_healthy: bool,
    pub force_destroy: bool,
    pub key_deletion_window_days: i32,
    pub plugin_slug: String,
    pub workbench_org: String,
    /// The auto remediations switched on (`auto_remediation`).
    pub remediations: policy::Remediations,
    /// The instance whose objects these are (`ownership`).
    pub owner: Owner,
    /// An existing trail to attach to instead of making one (`existing_trail`).
    pub existing: Option<Existing>,
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
    /// The Workbench `remediation_action_settings` record our device was put in
    /// (`auto_remediation`), and whether this instance made it. Kept in private state.
    pub remediation_id: Option<String>,
    pub remediation_made: bool,
    /// This resource turned key rotation on (private state): `enable_key_rotation = false`
    /// turns it off again, and only then.
    pub rotation_ours: bool,
    /// This resource enabled the bucket's versioning (private state).
    pub versioning_ours: bool,
    /// The access-log bucket this resource pointed the log bucket's logging at (private
    /// state).
    pub logging_ours: Option<String>,
}

/// The guide's pieces: the step ids, named (snake_case) as in the `drift` map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Piece {
    KmsKey,
    Bucket,
    Queue,
    BucketNotification,
    Trail,
    Pipeline,
    ApiPolicy,
    ServiceRole,
    WorkbenchDevice,
    AutoRemediation,
    /// Our statement in an existing trail's key policy (`existing_trail.kms_key_arn`).
    KeyAccess,
}

/// Why a CloudTrail piece differs, where its repair depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// A setting or policy, set back in place.
    #[default]
    Setting,
    /// The KMS key is scheduled for deletion: the deletion is cancelled, the key enabled.
    KeyPendingDeletion,
    /// The KMS key is disabled: enabled again.
    KeyDisabled,
    /// The key's alias is missing: made again.
    AliasMissing,
    /// The key's alias points at another key: moved back.
    AliasElsewhere,
    /// The key's automatic rotation is not as `enable_key_rotation` says: turned on (or, when
    /// this resource turned it on, off).
    KeyRotation,
    /// A tag of `tags_all` is missing or changed: the object is tagged again.
    Tags,
}

impl engine::Cause for Cause {
    fn fix(self) -> Fix {
        match self {
            Cause::KeyPendingDeletion => Fix::Restore,
            _ => Fix::InPlace,
        }
    }
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
    type Id = Piece;
    type Cause = Cause;
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
    /// KMS GetKeyPolicy of `key` (KMS has one policy name: "default"), for `aws` or `aws_opt`.
    async fn get_key_policy(&self, key: &str) -> Result<Option<String>, AwsError> {
        self.aws
            .kms
            .get_key_policy()
            .key_id(key)
            .policy_name("default")
            .send()
            .await
            .map(|o| o.policy)
            .map_err(crate::clients::aws::err("kms", "GetKeyPolicy"))
    }
    /// KMS PutKeyPolicy of `key`, for `aws`.
    async fn put_key_policy(&self, key: &str, doc: &str) -> Result<(), AwsError> {
        self.aws
            .kms
            .put_key_policy()
            .key_id(key)
            .policy_name("default")
            .policy(doc)
            .send()
            .await
            .map(|_| ())
            .map_err(crate::clients::aws::err("kms", "PutKeyPolicy"))
    }
    /// The topic the existing trail's bucket publishes to, if the queue subscribes to one.
    pub fn topic(&self) -> Option<&str> {
        self.s.existing.as_ref()?.sns_topic_arn.as_deref()
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
        Err(StepError::refused(
            step,
            claim.refusal(
                what,
                &self.s.owner,
                Mark::Tags,
                "Import the integration (terraform import) or choose another name.",
            ),
        ))
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
            .map_err(|e| StepError::caused_by(step, e))
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
            Err(e) => Err(StepError::caused_by(step, e)),
        }
    }
}
