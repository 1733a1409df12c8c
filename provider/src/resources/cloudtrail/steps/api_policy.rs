//! ExpelAPIPolicy (guide step 6).
use async_trait::async_trait;
use serde_json::Value as Json;

use super::{Cause, Cx, Piece};
use crate::engine::{Observed, Problem, Step, StepError};
use crate::policy;
use crate::resources::support::iam::POLICY_KEPT;

pub struct ApiPolicy;
pub(super) const POLICY: &str = "Step 6: IAM policy ExpelAPIPolicy";

impl ApiPolicy {
    fn document(&self, cx: &Cx) -> Json {
        policy::api_policy(
            &cx.queue_arn(),
            &cx.bucket_arn(),
            cx.j().key_arn.as_deref(),
            cx.s.remediations,
        )
    }
}

#[async_trait]
impl Step<Cx> for ApiPolicy {
    fn id(&self) -> Piece {
        Piece::ApiPolicy
    }
    fn title(&self) -> &'static str {
        POLICY
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::KmsKey, Piece::Bucket, Piece::Queue]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let iam = cx.iam(POLICY);
        if iam.policy(&cx.policy_arn()).await?.is_some() {
            let claim = iam.policy_claim(&cx.policy_arn(), &cx.s.owner).await?;
            cx.adopt(POLICY, &format!("IAM policy {}", cx.s.policy_name), claim)?;
            return match self.observe(cx).await? {
                Observed::Present(p) if !p.is_empty() => self.repair(cx, &p).await,
                _ => Ok(()),
            };
        }
        iam.create_policy(
            &cx.s.policy_name,
            "Expel Workbench: read-only investigation access plus the CloudTrail queue, logs and key",
            &self.document(cx),
            &cx.iam_tags(),
        )
        .await?;
        cx.credentials_changed();
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        cx.iam(POLICY)
            .observe_policy(&cx.policy_arn(), "ExpelAPIPolicy", &self.document(cx))
            .await
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        cx.iam(POLICY)
            .put_policy_document(&cx.policy_arn(), &self.document(cx))
            .await?;
        cx.credentials_changed();
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let iam = cx.iam(POLICY);
        let arn = cx.policy_arn();
        if iam.policy(&arn).await?.is_none() {
            return Ok(());
        }
        let claim = iam.policy_claim(&arn, &cx.s.owner).await?;
        if !cx.deletable(&format!("IAM policy {}", cx.s.policy_name), claim) {
            return Ok(());
        }
        if let Some(kept) = iam.delete_policy(&arn, &cx.s.role_name).await? {
            cx.warn(POLICY_KEPT, kept.policy());
        }
        Ok(())
    }
}
