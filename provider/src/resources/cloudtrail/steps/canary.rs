//! The pipeline check: a canary object reaches the queue.
use async_trait::async_trait;

use super::{Cx, Piece};
use crate::clients::aws::err;
use crate::engine::{Check, StepError};

pub struct Canary;
const CANARY: &str =
    "Verify: a canary object in the bucket reaches the queue as an ObjectCreated message";

#[async_trait]
impl Check<Cx> for Canary {
    fn id(&self) -> Piece {
        Piece::Pipeline
    }
    fn title(&self) -> &'static str {
        CANARY
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::BucketNotification, Piece::Trail]
    }
    async fn check(&self, cx: &Cx) -> Result<(), StepError> {
        if !cx.s.verify {
            return Ok(());
        }
        let url = cx
            .j()
            .queue_url
            .clone()
            .ok_or_else(|| StepError::new(CANARY, "no queue recorded"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // No "/" in the key: S3 URL-encodes keys in event records.
        let key = format!("expel-canary-{nanos}.txt");
        let b = &cx.s.bucket_name;
        let put = cx
            .aws(CANARY, || async {
                cx.aws
                    .s3
                    .put_object()
                    .bucket(b)
                    .key(&key)
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(
                        b"terraform-provider-expel pipeline check",
                    ))
                    .send()
                    .await
                    .map_err(err("s3", "PutObject"))
            })
            .await?;
        // In a versioned bucket, deleting the canary's own version removes it for good
        // instead of leaving it behind a delete marker.
        let version = put.version_id().map(str::to_string);
        let started = std::time::Instant::now();
        let mut delivered = false;
        while !delivered
            && started.elapsed() < std::time::Duration::from_secs(60)
            && std::time::Instant::now() < cx.deadline.until
        {
            let r = cx
                .aws(CANARY, || async {
                    cx.aws
                        .sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .map_err(err("sqs", "ReceiveMessage"))
                })
                .await?;
            for m in r.messages() {
                let body = m.body().unwrap_or_default();
                // Only our own messages are removed: S3's test event and the canary's.
                let ours = body.contains(&key) || body.contains("s3:TestEvent");
                if body.contains(&key) {
                    delivered = true;
                }
                if let (true, Some(h)) = (ours, m.receipt_handle()) {
                    cx.aws(CANARY, || async {
                        cx.aws
                            .sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(h)
                            .send()
                            .await
                            .map_err(err("sqs", "DeleteMessage"))
                    })
                    .await?;
                }
            }
        }
        cx.aws_opt(CANARY, || async {
            cx.aws
                .s3
                .delete_object()
                .bucket(b)
                .key(&key)
                .set_version_id(version.clone())
                .send()
                .await
                .map_err(err("s3", "DeleteObject"))
        })
        .await?;
        if delivered {
            Ok(())
        } else {
            Err(StepError::new(
                CANARY,
                format!("the canary object {key} in {b} produced no ObjectCreated message in {} within 60 s; check the bucket notification, the queue policy and the key policy (S3 must be allowed to use the key)", cx.s.queue_name),
            ))
        }
    }
}
