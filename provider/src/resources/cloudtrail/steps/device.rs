//! The security device in Workbench (guide step 8).
use async_trait::async_trait;
use serde_json::{json, Value as Json};

use super::{fail, Cx};
use crate::clients::workbench::{check_device_spec, DeviceSpec};
use crate::engine::{Observed, Step, StepError};

pub struct WorkbenchDevice;
const DEVICE: &str = "Step 8: register AWS CloudTrail as a security device in Workbench";

impl WorkbenchDevice {
    pub fn spec(cx: &Cx) -> DeviceSpec {
        DeviceSpec {
            name: cx.s.name.clone(),
            location: cx.s.device_location.clone(),
            device_type: "CLOUD".into(),
            plugin_slug: cx.s.plugin_slug.clone(),
            device_spec: json!({
                "role_arn": cx.role_arn(),
                "role_session_name": cx.s.role_session_name,
                "region": cx.loc.region,
                "sqs_queue_url": cx.j().queue_url.clone().unwrap_or_default(),
            }),
        }
    }
    /// Validates the device_spec against the plugin's JSON schema before any call.
    async fn check_spec(&self, cx: &Cx, spec: &DeviceSpec) -> Result<(), StepError> {
        let plugins = cx.wb(DEVICE, || cx.wbc().plugins()).await?;
        check_device_spec(&plugins, &spec.plugin_slug, &spec.device_spec)
            .map_err(|e| fail(DEVICE, e))
    }
    async fn wait_healthy(&self, cx: &Cx, id: &str) -> Result<(), StepError> {
        let changed = cx.j().credentials_changed;
        match crate::resources::device_health::wait_healthy(cx.wbc(), &cx.deadline, id, changed)
            .await
        {
            Ok(d) => {
                cx.j().device_status = d.status;
                Ok(())
            }
            Err(e) => {
                if e.status.is_some() {
                    cx.j().device_status = e.status;
                }
                Err(fail(DEVICE, e.message))
            }
        }
    }
    fn differences(&self, cx: &Cx, d: &crate::clients::workbench::SecurityDevice) -> Vec<String> {
        let want = Self::spec(cx);
        let mut p = Vec::new();
        if d.name != want.name {
            p.push(format!(
                "device name is {:?} instead of {:?}",
                d.name, want.name
            ));
        }
        if d.location != want.location {
            p.push(format!(
                "device location is {:?} instead of {:?}",
                d.location, want.location
            ));
        }
        if d.plugin_slug != want.plugin_slug {
            p.push(format!(
                "device plugin is {:?} instead of {:?}",
                d.plugin_slug, want.plugin_slug
            ));
        }
        if let Some(fields) = want.device_spec.as_object() {
            for (k, v) in fields {
                if d.device_spec.get(k) != Some(v) {
                    p.push(format!(
                        "device {k} is {} instead of {v}",
                        d.device_spec.get(k).cloned().unwrap_or(Json::Null)
                    ));
                }
            }
        }
        p
    }
}

#[async_trait]
impl Step<Cx> for WorkbenchDevice {
    fn key(&self) -> &'static str {
        "workbench_device"
    }
    fn title(&self) -> &'static str {
        DEVICE
    }
    fn needs(&self) -> &'static [&'static str] {
        &["service_role", "queue", "pipeline"]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let spec = Self::spec(cx);
        self.check_spec(cx, &spec).await?;
        let org = cx.s.workbench_org.clone();
        let role_arn = cx.role_arn();
        // Look up before every attempt: a create whose answer was lost must not register the
        // device twice.
        let found = cx
            .wb(DEVICE, || async {
                let existing = cx.wbc().devices_named(&org, &spec.name).await?;
                match existing.into_iter().next() {
                    Some(d) => Ok((d, false)),
                    None => cx.wbc().create_device(&org, &spec).await.map(|d| (d, true)),
                }
            })
            .await?;
        let id = match found {
            (d, true) => {
                cx.j().device_id = Some(d.id.clone());
                cx.j().device_status = d.status.clone();
                d.id
            }
            // Ours when it points at our role: a rerun after a crash adopts it.
            (d, false)
                if d.device_spec.get("role_arn").and_then(Json::as_str) == Some(role_arn.as_str()) =>
            {
                cx.j().device_id = Some(d.id.clone());
                if !self.differences(cx, &d).is_empty() {
                    self.repair(cx, &[]).await?;
                }
                d.id
            }
            (d, false) => {
                return Err(fail(
                    DEVICE,
                    format!("Workbench already has a device named {:?} ({}) for another role; import it (terraform import) or choose another name", d.name, d.id),
                ))
            }
        };
        if cx.s.wait_for_healthy {
            self.wait_healthy(cx, &id).await?;
        }
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed, StepError> {
        let Some(id) = cx.j().device_id.clone() else {
            return Ok(Observed::NotCreated);
        };
        let Some(d) = cx.wb(DEVICE, || cx.wbc().device(&id)).await? else {
            return Ok(Observed::Gone);
        };
        cx.j().device_status = d.status.clone();
        if d.status.as_deref() == Some("unhealthy") {
            cx.warn(
                "Security device is not healthy",
                format!(
                    "Workbench reports the security device {:?} unhealthy: {}",
                    d.name,
                    d.attributes
                        .get("status_details")
                        .cloned()
                        .unwrap_or(Json::Null)
                ),
            );
        }
        Ok(Observed::Present(self.differences(cx, &d)))
    }
    async fn repair(&self, cx: &Cx, _problems: &[String]) -> Result<(), StepError> {
        let id = cx
            .j()
            .device_id
            .clone()
            .ok_or_else(|| fail(DEVICE, "no device recorded"))?;
        let spec = Self::spec(cx);
        self.check_spec(cx, &spec).await?;
        let attrs = json!({"name": spec.name, "location": spec.location, "plugin_slug": spec.plugin_slug, "device_spec": spec.device_spec});
        let d = cx
            .wb(DEVICE, || cx.wbc().update_device(&id, attrs.clone()))
            .await?;
        cx.j().device_status = d.status.clone();
        if cx.s.wait_for_healthy {
            self.wait_healthy(cx, &id).await?;
        }
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(id) = cx.j().device_id.clone() else {
            return Ok(());
        };
        cx.wb(DEVICE, || cx.wbc().delete_device(&id)).await
    }
}
