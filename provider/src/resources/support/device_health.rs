//! `wait_for_healthy`: waiting, within the operation's deadline, for Workbench's verdict on a
//! security device it has just been given (it checks the device's credentials after every
//! create or update; `is_verifying_status` is true until it has).
//!
//! Workbench checks at once, but credentials made seconds ago may not work yet: AWS IAM is
//! eventually consistent, and STS refuses Expel's AssumeRole of a new role for a while
//! (typically 5-15 s after CreateRole). So "unhealthy" within [`SETTLE_WINDOW`] of the
//! credentials being made or changed in this run means "not yet": Workbench is asked to check
//! again ([`WorkbenchClient::recheck_device`], a guess at how), with backoff, until the
//! operation's deadline. After the window, or for credentials this run did not touch,
//! "unhealthy" is final.
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::clients::workbench::{SecurityDevice, WorkbenchClient, WorkbenchError};
use crate::engine::{Deadline, RetryKind, Retryable};

/// How long after its credentials were made or changed an "unhealthy" device is re-checked
/// rather than failed. AWS documents IAM changes as eventually consistent, with no bound;
/// new roles are usually assumable within 5-15 s and rarely take longer than a minute. Two
/// minutes covers that tail with room, as the engine's window for AWS's own "not propagated
/// yet" answers does (`engine::retry::DEFAULT_PROPAGATION`). The operation's timeout bounds it:
/// a shorter create/update timeout ends the wait first, failing with Workbench's last verdict.
pub const SETTLE_WINDOW: Duration = Duration::from_secs(120);

/// The shortest pause between two looks at the device: Workbench's checks take seconds, and
/// a wait that can last minutes should not poll its API harder than this.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The first look, this long after the device was created or changed (the step calls the
/// wait right after): a quick check has its verdict by then. Later looks follow
/// [`POLL_INTERVAL`].
pub const FIRST_LOOK: Duration = Duration::from_secs(1);

/// The longest pause before asking Workbench to check again (the backoff's cap).
pub const MAX_RECHECK_PAUSE: Duration = Duration::from_secs(30);

/// Why the wait ended without a healthy device.
#[derive(Debug)]
pub struct NotHealthy {
    /// Workbench's verdict (e.g. `unhealthy`); `None` when there was none (timeout, error).
    pub status: Option<String>,
    pub message: String,
}

/// Workbench's verdict as one look at the device shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `is_verifying_status`: a check is running.
    Checking,
    /// Healthy, or Workbench does not health-check this kind of device.
    Healthy,
    /// Anything else: `unhealthy`, or no status at all.
    Unhealthy,
}

impl Verdict {
    pub fn of(d: &SecurityDevice) -> Verdict {
        if d.is_verifying_status {
            return Verdict::Checking;
        }
        match d.status.as_deref() {
            Some("healthy") | Some("health_checks_not_supported") => Verdict::Healthy,
            _ => Verdict::Unhealthy,
        }
    }
}

/// What to do after a look at the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Healthy: the wait is over.
    Done,
    /// The verdict stands: fail with it.
    Fail,
    /// Workbench is still checking: look again after this pause.
    Poll(Duration),
    /// Too early to believe "unhealthy": after this pause, ask Workbench to check again.
    Recheck(Duration),
}

/// The decision after one look: `since_credentials` is how long ago this run made or
/// changed the device's credentials (`None`: it did not, so the verdict is about credentials
/// that have had time to propagate), `rechecks` how often Workbench was asked to check again.
pub fn next(verdict: Verdict, since_credentials: Option<Duration>, rechecks: u32) -> Next {
    match verdict {
        Verdict::Healthy => Next::Done,
        Verdict::Checking => Next::Poll(POLL_INTERVAL),
        Verdict::Unhealthy => match since_credentials {
            Some(age) if age < SETTLE_WINDOW => Next::Recheck(recheck_pause(rechecks)),
            _ => Next::Fail,
        },
    }
}

/// The pause before re-check number `rechecks + 1`: none before the first (the verdict came
/// from the check Workbench made when it was given the device), then 5 s doubling up to
/// [`MAX_RECHECK_PAUSE`]. With the [`POLL_INTERVAL`] after each request, re-checks go out
/// about 5, 10, 15, 25 and then 35 s apart.
pub fn recheck_pause(rechecks: u32) -> Duration {
    match rechecks {
        0 => Duration::ZERO,
        n => POLL_INTERVAL
            .saturating_mul(1 << (n - 1).min(8))
            .min(MAX_RECHECK_PAUSE),
    }
}

/// The pause after a failed call worth repeating (throttling, 5xx, network): the poll
/// interval, or longer when Workbench's Retry-After says so.
pub fn pause_after_error(retry_after: Option<Duration>) -> Duration {
    retry_after.map_or(POLL_INTERVAL, |r| r.max(POLL_INTERVAL))
}

/// The last thing Workbench told the wait, for the error when the deadline passes first.
enum Last {
    Nothing,
    Checking,
    Unhealthy(Box<SecurityDevice>),
    Error(String),
}

/// What the wait does after its pause.
enum Action {
    Look,
    Recheck(Box<SecurityDevice>),
}

enum Interrupted {
    Timeout,
    Cancelled,
}

/// Polls the device until Workbench has a verdict: the device when it is healthy (or
/// Workbench does not health-check this kind of device), otherwise why not.
/// `credentials_changed`: when this run made or changed the credentials the device uses
/// (`None` when it did not, or when they work as soon as they exist).
pub async fn wait_healthy(
    wb: &WorkbenchClient,
    deadline: &Deadline,
    id: &str,
    credentials_changed: Option<Instant>,
) -> Result<SecurityDevice, NotHealthy> {
    let mut rechecks = 0u32;
    let mut last = Last::Nothing;
    let mut action = Action::Look;
    let mut pause = FIRST_LOOK;
    loop {
        // A re-check is worth its pause only if its verdict can come before the deadline.
        let needed = match action {
            Action::Look => pause,
            Action::Recheck(_) => pause + POLL_INTERVAL,
        };
        if Instant::now() + needed > deadline.until {
            return Err(interrupted(Interrupted::Timeout, &last, rechecks));
        }
        within(deadline, tokio::time::sleep(pause))
            .await
            .map_err(|i| interrupted(i, &last, rechecks))?;
        match action {
            Action::Look => {
                let answer = within(deadline, wb.device(id))
                    .await
                    .map_err(|i| interrupted(i, &last, rechecks))?;
                let d = match answer {
                    Ok(Some(d)) => d,
                    Ok(None) => return Err(vanished()),
                    Err(e) => {
                        pause = after_error(&e)?;
                        // A verdict already seen says more than a failed call.
                        if !matches!(last, Last::Unhealthy(_)) {
                            last = Last::Error(e.to_string());
                        }
                        continue;
                    }
                };
                let since = credentials_changed.map(|t| t.elapsed());
                match next(Verdict::of(&d), since, rechecks) {
                    Next::Done => return Ok(d),
                    Next::Fail => return Err(verdict(&d, rechecks)),
                    Next::Poll(p) => {
                        pause = p;
                        // Re-checking keeps the verdict being re-checked for the timeout's error.
                        if !matches!(last, Last::Unhealthy(_)) {
                            last = Last::Checking;
                        }
                    }
                    Next::Recheck(p) => {
                        tracing::debug!(
                            id,
                            rechecks,
                            "unhealthy soon after the credentials changed: checking again"
                        );
                        pause = p;
                        action = Action::Recheck(Box::new(d.clone()));
                        last = Last::Unhealthy(Box::new(d));
                    }
                }
            }
            Action::Recheck(d) => {
                action = Action::Look;
                let answer = within(deadline, wb.recheck_device(&d))
                    .await
                    .map_err(|i| interrupted(i, &last, rechecks))?;
                pause = match answer {
                    Ok(()) => {
                        rechecks += 1;
                        POLL_INTERVAL
                    }
                    Err(e) if e.status() == Some(404) => return Err(vanished()),
                    // The next look finds it still unhealthy and asks again.
                    Err(e) => after_error(&e).map_err(|n| NotHealthy {
                        status: d.status.clone(),
                        message: format!("asking Workbench to check the device again (a PATCH of its name, unchanged) failed: {}; its last verdict: {} {}", n.message, d.status.as_deref().unwrap_or("no status"), details(&d)),
                    })?,
                };
            }
        }
    }
}

/// Runs `fut` unless the deadline passes or Terraform cancels first.
async fn within<T>(deadline: &Deadline, fut: impl Future<Output = T>) -> Result<T, Interrupted> {
    tokio::select! {
        r = fut => Ok(r),
        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline.until)) => Err(Interrupted::Timeout),
        _ = deadline.cancel.cancelled() => Err(Interrupted::Cancelled),
    }
}

/// The pause before trying again after `e`, or the error when trying again cannot help.
fn after_error(e: &WorkbenchError) -> Result<Duration, NotHealthy> {
    match e.retry_kind() {
        RetryKind::Fail => Err(NotHealthy {
            status: None,
            message: e.to_string(),
        }),
        RetryKind::Retry | RetryKind::Propagation => Ok(pause_after_error(e.retry_after())),
    }
}

fn vanished() -> NotHealthy {
    NotHealthy {
        status: None,
        message: "the device vanished while Workbench checked it".into(),
    }
}

fn details(d: &SecurityDevice) -> Json {
    d.attributes
        .get("status_details")
        .cloned()
        .unwrap_or(Json::Null)
}

/// Workbench's final verdict.
fn verdict(d: &SecurityDevice, rechecks: u32) -> NotHealthy {
    let again = match rechecks {
        0 => String::new(),
        n => format!(" (after asking it to check again {n} times)"),
    };
    NotHealthy {
        status: d.status.clone(),
        message: format!(
            "Workbench reports the device {}{again}: {}",
            d.status.as_deref().unwrap_or("without a status"),
            details(d)
        ),
    }
}

fn interrupted(why: Interrupted, last: &Last, rechecks: u32) -> NotHealthy {
    let when = match why {
        Interrupted::Cancelled => {
            return NotHealthy {
                status: match last {
                    Last::Unhealthy(d) => d.status.clone(),
                    _ => None,
                },
                message: "cancelled while Workbench checked the device".into(),
            }
        }
        // Also when too little time is left for the next look to tell anything new.
        Interrupted::Timeout => "as the timeout runs out",
    };
    match last {
        Last::Unhealthy(d) => NotHealthy {
            status: d.status.clone(),
            message: format!(
                "Workbench still reports the device {} {when}, after asking it to check again {rechecks} times: {}. Its credentials were made or changed in this apply, and AWS may take a while before Workbench can use them: a longer create/update timeout lets the wait last the full {} s settle window.",
                d.status.as_deref().unwrap_or("without a status"),
                details(d),
                SETTLE_WINDOW.as_secs()
            ),
        },
        Last::Error(e) => NotHealthy {
            status: None,
            message: format!("Workbench gave no verdict {when}; its last answer: {e}"),
        },
        Last::Checking | Last::Nothing => NotHealthy {
            status: None,
            message: format!("Workbench was still checking the device {when}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn healthy_ends_the_wait_and_a_running_check_is_polled_every_five_seconds() {
        for since in [None, Some(S(1)), Some(S(600))] {
            assert_eq!(next(Verdict::Healthy, since, 0), Next::Done);
            assert_eq!(next(Verdict::Healthy, since, 7), Next::Done);
            assert_eq!(next(Verdict::Checking, since, 3), Next::Poll(S(5)));
        }
        assert!(POLL_INTERVAL >= S(5));
        assert!(FIRST_LOOK < POLL_INTERVAL);
    }

    #[test]
    fn unhealthy_soon_after_the_credentials_changed_is_rechecked_with_backoff() {
        assert_eq!(
            next(Verdict::Unhealthy, Some(S(3)), 0),
            Next::Recheck(Duration::ZERO)
        );
        assert_eq!(
            next(Verdict::Unhealthy, Some(S(20)), 1),
            Next::Recheck(S(5))
        );
        assert_eq!(
            next(Verdict::Unhealthy, Some(S(119)), 2),
            Next::Recheck(S(10))
        );
        let pauses: Vec<u64> = (0..7).map(|n| recheck_pause(n).as_secs()).collect();
        assert_eq!(pauses, vec![0, 5, 10, 20, 30, 30, 30]);
        assert_eq!(recheck_pause(u32::MAX), MAX_RECHECK_PAUSE);
    }

    #[test]
    fn unhealthy_is_final_after_the_settle_window_or_for_untouched_credentials() {
        assert_eq!(next(Verdict::Unhealthy, Some(SETTLE_WINDOW), 4), Next::Fail);
        assert_eq!(next(Verdict::Unhealthy, Some(S(3600)), 0), Next::Fail);
        // Adopted with old credentials, or credentials that work at once (Wiz).
        assert_eq!(next(Verdict::Unhealthy, None, 0), Next::Fail);
    }

    #[test]
    fn verdicts_from_the_device() {
        let d = |status: Option<&str>, verifying: bool| SecurityDevice {
            id: "d1".into(),
            name: "n".into(),
            location: String::new(),
            plugin_slug: "aws".into(),
            device_spec: Json::Null,
            status: status.map(str::to_string),
            is_verifying_status: verifying,
            attributes: serde_json::json!({"status_details": {"reason": "cannot assume role"}}),
            organization_id: None,
            deleted_at: None,
        };
        assert_eq!(Verdict::of(&d(Some("unhealthy"), true)), Verdict::Checking);
        assert_eq!(Verdict::of(&d(Some("healthy"), false)), Verdict::Healthy);
        assert_eq!(
            Verdict::of(&d(Some("health_checks_not_supported"), false)),
            Verdict::Healthy
        );
        assert_eq!(
            Verdict::of(&d(Some("unhealthy"), false)),
            Verdict::Unhealthy
        );
        assert_eq!(Verdict::of(&d(None, false)), Verdict::Unhealthy);
        let e = verdict(&d(Some("unhealthy"), false), 2);
        assert_eq!(e.status.as_deref(), Some("unhealthy"));
        assert!(e.message.contains("cannot assume role"), "{}", e.message);
        assert!(e.message.contains("2 times"), "{}", e.message);
        let e = interrupted(
            Interrupted::Timeout,
            &Last::Unhealthy(Box::new(d(Some("unhealthy"), false))),
            3,
        );
        assert_eq!(e.status.as_deref(), Some("unhealthy"));
        assert!(e.message.contains("cannot assume role"), "{}", e.message);
        assert!(e.message.contains("timeout"), "{}", e.message);
    }

    #[test]
    fn a_retry_after_longer_than_the_poll_interval_delays_the_next_look() {
        assert_eq!(pause_after_error(None), POLL_INTERVAL);
        assert_eq!(pause_after_error(Some(S(1))), POLL_INTERVAL);
        assert_eq!(pause_after_error(Some(S(42))), S(42));
    }
}
