//! ExpelServiceRole (guide step 7).
use async_trait::async_trait;

use super::{Cause, Cx, Piece};
use crate::engine::{Observed, Problem, Step, StepError};
use crate::policy;
use crate::resources::support::iam::ServiceRoleSpec;

pub struct ServiceRole;
pub(super) const ROLE: &str =
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
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
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
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
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
