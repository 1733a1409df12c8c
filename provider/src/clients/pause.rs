//! The waits between a client's retries, cut short when Terraform cancels the operation
//! (StopProvider, i.e. Ctrl-C): the engine runs every step inside `with_cancel`, so a client
//! deep in a Retry-After wait stops retrying at once and the step returns what it has.
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

tokio::task_local! {
    static CANCEL: CancellationToken;
}

/// Runs `f` with `token` as the cancellation of every client wait inside it.
pub async fn with_cancel<F: Future>(token: CancellationToken, f: F) -> F::Output {
    CANCEL.scope(token, f).await
}

/// Waits `wait` before a retry; false when the operation was cancelled meanwhile (then the
/// caller stops retrying and reports the last answer).
pub async fn pause(wait: Duration) -> bool {
    let Ok(token) = CANCEL.try_with(CancellationToken::clone) else {
        tokio::time::sleep(wait).await;
        return true;
    };
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = token.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancelled_operation_stops_waiting_at_once() {
        let token = CancellationToken::new();
        let t = token.clone();
        let start = std::time::Instant::now();
        let waited = with_cancel(token, async {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                t.cancel();
            });
            pause(Duration::from_secs(30)).await
        })
        .await;
        assert!(!waited);
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(
            pause(Duration::from_millis(1)).await,
            "outside an operation: a plain sleep"
        );
    }
}
