//! Auto remediation "Deactivate Access Keys" switched on in Workbench (`auto_remediation`):
//! the organization's `remediation_action_settings` record for
//! `DISABLE_AND_MODIFY_AWS_ACCESS_KEYS`, opted in, with our device among its security devices.
//! ExpelAPIPolicy carries the permissions (Step 6, `api_policy`).
//!
//! Workbench keeps one such record per organization [G]: a record that exists is joined (our
//! device added, the opt-in switched on), never replaced. Switching `auto_remediation` off, or
//! destroying, takes our device out of the record; the record itself is deleted only when this
//! instance made it and no other device is left in it.
use async_trait::async_trait;

use super::{Cause, Cx, Piece};
use crate::clients::workbench::{RemediationSetting, DEACTIVATE_ACCESS_KEYS};
use crate::engine::{Observed, Problem, Step, StepError};

pub struct AutoRemediation;
const REMEDIATION: &str =
    "Auto remediation: Deactivate Access Keys opted in through the security device in Workbench";

impl AutoRemediation {
    fn wanted(cx: &Cx) -> bool {
        cx.s.remediations.deactivate_access_keys
    }

    /// The organization's record (the one this instance joined first, if Workbench somehow
    /// has several) and its member devices.
    async fn record(
        &self,
        cx: &Cx,
    ) -> Result<Option<(RemediationSetting, Vec<String>)>, StepError> {
        let org = cx.s.workbench_org.as_str();
        let found = cx
            .deadline
            .retry_step(REMEDIATION, || {
                cx.wbc().remediation_settings(org, DEACTIVATE_ACCESS_KEYS)
            })
            .await?;
        let recorded = cx.j().remediation_id.clone();
        let chosen = found
            .iter()
            .find(|s| recorded.as_deref() == Some(s.id.as_str()))
            .or(found.first())
            .cloned();
        let Some(setting) = chosen else {
            return Ok(None);
        };
        let devices = cx
            .deadline
            .retry_step(REMEDIATION, || cx.wbc().remediation_devices(&setting))
            .await?;
        Ok(Some((setting, devices)))
    }

    /// Notes the record we are in; whether we made it carries over only for the same record.
    fn remember(cx: &Cx, id: &str, made: bool) {
        let mut j = cx.j();
        let same = j.remediation_id.as_deref() == Some(id);
        j.remediation_made = made || (same && j.remediation_made);
        j.remediation_id = Some(id.to_string());
    }

    fn device(cx: &Cx) -> Result<String, StepError> {
        cx.j().device_id.clone().ok_or_else(|| {
            StepError::new(
                REMEDIATION,
                "the security device is not registered in Workbench yet (Step 8); apply again once it is",
            )
        })
    }

    /// Our device in the organization's record, opted in; the record made if there is none.
    async fn join(&self, cx: &Cx) -> Result<(), StepError> {
        let device = Self::device(cx)?;
        let org = cx.s.workbench_org.as_str();
        if let Some((setting, devices)) = self.record(cx).await? {
            if !devices.contains(&device) {
                cx.deadline
                    .retry_step(REMEDIATION, || {
                        cx.wbc().add_remediation_device(&setting.id, &device)
                    })
                    .await?;
            }
            if !setting.automate_opt_in {
                cx.deadline
                    .retry_step(REMEDIATION, || {
                        cx.wbc().set_remediation_opt_in(&setting.id, true)
                    })
                    .await?;
            }
            Self::remember(cx, &setting.id, false);
            return Ok(());
        }
        // A create is sent once; if its answer is lost, the record may exist all the same.
        match cx
            .wbc()
            .create_remediation_setting(org, DEACTIVATE_ACCESS_KEYS, &device)
            .await
        {
            Ok(made) => {
                Self::remember(cx, &made.id, true);
                Ok(())
            }
            Err(e) => match self.record(cx).await? {
                Some((setting, devices)) if devices.contains(&device) => {
                    Self::remember(cx, &setting.id, false);
                    Ok(())
                }
                _ => Err(StepError::caused_by(REMEDIATION, e)),
            },
        }
    }

    /// Our device out of the record we joined; the record deleted if we made it and it is
    /// empty now. Others' devices and records are left alone.
    async fn leave(&self, cx: &Cx) -> Result<(), StepError> {
        let (recorded, made, device) = {
            let j = cx.j();
            (
                j.remediation_id.clone(),
                j.remediation_made,
                j.device_id.clone(),
            )
        };
        let Some(id) = recorded else {
            return Ok(());
        };
        if let Some(device) = &device {
            cx.deadline
                .retry_step(REMEDIATION, || {
                    cx.wbc().remove_remediation_device(&id, device)
                })
                .await?;
        }
        if made {
            if let Some(setting) = cx
                .deadline
                .retry_step(REMEDIATION, || cx.wbc().remediation_setting(&id))
                .await?
            {
                if cx
                    .deadline
                    .retry_step(REMEDIATION, || cx.wbc().remediation_devices(&setting))
                    .await?
                    .is_empty()
                {
                    cx.deadline
                        .retry_step(REMEDIATION, || cx.wbc().delete_remediation_setting(&id))
                        .await?;
                }
            }
        }
        let mut j = cx.j();
        j.remediation_id = None;
        j.remediation_made = false;
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for AutoRemediation {
    fn id(&self) -> Piece {
        Piece::AutoRemediation
    }
    fn title(&self) -> &'static str {
        REMEDIATION
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::WorkbenchDevice, Piece::ApiPolicy]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if Self::wanted(cx) {
            self.join(cx).await
        } else {
            Ok(())
        }
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let device = cx.j().device_id.clone();
        if !Self::wanted(cx) {
            // Off: only a record this instance joined is looked at.
            let (Some(id), Some(device)) = (cx.j().remediation_id.clone(), device) else {
                return Ok(Observed::fine());
            };
            let Some(setting) = cx
                .deadline
                .retry_step(REMEDIATION, || cx.wbc().remediation_setting(&id))
                .await?
            else {
                cx.j().remediation_id = None;
                return Ok(Observed::fine());
            };
            let devices = cx
                .deadline
                .retry_step(REMEDIATION, || cx.wbc().remediation_devices(&setting))
                .await?;
            return Ok(Observed::differs(if devices.contains(&device) {
                vec!["the device is still opted in to Deactivate Access Keys in Workbench, though auto_remediation is off".to_string()]
            } else {
                Vec::new()
            }));
        }
        let Some(device) = device else {
            return Ok(Observed::NotCreated);
        };
        let Some((setting, devices)) = self.record(cx).await? else {
            return Ok(Observed::differs(vec![format!(
                "Workbench has no remediation_action_settings record for {DEACTIVATE_ACCESS_KEYS} in the organization: the auto remediation is not switched on"
            )]));
        };
        let mut problems = Vec::new();
        if !setting.automate_opt_in {
            problems.push(format!(
                "the organization opted out of Deactivate Access Keys in Workbench (automate_opt_in is false on record {})",
                setting.id
            ));
        }
        if !devices.contains(&device) {
            problems.push(format!(
                "the device is not among the security devices of Workbench's Deactivate Access Keys record {}",
                setting.id
            ));
        }
        if problems.is_empty() {
            Self::remember(cx, &setting.id, false);
        }
        Ok(Observed::differs(problems))
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        if Self::wanted(cx) {
            self.join(cx).await
        } else {
            self.leave(cx).await
        }
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        self.leave(cx).await
    }
}
