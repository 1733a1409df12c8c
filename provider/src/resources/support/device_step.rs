//! The step every guide ends with: the security device in Workbench. One step for the three
//! guides; what differs between them (plugin and device_spec, which device with our name is
//! ours, how the secret Workbench needs is obtained, what the journal keeps, the health wait)
//! is what their step contexts tell it through [`DeviceGuide`].
//!
//! A device with our name in the organization is adopted when it is ours and refused
//! otherwise; the device_spec is checked against the plugin's JSON schema before every write;
//! a secret Workbench keeps is sent only while it is fresh (it cannot be read back).
use async_trait::async_trait;
use serde_json::{json, Value as Json};

use crate::clients::workbench::{
    check_device_spec, DeviceSpec, SecurityDevice, WorkbenchClient, WorkbenchError,
};
use crate::engine::{Observed, Problem, Step, StepContext, StepError};
use crate::resources::support::create_once::{create_once, or_look_again, Look, Made};
use crate::resources::support::device_health::{self, NotHealthy};

/// How a create whose answer was lost is kept from registering the device twice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LostAnswer {
    /// The spec is checked first; the device is looked for by name before every send, and
    /// the health wait follows an adoption too.
    LookEveryTime,
    /// The device is looked for by name once; after a send whose failure may hide a
    /// success, our device is looked for again before the next send.
    LookAfterLoss,
    /// The device is looked for by name once and the create sent like any call; when the
    /// whole create failed and recorded no device, it runs once more from the look.
    RunAgain,
}

/// What a guide's step context tells the Workbench device step.
#[async_trait]
pub trait DeviceGuide: StepContext {
    /// The step's title, and the `step` of its errors.
    const TITLE: &'static str;
    /// The step's id among the resource's steps.
    const DEVICE: Self::Id;
    const NEEDS: &'static [Self::Id];
    const LOST_ANSWER: LostAnswer;
    /// The device in the unhealthy warning, e.g. "security device".
    const NOUN: &'static str;
    /// The device_spec key of the secret Workbench keeps, and the stand-in the schema check
    /// puts there when no fresh secret is at hand.
    const SECRET: Option<(&'static str, &'static str)>;

    /// Where the device lives: the Workbench client, the organization and the device name.
    fn device_at(&self) -> DeviceAt<'_>;
    /// Runs `f` on the journal's device id and status.
    fn journal_device<R>(&self, f: impl FnOnce(IdStatus) -> R) -> R;
    /// The device as we register it, with the fresh secret when one is at hand.
    fn spec(&self) -> DeviceSpec;
    /// A device with our name that is ours to adopt.
    fn is_ours(&self, d: &SecurityDevice) -> bool;
    /// Why a device with our name that is not ours is refused.
    fn not_ours(&self, d: &SecurityDevice) -> String;
    /// The differences in what the guide owns beyond name, location and plugin.
    fn spec_differences(&self, d: &SecurityDevice, want: &DeviceSpec) -> Vec<String>;
    fn device_id(&self) -> Option<String> {
        self.journal_device(|(id, _)| id.clone())
    }
    fn record_status(&self, status: Option<String>) {
        self.journal_device(|(_, s)| *s = status);
    }
    /// Records a device read or written.
    fn record(&self, d: &SecurityDevice) {
        self.journal_device(|(id, s)| {
            *id = Some(d.id.clone());
            *s = d.status.clone();
        });
    }
    /// Records a device with our name found before any create.
    fn record_adopted(&self, d: &SecurityDevice) {
        self.journal_device(|(id, _)| *id = Some(d.id.clone()));
    }
    /// The device is read once per operation (and after each write) when the guide keeps it.
    fn cache(&self, _d: Option<SecurityDevice>) {}
    fn cached(&self) -> Option<SecurityDevice> {
        None
    }
    /// Workbench has the fresh secret: it is not sent again.
    fn secret_handed_over(&self) {}
    fn warn_unhealthy(&self, detail: String);
    /// Makes the secret Workbench needs when none is at hand (`adopting`: for a device found
    /// with our name rather than a new one).
    async fn fresh_secret(&self, _adopting: bool) -> Result<(), StepError> {
        Ok(())
    }
    /// Checks made before the device is created or changed.
    async fn check_before_write(&self) -> Result<(), StepError> {
        Ok(())
    }
    /// Attributes a repair's PATCH sets besides name, location, plugin and device_spec.
    async fn more_attributes(&self, _attrs: &mut Json) -> Result<(), StepError> {
        Ok(())
    }
    /// What follows the create of a new device (recorded already).
    async fn after_create(&self, d: SecurityDevice) -> Result<SecurityDevice, StepError> {
        Ok(d)
    }
    /// Wait, after the device is created or changed, until Workbench reports it healthy.
    fn wait_for_healthy(&self) -> bool {
        false
    }
    /// An unhealthy verdict is expected for now (a Wiz GovCloud device before Expel enables
    /// ingestion): the wait ends with it as a warning (`warn_unhealthy`) instead of failing.
    fn unhealthy_expected(&self) -> bool {
        false
    }
    /// When this run made or changed the credentials the device uses (`device_health`).
    fn credentials_changed_at(&self) -> Option<std::time::Instant> {
        None
    }
    /// The error of a health wait that failed.
    fn not_healthy(&self, e: &NotHealthy) -> String {
        e.message.clone()
    }
}

/// The journal's device id and status (`DeviceGuide::journal_device`).
pub type IdStatus<'a> = (&'a mut Option<String>, &'a mut Option<String>);

/// Where a device lives (`DeviceGuide::device_at`).
pub struct DeviceAt<'a> {
    pub workbench: &'a WorkbenchClient,
    pub org: &'a str,
    pub name: &'a str,
}

impl<'a> DeviceAt<'a> {
    pub fn new(workbench: &'a WorkbenchClient, org: &'a str, name: &'a str) -> DeviceAt<'a> {
        DeviceAt {
            workbench,
            org,
            name,
        }
    }
}

pub struct WorkbenchDevice;

fn fail<C: DeviceGuide>(e: impl std::fmt::Display) -> StepError {
    StepError::new(C::TITLE, e)
}

async fn wb<C, T, F, Fut>(cx: &C, op: F) -> Result<T, StepError>
where
    C: DeviceGuide,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, WorkbenchError>>,
{
    cx.deadline()
        .retry(op)
        .await
        .map_err(|e| StepError::caused_by(C::TITLE, e))
}

/// `device_spec` fields of `want` that the device does not have, in words.
pub fn field_differences<'a>(
    d: &SecurityDevice,
    want: &DeviceSpec,
    keys: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut p = Vec::new();
    for k in keys {
        let v = &want.device_spec[k];
        if d.device_spec.get(k) != Some(v) {
            p.push(format!(
                "device {k} is {} instead of {v}",
                d.device_spec.get(k).cloned().unwrap_or(Json::Null)
            ));
        }
    }
    p
}

fn differences<C: DeviceGuide>(cx: &C, d: &SecurityDevice) -> Vec<String> {
    let want = cx.spec();
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
    p.extend(cx.spec_differences(d, &want));
    p
}

/// Validates the device_spec against the plugin's JSON schema before any call (with a
/// stand-in for a secret Workbench already holds).
async fn check_spec<C: DeviceGuide>(cx: &C, spec: &DeviceSpec) -> Result<(), StepError> {
    let plugins = wb(cx, || cx.device_at().workbench.plugins()).await?;
    let mut probe = spec.device_spec.clone();
    if let (Some((key, stand_in)), Some(o)) = (C::SECRET, probe.as_object_mut()) {
        o.entry(key)
            .or_insert_with(|| Json::String(stand_in.into()));
    }
    check_device_spec(&plugins, &spec.plugin_slug, &probe).map_err(fail::<C>)
}

/// Our device, read once per operation (and after each write) when the guide keeps it.
async fn device<C: DeviceGuide>(cx: &C) -> Result<Option<SecurityDevice>, StepError> {
    if let Some(d) = cx.cached() {
        return Ok(Some(d));
    }
    let Some(id) = cx.device_id() else {
        return Ok(None);
    };
    let d = wb(cx, || cx.device_at().workbench.device(&id)).await?;
    cx.cache(d.clone());
    Ok(d)
}

/// With `wait_for_healthy`: Workbench's verdict on the credentials just handed over.
async fn settle<C: DeviceGuide>(cx: &C) -> Result<(), StepError> {
    if !cx.wait_for_healthy() {
        return Ok(());
    }
    let id = cx
        .device_id()
        .ok_or_else(|| fail::<C>("no device recorded"))?;
    match device_health::wait_healthy(
        cx.device_at().workbench,
        cx.deadline(),
        &id,
        cx.credentials_changed_at(),
    )
    .await
    {
        Ok(d) => {
            cx.record(&d);
            cx.cache(Some(d));
            Ok(())
        }
        Err(e) => {
            if e.status.is_some() {
                cx.record_status(e.status.clone());
                if cx.unhealthy_expected() {
                    cx.warn_unhealthy(e.message);
                    return Ok(());
                }
            }
            Err(fail::<C>(cx.not_healthy(&e)))
        }
    }
}

/// A device with our name: adopted when it is ours (and brought to the desired state).
async fn adopt<C: DeviceGuide>(cx: &C, d: SecurityDevice) -> Result<(), StepError> {
    if !cx.is_ours(&d) {
        return Err(StepError::refused(C::TITLE, cx.not_ours(&d)));
    }
    cx.record_adopted(&d);
    cx.cache(Some(d.clone()));
    cx.fresh_secret(true).await?;
    if !differences(cx, &d).is_empty() {
        WorkbenchDevice.repair(cx, &[]).await?;
    }
    Ok(())
}

/// A device our create made: recorded at once, so a failure from here on still leaves it in
/// state.
async fn created<C: DeviceGuide>(cx: &C, d: SecurityDevice) -> Result<(), StepError> {
    cx.secret_handed_over();
    cx.record(&d);
    let d = cx.after_create(d).await?;
    cx.record(&d);
    cx.cache(Some(d));
    settle(cx).await
}

async fn create<C: DeviceGuide>(cx: &C) -> Result<(), StepError> {
    let at = cx.device_at();
    let (org, name) = (at.org, at.name);
    let named = || async {
        Ok::<_, WorkbenchError>(
            cx.device_at()
                .workbench
                .devices_named(org, name)
                .await?
                .into_iter()
                .next(),
        )
    };
    if C::LOST_ANSWER == LostAnswer::LookEveryTime {
        let spec = cx.spec();
        check_spec(cx, &spec).await?;
        let made = create_once(cx.deadline(), C::TITLE, Look::First, named, || {
            at.workbench.create_device(org, &spec)
        })
        .await?;
        return match made {
            Made::Created(d) => created(cx, d).await,
            Made::Found(d) => {
                adopt(cx, d).await?;
                settle(cx).await
            }
        };
    }
    if let Some(d) = wb(cx, named).await? {
        return adopt(cx, d).await;
    }
    cx.fresh_secret(false).await?;
    let spec = cx.spec();
    check_spec(cx, &spec).await?;
    cx.check_before_write().await?;
    let send = || at.workbench.create_device(org, &spec);
    if C::LOST_ANSWER == LostAnswer::RunAgain {
        return created(cx, wb(cx, send).await?).await;
    }
    let ours = || async {
        Ok(at
            .workbench
            .devices_named(org, name)
            .await?
            .into_iter()
            .find(|d| cx.is_ours(d)))
    };
    match create_once(cx.deadline(), C::TITLE, Look::AfterLostAnswer, ours, send).await? {
        Made::Created(d) => created(cx, d).await,
        Made::Found(d) => {
            // Made by our lost create, with our secret; repair sets what may differ.
            cx.record(&d);
            cx.cache(Some(d));
            WorkbenchDevice.repair(cx, &[]).await
        }
    }
}

#[async_trait]
impl<C: DeviceGuide> Step<C> for WorkbenchDevice {
    fn id(&self) -> C::Id {
        C::DEVICE
    }
    fn title(&self) -> &'static str {
        C::TITLE
    }
    fn needs(&self) -> &'static [C::Id] {
        C::NEEDS
    }
    async fn create(&self, cx: &C) -> Result<(), StepError> {
        if C::LOST_ANSWER == LostAnswer::RunAgain {
            return or_look_again(|| create(cx), || cx.device_id().is_some()).await;
        }
        create(cx).await
    }
    async fn observe(&self, cx: &C) -> Result<Observed<C::Cause>, StepError> {
        if cx.device_id().is_none() {
            return Ok(Observed::NotCreated);
        }
        cx.cache(None);
        let Some(d) = device(cx).await? else {
            return Ok(Observed::Gone);
        };
        cx.record(&d);
        if d.status.as_deref() == Some("unhealthy") {
            cx.warn_unhealthy(format!(
                "Workbench reports the {} {:?} unhealthy: {}",
                C::NOUN,
                d.name,
                d.attributes
                    .get("status_details")
                    .cloned()
                    .unwrap_or(Json::Null)
            ));
        }
        Ok(Observed::differs(differences(cx, &d)))
    }
    async fn repair(&self, cx: &C, _problems: &[Problem<C::Cause>]) -> Result<(), StepError> {
        let id = cx
            .device_id()
            .ok_or_else(|| fail::<C>("no device recorded"))?;
        let spec = cx.spec();
        check_spec(cx, &spec).await?;
        cx.check_before_write().await?;
        let mut attrs = json!({"name": spec.name, "location": spec.location, "plugin_slug": spec.plugin_slug, "device_spec": spec.device_spec});
        cx.more_attributes(&mut attrs).await?;
        let d = wb(cx, || {
            cx.device_at().workbench.update_device(&id, attrs.clone())
        })
        .await?;
        cx.secret_handed_over();
        cx.record(&d);
        cx.cache(Some(d));
        settle(cx).await
    }
    async fn delete(&self, cx: &C) -> Result<(), StepError> {
        let Some(id) = cx.device_id() else {
            return Ok(());
        };
        wb(cx, || cx.device_at().workbench.delete_device(&id)).await
    }
}
