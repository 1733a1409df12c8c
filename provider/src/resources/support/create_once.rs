//! Creates happen once (docs/ARCHITECTURE.md#the-engine): a create whose answer is lost
//! (connection dropped, 5xx, throttled) may have acted, so before it is sent again the object
//! is looked for by name and ownership marker, and adopted when found.
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::{Deadline, RetryKind, Retryable, StepError};

/// How [`create_once`] ended: our create's answer, or the object found by the look.
pub enum Made<C, F> {
    Created(C),
    Found(F),
}

/// When [`create_once`] looks for what the create would make.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Before every send, the first one included: what already exists is found, not made.
    First,
    /// Only before sending again after a failure that may hide a success.
    AfterLostAnswer,
}

/// Sends a create until it is answered, within the deadline. After a failure that may hide a
/// success (retryable: lost connection, 5xx, throttling), `find` looks for what the create
/// would have made (name and ownership marker) before the create is sent again, so a lost
/// answer never leaves a duplicate or an orphan.
pub async fn create_once<C, F, E, FindF, FindFut, MakeF, MakeFut>(
    deadline: &Deadline,
    step: &'static str,
    look: Look,
    find: FindF,
    create: MakeF,
) -> Result<Made<C, F>, StepError>
where
    E: Retryable + std::error::Error + Send + Sync + 'static,
    FindF: Fn() -> FindFut,
    FindFut: std::future::Future<Output = Result<Option<F>, E>>,
    MakeF: Fn() -> MakeFut,
    MakeFut: std::future::Future<Output = Result<C, E>>,
{
    let unsure = AtomicBool::new(false);
    deadline
        .retry(|| async {
            let lost = unsure.load(Ordering::SeqCst);
            if lost || look == Look::First {
                if let Some(found) = find().await? {
                    if lost {
                        tracing::info!(step, "a create's answer was lost; adopting what it made");
                    }
                    return Ok(Made::Found(found));
                }
            }
            create().await.map(Made::Created).inspect_err(|e| {
                if e.retry_kind() == RetryKind::Retry {
                    unsure.store(true, Ordering::SeqCst);
                }
            })
        })
        .await
        .map_err(|e| StepError::caused_by(step, e))
}

/// Runs a step's find-or-make once more when it failed before recording its object: the
/// failure may be a lost answer whose create acted, and the second run finds (and adopts if
/// ours) what it made. The first run's error is the one reported.
pub async fn or_look_again<F, Fut>(attempt: F, recorded: impl Fn() -> bool) -> Result<(), StepError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), StepError>>,
{
    match attempt().await {
        Err(e) if !recorded() => attempt().await.map_err(|_| e),
        r => r,
    }
}
