//! Resource `expel_aws_member_role`: ExpelServiceRole and a read-only ExpelAPIPolicy in a
//! member account of an AWS Organization (the guide's Step 6 note and Step 7: the role and
//! policy replicated in every account, the role with the same name everywhere, the policy
//! without the SQS, S3 and KMS statements, which only the account holding the trail needs).
//!
//! One instance per account: point a provider alias at the account (`aws.assume_role`), and
//! use this resource with that alias.
use super::support::common::{
    auto_remediation_block, check_expel_principals, remediations_of, set, str_of, timeouts_block,
};
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::support::aws_names::{self, AwsName};
use super::support::guided::{plan_repairs, Closed, Fixes, Guided, Import, Op, Opening, Plan};
use super::support::iam::{OLD_ROLE_KEPT, ROLE_KEPT};
use super::support::member_account;
use super::support::ownership::{Owner, OWNER_ATTR, OWNER_DESCRIPTION};
use super::support::tags::{self, WithTags};
use super::ExpelData;
use crate::engine::{Deadline, Step, StepError};
use crate::policy::{self, Location};
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::provider::{Ctx, PlanInput};
use tfplugin::schema::{validators, Attribute, Block, Schema};
use tfplugin::value::{Type, Value};

mod steps;

use steps::{Cx, MemberPolicy, MemberRole, Piece, Settings};

pub struct AwsMemberRole;

fn steps() -> Vec<&'static dyn Step<Cx>> {
    vec![&WithTags(MemberPolicy), &WithTags(MemberRole)]
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

fn schema() -> Schema {
    let s = |n: &str, d: &str| Attribute::string(n).description(d);
    Schema::new(
        1,
        Block::new("`ExpelServiceRole` and a read-only `ExpelAPIPolicy` in a member account of an AWS Organization (CloudTrail guide, Step 6 note and Step 7). The account is the one the provider points at: use one provider alias per account, each with `aws { assume_role { role_arn = ... } }`.")
            .attr(s("role_name", "IAM role; the guide requires the same name in every account of the organization. Renaming is an in-place update: the new role is created with the policy attached, then the old role is detached and deleted (only if it carries the ownership tag).").default(Value::string("ExpelServiceRole")).validator(aws_names::validator(AwsName::IamRole)))
            .attr(s("policy_name", "IAM policy attached to the role. Renaming is an in-place update: the new policy is created and attached, then the old one is detached and deleted. If a rename fails part way, the state keeps the old name so that the next apply finishes it.").default(Value::string("ExpelAPIPolicy")).validator(aws_names::validator(AwsName::IamPolicy)))
            .attr(Attribute::new("expel_principals", Type::list(Type::String)).optional().computed().description("Principals trusted to assume the role: 12-digit account ids or IAM ARNs. Default: Expel's account `012205512454` in the account's partition (`arn:<partition>:iam::012205512454:root`). A malformed entry is an error on `expel_principals[i]`."))
            .attr(s("external_id", "External id required in the trust policy. Default: the provider's `organization_id` (or `EXPEL_ORGANIZATION_ID`); with neither set, planning fails with an error on `external_id`. Left to its default, it follows the organization: when the provider's `organization_id` changes, the plan updates the trust policy in place to the new id, with a warning naming both (the member accounts must trust the organization the CloudTrail device now lives in). Set it to keep a fixed value.").optional().computed().validator(validators::non_empty()))
            .attr(Attribute::new("tags", Type::map(Type::String)).optional().description("Tags for the role and the policy, over the provider's `aws.default_tags` (these win on equal keys; `tags_all` shows the result); `expel:managed-by` and `expel:owner` are always added (`tags` cannot set them). A change is applied in place (keys removed from the configuration are removed; tags added by others are left alone and are not drift)."))
            .attr(tags::tags_all_attribute())
            .attr(s(OWNER_ATTR, OWNER_DESCRIPTION).computed().use_state_for_unknown())
            .attr(s("id", "ARN of the role.").computed().use_state_for_unknown())
            .attr(s("account_id", "AWS account the role lives in (pinned).").computed().use_state_for_unknown())
            .attr(s("partition", "AWS partition (pinned).").computed().use_state_for_unknown())
            .attr(s("role_arn", "ARN of the role, the same name in every account.").computed())
            .attr(s("policy_arn", "ARN of the policy.").computed())
            .attr(Attribute::new("drift", Type::map(Type::String)).computed().description("What differs from the guide, per piece (`api_policy`, `service_role`), in words; filled by refresh, emptied by the plan that repairs it."))
            .block(timeouts_block("10m"))
            .block(auto_remediation_block("Expel's auto remediations for this account. Switching one on adds its permissions to the policy as a statement of ours (Workbench acts in the account where an access key lives); refresh reports the statement removed as drift and apply restores it. Switching it off (or removing the block after it was on) removes our statement only. A member account has no security device: the remediation is opted in through Workbench by the `expel_cloudtrail_integration` of the management account, with the same block.")),
    )
    // Version 0 had no `owner`: the next plan records it and the apply re-marks the objects.
    .readable_from(0)
}

fn settings(v: &Value) -> Settings {
    Settings {
        role_name: str_of(v, "role_name"),
        policy_name: str_of(v, "policy_name"),
        principals: v
            .get("expel_principals")
            .and_then(Value::as_list)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        external_id: str_of(v, "external_id"),
        tags: v
            .get("tags")
            .and_then(Value::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        remediations: remediations_of(v),
    }
}

/// An external id left to its default is the Workbench organization id: when the provider's
/// organization changes, the trust policy follows it (an update in place, said in a warning),
/// so the member accounts trust the organization the CloudTrail device now lives in instead of
/// silently keeping the old one.
fn follow_organization(
    ctx: &Ctx<ExpelData>,
    input: &PlanInput<'_>,
    planned: &mut Value,
    diags: &mut Diagnostics,
) {
    let (Some(org), false) = (&ctx.data.organization_id, input.prior.is_null()) else {
        return;
    };
    let configured = input
        .config
        .get("external_id")
        .is_some_and(|v| !v.is_null());
    let before = str_of(input.prior, "external_id");
    if configured || before == *org {
        return;
    }
    set(planned, "external_id", Value::string(org.clone()));
    diags.attr_warning(
        AttrPath::root("external_id"),
        "The role's external id follows the Workbench organization",
        format!("The provider's organization_id is now {org}; the role trusted external id {before}. This apply updates the trust policy in place to {org}. Set `external_id` to keep a fixed value."),
    );
}

/// The instance's owner: one member role per account, named by its role.
fn owner(loc: &Location, role_name: &str) -> Owner {
    Owner::derive("expel_aws_member_role", &[&loc.account_id, role_name])
}

fn with_drift(base: &Value, drift: BTreeMap<String, String>) -> Value {
    let mut v = base.clone();
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

impl AwsMemberRole {
    async fn cx(&self, ctx: &Ctx<ExpelData>, loc: Location, v: &Value, deadline: Deadline) -> Cx {
        let mut s = settings(v);
        s.tags = tags::wanted(v, &ctx.data.aws.default_tags);
        Cx {
            aws: ctx.data.aws_clients().await.clone(),
            owner: Owner::recorded(v).unwrap_or_else(|| owner(&loc, &s.role_name)),
            loc,
            s,
            deadline: deadline
                .with_propagation(ctx.data.aws.propagation_timeout)
                .with_max_retries(ctx.data.aws.max_retries),
            warnings: Default::default(),
            roles_kept: Default::default(),
        }
    }
}

/// A rename: the role or the policy under a new name is a new object.
fn renamed(prior: &Value, planned: &Value) -> bool {
    ["role_name", "policy_name"]
        .into_iter()
        .any(|k| str_of(prior, k) != str_of(planned, k))
}

fn warnings_of(cx: &Cx) -> Vec<(String, String)> {
    let found = cx.warnings.lock().map(|g| g.clone()).unwrap_or_default();
    found.into_iter().map(|(s, d)| (s.to_string(), d)).collect()
}

#[async_trait]
impl Guided for AwsMemberRole {
    type Cx = Cx;
    const TYPE_NAME: &'static str = "expel_aws_member_role";
    const WHAT: &'static str = "the member role";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    // Its ids follow from names and location: none to carry over.
    const STATE_IDS: &'static [&'static str] = &[];

    fn schema() -> Schema {
        schema()
    }

    fn validate(config: &Value, diags: &mut Diagnostics) {
        check_expel_principals(config, diags);
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
        if op != Op::Create && !member_account::check_pinned(prior, &loc, "This role", "", diags) {
            return Err(Closed::Failed);
        }
        Ok(self.cx(ctx, loc, values, deadline).await)
    }

    fn state_from(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
        let mut v = with_drift(base, drift);
        tags::record(&mut v, &cx.s.tags);
        v
    }

    fn warnings(cx: &Cx) -> Vec<(String, String)> {
        warnings_of(cx)
    }

    async fn claim(cx: &Cx) -> Result<(), StepError> {
        steps::claim(cx).await
    }

    fn drift_place(cx: &Cx) -> String {
        format!(" (account {})", cx.loc.account_id)
    }

    async fn after_converge(
        &self,
        cx: &Cx,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Result<(), StepError> {
        if renamed(prior, planned) {
            let old = Cx {
                aws: cx.aws.clone(),
                loc: cx.loc.clone(),
                s: Settings {
                    role_name: str_of(prior, "role_name"),
                    policy_name: str_of(prior, "policy_name"),
                    ..cx.s.clone()
                },
                owner: cx.owner.clone(),
                deadline: cx.deadline.clone(),
                warnings: Default::default(),
                roles_kept: Default::default(),
            };
            let retired = steps::retire(cx, &old).await;
            for (summary, detail) in warnings_of(&old) {
                diags.warning(summary, detail);
            }
            for kept in old.roles_kept.lock().map(|g| g.clone()).unwrap_or_default() {
                diags.warning(OLD_ROLE_KEPT, kept.role_on_rename());
            }
            retired?;
        }
        // `tags_all` before and now: a change of `tags` or of the provider's `default_tags`.
        let before = tags::recorded(prior);
        if before != cx.s.tags {
            let removed = tags::removed(&before, &cx.s.tags);
            // Both are retagged even when one fails; the first failure is reported.
            let policy = MemberPolicy.retag(cx, &removed).await;
            let role = MemberRole.retag(cx, &removed).await;
            policy.and(role)?;
        }
        Ok(())
    }

    /// The old role or policy may still exist: keep its name so the next apply retires it.
    fn after_failed_update(state: &mut Value, prior: &Value, planned: &Value) {
        if renamed(prior, planned) {
            for k in ["role_name", "policy_name", "id", "role_arn", "policy_arn"] {
                set(state, k, prior.get(k).cloned().unwrap_or(Value::Null));
            }
        }
    }

    /// An error keeps the resource in the state: the kept role still trusts Expel.
    fn after_delete(cx: &Cx, diags: &mut Diagnostics) {
        for kept in cx.roles_kept.lock().map(|g| g.clone()).unwrap_or_default() {
            diags.error(ROLE_KEPT, kept.role_on_destroy());
        }
    }

    fn plan(&self) -> Option<&dyn Plan> {
        Some(self)
    }

    fn import(&self) -> Option<&dyn Import> {
        Some(self)
    }
}

#[async_trait]
impl Plan for AwsMemberRole {
    async fn modify_plan(
        &self,
        ctx: &Ctx<ExpelData>,
        input: &PlanInput<'_>,
        fixes: &Fixes,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        tags::plan(planned, &ctx.data.aws.default_tags);
        let Some(loc) = member_account::location(ctx, diags).await else {
            return;
        };
        if !input.prior.is_null()
            && !member_account::check_pinned(input.prior, &loc, "This role", "", diags)
        {
            return;
        }
        if !member_account::plan_trust_defaults(ctx, input, &loc, planned, diags) {
            return;
        }
        follow_organization(ctx, input, planned, diags);
        set(planned, "account_id", Value::string(loc.account_id.clone()));
        set(planned, "partition", Value::string(loc.partition.clone()));
        let name = |k: &str| planned.get(k).and_then(Value::as_str).map(str::to_string);
        let o = name("role_name").map(|r| owner(&loc, &r).as_str().to_string());
        let role = name("role_name").map(|r| policy::role_arn(&loc, &r));
        let pol = name("policy_name").map(|p| policy::policy_arn(&loc, &p));
        let or_unknown = |v: Option<String>| v.map(Value::string).unwrap_or(Value::unknown());
        set(planned, "id", or_unknown(role.clone()));
        set(planned, "role_arn", or_unknown(role));
        set(planned, "policy_arn", or_unknown(pol));
        if Owner::recorded(input.prior).is_none() {
            set(planned, OWNER_ATTR, or_unknown(o));
        }
        plan_repairs::<Piece>(planned, &[], fixes);
    }
}

#[async_trait]
impl Import for AwsMemberRole {
    async fn import(
        &self,
        ctx: &Ctx<ExpelData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let loc = member_account::location(ctx, diags).await?;
        let role_name = match policy::parse_arn(id) {
            None if !id.starts_with("arn:") && !id.is_empty() => id.to_string(),
            Some(a) if a.service == "iam" && a.resource.starts_with("role/") => {
                if a.account != loc.account_id {
                    diags.error("The role is in another AWS account", format!("{id} is in account {}, but the provider points at account {}. Import it into a resource whose `provider` is the alias for account {}.", a.account, loc.account_id, a.account));
                    return None;
                }
                a.resource
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            }
            _ => {
                diags.error("Malformed import id", format!("{id:?} is neither a role name (e.g. ExpelServiceRole) nor a role ARN (arn:aws:iam::<account>:role/ExpelServiceRole)."));
                return None;
            }
        };
        let aws = ctx.data.aws_clients().await;
        match crate::resources::cloudtrail::import::role_parts(aws, &role_name).await {
            Ok(p) => {
                let role_arn = policy::role_arn(&loc, &role_name);
                let tags = if p.tags.is_empty() {
                    Value::Null
                } else {
                    Value::Map(
                        p.tags
                            .into_iter()
                            .map(|(k, v)| (k, Value::string(v)))
                            .collect(),
                    )
                };
                let mut v = Value::object([
                    ("id", Value::string(role_arn.clone())),
                    ("role_arn", Value::string(role_arn)),
                    ("role_name", Value::string(role_name)),
                    ("policy_name", Value::string(p.policy_name)),
                    ("policy_arn", Value::string(p.policy_arn)),
                    (
                        "expel_principals",
                        Value::List(p.principals.into_iter().map(Value::string).collect()),
                    ),
                    ("external_id", Value::string(p.external_id)),
                    ("tags", tags),
                    (
                        OWNER_ATTR,
                        p.owner.map(Value::string).unwrap_or(Value::Null),
                    ),
                    ("account_id", Value::string(loc.account_id)),
                    ("partition", Value::string(loc.partition)),
                    ("drift", Value::Map(BTreeMap::new())),
                ]);
                tags::imported(&mut v, &ctx.data.aws.default_tags);
                Some(v)
            }
            Err(e) => {
                diags.error(
                    "Cannot import the member role",
                    format!("{e}. Import by the role's name (e.g. ExpelServiceRole) or ARN, in the account the provider points at."),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::support::common::validate_config;
    use crate::resources::support::guided::{needs, Guide};
    use serde_json::json;

    #[test]
    fn the_role_comes_after_its_policy() {
        assert_eq!(
            needs::<AwsMemberRole>(Piece::ServiceRole),
            [Piece::ApiPolicy]
        );
    }

    #[test]
    fn version_0_state_decodes_with_no_owner_and_only_version_0_and_1_do() {
        let v0 = json!({
            "role_name": "ExpelServiceRole", "policy_name": "ExpelAPIPolicy",
            "expel_principals": ["arn:aws:iam::012205512454:root"], "external_id": "org",
            "tags": {"team": "platform"}, "id": "arn:aws:iam::123456789012:role/ExpelServiceRole",
            "account_id": "123456789012", "partition": "aws",
            "role_arn": "arn:aws:iam::123456789012:role/ExpelServiceRole",
            "policy_arn": "arn:aws:iam::123456789012:policy/ExpelAPIPolicy", "drift": {},
            "timeouts": null
        });
        // What UpgradeResourceState does with a version it can read as it is.
        let schema = schema();
        assert_eq!((schema.readable_from, schema.version), (0, 1));
        let v = tfplugin::value::from_json_value(v0, &schema.ty()).expect("decodes");
        assert_eq!(v.get(OWNER_ATTR), Some(&Value::Null));
        assert_eq!(str_of(&v, "account_id"), "123456789012");
        assert_eq!(
            v.get("tags").and_then(Value::as_map).map(|m| m.len()),
            Some(1)
        );
    }

    #[test]
    fn role_and_policy_names_aws_would_refuse_fail_validation() {
        let config = Value::object([
            ("role_name", Value::string("Expel Service Role")),
            ("policy_name", Value::string("P".repeat(129))),
        ]);
        let d = validate_config(&Guide::new(AwsMemberRole), &config);
        let found: Vec<(String, &str)> = d
            .iter()
            .map(|x| {
                let path = x.path.as_ref().map(|p| p.to_string()).unwrap_or_default();
                (path, x.summary.as_str())
            })
            .collect();
        assert_eq!(
            found,
            [
                ("role_name".to_string(), "Malformed IAM role name"),
                ("policy_name".to_string(), "Malformed IAM policy name")
            ]
        );
        assert!(d.0[0]
            .detail
            .contains("`role_name` = \"Expel Service Role\""));
        assert!(d.0[1].detail.contains("AWS allows 1 to 128"));
        let guide = Value::object([
            ("role_name", Value::string("ExpelServiceRole")),
            ("policy_name", Value::unknown()),
        ]);
        assert_eq!(
            validate_config(&Guide::new(AwsMemberRole), &guide).0,
            vec![]
        );
    }

    #[test]
    fn policy_is_then_role() {
        let s = steps();
        assert_eq!(
            s.iter().map(|s| s.id()).collect::<Vec<_>>(),
            [Piece::ApiPolicy, Piece::ServiceRole]
        );
        assert!(s[1].needs().contains(&Piece::ApiPolicy));
        assert!(s[0].needs().is_empty());
    }

    #[test]
    fn member_policy_holds_only_the_read_only_statement() {
        let doc = crate::policy::member_api_policy(crate::policy::Remediations::default());
        let st = doc["Statement"].as_array().expect("statements");
        assert_eq!(st.len(), 1, "{doc}");
        let text = doc.to_string();
        for absent in [
            "sqs:",
            "s3:GetObject",
            "kms:Decrypt",
            "arn:aws:sqs",
            "arn:aws:s3",
        ] {
            assert!(!text.contains(absent), "{absent} in {doc}");
        }
        assert!(policy::lint(&doc).is_empty(), "{:?}", policy::lint(&doc));
    }

    #[test]
    fn settings_and_trust_follow_the_plan() {
        let m = |pairs: Vec<(&str, Value)>| {
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>()
        };
        let v = Value::Object(m(vec![
            ("role_name", Value::string("ExpelServiceRole")),
            ("policy_name", Value::string("ExpelAPIPolicy")),
            (
                "expel_principals",
                Value::List(vec![Value::string("arn:aws:iam::012205512454:root")]),
            ),
            (
                "external_id",
                Value::string("2a0a5e3c-6a4e-4b59-9d0c-2a8c8c8f2e10"),
            ),
            ("tags", Value::Map(m(vec![("team", Value::string("sec"))]))),
        ]));
        let s = settings(&v);
        assert_eq!(s.role_name, "ExpelServiceRole");
        assert_eq!(s.tags.get("team").map(String::as_str), Some("sec"));
        let trust = MemberRole::trust(&s);
        let t = trust.to_string();
        assert!(t.contains("arn:aws:iam::012205512454:root"), "{t}");
        assert!(t.contains("2a0a5e3c-6a4e-4b59-9d0c-2a8c8c8f2e10"), "{t}");
        assert!(t.contains("sts:AssumeRole"), "{t}");
    }

    #[test]
    fn trust_drift_is_named_and_equal_documents_are_not() {
        let s = Settings {
            principals: vec!["arn:aws:iam::012205512454:root".into()],
            external_id: "x".into(),
            ..Default::default()
        };
        let ours = MemberRole::trust(&s);
        assert!(policy::drift("trust policy", &ours, &ours.to_string()).is_empty());
        let other = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}]});
        let d = policy::drift("trust policy", &ours, &other.to_string());
        assert!(!d.is_empty() && d[0].starts_with("trust policy"), "{d:?}");
        // IAM returns documents percent-encoded.
        let encoded: String = percent_encoding::utf8_percent_encode(
            &ours.to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        assert!(policy::drift("trust policy", &ours, &encoded).is_empty());
    }
}
