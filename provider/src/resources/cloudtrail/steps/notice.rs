//! The bucket's event notification to the queue (guide step 5).
use async_trait::async_trait;

use super::existing::{self, OBJECT_CREATED};
use super::{Cause, Cx, Piece};
use crate::clients::aws::err;
use crate::engine::{Observed, Problem, Step, StepError};

pub(super) const NOTIFICATION_ID: &str = "ExpelNotifyQueue";

pub struct BucketNotice;
const NOTICE: &str =
    "Step 5: S3 event notification ExpelNotifyQueue (all object-create events to the queue)";
const NOTICE_TOPIC: &str =
    "Step 5 (existing trail): the queue subscribed to the topic the log bucket publishes to";

impl BucketNotice {
    async fn current(&self, cx: &Cx) -> Result<Option<aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput>, StepError>{
        cx.aws_opt(NOTICE, || async {
            cx.aws
                .s3
                .get_bucket_notification_configuration()
                .bucket(&cx.s.bucket_name)
                .send()
                .await
                .map_err(err("s3", "GetBucketNotificationConfiguration"))
        })
        .await
    }
    /// Writes the bucket's notification configuration with ours replaced (`keep_ours`) or
    /// removed, leaving everyone else's configurations alone.
    async fn put(&self, cx: &Cx, keep_ours: bool) -> Result<(), StepError> {
        use aws_sdk_s3::types::*;
        let cur = self.current(cx).await?;
        if let (true, Some(c), Some(_)) = (keep_ours, &cur, &cx.s.existing) {
            let others = existing::overlapping(c, NOTIFICATION_ID);
            if !others.is_empty() {
                return Err(StepError::new(NOTICE, format!(
                    "bucket {} already has {}: S3 allows one configuration per event type, and the other consumer's is left alone. Set `existing_trail.sns_topic_arn` to the topic the bucket publishes to",
                    cx.s.bucket_name,
                    others.join("; ")
                )));
            }
        }
        let mut queues: Vec<QueueConfiguration> = cur
            .as_ref()
            .map(|c| {
                c.queue_configurations()
                    .iter()
                    .filter(|q| q.id() != Some(NOTIFICATION_ID))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if keep_ours {
            queues.push(
                QueueConfiguration::builder()
                    .id(NOTIFICATION_ID)
                    .queue_arn(cx.queue_arn())
                    .events(Event::from(OBJECT_CREATED))
                    .build()
                    .map_err(|e| StepError::caused_by(NOTICE, e))?,
            );
        }
        let conf = NotificationConfiguration::builder()
            .set_queue_configurations(Some(queues))
            .set_topic_configurations(cur.as_ref().map(|c| c.topic_configurations().to_vec()))
            .set_lambda_function_configurations(
                cur.as_ref()
                    .map(|c| c.lambda_function_configurations().to_vec()),
            )
            .set_event_bridge_configuration(
                cur.as_ref()
                    .and_then(|c| c.event_bridge_configuration().cloned()),
            )
            .build();
        cx.aws(NOTICE, || async {
            cx.aws
                .s3
                .put_bucket_notification_configuration()
                .bucket(&cx.s.bucket_name)
                .notification_configuration(conf.clone())
                .send()
                .await
                .map_err(err("s3", "PutBucketNotificationConfiguration"))
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for BucketNotice {
    fn id(&self) -> Piece {
        Piece::BucketNotification
    }
    fn title(&self) -> &'static str {
        NOTICE
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::Bucket, Piece::Queue]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if let Some(topic) = cx.topic() {
            return existing::subscribe(cx, NOTICE_TOPIC, topic).await;
        }
        self.put(cx, true).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        if let Some(topic) = cx.topic() {
            return Ok(
                match existing::subscription(cx, NOTICE_TOPIC, topic).await? {
                    Some(_) => Observed::Present(Vec::new()),
                    None => Observed::Gone,
                },
            );
        }
        let Some(cur) = self.current(cx).await? else {
            return Ok(Observed::Gone);
        };
        let ours = cur
            .queue_configurations()
            .iter()
            .find(|q| q.id() == Some(NOTIFICATION_ID));
        Ok(match ours {
            None => Observed::Gone,
            Some(q) => {
                let mut p = Vec::new();
                if q.queue_arn() != cx.queue_arn() {
                    p.push(format!(
                        "notification targets {} instead of {}",
                        q.queue_arn(),
                        cx.queue_arn()
                    ));
                }
                if !q.events().iter().any(|e| e.as_str() == OBJECT_CREATED) {
                    p.push("notification no longer covers all object-create events".to_string());
                }
                Observed::differs(p)
            }
        })
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        self.create(cx).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        if let Some(topic) = cx.topic() {
            return existing::unsubscribe(cx, NOTICE_TOPIC, topic).await;
        }
        if self.current(cx).await?.is_none() {
            return Ok(());
        }
        self.put(cx, false).await
    }
}
