//! The one retry layer (the AWS SDK's own retries are off): jittered exponential backoff
//! inside a deadline (the resource's `timeouts`) for transient failures, and inside a shorter,
//! bounded propagation window for AWS's "not propagated yet" answers, which can also be
//! permanent (a typo'd principal); never for user errors.
use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::StepError;
use crate::clients::retry::{backoff, RetryKind, Retryable};

/// How long a propagation-type answer is retried when nothing else is set: real AWS
/// propagates IAM, KMS and S3 changes within seconds, rarely a minute.
pub const DEFAULT_PROPAGATION: Duration = Duration::from_secs(120);

/// When an operation must give up, and the token that cancels it (StopProvider).
#[derive(Clone, Debug)]
pub struct Deadline {
    pub until: Instant,
    pub cancel: CancellationToken,
    /// How long one call keeps retrying a propagation-type answer.
    pub propagation: Duration,
    /// At most this many retries of a call's throttling, 5xx and network answers, for the
    /// errors it bounds ([`Retryable::counts_toward_retry_limit`]: AWS's, `aws.max_retries`);
    /// unbounded but for the deadline when unset.
    pub max_retries: Option<u32>,
}

impl Deadline {
    pub fn after(timeout: Duration, cancel: CancellationToken) -> Self {
        Deadline {
            until: Instant::now() + timeout,
            cancel,
            propagation: DEFAULT_PROPAGATION,
            max_retries: None,
        }
    }

    /// The same deadline with a limit on the retries of transient answers.
    pub fn with_max_retries(mut self, max: Option<u32>) -> Self {
        self.max_retries = max;
        self
    }

    /// The same deadline with another propagation window.
    pub fn with_propagation(mut self, window: Duration) -> Self {
        self.propagation = window;
        self
    }

    /// [`Deadline::retry`] for a step: an error that outlasts the retries fails the step
    /// (`step` names it) and stays the step error's source.
    pub async fn retry_step<T, E, F, Fut>(&self, step: &'static str, op: F) -> Result<T, StepError>
    where
        E: Retryable + std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.retry(op)
            .await
            .map_err(|e| StepError::caused_by(step, e))
    }

    /// Runs `op` until it succeeds, fails for good, the deadline passes or Terraform cancels.
    /// The last error is returned in the last two cases.
    pub async fn retry<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: Retryable + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt: u32 = 0;
        let mut retries: u32 = 0;
        let mut propagating_since: Option<Instant> = None;
        loop {
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            attempt += 1;
            let wait = jittered(attempt);
            match err.retry_kind() {
                RetryKind::Fail => return Err(err),
                RetryKind::Propagation => {
                    let since = *propagating_since.get_or_insert_with(Instant::now);
                    if since.elapsed() + wait > self.propagation {
                        return Err(err.outlasted_propagation(since.elapsed()));
                    }
                }
                RetryKind::Retry => {
                    if let Some(max) = self.max_retries.filter(|_| err.counts_toward_retry_limit())
                    {
                        if retries >= max {
                            tracing::warn!(attempt, max_retries = max, reason = %err, "giving up: max_retries reached");
                            return Err(err);
                        }
                    }
                    retries += 1;
                }
            }
            if !self.room_for(wait) {
                return Err(err);
            }
            tracing::warn!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                reason = %err,
                "retrying"
            );
            if !self.sleep(wait).await {
                return Err(err);
            }
        }
    }

    /// For a sequence of calls that must be tried again as a whole (empty a bucket, then
    /// delete it): waits the backoff of retry `attempt` (1, 2, ...) and returns true, or
    /// returns false at once when that wait would pass the deadline or Terraform cancels.
    pub async fn pause(&self, attempt: u32) -> bool {
        let wait = jittered(attempt);
        self.room_for(wait) && self.sleep(wait).await
    }

    fn room_for(&self, wait: Duration) -> bool {
        Instant::now() + wait <= self.until && !self.cancel.is_cancelled()
    }

    /// Sleeps `wait`; false if Terraform cancelled meanwhile.
    async fn sleep(&self, wait: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = self.cancel.cancelled() => false,
        }
    }
}

/// The wait before the engine's retry `attempt`: half the clients' [`backoff`] (100 ms
/// doubling) at most 5 s, with jitter from the clock's sub-millisecond noise (no RNG needed
/// for spreading a handful of retries) between half and all of that.
fn jittered(attempt: u32) -> Duration {
    let base = (backoff(attempt).as_millis() as u64 / 2).min(5_000);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_micros())
            .unwrap_or(0),
    ) % (base / 2 + 1);
    Duration::from_millis(base / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::aws::{AwsError, AwsErrorKind};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn aws(kind: AwsErrorKind) -> AwsError {
        AwsError {
            service: "sqs",
            operation: "CreateQueue",
            code: "X".into(),
            message: String::new(),
            status: None,
            kind,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_user_errors_are_not() {
        let d = Deadline::after(Duration::from_secs(10), CancellationToken::new());
        let n = AtomicU32::new(0);
        let r: Result<u32, AwsError> = d
            .retry(|| async {
                let i = n.fetch_add(1, Ordering::SeqCst);
                if i < 2 {
                    Err(aws(AwsErrorKind::Propagation))
                } else {
                    Ok(i)
                }
            })
            .await;
        assert_eq!(r.ok(), Some(2));

        let n = AtomicU32::new(0);
        let r: Result<(), AwsError> = d
            .retry(|| async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(aws(AwsErrorKind::User))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 1, "a user error is not retried");
    }

    #[tokio::test]
    async fn propagation_answers_are_retried_within_their_window_then_name_the_causes() {
        let d = Deadline::after(Duration::from_secs(600), CancellationToken::new())
            .with_propagation(Duration::from_millis(700));
        let start = Instant::now();
        let n = AtomicU32::new(0);
        let r: Result<(), AwsError> = d
            .retry(|| async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(AwsError {
                    code: "MalformedPolicyDocument".into(),
                    message:
                        "Invalid principal in policy: \"AWS\":\"arn:aws:iam::01220551245:root\""
                            .into(),
                    ..aws(AwsErrorKind::Propagation)
                })
            })
            .await;
        let e = r.expect_err("a permanent propagation-type answer ends in an error");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "bounded by the window, not the deadline"
        );
        assert!(n.load(Ordering::SeqCst) >= 2, "retried meanwhile");
        let text = e.to_string();
        assert!(text.contains("expel_principals"), "{text}");
        assert!(text.contains("Invalid principal"), "{text}");
    }

    #[tokio::test]
    async fn pause_waits_within_the_deadline_and_not_past_it_or_a_cancel() {
        let d = Deadline::after(Duration::from_secs(60), CancellationToken::new());
        let start = Instant::now();
        assert!(d.pause(1).await, "room for a short wait");
        assert!(start.elapsed() >= Duration::from_millis(100), "it waited");

        let d = Deadline::after(Duration::from_millis(50), CancellationToken::new());
        let start = Instant::now();
        assert!(!d.pause(6).await, "a wait past the deadline is refused");
        assert!(start.elapsed() < Duration::from_millis(50), "at once");

        let cancel = CancellationToken::new();
        let d = Deadline::after(Duration::from_secs(60), cancel.clone());
        let start = Instant::now();
        let stop = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        };
        let (paused, ()) = tokio::join!(d.pause(6), stop);
        assert!(!paused, "cancelled");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "ended by the cancel"
        );
    }

    #[tokio::test]
    async fn max_retries_bounds_transient_aws_answers_only() {
        let d = Deadline::after(Duration::from_secs(60), CancellationToken::new())
            .with_max_retries(Some(2));
        let n = AtomicU32::new(0);
        let r: Result<(), AwsError> = d
            .retry(|| async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(aws(AwsErrorKind::Transient))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(
            n.load(Ordering::SeqCst),
            3,
            "the first attempt and 2 retries"
        );

        let d = d.with_max_retries(Some(0));
        let n = AtomicU32::new(0);
        let r: Result<u32, AwsError> = d
            .retry(|| async {
                let i = n.fetch_add(1, Ordering::SeqCst);
                if i < 2 {
                    Err(aws(AwsErrorKind::Propagation))
                } else {
                    Ok(i)
                }
            })
            .await;
        assert_eq!(r.ok(), Some(2), "propagation answers keep their own window");
    }

    #[tokio::test]
    async fn deadline_and_cancellation_end_retries() {
        let d = Deadline::after(Duration::from_millis(300), CancellationToken::new());
        let start = Instant::now();
        let r: Result<(), AwsError> = d
            .retry(|| async { Err(aws(AwsErrorKind::Transient)) })
            .await;
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(2));

        let cancel = CancellationToken::new();
        let d = Deadline::after(Duration::from_secs(60), cancel.clone());
        cancel.cancel();
        let start = Instant::now();
        let r: Result<(), AwsError> = d
            .retry(|| async { Err(aws(AwsErrorKind::Transient)) })
            .await;
        assert!(r.is_err() && start.elapsed() < Duration::from_secs(1));
    }
}
