//! Resource `expel_wiz_device`: the Wiz guide (Wiz Cloud and Wiz Defend) as one resource.
//!
//! Secrets: the service account's client secret goes straight to the Workbench device and is
//! never stored; a repair that needs it (device deleted, secret rotated outside Terraform)
//! rotates it. The device's webhook password is read from Workbench whenever the Wiz
//! integration is created or repaired, so it is not kept in state either.
use super::support::common::{bool_of, needs_default, opt, set, str_of, timeouts_block};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::functions::soc_email::soc_email;
use super::support::guided::{plan_repairs, Closed, Fixes, Guided, Import, Op, Opening, Plan};
use super::support::ownership::{owner_in, Owner, OWNER_ATTR, OWNER_DESCRIPTION_TEXT};
use super::support::workbench_pin;
use super::ExpelData;
use crate::clients::wiz::{WizClient, WizCloud, WizError};
use crate::engine::{Deadline, Fix, Step, StepError};
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::provider::{Ctx, PlanInput};
use tfplugin::schema::{validators, Attribute, Block, FnValidator, NestedBlock, Schema};
use tfplugin::value::{Type, Value};

mod access;
mod steps;

pub use access::WizAccess;

use steps::{Cx, Journal, Piece, Settings};

/// How long an operation may take when `timeouts` does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

pub struct WizDevice;

/// Every severity of the Wiz UI; checked against the tenant's `Severity` enum.
pub const ALL_SEVERITIES: &[&str] = &["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];
/// Our best reading of the scopes behind the guide's fixed "Expel API" permissions: read
/// what Expel triages (issues, detections, resources, cloud events, projects) and write
/// issues (status changes and comments from synchronization rules).
pub const DEFAULT_SCOPES: &[&str] = &[
    "read:issues",
    "write:issues",
    "read:detections",
    "read:projects",
    "read:resources",
    "read:cloud_events",
];
const DEFAULT_ROLE: &str = "Global Incident Response Analyst";
/// What the GovCloud legal addendum is and whom to ask (the guide's prerequisites).
const GOVCLOUD_ADDENDUM: &str = "Expel ingests events from a Wiz GovCloud tenant only after a legal addendum to your agreement with Expel, which allows GovCloud ingestion of events for the integration. Your Customer Success Manager (CSM) or Expel Support (support@expel.com) helps you complete it; once it is complete, Expel enables event ingestion for the integration by hand and the device turns healthy in Workbench";
const GOVCLOUD_ADDENDUM_CONFIRMED: &str = "Set to `true` once the GovCloud legal addendum with Expel is complete (your Customer Success Manager or Expel Support helps with it). Required with `govcloud = true`: without it, plan fails.";

fn steps() -> Vec<&'static dyn Step<Cx>> {
    vec![
        &steps::ServiceAccount,
        &steps::WorkbenchDevice,
        &steps::ConsoleAccess,
        &steps::WebhookIntegration,
        &steps::AutomationRule,
    ]
}

/// Computed ids of each piece: unknown in a plan that re-creates it.
const IDS_OF_PIECE: &[(Piece, &[&str])] = &[
    (Piece::ServiceAccount, &["service_account_id", "client_id"]),
    (
        Piece::WorkbenchDevice,
        &["id", "security_device_id", "webhook_url"],
    ),
    (Piece::WebhookIntegration, &["integration_id"]),
    (Piece::AutomationRule, &["automation_rule_id"]),
    (Piece::ConsoleAccess, &["user_id"]),
];

fn schema() -> Schema {
    let s = |n: &str, d: &str| Attribute::string(n).description(d);
    let strings = |n: &str| Attribute::new(n, Type::list(Type::String));
    let console = Block::new("Guide step 3: console access for Expel's analysts.")
        .attr(Attribute::bool("domain_validated").default(Value::Bool(false)).description("Set to `true` once Expel has told you the domain verification code (`domain_verification_code`) is validated. Then `expel.io` is added to the tenant's allowed login domains and the Expel Analyst user is invited. Setting it back to `false` removes both."))
        .attr(s("role_name", "Wiz role of the Expel Analyst user, looked up by name; an unknown name is a plan error listing the tenant's roles.").default(Value::string(DEFAULT_ROLE)).validator(validators::non_empty()));
    let mut block = Block::new("The Wiz onboarding guide (Wiz Cloud or Wiz Defend) as one resource: the Expel API service account, the Wiz security device in Workbench, console access for Expel, the Expel Webhook integration and the Expel Webhook Rule.")
            .attr(s("name", "Name of the security device in Workbench, e.g. `Acme Wiz`.").required().validator(validators::non_empty()))
            .attr(s("product", "`cloud` (Wiz Cloud: issues) or `defend` (Wiz Defend: detections). Changing it replaces the resource.").default(Value::string("cloud")).requires_replace().validator(validators::one_of(&["cloud", "defend"])))
            .attr(s("device_location", "Location shown for the device in Workbench.").default(Value::string("cloud")).validator(validators::non_empty()))
            .attr(s("api_endpoint_url", "The tenant's GraphQL endpoint given to Workbench. Default: the provider's `wiz.api_url`. Must be https and end in `/graphql` (http is accepted for loopback test servers only).").optional().computed().validator(FnValidator(check_api_url)))
            .attr(s("service_account_name", "Name of the Wiz service account (guide: `Expel Workbench`).").default(Value::string("Expel Workbench")).validator(validators::non_empty()))
            .attr(strings("scopes").optional().computed().description(&format!("Scopes of the service account. The guide's \"Expel API\" deployment has fixed permissions that are not published; the default is our best reading: `{}`.", DEFAULT_SCOPES.join("`, `"))))
            .attr(s("organization_name", "Your organization's name as Expel knows it; the Expel Analyst is `soc+<organization>@expel.io`. Default: the Workbench organization's name.").optional().computed().validator(validators::non_empty()))
            .attr(Attribute::bool("sync_rules").optional().computed().description("Guide step 4: Expel's synchronization rules (status syncing). Default `true` for Wiz Cloud; Wiz Defend has no status syncing, so it cannot be set to `true` there. No public API toggles them; the value is kept on the Workbench device as `properties.sync_rules_enabled` (a guess at where Workbench's Disable/Enable switch lives), and a change made in Workbench is drift."))
            .attr(strings("severities").optional().computed().description("Severities the automation rule forwards. Default: every severity the tenant offers (`INFORMATIONAL`, `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`). Checked against the tenant's `Severity` enum; an empty list is an error."))
            .attr(Attribute::bool("wait_for_healthy").default(Value::Bool(false)).description("After the Workbench device is created or changed, wait (within the create/update timeout) until Workbench reports it healthy, i.e. it signed in to Wiz with the client id and secret and read issues (Wiz Cloud) or detections (Wiz Defend); fail naming the device status otherwise; with `govcloud`, an unhealthy verdict is a warning instead (the device is unhealthy until Expel enables event ingestion). Client-side only."))
            .attr(Attribute::bool("govcloud").default(Value::Bool(false)).description("The Wiz tenant is a government tenant: Wiz on AWS GovCloud (`gov.wiz.io`) or Wiz for Government (FedRAMP, `wiz.us`). Expel ingests its events only after a legal addendum (see `govcloud_addendum_confirmed`), and enables ingestion by hand: until then the device is unhealthy, which is a warning (also with `wait_for_healthy`). The provider's `wiz.api_url` and `wiz.auth_url` and `api_endpoint_url` must then be the tenant's government endpoints; Wiz hosts of the other kind are an error. See [Wiz in GovCloud](#wiz-in-govcloud-govcloud)."))
            .attr(Attribute::bool("govcloud_addendum_confirmed").default(Value::Bool(false)).description(GOVCLOUD_ADDENDUM_CONFIRMED))
            .attr(s("webhook_name", "Name of the Wiz webhook integration.").default(Value::string("Expel Webhook")).validator(validators::non_empty()))
            .attr(s("rule_name", "Name of the Wiz automation rule.").default(Value::string("Expel Webhook Rule")).validator(validators::non_empty()))
            .attr(s("id", "The Workbench security device id (the import id).").computed().use_state_for_unknown())
            .attr(s(OWNER_ATTR, OWNER_DESCRIPTION_TEXT).computed().use_state_for_unknown())
            .attr(s("security_device_id", "The Workbench security device id.").computed().use_state_for_unknown())
            .attr(s("wiz_api_url", "The Wiz tenant (GraphQL URL of the provider) this resource lives in; pinned: a provider pointing at another tenant is an error.").computed().use_state_for_unknown())
            .attr(s("service_account_id", "Id of the Wiz service account.").computed().use_state_for_unknown())
            .attr(s("client_id", "Client id of the Wiz service account (its secret is handed to Workbench and never stored).").computed().use_state_for_unknown())
            .attr(s("domain_verification_code", "The tenant's domain verification code (SPF value). Send it to Expel (support@expel.com, subject \"Wiz Integration\"); set `console_access.domain_validated = true` once Expel confirms.").computed().use_state_for_unknown())
            .attr(s("expel_user_email", "E-mail of the Expel Analyst user, `soc+<organization>@expel.io`.").computed())
            .attr(s("user_id", "Id of the Expel Analyst user in Wiz (null until console access is validated).").computed())
            .attr(s("webhook_url", "The Workbench webhook URL the integration posts to.").computed().use_state_for_unknown())
            .attr(s("integration_id", "Id of the Wiz webhook integration.").computed().use_state_for_unknown())
            .attr(s("automation_rule_id", "Id of the Wiz automation rule.").computed().use_state_for_unknown())
            .attr(s("device_status", "Workbench health of the device; an unhealthy device is a warning, not drift.").computed())
            .attr(Attribute::new("drift", Type::map(Type::String)).computed().description("What differs from the guide, per piece, in words; filled by refresh, emptied by the plan that repairs it."))
            .block(NestedBlock::single("console_access", console))
            .block(timeouts_block("10m"));
    for a in workbench_pin::attributes() {
        block = block.attr(a);
    }
    // Version 0 had no `owner`: the next plan records it and the apply re-marks the objects.
    Schema::new(1, block).readable_from(0)
}

/// What a replacement for a changed Workbench organization re-makes besides the device.
const REPLACED_WITH_ORGANIZATION: &str = "The Wiz service account, the Expel Webhook integration and rule, and the Expel Analyst user (with console access) are deleted and made again: the new device has new webhook credentials.";

/// https, ending in `/graphql`; http only for loopback test servers.
fn api_url_problem(s: &str) -> Option<String> {
    let u = match url::Url::parse(s) {
        Ok(u) => u,
        Err(_) => {
            return Some(format!(
                "{s:?} is not an absolute URL such as \"https://api.us17.app.wiz.io/graphql\""
            ))
        }
    };
    if !crate::clients::http::may_carry_secrets(&u) {
        return Some(format!(
            "{s:?} must use https (Wiz serves its API over TLS only)"
        ));
    }
    if !u.path().trim_end_matches('/').ends_with("/graphql") {
        return Some(format!("{s:?} is not a GraphQL endpoint: the path must end in /graphql, e.g. \"https://api.us17.app.wiz.io/graphql\""));
    }
    None
}

fn check_api_url(v: &Value, p: &AttrPath, d: &mut Diagnostics) {
    if let Some(problem) = v.as_str().and_then(api_url_problem) {
        d.attr_error(
            p.clone(),
            "Unusable Wiz API endpoint URL",
            format!("`{p}`: {problem}."),
        );
    }
}

/// With `govcloud`, every Wiz host in the endpoints (the provider's token and API URLs and
/// the device's `api_endpoint_url`) is a government one, and without it none is; hosts that
/// are not Wiz's (a test server) say nothing. False after an error naming `govcloud`.
fn check_environment(wiz: &WizClient, planned: &Value, diags: &mut Diagnostics) -> bool {
    let Some(govcloud) = planned.get("govcloud").and_then(Value::as_bool) else {
        return true;
    };
    let endpoint = planned
        .get("api_endpoint_url")
        .and_then(Value::as_str)
        .and_then(|u| url::Url::parse(u).ok());
    let urls = [
        ("the provider's wiz.auth_url", Some(wiz.auth_url().clone())),
        ("the provider's wiz.api_url", Some(wiz.api_url().clone())),
        ("api_endpoint_url", endpoint),
    ];
    for (what, url) in urls {
        let Some(url) = url else { continue };
        let Some(cloud) = WizCloud::of(&url) else {
            continue;
        };
        if cloud.is_government() == govcloud {
            continue;
        }
        let fix = if govcloud {
            "Point it at your GovCloud tenant (the API Endpoint URL the Wiz console shows, e.g. https://api.<data center>.gov.wiz.io/graphql; the token URL follows it), or set govcloud = false if the tenant is not a GovCloud one"
        } else {
            "Set govcloud = true (and `govcloud_addendum_confirmed` once the legal addendum with Expel is complete), or point it at a commercial tenant"
        };
        diags.attr_error(
            AttrPath::root("govcloud"),
            if govcloud {
                "govcloud = true with a commercial Wiz endpoint"
            } else {
                "A Wiz GovCloud endpoint without govcloud = true"
            },
            format!(
                "`govcloud` is {govcloud}, but {what} {url} is {}. {fix}.",
                cloud.describe()
            ),
        );
        return false;
    }
    true
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
fn strings_of(v: &Value, k: &str) -> Option<Vec<String>> {
    v.get(k).and_then(Value::as_list).map(|l| {
        l.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}
fn list(v: &[String]) -> Value {
    Value::List(v.iter().cloned().map(Value::string).collect())
}
fn known(v: &Value, k: &str) -> bool {
    v.get(k).is_some_and(|x| x.is_known() && !x.is_null())
}

fn console(v: &Value) -> (bool, String) {
    let c = v.get("console_access").filter(|c| !c.is_null());
    (
        c.and_then(|c| c.get("domain_validated"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        c.and_then(|c| c.get("role_name"))
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_ROLE)
            .to_string(),
    )
}

/// The instance's owner: the device it registers (`name`) for its Wiz tenant.
fn owner(v: &Value) -> Option<Owner> {
    let known = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Some(Owner::derive(
        "expel_wiz_device",
        &[&known("wiz_api_url")?, &known("name")?],
    ))
}

fn settings(v: &Value, org: &str) -> Settings {
    let (domain_validated, role_name) = console(v);
    Settings {
        owner: Owner::recorded(v)
            .or_else(|| owner(v))
            .unwrap_or_else(|| Owner::derive("expel_wiz_device", &[])),
        name: str_of(v, "name"),
        product: opt_str(v, "product").unwrap_or_else(|| "cloud".into()),
        service_account_name: str_of(v, "service_account_name"),
        scopes: strings_of(v, "scopes")
            .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()),
        device_location: str_of(v, "device_location"),
        api_endpoint_url: str_of(v, "api_endpoint_url"),
        soc_email: str_of(v, "expel_user_email"),
        domain_validated,
        role_name,
        severities: strings_of(v, "severities")
            .unwrap_or_else(|| ALL_SEVERITIES.iter().map(|s| s.to_string()).collect()),
        webhook_name: str_of(v, "webhook_name"),
        rule_name: str_of(v, "rule_name"),
        workbench_org: org.to_string(),
        wait_for_healthy: bool_of(v, "wait_for_healthy", false),
        govcloud: bool_of(v, "govcloud", false),
        sync_rules: bool_of(
            v,
            "sync_rules",
            opt_str(v, "product").as_deref() != Some("defend"),
        ),
    }
}

/// Private state: what must survive between runs but is not a value for the user.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Private {
    #[serde(default)]
    sa_rotated_at: Option<String>,
    #[serde(default)]
    sa_rotation_known: bool,
    #[serde(default)]
    domain_added: bool,
    #[serde(default)]
    sa_unsure: bool,
}

fn journal(v: &Value, private: &[u8]) -> Journal {
    let p: Private = serde_json::from_slice(private).unwrap_or_default();
    Journal {
        sa_id: opt_str(v, "service_account_id"),
        client_id: opt_str(v, "client_id"),
        sa_rotated_at: p.sa_rotated_at,
        sa_rotation_known: p.sa_rotation_known,
        sa_unsure: p.sa_unsure,
        secret: None,
        device_id: opt_str(v, "id"),
        device_status: opt_str(v, "device_status"),
        webhook_url: opt_str(v, "webhook_url"),
        domain_code: opt_str(v, "domain_verification_code"),
        domain_added: p.domain_added,
        user_id: opt_str(v, "user_id"),
        integration_id: opt_str(v, "integration_id"),
        rule_id: opt_str(v, "automation_rule_id"),
    }
}

fn private_of(cx: &Cx) -> Vec<u8> {
    let j = cx.j();
    serde_json::to_vec(&Private {
        sa_rotated_at: j.sa_rotated_at.clone(),
        sa_rotation_known: j.sa_rotation_known,
        sa_unsure: j.sa_unsure,
        domain_added: j.domain_added,
    })
    .unwrap_or_default()
}

/// The state after an operation: the plan's values with the journal's ids filled in.
fn state_from(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
    let j = cx.j().clone();
    let mut v = base.clone();
    set(&mut v, "id", opt(j.device_id.clone()));
    set(&mut v, "security_device_id", opt(j.device_id));
    set(&mut v, "service_account_id", opt(j.sa_id));
    set(&mut v, "client_id", opt(j.client_id));
    set(&mut v, "domain_verification_code", opt(j.domain_code));
    set(&mut v, "user_id", opt(j.user_id));
    set(&mut v, "webhook_url", opt(j.webhook_url));
    set(&mut v, "integration_id", opt(j.integration_id));
    set(&mut v, "automation_rule_id", opt(j.rule_id));
    set(&mut v, "device_status", opt(j.device_status));
    workbench_pin::record(&mut v, &cx.s.workbench_org, &cx.data);
    set(
        &mut v,
        "drift",
        Value::Map(
            drift
                .into_iter()
                .map(|(k, x)| (k, Value::string(x)))
                .collect(),
        ),
    );
    v
}

/// Wiz gave the provider no token: the diagnostic names the provider settings to fix (the
/// error carries the token endpoint's answer, never the secret).
fn wiz_access_error(diags: &mut Diagnostics, e: &WizError) {
    match e {
        WizError::Auth {
            status: 400 | 401 | 403,
            ..
        } => diags.error("Wiz refused the provider's credentials", format!("{e}. Check the client secret `wiz.client_secret` (or WIZ_CLIENT_SECRET) and the client id `wiz.client_id` (or WIZ_CLIENT_ID) in the provider block: they must be those of a Wiz service account with admin scopes (Wiz: Settings > Access Management > Service Accounts).")),
        _ => diags.error("Cannot get a Wiz access token", format!("{e}. Check `wiz.auth_url` (or WIZ_AUTH_URL) and that the Wiz token endpoint is reachable, then plan again.")),
    }
}

/// True when a create recorded nothing it made (so there is nothing for state to keep).
fn made_nothing(j: &Journal) -> bool {
    j.sa_id.is_none()
        && !j.sa_unsure
        && j.device_id.is_none()
        && !j.domain_added
        && j.user_id.is_none()
        && j.integration_id.is_none()
        && j.rule_id.is_none()
}

impl WizDevice {
    fn org(&self, ctx: &Ctx<ExpelData>, diags: &mut Diagnostics) -> Option<String> {
        if ctx.data.access::<WizAccess>().is_none() {
            diags.error("Wiz access is not configured", "expel_wiz_device needs a Wiz service account with admin scopes: set the provider block `wiz { client_id, client_secret, api_url }` or WIZ_CLIENT_ID, WIZ_CLIENT_SECRET and WIZ_API_URL.");
            return None;
        }
        let Some(org) = ctx.data.organization_id.clone() else {
            diags.error("Missing Workbench organization id", "expel_wiz_device needs the Workbench organization id: set `organization_id` in the provider block or EXPEL_ORGANIZATION_ID.");
            return None;
        };
        Some(org)
    }

    fn tenant(&self, ctx: &Ctx<ExpelData>) -> String {
        ctx.data
            .access::<WizAccess>()
            .map(|w| w.client.api_url().to_string())
            .unwrap_or_default()
    }

    /// State pins the Wiz tenant: a provider now pointing elsewhere is an error, never "gone".
    fn check_pinned(&self, ctx: &Ctx<ExpelData>, state: &Value, diags: &mut Diagnostics) -> bool {
        let pinned = str_of(state, "wiz_api_url");
        let now = self.tenant(ctx);
        if pinned.is_empty() || pinned == now {
            return true;
        }
        diags.error("The provider points at another Wiz tenant", format!("This device's Wiz objects live in the tenant {pinned}, but the provider is configured for {now}. Point `wiz.api_url` back at {pinned}, or remove the resource from state."));
        false
    }

    fn cx(
        &self,
        ctx: &Ctx<ExpelData>,
        v: &Value,
        private: &[u8],
        org: &str,
        deadline: Deadline,
    ) -> Cx {
        Cx {
            data: ctx.data.clone(),
            s: settings(v, org),
            journal: Mutex::new(journal(v, private)),
            deadline,
            warnings: Mutex::new(Vec::new()),
            device: Mutex::new(None),
        }
    }

    /// After `terraform import <device id>`: fills the configuration-like attributes and
    /// the ids of the other pieces from what Workbench and Wiz hold.
    async fn hydrate_import(
        &self,
        ctx: &Ctx<ExpelData>,
        org: &str,
        state: &mut Value,
        diags: &mut Diagnostics,
    ) -> Option<()> {
        let id = opt_str(state, "id")?;
        let d = match ctx.data.workbench.device(&id).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                diags.error(
                    "No such security device",
                    format!("Workbench has no security device {id:?}."),
                );
                return None;
            }
            Err(e) => {
                diags.error("Cannot read the security device", e.to_string());
                return None;
            }
        };
        if d.plugin_slug != "wiz" {
            diags.error(
                "Not a Wiz device",
                format!(
                    "Security device {id:?} uses the plugin {:?}, not \"wiz\".",
                    d.plugin_slug
                ),
            );
            return None;
        }
        let wiz = ctx.data.access::<WizAccess>().map(|a| &a.client)?;
        let spec = |k: &str| {
            d.device_spec
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        set(state, "name", Value::string(d.name.clone()));
        set(state, "device_location", Value::string(d.location.clone()));
        set(
            state,
            "product",
            Value::string(spec("product").unwrap_or_else(|| "cloud".into())),
        );
        set(state, "api_endpoint_url", opt(spec("api_endpoint_url")));
        set(state, "security_device_id", Value::string(id.clone()));
        set(state, "wiz_api_url", Value::string(self.tenant(ctx)));
        set(state, "webhook_name", Value::string("Expel Webhook"));
        set(state, "wait_for_healthy", Value::Bool(false));
        // A device of a government tenant exists, so the addendum is taken as done.
        let government = WizCloud::of(wiz.api_url()).is_some_and(WizCloud::is_government);
        set(state, "govcloud", Value::Bool(government));
        set(
            state,
            "govcloud_addendum_confirmed",
            Value::Bool(government),
        );
        set(state, "rule_name", Value::string("Expel Webhook Rule"));
        let product = spec("product").unwrap_or_else(|| "cloud".into());
        let sync = steps::sync_rules_of(&d).unwrap_or(product == "cloud");
        set(state, "sync_rules", Value::Bool(sync));
        if let Some(cid) = spec("client_id") {
            match wiz.service_account_by_client_id(&cid).await {
                Ok(Some(sa)) => {
                    set(state, "service_account_id", Value::string(sa.id));
                    set(state, "service_account_name", Value::string(sa.name));
                    set(state, "scopes", list(&sa.scopes));
                    set(state, "client_id", Value::string(cid));
                }
                Ok(None) => diags.warning("Service account not found", format!("No Wiz service account has the device's client id {cid:?}; the next apply creates one.")),
                Err(e) => diags.warning("Cannot look up the service account", e.to_string()),
            }
        }
        let hook_url = steps::webhook_credentials(&d).map(|c| c.0);
        let mut integration_id = None;
        if let Ok(found) = wiz.integrations_named("Expel Webhook").await {
            integration_id = found
                .into_iter()
                .find(|i| Some(&i.url) == hook_url.as_ref())
                .map(|i| i.id);
        }
        set(state, "integration_id", opt(integration_id.clone()));
        let mut severities: Vec<String> = ALL_SEVERITIES.iter().map(|s| s.to_string()).collect();
        if let (Some(iid), Ok(rules)) = (
            &integration_id,
            wiz.automation_rules_named("Expel Webhook Rule").await,
        ) {
            if let Some(r) = rules.into_iter().find(|r| {
                r.actions
                    .iter()
                    .any(|a| a.integration_id.as_ref() == Some(iid))
            }) {
                if let Some(s) = r.severities.clone() {
                    severities = s;
                }
                // The imported instance is the owner the rule names (none on a rule from
                // before owners: then the next plan records one and the apply re-marks it).
                if let Some(o) = owner_in(r.description.as_deref()) {
                    set(state, OWNER_ATTR, Value::string(o));
                }
                set(state, "automation_rule_id", Value::string(r.id));
            }
        }
        set(state, "severities", list(&severities));
        let org = ctx
            .data
            .workbench
            .organization(org)
            .await
            .map(|o| o.name)
            .unwrap_or_default();
        let email = soc_email(&org).unwrap_or_default();
        set(state, "organization_name", Value::string(org));
        set(state, "expel_user_email", Value::string(email.clone()));
        let user = wiz
            .users_by_email(&email)
            .await
            .ok()
            .and_then(|u| u.into_iter().next());
        if user.is_some() {
            set(
                state,
                "console_access",
                Value::object([
                    ("domain_validated", Value::Bool(true)),
                    ("role_name", Value::string(DEFAULT_ROLE)),
                ]),
            );
        }
        set(state, "user_id", opt(user.map(|u| u.id)));
        Some(())
    }
}

#[async_trait]
impl Guided for WizDevice {
    type Cx = Cx;
    const TYPE_NAME: &'static str = "expel_wiz_device";
    const WHAT: &'static str = "the Wiz integration";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    const STATE_IDS: &'static [&'static str] = &[
        "id",
        "service_account_id",
        "client_id",
        "user_id",
        "integration_id",
        "automation_rule_id",
        "webhook_url",
        "domain_verification_code",
    ];
    // Console access always "exists" (it is tenant settings).
    const TRANSIENT: &'static [Piece] = &[Piece::ConsoleAccess];

    fn schema() -> Schema {
        schema()
    }

    fn validate(config: &Value, diags: &mut Diagnostics) {
        let product = config
            .get("product")
            .and_then(Value::as_str)
            .unwrap_or("cloud");
        if product == "defend" && config.get("sync_rules").and_then(Value::as_bool) == Some(true) {
            diags.attr_error(AttrPath::root("sync_rules"), "Synchronization rules are not available for Wiz Defend", "`sync_rules` cannot be true with product = \"defend\": Wiz status syncing exists for Wiz Cloud issues only (guide step 4). Remove `sync_rules` or set it to false.");
        }
        if let Some(l) = config.get("severities").and_then(Value::as_list) {
            if l.is_empty() {
                diags.attr_error(AttrPath::root("severities"), "No severities", "`severities` is empty, so the automation rule would forward nothing. Remove it (every severity, as the guide says) or list at least one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL.");
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, s) in l.iter().enumerate() {
                if let Some(s) = s.as_str() {
                    if !seen.insert(s) {
                        diags.attr_error(
                            AttrPath::root("severities").index(i),
                            "Duplicate severity",
                            format!("{s:?} is listed twice in `severities`."),
                        );
                    }
                }
            }
        }
        let confirmed = config.get("govcloud_addendum_confirmed");
        if config.get("govcloud").and_then(Value::as_bool) == Some(true)
            && confirmed.is_some_and(|c| c.is_known() && c.as_bool() != Some(true))
        {
            diags.attr_error(
                AttrPath::root("govcloud_addendum_confirmed"),
                "Wiz GovCloud needs the legal addendum first",
                format!("govcloud = true, but `govcloud_addendum_confirmed` is not true. {GOVCLOUD_ADDENDUM}. Contact your CSM or Expel Support, and once the addendum is complete set `govcloud_addendum_confirmed = true` and plan again."),
            );
        }
        if let Some(l) = config.get("scopes").and_then(Value::as_list) {
            if l.is_empty() {
                diags.attr_error(AttrPath::root("scopes"), "No scopes", "`scopes` is empty; an API-integration service account needs at least one scope. Remove it for the default.");
            }
        }
    }

    fn steps() -> Vec<&'static dyn Step<Cx>> {
        steps()
    }

    async fn open(
        &self,
        ctx: &Ctx<ExpelData>,
        o: Opening<'_>,
        diags: &mut Diagnostics,
    ) -> Result<Cx, Closed> {
        let Opening {
            op,
            values,
            prior,
            private,
            deadline,
        } = o;
        let org = self.org(ctx, diags).ok_or(Closed::Failed)?;
        if op == Op::Create {
            return Ok(self.cx(ctx, values, &[], &org, deadline));
        }
        if !self.check_pinned(ctx, prior, diags) {
            return Err(Closed::Failed);
        }
        // The device lives in the organization it was made in (a replacement for a changed
        // organization destroys with the provider already pointing at the new one).
        let org = workbench_pin::organization(&ctx.data, prior, &org, diags)
            .await
            .ok_or(Closed::Failed)?;
        if op == Op::Read && values.get("name").is_none_or(Value::is_null) {
            self.hydrate_import(ctx, &org, values, diags)
                .await
                .ok_or(Closed::Gone)?;
        }
        Ok(self.cx(ctx, values, private, &org, deadline))
    }

    fn state_from(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
        state_from(base, cx, drift)
    }

    fn private_of(cx: &Cx, _previous: &[u8]) -> Vec<u8> {
        private_of(cx)
    }

    fn warnings(cx: &Cx) -> Vec<(String, String)> {
        let found = cx.warnings.lock().map(|g| g.clone()).unwrap_or_default();
        found
            .into_iter()
            .map(|w| ("Security device is not healthy".to_string(), w))
            .collect()
    }

    async fn claim(cx: &Cx) -> Result<(), StepError> {
        // State from before owners existed: its automation rule becomes this instance's.
        steps::AutomationRule.claim_recorded(cx).await
    }

    async fn before_observe(&self, cx: &Cx, _diags: &mut Diagnostics) -> Result<(), StepError> {
        steps::ServiceAccount.find_unseen(cx).await
    }

    /// A lost create may have made a service account we have no id for.
    fn keep_when_gone(cx: &Cx) -> bool {
        cx.j().sa_unsure
    }

    fn made_nothing(cx: &Cx) -> bool {
        made_nothing(&cx.j())
    }

    fn plan(&self) -> Option<&dyn Plan> {
        Some(self)
    }

    fn import(&self) -> Option<&dyn Import> {
        Some(self)
    }
}

#[async_trait]
impl Plan for WizDevice {
    async fn modify_plan(
        &self,
        ctx: &Ctx<ExpelData>,
        input: &PlanInput<'_>,
        fixes: &Fixes,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        let Some(org) = self.org(ctx, diags) else {
            return;
        };
        if !input.prior.is_null() && !self.check_pinned(ctx, input.prior, diags) {
            return;
        }
        if !workbench_pin::plan(
            &ctx.data,
            input.prior,
            planned,
            &org,
            REPLACED_WITH_ORGANIZATION,
            diags,
        )
        .await
        {
            return;
        }
        let Some(wiz) = ctx.data.access::<WizAccess>().map(|a| &a.client) else {
            return;
        };
        if !check_environment(wiz, planned, diags) {
            return;
        }
        // The credentials are checked here, as SentinelOne's token is: a wrong secret fails
        // the plan instead of the apply's first call.
        if let Err(e) = wiz.authenticate().await {
            wiz_access_error(diags, &e);
            return;
        }
        set(planned, "wiz_api_url", Value::string(self.tenant(ctx)));
        if Owner::recorded(input.prior).is_none() {
            let o = owner(planned).map(|o| Value::string(o.as_str()));
            set(planned, OWNER_ATTR, o.unwrap_or(Value::unknown()));
        }
        // Defaults derived from inputs and the provider: the same answer at plan and apply.
        if needs_default(input.config, planned, "api_endpoint_url") {
            let url = wiz.api_url().to_string();
            if let Some(problem) = api_url_problem(&url) {
                diags.attr_error(AttrPath::root("api_endpoint_url"), "Unusable Wiz API endpoint URL", format!("`api_endpoint_url` defaults to the provider's wiz.api_url, and {problem}. Set `api_endpoint_url` or fix wiz.api_url."));
            }
            set(planned, "api_endpoint_url", Value::string(url));
        }
        if needs_default(input.config, planned, "scopes") {
            set(
                planned,
                "scopes",
                Value::List(DEFAULT_SCOPES.iter().map(|s| Value::string(*s)).collect()),
            );
        }
        let product = str_of(planned, "product");
        if !known(input.config, "sync_rules") {
            if input
                .config
                .get("sync_rules")
                .is_some_and(|v| !v.is_known())
            {
                set(planned, "sync_rules", Value::unknown());
            } else {
                set(planned, "sync_rules", Value::Bool(product != "defend"));
            }
        }
        if needs_default(input.config, planned, "organization_name") {
            match ctx.data.workbench.organization(&org).await {
                Ok(o) => set(planned, "organization_name", Value::string(o.name)),
                Err(e) => diags.error(
                    "Cannot read the Workbench organization",
                    format!("{e}. Set `organization_name`."),
                ),
            }
        }
        if let Some(name) = planned
            .get("organization_name")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            match soc_email(&name) {
                Some(e) => set(planned, "expel_user_email", Value::string(e)),
                None => diags.attr_error(AttrPath::root("organization_name"), "Unusable organization name", format!("{name:?} has no letters or digits to build soc+<organization>@expel.io from.")),
            }
        } else {
            set(planned, "expel_user_email", Value::unknown());
        }
        // Severities and role names are checked against what the tenant offers.
        let enum_check = !known(input.config, "severities")
            || input
                .config
                .get("severities")
                .and_then(Value::as_list)
                .is_some_and(|l| !l.is_empty());
        if enum_check {
            match wiz.enum_values("Severity").await {
                Ok(offered) if !offered.is_empty() => {
                    if needs_default(input.config, planned, "severities") {
                        let all: Vec<String> = ALL_SEVERITIES
                            .iter()
                            .map(|s| s.to_string())
                            .filter(|s| offered.contains(s))
                            .collect();
                        set(planned, "severities", list(&all));
                    } else if let Some(l) = strings_of(input.config, "severities") {
                        for (i, s) in l.iter().enumerate() {
                            if !offered.contains(s) {
                                diags.attr_error(AttrPath::root("severities").index(i), "Unknown severity", format!("{s:?} is not a severity of this Wiz tenant; it offers: {}.", offered.join(", ")));
                            }
                        }
                    }
                }
                Ok(_) | Err(_) => {
                    if needs_default(input.config, planned, "severities") {
                        set(
                            planned,
                            "severities",
                            Value::List(ALL_SEVERITIES.iter().map(|s| Value::string(*s)).collect()),
                        );
                    }
                }
            }
        }
        let (validated, role_name) = console(planned);
        if validated {
            match wiz.user_roles().await {
                Ok(roles) if !roles.iter().any(|r| r.name == role_name) => {
                    diags.attr_error(
                        AttrPath::root("console_access").attr("role_name"),
                        "Unknown Wiz role",
                        format!(
                            "This Wiz tenant has no role named {role_name:?}. Roles: {}.",
                            roles
                                .iter()
                                .map(|r| r.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                Ok(_) => {}
                Err(e) => diags.warning("Cannot list Wiz roles", e.to_string()),
            }
        } else {
            let code = opt_str(input.prior, "domain_verification_code");
            diags.warning(
                "Wiz console access: waiting for Expel to validate your domain verification code",
                match code {
                    Some(c) => format!("Send the domain verification code {c:?} (attribute `domain_verification_code`) to support@expel.com with the subject \"Wiz Integration\". Once Expel confirms it is validated, set `console_access {{ domain_validated = true }}` and apply: that adds expel.io to the allowed login domains and invites the Expel Analyst."),
                    None => "After this apply, send the value of `domain_verification_code` to support@expel.com with the subject \"Wiz Integration\". Once Expel confirms it is validated, set `console_access { domain_validated = true }` and apply again: that adds expel.io to the allowed login domains and invites the Expel Analyst.".to_string(),
                },
            );
        }
        if input.prior.is_null() {
            return;
        }
        // A piece no patch can repair is made again; the integration takes its rule along.
        plan_repairs(planned, IDS_OF_PIECE, fixes);
        if fixes.of(Piece::WebhookIntegration) == Some(Fix::Remake) {
            set(planned, "automation_rule_id", Value::unknown());
        }
        let changed = |k: &str| input.prior.get(k) != planned.get(k);
        if changed("service_account_name") || changed("scopes") {
            for id in ["service_account_id", "client_id"] {
                set(planned, id, Value::unknown());
            }
        }
        let (was_validated, _) = console(input.prior);
        if validated && (!was_validated || !known(input.prior, "user_id")) {
            set(planned, "user_id", Value::unknown());
        } else if !validated {
            set(planned, "user_id", Value::Null);
        }
        if planned != input.prior {
            set(planned, "device_status", Value::unknown());
        }
    }
}

#[async_trait]
impl Import for WizDevice {
    async fn import(
        &self,
        _ctx: &Ctx<ExpelData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        if id.trim().is_empty() {
            diags.error("Missing import id", "Import an expel_wiz_device by its Workbench security device id: terraform import expel_wiz_device.x <device id>.");
            return None;
        }
        let mut v = Value::object(
            schema()
                .block
                .attributes
                .iter()
                .map(|a| (a.name.clone(), Value::Null)),
        );
        set(&mut v, "id", Value::string(id.trim()));
        set(&mut v, "console_access", Value::Null);
        set(&mut v, "timeouts", Value::Null);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::support::guided::needs;

    #[test]
    fn api_url_must_be_https_graphql() {
        assert!(api_url_problem("https://api.us17.app.wiz.io/graphql").is_none());
        assert!(api_url_problem("http://127.0.0.1:5000/wiz/graphql").is_none());
        assert!(api_url_problem("http://api.us17.app.wiz.io/graphql")
            .unwrap()
            .contains("https"));
        assert!(api_url_problem("https://api.us17.app.wiz.io/v1")
            .unwrap()
            .contains("GraphQL"));
        assert!(api_url_problem("nope").is_some());
    }

    #[test]
    fn steps_follow_the_guide_order() {
        let needs = needs::<WizDevice>;
        assert!(needs(Piece::WorkbenchDevice).contains(&Piece::ServiceAccount));
        assert!(needs(Piece::WebhookIntegration).contains(&Piece::WorkbenchDevice));
        assert!(needs(Piece::AutomationRule).contains(&Piece::WebhookIntegration));
    }

    #[test]
    fn defend_with_sync_rules_is_an_error_naming_it() {
        let mut d = Diagnostics::default();
        let cfg = Value::object([
            ("product", Value::string("defend")),
            ("sync_rules", Value::Bool(true)),
            ("severities", Value::List(vec![])),
        ]);
        WizDevice::validate(&cfg, &mut d);
        let paths: Vec<String> = d
            .iter()
            .filter_map(|x| x.path.as_ref().map(|p| p.to_string()))
            .collect();
        assert!(paths.iter().any(|p| p == "sync_rules"), "{paths:?}");
        assert!(paths.iter().any(|p| p == "severities"), "{paths:?}");
    }

    #[test]
    fn govcloud_without_the_addendum_is_an_error_naming_the_confirmation() {
        let cfg = |confirmed: Value| {
            Value::object([
                ("govcloud", Value::Bool(true)),
                ("govcloud_addendum_confirmed", confirmed),
            ])
        };
        let mut d = Diagnostics::default();
        WizDevice::validate(&cfg(Value::Bool(false)), &mut d);
        let e = d.iter().next().expect("an error");
        assert_eq!(
            e.path.as_ref().map(|p| p.to_string()).as_deref(),
            Some("govcloud_addendum_confirmed")
        );
        for words in [
            "legal addendum",
            "Customer Success Manager",
            "Expel Support",
        ] {
            assert!(e.detail.contains(words), "{words}: {}", e.detail);
        }
        for ok in [Value::Bool(true), Value::unknown()] {
            let mut d = Diagnostics::default();
            WizDevice::validate(&cfg(ok), &mut d);
            assert!(!d.has_errors(), "{d:?}");
        }
    }

    #[test]
    fn govcloud_must_match_the_environment_of_every_wiz_endpoint() {
        let client = |auth: &str, api: &str| {
            WizClient::new(
                url::Url::parse(auth).unwrap(),
                url::Url::parse(api).unwrap(),
                "id".into(),
                crate::clients::Secret::new("s".to_string()),
            )
            .unwrap()
        };
        let gov = client(
            "https://auth.gov.wiz.io/oauth/token",
            "https://api.us1.gov.wiz.io/graphql",
        );
        let commercial = client(
            "https://auth.app.wiz.io/oauth/token",
            "https://api.us17.app.wiz.io/graphql",
        );
        let local = client(
            "http://127.0.0.1:5000/wiz/oauth/token",
            "http://127.0.0.1:5000/wiz/graphql",
        );
        let cfg = |govcloud: bool, endpoint: Option<&str>| {
            Value::object([
                ("govcloud", Value::Bool(govcloud)),
                (
                    "api_endpoint_url",
                    endpoint.map(Value::string).unwrap_or(Value::Null),
                ),
            ])
        };
        let check = |wiz: &WizClient, v: Value| {
            let mut d = Diagnostics::default();
            let ok = check_environment(wiz, &v, &mut d);
            (ok, d.iter().map(|x| x.detail.clone()).collect::<Vec<_>>())
        };
        assert!(check(&gov, cfg(true, None)).0);
        assert!(check(&commercial, cfg(false, None)).0);
        assert!(check(&local, cfg(true, None)).0);
        let (ok, why) = check(&commercial, cfg(true, None));
        assert!(!ok && why[0].contains("commercial Wiz"), "{why:?}");
        let (ok, why) = check(&gov, cfg(false, None));
        assert!(!ok && why[0].contains("govcloud = true"), "{why:?}");
        let (ok, why) = check(
            &local,
            cfg(true, Some("https://api.us17.app.wiz.io/graphql")),
        );
        assert!(!ok && why[0].contains("api_endpoint_url"), "{why:?}");
    }

    #[test]
    fn private_state_round_trips() {
        let j = journal(
            &Value::Null,
            br#"{"sa_rotated_at":"t","sa_rotation_known":true,"domain_added":true,"sa_unsure":true}"#,
        );
        assert_eq!(j.sa_rotated_at.as_deref(), Some("t"));
        assert!(j.sa_rotation_known && j.domain_added && j.sa_unsure);
        let j = journal(&Value::Null, b"");
        assert!(!j.sa_rotation_known);
    }
}
