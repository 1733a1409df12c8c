//! Emptying and deleting a bucket we own (the CloudTrail integration's `force_destroy`):
//! every object version and delete marker, and every unfinished multipart upload, each call
//! retried within the step's deadline,
//! failures named after the step.
use std::sync::Mutex;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::clients::aws::{err, AwsClients, AwsError, AwsErrorKind};
use crate::engine::{Deadline, StepError};

/// DeleteObjects takes at most 1000 keys a request (S3 API reference, DeleteObjects:
/// "The request can contain a list of up to 1,000 keys"); ListObjectVersions returns at
/// most 1000 entries a page.
const BATCH: usize = 1000;
/// How many failed keys an error message names.
const NAMED: usize = 5;

/// S3 for one step: its clients, its deadline, and its title for error messages.
pub struct S3<'a> {
    pub aws: &'a AwsClients,
    pub deadline: &'a Deadline,
    pub step: &'static str,
}

impl S3<'_> {
    fn fail(&self, message: impl std::fmt::Display) -> StepError {
        StepError::new(self.step, message)
    }

    /// Deletes every object version and delete marker, a page at a time. An unversioned
    /// bucket lists its objects as versions with the id "null", and so do objects written
    /// before versioning was turned on; deleting by that id removes them for good (S3 user
    /// guide, "Deleting objects from versioning-suspended buckets": the null version is
    /// removed only when named). Each page is deleted before the next list, which therefore
    /// starts from the beginning again: it holds what is left, including objects that
    /// arrived meanwhile (S3 lists are strongly consistent since December 2020), and needs no
    /// markers.
    pub async fn empty(&self, bucket: &str) -> Result<(), StepError> {
        let mut deleted = 0;
        loop {
            let stopped = if self.deadline.cancel.is_cancelled() {
                Some("Terraform was interrupted")
            } else if std::time::Instant::now() >= self.deadline.until {
                Some("the delete timeout passed")
            } else {
                None
            };
            if let Some(why) = stopped {
                return Err(self.fail(format!(
                    "{why} while the bucket {bucket} was being emptied ({deleted} object versions and delete markers deleted so far); \
                     it is not deleted. Run `terraform destroy` again to go on, or raise `timeouts.delete`."
                )));
            }
            let page = self
                .deadline
                .retry(|| async {
                    self.aws
                        .s3
                        .list_object_versions()
                        .bucket(bucket)
                        .max_keys(BATCH as i32)
                        .send()
                        .await
                        .map_err(err("s3", "ListObjectVersions"))
                })
                .await
                .map_err(|e| StepError::caused_by(self.step, e))?;
            let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
            let markers = page
                .delete_markers()
                .iter()
                .map(|m| (m.key(), m.version_id()));
            let ids: Vec<ObjectIdentifier> = versions
                .chain(markers)
                .filter_map(|(key, version)| {
                    ObjectIdentifier::builder()
                        .key(key?)
                        .set_version_id(version.map(str::to_string))
                        .build()
                        .ok()
                })
                .collect();
            if ids.is_empty() {
                return Ok(());
            }
            for batch in ids.chunks(BATCH) {
                self.delete_objects(bucket, batch).await?;
                deleted += batch.len();
            }
        }
    }

    /// One DeleteObjects request, checked key by key: S3 answers 200 even when some keys
    /// were not deleted and lists those under `Errors` (quiet mode lists nothing else; S3
    /// API reference, DeleteObjects). The keys that failed for a passing reason (SlowDown,
    /// InternalError) are sent again within the deadline; any other reason (AccessDenied for
    /// a version under Object Lock, say) fails at once, naming the keys.
    async fn delete_objects(
        &self,
        bucket: &str,
        batch: &[ObjectIdentifier],
    ) -> Result<(), StepError> {
        let pending = Mutex::new(batch.to_vec());
        let pending = &pending;
        self.deadline
            .retry(|| async move {
                let ids = pending.lock().map(|g| g.clone()).unwrap_or_default();
                let delete = Delete::builder()
                    .set_objects(Some(ids.clone()))
                    .quiet(true)
                    .build()
                    .map_err(|e| {
                        AwsError::user("s3", "DeleteObjects", "InvalidRequest", &e.to_string())
                    })?;
                let out = self
                    .aws
                    .s3
                    .delete_objects()
                    .bucket(bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(err("s3", "DeleteObjects"))?;
                match not_deleted(bucket, &ids, out.errors()) {
                    None => Ok(()),
                    Some((again, e)) => {
                        if let Ok(mut g) = pending.lock() {
                            *g = again;
                        }
                        Err(e)
                    }
                }
            })
            .await
            .map_err(|e| StepError::caused_by(self.step, e))
    }

    /// Aborts every unfinished multipart upload: their parts are stored (and billed) but
    /// listed by neither ListObjects nor ListObjectVersions. AWS requires this before a
    /// directory bucket can be deleted (S3 user guide, "Emptying a directory bucket"); for a
    /// general purpose bucket it documents no refusal [G], so it is done for both, one
    /// ListMultipartUploads when there is nothing to abort. Like `empty`, each page is
    /// aborted before the next list, which starts from the beginning again.
    async fn abort_uploads(&self, bucket: &str) -> Result<(), StepError> {
        loop {
            let page = self
                .deadline
                .retry(|| async {
                    self.aws
                        .s3
                        .list_multipart_uploads()
                        .bucket(bucket)
                        .send()
                        .await
                        .map_err(err("s3", "ListMultipartUploads"))
                })
                .await
                .map_err(|e| StepError::caused_by(self.step, e))?;
            let uploads: Vec<(&str, &str)> = page
                .uploads()
                .iter()
                .filter_map(|u| Some((u.key()?, u.upload_id()?)))
                .collect();
            if uploads.is_empty() {
                return Ok(());
            }
            for (key, id) in uploads {
                let aborted = self
                    .deadline
                    .retry(|| async {
                        self.aws
                            .s3
                            .abort_multipart_upload()
                            .bucket(bucket)
                            .key(key)
                            .upload_id(id)
                            .send()
                            .await
                            .map_err(err("s3", "AbortMultipartUpload"))
                    })
                    .await;
                match aborted {
                    // Finished or aborted meanwhile (S3 API reference, AbortMultipartUpload).
                    Err(e) if e.code != "NoSuchUpload" => {
                        return Err(StepError::caused_by(self.step, e))
                    }
                    _ => {}
                }
            }
        }
    }

    /// Empties the bucket, then deletes it ("already gone" is done). A bucket that is not
    /// empty by then (CloudTrail delivers a trail's last log files minutes after it stops:
    /// "CloudTrail typically delivers logs within an average of about 5 minutes of an API
    /// call", CloudTrail user guide, "Getting and viewing your CloudTrail log files") is
    /// emptied and deleted again, with backoff, until the deadline.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), StepError> {
        let mut round = 0;
        loop {
            self.empty(bucket).await?;
            self.abort_uploads(bucket).await?;
            let deleted = self
                .deadline
                .retry(|| async {
                    self.aws
                        .s3
                        .delete_bucket()
                        .bucket(bucket)
                        .send()
                        .await
                        .map_err(err("s3", "DeleteBucket"))
                })
                .await;
            match deleted {
                Ok(_) => return Ok(()),
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) if e.code == "BucketNotEmpty" => {
                    round += 1;
                    tracing::debug!(bucket, round, "objects arrived meanwhile; emptying again");
                    if !self.deadline.pause(round).await {
                        return Err(self.fail(format!(
                            "{e} (objects kept arriving while the bucket was emptied, {round} times, until the delete timeout or an interruption: \
                             a trail delivers its last log files minutes after it stops). Run `terraform destroy` again, or raise `timeouts.delete`."
                        )));
                    }
                }
                Err(e) => return Err(StepError::caused_by(self.step, e)),
            }
        }
    }
}

/// The keys of a DeleteObjects answer that were not deleted: the identifiers to send again
/// and the error to report, naming the keys and S3's reasons (a reason that retrying cannot
/// fix first). `None` when everything was deleted.
fn not_deleted(
    bucket: &str,
    sent: &[ObjectIdentifier],
    errors: &[aws_sdk_s3::types::Error],
) -> Option<(Vec<ObjectIdentifier>, AwsError)> {
    let mut failed: Vec<AwsError> = errors
        .iter()
        .map(|e| {
            let key = e.key().unwrap_or_default();
            let version = e
                .version_id()
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default();
            AwsError::per_item(
                "s3",
                "DeleteObjects",
                e.code().unwrap_or("Unknown"),
                format!(
                    "s3://{bucket}/{key}{version} was not deleted: {}",
                    e.message().unwrap_or_default()
                ),
            )
        })
        .collect();
    // A lasting reason decides the outcome: retrying cannot delete that key.
    failed.sort_by_key(|e| e.kind == AwsErrorKind::Transient);
    let first = failed.first()?.clone();
    let again: Vec<ObjectIdentifier> = sent
        .iter()
        .filter(|id| {
            errors.iter().any(|e| {
                e.key() == Some(id.key())
                    && (e.version_id().is_none() || e.version_id() == id.version_id())
            })
        })
        .cloned()
        .collect();
    let mut message = first.message.clone();
    if failed.len() > 1 {
        let others: Vec<String> = failed[1..]
            .iter()
            .take(NAMED - 1)
            .map(|e| format!("{} ({})", e.message, e.code))
            .collect();
        message.push_str(&format!(
            "; {} more not deleted: {}",
            failed.len() - 1,
            others.join("; ")
        ));
    }
    Some((again, AwsError { message, ..first }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: &str, version: &str) -> ObjectIdentifier {
        ObjectIdentifier::builder()
            .key(key)
            .version_id(version)
            .build()
            .expect("key is set")
    }

    fn error(
        key: &str,
        version: Option<&str>,
        code: &str,
        message: &str,
    ) -> aws_sdk_s3::types::Error {
        aws_sdk_s3::types::Error::builder()
            .key(key)
            .set_version_id(version.map(str::to_string))
            .code(code)
            .message(message)
            .build()
    }

    #[test]
    fn an_answer_without_errors_deleted_everything() {
        assert!(not_deleted("logs", &[id("a", "1")], &[]).is_none());
    }

    #[test]
    fn passing_reasons_are_sent_again_and_only_the_failed_keys() {
        let sent = [id("a", "1"), id("a", "2"), id("b", "1")];
        let (again, e) = not_deleted(
            "logs",
            &sent,
            &[error(
                "a",
                Some("2"),
                "SlowDown",
                "Please reduce your request rate.",
            )],
        )
        .expect("one key failed");
        assert_eq!(again, vec![id("a", "2")]);
        assert_eq!(e.kind, AwsErrorKind::Transient);
        assert_eq!(
            e.to_string(),
            "s3 DeleteObjects failed: SlowDown: s3://logs/a (version 2) was not deleted: Please reduce your request rate."
        );
    }

    #[test]
    fn a_lasting_reason_fails_and_is_named_first_with_the_others() {
        let sent = [id("a", "1"), id("b", "1"), id("c", "7")];
        let (again, e) = not_deleted(
            "logs",
            &sent,
            &[
                error(
                    "a",
                    Some("1"),
                    "InternalError",
                    "We encountered an internal error.",
                ),
                // moto names no version in its errors: the key decides.
                error(
                    "c",
                    None,
                    "AccessDenied",
                    "Access Denied because object protected by object lock.",
                ),
            ],
        )
        .expect("two keys failed");
        assert_eq!(again, vec![id("a", "1"), id("c", "7")]);
        assert_eq!(e.kind, AwsErrorKind::User, "retrying cannot delete c");
        assert_eq!(e.code, "AccessDenied");
        let text = e.to_string();
        assert!(
            text.starts_with("s3 DeleteObjects failed: AccessDenied: s3://logs/c was not deleted: Access Denied because object protected by object lock.; 1 more not deleted: s3://logs/a (version 1) was not deleted"),
            "{text}"
        );
        assert!(text.ends_with("(InternalError)"), "{text}");
    }

    #[test]
    fn many_failures_name_a_few_and_count_the_rest() {
        let sent: Vec<ObjectIdentifier> = (0..20).map(|i| id(&format!("k{i}"), "1")).collect();
        let errors: Vec<_> = (0..20)
            .map(|i| error(&format!("k{i}"), Some("1"), "AccessDenied", "Access Denied"))
            .collect();
        let (again, e) = not_deleted("logs", &sent, &errors).expect("all failed");
        assert_eq!(again.len(), 20);
        let text = e.to_string();
        assert!(text.contains("; 19 more not deleted: "), "{text}");
        assert_eq!(text.matches("was not deleted").count(), NAMED, "{text}");
    }
}
