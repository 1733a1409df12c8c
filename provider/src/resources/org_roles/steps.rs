//! The two pieces of an organization rollout: the service-managed stack set (its template
//! is ExpelServiceRole with ExpelAPIPolicy, guide Steps 6 and 7, built from the same
//! documents as `expel_aws_member_role`), and its stack instances, one per member account of
//! the target OUs. The stack set carries the ownership tags; this instance adopts, changes
//! and deletes only a stack set that carries its owner (and so only that stack set's
//! instances).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value as Json;

use super::api::{describe_instances, Api, Instance, OperationFailed, Org, Target};
use crate::clients::aws::AwsClients;
use crate::engine::{self, Deadline, Fix, Observed, Problem, Step, StepContext, StepError};
use crate::policy::{self, Location, MemberRolesTemplate, PolicyKind};
use crate::resources::support::ownership::{self, Claim, Mark, Owner};

/// The desired state, from the plan.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub stack_set_name: String,
    pub ous: Vec<String>,
    pub exclude: Vec<String>,
    pub role_name: String,
    pub policy_name: String,
    pub principals: Vec<String>,
    pub external_id: String,
    /// Where the stack instances are (one region: IAM is global).
    pub region: String,
    pub auto_deployment: bool,
    pub retain_on_account_removal: bool,
    pub retain_stacks_on_destroy: bool,
    /// SELF or DELEGATED_ADMIN.
    pub call_as: String,
    pub max_concurrent_percentage: i32,
    pub failure_tolerance_percentage: i32,
    /// The provider's `aws.default_tags`: on the stack set and on each role it deploys.
    pub default_tags: BTreeMap<String, String>,
}

/// What the steps learnt: the stack set's ids and its instances.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    pub stack_set_id: Option<String>,
    pub stack_set_arn: Option<String>,
    pub instances: Option<Vec<Instance>>,
}

pub struct Cx {
    pub aws: AwsClients,
    pub loc: Location,
    pub s: Settings,
    pub owner: Owner,
    pub deadline: Deadline,
    pub journal: Mutex<Journal>,
    /// Said to the user as warnings (summary, detail).
    pub warnings: Mutex<Vec<(&'static str, String)>>,
}

/// The pieces: the step ids, named (snake_case) as in the `drift` map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Piece {
    StackSet,
    StackInstances,
}

/// Why a piece differs: each is set back by its own call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// The template differs: UpdateStackSet rolls the new one out to every instance.
    #[default]
    Template,
    /// Automatic deployment differs: an UpdateStackSet of its own.
    AutoDeployment,
    /// Accounts of the target OUs without an instance: CreateStackInstances.
    Uncovered,
    /// Instances outside the targets (an OU removed, an account excluded): deleted.
    OutOfScope,
    /// Instances outdated or failed: the template redeployed to their OUs.
    Outdated,
    /// The last drift detection found the stack differs (the role deleted or edited in the
    /// account): the instance is deleted and made again (CloudFormation does not re-create
    /// a resource deleted behind its back on update).
    Drifted,
}

impl engine::Cause for Cause {
    fn fix(self) -> Fix {
        Fix::InPlace
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
    pub fn warn(&self, summary: &'static str, detail: String) {
        match self.warnings.lock() {
            Ok(mut g) => g.push((summary, detail)),
            Err(p) => p.into_inner().push((summary, detail)),
        }
    }
    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn api(&self, step: &'static str) -> Api<'_> {
        Api {
            aws: &self.aws,
            deadline: &self.deadline,
            step,
            t: Target {
                name: &self.s.stack_set_name,
                call_as: &self.s.call_as,
                region: &self.s.region,
                max_concurrent_percentage: self.s.max_concurrent_percentage,
                failure_tolerance_percentage: self.s.failure_tolerance_percentage,
            },
        }
    }
    fn org(&self, step: &'static str) -> Org<'_> {
        Org {
            aws: &self.aws,
            deadline: &self.deadline,
            step,
        }
    }
    /// The template every member account gets.
    /// The tags of the stack set and of every role: `default_tags`, then the ownership tags.
    fn tags(&self) -> Vec<(String, String)> {
        self.owner.tags(
            self.s
                .default_tags
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
    pub fn template(&self) -> Json {
        let tags = self.tags();
        policy::member_roles_template(&MemberRolesTemplate {
            role_name: &self.s.role_name,
            policy_name: &self.s.policy_name,
            principals: &self.s.principals,
            external_id: &self.s.external_id,
            tags: &tags,
            remediations: policy::Remediations::default(),
        })
    }
    /// The template as sent, once its documents pass the linter.
    fn template_body(&self, step: &'static str) -> Result<String, StepError> {
        let t = self.template();
        if let Some((trust, doc)) = policy::template_documents(&t) {
            policy::checked(trust, PolicyKind::Trust)
                .and_then(|_| policy::checked(doc, PolicyKind::Identity))
                .map_err(|e| StepError::caused_by(step, e))?;
        }
        Ok(t.to_string())
    }
    fn auto(&self) -> (bool, bool) {
        (self.s.auto_deployment, self.s.retain_on_account_removal)
    }
    fn record_instances(&self, list: &[Instance]) {
        self.journal().instances = Some(list.to_vec());
    }
    pub fn instances(&self) -> Option<Vec<Instance>> {
        self.journal().instances.clone()
    }
    pub fn ids(&self) -> (Option<String>, Option<String>) {
        let j = self.journal();
        (j.stack_set_id.clone(), j.stack_set_arn.clone())
    }
    /// Whose the stack set is; None when there is none.
    async fn claim(&self, step: &'static str) -> Result<Option<Claim>, StepError> {
        let Some(s) = self.api(step).describe().await? else {
            return Ok(None);
        };
        {
            let mut j = self.journal();
            j.stack_set_id = s.stack_set_id().map(str::to_string);
            j.stack_set_arn = s.stack_set_arn().map(str::to_string);
        }
        Ok(Some(self.owner.claim(s.tags().iter().map(|t| {
            (t.key().unwrap_or_default(), t.value().unwrap_or_default())
        }))))
    }
    fn what(&self) -> String {
        format!("CloudFormation stack set {}", self.s.stack_set_name)
    }
    /// The operation's outcome: a failure names the accounts that failed and why.
    async fn settle(
        &self,
        step: &'static str,
        op: &str,
        doing: &str,
    ) -> Result<Vec<Instance>, StepError> {
        let api = self.api(step);
        let failed = api.wait(op).await?;
        let list = api.instances().await?;
        self.record_instances(&list);
        let bad: Vec<Instance> = list.iter().filter(|i| i.failed()).cloned().collect();
        match failed {
            Some(OperationFailed { status, reason }) => {
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({reason})")
                };
                Err(StepError::new(step, format!("{doing}: stack set operation {op} ended {status}{why}; accounts that failed: {}. Look at each account's stack events (StackSets console, or `aws cloudformation list-stack-instances --stack-set-name {}`), fix the cause (an existing role of the same name made by hand is the usual one: see the resource's migration notes), then apply again.", if bad.is_empty() { "none listed".to_string() } else { describe_instances(&bad) }, self.s.stack_set_name)))
            }
            None => {
                if !bad.is_empty() {
                    self.warn("Some member accounts did not get the role", format!("{doing}: within the failure tolerance (`failure_tolerance_percentage`), these accounts failed: {}. They are in `failed_accounts`; apply again after fixing the cause.", describe_instances(&bad)));
                }
                Ok(list)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
pub struct RolloutStackSet;
const STACK_SET: &str = "Organization rollout: service-managed CloudFormation stack set whose template is ExpelServiceRole with ExpelAPIPolicy (guide Steps 6 and 7)";

impl RolloutStackSet {
    fn problems(cx: &Cx, live: &aws_sdk_cloudformation::types::StackSet) -> Vec<Problem<Cause>> {
        let mut out = Vec::new();
        let want = cx.template();
        let have = live
            .template_body()
            .and_then(|b| serde_json::from_str::<Json>(b).ok());
        if have.as_ref() != Some(&want) {
            out.push(Problem::new(
                template_difference(&want, have.as_ref()),
                Cause::Template,
            ));
        }
        // Service-managed stack sets always say their automatic deployment (API_StackSet).
        if let Some(a) = live.auto_deployment() {
            let (enabled, retain) = cx.auto();
            let live_retain = a.retain_stacks_on_account_removal().unwrap_or(false);
            if a.enabled() != Some(enabled) || (enabled && live_retain != retain) {
                out.push(Problem::new(
                    format!(
                        "automatic deployment is {} (retain stacks on account removal: {live_retain}) instead of {} (retain: {retain})",
                        on_off(a.enabled().unwrap_or(false)),
                        on_off(enabled)
                    ),
                    Cause::AutoDeployment,
                ));
            }
        }
        out
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// What differs between the template we want and the live one, in words.
fn template_difference(want: &Json, have: Option<&Json>) -> String {
    let Some(have) = have else {
        return "the stack set's template is not the JSON template this resource writes".into();
    };
    let (Some((wt, wp)), Some((ht, hp))) = (
        policy::template_documents(want),
        policy::template_documents(have),
    ) else {
        return "the stack set's template no longer defines ExpelServiceRole with its policy"
            .into();
    };
    let mut d = policy::drift("trust policy in the template", wt, &ht.to_string());
    d.extend(policy::drift(
        "ExpelAPIPolicy in the template",
        wp,
        &hp.to_string(),
    ));
    let role = |t: &Json| t["Resources"][policy::ROLE_LOGICAL_ID]["Properties"].clone();
    for k in ["RoleName", "Policies", "Tags"] {
        if d.is_empty() && role(want)[k] != role(have)[k] {
            d.push(format!("the template's {k} differs"));
        }
    }
    if d.is_empty() {
        d.push("the template differs from the one this resource writes".into());
    }
    d.join("; ")
}

#[async_trait]
impl Step<Cx> for RolloutStackSet {
    fn id(&self) -> Piece {
        Piece::StackSet
    }
    fn title(&self) -> &'static str {
        STACK_SET
    }
    fn needs(&self) -> &'static [Piece] {
        &[]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let api = cx.api(STACK_SET);
        let body = cx.template_body(STACK_SET)?;
        let tags = cx.tags();
        let made = api
            .create(&body, "Expel Workbench: ExpelServiceRole in every member account (terraform-provider-expel)", cx.auto(), &tags)
            .await?;
        match cx.claim(STACK_SET).await? {
            Some(c) if c.is_ours() => {}
            Some(c) => {
                return Err(StepError::refused(
                    STACK_SET,
                    c.refusal(&cx.what(), &cx.owner, Mark::Tags, "Choose another `stack_set_name`, or import it (`terraform import`) if it is the one this configuration should manage."),
                ))
            }
            None => {
                return Err(StepError::new(STACK_SET, format!("{} was created but DescribeStackSet does not find it", cx.what())))
            }
        }
        if !made {
            // Ours already (a create retried after a crash): bring it to the plan.
            if let Observed::Present(p) = self.observe(cx).await? {
                if !p.is_empty() {
                    self.repair(cx, &p).await?;
                }
            }
        }
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let Some(live) = cx.api(STACK_SET).describe().await? else {
            return Ok(Observed::Gone);
        };
        {
            let mut j = cx.journal();
            j.stack_set_id = live.stack_set_id().map(str::to_string);
            j.stack_set_arn = live.stack_set_arn().map(str::to_string);
        }
        // The administration role ARN is not compared: AWS fills it in for service-managed
        // stack sets (the perpetual diff of hashicorp/aws's aws_cloudformation_stack_set).
        Ok(Observed::Present(Self::problems(cx, &live)))
    }
    async fn repair(&self, cx: &Cx, problems: &[Problem<Cause>]) -> Result<(), StepError> {
        let api = cx.api(STACK_SET);
        if problems.iter().any(|p| p.cause == Cause::Template) {
            let op = api.update_template(&cx.template_body(STACK_SET)?).await?;
            cx.settle(STACK_SET, &op, "Updating the template").await?;
        }
        if problems.iter().any(|p| p.cause == Cause::AutoDeployment) {
            let op = api.update_auto_deployment(cx.auto()).await?;
            cx.settle(STACK_SET, &op, "Changing automatic deployment")
                .await?;
        }
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        match cx.claim(STACK_SET).await? {
            None => Ok(()),
            Some(c) if !c.is_ours() => {
                let detail = ownership::left_in_place(&cx.what(), &cx.loc.account_id, &c);
                cx.warn(ownership::NOT_OURS_LEFT, detail);
                Ok(())
            }
            Some(_) => cx.api(STACK_SET).delete().await,
        }
    }
}

// ---------------------------------------------------------------------------------------
pub struct RolloutInstances;
const INSTANCES: &str = "Organization rollout: a stack instance (ExpelServiceRole) in every member account of the target OUs";

impl RolloutInstances {
    /// The accounts that should have an instance: every account below the target OUs but
    /// the excluded ones and the management account (StackSets never deploys there).
    async fn scope(&self, cx: &Cx) -> Result<BTreeMap<String, String>, StepError> {
        let org = cx.org(INSTANCES);
        let management = org.management_account().await?;
        let mut all = org.accounts_under(&cx.s.ous).await?;
        all.retain(|a, _| *a != management && !cx.s.exclude.contains(a));
        Ok(all)
    }
    /// The instances, or None when the stack set is gone.
    async fn listed(&self, cx: &Cx) -> Result<Option<Vec<Instance>>, StepError> {
        if cx.api(INSTANCES).describe().await?.is_none() {
            return Ok(None);
        }
        let list = cx.api(INSTANCES).instances().await?;
        cx.record_instances(&list);
        Ok(Some(list))
    }
}

/// At most this many accounts are named in one drift line.
const NAMED: usize = 20;

fn some(accounts: &[String]) -> String {
    let mut s = accounts
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if accounts.len() > NAMED {
        s.push_str(&format!(" and {} more", accounts.len() - NAMED));
    }
    s
}

#[async_trait]
impl Step<Cx> for RolloutInstances {
    fn id(&self) -> Piece {
        Piece::StackInstances
    }
    fn title(&self) -> &'static str {
        INSTANCES
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::StackSet]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let op = cx
            .api(INSTANCES)
            .create_instances(&cx.s.ous, &cx.s.exclude)
            .await?;
        cx.settle(INSTANCES, &op, "Deploying the role to the target OUs")
            .await
            .map(|_| ())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let Some(list) = self.listed(cx).await? else {
            return Ok(Observed::Gone);
        };
        let scope = self.scope(cx).await?;
        let have: BTreeSet<&str> = list.iter().map(|i| i.account.as_str()).collect();
        let mut out = Vec::new();
        let uncovered: Vec<String> = scope
            .keys()
            .filter(|a| !have.contains(a.as_str()))
            .cloned()
            .collect();
        if !uncovered.is_empty() {
            out.push(Problem::new(format!("{} account(s) of the target OUs have no stack instance, so no role: {} (joined since the last apply, or automatic deployment is off or has not run yet)", uncovered.len(), some(&uncovered)), Cause::Uncovered));
        }
        let extra: Vec<String> = list
            .iter()
            .filter(|i| !scope.contains_key(&i.account))
            .map(|i| i.account.clone())
            .collect();
        if !extra.is_empty() {
            out.push(Problem::new(format!("{} stack instance(s) in accounts outside the targets (an OU no longer listed, an excluded account, or an account moved out): {}", extra.len(), some(&extra)), Cause::OutOfScope));
        }
        let stale: Vec<String> = list
            .iter()
            .filter(|i| scope.contains_key(&i.account) && (i.failed() || i.status == "OUTDATED"))
            .map(|i| {
                format!(
                    "{} ({}{})",
                    i.account,
                    i.status,
                    if i.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", i.reason)
                    }
                )
            })
            .collect();
        let drifted: Vec<String> = list
            .iter()
            .filter(|i| scope.contains_key(&i.account) && i.drift == "DRIFTED")
            .map(|i| i.account.clone())
            .collect();
        if !drifted.is_empty() {
            out.push(Problem::new(format!("{} account(s) whose role was deleted or changed there (the last drift detection, which every apply starts): {}", drifted.len(), some(&drifted)), Cause::Drifted));
        }
        if !stale.is_empty() {
            out.push(Problem::new(
                format!(
                    "{} stack instance(s) not current: {}",
                    stale.len(),
                    some(&stale)
                ),
                Cause::Outdated,
            ));
        }
        Ok(Observed::Present(out))
    }
    async fn repair(&self, cx: &Cx, problems: &[Problem<Cause>]) -> Result<(), StepError> {
        let api = cx.api(INSTANCES);
        let has = |c: Cause| problems.iter().any(|p| p.cause == c);
        if has(Cause::OutOfScope) {
            let scope = self.scope(cx).await?;
            let list = api.instances().await?;
            // An OU no longer listed is removed whole (it leaves the stack set's targets and
            // its automatic deployment); excluded or moved accounts of a listed OU one by one.
            let mut by_ou: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for i in list.iter().filter(|i| !scope.contains_key(&i.account)) {
                let Some(ou) = &i.ou else {
                    return Err(StepError::new(INSTANCES, format!("the stack instance in account {} names no organizational unit, so it cannot be deleted by OU; delete it by hand", i.account)));
                };
                by_ou.entry(ou.clone()).or_default().push(i.account.clone());
            }
            for (ou, accounts) in by_ou {
                let only = if cx.s.ous.contains(&ou) {
                    accounts
                } else {
                    Vec::new()
                };
                let op = api
                    .delete_instances(std::slice::from_ref(&ou), &only, false)
                    .await?;
                cx.settle(INSTANCES, &op, &format!("Deleting stack instances of {ou}"))
                    .await?;
            }
        }
        if has(Cause::Drifted) {
            let list = api.instances().await?;
            let mut by_ou: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for i in list.iter().filter(|i| i.drift == "DRIFTED") {
                if let Some(ou) = &i.ou {
                    by_ou.entry(ou.clone()).or_default().push(i.account.clone());
                }
            }
            for (ou, accounts) in by_ou {
                let op = api
                    .delete_instances(std::slice::from_ref(&ou), &accounts, false)
                    .await?;
                cx.settle(
                    INSTANCES,
                    &op,
                    "Removing drifted stack instances to make them again",
                )
                .await?;
            }
        }
        // After deletions too: an account of a listed OU whose instance came through an OU no
        // longer listed (the root narrowed to an OU) lost it with that OU's instances.
        if has(Cause::Uncovered) || has(Cause::OutOfScope) || has(Cause::Drifted) {
            let op = api.create_instances(&cx.s.ous, &cx.s.exclude).await?;
            cx.settle(INSTANCES, &op, "Deploying the role to accounts without it")
                .await?;
        }
        if has(Cause::Outdated) {
            let op = api.redeploy(&cx.s.ous).await?;
            cx.settle(INSTANCES, &op, "Redeploying the template")
                .await?;
        }
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        // Only the instances of our own stack set (a foreign one is left, with a warning, by
        // the stack set step).
        match cx.claim(INSTANCES).await? {
            Some(c) if c.is_ours() => {}
            _ => return Ok(()),
        }
        let api = cx.api(INSTANCES);
        let list = api.instances().await?;
        if list.is_empty() {
            return Ok(());
        }
        let mut ous: Vec<String> = cx.s.ous.clone();
        for ou in list.iter().filter_map(|i| i.ou.clone()) {
            if !ous.contains(&ou) {
                ous.push(ou);
            }
        }
        let op = api
            .delete_instances(&ous, &[], cx.s.retain_stacks_on_destroy)
            .await?;
        let failed = api.wait(&op).await?;
        let left = api.instances().await?;
        cx.record_instances(&left);
        if !left.is_empty() || failed.is_some() {
            return Err(StepError::new(INSTANCES, format!("stack instances could not be deleted in: {}. An INOPERABLE instance is one whose stack AWS could not delete: delete its stack in that account by hand, remove the instance with `aws cloudformation delete-stack-instances --retain-stacks`, then run destroy again.", if left.is_empty() { "(none left; the operation did not succeed)".to_string() } else { describe_instances(&left) })));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
/// Starts stack set drift detection and waits for it: run by apply (create and update), never
/// by refresh, since it holds the stack set's one operation slot; the next refresh reports
/// its verdicts (`Cause::Drifted`).
pub async fn detect_drift(cx: &Cx) -> Result<(), StepError> {
    const STEP: &str = "Organization rollout: stack set drift detection";
    let api = cx.api(STEP);
    let op = api.detect_drift().await?;
    if let Some(f) = api.wait(&op).await? {
        cx.warn("Drift detection did not finish", format!("stack set operation {op} (drift detection) ended {}{}; the next apply starts it again.", f.status, if f.reason.is_empty() { String::new() } else { format!(": {}", f.reason) }));
    }
    Ok(())
}
