//! The two guide steps a member account of an AWS Organization needs (guide Step 6 note:
//! "The role and policy must be replicated across all the other accounts in the organization
//! ... The policy in the sub-accounts can be changed to exclude the SQS and S3 resources";
//! Step 7: "All accounts roles must have the same name"). Objects we create carry the
//! ownership tag; we adopt or delete nothing else.
use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value as Json;

use crate::clients::aws::{err, AwsClients, AwsError};
use crate::engine::{Deadline, Observed, Step, StepError};
use crate::policy::{self, Location};
use crate::resources::cloudtrail::{MARKER_KEY, MARKER_VALUE};

/// The desired state, from the plan.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub role_name: String,
    pub policy_name: String,
    pub principals: Vec<String>,
    pub external_id: String,
    pub tags: BTreeMap<String, String>,
}

pub struct Cx {
    pub aws: AwsClients,
    pub loc: Location,
    pub s: Settings,
    pub deadline: Deadline,
    /// Said to the user as warnings (e.g. an object destroy left because it is not ours).
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl Cx {
    fn warn(&self, w: String) {
        match self.warnings.lock() {
            Ok(mut g) => g.push(w),
            Err(p) => p.into_inner().push(w),
        }
    }
    /// Destroy leaves an object it did not make, and says so.
    fn leave_foreign(&self, what: &str) {
        self.warn(format!(
            "{what} in account {} does not carry the tag {MARKER_KEY}={MARKER_VALUE}: it was not made by this provider and was left in place.",
            self.loc.account_id
        ));
    }
    pub fn policy_arn(&self) -> String {
        policy::policy_arn(&self.loc, &self.s.policy_name)
    }
    pub fn tags(&self) -> Vec<aws_sdk_iam::types::Tag> {
        self.s
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([(MARKER_KEY, MARKER_VALUE)])
            .filter_map(|(k, v)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .ok()
            })
            .collect()
    }
    async fn aws<T, F, Fut>(&self, step: &'static str, op: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        self.deadline.retry(op).await.map_err(|e| fail(step, e))
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
}

fn fail(step: &'static str, e: impl std::fmt::Display) -> StepError {
    StepError {
        step,
        message: e.to_string(),
    }
}

fn marked<'a>(mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    tags.any(|(k, v)| k == MARKER_KEY && v == MARKER_VALUE)
}

fn not_ours(step: &'static str, what: &str) -> StepError {
    StepError {
        step,
        message: format!(
            "{what} already exists and does not carry the tag {MARKER_KEY}={MARKER_VALUE}; \
             it was not made by this provider. Delete or rename it, or choose another name."
        ),
    }
}

/// Differences between our document and the live one, in words.
pub fn policy_drift(what: &str, expected: &Json, actual: &str) -> Vec<String> {
    match policy::parse_document(actual) {
        Ok(doc) => policy::compare(expected, &doc)
            .into_iter()
            .map(|d| format!("{what} statement {:?}: {}", d.sid, d.problem))
            .collect(),
        Err(e) => vec![format!("{what} is unreadable: {e}")],
    }
}

// ---------------------------------------------------------------------------------------
pub struct MemberPolicy;
const POLICY: &str = "Step 6 (member account): IAM policy ExpelAPIPolicy, read-only statement only";

impl MemberPolicy {
    pub fn document() -> Json {
        policy::member_api_policy()
    }
    async fn get(&self, cx: &Cx) -> Result<Option<aws_sdk_iam::types::Policy>, StepError> {
        let arn = cx.policy_arn();
        let r = cx
            .aws_opt(POLICY, || async {
                cx.aws
                    .iam
                    .get_policy()
                    .policy_arn(&arn)
                    .send()
                    .await
                    .map_err(err("iam", "GetPolicy"))
            })
            .await?;
        Ok(r.and_then(|r| r.policy))
    }
    async fn owned(&self, cx: &Cx) -> Result<bool, StepError> {
        let arn = cx.policy_arn();
        let r = cx
            .aws(POLICY, || async {
                cx.aws
                    .iam
                    .list_policy_tags()
                    .policy_arn(&arn)
                    .send()
                    .await
                    .map_err(err("iam", "ListPolicyTags"))
            })
            .await?;
        Ok(marked(r.tags().iter().map(|t| (t.key(), t.value()))))
    }
    async fn versions(&self, cx: &Cx) -> Result<Vec<aws_sdk_iam::types::PolicyVersion>, StepError> {
        let arn = cx.policy_arn();
        let r = cx
            .aws(POLICY, || async {
                cx.aws
                    .iam
                    .list_policy_versions()
                    .policy_arn(&arn)
                    .send()
                    .await
                    .map_err(err("iam", "ListPolicyVersions"))
            })
            .await?;
        Ok(r.versions().to_vec())
    }
    /// Brings the policy's tags to the desired set: `removed` are keys the configuration
    /// no longer has (others' tags stay).
    pub async fn retag(&self, cx: &Cx, removed: &[String]) -> Result<(), StepError> {
        let arn = cx.policy_arn();
        if !removed.is_empty() {
            cx.aws(POLICY, || async {
                cx.aws
                    .iam
                    .untag_policy()
                    .policy_arn(&arn)
                    .set_tag_keys(Some(removed.to_vec()))
                    .send()
                    .await
                    .map_err(err("iam", "UntagPolicy"))
            })
            .await?;
        }
        let tags = cx.tags();
        cx.aws(POLICY, || async {
            cx.aws
                .iam
                .tag_policy()
                .policy_arn(&arn)
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(err("iam", "TagPolicy"))
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for MemberPolicy {
    fn key(&self) -> &'static str {
        "api_policy"
    }
    fn title(&self) -> &'static str {
        POLICY
    }
    fn needs(&self) -> &'static [&'static str] {
        &[]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if self.get(cx).await?.is_some() {
            if !self.owned(cx).await? {
                return Err(not_ours(
                    POLICY,
                    &format!("IAM policy {}", cx.s.policy_name),
                ));
            }
            return match self.observe(cx).await? {
                Observed::Present(p) if !p.is_empty() => self.repair(cx, &p).await,
                _ => Ok(()),
            };
        }
        let doc = policy::render(&Self::document());
        let tags = cx.tags();
        cx.aws(POLICY, || async {
            cx.aws
                .iam
                .create_policy()
                .policy_name(&cx.s.policy_name)
                .description("Expel Workbench: read-only investigation access (member account of an AWS Organization)")
                .policy_document(&doc)
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(err("iam", "CreatePolicy"))
        })
        .await?;
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        let Some(p) = self.get(cx).await? else {
            return Ok(Observed::Gone);
        };
        let arn = cx.policy_arn();
        let version = p.default_version_id().unwrap_or("v1").to_string();
        let v = cx
            .aws(POLICY, || async {
                cx.aws
                    .iam
                    .get_policy_version()
                    .policy_arn(&arn)
                    .version_id(&version)
                    .send()
                    .await
                    .map_err(err("iam", "GetPolicyVersion"))
            })
            .await?;
        let doc = v
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default()
            .to_string();
        Ok(Observed::Present(policy_drift(
            &cx.s.policy_name,
            &Self::document(),
            &doc,
        )))
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        let arn = cx.policy_arn();
        // IAM keeps at most five versions: retire the oldest non-default one first.
        let mut old: Vec<_> = self
            .versions(cx)
            .await?
            .into_iter()
            .filter(|v| !v.is_default_version())
            .collect();
        if old.len() >= 4 {
            old.sort_by_key(|v| v.create_date().map(|d| d.secs()).unwrap_or(0));
            if let Some(id) = old.first().and_then(|v| v.version_id()).map(str::to_string) {
                cx.aws(POLICY, || async {
                    cx.aws
                        .iam
                        .delete_policy_version()
                        .policy_arn(&arn)
                        .version_id(&id)
                        .send()
                        .await
                        .map_err(err("iam", "DeletePolicyVersion"))
                })
                .await?;
            }
        }
        let doc = policy::render(&Self::document());
        cx.aws(POLICY, || async {
            cx.aws
                .iam
                .create_policy_version()
                .policy_arn(&arn)
                .policy_document(&doc)
                .set_as_default(true)
                .send()
                .await
                .map_err(err("iam", "CreatePolicyVersion"))
        })
        .await?;
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        if self.get(cx).await?.is_none() {
            return Ok(());
        }
        if !self.owned(cx).await? {
            cx.leave_foreign(&format!("IAM policy {}", cx.s.policy_name));
            return Ok(());
        }
        let arn = cx.policy_arn();
        for v in self
            .versions(cx)
            .await?
            .into_iter()
            .filter(|v| !v.is_default_version())
        {
            let id = v.version_id().unwrap_or_default().to_string();
            cx.aws_opt(POLICY, || async {
                cx.aws
                    .iam
                    .delete_policy_version()
                    .policy_arn(&arn)
                    .version_id(&id)
                    .send()
                    .await
                    .map_err(err("iam", "DeletePolicyVersion"))
            })
            .await?;
        }
        cx.aws_opt(POLICY, || async {
            cx.aws
                .iam
                .delete_policy()
                .policy_arn(&arn)
                .send()
                .await
                .map_err(err("iam", "DeletePolicy"))
        })
        .await?;
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
    async fn get(&self, cx: &Cx) -> Result<Option<aws_sdk_iam::types::Role>, StepError> {
        let r = cx
            .aws_opt(ROLE, || async {
                cx.aws
                    .iam
                    .get_role()
                    .role_name(&cx.s.role_name)
                    .send()
                    .await
                    .map_err(err("iam", "GetRole"))
            })
            .await?;
        Ok(r.and_then(|r| r.role))
    }
    async fn owned(&self, cx: &Cx) -> Result<bool, StepError> {
        let r = cx
            .aws(ROLE, || async {
                cx.aws
                    .iam
                    .list_role_tags()
                    .role_name(&cx.s.role_name)
                    .send()
                    .await
                    .map_err(err("iam", "ListRoleTags"))
            })
            .await?;
        Ok(marked(r.tags().iter().map(|t| (t.key(), t.value()))))
    }
    async fn attached(&self, cx: &Cx) -> Result<bool, StepError> {
        let r = cx
            .aws(ROLE, || async {
                cx.aws
                    .iam
                    .list_attached_role_policies()
                    .role_name(&cx.s.role_name)
                    .send()
                    .await
                    .map_err(err("iam", "ListAttachedRolePolicies"))
            })
            .await?;
        let arn = cx.policy_arn();
        Ok(r.attached_policies()
            .iter()
            .any(|p| p.policy_arn() == Some(arn.as_str())))
    }
    /// Detaches `policy_arn` from the configured role ("not attached" is done).
    async fn detach(&self, cx: &Cx, policy_arn: &str) -> Result<(), StepError> {
        cx.aws_opt(ROLE, || async {
            cx.aws
                .iam
                .detach_role_policy()
                .role_name(&cx.s.role_name)
                .policy_arn(policy_arn)
                .send()
                .await
                .map_err(err("iam", "DetachRolePolicy"))
        })
        .await?;
        Ok(())
    }
    async fn attach(&self, cx: &Cx) -> Result<(), StepError> {
        let arn = cx.policy_arn();
        cx.aws(ROLE, || async {
            cx.aws
                .iam
                .attach_role_policy()
                .role_name(&cx.s.role_name)
                .policy_arn(&arn)
                .send()
                .await
                .map_err(err("iam", "AttachRolePolicy"))
        })
        .await?;
        Ok(())
    }
    /// Brings the role's tags to the desired set: `removed` are keys the configuration no
    /// longer has (others' tags stay).
    pub async fn retag(&self, cx: &Cx, removed: &[String]) -> Result<(), StepError> {
        if !removed.is_empty() {
            cx.aws(ROLE, || async {
                cx.aws
                    .iam
                    .untag_role()
                    .role_name(&cx.s.role_name)
                    .set_tag_keys(Some(removed.to_vec()))
                    .send()
                    .await
                    .map_err(err("iam", "UntagRole"))
            })
            .await?;
        }
        let tags = cx.tags();
        cx.aws(ROLE, || async {
            cx.aws
                .iam
                .tag_role()
                .role_name(&cx.s.role_name)
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(err("iam", "TagRole"))
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for MemberRole {
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
        if self.get(cx).await?.is_some() {
            if !self.owned(cx).await? {
                return Err(not_ours(ROLE, &format!("IAM role {}", cx.s.role_name)));
            }
            return self.repair(cx, &["adopted".into()]).await;
        }
        let doc = policy::render(&Self::trust(&cx.s));
        let tags = cx.tags();
        cx.aws(ROLE, || async {
            cx.aws
                .iam
                .create_role()
                .role_name(&cx.s.role_name)
                .description("Expel Workbench assumes this role to investigate in this account")
                .assume_role_policy_document(&doc)
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(err("iam", "CreateRole"))
        })
        .await?;
        self.attach(cx).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        let Some(role) = self.get(cx).await? else {
            return Ok(Observed::Gone);
        };
        let mut p = policy_drift(
            "trust policy",
            &Self::trust(&cx.s),
            role.assume_role_policy_document().unwrap_or_default(),
        );
        if !self.attached(cx).await? {
            p.push(format!("{} is detached from the role", cx.s.policy_name));
        }
        Ok(Observed::Present(p))
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        let doc = policy::render(&Self::trust(&cx.s));
        cx.aws(ROLE, || async {
            cx.aws
                .iam
                .update_assume_role_policy()
                .role_name(&cx.s.role_name)
                .policy_document(&doc)
                .send()
                .await
                .map_err(err("iam", "UpdateAssumeRolePolicy"))
        })
        .await?;
        if !self.attached(cx).await? {
            self.attach(cx).await?;
        }
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        if self.get(cx).await?.is_none() {
            return Ok(());
        }
        if !self.owned(cx).await? {
            cx.leave_foreign(&format!("IAM role {}", cx.s.role_name));
            return Ok(());
        }
        if self.attached(cx).await? {
            self.detach(cx, &cx.policy_arn()).await?;
        }
        cx.aws_opt(ROLE, || async {
            cx.aws
                .iam
                .delete_role()
                .role_name(&cx.s.role_name)
                .send()
                .await
                .map_err(err("iam", "DeleteRole"))
        })
        .await?;
        Ok(())
    }
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
        MemberRole.detach(cx, &old.policy_arn()).await?;
        MemberPolicy.delete(old).await?;
    }
    Ok(())
}
