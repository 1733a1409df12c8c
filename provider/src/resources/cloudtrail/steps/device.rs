//! The security device in Workbench (guide step 8): the shared device step, told by `Cx`
//! that the device points at our role and queue.
use serde_json::{json, Value as Json};

use super::{Cx, Piece};
use crate::clients::workbench::{DeviceSpec, SecurityDevice};
use crate::resources::support::device_step::{
    field_differences, DeviceAt, DeviceGuide, IdStatus, LostAnswer,
};

pub use crate::resources::support::device_step::WorkbenchDevice;

impl DeviceGuide for Cx {
    const TITLE: &'static str = "Step 8: register AWS CloudTrail as a security device in Workbench";
    const DEVICE: Piece = Piece::WorkbenchDevice;
    const NEEDS: &'static [Piece] = &[Piece::ServiceRole, Piece::Queue, Piece::Pipeline];
    const LOST_ANSWER: LostAnswer = LostAnswer::LookEveryTime;
    const NOUN: &'static str = "security device";
    const SECRET: Option<(&'static str, &'static str)> = None;

    fn device_at(&self) -> DeviceAt<'_> {
        DeviceAt::new(self.wbc(), &self.s.workbench_org, &self.s.name)
    }
    fn spec(&self) -> DeviceSpec {
        DeviceSpec {
            name: self.s.name.clone(),
            location: self.s.device_location.clone(),
            device_type: "CLOUD".into(),
            plugin_slug: self.s.plugin_slug.clone(),
            device_spec: json!({
                "role_arn": self.role_arn(),
                "role_session_name": self.s.role_session_name,
                "region": self.loc.region,
                "sqs_queue_url": self.j().queue_url.clone().unwrap_or_default(),
            }),
        }
    }
    /// Ours when it points at our role: a rerun after a crash adopts it.
    fn is_ours(&self, d: &SecurityDevice) -> bool {
        d.device_spec.get("role_arn").and_then(Json::as_str) == Some(self.role_arn().as_str())
    }
    fn not_ours(&self, d: &SecurityDevice) -> String {
        format!("Workbench already has a device named {:?} ({}) for another role; import it (terraform import) or choose another name", d.name, d.id)
    }
    fn spec_differences(&self, d: &SecurityDevice, want: &DeviceSpec) -> Vec<String> {
        let keys = want.device_spec.as_object().into_iter().flatten();
        field_differences(d, want, keys.map(|(k, _)| k.as_str()))
    }
    fn journal_device<R>(&self, f: impl FnOnce(IdStatus) -> R) -> R {
        let j = &mut *self.j();
        f((&mut j.device_id, &mut j.device_status))
    }
    fn warn_unhealthy(&self, detail: String) {
        self.warn("Security device is not healthy", detail);
    }
    fn wait_for_healthy(&self) -> bool {
        self.s.wait_for_healthy
    }
    fn credentials_changed_at(&self) -> Option<std::time::Instant> {
        self.j().credentials_changed
    }
}
