//! Whether trying again can help, and how long to wait first: what the clients' own retries
//! (`http::Transport`) and the engine's (`engine::Deadline::retry`) share. Each client's error
//! type implements [`Retryable`] beside its definition.
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryKind {
    /// Throttling, 5xx, network: retry until the deadline.
    Retry,
    /// AWS may not have propagated a change yet, or the request may be wrong for good:
    /// retry within the propagation window only.
    Propagation,
    Fail,
}

impl RetryKind {
    /// `Retry` for a failure trying again may mend (throttling, 5xx, network), else `Fail`.
    pub fn retry_or_fail(transient: bool) -> RetryKind {
        if transient {
            RetryKind::Retry
        } else {
            RetryKind::Fail
        }
    }
}

/// Errors that know whether trying again can help.
pub trait Retryable: Sized {
    fn retry_kind(&self) -> RetryKind;
    /// The error to report when a propagation-type error outlasted the window `waited`:
    /// by default the error itself; AWS errors add the likely causes.
    fn outlasted_propagation(self, _waited: Duration) -> Self {
        self
    }
    /// Whether the engine's retry limit (`aws.max_retries`, for AWS calls) bounds the
    /// `Retry` answers of this error; the HTTP clients keep their own attempt counts.
    fn counts_toward_retry_limit(&self) -> bool {
        false
    }
}

/// The one backoff: the wait after failed attempt `attempt` (1, 2, ...), 400 ms doubling
/// per attempt up to 12.8 s from attempt 6 on. The HTTP clients wait it whole between their
/// attempts; the engine waits half of it at most 5 s, jittered.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64 << attempt.min(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_400_ms_and_stops_at_attempt_6() {
        let ms: Vec<u128> = (1..=7).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(ms, [400, 800, 1_600, 3_200, 6_400, 12_800, 12_800]);
    }
}
