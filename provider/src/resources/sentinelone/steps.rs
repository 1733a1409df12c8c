//! Expel's onboarding guide "SentinelOne Singularity Endpoint", one engine step per guide step: the
//! "Viewer - Expel" role, the "Expel SOC" console user, the "Expel API" service user with its
//! token, and the security device in Workbench.
//!
//! Ownership markers (S1 objects have no tags):
//! - role and service user: their `description` carries the marker and this instance's owner
//!   ([`Owner::in_text`]); one carrying another instance's owner is neither adopted nor
//!   deleted;
//! - console user (no description field): the e-mail is Expel's own SOC address for the
//!   organization (`soc+<org>@expel.io`) *and* the full name is ours ("Expel SOC" by default).
//!   Nobody else has a reason to hold that pair, so it is what adoption checks.
//!
//! The service user's token is never kept in state. It lives in the journal only during the
//! apply that made it, long enough to hand it to Workbench; a repair that needs it (device
//! re-created, token revoked, expired or due) makes a new one.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde_json::{json, Value as Json};

use super::when;
use crate::clients::sentinelone::{
    NewToken, PermissionPage, Role, Scope, SentinelOneClient, SentinelOneError, ServiceUser, User,
};
use crate::clients::workbench::{DeviceSpec, SecurityDevice, WorkbenchClient};
use crate::clients::Secret;
use crate::engine::{self, Deadline, Fix, Observed, Problem, Step, StepContext, StepError};
use crate::resources::support::create_once::{create_once, or_look_again, Look, Made};
use crate::resources::support::device_step::{DeviceAt, DeviceGuide, IdStatus, LostAnswer};
use crate::resources::support::ownership::{Claim, Mark, Owner};
/// The predefined role the guide gives the service user.
pub const SERVICE_ROLE: &str = "IR Team";
/// The predefined role the guide duplicates.
pub const BASE_ROLE: &str = "Viewer";
/// What Workbench needs of the role that syncs statuses (the threat calls status syncing makes:
/// incident status, analyst verdict, notes; splunk-soar-connectors/sentinelone): page and title.
pub const STATUS_SYNC_PERMISSIONS: &[(&str, &str)] = &[
    ("Endpoint Threats", "Change Incident Status"),
    ("Endpoint Threats", "Change Analyst Verdict"),
    ("Endpoint Threats", "Add Notes"),
];
/// Said of the token in drift messages; the plan marks the expiry unknown when it sees it.
const TOKEN_PROBLEM: &str = "API token";

/// The desired state, from the plan.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: String,
    pub device_location: String,
    pub console_url: String,
    /// Where the role and both users live: the account, or a site of it.
    pub scope: Scope,
    pub role_name: String,
    /// (page, title) pairs added to the Viewer permissions.
    pub extra_permissions: Vec<(String, String)>,
    pub console_user_name: String,
    pub console_email: String,
    pub service_user_name: String,
    pub token_expires_in: Option<i64>,
    pub token_expiration_date: Option<i64>,
    pub rotate_before: i64,
    pub status_syncing: bool,
    /// "api" (the service user) or "console" (the console user's role).
    pub status_syncing_user: String,
    pub plugin_slug: String,
    pub workbench_org: String,
    /// The token expiry settings changed: make a new token.
    pub force_rotate: bool,
    /// The instance whose role and service user these are (`ownership`).
    pub owner: Owner,
}

/// Ids only known once objects exist, and the token while it is fresh.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    pub role_id: Option<String>,
    pub console_user_id: Option<String>,
    pub service_user_id: Option<String>,
    pub device_id: Option<String>,
    pub device_status: Option<String>,
    pub token_expires_at: Option<String>,
    /// Made during this operation; never written to state.
    pub new_token: Option<Secret>,
}

/// What the role must grant: permission id -> "Page / Title". Kept in private state so a
/// refresh need not read Viewer and the role template again while the settings that shape
/// it (`key`) are unchanged.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Desired {
    pub key: String,
    pub permissions: BTreeMap<String, String>,
    pub status_sync: BTreeMap<String, String>,
    pub service_role_id: String,
}

pub struct Cx {
    pub s1: SentinelOneClient,
    pub data: std::sync::Arc<crate::resources::ExpelData>,
    pub s: Settings,
    pub journal: Mutex<Journal>,
    pub deadline: Deadline,
    pub warnings: Mutex<Vec<String>>,
    desired: tokio::sync::OnceCell<Desired>,
}

/// The guide's pieces: the step ids, named (snake_case) as in the `drift` map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Piece {
    Role,
    ConsoleUser,
    ServiceUser,
    WorkbenchDevice,
}

/// Why a SentinelOne piece differs, where its repair depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// A setting, set back in place.
    #[default]
    Setting,
    /// The service user has another name, which the API cannot change: a new service user
    /// (with a new token) is made and the old one retired.
    ServiceUserName,
    /// The service user lost its role or its access: given back.
    ServiceUserAccess,
    /// The API token is gone, expired, due or replaced outside Terraform: a new one is made.
    Token,
}

impl engine::Cause for Cause {
    fn fix(self) -> Fix {
        match self {
            Cause::ServiceUserName => Fix::Remake,
            Cause::Token => Fix::Renew,
            Cause::Setting | Cause::ServiceUserAccess => Fix::InPlace,
        }
    }
}

impl StepContext for Cx {
    type Id = Piece;
    type Cause = Cause;
    fn deadline(&self) -> &Deadline {
        &self.deadline
    }
}

impl Cx {
    pub fn new(
        s1: SentinelOneClient,
        data: std::sync::Arc<crate::resources::ExpelData>,
        s: Settings,
        journal: Journal,
        deadline: Deadline,
    ) -> Cx {
        Cx {
            s1,
            data,
            s,
            journal: Mutex::new(journal),
            deadline,
            warnings: Mutex::new(Vec::new()),
            desired: tokio::sync::OnceCell::new(),
        }
    }
    /// Starts from a cached `Desired` when it was made for the same settings.
    pub fn with_cached(self, cached: Option<Desired>) -> Cx {
        if let Some(d) = cached.filter(|d| d.key == desired_key(&self.s)) {
            let _ = self.desired.set(d);
        }
        self
    }
    /// The `Desired` this operation used, to keep in private state.
    pub fn cached(&self) -> Option<&Desired> {
        self.desired.get()
    }
    fn wbc(&self) -> &WorkbenchClient {
        &self.data.workbench
    }
    pub fn j(&self) -> std::sync::MutexGuard<'_, Journal> {
        match self.journal.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
    fn warn(&self, w: String) {
        match self.warnings.lock() {
            Ok(mut g) => g.push(w),
            Err(p) => p.into_inner().push(w),
        }
    }
    async fn s1<T, F, Fut>(&self, step: &'static str, op: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SentinelOneError>>,
    {
        self.deadline
            .retry(op)
            .await
            .map_err(|e| StepError::caused_by(step, e))
    }

    /// The expiry of a token made now: the configured date, or now + the duration.
    pub fn expiration(&self, step: &'static str) -> Result<String, StepError> {
        let now = when::now();
        match (self.s.token_expiration_date, self.s.token_expires_in) {
            (Some(d), _) if d <= now => Err(StepError::new(
                step,
                format!(
                    "token_expiration_date {} has passed; set a later date (or token_expires_in) to make a new token",
                    when::format(d)
                ),
            )),
            (Some(d), _) => Ok(when::format(d)),
            (None, Some(secs)) => Ok(when::format(now + secs)),
            (None, None) => Ok(when::format(now + DEFAULT_EXPIRES_IN)),
        }
    }

    fn record_token(&self, t: NewToken, fallback_expiry: &str) {
        let mut j = self.j();
        j.token_expires_at = Some(
            t.expires_at
                .as_deref()
                .and_then(when::parse)
                .map(when::format)
                .unwrap_or_else(|| fallback_expiry.to_string()),
        );
        j.new_token = Some(t.value);
    }

    /// The Viewer permissions plus the extra ones (with what they depend on), found by page
    /// and title in the role template; read once per operation.
    pub async fn desired(&self) -> Result<&Desired, StepError> {
        self.desired
            .get_or_try_init(|| async {
                let scope = &self.s.scope;
                let viewer = self
                    .s1(ROLE, || self.s1.predefined_role(scope, BASE_ROLE))
                    .await?
                    .ok_or_else(|| {
                        StepError::new(
                            ROLE,
                            format!(
                                "the account has no predefined {BASE_ROLE:?} role to start from"
                            ),
                        )
                    })?;
                let viewer = self
                    .s1(ROLE, || self.s1.role(&viewer.id, scope))
                    .await?
                    .ok_or_else(|| {
                        StepError::new(ROLE, format!("the predefined {BASE_ROLE:?} role vanished"))
                    })?;
                let template = self.s1(ROLE, || self.s1.role_template(scope)).await?;
                let service = self
                    .s1(SERVICE_USER, || {
                        self.s1.predefined_role(scope, SERVICE_ROLE)
                    })
                    .await?
                    .ok_or_else(|| {
                        StepError::new(
                            SERVICE_USER,
                            format!("the account has no predefined {SERVICE_ROLE:?} role"),
                        )
                    })?;
                let mut extra = self.s.extra_permissions.clone();
                let sync: Vec<(String, String)> = STATUS_SYNC_PERMISSIONS
                    .iter()
                    .map(|(p, t)| (p.to_string(), t.to_string()))
                    .collect();
                if self.s.status_syncing && self.s.status_syncing_user == "console" {
                    extra.extend(sync.iter().cloned());
                }
                let mut permissions = BTreeMap::new();
                for id in viewer.granted() {
                    permissions.insert(id.clone(), describe(&template, &id));
                }
                for id in resolve(&template, &extra).map_err(|m| StepError::new(ROLE, m))? {
                    permissions.insert(id.clone(), describe(&template, &id));
                }
                let status_sync = resolve(&template, &sync)
                    .map_err(|m| StepError::new(ROLE, m))?
                    .into_iter()
                    .map(|id| {
                        let d = describe(&template, &id);
                        (id, d)
                    })
                    .collect();
                Ok(Desired {
                    key: desired_key(&self.s),
                    permissions,
                    status_sync,
                    service_role_id: service.id,
                })
            })
            .await
    }

    /// Makes a new token for the service user (the old one stops working).
    async fn rotate_token(&self, step: &'static str) -> Result<(), StepError> {
        let id =
            self.j().service_user_id.clone().ok_or_else(|| {
                StepError::new(step, "no service user recorded to make a token for")
            })?;
        let exp = self.expiration(step)?;
        let t = self.s1(step, || self.s1.generate_token(&id, &exp)).await?;
        self.record_token(t, &exp);
        Ok(())
    }
}

/// What shapes `Desired`: a change reads Viewer and the template again.
pub fn desired_key(s: &Settings) -> String {
    format!(
        "v1|{}|{:?}|{}|{}",
        s.scope, s.extra_permissions, s.status_syncing, s.status_syncing_user
    )
}

/// Default token lifetime when neither `token_expires_in` nor `token_expiration_date` is set.
pub const DEFAULT_EXPIRES_IN: i64 = 365 * 86_400;

/// "Page / Title (identifier)" for messages.
fn describe(pages: &[PermissionPage], id: &str) -> String {
    for p in pages {
        if let Some(x) = p.permissions.iter().find(|x| x.identifier == id) {
            return format!("{} / {}", p.name, x.title);
        }
    }
    id.to_string()
}

/// Permission ids of the (page, title) pairs, with everything they depend on.
pub fn resolve(
    pages: &[PermissionPage],
    wanted: &[(String, String)],
) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    let mut todo = Vec::new();
    for (page, title) in wanted {
        let Some(p) = pages.iter().find(|p| p.name.eq_ignore_ascii_case(page)) else {
            let known: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "the role template has no page {page:?} (pages: {})",
                known.join(", ")
            ));
        };
        let Some(x) = p
            .permissions
            .iter()
            .find(|x| x.title.eq_ignore_ascii_case(title))
        else {
            let known: Vec<&str> = p.permissions.iter().map(|x| x.title.as_str()).collect();
            return Err(format!(
                "the role template's page {page:?} has no permission {title:?} (it has: {})",
                known.join(", ")
            ));
        };
        todo.push(x.identifier.clone());
    }
    let deps: BTreeMap<&str, &[String]> = pages
        .iter()
        .flat_map(|p| p.permissions.iter())
        .map(|x| (x.identifier.as_str(), x.depends_on.as_slice()))
        .collect();
    while let Some(id) = todo.pop() {
        if out.insert(id.clone()) {
            for d in deps.get(id.as_str()).copied().unwrap_or_default() {
                todo.push(d.clone());
            }
        }
    }
    Ok(out)
}

/// An existing role or service user may be adopted only if it is this instance's; whether it
/// was made before owners existed (then its description gets the owner).
fn adoptable(
    cx: &Cx,
    step: &'static str,
    what: &str,
    description: Option<&str>,
) -> Result<bool, StepError> {
    let claim = cx.s.owner.claim_text(description.unwrap_or(""));
    if !claim.is_ours() {
        return Err(StepError::refused(
            step,
            claim.refusal(
                what,
                &cx.s.owner,
                Mark::Description,
                "Import the device (terraform import) or choose another name.",
            ),
        ));
    }
    Ok(claim == Claim::Unclaimed)
}

/// Destroy deletes a role or service user only if it is this instance's.
fn deletable(cx: &Cx, what: &str, description: Option<&str>) -> bool {
    let claim = cx.s.owner.claim_text(description.unwrap_or(""));
    if claim.is_ours() {
        return true;
    }
    let whose = match claim {
        Claim::Other(other) => format!("belongs to another resource instance ({other})"),
        _ => "no longer carries our marker".to_string(),
    };
    cx.warn(format!("{what} {whose}; it was left in place"));
    false
}

/// A state written before owners existed names a role and service user whose description
/// carries only the marker: they become this instance's (the owner added), unless another
/// instance claimed them since.
pub async fn claim(cx: &Cx) -> Result<(), StepError> {
    let (role_id, service_user_id) = {
        let j = cx.j();
        (j.role_id.clone(), j.service_user_id.clone())
    };
    if let Some(id) = role_id {
        if let Some(r) = cx.s1(ROLE, || cx.s1.role(&id, &cx.s.scope)).await? {
            let what = format!("the role {:?}", r.name);
            if adoptable(cx, ROLE, &what, r.description.as_deref())? {
                ViewerRole.write(cx, &id).await?;
            }
        }
    }
    if let Some(id) = service_user_id {
        if let Some(su) = cx.s1(SERVICE_USER, || cx.s1.service_user(&id)).await? {
            let what = format!("the service user {:?}", su.name);
            if adoptable(cx, SERVICE_USER, &what, su.description.as_deref())? {
                ApiServiceUser.set_role(cx, &id).await?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
pub struct ViewerRole;
const ROLE: &str = "Step 1: role \"Viewer - Expel\" (Viewer + investigation permissions)";

impl ViewerRole {
    fn description(cx: &Cx) -> String {
        format!(
            "Viewer plus the permissions Expel's SOC needs to investigate ({})",
            cx.s.owner.in_text()
        )
    }
    async fn write(&self, cx: &Cx, id: &str) -> Result<(), StepError> {
        let ids: Vec<String> = cx.desired().await?.permissions.keys().cloned().collect();
        let desc = Self::description(cx);
        cx.s1(ROLE, || cx.s1.update_role(id, &cx.s.role_name, &desc, &ids))
            .await?;
        Ok(())
    }
}

impl ViewerRole {
    async fn find_or_make(&self, cx: &Cx) -> Result<(), StepError> {
        let scope = &cx.s.scope;
        let existing = cx
            .s1(ROLE, || cx.s1.roles_named(scope, &cx.s.role_name))
            .await?;
        if let Some(r) = existing.iter().find(|r| r.predefined_role) {
            return Err(StepError::new(ROLE, format!("{:?} is a predefined role; the guide duplicates Viewer into a new role: choose another role_name", r.name)));
        }
        if let Some(r) = existing.into_iter().next() {
            return self.adopt(cx, r).await;
        }
        let ids: Vec<String> = cx.desired().await?.permissions.keys().cloned().collect();
        let desc = Self::description(cx);
        // A lost answer may hide a role made: looked for before it is sent again.
        let made = create_once(
            &cx.deadline,
            ROLE,
            Look::AfterLostAnswer,
            || async {
                let found = cx.s1.roles_named(scope, &cx.s.role_name).await?;
                Ok(found.into_iter().find(|r| !r.predefined_role))
            },
            || cx.s1.create_role(scope, &cx.s.role_name, &desc, &ids),
        )
        .await?;
        match made {
            Made::Created(r) => {
                cx.j().role_id = Some(r.id);
                Ok(())
            }
            Made::Found(r) => self.adopt(cx, r).await,
        }
    }
    /// A role of our name found in our scope (after a crash, or a lost answer): the write
    /// also puts this instance's owner in its description.
    async fn adopt(&self, cx: &Cx, r: Role) -> Result<(), StepError> {
        adoptable(
            cx,
            ROLE,
            &format!("the role {:?}", r.name),
            r.description.as_deref(),
        )?;
        cx.j().role_id = Some(r.id.clone());
        self.write(cx, &r.id).await
    }
}

#[async_trait]
impl Step<Cx> for ViewerRole {
    fn id(&self) -> Piece {
        Piece::Role
    }
    fn title(&self) -> &'static str {
        ROLE
    }
    fn needs(&self) -> &'static [Piece] {
        &[]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        or_look_again(|| self.find_or_make(cx), || cx.j().role_id.is_some()).await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let Some(id) = cx.j().role_id.clone() else {
            return Ok(Observed::NotCreated);
        };
        let Some(role) = cx.s1(ROLE, || cx.s1.role(&id, &cx.s.scope)).await? else {
            return Ok(Observed::Gone);
        };
        let want = &cx.desired().await?.permissions;
        let have = role.granted();
        let mut p = Vec::new();
        if role.name != cx.s.role_name {
            p.push(format!(
                "role is named {:?} instead of {:?}",
                role.name, cx.s.role_name
            ));
        }
        let missing: Vec<&str> = want
            .iter()
            .filter(|(k, _)| !have.contains(*k))
            .map(|(_, v)| v.as_str())
            .collect();
        if !missing.is_empty() {
            p.push(format!("permissions removed: {}", missing.join(", ")));
        }
        let extra: Vec<&str> = have
            .iter()
            .filter(|k| !want.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            p.push(format!("permissions added: {}", extra.join(", ")));
        }
        Ok(Observed::differs(p))
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        let id = cx
            .j()
            .role_id
            .clone()
            .ok_or_else(|| StepError::new(ROLE, "no role recorded"))?;
        self.write(cx, &id).await
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(id) = cx.j().role_id.clone() else {
            return Ok(());
        };
        // Never delete a role that lost our marker (someone took it over).
        if let Some(r) = cx.s1(ROLE, || cx.s1.role(&id, &cx.s.scope)).await? {
            if !deletable(
                cx,
                &format!("the role {:?}", r.name),
                r.description.as_deref(),
            ) {
                return Ok(());
            }
        }
        cx.s1(ROLE, || cx.s1.delete_role(&id)).await
    }
}

// ---------------------------------------------------------------------------------------
pub struct ConsoleUser;
const CONSOLE_USER: &str = "Step 1: console user \"Expel SOC\" (invitation)";

/// One console user serves every account (or site) of the organization, and Terraform
/// changes several devices of one configuration concurrently in this process. The API has no
/// atomic "add (or remove) one role of a user": a change reads the user's roles and writes
/// them all back, so changes to one user are serialized, or one would undo the other.
fn user_lock(cx: &Cx) -> Arc<tokio::sync::Mutex<()>> {
    type Locks = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    let key = format!(
        "{}|{}",
        cx.s.console_url,
        cx.s.console_email.to_ascii_lowercase()
    );
    let mut locks = match LOCKS.get_or_init(Locks::default).lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    locks.entry(key).or_default().clone()
}

impl ConsoleUser {
    /// The user's roles in other scopes (other accounts or sites that share the user).
    fn other_scope_roles(cx: &Cx, u: &User) -> Vec<(String, String)> {
        u.scope_roles
            .iter()
            .filter(|sr| sr.id != cx.s.scope.id())
            .map(|sr| (sr.id.clone(), sr.role_id.clone()))
            .collect()
    }
    /// Ours (the console e-mail is ours by construction; the full name is the marker).
    fn is_ours(cx: &Cx, u: &User) -> bool {
        u.full_name == cx.s.console_user_name && u.email.eq_ignore_ascii_case(&cx.s.console_email)
    }
    /// Gives the user our role in our scope, keeping its roles in other scopes.
    async fn set_role(&self, cx: &Cx, u: &User) -> Result<(), StepError> {
        let role = cx
            .j()
            .role_id
            .clone()
            .ok_or_else(|| StepError::new(CONSOLE_USER, "the role is not made yet"))?;
        if u.scope != cx.s.scope.kind() && !Self::other_scope_roles(cx, u).is_empty() {
            return Err(StepError::new(CONSOLE_USER, format!("the console user {} is shared with other {}s, and a user has one scope: it cannot also hold a role in {}; use the same kind of scope (site_id set or not) for every expel_sentinelone_device of this organization", u.email, u.scope, cx.s.scope)));
        }
        let mut sr = Self::other_scope_roles(cx, u);
        sr.push((cx.s.scope.id().to_string(), role));
        cx.s1(CONSOLE_USER, || {
            cx.s1.set_user_scope_roles(&u.id, cx.s.scope.kind(), &sr)
        })
        .await?;
        Ok(())
    }
}

impl ConsoleUser {
    async fn find_or_make(&self, cx: &Cx) -> Result<(), StepError> {
        let email = cx.s.console_email.clone();
        let existing = cx
            .s1(CONSOLE_USER, || cx.s1.users_with_email(&email))
            .await?;
        if let Some(u) = existing.into_iter().next() {
            return self.adopt(cx, u).await;
        }
        let role = cx
            .j()
            .role_id
            .clone()
            .ok_or_else(|| StepError::new(CONSOLE_USER, "the role is not made yet"))?;
        // A lost answer may hide a user made (and invited): looked for before it is sent again.
        let made = create_once(
            &cx.deadline,
            CONSOLE_USER,
            Look::AfterLostAnswer,
            || async { Ok(cx.s1.users_with_email(&email).await?.into_iter().next()) },
            || {
                cx.s1
                    .create_user(&email, &cx.s.console_user_name, &cx.s.scope, &role)
            },
        )
        .await?;
        match made {
            Made::Created(u) => {
                cx.j().console_user_id = Some(u.id);
                Ok(())
            }
            Made::Found(u) => self.adopt(cx, u).await,
        }
    }
    /// A console user with Expel's address (after a crash, a lost answer, or made for another
    /// account or site of the tenant).
    async fn adopt(&self, cx: &Cx, u: User) -> Result<(), StepError> {
        let email = &cx.s.console_email;
        // The console e-mail is per organization: another account of the tenant may
        // already have it. Ours (Expel's address and our full name): add this scope.
        if !Self::is_ours(cx, &u) {
            return Err(StepError::new(CONSOLE_USER, format!("a console user {email} named {:?} (not {:?}) already exists and was not made by this provider; import it (terraform import of the device adopts it), or rename it to {:?} in the console to let Terraform adopt it and add this {} to it", u.full_name, cx.s.console_user_name, cx.s.console_user_name, cx.s.scope.kind())));
        }
        cx.j().console_user_id = Some(u.id.clone());
        let role = cx.j().role_id.clone().unwrap_or_default();
        if !u
            .scope_roles
            .iter()
            .any(|sr| sr.id == cx.s.scope.id() && sr.role_id == role)
        {
            self.set_role(cx, &u).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Step<Cx> for ConsoleUser {
    fn id(&self) -> Piece {
        Piece::ConsoleUser
    }
    fn title(&self) -> &'static str {
        CONSOLE_USER
    }
    fn needs(&self) -> &'static [Piece] {
        &[Piece::Role]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        let lock = user_lock(cx);
        let _serialized = lock.lock().await;
        or_look_again(
            || self.find_or_make(cx),
            || cx.j().console_user_id.is_some(),
        )
        .await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let Some(id) = cx.j().console_user_id.clone() else {
            return Ok(Observed::NotCreated);
        };
        let Some(u) = cx.s1(CONSOLE_USER, || cx.s1.user(&id)).await? else {
            return Ok(Observed::Gone);
        };
        let role = cx.j().role_id.clone().unwrap_or_default();
        let mut p = Vec::new();
        match u.scope_roles.iter().find(|sr| sr.id == cx.s.scope.id()) {
            None => p.push(format!(
                "console user {} no longer has access to {}",
                u.email, cx.s.scope
            )),
            Some(sr) if sr.role_id != role => p.push(format!(
                "console user {} has the role {:?} instead of {:?}",
                u.email,
                sr.role_name.clone().unwrap_or_else(|| sr.role_id.clone()),
                cx.s.role_name
            )),
            Some(_) => {}
        }
        if u.full_name != cx.s.console_user_name {
            p.push(format!(
                "console user is named {:?} instead of {:?}",
                u.full_name, cx.s.console_user_name
            ));
        }
        Ok(Observed::differs(p))
    }
    async fn repair(&self, cx: &Cx, _problems: &[Problem<Cause>]) -> Result<(), StepError> {
        let id = cx
            .j()
            .console_user_id
            .clone()
            .ok_or_else(|| StepError::new(CONSOLE_USER, "no console user recorded"))?;
        let lock = user_lock(cx);
        let _serialized = lock.lock().await;
        let u = cx
            .s1(CONSOLE_USER, || cx.s1.user(&id))
            .await?
            .ok_or_else(|| StepError::new(CONSOLE_USER, "the console user vanished"))?;
        self.set_role(cx, &u).await
    }
    /// Removes our scope's role from the user; deletes the user only when no other
    /// account or site still uses it, and never one that lost our marker.
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(id) = cx.j().console_user_id.clone() else {
            return Ok(());
        };
        let lock = user_lock(cx);
        let _serialized = lock.lock().await;
        let Some(u) = cx.s1(CONSOLE_USER, || cx.s1.user(&id)).await? else {
            return Ok(());
        };
        let others = Self::other_scope_roles(cx, &u);
        if !others.is_empty() {
            if others.len() < u.scope_roles.len() {
                cx.s1(CONSOLE_USER, || {
                    cx.s1.set_user_scope_roles(&u.id, &u.scope, &others)
                })
                .await?;
            }
            return Ok(());
        }
        if !Self::is_ours(cx, &u) {
            cx.warn(format!(
                "the console user {} no longer carries our name {:?}; it was left in place",
                u.email, cx.s.console_user_name
            ));
            return Ok(());
        }
        cx.s1(CONSOLE_USER, || cx.s1.delete_user(&id)).await
    }
}

// ---------------------------------------------------------------------------------------
pub struct ApiServiceUser;
const SERVICE_USER: &str = "Step 2: service user \"Expel API\" (IR Team) and its API token";

impl ApiServiceUser {
    fn description(cx: &Cx) -> String {
        format!(
            "API Service user for Expel integration ({})",
            cx.s.owner.in_text()
        )
    }
    /// Gives the service user the guide's role in our scope, and our description.
    async fn set_role(&self, cx: &Cx, id: &str) -> Result<(), StepError> {
        let role = cx.desired().await?.service_role_id.clone();
        let desc = Self::description(cx);
        cx.s1(SERVICE_USER, || {
            cx.s1.set_service_user_role(id, &cx.s.scope, &role, &desc)
        })
        .await?;
        Ok(())
    }
    async fn make(&self, cx: &Cx) -> Result<(), StepError> {
        let role = cx.desired().await?.service_role_id.clone();
        let exp = cx.expiration(SERVICE_USER)?;
        let desc = Self::description(cx);
        // A lost answer may hide a service user made: looked for before it is sent again
        // (its token, only in the lost answer, is then made anew).
        let made = create_once(
            &cx.deadline,
            SERVICE_USER,
            Look::AfterLostAnswer,
            || async {
                let found = cx
                    .s1
                    .service_users_named(&cx.s.scope, &cx.s.service_user_name)
                    .await?;
                Ok(found.into_iter().next())
            },
            || {
                cx.s1
                    .create_service_user(&cx.s.service_user_name, &desc, &exp, &cx.s.scope, &role)
            },
        )
        .await?;
        match made {
            Made::Created((su, token)) => {
                cx.j().service_user_id = Some(su.id);
                cx.record_token(token, &exp);
                Ok(())
            }
            Made::Found(su) => self.adopt(cx, su).await,
        }
    }
    fn problems(&self, cx: &Cx, su: &ServiceUser, service_role: &str) -> Vec<Problem<Cause>> {
        let mut p = Vec::new();
        if su.name != cx.s.service_user_name {
            p.push(Problem::new(
                format!(
                    "service user is named {:?} instead of {:?}",
                    su.name, cx.s.service_user_name
                ),
                Cause::ServiceUserName,
            ));
        }
        match su.scope_roles.iter().find(|sr| sr.id == cx.s.scope.id()) {
            Some(sr) if sr.role_id == service_role => {}
            Some(sr) => p.push(Problem::new(
                format!(
                    "service user has the role {:?} instead of {SERVICE_ROLE:?}",
                    sr.role_name.clone().unwrap_or_else(|| sr.role_id.clone())
                ),
                Cause::ServiceUserAccess,
            )),
            None => p.push(Problem::new(
                format!("service user no longer has access to {}", cx.s.scope),
                Cause::ServiceUserAccess,
            )),
        }
        let token = |text: String| Problem::new(text, Cause::Token);
        let now = when::now();
        match su.api_token.as_ref().and_then(|t| t.expires_at.as_deref()) {
            None => p.push(token(format!("{TOKEN_PROBLEM} was revoked (the service user has no live token)"))),
            Some(exp) => match when::parse(exp) {
                Some(e) if e <= now => p.push(token(format!("{TOKEN_PROBLEM} expired at {}", when::format(e)))),
                // A fixed date is the user's choice: near it, say so rather than rotate.
                Some(e) if e - now < cx.s.rotate_before && cx.s.token_expiration_date.is_some() => cx.warn(format!(
                    "the SentinelOne API token expires at {}, within rotate_before; set a later token_expiration_date (or use token_expires_in) to rotate it",
                    when::format(e)
                )),
                Some(e) if e - now < cx.s.rotate_before => p.push(token(format!("{TOKEN_PROBLEM} expires at {}, within rotate_before: rotation due",
                    when::format(e)
                ))),
                Some(e) => {
                    let recorded = cx.j().token_expires_at.as_deref().and_then(when::parse);
                    if recorded.is_some_and(|r| (r - e).abs() > 1) && cx.j().new_token.is_none() {
                        p.push(token(format!("{TOKEN_PROBLEM} was regenerated outside Terraform (Workbench holds the old one)")));
                    }
                }
                None => p.push(token(format!("{TOKEN_PROBLEM} has an unreadable expiry {exp:?}"))),
            },
        }
        if cx.s.force_rotate && cx.j().new_token.is_none() {
            p.push(token(format!(
                "{TOKEN_PROBLEM} expiry settings changed: a new token is due"
            )));
        }
        p
    }
}

impl ApiServiceUser {
    async fn find_or_make(&self, cx: &Cx) -> Result<(), StepError> {
        let existing = cx
            .s1(SERVICE_USER, || {
                cx.s1
                    .service_users_named(&cx.s.scope, &cx.s.service_user_name)
            })
            .await?;
        match existing.into_iter().next() {
            Some(su) => self.adopt(cx, su).await,
            None => self.make(cx).await,
        }
    }
    /// A service user left in place on destroy (someone removed our marker from it) may still
    /// hold the token this resource made, known only to the Workbench device being deleted:
    /// a live credential nobody uses. It is revoked when it is still ours (the expiry this
    /// resource recorded); a token made since, or a service user another instance has
    /// claimed, is left alone.
    async fn revoke_ours(&self, cx: &Cx, su: &ServiceUser) -> Result<(), StepError> {
        if matches!(
            cx.s.owner
                .claim_text(su.description.as_deref().unwrap_or("")),
            Claim::Other(_)
        ) {
            return Ok(());
        }
        let recorded = cx.j().token_expires_at.as_deref().and_then(when::parse);
        let live = su
            .api_token
            .as_ref()
            .and_then(|t| t.expires_at.as_deref())
            .and_then(when::parse);
        let (Some(recorded), Some(live)) = (recorded, live) else {
            return Ok(());
        };
        if (recorded - live).abs() > 1 {
            return Ok(());
        }
        cx.s1(SERVICE_USER, || cx.s1.revoke_token(&su.id)).await?;
        cx.warn(format!(
            "the API token this resource made for the service user {:?} was revoked: only the deleted Workbench device knew it",
            su.name
        ));
        Ok(())
    }
    /// A service user of our name found in our scope (after a crash, or a lost answer).
    async fn adopt(&self, cx: &Cx, su: ServiceUser) -> Result<(), StepError> {
        let what = format!("the service user {:?}", su.name);
        let unclaimed = adoptable(cx, SERVICE_USER, &what, su.description.as_deref())?;
        // Adopted after a crash: its token was lost with the crash; make a new one.
        cx.j().service_user_id = Some(su.id.clone());
        let role = cx.desired().await?.service_role_id.clone();
        if unclaimed
            || !su
                .scope_roles
                .iter()
                .any(|sr| sr.id == cx.s.scope.id() && sr.role_id == role)
        {
            self.set_role(cx, &su.id).await?;
        }
        cx.rotate_token(SERVICE_USER).await
    }
}

#[async_trait]
impl Step<Cx> for ApiServiceUser {
    fn id(&self) -> Piece {
        Piece::ServiceUser
    }
    fn title(&self) -> &'static str {
        SERVICE_USER
    }
    // After the console user, so that destroy removes it first (guide order, reversed).
    fn needs(&self) -> &'static [Piece] {
        &[Piece::ConsoleUser]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        or_look_again(
            || self.find_or_make(cx),
            || cx.j().service_user_id.is_some(),
        )
        .await
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        let Some(id) = cx.j().service_user_id.clone() else {
            return Ok(Observed::NotCreated);
        };
        let Some(su) = cx.s1(SERVICE_USER, || cx.s1.service_user(&id)).await? else {
            return Ok(Observed::Gone);
        };
        let role = cx.desired().await?.service_role_id.clone();
        Ok(Observed::Present(self.problems(cx, &su, &role)))
    }
    async fn repair(&self, cx: &Cx, problems: &[Problem<Cause>]) -> Result<(), StepError> {
        let id = cx
            .j()
            .service_user_id
            .clone()
            .ok_or_else(|| StepError::new(SERVICE_USER, "no service user recorded"))?;
        let any = |c: Cause| problems.iter().any(|p| p.cause == c);
        if any(Cause::ServiceUserName) {
            // The name cannot change through the API: make the new one, retire the old.
            self.make(cx).await?;
            return cx.s1(SERVICE_USER, || cx.s1.delete_service_user(&id)).await;
        }
        if any(Cause::ServiceUserAccess) {
            self.set_role(cx, &id).await?;
        }
        if any(Cause::Token) {
            cx.rotate_token(SERVICE_USER).await?;
        }
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        let Some(id) = cx.j().service_user_id.clone() else {
            return Ok(());
        };
        if let Some(su) = cx.s1(SERVICE_USER, || cx.s1.service_user(&id)).await? {
            let what = format!("the service user {:?}", su.name);
            if !deletable(cx, &what, su.description.as_deref()) {
                return self.revoke_ours(cx, &su).await;
            }
        }
        cx.s1(SERVICE_USER, || cx.s1.delete_service_user(&id)).await
    }
}

// ---------------------------------------------------------------------------------------
pub use crate::resources::support::device_step::WorkbenchDevice;
const DEVICE: &str = "Step 3: register SentinelOne as a security device in Workbench";

/// The device step (`device_step`): the device is for our console, and its API token is sent
/// while it is fresh (a device found with our name gets a new one).
#[async_trait]
impl DeviceGuide for Cx {
    const TITLE: &'static str = DEVICE;
    const DEVICE: Piece = Piece::WorkbenchDevice;
    const NEEDS: &'static [Piece] = &[Piece::Role, Piece::ConsoleUser, Piece::ServiceUser];
    const LOST_ANSWER: LostAnswer = LostAnswer::RunAgain;
    const NOUN: &'static str = "security device";
    const SECRET: Option<(&'static str, &'static str)> = Some(("api_token", "stored-token"));

    fn device_at(&self) -> DeviceAt<'_> {
        DeviceAt::new(self.wbc(), &self.s.workbench_org, &self.s.name)
    }
    /// The device as we register it; `api_token` only when a fresh one is at hand.
    fn spec(&self) -> DeviceSpec {
        let mut spec = json!({
            "console_url": self.s.console_url,
            "status_syncing": self.s.status_syncing,
        });
        if let (Some(t), Some(o)) = (&self.j().new_token, spec.as_object_mut()) {
            o.insert("api_token".into(), Json::String(t.expose().to_string()));
        }
        DeviceSpec {
            name: self.s.name.clone(),
            location: self.s.device_location.clone(),
            device_type: "ENDPOINT".into(),
            plugin_slug: self.s.plugin_slug.clone(),
            device_spec: spec,
        }
    }
    /// Ours when it is a SentinelOne device for this console: a rerun adopts it.
    fn is_ours(&self, d: &SecurityDevice) -> bool {
        let url = d.device_spec.get("console_url").and_then(Json::as_str);
        d.plugin_slug == self.s.plugin_slug && url == Some(self.s.console_url.as_str())
    }
    fn not_ours(&self, _d: &SecurityDevice) -> String {
        format!("Workbench already has a device named {:?} for another console; import it (terraform import) or choose another name", self.s.name)
    }
    fn spec_differences(&self, d: &SecurityDevice, _want: &DeviceSpec) -> Vec<String> {
        let mut p = Vec::new();
        let url = d
            .device_spec
            .get("console_url")
            .and_then(Json::as_str)
            .unwrap_or("");
        if url != self.s.console_url {
            p.push(format!(
                "device server address is {url:?} instead of {:?}",
                self.s.console_url
            ));
        }
        let sync = d
            .device_spec
            .get("status_syncing")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        if sync != self.s.status_syncing {
            p.push(format!(
                "device status syncing is {} instead of {}",
                on_off(sync),
                on_off(self.s.status_syncing)
            ));
        }
        if self.j().new_token.is_some() {
            p.push("the API token was replaced; the device needs the new one".into());
        }
        p
    }
    fn journal_device<R>(&self, f: impl FnOnce(IdStatus) -> R) -> R {
        let j = &mut *self.j();
        f((&mut j.device_id, &mut j.device_status))
    }
    fn secret_handed_over(&self) {
        self.j().new_token = None;
    }
    fn warn_unhealthy(&self, detail: String) {
        self.warn(detail);
    }
    /// The token is needed again (the device was deleted in Workbench, or one with our name
    /// was found after a crash): make a new one.
    async fn fresh_secret(&self, _adopting: bool) -> Result<(), StepError> {
        if self.j().new_token.is_none() {
            self.rotate_token(DEVICE).await?;
        }
        Ok(())
    }
    /// With status syncing on, the role Workbench syncs with must grant what it needs.
    async fn check_before_write(&self) -> Result<(), StepError> {
        if !self.s.status_syncing {
            return Ok(());
        }
        let (who, missing) = status_sync_gaps(self).await?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StepError::new(DEVICE, format!("status_syncing needs the Manage level: {who} lacks {}; grant them or set status_syncing = false", missing.join(", "))))
        }
    }
}

/// Whose role status syncing relies on (in words) and the status-syncing permissions it
/// lacks, as "Page / Title". With `status_syncing_user = "console"` the role is ours and
/// must be made first.
pub async fn status_sync_gaps(cx: &Cx) -> Result<(String, Vec<String>), StepError> {
    let desired = cx.desired().await?;
    let (role_id, who) = if cx.s.status_syncing_user == "console" {
        (
            cx.j().role_id.clone().unwrap_or_default(),
            format!("the console user's role {:?}", cx.s.role_name),
        )
    } else {
        (
            desired.service_role_id.clone(),
            format!("the service user's role {SERVICE_ROLE:?} in {}", cx.s.scope),
        )
    };
    let role = cx
        .s1(DEVICE, || cx.s1.role(&role_id, &cx.s.scope))
        .await?
        .ok_or_else(|| StepError::new(DEVICE, format!("{who} does not exist")))?;
    let have = role.granted();
    let missing = desired
        .status_sync
        .iter()
        .filter(|(k, _)| !have.contains(*k))
        .map(|(_, v)| v.clone())
        .collect();
    Ok((who, missing))
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::sentinelone::Permission;

    fn perm(id: &str, title: &str, deps: &[&str]) -> Permission {
        Permission {
            identifier: id.into(),
            title: title.into(),
            value: false,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn pages() -> Vec<PermissionPage> {
        vec![
            PermissionPage {
                name: "Endpoints".into(),
                identifier: "endpoints".into(),
                permissions: vec![
                    perm("Endpoints.view", "View", &[]),
                    perm("Endpoints.fileFetch", "File Fetch", &["Endpoints.view"]),
                    perm(
                        "Endpoints.remoteShell",
                        "Remote Shell",
                        &["Endpoints.view", "Endpoints.fileFetch"],
                    ),
                ],
            },
            PermissionPage {
                name: "Endpoint Threats".into(),
                identifier: "threats".into(),
                permissions: vec![perm("Threats.view", "View", &[])],
            },
        ]
    }

    #[test]
    fn permissions_are_found_by_page_and_title_with_their_dependencies() {
        let got = resolve(&pages(), &[("endpoints".into(), "Remote Shell".into())]).unwrap();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![
                "Endpoints.fileFetch",
                "Endpoints.remoteShell",
                "Endpoints.view"
            ]
        );
        let err = resolve(&pages(), &[("Endpoints".into(), "Fly".into())]).unwrap_err();
        assert!(err.contains("Remote Shell"), "lists what exists: {err}");
        let err = resolve(&pages(), &[("Nope".into(), "View".into())]).unwrap_err();
        assert!(err.contains("Endpoint Threats"), "{err}");
    }

    #[test]
    fn describe_names_page_and_title() {
        assert_eq!(
            describe(&pages(), "Endpoints.fileFetch"),
            "Endpoints / File Fetch"
        );
        assert_eq!(describe(&pages(), "X.y"), "X.y");
    }
}
