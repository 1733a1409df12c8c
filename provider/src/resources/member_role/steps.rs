//! The two guide steps a member account of an AWS Organization needs (guide Step 6 note:
//! "The role and policy must be replicated across all the other accounts in the organization
//! ... The policy in the sub-accounts can be changed to exclude the SQS and S3 resources";
//! Step 7: "All accounts roles must have the same name"). Objects we create carry the
//! ownership tags (`ownership`); we adopt or delete nothing else.
use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value as Json;

use crate::clients::aws::AwsClients;
use crate::engine::{self, Deadline, Fix, Observed, Problem, Step, StepContext, StepError};
use crate::policy::{self, Location};
use crate::resources::support::iam::tag_map;
use crate::resources::support::iam::{iam_tags, Iam, Kept, ServiceRoleSpec, POLICY_KEPT};
use crate::resources::support::ownership::{self, Claim, Mark, Owner};
use crate::resources::support::tags::{TagContext, TaggedPiece, Tags};

/// The desired state, from the plan.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub role_name: String,
    pub policy_name: String,
    pub principals: Vec<String>,
    pub external_id: String,
    /// What both objects carry besides the ownership tags: `tags_all` (the provider's
    /// `default_tags` under `tags`).
    pub tags: BTreeMap<String, String>,
    /// The auto remediations whose permissions the policy carries (`auto_remediation`).
    pub remediations: policy::Remediations,
}

pub struct Cx {
    pub aws: AwsClients,
    pub loc: Location,
    pub s: Settings,
    /// The instance whose objects these are (`ownership`).
    pub owner: Owner,
    pub deadline: Deadline,
    /// Said to the user as warnings (summary, detail), e.g. an object destroy left because
    /// it is not ours.
    pub warnings: Mutex<Vec<(&'static str, String)>>,
    /// Our roles destroy kept because others attached things to them.
    pub roles_kept: Mutex<Vec<Kept>>,
}

/// The guide's pieces: the step ids, named (snake_case) as in the `drift` map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Piece {
    ApiPolicy,
    ServiceRole,
}

/// Why a piece differs: its repair depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// A document or the trust policy, set back in place.
    #[default]
    Setting,
    /// A tag of `tags_all` is missing or changed: the object is tagged again.
    Tags,
}

impl engine::Cause for Cause {
    fn fix(self) -> Fix {
        Fix::InPlace
    }
}

impl TagContext for Cx {
    fn wanted_tags(&self) -> &Tags {
        &self.s.tags
    }
    fn tag_cause() -> Cause {
        Cause::Tags
    }
}

impl StepContext for Cx {
    type Id = Piece;
    type Cause = Cause;
    fn deadline(&self) -> &Deadline {
        &self.deadline
    }
}

impl Cx {
    fn warn(&self, summary: &'static str, detail: String) {
        match self.warnings.lock() {
            Ok(mut g) => g.push((summary, detail)),
            Err(p) => p.into_inner().push((summary, detail)),
        }
    }
    fn keep_role(&self, kept: Kept) {
        match self.roles_kept.lock() {
            Ok(mut g) => g.push(kept),
            Err(p) => p.into_inner().push(kept),
        }
    }
    /// Destroy leaves an object this instance did not make, and says so.
    fn leave_foreign(&self, what: &str, claim: &Claim) {
        let detail = ownership::left_in_place(what, &self.loc.account_id, claim);
        self.warn(ownership::NOT_OURS_LEFT, detail);
    }
    /// Adopting an object requires it to be ours; one made before owners existed gets ours.
    fn adoptable(&self, step: &'static str, what: &str, claim: Claim) -> Result<bool, StepError> {
        if !claim.is_ours() {
            return Err(StepError::refused(
                step,
                claim.refusal(
                    what,
                    &self.owner,
                    Mark::Tags,
                    "Delete or rename it, or choose another name.",
                ),
            ));
        }
        Ok(claim == Claim::Unclaimed)
    }
    pub fn policy_arn(&self) -> String {
        policy::policy_arn(&self.loc, &self.s.policy_name)
    }
    pub fn tags(&self) -> Vec<aws_sdk_iam::types::Tag> {
        iam_tags(
            &self.owner,
            self.s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
    fn iam(&self, step: &'static str) -> Iam<'_> {
        Iam {
            aws: &self.aws,
            deadline: &self.deadline,
            step,
        }
    }
}

// ---------------------------------------------------------------------------------------
pub struct MemberPolicy;
const POLICY: &str = "Step 6 (member account): IAM policy ExpelAPIPolicy, read-only statement (and the auto remediations' permissions)";

impl MemberPolicy {
    pub fn document(cx: &Cx) -> Json {
        policy::member_api_policy(cx.s.remediations)
    }
    /// Whether the policy exists; if it does, it must be this instance's (one made before
    /// owners existed becomes this instance's).
    async fn claim(&self, cx: &Cx) -> Result<bool, StepError> {
        let iam = cx.iam(POLICY);
        if iam.policy(&cx.policy_arn()).await?.is_none() {
            return Ok(false);
        }
        let claim = iam.policy_claim(&cx.policy_arn(), &cx.owner).await?;
        if cx.adoptable(POLICY, &format!("IAM policy {}", cx.s.policy_name), claim)? {
            self.retag(cx, &[]).await?;
        }
        Ok(true)
    }
    /// Brings the policy's tags to the desired set: `removed` are keys the configuration
    /// no longer has (others' tags stay).
    pub async fn retag(&self, cx: &Cx, removed: &[String]) -> Result<(), StepError> {
        cx.iam(POLICY)
            .retag_policy(&cx.policy_arn(), &cx.tags(), removed)
            .await
    }
}

#[async_trait]
impl Step<Cx> for MemberPolicy {
    fn id(&self) -> Piece {
        Piece::ApiPolicy
    }
    fn title(&self) -> &'static str {
        POLICY
    }
    fn needs(&self) -> &'static [Piece] {
        &[]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if self.claim(cx).await? {
            return match self.observe(cx).await? {
                Observed::Present(p) if !p.is_empty() => self.repair(cx, &p).await,
                _ => Ok(()),
            };
        }
        cx.iam(POLICY).create_policy(
            &cx.s.policy_name,
            "Expel Workbench: read-only investigation access (member account of an AWS Organization)",
            &Self::document(cx),
            &cx.tags(),
        )
        .await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        cx.iam(POLICY)
            .observe_policy(&cx.policy_arn(), &cx.s.policy_name, &Self::document(cx))
            .await
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        cx.iam(POLICY)
            .put_policy_document(&cx.policy_arn(), &Self::document(cx))
            .await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let iam = cx.iam(POLICY);
        let arn = cx.policy_arn();
        if iam.policy(&arn).await?.is_none() {
            return Ok(());
        }
        let claim = iam.policy_claim(&arn, &cx.owner).await?;
        if !claim.is_ours() {
            cx.leave_foreign(&format!("IAM policy {}", cx.s.policy_name), &claim);
            return Ok(());
        }
        if let Some(kept) = iam.delete_policy(&arn, &cx.s.role_name).await? {
            cx.warn(POLICY_KEPT, kept.policy());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
pub struct MemberRole;
const ROLE: &str = "Step 7 (member account): IAM role ExpelServiceRole trusting Expel with the organization's external id";

impl MemberRole {
    pub fn trust(s: &Settings) -> Json {
        policy::trust_policy(&s.principals, &s.external_id)
    }
    fn spec<'a>(cx: &'a Cx, policy_arn: &'a str) -> ServiceRoleSpec<'a> {
        ServiceRoleSpec {
            name: &cx.s.role_name,
            description: "Expel Workbench assumes this role to investigate in this account",
            trust: Self::trust(&cx.s),
            policy_arn,
            policy_name: &cx.s.policy_name,
        }
    }
    /// Whether the role exists; if it does, it must be this instance's (one made before
    /// owners existed becomes this instance's).
    async fn claim(&self, cx: &Cx) -> Result<bool, StepError> {
        let iam = cx.iam(ROLE);
        if iam.role(&cx.s.role_name).await?.is_none() {
            return Ok(false);
        }
        let claim = iam.role_claim(&cx.s.role_name, &cx.owner).await?;
        if cx.adoptable(ROLE, &format!("IAM role {}", cx.s.role_name), claim)? {
            self.retag(cx, &[]).await?;
        }
        Ok(true)
    }
    /// Brings the role's tags to the desired set: `removed` are keys the configuration no
    /// longer has (others' tags stay).
    pub async fn retag(&self, cx: &Cx, removed: &[String]) -> Result<(), StepError> {
        cx.iam(ROLE)
            .retag_role(&cx.s.role_name, &cx.tags(), removed)
            .await
    }
}

#[async_trait]
impl Step<Cx> for MemberRole {
    fn id(&self) -> Piece {
        Piece::ServiceRole
    }
    fn title(&self) -> &'static str {
        ROLE
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::ApiPolicy]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if self.claim(cx).await? {
            return self.repair(cx, &[]).await;
        }
        cx.iam(ROLE)
            .create_service_role(&Self::spec(cx, &cx.policy_arn()), &cx.tags())
            .await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let (seen, widened) = cx
            .iam(ROLE)
            .observe_service_role(&Self::spec(cx, &cx.policy_arn()))
            .await?;
        for w in widened {
            cx.warn("Another party's statement defeats ours in the role's trust policy", format!("{w}. The provider leaves others' statements alone; remove or narrow that statement if only Expel should assume the role."));
        }
        Ok(seen)
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        cx.iam(ROLE)
            .repair_service_role(&Self::spec(cx, &cx.policy_arn()))
            .await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let iam = cx.iam(ROLE);
        if iam.role(&cx.s.role_name).await?.is_none() {
            return Ok(());
        }
        let claim = iam.role_claim(&cx.s.role_name, &cx.owner).await?;
        if !claim.is_ours() {
            cx.leave_foreign(&format!("IAM role {}", cx.s.role_name), &claim);
            return Ok(());
        }
        // Kept with what others attached: the resource reports it once the policy is done.
        if let Some(kept) = iam.delete_role(&cx.s.role_name, &cx.policy_arn()).await? {
            cx.keep_role(kept);
        }
        Ok(())
    }
}

#[async_trait]
impl TaggedPiece<Cx> for MemberPolicy {
    async fn live_tags(&self, cx: &Cx) -> Result<Tags, StepError> {
        Ok(tag_map(
            &cx.iam(POLICY).policy_tags(&cx.policy_arn()).await?,
        ))
    }
    async fn put_tags(&self, cx: &Cx) -> Result<(), StepError> {
        self.retag(cx, &[]).await
    }
}

#[async_trait]
impl TaggedPiece<Cx> for MemberRole {
    async fn live_tags(&self, cx: &Cx) -> Result<Tags, StepError> {
        Ok(tag_map(&cx.iam(ROLE).role_tags(&cx.s.role_name).await?))
    }
    async fn put_tags(&self, cx: &Cx) -> Result<(), StepError> {
        self.retag(cx, &[]).await
    }
}

// ---------------------------------------------------------------------------------------
/// A state written before owners existed names objects that carry only the marker: they
/// become this instance's (their owner tag added), unless another instance claimed them.
pub async fn claim(cx: &Cx) -> Result<(), StepError> {
    MemberPolicy.claim(cx).await?;
    MemberRole.claim(cx).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
/// IAM renames neither roles nor policies. An update that renames one has already made the
/// new one and attached the policy (converge); this retires the old one (only if it carries
/// our marker). `old` is the member role under its previous names.
pub async fn retire(cx: &Cx, old: &Cx) -> Result<(), StepError> {
    if old.s.role_name != cx.s.role_name {
        MemberRole.delete(old).await?;
    }
    if old.s.policy_name != cx.s.policy_name {
        cx.iam(ROLE)
            .detach(&cx.s.role_name, &old.policy_arn())
            .await?;
        MemberPolicy.delete(old).await?;
    }
    Ok(())
}
