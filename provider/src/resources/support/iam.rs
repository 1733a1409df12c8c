//! The IAM calls of the guide's Steps 6 and 7 (ExpelAPIPolicy and ExpelServiceRole), shared by
//! the CloudTrail integration and the member-account role: each call retried within the
//! step's deadline, failures named after the step.
use aws_sdk_iam::types::{Policy, Role, Tag};
use serde_json::Value as Json;

use crate::clients::aws::{err, AwsClients, AwsError, AwsErrorKind};
use crate::engine::{Cause, Deadline, Observed, StepError};
use crate::policy::{self, PolicyKind};
use crate::resources::support::ownership::{Claim, Owner};

/// IAM for one step: its clients, its deadline, and its title for error messages.
pub struct Iam<'a> {
    pub aws: &'a AwsClients,
    pub deadline: &'a Deadline,
    pub step: &'static str,
}

/// ExpelServiceRole as the guide's Step 7 wants it.
pub struct ServiceRoleSpec<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub trust: Json,
    pub policy_arn: &'a str,
    pub policy_name: &'a str,
}

/// Something others attached to one of our IAM objects, or it to: destroy never removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// A managed policy attached to our role (its ARN).
    ManagedPolicy(String),
    /// An inline policy put on our role (its name).
    InlinePolicy(String),
    /// An instance profile holding our role (its name).
    InstanceProfile(String),
    /// A role, user or group our policy is attached to (its name).
    Role(String),
    User(String),
    Group(String),
}

impl Foreign {
    fn describe(&self) -> String {
        match self {
            Foreign::ManagedPolicy(arn) => format!("the managed policy {arn}"),
            Foreign::InlinePolicy(n) => format!("the inline policy {n}"),
            Foreign::InstanceProfile(n) => format!("the instance profile {n}"),
            Foreign::Role(n) => format!("the role {n}"),
            Foreign::User(n) => format!("the user {n}"),
            Foreign::Group(n) => format!("the group {n}"),
        }
    }

    /// The AWS CLI command that takes it off `object`: our role's name, or our policy's ARN.
    fn undo(&self, object: &str) -> String {
        match self {
            Foreign::ManagedPolicy(arn) => {
                format!("aws iam detach-role-policy --role-name {object} --policy-arn {arn}")
            }
            Foreign::InlinePolicy(n) => {
                format!("aws iam delete-role-policy --role-name {object} --policy-name {n}")
            }
            Foreign::InstanceProfile(n) => format!(
                "aws iam remove-role-from-instance-profile --instance-profile-name {n} --role-name {object}"
            ),
            Foreign::Role(n) => {
                format!("aws iam detach-role-policy --role-name {n} --policy-arn {object}")
            }
            Foreign::User(n) => {
                format!("aws iam detach-user-policy --user-name {n} --policy-arn {object}")
            }
            Foreign::Group(n) => {
                format!("aws iam detach-group-policy --group-name {n} --policy-arn {object}")
            }
        }
    }
}

/// One of our IAM objects that destroy kept because of what others attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// The role's name or the policy's ARN.
    pub object: String,
    pub foreign: Vec<Foreign>,
}

impl Kept {
    /// "the managed policy arn:...; the inline policy Audit".
    pub fn attachments(&self) -> String {
        let d: Vec<String> = self.foreign.iter().map(Foreign::describe).collect();
        d.join("; ")
    }
    /// The commands that take each off, one an indented line.
    pub fn undo(&self) -> String {
        let c: Vec<String> = self
            .foreign
            .iter()
            .map(|f| format!("  {}", f.undo(&self.object)))
            .collect();
        c.join("\n")
    }
}

/// The summary of the error destroy gives when it kept our role.
pub const ROLE_KEPT: &str = "IAM role kept: others attached to it";
/// The summary of the warning when a role a rename retired was kept.
pub const OLD_ROLE_KEPT: &str = "Previous IAM role kept: others attached to it";
/// The summary of the warning when destroy kept our policy.
pub const POLICY_KEPT: &str = "IAM policy kept: attached to others";

impl Kept {
    /// Destroy kept our role (an error: the resource stays in the state).
    pub fn role_on_destroy(&self) -> String {
        format!(
            "The IAM role {role} was not deleted: others attached {list}. This provider detached only its own policy; \
             deleting the role would take theirs with it. The role still trusts Expel's principals, so it stays in the \
             Terraform state rather than being forgotten. Either take theirs off and run \
             `terraform destroy` again:\n{undo}\nor keep the role for them, outside Terraform: \
             `terraform state rm <address of this resource>` (the role then stays in AWS, trusting Expel, until someone deletes it).",
            role = self.object,
            list = self.attachments(),
            undo = self.undo(),
        )
    }
    /// A rename retired our previous role and kept it (a warning: the new role is in place).
    pub fn role_on_rename(&self) -> String {
        format!(
            "The previous IAM role {role} was not deleted: others attached {list}. This provider detached only its own \
             policy. The role is left in place for them, outside Terraform, and still trusts Expel's principals. To delete \
             it, take theirs off:\n{undo}\nthen `aws iam delete-role --role-name {role}`.",
            role = self.object,
            list = self.attachments(),
            undo = self.undo(),
        )
    }
    /// Destroy kept our policy (a warning: the destroy succeeds).
    pub fn policy(&self) -> String {
        format!(
            "The IAM policy {arn} was not deleted: it is attached to {list}, which this provider did not attach. \
             It is left in place for them, and Terraform no longer manages it. To delete it, detach it:\n{undo}\n\
             then delete it (`aws iam delete-policy --policy-arn {arn}` after `aws iam delete-policy-version` for each \
             non-default version, or in the IAM console).",
            arn = self.object,
            list = self.attachments(),
            undo = self.undo(),
        )
    }
}

/// DeleteConflict after everything ours was detached and nothing else was found: IAM has
/// not propagated the detach yet ("IAM ... is eventually consistent", IAM user guide,
/// "Changes that I make are not always immediately visible"), or someone attached something
/// meanwhile. Retried within the propagation window, then reported with those causes.
fn settling(mut e: AwsError) -> AwsError {
    if e.code == "DeleteConflict" {
        e.kind = AwsErrorKind::Propagation;
    }
    e
}

fn claim(owner: &Owner, tags: &[Tag]) -> Claim {
    owner.claim(tags.iter().map(|t| (t.key(), t.value())))
}

impl Iam<'_> {
    /// A call on an IAM object that exists (made by this run or recorded in the state).
    async fn call<T, F, Fut>(&self, mut op: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        let retried = self.deadline.retry(|| {
            let call = op();
            async move { call.await.map_err(AwsError::expecting_existence) }
        });
        retried
            .await
            .map_err(|e| StepError::caused_by(self.step, e))
    }

    /// Like `call`, but "not found" is `None`.
    async fn call_opt<T, F, Fut>(&self, op: F) -> Result<Option<T>, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        match self.deadline.retry(op).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(StepError::caused_by(self.step, e)),
        }
    }

    /// The document as we send it, once it passes the linter; else this step's error.
    fn checked(&self, doc: &Json, kind: PolicyKind) -> Result<String, StepError> {
        policy::checked(doc, kind).map_err(|e| StepError::caused_by(self.step, e))
    }

    pub async fn role(&self, name: &str) -> Result<Option<Role>, StepError> {
        let r = self
            .call_opt(|| async {
                let r = self.aws.iam.get_role().role_name(name).send().await;
                r.map_err(err("iam", "GetRole"))
            })
            .await?;
        Ok(r.and_then(|r| r.role))
    }

    /// The role's tags.
    pub async fn role_tags(&self, name: &str) -> Result<Vec<Tag>, StepError> {
        let r = self
            .call(|| async {
                let r = self.aws.iam.list_role_tags().role_name(name).send().await;
                r.map_err(err("iam", "ListRoleTags"))
            })
            .await?;
        Ok(r.tags().to_vec())
    }

    /// Whose the role is, from its tags.
    pub async fn role_claim(&self, name: &str, owner: &Owner) -> Result<Claim, StepError> {
        Ok(claim(owner, &self.role_tags(name).await?))
    }

    async fn create_role(
        &self,
        name: &str,
        description: &str,
        trust: &Json,
        tags: &[Tag],
    ) -> Result<(), StepError> {
        let trust = self.checked(trust, PolicyKind::Trust)?;
        self.call(|| async {
            let r = self
                .aws
                .iam
                .create_role()
                .role_name(name)
                .description(description)
                .assume_role_policy_document(&trust)
                .set_tags(Some(tags.to_vec()))
                .send()
                .await;
            r.map_err(err("iam", "CreateRole"))
        })
        .await?;
        Ok(())
    }

    /// Creates the role with its trust policy and tags, then attaches its policy.
    pub async fn create_service_role(
        &self,
        r: &ServiceRoleSpec<'_>,
        tags: &[Tag],
    ) -> Result<(), StepError> {
        self.create_role(r.name, r.description, &r.trust, tags)
            .await?;
        self.attach(r.name, r.policy_arn).await
    }

    /// The role's trust policy compared with ours by statement, and its policy attached;
    /// with the foreign trust statements that widen it (warnings, not drift: they are not ours
    /// to remove).
    pub async fn observe_service_role<K: Cause>(
        &self,
        r: &ServiceRoleSpec<'_>,
    ) -> Result<(Observed<K>, Vec<String>), StepError> {
        let Some(role) = self.role(r.name).await? else {
            return Ok((Observed::Gone, Vec::new()));
        };
        let live = role.assume_role_policy_document().unwrap_or_default();
        let mut p = policy::drift("trust policy", &r.trust, live);
        let widened = policy::foreign_defeats(
            &format!("trust policy of {}", r.name),
            &r.trust,
            live,
            PolicyKind::Trust,
        );
        if !self.attached(r.name, r.policy_arn).await? {
            p.push(format!("{} is detached from the role", r.policy_name));
        }
        Ok((Observed::differs(p), widened))
    }

    /// Puts our trust policy back and attaches the policy if it is not.
    pub async fn repair_service_role(&self, r: &ServiceRoleSpec<'_>) -> Result<(), StepError> {
        self.put_trust(r.name, &r.trust).await?;
        if !self.attached(r.name, r.policy_arn).await? {
            self.attach(r.name, r.policy_arn).await?;
        }
        Ok(())
    }

    /// The policy's default version compared with `expected` by statement (`what` names it);
    /// a statement of ours (`policy::API_POLICY_SIDS`) that `expected` no longer has is drift.
    pub async fn observe_policy<K: Cause>(
        &self,
        arn: &str,
        what: &str,
        expected: &Json,
    ) -> Result<Observed<K>, StepError> {
        let Some(p) = self.policy(arn).await? else {
            return Ok(Observed::Gone);
        };
        let doc = self.policy_document(&p).await?;
        let mut problems = policy::drift(what, expected, &doc);
        problems.extend(policy::retired_present(
            what,
            expected,
            &doc,
            policy::API_POLICY_SIDS,
        ));
        Ok(Observed::differs(problems))
    }

    /// Puts our trust statements into the role's trust policy; others' statements stay.
    async fn put_trust(&self, name: &str, trust: &Json) -> Result<(), StepError> {
        // Ours is checked before anything is read or sent.
        self.checked(trust, PolicyKind::Trust)?;
        let live = self
            .role(name)
            .await?
            .and_then(|r| r.assume_role_policy_document);
        let trust = policy::merged_for_write(trust, live.as_deref(), PolicyKind::Trust)
            .map_err(|e| StepError::caused_by(self.step, e))?;
        self.call(|| async {
            let r = self
                .aws
                .iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(&trust)
                .send()
                .await;
            r.map_err(err("iam", "UpdateAssumeRolePolicy"))
        })
        .await?;
        Ok(())
    }

    pub async fn attached(&self, role: &str, policy_arn: &str) -> Result<bool, StepError> {
        Ok(self
            .attached_policies(role)
            .await?
            .iter()
            .any(|a| a == policy_arn))
    }

    /// Every page of an IAM listing: `page(marker)` fetches one (retried like any call);
    /// `take` keeps its items and gives the next marker while the listing is truncated.
    async fn pages<T, R, F, Fut>(
        &self,
        mut page: F,
        take: impl Fn(&R, &mut Vec<T>) -> Option<String>,
    ) -> Result<Vec<T>, StepError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<R, AwsError>>,
    {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let r = self.call(|| page(marker.clone())).await?;
            match take(&r, &mut out) {
                Some(m) => marker = Some(m),
                None => return Ok(out),
            }
        }
    }

    /// The ARNs of the managed policies attached to the role, every page.
    async fn attached_policies(&self, role: &str) -> Result<Vec<String>, StepError> {
        let iam = &self.aws.iam;
        self.pages(
            |marker| async move {
                let r = iam.list_attached_role_policies().role_name(role);
                let r = r.set_marker(marker).send().await;
                r.map_err(err("iam", "ListAttachedRolePolicies"))
            },
            |r, arns| {
                let attached = r.attached_policies().iter();
                arns.extend(attached.filter_map(|p| p.policy_arn().map(str::to_string)));
                r.marker().filter(|_| r.is_truncated()).map(str::to_string)
            },
        )
        .await
    }

    /// The names of the role's inline policies, every page.
    async fn inline_policies(&self, role: &str) -> Result<Vec<String>, StepError> {
        let iam = &self.aws.iam;
        self.pages(
            |marker| async move {
                let r = iam.list_role_policies().role_name(role);
                let r = r.set_marker(marker).send().await;
                r.map_err(err("iam", "ListRolePolicies"))
            },
            |r, names| {
                names.extend(r.policy_names().iter().cloned());
                r.marker().filter(|_| r.is_truncated()).map(str::to_string)
            },
        )
        .await
    }

    /// The names of the instance profiles that hold the role, every page.
    async fn instance_profiles(&self, role: &str) -> Result<Vec<String>, StepError> {
        let iam = &self.aws.iam;
        self.pages(
            |marker| async move {
                let r = iam.list_instance_profiles_for_role().role_name(role);
                let r = r.set_marker(marker).send().await;
                r.map_err(err("iam", "ListInstanceProfilesForRole"))
            },
            |r, names| {
                let profiles = r.instance_profiles().iter();
                names.extend(profiles.map(|p| p.instance_profile_name().to_string()));
                r.marker().filter(|_| r.is_truncated()).map(str::to_string)
            },
        )
        .await
    }

    /// The roles, users and groups the policy is attached to, every page.
    async fn policy_entities(&self, arn: &str) -> Result<Vec<Foreign>, StepError> {
        let iam = &self.aws.iam;
        self.pages(
            |marker| async move {
                let r = iam.list_entities_for_policy().policy_arn(arn);
                let r = r.set_marker(marker).send().await;
                r.map_err(err("iam", "ListEntitiesForPolicy"))
            },
            |r, found| {
                let roles = r.policy_roles().iter().filter_map(|x| x.role_name());
                found.extend(roles.map(|n| Foreign::Role(n.to_string())));
                let users = r.policy_users().iter().filter_map(|x| x.user_name());
                found.extend(users.map(|n| Foreign::User(n.to_string())));
                let groups = r.policy_groups().iter().filter_map(|x| x.group_name());
                found.extend(groups.map(|n| Foreign::Group(n.to_string())));
                r.marker().filter(|_| r.is_truncated()).map(str::to_string)
            },
        )
        .await
    }

    pub async fn attach(&self, role: &str, policy_arn: &str) -> Result<(), StepError> {
        self.call(|| async {
            let r = self
                .aws
                .iam
                .attach_role_policy()
                .role_name(role)
                .policy_arn(policy_arn)
                .send()
                .await;
            r.map_err(err("iam", "AttachRolePolicy"))
        })
        .await?;
        Ok(())
    }

    /// Detaches the policy ("not attached" or "no such role" is done).
    pub async fn detach(&self, role: &str, policy_arn: &str) -> Result<(), StepError> {
        self.call_opt(|| async {
            let r = self
                .aws
                .iam
                .detach_role_policy()
                .role_name(role)
                .policy_arn(policy_arn)
                .send()
                .await;
            r.map_err(err("iam", "DetachRolePolicy"))
        })
        .await?;
        Ok(())
    }

    /// Detaches our policy (`policy_arn`) from our role and deletes the role ("already
    /// gone" is done), unless others attached something to it: a managed or inline policy,
    /// or an instance profile (DeleteRole refuses a role with any of these, IAM API
    /// reference, DeleteRole). Then the role is kept, with theirs, and returned.
    pub async fn delete_role(
        &self,
        name: &str,
        policy_arn: &str,
    ) -> Result<Option<Kept>, StepError> {
        let attached = self.attached_policies(name).await?;
        if attached.iter().any(|a| a == policy_arn) {
            self.detach(name, policy_arn).await?;
        }
        let mut foreign: Vec<Foreign> = attached
            .into_iter()
            .filter(|a| a != policy_arn)
            .map(Foreign::ManagedPolicy)
            .collect();
        let inline = self.inline_policies(name).await?;
        foreign.extend(inline.into_iter().map(Foreign::InlinePolicy));
        let profiles = self.instance_profiles(name).await?;
        foreign.extend(profiles.into_iter().map(Foreign::InstanceProfile));
        if !foreign.is_empty() {
            return Ok(Some(Kept {
                object: name.to_string(),
                foreign,
            }));
        }
        self.call_opt(|| async {
            let r = self.aws.iam.delete_role().role_name(name).send().await;
            r.map_err(err("iam", "DeleteRole")).map_err(settling)
        })
        .await?;
        Ok(None)
    }

    /// Brings the role's tags to `tags`, removing the keys in `removed` (others' tags stay).
    pub async fn retag_role(
        &self,
        name: &str,
        tags: &[Tag],
        removed: &[String],
    ) -> Result<(), StepError> {
        if !removed.is_empty() {
            self.call(|| async {
                let r = self
                    .aws
                    .iam
                    .untag_role()
                    .role_name(name)
                    .set_tag_keys(Some(removed.to_vec()))
                    .send()
                    .await;
                r.map_err(err("iam", "UntagRole"))
            })
            .await?;
        }
        self.call(|| async {
            let r = self
                .aws
                .iam
                .tag_role()
                .role_name(name)
                .set_tags(Some(tags.to_vec()))
                .send()
                .await;
            r.map_err(err("iam", "TagRole"))
        })
        .await?;
        Ok(())
    }

    pub async fn policy(&self, arn: &str) -> Result<Option<Policy>, StepError> {
        let r = self
            .call_opt(|| async {
                let r = self.aws.iam.get_policy().policy_arn(arn).send().await;
                r.map_err(err("iam", "GetPolicy"))
            })
            .await?;
        Ok(r.and_then(|r| r.policy))
    }

    /// The policy's tags.
    pub async fn policy_tags(&self, arn: &str) -> Result<Vec<Tag>, StepError> {
        let r = self
            .call(|| async {
                let r = self.aws.iam.list_policy_tags().policy_arn(arn).send().await;
                r.map_err(err("iam", "ListPolicyTags"))
            })
            .await?;
        Ok(r.tags().to_vec())
    }

    /// Whose the policy is, from its tags.
    pub async fn policy_claim(&self, arn: &str, owner: &Owner) -> Result<Claim, StepError> {
        Ok(claim(owner, &self.policy_tags(arn).await?))
    }

    /// The document of the policy's default version, as IAM returns it (URL-encoded).
    async fn policy_document(&self, policy: &Policy) -> Result<String, StepError> {
        let arn = policy.arn().unwrap_or_default();
        let version = policy.default_version_id().unwrap_or("v1");
        let v = self
            .call(|| async {
                let r = self
                    .aws
                    .iam
                    .get_policy_version()
                    .policy_arn(arn)
                    .version_id(version)
                    .send()
                    .await;
                r.map_err(err("iam", "GetPolicyVersion"))
            })
            .await?;
        Ok(v.policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default()
            .to_string())
    }

    pub async fn create_policy(
        &self,
        name: &str,
        description: &str,
        document: &Json,
        tags: &[Tag],
    ) -> Result<(), StepError> {
        let document = self.checked(document, PolicyKind::Identity)?;
        self.call(|| async {
            let r = self
                .aws
                .iam
                .create_policy()
                .policy_name(name)
                .description(description)
                .policy_document(&document)
                .set_tags(Some(tags.to_vec()))
                .send()
                .await;
            r.map_err(err("iam", "CreatePolicy"))
        })
        .await?;
        Ok(())
    }

    async fn old_versions(&self, arn: &str) -> Result<Vec<(String, i64)>, StepError> {
        let r = self
            .call(|| async {
                let r = self
                    .aws
                    .iam
                    .list_policy_versions()
                    .policy_arn(arn)
                    .send()
                    .await;
                r.map_err(err("iam", "ListPolicyVersions"))
            })
            .await?;
        Ok(r.versions()
            .iter()
            .filter(|v| !v.is_default_version())
            .filter_map(|v| {
                let made = v.create_date().map(|d| d.secs()).unwrap_or(0);
                v.version_id().map(|id| (id.to_string(), made))
            })
            .collect())
    }

    async fn delete_version(&self, arn: &str, id: &str) -> Result<(), StepError> {
        self.call_opt(|| async {
            let r = self
                .aws
                .iam
                .delete_policy_version()
                .policy_arn(arn)
                .version_id(id)
                .send()
                .await;
            r.map_err(err("iam", "DeletePolicyVersion"))
        })
        .await?;
        Ok(())
    }

    /// Makes `document`, merged into the live default version, the default version: our
    /// statements (every Sid of `policy::API_POLICY_SIDS`) are replaced or, when `document` no
    /// longer has them, removed; anyone else's statements stay (Expel's own remediation guides
    /// have customers add statements to this policy by hand). IAM keeps at most five versions:
    /// the oldest non-default one is retired first when four exist.
    pub async fn put_policy_document(&self, arn: &str, document: &Json) -> Result<(), StepError> {
        // Ours is checked before anything is read or sent.
        self.checked(document, PolicyKind::Identity)?;
        let live = match self.policy(arn).await? {
            Some(p) => Some(self.policy_document(&p).await?),
            None => None,
        };
        let document = policy::merged_retiring(
            document,
            live.as_deref(),
            PolicyKind::Identity,
            policy::API_POLICY_SIDS,
        )
        .map_err(|e| StepError::caused_by(self.step, e))?;
        let mut old = self.old_versions(arn).await?;
        if old.len() >= 4 {
            old.sort_by_key(|(_, made)| *made);
            self.delete_version(arn, &old[0].0).await?;
        }
        self.call(|| async {
            let r = self
                .aws
                .iam
                .create_policy_version()
                .policy_arn(arn)
                .policy_document(&document)
                .set_as_default(true)
                .send()
                .await;
            r.map_err(err("iam", "CreatePolicyVersion"))
        })
        .await?;
        Ok(())
    }

    /// Detaches our policy from our role (`our_role`, if still attached) and deletes it, its
    /// non-default versions first ("already gone" is done), unless it is attached to
    /// another role, a user or a group (DeletePolicy refuses an attached policy, IAM API
    /// reference, DeletePolicy). Then the policy is kept, attached to them, and returned.
    pub async fn delete_policy(
        &self,
        arn: &str,
        our_role: &str,
    ) -> Result<Option<Kept>, StepError> {
        let mut foreign = Vec::new();
        for entity in self.policy_entities(arn).await? {
            match entity {
                Foreign::Role(r) if r == our_role => self.detach(&r, arn).await?,
                other => foreign.push(other),
            }
        }
        if !foreign.is_empty() {
            return Ok(Some(Kept {
                object: arn.to_string(),
                foreign,
            }));
        }
        for (id, _) in self.old_versions(arn).await? {
            self.delete_version(arn, &id).await?;
        }
        self.call_opt(|| async {
            let r = self.aws.iam.delete_policy().policy_arn(arn).send().await;
            r.map_err(err("iam", "DeletePolicy")).map_err(settling)
        })
        .await?;
        Ok(None)
    }

    /// Brings the policy's tags to `tags`, removing the keys in `removed` (others' tags stay).
    pub async fn retag_policy(
        &self,
        arn: &str,
        tags: &[Tag],
        removed: &[String],
    ) -> Result<(), StepError> {
        if !removed.is_empty() {
            self.call(|| async {
                let r = self
                    .aws
                    .iam
                    .untag_policy()
                    .policy_arn(arn)
                    .set_tag_keys(Some(removed.to_vec()))
                    .send()
                    .await;
                r.map_err(err("iam", "UntagPolicy"))
            })
            .await?;
        }
        self.call(|| async {
            let r = self
                .aws
                .iam
                .tag_policy()
                .policy_arn(arn)
                .set_tags(Some(tags.to_vec()))
                .send()
                .await;
            r.map_err(err("iam", "TagPolicy"))
        })
        .await?;
        Ok(())
    }
}

/// The user's tags plus the ownership tags, as IAM takes them.
pub fn iam_tags<'a>(owner: &'a Owner, user: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<Tag> {
    owner
        .tags(user)
        .into_iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// IAM tags as a map, for comparing.
pub fn tag_map(tags: &[Tag]) -> super::tags::Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::aws::AwsClientSettings;
    use crate::engine::Deadline;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// Clients whose IAM endpoint nothing listens on: a call that got through would fail
    /// with a connection error, not the linter's.
    async fn offline() -> AwsClients {
        AwsClients::new(&AwsClientSettings {
            region: Some("us-east-1".into()),
            endpoints: vec![(
                "iam".into(),
                url::Url::parse("http://127.0.0.1:9").expect("literal URL"),
            )],
            ..Default::default()
        })
        .await
    }

    const STEP: &str = "Step 7: IAM role ExpelServiceRole";

    #[tokio::test]
    async fn a_trust_policy_aws_would_refuse_fails_the_step_before_the_call() {
        let aws = offline().await;
        let deadline = Deadline::after(Duration::from_secs(5), CancellationToken::new());
        let iam = Iam {
            aws: &aws,
            deadline: &deadline,
            step: STEP,
        };
        // `expel_principals = []` passes the CloudTrail resource's validation.
        let spec = ServiceRoleSpec {
            name: "ExpelServiceRole",
            description: "test",
            trust: policy::trust_policy(&[], "2a0a5e3c-6a4e-4b59-9d0c-2a8c8c8f2e10"),
            policy_arn: "arn:aws:iam::123456789012:policy/ExpelAPIPolicy",
            policy_name: "ExpelAPIPolicy",
        };
        for result in [
            iam.create_service_role(&spec, &[]).await,
            iam.repair_service_role(&spec).await,
        ] {
            let Err(e) = result else {
                panic!("an empty principal list was sent")
            };
            assert_eq!(e.step, STEP);
            assert!(e.message.contains("IAM role trust policy"), "{}", e.message);
            assert!(
                e.message
                    .contains("statement \"ExpelAssumeRole\": Principal AWS must be a string or a non-empty list"),
                "{}",
                e.message
            );
            assert!(e.message.contains("was not sent"), "{}", e.message);
        }
    }

    #[test]
    fn a_kept_role_or_policy_names_each_foreign_attachment_and_how_to_take_it_off() {
        let role = Kept {
            object: "ExpelServiceRole".into(),
            foreign: vec![
                Foreign::ManagedPolicy("arn:aws:iam::123456789012:policy/Audit".into()),
                Foreign::InlinePolicy("Extra".into()),
                Foreign::InstanceProfile("Web".into()),
            ],
        };
        let text = role.role_on_destroy();
        for words in [
            "The IAM role ExpelServiceRole was not deleted: others attached the managed policy arn:aws:iam::123456789012:policy/Audit; the inline policy Extra; the instance profile Web.",
            "\n  aws iam detach-role-policy --role-name ExpelServiceRole --policy-arn arn:aws:iam::123456789012:policy/Audit\n",
            "\n  aws iam delete-role-policy --role-name ExpelServiceRole --policy-name Extra\n",
            "\n  aws iam remove-role-from-instance-profile --instance-profile-name Web --role-name ExpelServiceRole\n",
            "terraform destroy` again",
            "terraform state rm",
        ] {
            assert!(text.contains(words), "{words:?} not in {text}");
        }
        let renamed = role.role_on_rename();
        assert!(
            renamed.contains("aws iam delete-role --role-name ExpelServiceRole"),
            "{renamed}"
        );
        assert!(!renamed.contains("terraform state rm"), "{renamed}");

        let arn = "arn:aws:iam::123456789012:policy/ExpelAPIPolicy";
        let policy = Kept {
            object: arn.into(),
            foreign: vec![
                Foreign::Role("Auditor".into()),
                Foreign::User("alice".into()),
                Foreign::Group("admins".into()),
            ],
        };
        let text = policy.policy();
        for words in [
            format!("The IAM policy {arn} was not deleted: it is attached to the role Auditor; the user alice; the group admins,"),
            format!("  aws iam detach-role-policy --role-name Auditor --policy-arn {arn}\n"),
            format!("  aws iam detach-user-policy --user-name alice --policy-arn {arn}\n"),
            format!("  aws iam detach-group-policy --group-name admins --policy-arn {arn}\n"),
        ] {
            assert!(text.contains(&words), "{words:?} not in {text}");
        }
    }

    #[tokio::test]
    async fn a_managed_policy_aws_would_refuse_fails_the_step_before_the_call() {
        let aws = offline().await;
        let deadline = Deadline::after(Duration::from_secs(5), CancellationToken::new());
        let iam = Iam {
            aws: &aws,
            deadline: &deadline,
            step: "Step 6: IAM policy ExpelAPIPolicy",
        };
        // A key ARN that is not one (as when the key's ARN was never recorded).
        let doc = policy::api_policy(
            "arn:aws:sqs:us-east-1:123456789012:ExpelMasterCloudTrailNotify",
            "arn:aws:s3:::expel-cloudtrail-logs",
            Some(""),
            policy::Remediations::default(),
        );
        for result in [
            iam.create_policy("ExpelAPIPolicy", "test", &doc, &[]).await,
            iam.put_policy_document("arn:aws:iam::123456789012:policy/ExpelAPIPolicy", &doc)
                .await,
        ] {
            let Err(e) = result else {
                panic!("a policy with an empty Resource was sent")
            };
            assert!(
                e.message
                    .contains("statement \"ExpelDecryptLogs\": Resource"),
                "{}",
                e.message
            );
        }
    }
}
