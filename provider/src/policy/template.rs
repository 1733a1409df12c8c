//! The CloudFormation template a service-managed stack set deploys to every member account
//! of an organization (`expel_aws_organization_member_roles`): ExpelServiceRole with
//! ExpelAPIPolicy, built from the very documents `expel_aws_member_role` writes through IAM
//! ([`member_api_policy`], [`trust_policy`]), so the ways of making the role cannot disagree.
//!
//! Shape: one `AWS::IAM::Role` carrying the policy inline (`Policies`). A separate
//! `AWS::IAM::ManagedPolicy` would be named per account and needs no other resource, but
//! CloudFormation (and moto) then has to order its attachment and detachment around the role;
//! the inline policy is created and deleted with the role in one resource. The values
//! (principals, external id, tags) are written into the template, not passed as parameters:
//! the template alone says what every account gets, and a change of any of them is a
//! template change, which `UpdateStackSet` rolls out.
use serde_json::{json, Value};

use super::documents::{member_api_policy, trust_policy, Remediations};

/// What the template is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberRolesTemplate<'a> {
    pub role_name: &'a str,
    pub policy_name: &'a str,
    pub principals: &'a [String],
    pub external_id: &'a str,
    /// Tags on the role in every account (ownership marker and owner first, then the user's).
    pub tags: &'a [(String, String)],
    pub remediations: Remediations,
}

/// The logical id of the role in the template.
pub const ROLE_LOGICAL_ID: &str = "ExpelServiceRole";

/// The template body, as a JSON document (CloudFormation accepts JSON templates).
pub fn member_roles_template(t: &MemberRolesTemplate<'_>) -> Value {
    let tags: Vec<Value> = t
        .tags
        .iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect();
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Expel Workbench: ExpelServiceRole with the read-only ExpelAPIPolicy in this member account (managed by terraform-provider-expel, expel_aws_organization_member_roles)",
        "Resources": {
            ROLE_LOGICAL_ID: {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": t.role_name,
                    "Description": "Expel Workbench assumes this role to investigate in this account",
                    "AssumeRolePolicyDocument": trust_policy(t.principals, t.external_id),
                    "Policies": [
                        {
                            "PolicyName": t.policy_name,
                            "PolicyDocument": member_api_policy(t.remediations),
                        }
                    ],
                    "Tags": tags,
                }
            }
        },
        "Outputs": {
            "RoleArn": {
                "Description": "ARN of the role Expel Workbench assumes",
                "Value": { "Fn::GetAtt": [ROLE_LOGICAL_ID, "Arn"] }
            }
        }
    })
}

/// The role's trust policy and inline policy in a template, as the template carries them.
pub fn template_documents(template: &Value) -> Option<(&Value, &Value)> {
    let props = template
        .get("Resources")?
        .get(ROLE_LOGICAL_ID)?
        .get("Properties")?;
    let trust = props.get("AssumeRolePolicyDocument")?;
    let policy = props.get("Policies")?.get(0)?.get("PolicyDocument")?;
    Some((trust, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{lint_as, PolicyKind};

    #[test]
    fn the_template_carries_the_same_documents_as_the_member_role() {
        let principals = vec!["arn:aws:iam::012205512454:root".to_string()];
        let tags = vec![("expel:managed-by".to_string(), "x".to_string())];
        for remediations in [
            Remediations::default(),
            Remediations {
                deactivate_access_keys: true,
            },
        ] {
            let t = MemberRolesTemplate {
                role_name: "ExpelServiceRole",
                policy_name: "ExpelAPIPolicy",
                principals: &principals,
                external_id: "org-guid",
                tags: &tags,
                remediations,
            };
            let doc = member_roles_template(&t);
            let (trust, policy) = template_documents(&doc).expect("role documents");
            // The same functions expel_aws_member_role sends to IAM: equal, not similar.
            assert_eq!(trust, &trust_policy(&principals, "org-guid"));
            assert_eq!(policy, &member_api_policy(remediations));
            assert!(lint_as(trust, PolicyKind::Trust).is_empty());
            assert!(lint_as(policy, PolicyKind::Identity).is_empty());
            let role = &doc["Resources"][ROLE_LOGICAL_ID]["Properties"];
            assert_eq!(role["RoleName"], "ExpelServiceRole");
            assert_eq!(role["Policies"][0]["PolicyName"], "ExpelAPIPolicy");
            assert_eq!(role["Tags"][0]["Key"], "expel:managed-by");
        }
    }
}
