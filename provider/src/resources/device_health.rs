//! `wait_for_healthy`: waiting, within the operation's deadline, for Workbench's verdict on a
//! security device it has just been given (it checks the device's credentials after every
//! create or update; `is_verifying_status` is true until it has).
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::clients::workbench::{SecurityDevice, WorkbenchClient};
use crate::engine::Deadline;

/// Why the wait ended without a healthy device.
#[derive(Debug)]
pub struct NotHealthy {
    /// Workbench's verdict (e.g. `unhealthy`); `None` when there was none (timeout, error).
    pub status: Option<String>,
    pub message: String,
}

/// Polls the device until Workbench has a verdict: the device when it is healthy (or
/// Workbench does not health-check this kind of device), otherwise why not.
pub async fn wait_healthy(
    wb: &WorkbenchClient,
    deadline: &Deadline,
    id: &str,
) -> Result<SecurityDevice, NotHealthy> {
    loop {
        let d = deadline
            .retry(|| wb.device(id))
            .await
            .map_err(|e| NotHealthy {
                status: None,
                message: e.to_string(),
            })?
            .ok_or_else(|| NotHealthy {
                status: None,
                message: "the device vanished while Workbench checked it".into(),
            })?;
        if !d.is_verifying_status {
            return match d.status.as_deref() {
                Some("healthy") | Some("health_checks_not_supported") => Ok(d),
                other => Err(NotHealthy {
                    status: d.status.clone(),
                    message: format!(
                        "Workbench reports the device {}: {}",
                        other.unwrap_or("without a status"),
                        d.attributes
                            .get("status_details")
                            .cloned()
                            .unwrap_or(Json::Null)
                    ),
                }),
            };
        }
        let pause = Duration::from_millis(200);
        if Instant::now() + pause > deadline.until {
            return Err(NotHealthy {
                status: None,
                message: "Workbench was still checking the device when the timeout passed".into(),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = deadline.cancel.cancelled() => return Err(NotHealthy {
                status: None,
                message: "cancelled while Workbench checked the device".into(),
            }),
        }
    }
}
