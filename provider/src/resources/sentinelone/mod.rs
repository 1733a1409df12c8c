//! Resource `expel_sentinelone_device`: the SentinelOne Singularity Endpoint guide as one
//! resource (role, console user, service user and token, Workbench device).
use super::support::common::{opt, set, str_of, timeouts_block};
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use super::functions::soc_email::soc_email;
use super::support::guided::{plan_repairs, Closed, Fixes, Guided, Import, Op, Opening, Plan};
use super::support::ownership::{owner_in, Owner, OWNER_ATTR, OWNER_DESCRIPTION_TEXT, TEXT_MARKER};
use super::support::workbench_pin;
use super::ExpelData;
use crate::clients::sentinelone::{Scope, SentinelOneClient};
use crate::engine::{Deadline, Fix, Step, StepError};
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::provider::{Ctx, PlanInput};
use tfplugin::schema::{validators, Attribute, Block, FnValidator, Schema};
use tfplugin::value::{Type, Value};

mod access;
mod steps;

pub use access::SentinelOneAccess;
pub mod when;

use steps::{Cx, Journal, Piece, Settings};

/// How long an operation may take when `timeouts` does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

pub struct SentinelOneDevice;

/// The guide's extra permissions for "Viewer - Expel", as "Page: Title".
pub const DEFAULT_EXTRA_PERMISSIONS: &[&str] = &[
    "Endpoints: Remote Shell",
    "Endpoints: Initiate Scan",
    "Endpoints: File Fetch",
    "Endpoints: Fetch Logs",
    "Endpoint Threats: Fetch Threat File",
];

fn steps() -> Vec<&'static dyn Step<Cx>> {
    vec![
        &steps::ViewerRole,
        &steps::ConsoleUser,
        &steps::ApiServiceUser,
        &steps::WorkbenchDevice,
    ]
}

/// Computed attributes holding the ids of each piece: unknown in a plan that re-creates it.
const IDS_OF_PIECE: &[(Piece, &[&str])] = &[
    (Piece::Role, &["role_id"]),
    (Piece::ConsoleUser, &["console_user_id"]),
    (Piece::ServiceUser, &["service_user_id", "token_expires_at"]),
    (
        Piece::WorkbenchDevice,
        &["id", "security_device_id", "token_expires_at"],
    ),
];

fn schema() -> Schema {
    let s = |n: &str, d: &str| Attribute::string(n).description(d);
    let mut block = Block::new("The SentinelOne Singularity Endpoint onboarding guide as one resource: the role \"Viewer - Expel\", the console user \"Expel SOC\" (invited), the service user \"Expel API\" with its API token, and the security device in Workbench. The token is handed to Workbench and never kept in state.")
            .attr(s("name", "Name of the security device in Workbench, e.g. `Acme - S1 EDR`.").required().validator(validators::non_empty()))
            .attr(s("console_url", "Server address of the SentinelOne console, e.g. `https://usea1-1001.sentinelone.net`. Must be https (plain http only for a console on this machine, such as a local emulator). A host outside `*.sentinelone.net` is a warning (GovCloud and private consoles exist).").required().requires_replace().validator(console_url_validator()))
            .attr(s("account_id", "SentinelOne account the role, users and token are scoped to. Must be visible to the provider's token (checked at plan time).").required().requires_replace().validator(validators::non_empty()))
            .attr(s("site_id", "A site of `account_id` to scope the role, the console user and the service user to instead of the whole account (the console's Access Level \"Site\"). The site must belong to the account (see Site scope).").optional().requires_replace().validator(validators::non_empty()))
            .attr(s("organization_name", "Your organization's name as Expel knows it; the console user is `soc+<organization>@expel.io` (see `provider::expel::soc_email`).").required().validator(validators::non_empty()).validator(org_validator()))
            .attr(s("role_name", "Name of the role made from Viewer plus the extra permissions.").default(Value::string("Viewer - Expel")).validator(validators::non_empty()))
            .attr(Attribute::new("extra_permissions", Type::list(Type::String)).default(Value::List(DEFAULT_EXTRA_PERMISSIONS.iter().map(|p| Value::string(*p)).collect())).description("Permissions added to Viewer's, as `\"Page: Title\"` of the console's role editor; what they depend on is added too. Default: the guide's list (Endpoints: Remote Shell, Initiate Scan, File Fetch, Fetch Logs; Endpoint Threats: Fetch Threat File)."))
            .attr(s("console_user_name", "Full name of the console user (the guide: `Expel SOC`).").default(Value::string("Expel SOC")).validator(validators::non_empty()))
            .attr(s("service_user_name", "Name of the service user (the guide: `Expel API`). A change makes a new service user and retires the old one.").default(Value::string("Expel API")).validator(validators::non_empty()))
            .attr(s("token_expires_in", "Lifetime of the API token, e.g. `365d`, `2160h`; resolved to a date when the token is made (`token_expires_at`). Default `365d`. Must exceed `rotate_before`. Conflicts with `token_expiration_date`.").optional())
            .attr(s("token_expiration_date", "Expiry of the API token as a date (`2027-06-30`) or RFC 3339 date-time; must be in the future. Conflicts with `token_expires_in`.").optional())
            .attr(s("rotate_before", "Refresh marks the token due for rotation when it expires within this duration; the next apply makes a new one. Default `30d`.").default(Value::string("30d")))
            .attr(Attribute::bool("status_syncing").default(Value::Bool(false)).description("Enable status syncing in the Workbench device (needs the Manage level: Change Incident Status, Change Analyst Verdict, Add Notes)."))
            .attr(s("status_syncing_user", "Whose role must grant the Manage level for status syncing: `api` (the service user, whose token Workbench uses; default) or `console` (the console user's role; the three permissions are then added to it).").default(Value::string("api")).validator(validators::one_of(&["api", "console"])))
            .attr(s("device_location", "Location of the device in Workbench (the guide: `cloud` or `on-prem`).").default(Value::string("cloud")))
            .attr(s("plugin_slug", "Workbench plugin of the device.").default(Value::string("sentinelone")))
            .attr(s("id", "The Workbench security device id.").computed().use_state_for_unknown())
            .attr(s(OWNER_ATTR, OWNER_DESCRIPTION_TEXT).computed().use_state_for_unknown())
            .attr(s("security_device_id", "The Workbench security device id.").computed().use_state_for_unknown())
            .attr(s("role_id", "Id of the role.").computed().use_state_for_unknown())
            .attr(s("console_user_id", "Id of the console user.").computed().use_state_for_unknown())
            .attr(s("console_user_email", "E-mail of the console user, `soc+<organization>@expel.io`.").computed())
            .attr(s("service_user_id", "Id of the service user.").computed().use_state_for_unknown())
            .attr(s("token_expires_at", "When the API token in Workbench expires (RFC 3339).").computed().use_state_for_unknown())
            .attr(s("device_status", "Workbench health of the device (`healthy`, `unhealthy`, ...); not drift.").computed())
            .attr(Attribute::new("drift", Type::map(Type::String)).computed().description("What differs from the guide, per piece (`role`, `console_user`, `service_user`, `workbench_device`), in words; filled by refresh, emptied by the plan that repairs it."))
            .block(timeouts_block("10m"));
    for a in workbench_pin::attributes() {
        block = block.attr(a);
    }
    // Version 0 had no `owner`: the next plan records it and the apply re-marks the objects.
    Schema::new(1, block).readable_from(0)
}

/// What a replacement for a changed Workbench organization re-makes besides the device.
const REPLACED_WITH_ORGANIZATION: &str = "In SentinelOne, the role, the console user (invited again) and the service user with a new API token are deleted and made again.";

/// https, or http on this machine only; an unfamiliar host is a warning.
fn console_url_validator() -> impl tfplugin::schema::Validator {
    FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        let Some(s) = v.as_str() else { return };
        match console_url_problem(s) {
            Some(Ok(w)) => d.attr_warning(p.clone(), "Unfamiliar SentinelOne console", w),
            Some(Err(e)) => d.attr_error(p.clone(), "Invalid console URL", e),
            None => {}
        }
    })
}

/// `Some(Err)`: unusable; `Some(Ok)`: usable with a warning; `None`: fine.
pub fn console_url_problem(s: &str) -> Option<Result<String, String>> {
    let u = match Url::parse(s) {
        Ok(u) if u.host_str().is_some() => u,
        _ => {
            return Some(Err(format!(
            "`console_url` = {s:?} is not a URL such as \"https://usea1-1001.sentinelone.net\"."
        )))
        }
    };
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    let local = crate::clients::http::is_loopback(&u);
    if !crate::clients::http::may_carry_secrets(&u) {
        return Some(Err(format!("`console_url` must use https (got {:?}); the console's API token travels in every request.", u.scheme())));
    }
    if !u.username().is_empty()
        || u.password().is_some()
        || u.query().is_some()
        || u.fragment().is_some()
    {
        return Some(Err("`console_url` must be the console's address only, without credentials, query or fragment.".into()));
    }
    if u.path().trim_end_matches('/').ends_with("/web/api/v2.1") {
        return Some(Err(
            "`console_url` is the console's address, without /web/api/v2.1.".into(),
        ));
    }
    if !local && !host.ends_with(".sentinelone.net") {
        return Some(Ok(format!("{host} is not a *.sentinelone.net console; fine for GovCloud or private consoles, otherwise check the address.")));
    }
    None
}

fn org_validator() -> impl tfplugin::schema::Validator {
    FnValidator(|v: &Value, p: &AttrPath, d: &mut Diagnostics| {
        if let Some(s) = v.as_str() {
            if !s.trim().is_empty() && soc_email(s).is_none() {
                d.attr_error(p.clone(), "Unusable organization name", format!("`{p}` = {s:?} has no letter or digit to build soc+<organization>@expel.io from."));
            }
        }
    })
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn parse_permission(s: &str) -> Option<(String, String)> {
    let (page, title) = s.split_once(':')?;
    let (page, title) = (page.trim(), title.trim());
    (!page.is_empty() && !title.is_empty()).then(|| (page.to_string(), title.to_string()))
}

/// The instance's owner: the device it registers (`name`) for its console and scope.
fn owner(v: &Value) -> Option<Owner> {
    let known = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    if v.get("site_id").is_some_and(|s| !s.is_known()) {
        return None;
    }
    Some(Owner::derive(
        "expel_sentinelone_device",
        &[
            &known("console_url")?,
            &known("account_id")?,
            &known("site_id").unwrap_or_default(),
            &known("name")?,
        ],
    ))
}

fn settings(v: &Value, workbench_org: &str) -> Settings {
    Settings {
        owner: Owner::recorded(v)
            .or_else(|| owner(v))
            .unwrap_or_else(|| Owner::derive("expel_sentinelone_device", &[])),
        name: str_of(v, "name"),
        device_location: str_of(v, "device_location"),
        console_url: str_of(v, "console_url"),
        scope: match opt_str(v, "site_id") {
            Some(site) => Scope::Site(site),
            None => Scope::Account(str_of(v, "account_id")),
        },
        role_name: str_of(v, "role_name"),
        extra_permissions: v
            .get("extra_permissions")
            .and_then(Value::as_list)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .filter_map(parse_permission)
                    .collect()
            })
            .unwrap_or_default(),
        console_user_name: str_of(v, "console_user_name"),
        console_email: soc_email(&str_of(v, "organization_name")).unwrap_or_default(),
        service_user_name: str_of(v, "service_user_name"),
        token_expires_in: opt_str(v, "token_expires_in")
            .as_deref()
            .and_then(when::parse_duration),
        token_expiration_date: opt_str(v, "token_expiration_date")
            .as_deref()
            .and_then(when::parse),
        rotate_before: opt_str(v, "rotate_before")
            .as_deref()
            .and_then(when::parse_duration)
            .unwrap_or(30 * 86_400),
        status_syncing: v
            .get("status_syncing")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        status_syncing_user: opt_str(v, "status_syncing_user").unwrap_or_else(|| "api".into()),
        plugin_slug: opt_str(v, "plugin_slug").unwrap_or_else(|| "sentinelone".into()),
        workbench_org: workbench_org.to_string(),
        force_rotate: false,
    }
}

fn journal(v: &Value) -> Journal {
    Journal {
        role_id: opt_str(v, "role_id"),
        console_user_id: opt_str(v, "console_user_id"),
        service_user_id: opt_str(v, "service_user_id"),
        device_id: opt_str(v, "id"),
        device_status: opt_str(v, "device_status"),
        token_expires_at: opt_str(v, "token_expires_at"),
        new_token: None,
    }
}

/// The state after an operation: the plan's values with the journal's ids filled in.
fn state_from(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
    let j = cx.j().clone();
    let mut v = base.clone();
    set(&mut v, "role_id", opt(j.role_id));
    set(&mut v, "console_user_id", opt(j.console_user_id));
    set(&mut v, "service_user_id", opt(j.service_user_id));
    set(&mut v, "id", opt(j.device_id.clone()));
    set(&mut v, "security_device_id", opt(j.device_id));
    set(&mut v, "device_status", opt(j.device_status));
    set(&mut v, "token_expires_at", opt(j.token_expires_at));
    set(
        &mut v,
        "console_user_email",
        opt(Some(cx.s.console_email.clone()).filter(|e| !e.is_empty())),
    );
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

/// Private state: the cached `Desired` (or what came in, when this operation made none).
fn private_of(cx: &Cx, previous: &[u8]) -> Vec<u8> {
    cx.cached()
        .and_then(|d| serde_json::to_vec(d).ok())
        .unwrap_or_else(|| previous.to_vec())
}

impl SentinelOneDevice {
    /// The Workbench organization and a SentinelOne client for the console in `v`.
    fn clients(
        &self,
        ctx: &Ctx<ExpelData>,
        v: &Value,
        diags: &mut Diagnostics,
    ) -> Option<(String, SentinelOneClient)> {
        let Some(org) = ctx.data.organization_id.clone() else {
            diags.error("Missing Workbench organization id", "expel_sentinelone_device registers the device in a Workbench organization: set `organization_id` in the provider block or EXPEL_ORGANIZATION_ID.");
            return None;
        };
        let Some(s1) = ctx.data.access::<SentinelOneAccess>() else {
            diags.error("Missing SentinelOne API token", "expel_sentinelone_device needs the API token of a console user allowed to manage roles and users: set `sentinelone { api_token = ... }` in the provider block or SENTINELONE_API_TOKEN.");
            return None;
        };
        let url = match Url::parse(&str_of(v, "console_url")) {
            Ok(u) => u,
            Err(e) => {
                diags.attr_error(
                    AttrPath::root("console_url"),
                    "Invalid console URL",
                    e.to_string(),
                );
                return None;
            }
        };
        match SentinelOneClient::new(url, s1.api_token.clone())
            .and_then(|c| c.with_limits(&ctx.data.limits))
        {
            Ok(c) => Some((org, c)),
            Err(e) => {
                diags.error("Cannot build the HTTP client", e.to_string());
                None
            }
        }
    }

    /// State pins the S1 account (and site): a provider now pointing elsewhere (or a token
    /// that cannot see the account) is an error, never "gone". (The Workbench organization
    /// and URL are pinned by `workbench_pin`.)
    async fn check_pinned(
        &self,
        state: &Value,
        s1: &SentinelOneClient,
        diags: &mut Diagnostics,
    ) -> bool {
        let acct = str_of(state, "account_id");
        match s1.account(&acct).await {
            // A site-scoped device pins its site too.
            Ok(Some(_)) => check_site(s1, state, diags).await,
            Ok(None) => {
                diags.attr_error(AttrPath::root("account_id"), "SentinelOne account not visible", format!("The SentinelOne API token cannot see account {acct} on {}; check that the provider's token belongs to this console and account.", s1.console()));
                false
            }
            Err(e) => {
                diags.error("Cannot read the SentinelOne account", e.to_string());
                false
            }
        }
    }

    fn cx(
        &self,
        ctx: &Ctx<ExpelData>,
        s1: SentinelOneClient,
        v: &Value,
        org: &str,
        deadline: Deadline,
        private: &[u8],
    ) -> Cx {
        Cx::new(s1, ctx.data.clone(), settings(v, org), journal(v), deadline)
            .with_cached(serde_json::from_slice(private).ok())
    }
}

/// With status syncing on and the service user's role relied on (`status_syncing_user =
/// "api"`), that role must grant the Manage level before anything is made or changed.
async fn status_sync_preflight(cx: &Cx, diags: &mut Diagnostics) -> bool {
    if !cx.s.status_syncing || cx.s.status_syncing_user != "api" {
        return true;
    }
    match steps::status_sync_gaps(cx).await {
        Ok((_, missing)) if missing.is_empty() => true,
        Ok((who, missing)) => {
            diags.attr_error(AttrPath::root("status_syncing"), "Status syncing needs the Manage level", format!("status_syncing = true needs {who} to grant the Manage level, but it lacks: {}. Workbench syncs statuses with the service user's API token. Grant these permissions to that role in the console (Settings > Users > Roles), or set status_syncing = false. Nothing was created or changed.", missing.join(", ")));
            false
        }
        Err(e) => {
            diags.error(
                format!("Checking status syncing failed at {}", e.step),
                format!("{}\n\nNothing was created or changed.", e.message),
            );
            false
        }
    }
}

/// `site_id`, when set, must be a site of `account_id`.
async fn check_site(s1: &SentinelOneClient, v: &Value, diags: &mut Diagnostics) -> bool {
    let Some(site) = opt_str(v, "site_id") else {
        return true;
    };
    let acct = str_of(v, "account_id");
    match s1.site(&site).await {
        Ok(Some(s)) if s.account_id == acct => true,
        Ok(Some(s)) => {
            diags.attr_error(AttrPath::root("site_id"), "Site of another account", format!("Site {site} ({}) belongs to account {}, not to account_id {acct}; set account_id to the site's account or choose a site of {acct}.", s.name, s.account_id));
            false
        }
        Ok(None) => {
            diags.attr_error(AttrPath::root("site_id"), "Unknown SentinelOne site", format!("The console {} has no site {site} visible to the provider's API token; copy the site id from Settings > Sites.", s1.console()));
            false
        }
        Err(e) => {
            diags.attr_error(
                AttrPath::root("site_id"),
                "Cannot read the SentinelOne site",
                e.to_string(),
            );
            false
        }
    }
}

#[async_trait]
impl Guided for SentinelOneDevice {
    type Cx = Cx;
    const TYPE_NAME: &'static str = "expel_sentinelone_device";
    const WHAT: &'static str = "the SentinelOne device";
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    const STATE_IDS: &'static [&'static str] = &[
        "role_id",
        "console_user_id",
        "service_user_id",
        "id",
        "token_expires_at",
    ];

    fn schema() -> Schema {
        schema()
    }

    fn validate(config: &Value, diags: &mut Diagnostics) {
        let known = |k: &str| config.get(k).and_then(Value::as_str).map(str::to_string);
        let expires_in = known("token_expires_in");
        let date = known("token_expiration_date");
        if expires_in.is_some() && date.is_some() {
            diags.attr_error(
                AttrPath::root("token_expiration_date"),
                "Conflicting settings",
                "Set either `token_expires_in` or `token_expiration_date`, not both.",
            );
        }
        let rotate = known("rotate_before").as_deref().map(when::parse_duration);
        if let Some(None) = rotate {
            diags.attr_error(
                AttrPath::root("rotate_before"),
                "Malformed duration",
                "`rotate_before` must be a duration such as \"30d\" or \"720h\".",
            );
        }
        let rotate = rotate.flatten().unwrap_or(30 * 86_400);
        if let Some(s) = expires_in {
            match when::parse_duration(&s) {
                None => diags.attr_error(AttrPath::root("token_expires_in"), "Malformed duration", format!("{s:?} is not a duration such as \"365d\" or \"2160h\".")),
                Some(secs) if secs <= rotate => diags.attr_error(AttrPath::root("token_expires_in"), "Token lifetime too short", format!("`token_expires_in` ({s}) must be longer than `rotate_before`, or every refresh would find the token due.")),
                Some(_) => {}
            }
        }
        if let Some(s) = date {
            match when::parse(&s) {
                None => diags.attr_error(AttrPath::root("token_expiration_date"), "Malformed date", format!("{s:?} is not a date (\"2027-06-30\") or RFC 3339 date-time.")),
                // A static check on the user's input: it changes no planned value.
                Some(t) if t <= when::now() => diags.attr_error(AttrPath::root("token_expiration_date"), "Expiration date in the past", format!("`token_expiration_date` = {s} has passed; SentinelOne only makes tokens that expire in the future.")),
                Some(_) => {}
            }
        }
        if let Some(list) = config.get("extra_permissions").and_then(Value::as_list) {
            for (i, p) in list.iter().enumerate() {
                if let Some(s) = p.as_str() {
                    if parse_permission(s).is_none() {
                        diags.attr_error(AttrPath::root("extra_permissions").index(i), "Malformed permission", format!("{s:?} must read \"Page: Title\", e.g. \"Endpoints: Remote Shell\"."));
                    }
                }
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
        let (org, s1) = self.clients(ctx, values, diags).ok_or(Closed::Failed)?;
        if op == Op::Create {
            return self
                .open_create(ctx, s1, values, &org, deadline, diags)
                .await;
        }
        // The device lives in the organization it was made in (a replacement for a changed
        // organization destroys with the provider already pointing at the new one).
        let org = workbench_pin::organization(&ctx.data, prior, &org, diags)
            .await
            .ok_or(Closed::Failed)?;
        if !self.check_pinned(prior, &s1, diags).await {
            return Err(Closed::Failed);
        }
        let mut cx = self.cx(ctx, s1, values, &org, deadline, private);
        if op == Op::Update {
            cx.s.force_rotate = ["token_expires_in", "token_expiration_date"]
                .iter()
                .any(|k| prior.get(k) != values.get(k));
            if !status_sync_preflight(&cx, diags).await {
                return Err(Closed::Failed);
            }
        }
        Ok(cx)
    }

    fn state_from(base: &Value, cx: &Cx, drift: BTreeMap<String, String>) -> Value {
        state_from(base, cx, drift)
    }

    fn private_of(cx: &Cx, previous: &[u8]) -> Vec<u8> {
        private_of(cx, previous)
    }

    fn warnings(cx: &Cx) -> Vec<(String, String)> {
        let found = cx.warnings.lock().map(|g| g.clone()).unwrap_or_default();
        found
            .into_iter()
            .map(|w| ("SentinelOne device".to_string(), w))
            .collect()
    }

    async fn claim(cx: &Cx) -> Result<(), StepError> {
        // State from before owners existed: its role and service user become this instance's.
        steps::claim(cx).await
    }

    fn plan(&self) -> Option<&dyn Plan> {
        Some(self)
    }

    fn import(&self) -> Option<&dyn Import> {
        Some(self)
    }
}

impl SentinelOneDevice {
    /// Before a create: the account (and site) must be visible and the status-syncing role
    /// able to sync.
    async fn open_create(
        &self,
        ctx: &Ctx<ExpelData>,
        s1: SentinelOneClient,
        planned: &Value,
        org: &str,
        deadline: Deadline,
        diags: &mut Diagnostics,
    ) -> Result<Cx, Closed> {
        let acct = str_of(planned, "account_id");
        match s1.account(&acct).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                diags.attr_error(
                    AttrPath::root("account_id"),
                    "Unknown SentinelOne account",
                    format!(
                        "The console {} has no account {acct} visible to the provider's API token.",
                        s1.console()
                    ),
                );
                return Err(Closed::Failed);
            }
            Err(e) => {
                diags.error("Cannot read the SentinelOne account", e.to_string());
                return Err(Closed::Failed);
            }
        }
        if !check_site(&s1, planned, diags).await {
            return Err(Closed::Failed);
        }
        let cx = self.cx(ctx, s1, planned, org, deadline, &[]);
        if !status_sync_preflight(&cx, diags).await {
            return Err(Closed::Failed);
        }
        // The guide's prerequisite (Deep Visibility) is a license the management API does not
        // show to an account token: say so once, at create.
        diags.warning("Check the Deep Visibility prerequisite", "Expel's SOC needs the SentinelOne Deep Visibility module for deeper investigations; the API cannot confirm the license, so check it in the console (Settings > Licenses).");
        Ok(cx)
    }
}

#[async_trait]
impl Plan for SentinelOneDevice {
    async fn modify_plan(
        &self,
        ctx: &Ctx<ExpelData>,
        input: &PlanInput<'_>,
        fixes: &Fixes,
        planned: &mut Value,
        diags: &mut Diagnostics,
    ) {
        if Owner::recorded(input.prior).is_none() {
            let o = owner(planned).map(|o| Value::string(o.as_str()));
            set(planned, OWNER_ATTR, o.unwrap_or(Value::unknown()));
        }
        let org_name = planned
            .get("organization_name")
            .cloned()
            .unwrap_or(Value::Null);
        match org_name.as_str() {
            Some(n) => set(planned, "console_user_email", opt(soc_email(n))),
            None if !org_name.is_known() => set(planned, "console_user_email", Value::unknown()),
            None => {}
        }
        if let Some(org) = ctx.data.organization_id.clone() {
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
        }
        let known = |k: &str| planned.get(k).is_some_and(|v| v.is_known() && !v.is_null());
        if input.prior.is_null() && known("console_url") && known("account_id") {
            // The account must exist for the provider's token (stable: not a clock or a counter).
            if let Some((_, s1)) = self.clients(ctx, planned, diags) {
                let acct = str_of(planned, "account_id");
                match s1.account(&acct).await {
                    Ok(Some(_)) => {
                        if planned.get("site_id").is_none_or(Value::is_known) {
                            check_site(&s1, planned, diags).await;
                        }
                    }
                    Ok(None) => diags.attr_error(AttrPath::root("account_id"), "Unknown SentinelOne account", format!("The console {} has no account {acct} visible to the provider's API token; copy the account id from Settings > Accounts.", s1.console())),
                    Err(e) if e.status() == Some(401) => diags.error("SentinelOne refused the API token", format!("{e}. Check `sentinelone {{ api_token }}` / SENTINELONE_API_TOKEN.")),
                    Err(e) => diags.attr_error(AttrPath::root("console_url"), "Cannot reach the SentinelOne console", e.to_string()),
                }
            }
            return;
        }
        if input.prior.is_null() {
            return;
        }
        plan_repairs(planned, IDS_OF_PIECE, fixes);
        // Pieces not recorded yet (after an import, or a create that failed early) are
        // created or adopted by this apply: their ids are not known before.
        // (A device made again needs a new token: its expiry changes too.)
        for (_, ids) in IDS_OF_PIECE {
            if ids
                .iter()
                .any(|id| input.prior.get(id).is_none_or(Value::is_null))
            {
                for id in *ids {
                    set(planned, id, Value::unknown());
                }
            }
        }
        // A new token, or a new service user (with a new token), is due.
        let token_due = matches!(fixes.of(Piece::ServiceUser), Some(Fix::Renew | Fix::Remake));
        let token_settings_changed = [
            "token_expires_in",
            "token_expiration_date",
            "service_user_name",
        ]
        .iter()
        .any(|k| input.prior.get(k) != planned.get(k));
        if token_due || token_settings_changed {
            set(planned, "token_expires_at", Value::unknown());
        }
        if str_of(input.prior, "service_user_name") != str_of(planned, "service_user_name") {
            set(planned, "service_user_id", Value::unknown());
        }
        if planned != input.prior {
            set(planned, "device_status", Value::unknown());
        }
    }
}

#[async_trait]
impl Import for SentinelOneDevice {
    /// Import by Workbench device id: `<device id>`; `<device id>/<account id>` when the
    /// token sees several accounts and our pieces are in more than one;
    /// `<device id>/<account id>/<site id>` for a device scoped to a site. The pieces are
    /// found by their names and markers; `organization_name` is read back from the console
    /// user's e-mail (the Workbench organization's own spelling when it gives that e-mail).
    async fn import(
        &self,
        ctx: &Ctx<ExpelData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let mut parts = id.split('/').map(str::trim);
        let device_id = parts.next().unwrap_or_default();
        let account = parts.next().filter(|a| !a.is_empty()).map(str::to_string);
        let site = parts.next().filter(|a| !a.is_empty()).map(str::to_string);
        if parts.next().is_some() || device_id.is_empty() {
            diags.error("Malformed import id", format!("{id:?} is not \"<device id>\", \"<device id>/<account id>\" or \"<device id>/<account id>/<site id>\"."));
            return None;
        }
        let device = match ctx.data.workbench.device(device_id).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                diags.error(
                    "No such security device",
                    format!("Workbench has no security device {device_id}."),
                );
                return None;
            }
            Err(e) => {
                diags.error("Cannot read the security device", e.to_string());
                return None;
            }
        };
        let console = device
            .device_spec
            .get("console_url")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        let sync = device
            .device_spec
            .get("status_syncing")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let mut v = Value::Object(BTreeMap::new());
        for a in &schema().block.attributes {
            set(&mut v, &a.name, a.default.clone().unwrap_or(Value::Null));
        }
        set(&mut v, "name", Value::string(device.name.clone()));
        set(
            &mut v,
            "device_location",
            Value::string(device.location.clone()),
        );
        set(
            &mut v,
            "plugin_slug",
            Value::string(device.plugin_slug.clone()),
        );
        set(&mut v, "console_url", Value::string(console));
        set(&mut v, "status_syncing", Value::Bool(sync));
        set(&mut v, "id", Value::string(device.id.clone()));
        set(
            &mut v,
            "security_device_id",
            Value::string(device.id.clone()),
        );
        set(&mut v, "drift", Value::Map(BTreeMap::new()));
        let (current, s1) = self.clients(ctx, &v, diags)?;
        // The device's own organization (Workbench says which); else the provider's.
        let org = device.organization_id.clone().unwrap_or(current);
        workbench_pin::record(&mut v, &org, &ctx.data);
        let account = match account {
            Some(a) => a,
            None => match self.account_of_import(&s1, device_id, diags).await {
                Some(a) => a,
                None => return None,
            },
        };
        set(&mut v, "account_id", Value::string(account.clone()));
        let scope = match site {
            Some(site) => {
                set(&mut v, "site_id", Value::string(site.clone()));
                Scope::Site(site)
            }
            None => Scope::Account(account),
        };
        // Ours by the marker, whichever instance: the imported one is that owner from now on.
        let marked = |d: &Option<String>| d.as_deref().is_some_and(|d| d.contains(TEXT_MARKER));
        let role_name = str_of(&v, "role_name");
        if let Ok(roles) = s1.roles_named(&scope, &role_name).await {
            if let Some(r) = roles.into_iter().find(|r| marked(&r.description)) {
                set(&mut v, "role_id", Value::string(r.id.clone()));
                if let Some(o) = owner_in(r.description.as_deref()) {
                    set(&mut v, OWNER_ATTR, Value::string(o));
                }
                self.import_console_user(ctx, &s1, &org, &r.id, &mut v, diags)
                    .await;
            }
        }
        let su_name = str_of(&v, "service_user_name");
        if let Ok(sus) = s1.service_users_named(&scope, &su_name).await {
            if let Some(su) = sus.into_iter().find(|s| marked(&s.description)) {
                set(&mut v, "service_user_id", Value::string(su.id));
                let exp = su
                    .api_token
                    .and_then(|t| t.expires_at)
                    .as_deref()
                    .and_then(when::parse);
                set(&mut v, "token_expires_at", opt(exp.map(when::format)));
            }
        }
        Some(v)
    }
}

impl SentinelOneDevice {
    /// The account of an import id that names none: the only one the token sees, or the
    /// only one holding our service user.
    async fn account_of_import(
        &self,
        s1: &SentinelOneClient,
        device_id: &str,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        let accounts = match s1.accounts().await {
            Ok(a) => a,
            Err(e) => {
                diags.error("Cannot list SentinelOne accounts", e.to_string());
                return None;
            }
        };
        if accounts.len() == 1 {
            return Some(accounts[0].id.clone());
        }
        let mut ours = Vec::new();
        for a in &accounts {
            let scope = Scope::Account(a.id.clone());
            if let Ok(sus) = s1.service_users_named(&scope, "Expel API").await {
                if sus
                    .iter()
                    .any(|s| s.description.as_deref().unwrap_or("").contains(TEXT_MARKER))
                {
                    ours.push(a.id.clone());
                }
            }
        }
        if let [one] = ours.as_slice() {
            return Some(one.clone());
        }
        diags.error("Which SentinelOne account?", format!("The token sees {} accounts and {} of them hold a service user made by this provider; import with \"{device_id}/<account id>\" (or \"{device_id}/<account id>/<site id>\" for a site).", accounts.len(), ours.len()));
        None
    }

    /// The console user holding our role: its id and full name, and `organization_name`
    /// read back from its e-mail `soc+<organization>@expel.io`.
    async fn import_console_user(
        &self,
        ctx: &Ctx<ExpelData>,
        s1: &SentinelOneClient,
        org: &str,
        role_id: &str,
        v: &mut Value,
        diags: &mut Diagnostics,
    ) {
        let Ok(users) = s1.users_with_role(role_id).await else {
            return;
        };
        let Some((u, email, slug)) = users.into_iter().find_map(|u| {
            let email = u.email.to_ascii_lowercase();
            let slug = email
                .strip_prefix("soc+")?
                .strip_suffix("@expel.io")?
                .to_string();
            Some((u, email, slug))
        }) else {
            return;
        };
        set(v, "console_user_id", Value::string(u.id.clone()));
        set(v, "console_user_name", Value::string(u.full_name.clone()));
        // Expel knows the organization by its Workbench name: use that spelling when it
        // gives this e-mail, else the e-mail's own part.
        let name = match ctx.data.workbench.organization(org).await {
            Ok(o) if soc_email(&o.name).as_deref() == Some(email.as_str()) => o.name,
            _ => {
                diags.warning("organization_name read from the console user's e-mail", format!("`organization_name` is imported as {slug:?} (from {}); if your configuration spells it differently with the same e-mail, the first plan shows an in-place update that changes nothing remote.", u.email));
                slug
            }
        };
        set(v, "organization_name", Value::string(name));
        set(v, "console_user_email", Value::string(email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::support::guided::needs;

    #[test]
    fn console_urls() {
        assert!(console_url_problem("https://usea1-1001.sentinelone.net").is_none());
        assert!(console_url_problem("http://127.0.0.1:8080").is_none());
        assert!(matches!(
            console_url_problem("http://usea1-1001.sentinelone.net"),
            Some(Err(_))
        ));
        assert!(matches!(
            console_url_problem("usea1-1001.sentinelone.net"),
            Some(Err(_))
        ));
        assert!(matches!(
            console_url_problem("https://u:p@x.sentinelone.net"),
            Some(Err(_))
        ));
        assert!(matches!(
            console_url_problem("https://x.sentinelone.net/web/api/v2.1"),
            Some(Err(_))
        ));
        assert!(matches!(
            console_url_problem("https://s1.example.gov"),
            Some(Ok(_))
        ));
    }

    #[test]
    fn permissions_read_page_and_title() {
        assert_eq!(
            parse_permission("Endpoints: Remote Shell"),
            Some(("Endpoints".into(), "Remote Shell".into()))
        );
        assert_eq!(parse_permission("Remote Shell"), None);
        assert_eq!(parse_permission(": x"), None);
        for p in DEFAULT_EXTRA_PERMISSIONS {
            assert!(parse_permission(p).is_some());
        }
    }

    #[test]
    fn destroy_order_is_device_service_user_console_user_role() {
        // delete_all reverses `needs`: each piece is needed by the next one in guide order.
        let need = needs::<SentinelOneDevice>;
        assert!(need(Piece::WorkbenchDevice).contains(&Piece::ServiceUser));
        assert!(need(Piece::ServiceUser).contains(&Piece::ConsoleUser));
        assert!(need(Piece::ConsoleUser).contains(&Piece::Role));
    }
}
