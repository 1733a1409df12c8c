//! The SQS queue and its access policy (guide step 3).
use async_trait::async_trait;
use serde_json::Value as Json;

use super::{Cause, Cx, Piece};
use crate::clients::aws::err;
use crate::engine::{Observed, Problem, Step, StepError};
use crate::policy::{self, PolicyKind};
use crate::resources::support::ownership::Claim;
use crate::resources::support::tags::Tags;

pub struct NotifyQueue;
pub(super) const QUEUE: &str =
    "Step 3: SQS queue ExpelMasterCloudTrailNotify with SSE-KMS and access policy";

impl NotifyQueue {
    fn attributes(&self, cx: &Cx) -> Vec<(aws_sdk_sqs::types::QueueAttributeName, String)> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        vec![
            (A::VisibilityTimeout, "30".into()),
            (
                A::MessageRetentionPeriod,
                cx.s.retention_seconds.to_string(),
            ),
            (A::DelaySeconds, "0".into()),
            (A::MaximumMessageSize, "262144".into()),
            (A::ReceiveMessageWaitTimeSeconds, "0".into()),
            // The key this resource makes encrypts the queue too (guide Step 3). Beside an
            // existing trail there is no key of ours: SQS-managed encryption (SSE-SQS), which
            // S3 and SNS deliver to without any key policy.
            match cx.s.existing {
                None => (
                    A::KmsMasterKeyId,
                    cx.j().key_arn.clone().unwrap_or_default(),
                ),
                Some(_) => (A::SqsManagedSseEnabled, "true".into()),
            },
            (A::Policy, policy::render(&self.access(cx))),
        ]
    }
    /// Who may send: the log bucket (guide Step 3), or the topic it publishes to.
    fn access(&self, cx: &Cx) -> serde_json::Value {
        match cx.topic() {
            Some(topic) => policy::queue_policy_from_topic(&cx.queue_arn(), topic),
            None => policy::queue_policy(&cx.queue_arn(), &cx.bucket_arn()),
        }
    }
    /// What CreateQueue and SetQueueAttributes send: `attributes`, once the access policy in
    /// them passes the linter.
    /// With `live`, the queue's current access policy: ours is merged into it, so others'
    /// statements stay.
    fn to_send(
        &self,
        cx: &Cx,
        live: Option<&str>,
    ) -> Result<Vec<(aws_sdk_sqs::types::QueueAttributeName, String)>, StepError> {
        let access = self.access(cx);
        let checked = policy::merged_for_write(&access, live, PolicyKind::Queue)
            .map_err(|e| StepError::caused_by(QUEUE, e))?;
        let mut attrs = self.attributes(cx);
        for (name, value) in &mut attrs {
            if *name == aws_sdk_sqs::types::QueueAttributeName::Policy {
                *value = checked.clone();
            }
        }
        Ok(attrs)
    }
    pub(super) async fn url(&self, cx: &Cx) -> Result<Option<String>, StepError> {
        let r = cx
            .aws_opt(QUEUE, || async {
                cx.aws
                    .sqs
                    .get_queue_url()
                    .queue_name(&cx.s.queue_name)
                    .send()
                    .await
                    .map_err(err("sqs", "GetQueueUrl"))
            })
            .await?;
        Ok(r.and_then(|r| r.queue_url))
    }
    pub(super) async fn tags_of(&self, cx: &Cx, url: &str) -> Result<Tags, StepError> {
        let t = cx
            .aws(QUEUE, || async {
                cx.aws
                    .sqs
                    .list_queue_tags()
                    .queue_url(url)
                    .send()
                    .await
                    .map_err(err("sqs", "ListQueueTags"))
            })
            .await?;
        Ok(t.tags()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    pub(super) async fn owned(&self, cx: &Cx, url: &str) -> Result<Claim, StepError> {
        let tags = self.tags_of(cx, url).await?;
        Ok(cx.claim(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }
}

#[async_trait]
impl Step<Cx> for NotifyQueue {
    fn id(&self) -> Piece {
        Piece::Queue
    }
    fn title(&self) -> &'static str {
        QUEUE
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::KmsKey]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let attrs = self.to_send(cx, None)?;
        if let Some(url) = self.url(cx).await? {
            let claim = self.owned(cx, &url).await?;
            cx.adopt(QUEUE, &format!("SQS queue {}", cx.s.queue_name), claim)?;
            cx.j().queue_url = Some(url);
            return self.repair(cx, &[]).await;
        }
        let tags: std::collections::HashMap<String, String> = cx.tags().into_iter().collect();
        let r = cx
            .aws(QUEUE, || async {
                cx.aws
                    .sqs
                    .create_queue()
                    .queue_name(&cx.s.queue_name)
                    .set_attributes(Some(attrs.iter().cloned().collect()))
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(err("sqs", "CreateQueue"))
            })
            .await?;
        cx.j().queue_url = r.queue_url;
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let Some(url) = self.url(cx).await? else {
            return Ok(Observed::Gone);
        };
        cx.j().queue_url = Some(url.clone());
        let got = cx
            .aws(QUEUE, || async {
                cx.aws
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                    .send()
                    .await
                    .map_err(err("sqs", "GetQueueAttributes"))
            })
            .await?;
        let live = got.attributes().cloned().unwrap_or_default();
        let mut problems = Vec::new();
        for (name, want) in self.attributes(cx) {
            let have = live.get(&name).cloned().unwrap_or_default();
            if name == aws_sdk_sqs::types::QueueAttributeName::Policy {
                if have.is_empty() {
                    problems.push(
                        "queue access policy removed: S3 cannot notify the queue".to_string(),
                    );
                } else if let Ok(expected) = serde_json::from_str::<Json>(&want) {
                    problems.extend(policy::drift("queue access policy", &expected, &have));
                    cx.warn_defeats(
                        "Another party's statement defeats ours in the queue access policy",
                        policy::foreign_defeats(
                            "queue access policy",
                            &expected,
                            &have,
                            PolicyKind::Queue,
                        ),
                    );
                }
            } else if have != want {
                problems.push(format!(
                    "queue {} is {:?} instead of {want:?}",
                    name.as_str(),
                    have
                ));
            }
        }
        Ok(Observed::differs(problems))
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        let url = cx
            .j()
            .queue_url
            .clone()
            .ok_or_else(|| StepError::new(QUEUE, "no queue recorded"))?;
        let live = cx
            .aws(QUEUE, || async {
                cx.aws
                    .sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
                    .send()
                    .await
                    .map_err(err("sqs", "GetQueueAttributes"))
            })
            .await?
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::Policy)
                    .cloned()
            });
        let attrs = self.to_send(cx, live.as_deref())?;
        cx.aws(QUEUE, || async {
            cx.aws
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attrs.iter().cloned().collect()))
                .send()
                .await
                .map_err(err("sqs", "SetQueueAttributes"))
        })
        .await?;
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(url) = self.url(cx).await? else {
            return Ok(());
        };
        let claim = self.owned(cx, &url).await?;
        if !cx.deletable(&format!("SQS queue {}", cx.s.queue_name), claim) {
            return Ok(());
        }
        cx.aws_opt(QUEUE, || async {
            cx.aws
                .sqs
                .delete_queue()
                .queue_url(&url)
                .send()
                .await
                .map_err(err("sqs", "DeleteQueue"))
        })
        .await?;
        Ok(())
    }
}
