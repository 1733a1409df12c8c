//! Where a resource's Workbench security device lives, pinned in its state: the Workbench
//! organization (`workbench_organization_id`) and the Workbench itself (`workbench_url`).
//! Shared by every resource that registers a device (CloudTrail, SentinelOne, Wiz).
//!
//! A provider pointed at another organization must never make the device look "gone" (that
//! re-registers it in the new organization and orphans the old one):
//! - reads, updates and destroys act in the pinned organization, not the provider's current
//!   one, and first check that the provider's API key can still see it (a key that cannot
//!   would answer 404 for the device, which reads as "already deleted");
//! - a plan in which the organization changed replaces the resource (`requires_replace`),
//!   with a warning naming both organizations: destroying the old object deletes the device
//!   in the old organization, the create registers one in the new;
//! - a changed Workbench URL is an error: the old device can only be deleted through the old
//!   Workbench, and the provider does not send its API key to a Workbench it is no longer
//!   configured for.
//!
//! State written before these attributes existed has neither: the first refresh fills them
//! (the organization from the device's own `organization` relationship when Workbench gives
//! it, else the provider's), and a plan without refresh fills them without a replacement.
use crate::resources::support::common::str_of;
use crate::resources::ExpelData;
use tfplugin::diag::Diagnostics;
use tfplugin::schema::Attribute;
use tfplugin::value::Value;

pub const ORG: &str = "workbench_organization_id";
pub const URL: &str = "workbench_url";

/// The two pinned attributes, for a resource's schema.
pub fn attributes() -> [Attribute; 2] {
    [
        Attribute::string(ORG)
            .description("Workbench organization the security device is registered in (pinned). When the provider's `organization_id` changes, the plan replaces the resource: the device in this organization is deleted and a new one is registered in the provider's organization.")
            .computed()
            .use_state_for_unknown()
            .requires_replace(),
        Attribute::string(URL)
            .description("Workbench the security device is registered with (pinned). A provider now configured for another Workbench is an error, never a re-registration.")
            .computed()
            .use_state_for_unknown(),
    ]
}

/// The provider's Workbench, as pinned (normalized: `https://workbench.expel.io/`).
pub fn current_url(data: &ExpelData) -> String {
    data.workbench.base_url().to_string()
}

/// Records where the device lives in a state or planned value.
pub fn record(v: &mut Value, org: &str, data: &ExpelData) {
    crate::resources::support::common::set(v, ORG, Value::string(org));
    crate::resources::support::common::set(v, URL, Value::string(current_url(data)));
}

/// The pinned Workbench must be the provider's: otherwise an error naming both.
fn same_workbench(data: &ExpelData, state: &Value, diags: &mut Diagnostics) -> bool {
    let pinned = str_of(state, URL);
    let now = current_url(data);
    if pinned.is_empty() || pinned == now {
        return true;
    }
    diags.error(
        "The provider points at another Workbench",
        format!(
            "This security device was registered with the Workbench at {pinned}, but the provider is configured for {now}. \
             It cannot be read, replaced or deleted through another Workbench, and the provider does not send its API key to a Workbench it is not configured for. \
             Set the provider's `workbench_url` (or EXPEL_WORKBENCH_URL) back to {pinned}; or, to leave that device behind on purpose, \
             `terraform state rm` this resource and delete the device in that Workbench yourself."
        ),
    );
    false
}

/// Whether the provider's API key sees organization `pinned` (the device's), which differs
/// from the provider's `current` one.
async fn reachable(data: &ExpelData, pinned: &str, current: &str, diags: &mut Diagnostics) -> bool {
    match data.workbench.organization(pinned).await {
        Ok(_) => true,
        Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => {
            diags.error(
                "The device's Workbench organization is out of reach",
                format!(
                    "This security device lives in Workbench organization {pinned}; the provider now points at {current}, and its API key cannot see {pinned} ({e}). \
                     Replacing the resource would register a device in {current} and could not delete the one in {pinned}, leaving it orphaned. \
                     Set the provider's `organization_id` (or EXPEL_ORGANIZATION_ID) back to {pinned}, with an API key that sees it; or, to leave that device behind on purpose, \
                     `terraform state rm` this resource and delete the device in Workbench yourself."
                ),
            );
            false
        }
        Err(e) => {
            diags.error(
                "Cannot read the device's Workbench organization",
                format!("{e}. The security device lives in organization {pinned}; the provider points at {current}."),
            );
            false
        }
    }
}

/// The organization an existing object's device lives in, for a read, update or destroy:
/// the pinned one (checked reachable when the provider now points elsewhere), or, for state
/// that pins none yet, the device's own organization (else the provider's `current`). `None`
/// after an error diagnostic.
pub async fn organization(
    data: &ExpelData,
    state: &Value,
    current: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    if !same_workbench(data, state, diags) {
        return None;
    }
    let pinned = str_of(state, ORG);
    if pinned.is_empty() {
        return Some(discovered(data, state, current).await);
    }
    if pinned != current && !reachable(data, &pinned, current, diags).await {
        return None;
    }
    Some(pinned)
}

/// For state written before the pin: the organization of the recorded device, when
/// Workbench says; else the provider's.
async fn discovered(data: &ExpelData, state: &Value, current: &str) -> String {
    let id = str_of(state, "id");
    if id.is_empty() {
        return current.to_string();
    }
    match data.workbench.device(&id).await {
        Ok(Some(d)) => d.organization_id.unwrap_or_else(|| current.to_string()),
        _ => current.to_string(),
    }
}

/// Plans the pins. On create: where the provider points. On update: a changed Workbench is
/// an error (returns false); a changed organization is planned as the provider's, which
/// replaces the resource, with a warning naming both organizations and `consequences` (what
/// else the replacement re-makes, in words, may be empty).
pub async fn plan(
    data: &ExpelData,
    prior: &Value,
    planned: &mut Value,
    current: &str,
    consequences: &str,
    diags: &mut Diagnostics,
) -> bool {
    if prior.is_null() {
        record(planned, current, data);
        return true;
    }
    if !same_workbench(data, prior, diags) {
        return false;
    }
    let mut pinned = str_of(prior, ORG);
    if pinned.is_empty() {
        // State from before the pin, planned without a refresh: record where the device is
        // (no replacement for that); a later plan replaces it if that is not `current`.
        pinned = discovered(data, prior, current).await;
        record(planned, &pinned, data);
        return true;
    }
    if pinned != current {
        if !reachable(data, &pinned, current, diags).await {
            return false;
        }
        let device = match str_of(prior, "id") {
            id if id.is_empty() => "its security device".to_string(),
            id => format!("security device {id}"),
        };
        let (old, new) = (label(data, &pinned).await, label(data, current).await);
        diags.warning(
            "Workbench organization changed: the resource will be replaced",
            format!(
                "This resource's device lives in Workbench organization {old}; the provider now points at {new}. \
                 The plan replaces the resource: destroying it deletes {device} in {old}, then a new device is registered in {new}.{} \
                 If the organization changed by mistake, set the provider's `organization_id` (or EXPEL_ORGANIZATION_ID) back to {pinned} and plan again.",
                if consequences.is_empty() { String::new() } else { format!(" {consequences}") }
            ),
        );
    }
    record(planned, current, data);
    true
}

/// `Name (id)`, or the id when Workbench does not say.
async fn label(data: &ExpelData, id: &str) -> String {
    match data.workbench.organization(id).await {
        Ok(o) => format!("{:?} ({id})", o.name),
        Err(_) => id.to_string(),
    }
}
