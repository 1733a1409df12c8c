//! Resource `expel_aws_organization_member_roles`: ExpelServiceRole with ExpelAPIPolicy in every
//! member account of an AWS Organization, including the ones that join later, through a
//! service-managed CloudFormation StackSet with automatic deployment to the target OUs. Run
//! from the management account (`call_as = "SELF"`) or a StackSets delegated administrator
//! (`"DELEGATED_ADMIN"`).
//!
//! The template is generated from the same policy documents as `expel_aws_member_role`
//! (`policy::member_roles_template`), so the two ways of making the role cannot disagree.
//! Plan checks what AWS would refuse later: trusted access, the caller's standing, and that
//! every OU id belongs to this organization.
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::support::aws_names::{self, AwsName};
use super::support::common::{check_expel_principals, needs_default, set, str_of, timeouts_block};
use super::support::guided::{plan_repairs, Closed, Fixes, Guided, Import, Op, Opening, Plan};
use super::support::member_account;
use super::support::ownership::{Owner, OWNER_ATTR, OWNER_DESCRIPTION};
use super::ExpelData;
use crate::clients::aws::{err, AwsClients, AwsError};
use crate::engine::{Step, StepError};
use crate::policy::{self, Location};
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::provider::{Ctx, PlanInput};
use tfplugin::schema::{validators, Attribute, Block, FnValidator, Schema};
use tfplugin::value::{Number, Type, Value};

mod api;
mod steps;

use api::call_as;
use steps::{Cx, Piece, RolloutInstances, RolloutStackSet, Settings};

pub struct OrganizationMemberRoles;

const TYPE_NAME: &str = "expel_aws_organization_member_roles";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The service principal of StackSets' trusted access with AWS Organizations.
const STACKSETS_PRINCIPAL: &str = "member.org.stacksets.cloudformation.amazonaws.com";
/// The pinned account, as a provider pointed elsewhere is told.
const WHERE: &str = "This stack set";
const PINNED_HINT: &str = " (the management or delegated administrator account)";

fn steps() -> Vec<&'static dyn Step<Cx>> {
    vec![&RolloutStackSet, &RolloutInstances]
}

fn ou_ok(s: &str) -> bool {
    // API_DeploymentTargets: ^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$
    let lower = |p: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if let Some(rest) = s.strip_prefix("ou-") {
        return match rest.split_once('-') {
            Some((a, b)) => lower(a, 4, 32) && lower(b, 8, 32),
            None => false,
        };
    }
    s.strip_prefix("r-").is_some_and(|r| lower(r, 4, 32))
}

fn account_ok(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

/// Each element of a list attribute checked by `ok`, an error naming `attr[i]` otherwise.
fn each(
    ok: fn(&str) -> bool,
    what: &'static str,
    example: &'static str,
) -> impl tfplugin::schema::Validator {
    FnValidator(move |v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        for (i, x) in v.as_list().unwrap_or_default().iter().enumerate() {
            if let Some(s) = x.as_str() {
                if !ok(s) {
                    d.attr_error(
                        p.clone().index(i),
                        format!("Malformed {what}"),
                        format!("`{p}[{i}]` = {s:?} is not {what} such as {example}."),
                    );
                }
            }
        }
    })
}

fn percentage(name: &str, default: i64, text: &str) -> Attribute {
    Attribute::number(name)
        .default(Value::Number(Number::from_i64(default)))
        .description(text)
        .validator(FnValidator(
            move |v: &Value, p: &AttrPath, d: &mut Diagnostics| {
                if let Some(n) = v.as_number() {
                    let x = n.as_f64();
                    if !(0.0..=100.0).contains(&x) || x.fract() != 0.0 {
                        d.attr_error(
                            p.clone(),
                            "Not a percentage",
                            format!("`{p}` = {x} must be a whole number from 0 to 100."),
                        );
                    }
                }
            },
        ))
}

fn schema() -> Schema {
    let s = |n: &str, d: &str| Attribute::string(n).description(d);
    let b = |n: &str, default: bool, d: &str| {
        Attribute::bool(n)
            .default(Value::Bool(default))
            .description(d)
    };
    Schema::new(
        0,
        Block::new("ExpelServiceRole with a read-only ExpelAPIPolicy (CloudFormation guide Steps 6 and 7) in every member account of an AWS Organization, including accounts that join later: a service-managed CloudFormation StackSet with automatic deployment to the target organizational units. Run it with a provider pointed at the management account, or at a StackSets delegated administrator with `call_as = \"DELEGATED_ADMIN\"`. StackSets never deploys to the management account: `expel_cloudtrail_integration` makes the role there.")
            .attr(s("stack_set_name", "Name of the stack set (letters, digits and hyphens, starting with a letter; at most 128). Import uses it. A new name replaces the resource (stack sets cannot be renamed).").default(Value::string("ExpelMemberRoles")).requires_replace().validator(FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
                if let Some(x) = v.as_str() {
                    let ok = x.len() <= 128 && x.starts_with(|c: char| c.is_ascii_alphabetic()) && x.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                    if !ok {
                        d.attr_error(p.clone(), "Malformed stack set name", format!("`{p}` = {x:?}: a stack set name starts with a letter and holds only letters, digits and hyphens (at most 128)."));
                    }
                }
            })))
            .attr(Attribute::new("organizational_unit_ids", Type::list(Type::String)).optional().computed().description("Organizational units (`ou-...`) or the root (`r-...`) whose accounts, at any depth, get the role. Default: the organization's root, i.e. every member account. An id that is not of this organization is an error on `organizational_unit_ids[i]` at plan. Removing an OU deletes its stack instances (and their roles, unless `retain_on_account_removal`); adding one deploys to it; the stack set is never replaced.").validator(each(ou_ok, "an organizational unit or root id", "\"ou-ab12-cdefgh34\" or \"r-ab12\"")))
            .attr(Attribute::new("exclude_account_ids", Type::list(Type::String)).optional().description("Member accounts of the target OUs that do not get the role (StackSets' `DIFFERENCE` account filter). Adding one deletes its instance at the next apply.").validator(each(account_ok, "a 12-digit AWS account id", "\"111122223333\"")))
            .attr(s("role_name", "IAM role in every member account; the guide requires the same name everywhere. Default as `expel_aws_member_role`. A change updates the stack set's template: each account's role is replaced by CloudFormation.").default(Value::string("ExpelServiceRole")).validator(aws_names::validator(AwsName::IamRole)))
            .attr(s("policy_name", "Name of the read-only policy on the role (an inline policy of the role in the template, the same document as `expel_aws_member_role`'s ExpelAPIPolicy).").default(Value::string("ExpelAPIPolicy")).validator(aws_names::validator(AwsName::IamPolicy)))
            .attr(Attribute::new("expel_principals", Type::list(Type::String)).optional().computed().description("Principals trusted to assume the role: 12-digit account ids or IAM ARNs. Default: Expel's account `012205512454` in the account's partition. A malformed entry is an error on `expel_principals[i]`."))
            .attr(s("external_id", "External id required in the trust policy. Default: the provider's `organization_id` (the Workbench organization id); with neither set, planning fails with an error on `external_id`.").optional().computed().validator(validators::non_empty()))
            .attr(s("region", "Region of the stack instances (one: IAM is global). Default: the provider's region. The stack set itself lives in the provider's region.").optional().computed())
            .attr(b("auto_deployment", true, "Automatic deployment: an account that joins a target OU gets the role, one that leaves loses it (unless `retain_on_account_removal`). A change is its own UpdateStackSet (AWS refuses it together with targets)."))
            .attr(b("retain_on_account_removal", false, "With automatic deployment, keep the role in an account that leaves the target OUs (its stack instance is removed, the stack stays)."))
            .attr(b("retain_stacks_on_destroy", false, "Destroy removes the stack instances but keeps each account's stack and role (`RetainStacks`), e.g. when moving to another way of managing them."))
            .attr(s("call_as", "`SELF` in the management account, `DELEGATED_ADMIN` in a member account registered as a StackSets delegated administrator (`aws organizations register-delegated-administrator --service-principal member.org.stacksets.cloudformation.amazonaws.com`). A caller that is neither is an error on `call_as` at plan.").default(Value::string("SELF")).validator(validators::one_of(&["SELF", "DELEGATED_ADMIN"])))
            .attr(percentage("max_concurrent_percentage", 100, "Share of the accounts deployed to at once (`MaxConcurrentPercentage`; StackSets rounds down, at least one). The concurrency mode is `SOFT_FAILURE_TOLERANCE`: failures do not slow the rollout."))
            .attr(percentage("failure_tolerance_percentage", 10, "Share of accounts that may fail before an operation stops and fails (`FailureTolerancePercentage`). Accounts that failed within it are in `failed_accounts` and a warning."))
            .attr(s(OWNER_ATTR, OWNER_DESCRIPTION).computed().use_state_for_unknown())
            .attr(s("id", "Name of the stack set.").computed().use_state_for_unknown())
            .attr(s("account_id", "AWS account the stack set lives in: the management or delegated administrator account (pinned).").computed().use_state_for_unknown())
            .attr(s("partition", "AWS partition (pinned).").computed().use_state_for_unknown())
            .attr(s("stack_set_id", "Id of the stack set.").computed().use_state_for_unknown())
            .attr(s("stack_set_arn", "ARN of the stack set.").computed().use_state_for_unknown())
            .attr(Attribute::new("accounts", Type::map(Type::object([("status", Type::String), ("status_reason", Type::String)]))).computed().description("Every stack instance by account id: `status` (`CURRENT`, `OUTDATED`, `INOPERABLE`, or the detailed status of a failed one, e.g. `FAILED`) and `status_reason`."))
            .attr(Attribute::new("failed_accounts", Type::map(Type::String)).computed().description("Accounts whose stack instance failed or is inoperable, with AWS's reason."))
            .attr(Attribute::new("drift", Type::map(Type::String)).computed().description("What differs, per piece (`stack_set`: the template or automatic deployment; `stack_instances`: accounts of the target OUs without the role, instances outside them, instances outdated or failed), in words; filled by refresh, emptied by the plan that repairs it."))
            .block(timeouts_block("60m")),
    )
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_list)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn int(v: &Value, k: &str, default: i32) -> i32 {
    v.get(k)
        .and_then(Value::as_i64)
        .map(|x| x as i32)
        .unwrap_or(default)
}

fn bool_of(v: &Value, k: &str, default: bool) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(default)
}

fn settings(v: &Value, loc: &Location) -> Settings {
    let region = match str_of(v, "region") {
        r if r.is_empty() => loc.region.clone(),
        r => r,
    };
    Settings {
        stack_set_name: str_of(v, "stack_set_name"),
        ous: strings(v, "organizational_unit_ids"),
        exclude: strings(v, "exclude_account_ids"),
        role_name: str_of(v, "role_name"),
        policy_name: str_of(v, "policy_name"),
        principals: strings(v, "expel_principals"),
        external_id: str_of(v, "external_id"),
        region,
        auto_deployment: bool_of(v, "auto_deployment", true),
        retain_on_account_removal: bool_of(v, "retain_on_account_removal", false),
        retain_stacks_on_destroy: bool_of(v, "retain_stacks_on_destroy", false),
        call_as: match str_of(v, "call_as") {
            c if c.is_empty() => "SELF".into(),
            c => c,
        },
        max_concurrent_percentage: int(v, "max_concurrent_percentage", 100),
        failure_tolerance_percentage: int(v, "failure_tolerance_percentage", 10),
        default_tags: BTreeMap::new(),
    }
}

/// The instance's owner: one stack set per account and name.
fn owner(loc: &Location, name: &str) -> Owner {
    Owner::derive(TYPE_NAME, &[&loc.account_id, name])
}

fn opt_string(v: Option<String>) -> Value {
    v.map(Value::string).unwrap_or(Value::Null)
}

fn state_of(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
    let mut v = base.clone();
    let (id, arn) = cx.ids();
    if id.is_some() {
        set(&mut v, "stack_set_id", opt_string(id));
        set(&mut v, "stack_set_arn", opt_string(arn));
    }
    let list = cx.instances().unwrap_or_default();
    let accounts = list
        .iter()
        .map(|i| {
            let status = if i.failed() && !i.detailed.is_empty() {
                i.detailed.clone()
            } else {
                i.status.clone()
            };
            (
                i.account.clone(),
                Value::object([
                    ("status", Value::string(status)),
                    ("status_reason", Value::string(i.reason.clone())),
                ]),
            )
        })
        .collect();
    let failed = list
        .iter()
        .filter(|i| i.failed())
        .map(|i| (i.account.clone(), Value::string(i.reason.clone())))
        .collect();
    set(&mut v, "accounts", Value::Map(accounts));
    set(&mut v, "failed_accounts", Value::Map(failed));
    set(
        &mut v,
        "drift",
        Value::Map(
            drift
                .into_iter()
                .map(|(k, x)| (k, Value::string(x)))
                .collect(),
        ),
    );
    v
}

impl OrganizationMemberRoles {
    /// What AWS would refuse later, said at plan on the attribute that causes it: the caller
    /// is neither the management account (`SELF`) nor a registered delegated administrator;
    /// StackSets' trusted access with Organizations is off; an OU of another organization.
    async fn check_organization(
        &self,
        aws: &AwsClients,
        loc: &Location,
        planned: &Value,
        diags: &mut Diagnostics,
    ) {
        let call = str_of(planned, "call_as");
        let management = match aws.organizations.describe_organization().send().await {
            Ok(o) => o
                .organization()
                .and_then(|o| o.master_account_id())
                .unwrap_or_default()
                .to_string(),
            Err(e) => {
                let e = AwsError::from_sdk("organizations", "DescribeOrganization", e);
                diags.attr_error(AttrPath::root("call_as"), "Not in an AWS Organization", format!("The stack set must be made in the management account of an AWS Organization, or in a StackSets delegated administrator: {e}"));
                return;
            }
        };
        if call == "SELF" && management != loc.account_id {
            diags.attr_error(AttrPath::root("call_as"), "Not the management account", format!("With `call_as = \"SELF\"` the provider must point at the organization's management account ({management}); it points at {}. If {} is registered as a StackSets delegated administrator, set `call_as = \"DELEGATED_ADMIN\"`; otherwise point the provider at the management account.", loc.account_id, loc.account_id));
            return;
        }
        let access = aws
            .cloudformation
            .describe_organizations_access()
            .call_as(call_as(&call))
            .send()
            .await
            .map_err(err("cloudformation", "DescribeOrganizationsAccess"));
        match access {
            Err(e)
                if call == "DELEGATED_ADMIN"
                    && e.kind == crate::clients::aws::AwsErrorKind::User =>
            {
                diags.attr_error(AttrPath::root("call_as"), "Not a StackSets delegated administrator", format!("Account {} is not registered as a StackSets delegated administrator ({e}). In the management account: `aws organizations register-delegated-administrator --account-id {} --service-principal {STACKSETS_PRINCIPAL}`, or point the provider at the management account with `call_as = \"SELF\"`.", loc.account_id, loc.account_id));
                return;
            }
            Err(e) => {
                diags.error("Cannot read StackSets' trusted access", e.to_string());
                return;
            }
            Ok(o) if o.status().map(|s| s.as_str()) != Some("ENABLED") => {
                diags.attr_error(AttrPath::root("organizational_unit_ids"), "StackSets trusted access is off", format!("Service-managed stack sets reach the organizational units only with trusted access between CloudFormation StackSets and AWS Organizations (status: {}). In the management account: `aws cloudformation activate-organizations-access` (or the StackSets console: \"Activate trusted access\"); use CloudFormation for this, not Organizations' enable-aws-service-access, which does not create the roles StackSets needs.", o.status().map(|s| s.as_str()).unwrap_or("unknown")));
                return;
            }
            Ok(_) => {}
        }
        let roots: Vec<String> = match aws.organizations.list_roots().send().await {
            Ok(r) => r
                .roots()
                .iter()
                .filter_map(|r| r.id().map(str::to_string))
                .collect(),
            Err(e) => {
                diags.error(
                    "Cannot list the organization's roots",
                    AwsError::from_sdk("organizations", "ListRoots", e).to_string(),
                );
                return;
            }
        };
        let list = planned
            .get("organizational_unit_ids")
            .and_then(Value::as_list)
            .unwrap_or_default();
        for (i, ou) in list.iter().enumerate() {
            let Some(ou) = ou.as_str() else { continue };
            let found = if ou.starts_with("r-") {
                roots.iter().any(|r| r == ou)
            } else {
                match aws
                    .organizations
                    .describe_organizational_unit()
                    .organizational_unit_id(ou)
                    .send()
                    .await
                {
                    Ok(_) => true,
                    Err(e) => {
                        let e =
                            AwsError::from_sdk("organizations", "DescribeOrganizationalUnit", e);
                        if e.kind == crate::clients::aws::AwsErrorKind::Transient {
                            diags.error("Cannot check the organizational units", e.to_string());
                            return;
                        }
                        false
                    }
                }
            };
            if !found {
                diags.attr_error(AttrPath::root("organizational_unit_ids").index(i), "Not an organizational unit of this organization", format!("{ou:?} is not an OU or root of the organization of account {management} (roots: {}). Use `aws organizations list-organizational-units-for-parent --parent-id {}` in the management account to find the ids.", roots.join(", "), roots.first().map(String::as_str).unwrap_or("<root id>")));
            }
        }
    }

    async fn default_ous(&self, aws: &AwsClients, diags: &mut Diagnostics) -> Option<Vec<String>> {
        match aws.organizations.list_roots().send().await {
            Ok(r) => Some(
                r.roots()
                    .iter()
                    .filter_map(|r| r.id().map(str::to_string))
                    .collect(),
            ),
            Err(e) => {
                diags.attr_error(AttrPath::root("organizational_unit_ids"), "Cannot find the organization's root", format!("The default target is the organization's root: {}. Set `organizational_unit_ids`, or point the provider at the management account.", AwsError::from_sdk("organizations", "ListRoots", e)));
                None
            }
        }
    }
}

fn warnings_of(cx: &Cx) -> Vec<(String, String)> {
    let found = cx.warnings.lock().map(|g| g.clone()).unwrap_or_default();
    found.into_iter().map(|(s, d)| (s.to_string(), d)).collect()
}

#[async_trait]
impl Guided for OrganizationMemberRoles {
    type Cx = Cx;
    const TYPE_NAME: &'static str = TYPE_NAME;
    const WHAT: &'static str = "the organization rollout";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    const STATE_IDS: &'static [&'static str] = &["stack_set_id", "stack_set_arn"];

    fn schema() -> Schema {
        schema()
    }

    fn validate(config: &Value, diags: &mut Diagnostics) {
        check_expel_principals(config, diags);
        let list = config
            .get("organizational_unit_ids")
            .and_then(Value::as_list);
        if list.is_some_and(|l| l.is_empty()) {
            diags.attr_error(AttrPath::root("organizational_unit_ids"), "No target", "`organizational_unit_ids` must name at least one OU or root; leave it unset for the whole organization.");
        }
    }

    fn steps() -> Vec<&'static dyn Step<Cx>> {
        steps()
    }

    async fn open(
        &self,
        ctx: &Ctx<ExpelData>,
        o: Opening<'_>,
        diags: &mut Diagnostics,
    ) -> Result<Cx, Closed> {
        let Opening {
            op,
            values,
            prior,
            deadline,
            ..
        } = o;
        let loc = member_account::location(ctx, diags)
            .await
            .ok_or(Closed::Failed)?;
        if op != Op::Create && !member_account::check_pinned(prior, &loc, WHERE, PINNED_HINT, diags)
        {
            return Err(Closed::Failed);
        }
        let s = Settings {
            default_tags: ctx.data.aws.default_tags.clone(),
            ..settings(values, &loc)
        };
        Ok(Cx {
            aws: ctx.data.aws_clients().await.clone(),
            owner: Owner::recorded(values).unwrap_or_else(|| owner(&loc, &s.stack_set_name)),
            loc,
            s,
            deadline: deadline
                .with_propagation(ctx.data.aws.propagation_timeout)
                .with_max_retries(ctx.data.aws.max_retries),
            journal: Default::default(),
            warnings: Default::default(),
        })
    }

    fn state_from(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
        state_of(base, cx, drift)
    }

    fn warnings(cx: &Cx) -> Vec<(String, String)> {
        warnings_of(cx)
    }

    /// A new resource: every state it writes has an owner.
    async fn claim(_cx: &Cx) -> Result<(), StepError> {
        Ok(())
    }

    async fn after_create(cx: &Cx) -> Result<(), StepError> {
        steps::detect_drift(cx).await
    }

    async fn after_converge(
        &self,
        cx: &Cx,
        _prior: &Value,
        _planned: &Value,
        _diags: &mut Diagnostics,
    ) -> Result<(), StepError> {
        steps::detect_drift(cx).await
    }

    fn drift_place(cx: &Cx) -> String {
        format!(" (stack set {})", cx.s.stack_set_name)
    }

    fn plan(&self) -> Option<&dyn Plan> {
        Some(self)
    }

    fn import(&self) -> Option<&dyn Import> {
        Some(self)
    }
}

#[async_trait]
impl Plan for OrganizationMemberRoles {
    async fn modify_plan(
        &self,
        ctx: &Ctx<ExpelData>,
        input: &PlanInput<'_>,
        fixes: &Fixes,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        let Some(loc) = member_account::location(ctx, diags).await else {
            return;
        };
        if !input.prior.is_null()
            && !member_account::check_pinned(input.prior, &loc, WHERE, PINNED_HINT, diags)
        {
            return;
        }
        let aws = ctx.data.aws_clients().await;
        if !member_account::plan_trust_defaults(ctx, input, &loc, planned, diags) {
            return;
        }
        if needs_default(input.config, planned, "region") {
            set(planned, "region", Value::string(loc.region.clone()));
        }
        if needs_default(input.config, planned, "organizational_unit_ids") {
            let Some(roots) = self.default_ous(aws, diags).await else {
                return;
            };
            set(
                planned,
                "organizational_unit_ids",
                Value::List(roots.into_iter().map(Value::string).collect()),
            );
        }
        if input.prior.is_null() || planned != input.prior {
            self.check_organization(aws, &loc, planned, diags).await;
        }
        set(planned, "account_id", Value::string(loc.account_id.clone()));
        set(planned, "partition", Value::string(loc.partition.clone()));
        let name = planned
            .get("stack_set_name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let or_unknown = |v: Option<String>| v.map(Value::string).unwrap_or(Value::unknown());
        set(planned, "id", or_unknown(name.clone()));
        if Owner::recorded(input.prior).is_none() {
            set(
                planned,
                OWNER_ATTR,
                or_unknown(name.map(|n| owner(&loc, &n).as_str().to_string())),
            );
        }
        plan_repairs::<Piece>(planned, &[], fixes);
        // Any apply re-reads the instances: what it will find is known only then.
        if input.prior.is_null() || planned != input.prior {
            set(planned, "accounts", Value::unknown());
            set(planned, "failed_accounts", Value::unknown());
        }
    }
}

#[async_trait]
impl Import for OrganizationMemberRoles {
    /// By stack set name (`ExpelMemberRoles`), or `DELEGATED_ADMIN/<name>` from a delegated
    /// administrator.
    async fn import(
        &self,
        ctx: &Ctx<ExpelData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let loc = member_account::location(ctx, diags).await?;
        let (call, name) = match id.split_once('/') {
            Some(("DELEGATED_ADMIN", n)) => ("DELEGATED_ADMIN", n),
            Some(_) => {
                diags.error("Malformed import id", format!("{id:?}: import by the stack set's name (e.g. ExpelMemberRoles), or `DELEGATED_ADMIN/<name>` from a delegated administrator."));
                return None;
            }
            None => ("SELF", id),
        };
        let aws = ctx.data.aws_clients().await;
        let found = aws
            .cloudformation
            .describe_stack_set()
            .stack_set_name(name)
            .call_as(call_as(call))
            .send()
            .await
            .map_err(err("cloudformation", "DescribeStackSet"));
        let s = match found.map(|o| o.stack_set) {
            Ok(Some(s)) => s,
            Ok(None) => {
                diags.error(
                    "Cannot import the organization rollout",
                    format!("stack set {name} not found"),
                );
                return None;
            }
            Err(e) => {
                diags.error(
                    "Cannot import the organization rollout",
                    format!(
                        "{e}. Import by the stack set's name, in the account that administers it."
                    ),
                );
                return None;
            }
        };
        let template: serde_json::Value = s
            .template_body()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default();
        let Some((trust, _)) = policy::template_documents(&template) else {
            diags.error("Cannot import the organization rollout", format!("stack set {name}'s template does not define {} with a policy: it was not made by this provider. Delete it or choose another `stack_set_name`.", policy::ROLE_LOGICAL_ID));
            return None;
        };
        let role = &template["Resources"][policy::ROLE_LOGICAL_ID]["Properties"];
        let principals = match &trust["Statement"][0]["Principal"]["AWS"] {
            serde_json::Value::String(p) => vec![Value::string(p.clone())],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|p| p.as_str())
                .map(Value::string)
                .collect(),
            _ => vec![],
        };
        let external = trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"]
            .as_str()
            .unwrap_or_default();
        let auto = s.auto_deployment();
        let owner_tag = s
            .tags()
            .iter()
            .find(|t| t.key() == Some(super::support::ownership::OWNER_KEY))
            .and_then(|t| t.value())
            .map(str::to_string);
        let ous: Vec<Value> = s
            .organizational_unit_ids()
            .iter()
            .cloned()
            .map(Value::string)
            .collect();
        Some(Value::object([
            ("stack_set_name", Value::string(name)),
            ("id", Value::string(name)),
            (
                "organizational_unit_ids",
                if ous.is_empty() {
                    Value::Null
                } else {
                    Value::List(ous)
                },
            ),
            (
                "role_name",
                Value::string(role["RoleName"].as_str().unwrap_or_default()),
            ),
            (
                "policy_name",
                Value::string(
                    role["Policies"][0]["PolicyName"]
                        .as_str()
                        .unwrap_or_default(),
                ),
            ),
            ("expel_principals", Value::List(principals)),
            ("external_id", Value::string(external)),
            (
                "auto_deployment",
                Value::Bool(auto.and_then(|a| a.enabled()).unwrap_or(true)),
            ),
            (
                "retain_on_account_removal",
                Value::Bool(
                    auto.and_then(|a| a.retain_stacks_on_account_removal())
                        .unwrap_or(false),
                ),
            ),
            ("retain_stacks_on_destroy", Value::Bool(false)),
            ("call_as", Value::string(call)),
            (
                "max_concurrent_percentage",
                Value::Number(Number::from_i64(100)),
            ),
            (
                "failure_tolerance_percentage",
                Value::Number(Number::from_i64(10)),
            ),
            ("region", Value::string(loc.region.clone())),
            (
                "stack_set_id",
                opt_string(s.stack_set_id().map(str::to_string)),
            ),
            (
                "stack_set_arn",
                opt_string(s.stack_set_arn().map(str::to_string)),
            ),
            (OWNER_ATTR, opt_string(owner_tag)),
            ("account_id", Value::string(loc.account_id)),
            ("partition", Value::string(loc.partition)),
            ("drift", Value::Map(BTreeMap::new())),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::support::common::validate_config;
    use crate::resources::support::guided::{needs, Guide};

    #[test]
    fn instances_come_after_their_stack_set() {
        assert_eq!(
            needs::<OrganizationMemberRoles>(Piece::StackInstances),
            [Piece::StackSet]
        );
        assert!(needs::<OrganizationMemberRoles>(Piece::StackSet).is_empty());
    }

    #[test]
    fn ou_and_account_ids_are_checked_as_aws_would() {
        for ok in ["ou-ab12-cdefgh34", "r-ab12", "ou-abcd-12345678"] {
            assert!(ou_ok(ok), "{ok}");
        }
        for bad in [
            "ou-AB12-cdefgh34",
            "ou-ab1-cdefgh34",
            "r-ab",
            "o-abcdefghij",
            "ou-ab12",
            "",
        ] {
            assert!(!ou_ok(bad), "{bad}");
        }
        assert!(
            account_ok("111122223333") && !account_ok("11112222333") && !account_ok("11112222333x")
        );
    }

    #[test]
    fn bad_input_is_a_diagnostic_naming_the_attribute() {
        let config = Value::object([
            (
                "organizational_unit_ids",
                Value::List(vec![
                    Value::string("ou-ab12-cdefgh34"),
                    Value::string("o-abc"),
                ]),
            ),
            (
                "exclude_account_ids",
                Value::List(vec![Value::string("123")]),
            ),
            ("call_as", Value::string("ADMIN")),
            ("stack_set_name", Value::string("1bad name")),
            (
                "max_concurrent_percentage",
                Value::Number(Number::from_i64(150)),
            ),
        ]);
        let d = validate_config(&Guide::new(OrganizationMemberRoles), &config);
        let paths: Vec<String> = d
            .iter()
            .filter_map(|x| x.path.as_ref().map(|p| p.to_string()))
            .collect();
        for want in [
            "organizational_unit_ids[1]",
            "exclude_account_ids[0]",
            "call_as",
            "stack_set_name",
            "max_concurrent_percentage",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
        }
        let empty = Value::object([("organizational_unit_ids", Value::List(vec![]))]);
        let d = validate_config(&Guide::new(OrganizationMemberRoles), &empty);
        assert_eq!(
            d.iter()
                .filter_map(|x| x.path.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>(),
            ["organizational_unit_ids"]
        );
    }

    #[test]
    fn settings_default_to_the_providers_region_and_self() {
        let loc = Location {
            partition: "aws".into(),
            account_id: "111122223333".into(),
            region: "eu-west-1".into(),
        };
        let s = settings(
            &Value::object([("stack_set_name", Value::string("X"))]),
            &loc,
        );
        assert_eq!(
            (s.region.as_str(), s.call_as.as_str(), s.auto_deployment),
            ("eu-west-1", "SELF", true)
        );
        assert_eq!(
            (s.max_concurrent_percentage, s.failure_tolerance_percentage),
            (100, 10)
        );
    }
}
