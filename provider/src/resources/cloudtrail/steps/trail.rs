//! The trail (guide step 1).
use async_trait::async_trait;

use super::{Cause, Cx, Piece};
use crate::clients::aws::err;
use crate::engine::{Observed, Problem, Step, StepError};
use crate::resources::support::ownership::Claim;
use crate::resources::support::tags::Tags;

pub struct Trail;
pub(super) const TRAIL: &str = "Step 1: multi-region trail with log file validation, SSE-KMS and management events; logging on";

impl Trail {
    pub(super) async fn get(
        &self,
        cx: &Cx,
    ) -> Result<Option<aws_sdk_cloudtrail::types::Trail>, StepError> {
        let r = cx
            .aws_opt(TRAIL, || async {
                cx.aws
                    .cloudtrail
                    .get_trail()
                    .name(&cx.s.trail_name)
                    .send()
                    .await
                    .map_err(err("cloudtrail", "GetTrail"))
            })
            .await?;
        Ok(r.and_then(|r| r.trail))
    }
    pub(super) async fn tags_of(&self, cx: &Cx, arn: &str) -> Result<Tags, StepError> {
        let r = cx
            .aws(TRAIL, || async {
                cx.aws
                    .cloudtrail
                    .list_tags()
                    .resource_id_list(arn)
                    .send()
                    .await
                    .map_err(err("cloudtrail", "ListTags"))
            })
            .await?;
        Ok(r.resource_tag_list()
            .iter()
            .flat_map(|t| t.tags_list())
            .map(|t| {
                (
                    t.key().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
    pub(super) async fn owned(&self, cx: &Cx, arn: &str) -> Result<Claim, StepError> {
        let tags = self.tags_of(cx, arn).await?;
        Ok(cx.claim(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }
    async fn settle(&self, cx: &Cx) -> Result<(), StepError> {
        use aws_sdk_cloudtrail::types::*;
        let sel = EventSelector::builder()
            .read_write_type(ReadWriteType::All)
            .include_management_events(true)
            .build();
        cx.aws(TRAIL, || async {
            cx.aws
                .cloudtrail
                .put_event_selectors()
                .trail_name(&cx.s.trail_name)
                .event_selectors(sel.clone())
                .send()
                .await
                .map_err(err("cloudtrail", "PutEventSelectors"))
        })
        .await?;
        cx.aws(TRAIL, || async {
            cx.aws
                .cloudtrail
                .start_logging()
                .name(&cx.s.trail_name)
                .send()
                .await
                .map_err(err("cloudtrail", "StartLogging"))
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for Trail {
    fn id(&self) -> Piece {
        Piece::Trail
    }
    fn title(&self) -> &'static str {
        TRAIL
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::KmsKey, Piece::Bucket, Piece::BucketNotification]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        // An existing trail is never made, changed or deleted here.
        if cx.s.existing.is_some() {
            return Ok(());
        }
        if let Some(t) = self.get(cx).await? {
            let claim = self.owned(cx, t.trail_arn().unwrap_or_default()).await?;
            cx.adopt(TRAIL, &format!("trail {}", cx.s.trail_name), claim)?;
            return self.repair(cx, &[]).await;
        }
        let key = cx
            .j()
            .key_arn
            .clone()
            .ok_or_else(|| StepError::new(TRAIL, "the KMS key does not exist"))?;
        let tags = super::tagging::trail_tags(cx);
        cx.aws(TRAIL, || async {
            cx.aws
                .cloudtrail
                .create_trail()
                .name(&cx.s.trail_name)
                .s3_bucket_name(&cx.s.bucket_name)
                .is_multi_region_trail(true)
                .include_global_service_events(true)
                .enable_log_file_validation(true)
                .kms_key_id(&key)
                .is_organization_trail(cx.s.organization_trail)
                .set_tags_list(Some(tags.clone()))
                .send()
                .await
                .map_err(err("cloudtrail", "CreateTrail"))
        })
        .await?;
        self.settle(cx).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        if cx.s.existing.is_some() {
            return Ok(Observed::Present(Vec::new()));
        }
        let Some(t) = self.get(cx).await? else {
            return Ok(Observed::Gone);
        };
        let mut p = Vec::new();
        if t.is_multi_region_trail() != Some(true) {
            p.push("trail is no longer multi-region".to_string());
        }
        if t.log_file_validation_enabled() != Some(true) {
            p.push("trail log file validation is off".to_string());
        }
        let key = cx.j().key_arn.clone().unwrap_or_default();
        if t.kms_key_id().unwrap_or_default() != key {
            p.push("trail logs are no longer encrypted with the integration's KMS key".to_string());
        }
        if t.s3_bucket_name().unwrap_or_default() != cx.s.bucket_name {
            p.push(format!(
                "trail writes to {} instead of {}",
                t.s3_bucket_name().unwrap_or_default(),
                cx.s.bucket_name
            ));
        }
        if t.is_organization_trail().unwrap_or(false) != cx.s.organization_trail {
            p.push("trail's organization setting differs".to_string());
        }
        let status = cx
            .aws(TRAIL, || async {
                cx.aws
                    .cloudtrail
                    .get_trail_status()
                    .name(&cx.s.trail_name)
                    .send()
                    .await
                    .map_err(err("cloudtrail", "GetTrailStatus"))
            })
            .await?;
        if status.is_logging() != Some(true) {
            p.push("trail logging is stopped".to_string());
        }
        let sel = cx
            .aws(TRAIL, || async {
                cx.aws
                    .cloudtrail
                    .get_event_selectors()
                    .trail_name(&cx.s.trail_name)
                    .send()
                    .await
                    .map_err(err("cloudtrail", "GetEventSelectors"))
            })
            .await?;
        let mgmt_rw = sel.event_selectors().iter().any(|s| {
            s.include_management_events() == Some(true)
                && s.read_write_type().map(|r| r.as_str()) == Some("All")
                && s.exclude_management_event_sources().is_empty()
        });
        if !mgmt_rw {
            p.push("trail no longer records all read and write management events".to_string());
        }
        Ok(Observed::differs(p))
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        if cx.s.existing.is_some() {
            return Ok(());
        }
        let key = cx
            .j()
            .key_arn
            .clone()
            .ok_or_else(|| StepError::new(TRAIL, "the KMS key does not exist"))?;
        cx.aws(TRAIL, || async {
            cx.aws
                .cloudtrail
                .update_trail()
                .name(&cx.s.trail_name)
                .s3_bucket_name(&cx.s.bucket_name)
                .is_multi_region_trail(true)
                .include_global_service_events(true)
                .enable_log_file_validation(true)
                .kms_key_id(&key)
                .is_organization_trail(cx.s.organization_trail)
                .send()
                .await
                .map_err(err("cloudtrail", "UpdateTrail"))
        })
        .await?;
        self.settle(cx).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        if cx.s.existing.is_some() {
            return Ok(());
        }
        let Some(t) = self.get(cx).await? else {
            return Ok(());
        };
        let claim = self.owned(cx, t.trail_arn().unwrap_or_default()).await?;
        if !cx.deletable(&format!("trail {}", cx.s.trail_name), claim) {
            return Ok(());
        }
        cx.aws_opt(TRAIL, || async {
            cx.aws
                .cloudtrail
                .delete_trail()
                .name(&cx.s.trail_name)
                .send()
                .await
                .map_err(err("cloudtrail", "DeleteTrail"))
        })
        .await?;
        Ok(())
    }
}
