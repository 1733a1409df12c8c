//! What the two resources that put ExpelServiceRole in member accounts share
//! (`expel_aws_member_role`, `expel_aws_organization_member_roles`): the AWS account the
//! provider points at, the account pinned in state, and the plan's defaults of the role's
//! trust (the external id is the Workbench organization id; Expel's account in the caller's
//! partition).
use super::common::{needs_default, set, str_of};
use crate::policy::{self, Location};
use crate::resources::ExpelData;
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::provider::{Ctx, PlanInput};
use tfplugin::value::Value;

/// The account, partition and region the provider points at; None with an error diagnostic
/// (naming the role the provider assumes, if it assumes one) when they cannot be read, or
/// when the account is outside `aws.allowed_account_ids` / inside `forbidden_account_ids`.
pub async fn location(ctx: &Ctx<ExpelData>, diags: &mut Diagnostics) -> Option<Location> {
    match ctx.data.aws_location().await {
        Ok(l) if !ctx.data.account_allowed(&l.account_id, diags) => None,
        Ok(l) => Some(Location {
            partition: l.partition,
            account_id: l.account_id,
            region: l.region,
        }),
        Err(e) => {
            let how = match &ctx.data.aws.assume_role {
                Some(a) => format!(
                    " The provider assumes {}: check that the role exists in the account and trusts the caller.",
                    a.role_arn
                ),
                None => String::new(),
            };
            diags.error("Cannot determine the AWS account", format!("{e}.{how}"));
            None
        }
    }
}

/// State pins the account (`account_id`): a provider now pointing elsewhere is an error, never
/// "gone". `what` is the object in words ("This role"), `which` the account it needs ("the
/// management account", or "" to say nothing more).
pub fn check_pinned(
    state: &Value,
    loc: &Location,
    what: &str,
    which: &str,
    diags: &mut Diagnostics,
) -> bool {
    let pinned = str_of(state, "account_id");
    if pinned.is_empty() || pinned == loc.account_id {
        return true;
    }
    diags.error(
        "The provider points at another AWS account",
        format!(
            "{what} lives in account {pinned}, but the provider is configured for account {}. Point the provider (aws.assume_role) back at {pinned}{which}, or remove the resource from state.",
            loc.account_id
        ),
    );
    false
}

/// Plans the defaults of `external_id` (the provider's organization id) and
/// `expel_principals` (Expel's account in `loc`'s partition); false, with an error on
/// `external_id`, when there is no organization id to default to.
pub fn plan_trust_defaults(
    ctx: &Ctx<ExpelData>,
    input: &PlanInput<'_>,
    loc: &Location,
    planned: &mut Value,
    diags: &mut Diagnostics,
) -> bool {
    if needs_default(input.config, planned, "external_id") {
        match &ctx.data.organization_id {
            Some(org) => set(planned, "external_id", Value::string(org.clone())),
            None => {
                diags.attr_error(AttrPath::root("external_id"), "Missing external id", "Set `external_id`, or the provider's `organization_id` (or EXPEL_ORGANIZATION_ID): the Workbench organization id is the role's external id.");
                return false;
            }
        }
    }
    if needs_default(input.config, planned, "expel_principals") {
        let p = policy::default_trust_principals(&loc.partition);
        set(
            planned,
            "expel_principals",
            Value::List(p.into_iter().map(Value::string).collect()),
        );
    }
    true
}
