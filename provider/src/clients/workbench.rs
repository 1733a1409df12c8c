//! Expel Workbench API client: JSON:API at `/api/v2`, `Authorization: Bearer <key>`.
//! 429 and 5xx are retried with backoff (honouring Retry-After); 4xx are the caller's fault.
use super::http::{api_url, display_url, transient, verb, with_json, Limits, Policy, Transport};
use super::retry::{RetryKind, Retryable};
use std::time::Duration;

use serde_json::Value as Json;
use url::Url;

use super::secret::redact;
use super::Secret;

#[derive(Debug, thiserror::Error)]
pub enum WorkbenchError {
    #[error("Workbench answered {status} to {method} {path}: {title}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        title: String,
        detail: Option<String>,
        /// The answer's Retry-After (seconds form), uncapped: when to ask again at the earliest.
        retry_after: Option<Duration>,
    },
    #[error("cannot reach Workbench at {base} ({method} {path}): {reason}")]
    Transport {
        base: String,
        method: &'static str,
        path: String,
        reason: String,
    },
    #[error("Workbench sent an unexpected answer to {method} {path}: {reason}")]
    Decode {
        method: &'static str,
        path: String,
        reason: String,
    },
}

impl WorkbenchError {
    pub fn status(&self) -> Option<u16> {
        match self {
            WorkbenchError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Retry-After of the answer that ended the request's own retries (429, 503), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WorkbenchError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl Retryable for WorkbenchError {
    fn retry_kind(&self) -> RetryKind {
        let lost = matches!(self, WorkbenchError::Transport { .. });
        RetryKind::retry_or_fail(lost || self.status().is_some_and(transient))
    }
}

/// A Workbench organization.
#[derive(Clone, Debug, PartialEq)]
pub struct Organization {
    pub id: String,
    pub name: String,
}

/// A plugin of the Workbench catalogue: how a security device of that kind is registered.
#[derive(Clone, Debug, PartialEq)]
pub struct Plugin {
    pub id: String,
    pub slug: String,
    pub display_name: String,
    pub vendor_name: String,
    /// JSON schema of the plugin's `device_spec`.
    pub device_spec_schema: Json,
}

/// Pages a listing may have before `links.next` is taken for a loop.
const MAX_PAGES: usize = 1000;

pub struct WorkbenchClient {
    transport: Transport,
    base: Url,
    api_key: Secret,
    max_attempts: u32,
}

impl WorkbenchClient {
    pub fn new(base: Url, api_key: Secret) -> Result<Self, reqwest::Error> {
        Ok(WorkbenchClient {
            transport: Transport::new("Workbench", &Limits::default())?,
            base,
            api_key,
            max_attempts: 5,
        })
    }

    /// The client with other time limits (the provider's `request_timeout` and
    /// `request_total_timeout`).
    pub fn with_limits(self, limits: &Limits) -> Result<Self, reqwest::Error> {
        Ok(WorkbenchClient {
            transport: self.transport.with_limits(limits)?,
            ..self
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        api_url(&self.base, "/api/v2", path)
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Json, WorkbenchError> {
        self.send(reqwest::Method::GET, path, query, None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<Json, WorkbenchError> {
        self.send_to(method, self.url(path), path, query, body)
            .await
    }

    /// Sends one request. Idempotent methods are retried on throttling, server errors and
    /// connection failures (honouring Retry-After); a POST is sent once, since repeating it
    /// could register a device twice (the engine adopts by name instead). `path` names the
    /// call in errors.
    async fn send_to(
        &self,
        method: reqwest::Method,
        url: Url,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<Json, WorkbenchError> {
        let verb = verb(&method);
        let policy = if method == reqwest::Method::POST {
            Policy::once()
        } else {
            Policy::idempotent(self.max_attempts)
        };
        let answer = self
            .transport
            .call(policy, path, || {
                let req = self.transport.request(method.clone(), url.clone());
                let req = req.query(query).bearer_auth(self.api_key.expose());
                with_json(req, "application/vnd.api+json", body)
            })
            .await
            .map_err(|reason| WorkbenchError::Transport {
                base: display_url(&self.base),
                method: verb,
                path: path.to_string(),
                reason,
            })?;
        let (status, bytes) = (answer.status, answer.body);
        if bytes.is_empty() && status < 400 {
            return Ok(Json::Null);
        }
        let json: Json = serde_json::from_slice(&bytes).map_err(|e| WorkbenchError::Decode {
            method: verb,
            path: path.to_string(),
            reason: format!("not JSON ({e})"),
        })?;
        if status >= 400 {
            let (title, detail) = error_text(&json);
            let (title, detail) = (redact(&title), detail.as_deref().map(redact));
            return Err(WorkbenchError::Api {
                method: verb,
                path: path.to_string(),
                status,
                title,
                detail,
                retry_after: answer.retry_after,
            });
        }
        Ok(json)
    }

    /// GET every page of a collection: the first with `page[limit]`, then each `links.next` exactly
    /// as Workbench returns it (Expel's pyexclient `workbench.py` builds no offsets). A next link
    /// to another origin is refused: the API key goes to the configured Workbench only.
    async fn list(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Json>, WorkbenchError> {
        let mut out = Vec::new();
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.push(("page[limit]", "100"));
        let mut url = self.url(path);
        let mut doc = self
            .send_to(reqwest::Method::GET, url.clone(), path, &q, None)
            .await?;
        for _ in 0..MAX_PAGES {
            let items = doc
                .get("data")
                .and_then(Json::as_array)
                .ok_or_else(|| decode_err(path, "no `data` array"))?;
            out.extend(items.iter().cloned());
            let Some(next) = doc.pointer("/links/next").and_then(Json::as_str) else {
                return Ok(out);
            };
            if items.is_empty() {
                return Ok(out);
            }
            url = url
                .join(next)
                .map_err(|e| decode_err(path, &format!("links.next is not a URL ({e})")))?;
            if url.origin() != self.base.origin() {
                return Err(decode_err(
                    path,
                    &format!(
                        "links.next points at {}, not at the configured Workbench {}",
                        url.origin().ascii_serialization(),
                        self.base.origin().ascii_serialization()
                    ),
                ));
            }
            doc = self
                .send_to(reqwest::Method::GET, url.clone(), path, &[], None)
                .await?;
        }
        Err(decode_err(
            path,
            &format!("more than {MAX_PAGES} pages; links.next never ends"),
        ))
    }

    pub async fn organization(&self, id: &str) -> Result<Organization, WorkbenchError> {
        let path = format!("organizations/{id}");
        let doc = self.get(&path, &[]).await?;
        organization_from(doc.get("data").unwrap_or(&Json::Null))
            .ok_or_else(|| decode_err(&path, "organization without id or name"))
    }

    pub async fn organizations(&self) -> Result<Vec<Organization>, WorkbenchError> {
        let items = self.list("organizations", &[]).await?;
        items
            .iter()
            .map(|i| {
                organization_from(i)
                    .ok_or_else(|| decode_err("organizations", "organization without id or name"))
            })
            .collect()
    }

    pub async fn plugins(&self) -> Result<Vec<Plugin>, WorkbenchError> {
        let items = self.list("plugins", &[]).await?;
        items
            .iter()
            .map(|i| {
                plugin_from(i)
                    .ok_or_else(|| decode_err("plugins", "plugin without id or plugin_slug"))
            })
            .collect()
    }
}

/// A security device as Workbench reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityDevice {
    pub id: String,
    pub name: String,
    pub location: String,
    pub plugin_slug: String,
    /// `device_spec` as read back: secrets are never returned.
    pub device_spec: Json,
    pub status: Option<String>,
    pub is_verifying_status: bool,
    /// Everything else Workbench returned (e.g. webhook settings of some plugins).
    pub attributes: Json,
    /// The device's `organization` relationship (`relationships.organization.data.id`);
    /// `None` when the answer leaves it out.
    pub organization_id: Option<String>,
    /// Set when the device was soft-deleted (pyexclient `workbench.py` lists it among the
    /// device attributes): gone for our purposes.
    pub deleted_at: Option<String>,
}

impl SecurityDevice {
    /// Whether the device is ours to adopt as `name` in `organization_id`: exactly that name
    /// (Workbench's `filter[name]` may match more loosely [G]), that organization (never trust
    /// the server-side `filter[organization][id]` alone: a device of another organization is
    /// someone else's), and not soft-deleted.
    pub fn adoptable_as(&self, organization_id: &str, name: &str) -> bool {
        self.name == name
            && self.organization_id.as_deref() == Some(organization_id)
            && self.deleted_at.is_none()
    }
}

/// What we register: the fields we own.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSpec {
    pub name: String,
    pub location: String,
    pub device_type: String,
    pub plugin_slug: String,
    pub device_spec: Json,
}

impl WorkbenchClient {
    /// Registers a device. The credentials Workbench uses to reach the vendor (SentinelOne
    /// API token, Wiz client secret) go in `device_spec`, as fields the plugin's
    /// `device_spec_json` marks `writeOnly`, not in the `secrets` resource
    /// (`/secrets/security_device-<guid>`) [G]: pyexclient's example of a secret is console
    /// login material (`device_secret` {console_url, username, password},
    /// `two_factor_secret`, behind `has_console_credentials`), which the guides never hand
    /// to Workbench; docs/guides/api-assumptions.md says how to confirm it.
    pub async fn create_device(
        &self,
        organization_id: &str,
        d: &DeviceSpec,
    ) -> Result<SecurityDevice, WorkbenchError> {
        let body = serde_json::json!({"data": {
            "type": "security_devices",
            "attributes": {
                "name": d.name, "location": d.location, "device_type": d.device_type,
                "plugin_slug": d.plugin_slug, "device_spec": d.device_spec,
                "task_source": "EXPEL_TASKPOOL",
            },
            "relationships": {"organization": {"data": {"type": "organizations", "id": organization_id}}},
        }});
        let doc = self
            .send(reqwest::Method::POST, "security_devices", &[], Some(&body))
            .await?;
        device_from(doc.get("data").unwrap_or(&Json::Null))
            .ok_or_else(|| decode_err("security_devices", "device without id"))
    }

    /// The device, or `None` when Workbench no longer has it: not found, or soft-deleted
    /// (`deleted_at` set), which counts as gone.
    pub async fn device(&self, id: &str) -> Result<Option<SecurityDevice>, WorkbenchError> {
        let path = format!("security_devices/{id}");
        match self.get(&path, &[]).await {
            Ok(doc) => Ok(device_from(doc.get("data").unwrap_or(&Json::Null))
                .filter(|d| d.deleted_at.is_none())),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The devices a create may adopt as `name` in `organization_id`: those the filtered
    /// listing returns that are [`SecurityDevice::adoptable_as`] that name and organization.
    /// Every device step adopts through this, so none adopts another organization's device,
    /// a look-alike name, or a soft-deleted device.
    pub async fn devices_named(
        &self,
        organization_id: &str,
        name: &str,
    ) -> Result<Vec<SecurityDevice>, WorkbenchError> {
        let items = self
            .list(
                "security_devices",
                &[
                    ("filter[name]", name),
                    ("filter[organization][id]", organization_id),
                ],
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(device_from)
            .filter(|d| d.adoptable_as(organization_id, name))
            .collect())
    }

    /// Updates the given attributes (`device_spec` is replaced whole; secrets left out keep
    /// their stored values).
    pub async fn update_device(
        &self,
        id: &str,
        attributes: Json,
    ) -> Result<SecurityDevice, WorkbenchError> {
        let path = format!("security_devices/{id}");
        let body = serde_json::json!({"data": {"type": "security_devices", "id": id, "attributes": attributes}});
        let doc = self
            .send(reqwest::Method::PATCH, &path, &[], Some(&body))
            .await?;
        device_from(doc.get("data").unwrap_or(&Json::Null))
            .ok_or_else(|| decode_err(&path, "device without id"))
    }

    /// Asks Workbench to check the device's health again.
    ///
    /// [G] No public API for this is known. Workbench checks a device after every create and
    /// update (the sandbox's emulator does so on every PATCH, `update_device` in
    /// tests/sandbox/sandbox/workbench.py), so this PATCHes the device's name unchanged.
    pub async fn recheck_device(&self, d: &SecurityDevice) -> Result<(), WorkbenchError> {
        self.update_device(&d.id, serde_json::json!({"name": d.name}))
            .await
            .map(drop)
    }

    /// Deletes the device; one that is already gone counts as deleted.
    pub async fn delete_device(&self, id: &str) -> Result<(), WorkbenchError> {
        match self
            .send(
                reqwest::Method::DELETE,
                &format!("security_devices/{id}"),
                &[],
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The `action_type` of Workbench's "Deactivate Access Keys" auto remediation for AWS
/// (pyexclient `RemediationActionSettings`, `action_type` values).
pub const DEACTIVATE_ACCESS_KEYS: &str = "DISABLE_AND_MODIFY_AWS_ACCESS_KEYS";

/// The agreement version an opt-in accepts (pyexclient: `automate_opt_in_agreement_version`,
/// restricted to "V1").
pub const OPT_IN_AGREEMENT: &str = "V1";

/// A `remediation_action_settings` record: whether an organization lets Workbench run one kind
/// of remediation on its own (`automate_opt_in`), and through which security devices
/// (pyexclient `RemediationActionSettings`: attributes and the `organization` and
/// `security_devices` relationships).
#[derive(Clone, Debug, PartialEq)]
pub struct RemediationSetting {
    pub id: String,
    pub action_type: String,
    pub automate_opt_in: bool,
    pub agreement_version: Option<String>,
    /// DENY or ALLOW: how the record's context list (of access keys, for this action) is read.
    pub list_type: Option<String>,
    pub organization_id: Option<String>,
    /// The member devices when the answer carries the relationship's `data`; `None` when it
    /// only links to them (then [`WorkbenchClient::remediation_devices`] reads them).
    pub device_ids: Option<Vec<String>>,
}

const SETTINGS: &str = "remediation_action_settings";

fn device_linkage(device_id: &str) -> Json {
    serde_json::json!({"data": [{"type": "security_devices", "id": device_id}]})
}

impl WorkbenchClient {
    /// The organization's records for `action_type`: the listing filtered by both (pyexclient
    /// `build_url` filters), each re-checked here (organization and action type as the record
    /// says them), since a looser server filter must not hand us another organization's record.
    pub async fn remediation_settings(
        &self,
        organization_id: &str,
        action_type: &str,
    ) -> Result<Vec<RemediationSetting>, WorkbenchError> {
        let items = self
            .list(
                SETTINGS,
                &[
                    ("filter[organization][id]", organization_id),
                    ("filter[action_type]", action_type),
                ],
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(setting_from)
            .filter(|s| {
                s.action_type == action_type
                    && s.organization_id.as_deref() == Some(organization_id)
            })
            .collect())
    }

    /// The record, or `None` when Workbench no longer has it.
    pub async fn remediation_setting(
        &self,
        id: &str,
    ) -> Result<Option<RemediationSetting>, WorkbenchError> {
        let path = format!("{SETTINGS}/{id}");
        match self.get(&path, &[]).await {
            Ok(doc) => Ok(setting_from(doc.get("data").unwrap_or(&Json::Null))),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The record's member devices: its relationship `data` when the answer had it, else the
    /// JSON:API relationship route `GET /<type>/<id>/relationships/security_devices`
    /// (pyexclient `make_url` names these routes).
    pub async fn remediation_devices(
        &self,
        setting: &RemediationSetting,
    ) -> Result<Vec<String>, WorkbenchError> {
        if let Some(ids) = &setting.device_ids {
            return Ok(ids.clone());
        }
        let path = format!("{SETTINGS}/{}/relationships/security_devices", setting.id);
        let doc = self.get(&path, &[]).await?;
        linkage_ids(&doc).ok_or_else(|| decode_err(&path, "no `data` list of security devices"))
    }

    /// Creates the organization's record for `action_type`, opted in (agreement
    /// [`OPT_IN_AGREEMENT`]) through `device_id` alone. The list type is DENY: an empty deny
    /// list excludes no access key [G].
    pub async fn create_remediation_setting(
        &self,
        organization_id: &str,
        action_type: &str,
        device_id: &str,
    ) -> Result<RemediationSetting, WorkbenchError> {
        let body = serde_json::json!({"data": {
            "type": SETTINGS,
            "attributes": {
                "action_type": action_type,
                "automate_opt_in": true,
                "automate_opt_in_agreement_version": OPT_IN_AGREEMENT,
                "automate_list_type": "DENY",
            },
            "relationships": {
                "organization": {"data": {"type": "organizations", "id": organization_id}},
                "security_devices": device_linkage(device_id),
            },
        }});
        let doc = self
            .send(reqwest::Method::POST, SETTINGS, &[], Some(&body))
            .await?;
        setting_from(doc.get("data").unwrap_or(&Json::Null))
            .ok_or_else(|| decode_err(SETTINGS, "remediation setting without id"))
    }

    /// Opts the record in (with the agreement version) or out; nothing else of it changes.
    pub async fn set_remediation_opt_in(
        &self,
        id: &str,
        opt_in: bool,
    ) -> Result<(), WorkbenchError> {
        let path = format!("{SETTINGS}/{id}");
        let mut attributes = serde_json::json!({"automate_opt_in": opt_in});
        if opt_in {
            attributes["automate_opt_in_agreement_version"] = Json::from(OPT_IN_AGREEMENT);
        }
        let body =
            serde_json::json!({"data": {"type": SETTINGS, "id": id, "attributes": attributes}});
        self.send(reqwest::Method::PATCH, &path, &[], Some(&body))
            .await
            .map(drop)
    }

    /// Adds `device_id` to the record's devices, leaving the others (a JSON:API POST to the
    /// relationship route adds members).
    pub async fn add_remediation_device(
        &self,
        id: &str,
        device_id: &str,
    ) -> Result<(), WorkbenchError> {
        let path = format!("{SETTINGS}/{id}/relationships/security_devices");
        self.send(
            reqwest::Method::POST,
            &path,
            &[],
            Some(&device_linkage(device_id)),
        )
        .await
        .map(drop)
    }

    /// Takes `device_id` out of the record's devices, leaving the others (a JSON:API DELETE on
    /// the relationship route); a record already gone counts as done.
    pub async fn remove_remediation_device(
        &self,
        id: &str,
        device_id: &str,
    ) -> Result<(), WorkbenchError> {
        let path = format!("{SETTINGS}/{id}/relationships/security_devices");
        let linkage = device_linkage(device_id);
        match self
            .send(reqwest::Method::DELETE, &path, &[], Some(&linkage))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes a record (only ever one we made); one already gone counts as deleted.
    pub async fn delete_remediation_setting(&self, id: &str) -> Result<(), WorkbenchError> {
        let path = format!("{SETTINGS}/{id}");
        match self.send(reqwest::Method::DELETE, &path, &[], None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn linkage_ids(doc: &Json) -> Option<Vec<String>> {
    doc.get("data")?
        .as_array()?
        .iter()
        .map(|d| d.get("id").and_then(Json::as_str).map(str::to_string))
        .collect()
}

fn setting_from(item: &Json) -> Option<RemediationSetting> {
    Some(RemediationSetting {
        id: item.get("id")?.as_str()?.to_string(),
        action_type: attr_str(item, "action_type"),
        automate_opt_in: attr(item, "automate_opt_in")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        agreement_version: attr(item, "automate_opt_in_agreement_version")
            .and_then(Json::as_str)
            .map(str::to_string),
        list_type: attr(item, "automate_list_type")
            .and_then(Json::as_str)
            .map(str::to_string),
        organization_id: item
            .pointer("/relationships/organization/data/id")
            .and_then(Json::as_str)
            .map(str::to_string),
        device_ids: item
            .pointer("/relationships/security_devices")
            .and_then(linkage_ids),
    })
}

fn device_from(item: &Json) -> Option<SecurityDevice> {
    Some(SecurityDevice {
        id: item.get("id")?.as_str()?.to_string(),
        name: attr_str(item, "name"),
        location: attr_str(item, "location"),
        plugin_slug: attr_str(item, "plugin_slug"),
        device_spec: attr(item, "device_spec").cloned().unwrap_or(Json::Null),
        status: attr(item, "status")
            .and_then(Json::as_str)
            .map(str::to_string),
        is_verifying_status: attr(item, "is_verifying_status")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        attributes: item.get("attributes").cloned().unwrap_or(Json::Null),
        organization_id: item
            .pointer("/relationships/organization/data/id")
            .and_then(Json::as_str)
            .map(str::to_string),
        deleted_at: attr(item, "deleted_at")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

fn decode_err(path: &str, reason: &str) -> WorkbenchError {
    WorkbenchError::Decode {
        method: "GET",
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

fn attr<'a>(item: &'a Json, name: &str) -> Option<&'a Json> {
    item.get("attributes").and_then(|a| a.get(name))
}

fn attr_str(item: &Json, name: &str) -> String {
    attr(item, name)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

fn organization_from(item: &Json) -> Option<Organization> {
    let id = item.get("id")?.as_str()?.to_string();
    let name = attr(item, "name")?.as_str()?.to_string();
    Some(Organization { id, name })
}

fn plugin_from(item: &Json) -> Option<Plugin> {
    let id = item.get("id")?.as_str()?.to_string();
    let slug = attr(item, "plugin_slug")?.as_str()?.to_string();
    Some(Plugin {
        id,
        slug,
        display_name: attr_str(item, "display_name"),
        vendor_name: attr_str(item, "vendor_name"),
        device_spec_schema: attr(item, "device_spec_json")
            .cloned()
            .unwrap_or(Json::Null),
    })
}

/// The error text of a JSON:API `errors[]` envelope, or of Workbench's other error shapes.
fn error_text(doc: &Json) -> (String, Option<String>) {
    if let Some(e) = doc.pointer("/errors/0") {
        let title = e
            .get("title")
            .and_then(Json::as_str)
            .unwrap_or("error")
            .to_string();
        let mut detail = e.get("detail").and_then(Json::as_str).map(str::to_string);
        if let Some(ptr) = e.pointer("/source/pointer").and_then(Json::as_str) {
            detail = Some(format!("{} (at {ptr})", detail.unwrap_or_default()));
        }
        return (title, detail);
    }
    for k in ["message", "error_description", "error"] {
        if let Some(m) = doc.get(k).and_then(Json::as_str) {
            return (m.to_string(), None);
        }
    }
    ("error".to_string(), None)
}

/// Checks a `device_spec` against the JSON schema its plugin publishes in the catalogue, so a bad
/// device is refused before any call. Messages name the field and the rule, never a value: device
/// specs hold secrets. A plugin may publish `{}` (the example in pyexclient's docs) or nothing:
/// then there is no local schema to check, and Workbench's own check on create is the only one.
pub fn check_device_spec(plugins: &[Plugin], slug: &str, device_spec: &Json) -> Result<(), String> {
    let Some(plugin) = plugins.iter().find(|p| p.slug == slug) else {
        let known: Vec<_> = plugins.iter().map(|p| p.slug.as_str()).collect();
        return Err(format!(
            "Workbench has no plugin {slug:?} (known: {}); set plugin_slug",
            known.join(", ")
        ));
    };
    let schema = &plugin.device_spec_schema;
    if schema.is_null() || schema.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(());
    }
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| format!("plugin {slug:?} publishes an unusable device_spec schema: {e}"))?;
    let problems: Vec<String> = validator
        .iter_errors(device_spec)
        .map(|e| {
            format!(
                "{} does not match the schema ({:?})",
                e.instance_path(),
                e.kind().keyword()
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "device_spec does not match the {slug:?} plugin's schema: {}",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_device_is_adoptable_only_by_exact_name_in_our_organization_and_not_soft_deleted() {
        let doc = |id: &str, name: &str, org: Option<&str>, deleted_at: Json| {
            let mut d = json!({"type": "security_devices", "id": id,
                "attributes": {"name": name, "plugin_slug": "aws", "deleted_at": deleted_at}});
            if let Some(o) = org {
                d["relationships"] =
                    json!({"organization": {"data": {"type": "organizations", "id": o}}});
            }
            d
        };
        let listing = [
            doc("ours", "Acme", Some("org-a"), Json::Null),
            doc("other-org", "Acme", Some("org-b"), Json::Null),
            doc(
                "soft-deleted",
                "Acme",
                Some("org-a"),
                json!("2026-01-02T03:04:05.000Z"),
            ),
            doc("look-alike", "acme", Some("org-a"), Json::Null),
            doc("prefix", "Acme 2", Some("org-a"), Json::Null),
            doc("no-org", "Acme", None, Json::Null),
        ];
        let devices: Vec<SecurityDevice> = listing.iter().filter_map(device_from).collect();
        assert_eq!(devices.len(), listing.len());
        let adoptable: Vec<&str> = devices
            .iter()
            .filter(|d| d.adoptable_as("org-a", "Acme"))
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(adoptable, ["ours"]);
        let soft = devices.iter().find(|d| d.id == "soft-deleted");
        assert_eq!(
            soft.and_then(|d| d.deleted_at.as_deref()),
            Some("2026-01-02T03:04:05.000Z")
        );
        let other = devices.iter().find(|d| d.id == "other-org");
        assert_eq!(
            other.and_then(|d| d.organization_id.as_deref()),
            Some("org-b")
        );
    }

    fn org(id: &str) -> Json {
        json!({"type": "organizations", "id": id, "attributes": {"name": id}})
    }

    #[tokio::test]
    async fn listings_follow_links_next_as_returned_and_only_to_the_same_workbench() {
        let (base, seen) = pages(vec![
            json!({"data": [org("a")], "links": {"next": "/api/v2/organizations?page[limit]=1&page[offset]=1&opaque=x"}}),
            json!({"data": [org("b")], "links": {"next": null}}),
        ])
        .await;
        let wb = WorkbenchClient::new(base.clone(), Secret::new("k")).unwrap();
        let orgs = wb.organizations().await.unwrap();
        assert_eq!(
            orgs.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let lines: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.lines().next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "GET /api/v2/organizations?page%5Blimit%5D=100 HTTP/1.1",
                "GET /api/v2/organizations?page[limit]=1&page[offset]=1&opaque=x HTTP/1.1",
            ]
        );

        let (base, seen) = pages(vec![
            json!({"data": [org("a")], "links": {"next": "http://example.invalid/api/v2/organizations?page=2"}}),
        ])
        .await;
        let wb = WorkbenchClient::new(base, Secret::new("k")).unwrap();
        let e = wb.organizations().await.unwrap_err().to_string();
        assert!(e.contains("http://example.invalid"), "{e}");
        assert!(e.contains("not at the configured Workbench"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1, "the key went elsewhere");
    }

    #[test]
    fn an_empty_or_missing_plugin_schema_leaves_nothing_to_check() {
        let plugin = |schema: Json| Plugin {
            id: "p1".into(),
            slug: "sentinelone".into(),
            display_name: "SentinelOne".into(),
            vendor_name: "SentinelOne".into(),
            device_spec_schema: schema,
        };
        let spec = json!({"console_url": "https://x", "api_token": "t"});
        for schema in [json!({}), Json::Null] {
            assert_eq!(
                check_device_spec(&[plugin(schema.clone())], "sentinelone", &spec),
                Ok(()),
                "{schema}"
            );
        }
        let strict = plugin(json!({"type": "object", "additionalProperties": false}));
        assert!(check_device_spec(&[strict], "sentinelone", &spec).is_err());
    }

    #[tokio::test]
    async fn a_soft_deleted_device_read_by_id_is_gone() {
        let device = |deleted_at: Json| {
            json!({"data": {"type": "security_devices", "id": "d1",
                "attributes": {"name": "Acme", "deleted_at": deleted_at},
                "relationships": {"organization": {"data": {"type": "organizations", "id": "o"}}}}})
        };
        let (base, _) = pages(vec![
            device(Json::Null),
            device(json!("2026-01-02T03:04:05.000Z")),
        ])
        .await;
        let wb = WorkbenchClient::new(base, Secret::new("k")).unwrap();
        let live = wb.device("d1").await.unwrap();
        assert_eq!(live.and_then(|d| d.organization_id).as_deref(), Some("o"));
        assert_eq!(wb.device("d1").await.unwrap(), None);
    }

    #[test]
    fn device_spec_checked_against_the_plugin_schema_without_echoing_values() {
        let plugins = vec![Plugin {
            id: "p1".into(),
            slug: "sentinelone".into(),
            display_name: "SentinelOne".into(),
            vendor_name: "SentinelOne".into(),
            device_spec_schema: json!({
                "type": "object",
                "required": ["console_url", "api_token"],
                "properties": {"console_url": {"type": "string"}, "api_token": {"type": "string"}},
                "additionalProperties": false
            }),
        }];
        let ok = json!({"console_url": "https://x", "api_token": "s3cr3t"});
        assert!(check_device_spec(&plugins, "sentinelone", &ok).is_ok());
        let bad = json!({"console_url": 5, "api_token": "s3cr3t", "extra": "s3cr3t"});
        let e = check_device_spec(&plugins, "sentinelone", &bad).unwrap_err();
        assert!(e.contains("/console_url"), "{e}");
        assert!(!e.contains("s3cr3t"), "a value leaked: {e}");
        let e = check_device_spec(&plugins, "wiz", &ok).unwrap_err();
        assert!(e.contains("known: sentinelone"), "{e}");
    }

    /// A fake Workbench answering the n-th request with `answer(n)`: status, extra header
    /// lines and body. The requests it saw (whole, head and body) are in the log.
    async fn scripted(
        answer: impl Fn(usize) -> (u16, &'static str, Json) + Send + 'static,
    ) -> (Url, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(i) = text.find("\r\n\r\n") else {
                        if n == 0 {
                            break;
                        }
                        continue;
                    };
                    let len = text[..i]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if n == 0 || buf.len() >= i + 4 + len {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                log.lock().unwrap().push(text);
                let (status, extra, body) = answer(n);
                let body = body.to_string();
                let resp = format!("HTTP/1.1 {status} X\r\nContent-Type: application/vnd.api+json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        (base, seen)
    }

    /// Every request answered the same way.
    async fn fake(
        status: u16,
        extra: &'static str,
        body: Json,
    ) -> (Url, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        scripted(move |_| (status, extra, body.clone())).await
    }

    /// The n-th request answered 200 with `bodies[n]` (an empty list after the last).
    async fn pages(bodies: Vec<Json>) -> (Url, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        scripted(move |n| {
            let body = bodies.get(n).cloned().unwrap_or(json!({"data": []}));
            (200, "", body)
        })
        .await
    }

    /// The `i`-th request the fake saw: its request line and its JSON body (null if none).
    fn sent(seen: &std::sync::Mutex<Vec<String>>, i: usize) -> (String, Json) {
        let seen = seen.lock().unwrap();
        let (head, body) = seen[i].split_once("\r\n\r\n").unwrap();
        let line = head.lines().next().unwrap_or_default().to_string();
        (line, serde_json::from_str(body).unwrap_or(Json::Null))
    }

    #[tokio::test]
    async fn retry_after_of_the_last_answer_is_surfaced_uncapped() {
        let throttled = json!({"errors": [{"status": "429", "title": "Too Many Requests"}]});
        let (base, seen) = fake(429, "Retry-After: 90\r\n", throttled).await;
        let mut c = WorkbenchClient::new(base, Secret::new("k")).unwrap();
        c.max_attempts = 1;
        let e = c.device("d1").await.unwrap_err();
        assert_eq!(e.status(), Some(429), "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(90)), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn recheck_patches_the_device_name_unchanged() {
        let answer = json!({"data": {"id": "d1", "type": "security_devices", "attributes": {"name": "Acme", "is_verifying_status": true}}});
        let (base, seen) = fake(200, "", answer).await;
        let c = WorkbenchClient::new(base, Secret::new("k")).unwrap();
        let d = SecurityDevice {
            id: "d1".into(),
            name: "Acme".into(),
            location: "x".into(),
            plugin_slug: "aws".into(),
            device_spec: json!({"role_arn": "arn"}),
            status: Some("unhealthy".into()),
            is_verifying_status: false,
            attributes: json!({}),
            organization_id: None,
            deleted_at: None,
        };
        c.recheck_device(&d).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1, "{seen:?}");
        let (line, body) = sent(&seen, 0);
        assert_eq!(line, "PATCH /api/v2/security_devices/d1 HTTP/1.1");
        assert_eq!(
            body["data"]["attributes"],
            json!({"name": "Acme"}),
            "only the name, unchanged"
        );
    }

    fn setting(id: &str, org: &str, action: &str, devices: Option<&[&str]>) -> Json {
        let mut s = json!({"type": "remediation_action_settings", "id": id,
            "attributes": {"action_type": action, "automate_opt_in": true,
                "automate_opt_in_agreement_version": "V1", "automate_list_type": "DENY"},
            "relationships": {"organization": {"data": {"type": "organizations", "id": org}}}});
        if let Some(ids) = devices {
            let data: Vec<Json> = ids
                .iter()
                .map(|d| json!({"type": "security_devices", "id": d}))
                .collect();
            s["relationships"]["security_devices"] = json!({"data": data});
        }
        s
    }

    #[tokio::test]
    async fn remediation_settings_are_filtered_by_organization_and_action_and_rechecked() {
        let (base, seen) = pages(vec![json!({"data": [
            setting("ours", "org-a", DEACTIVATE_ACCESS_KEYS, Some(&["d1", "d2"])),
            setting("other-org", "org-b", DEACTIVATE_ACCESS_KEYS, Some(&[])),
            setting("other-action", "org-a", "CONTAIN_HOSTS", None),
        ], "links": {"next": null}})])
        .await;
        let wb = WorkbenchClient::new(base, Secret::new("k")).unwrap();
        let found = wb
            .remediation_settings("org-a", DEACTIVATE_ACCESS_KEYS)
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let s = &found[0];
        assert_eq!((s.id.as_str(), s.automate_opt_in), ("ours", true));
        assert_eq!(s.agreement_version.as_deref(), Some("V1"));
        assert_eq!(s.list_type.as_deref(), Some("DENY"));
        assert_eq!(wb.remediation_devices(s).await.unwrap(), ["d1", "d2"]);
        let line = seen.lock().unwrap()[0].lines().next().unwrap().to_string();
        assert!(
            line.contains("filter%5Borganization%5D%5Bid%5D=org-a")
                && line.contains("filter%5Baction_type%5D=DISABLE_AND_MODIFY_AWS_ACCESS_KEYS"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn members_are_read_from_the_relationship_route_when_the_record_only_links_them() {
        let (base, seen) = pages(vec![json!({"data": [
            {"type": "security_devices", "id": "d1"}, {"type": "security_devices", "id": "d9"}]})])
        .await;
        let wb = WorkbenchClient::new(base, Secret::new("k")).unwrap();
        let linked = setting_from(&setting("s1", "org-a", DEACTIVATE_ACCESS_KEYS, None)).unwrap();
        assert_eq!(linked.device_ids, None);
        assert_eq!(wb.remediation_devices(&linked).await.unwrap(), ["d1", "d9"]);
        let line = seen.lock().unwrap()[0].lines().next().unwrap().to_string();
        assert_eq!(
            line,
            "GET /api/v2/remediation_action_settings/s1/relationships/security_devices HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn joining_and_leaving_touch_only_our_device_and_a_gone_record_is_left() {
        let (base, seen) = scripted(|n| match n {
            0 | 1 => (200, "", json!({"data": []})),
            _ => (
                404,
                "",
                json!({"errors": [{"status": "404", "title": "Not Found"}]}),
            ),
        })
        .await;
        let wb = WorkbenchClient::new(base, Secret::new("k")).unwrap();
        wb.add_remediation_device("s1", "d1").await.unwrap();
        wb.set_remediation_opt_in("s1", true).await.unwrap();
        wb.remove_remediation_device("s1", "d1").await.unwrap();
        wb.delete_remediation_setting("s1").await.unwrap();
        let split = |i: usize| sent(&seen, i);
        let linkage = json!({"data": [{"type": "security_devices", "id": "d1"}]});
        assert_eq!(
            split(0),
            (
                "POST /api/v2/remediation_action_settings/s1/relationships/security_devices HTTP/1.1".into(),
                linkage.clone()
            )
        );
        let (line, body) = split(1);
        assert_eq!(
            line,
            "PATCH /api/v2/remediation_action_settings/s1 HTTP/1.1"
        );
        assert_eq!(
            body["data"]["attributes"],
            json!({"automate_opt_in": true, "automate_opt_in_agreement_version": "V1"})
        );
        assert_eq!(
            split(2),
            (
                "DELETE /api/v2/remediation_action_settings/s1/relationships/security_devices HTTP/1.1".into(),
                linkage
            )
        );
        assert_eq!(
            split(3).0,
            "DELETE /api/v2/remediation_action_settings/s1 HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn a_new_record_is_opted_in_through_our_device_alone() {
        let answer = json!({"data": setting("s1", "org-a", DEACTIVATE_ACCESS_KEYS, Some(&["d1"]))});
        let (base, seen) = fake(201, "", answer).await;
        let wb = WorkbenchClient::new(base, Secret::new("k")).unwrap();
        let made = wb
            .create_remediation_setting("org-a", DEACTIVATE_ACCESS_KEYS, "d1")
            .await
            .unwrap();
        assert_eq!(made.device_ids, Some(vec!["d1".to_string()]));
        let (line, body) = sent(&seen, 0);
        assert_eq!(line, "POST /api/v2/remediation_action_settings HTTP/1.1");
        assert_eq!(
            body["data"]["attributes"],
            json!({"action_type": DEACTIVATE_ACCESS_KEYS, "automate_opt_in": true,
                   "automate_opt_in_agreement_version": "V1", "automate_list_type": "DENY"})
        );
        assert_eq!(
            body["data"]["relationships"]["security_devices"],
            json!({"data": [{"type": "security_devices", "id": "d1"}]})
        );
        assert_eq!(
            body["data"]["relationships"]["organization"]["data"]["id"],
            "org-a"
        );
    }
}
