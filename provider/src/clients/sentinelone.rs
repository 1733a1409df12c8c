//! SentinelOne management API v2.1 client: `<console>/web/api/v2.1`,
//! `Authorization: ApiToken <token>`, answers in `{data, pagination{nextCursor}}`, errors in
//! `{errors: [{code, title, message, detail}]}`. 429 and 5xx are retried (honouring
//! Retry-After) for idempotent calls; a POST is retried only on 429, which the console answers
//! before doing anything. Tokens are `Secret`s: they never reach an error, a log or Debug.
use super::http::{api_url, display_url, transient, verb, with_json, Limits, Policy, Transport};
use super::retry::{RetryKind, Retryable};

use serde::Deserialize;
use serde_json::{json, Value as Json};
use url::Url;

use super::secret::redact;
use super::Secret;

pub const API_PREFIX: &str = "/web/api/v2.1";

#[derive(Debug, thiserror::Error)]
pub enum SentinelOneError {
    #[error("SentinelOne answered {status} to {method} {path}: {message}")]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        code: Option<i64>,
        message: String,
    },
    #[error("cannot reach the SentinelOne console at {base} ({method} {path}): {reason}")]
    Transport {
        base: String,
        method: &'static str,
        path: String,
        reason: String,
    },
    #[error("SentinelOne sent an unexpected answer to {method} {path}: {reason}")]
    Decode {
        method: &'static str,
        path: String,
        reason: String,
    },
}

impl SentinelOneError {
    pub fn status(&self) -> Option<u16> {
        match self {
            SentinelOneError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

impl Retryable for SentinelOneError {
    fn retry_kind(&self) -> RetryKind {
        let lost = matches!(self, SentinelOneError::Transport { .. });
        RetryKind::retry_or_fail(lost || self.status().is_some_and(transient))
    }
}

/// An account (the usual scope of everything the guide makes).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub state: Option<String>,
}

/// A site of an account.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub account_id: String,
}

/// Where roles, users and service users live: an account, or one site of it
/// (`scope` + `scopeRoles[].id` in the API, `accountIds` / `siteIds` in filters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Account(String),
    Site(String),
}

impl Scope {
    /// The API's `scope` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Account(_) => "account",
            Scope::Site(_) => "site",
        }
    }
    /// The account or site id (`scopeRoles[].id`).
    pub fn id(&self) -> &str {
        match self {
            Scope::Account(id) | Scope::Site(id) => id,
        }
    }
    /// The filter key naming this scope.
    fn filter(&self) -> &'static str {
        match self {
            Scope::Account(_) => "accountIds",
            Scope::Site(_) => "siteIds",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind(), self.id())
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub scope: Option<String>,
    pub scope_id: Option<String>,
    pub predefined_role: bool,
    /// Only in single-role answers and the new-role template.
    pub pages: Vec<PermissionPage>,
}

impl Role {
    /// Identifiers of the permissions this role grants (`value == true`).
    pub fn granted(&self) -> std::collections::BTreeSet<String> {
        self.pages
            .iter()
            .flat_map(|p| p.permissions.iter())
            .filter(|p| p.value)
            .map(|p| p.identifier.clone())
            .collect()
    }
}

/// A page of the role editor ("Endpoints", "Endpoint Threats", ...).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PermissionPage {
    pub name: String,
    pub identifier: String,
    pub permissions: Vec<Permission>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Permission {
    pub identifier: String,
    pub title: String,
    pub value: bool,
    pub depends_on: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopeRole {
    pub id: String,
    pub role_id: String,
    pub role_name: Option<String>,
}

/// A console user. `email` and `fullName` are nullable in the SDKs' models
/// (go-sdk `types/users.go` `*string`, ayol377 `models/users.rs` `x-nullable`): a null reads
/// as "", which matches no e-mail or name we look for.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub email: String,
    #[serde(deserialize_with = "null_as_default")]
    pub full_name: String,
    pub scope: String,
    pub scope_roles: Vec<ScopeRole>,
    pub invitation_sent: Option<bool>,
}

/// When a token was made and when it stops working (the value is never readable again).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenDetails {
    pub created_at: Option<String>,
    pub expires_at: Option<String>,
}

/// A service user. `name` is nullable (ayol377 `models/service_users.rs`, `x-nullable`): a
/// null reads as "", which no service user we make is called (names are 1-255 characters),
/// so one nameless service user does not stop a listing from decoding.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceUser {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub description: Option<String>,
    pub scope: String,
    pub scope_roles: Vec<ScopeRole>,
    /// `None` when the user has no live token (revoked).
    pub api_token: Option<TokenDetails>,
}

/// A token just made: the one moment its value is known.
pub struct NewToken {
    pub value: Secret,
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("value", &self.value)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

pub struct SentinelOneClient {
    transport: Transport,
    console: Url,
    token: Secret,
    max_attempts: u32,
}

impl SentinelOneClient {
    pub fn new(console: Url, token: Secret) -> Result<Self, reqwest::Error> {
        Ok(SentinelOneClient {
            transport: Transport::new("SentinelOne", &Limits::default())?,
            console,
            token,
            max_attempts: 6,
        })
    }

    /// The client with other time limits (the provider's `request_timeout` and
    /// `request_total_timeout`).
    pub fn with_limits(self, limits: &Limits) -> Result<Self, reqwest::Error> {
        Ok(SentinelOneClient {
            transport: self.transport.with_limits(limits)?,
            ..self
        })
    }

    pub fn console(&self) -> &Url {
        &self.console
    }

    fn url(&self, path: &str) -> Url {
        api_url(&self.console, API_PREFIX, path)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<Json, SentinelOneError> {
        let verb = verb(&method);
        let policy = Policy {
            attempts: self.max_attempts,
            after_failure: method != reqwest::Method::POST,
            retry_after: true,
        };
        let answer = self
            .transport
            .call(policy, path, || {
                let req = self.transport.request(method.clone(), self.url(path));
                let req = req
                    .query(query)
                    .header("Authorization", format!("ApiToken {}", self.token.expose()));
                with_json(req, "application/json", body)
            })
            .await
            .map_err(|reason| SentinelOneError::Transport {
                base: display_url(&self.console),
                method: verb,
                path: path.to_string(),
                reason,
            })?;
        let (status, bytes) = (answer.status, answer.body);
        if bytes.is_empty() && status < 400 {
            return Ok(Json::Null);
        }
        let doc: Json = match serde_json::from_slice(&bytes) {
            Ok(d) => d,
            Err(_) if status >= 400 => Json::Null,
            Err(e) => {
                return Err(SentinelOneError::Decode {
                    method: verb,
                    path: path.to_string(),
                    reason: format!("not JSON ({e})"),
                })
            }
        };
        if status >= 400 {
            let (code, message) = error_text(&doc, status);
            let message = redact(&message);
            return Err(SentinelOneError::Api {
                method: verb,
                path: path.to_string(),
                status,
                code,
                message,
            });
        }
        Ok(doc)
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Json, SentinelOneError> {
        self.send(reqwest::Method::GET, path, query, None).await
    }

    /// `data` of a single-object answer, decoded.
    async fn data<T: for<'de> Deserialize<'de>>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<T, SentinelOneError> {
        let verb = if method == reqwest::Method::GET {
            "GET"
        } else {
            "POST"
        };
        let doc = self.send(method, path, query, body).await?;
        decode(verb, path, doc.get("data").cloned().unwrap_or(Json::Null))
    }

    /// Every item of a list, following `pagination.nextCursor`.
    async fn list<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, SentinelOneError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", "100"));
            if let Some(c) = cursor.as_deref() {
                q.push(("cursor", c));
            }
            let doc = self.get(path, &q).await?;
            let items = doc
                .get("data")
                .and_then(Json::as_array)
                .cloned()
                .ok_or_else(|| SentinelOneError::Decode {
                    method: "GET",
                    path: path.to_string(),
                    reason: "no `data` array".into(),
                })?;
            for item in items {
                out.push(decode("GET", path, item)?);
            }
            cursor = doc
                .pointer("/pagination/nextCursor")
                .and_then(Json::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if cursor.is_none() {
                return Ok(out);
            }
        }
    }

    /// `None` on 404.
    async fn maybe<T>(r: Result<T, SentinelOneError>) -> Result<Option<T>, SentinelOneError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ---- accounts ------------------------------------------------------------------------

    pub async fn account(&self, id: &str) -> Result<Option<Account>, SentinelOneError> {
        let path = format!("accounts/{id}");
        Self::maybe(self.data(reqwest::Method::GET, &path, &[], None).await).await
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, SentinelOneError> {
        self.list("accounts", &[]).await
    }

    /// The site, when it exists and is visible to the token.
    pub async fn site(&self, id: &str) -> Result<Option<Site>, SentinelOneError> {
        // The list answers `{data: {allSites, sites: [...]}}` (go-sdk types/sites.go).
        let doc = self.get("sites", &[("siteIds", id)]).await?;
        let sites = doc
            .pointer("/data/sites")
            .cloned()
            .unwrap_or(Json::Array(vec![]));
        let sites: Vec<Site> = decode("GET", "sites", sites)?;
        Ok(sites.into_iter().find(|s| s.id == id))
    }

    // ---- roles ---------------------------------------------------------------------------

    /// Roles with exactly this name visible in the scope (custom ones of the scope and
    /// the predefined ones).
    pub async fn roles_named(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<Role>, SentinelOneError> {
        let roles: Vec<Role> = self
            .list(
                "rbac/roles",
                &[(scope.filter(), scope.id()), ("name", name)],
            )
            .await?;
        Ok(roles.into_iter().filter(|r| r.name == name).collect())
    }

    pub async fn predefined_role(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<Role>, SentinelOneError> {
        let roles: Vec<Role> = self
            .list(
                "rbac/roles",
                &[
                    (scope.filter(), scope.id()),
                    ("name", name),
                    ("predefinedRole", "true"),
                ],
            )
            .await?;
        Ok(roles.into_iter().find(|r| r.name == name))
    }

    /// A role with its permission pages; `None` when it no longer exists.
    pub async fn role(&self, id: &str, scope: &Scope) -> Result<Option<Role>, SentinelOneError> {
        let path = format!("rbac/role/{id}");
        Self::maybe(
            self.data(
                reqwest::Method::GET,
                &path,
                &[(scope.filter(), scope.id())],
                None,
            )
            .await,
        )
        .await
    }

    /// The template of a new role in the scope: every permission page.
    pub async fn role_template(
        &self,
        scope: &Scope,
    ) -> Result<Vec<PermissionPage>, SentinelOneError> {
        let r: Role = self
            .data(
                reqwest::Method::GET,
                "rbac/role",
                &[(scope.filter(), scope.id())],
                None,
            )
            .await?;
        Ok(r.pages)
    }

    pub async fn create_role(
        &self,
        scope: &Scope,
        name: &str,
        description: &str,
        permission_ids: &[String],
    ) -> Result<Role, SentinelOneError> {
        let body = json!({"data": {"name": name, "description": description, "permissionIds": permission_ids},
                          "filter": {scope.filter(): [scope.id()]}});
        self.data(reqwest::Method::POST, "rbac/role", &[], Some(&body))
            .await
    }

    pub async fn update_role(
        &self,
        id: &str,
        name: &str,
        description: &str,
        permission_ids: &[String],
    ) -> Result<Role, SentinelOneError> {
        let body = json!({"data": {"name": name, "description": description, "permissionIds": permission_ids}});
        self.data(
            reqwest::Method::PUT,
            &format!("rbac/role/{id}"),
            &[],
            Some(&body),
        )
        .await
    }

    /// Deletes a role; gone already counts as deleted.
    pub async fn delete_role(&self, id: &str) -> Result<(), SentinelOneError> {
        let r = self
            .send(
                reqwest::Method::DELETE,
                &format!("rbac/role/{id}"),
                &[],
                Some(&json!({"data": {}})),
            )
            .await;
        gone_ok(r)
    }

    // ---- console users -------------------------------------------------------------------

    pub async fn users_with_email(&self, email: &str) -> Result<Vec<User>, SentinelOneError> {
        let users: Vec<User> = self.list("users", &[("email", email)]).await?;
        Ok(users
            .into_iter()
            .filter(|u| u.email.eq_ignore_ascii_case(email))
            .collect())
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, SentinelOneError> {
        Self::maybe(
            self.data(reqwest::Method::GET, &format!("users/{id}"), &[], None)
                .await,
        )
        .await
    }

    /// Users holding the role.
    pub async fn users_with_role(&self, role_id: &str) -> Result<Vec<User>, SentinelOneError> {
        self.list("users", &[("roleIds", role_id)]).await
    }

    /// Creates a console user without a password: the console e-mails the invitation.
    pub async fn create_user(
        &self,
        email: &str,
        full_name: &str,
        scope: &Scope,
        role_id: &str,
    ) -> Result<User, SentinelOneError> {
        let body = json!({"data": {"email": email, "fullName": full_name, "scope": scope.kind(),
                                   "scopeRoles": [{"id": scope.id(), "roleId": role_id}]}});
        self.data(reqwest::Method::POST, "users", &[], Some(&body))
            .await
    }

    pub async fn set_user_scope_roles(
        &self,
        id: &str,
        scope: &str,
        scope_roles: &[(String, String)],
    ) -> Result<User, SentinelOneError> {
        let sr: Vec<Json> = scope_roles
            .iter()
            .map(|(id, role)| json!({"id": id, "roleId": role}))
            .collect();
        let body = json!({"data": {"scope": scope, "scopeRoles": sr}});
        self.data(
            reqwest::Method::PUT,
            &format!("users/{id}"),
            &[],
            Some(&body),
        )
        .await
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), SentinelOneError> {
        gone_ok(
            self.send(reqwest::Method::DELETE, &format!("users/{id}"), &[], None)
                .await,
        )
    }

    /// Revokes the live API token of a user or service user.
    ///
    /// Public sources disagree on the body. `{"data": {"id"}}` goes first:
    /// ayol377/sentinelone-rs `UserIdBody`, written from the vendor's Swagger
    /// (`users.schemas_UserIdSchema`). A console that refuses it with 400 gets
    /// `{"data": {"userId"}}`, s1buildpartners/sentinelone-go-sdk `UserIDRequest` [G: which
    /// one a console takes]. When both are refused, the first refusal is the error.
    pub async fn revoke_token(&self, owner_id: &str) -> Result<(), SentinelOneError> {
        const PATH: &str = "users/revoke-api-token";
        let by_id = json!({"data": {"id": owner_id}});
        let r = match self
            .send(reqwest::Method::POST, PATH, &[], Some(&by_id))
            .await
        {
            Err(first) if first.status() == Some(400) => {
                let by_user_id = json!({"data": {"userId": owner_id}});
                match self
                    .send(reqwest::Method::POST, PATH, &[], Some(&by_user_id))
                    .await
                {
                    Err(e) if e.status() == Some(400) => Err(first),
                    r => r,
                }
            }
            r => r,
        };
        gone_ok(r)
    }

    /// Details of the live token of a user or service user; `None` when there is none.
    pub async fn token_details(
        &self,
        owner_id: &str,
    ) -> Result<Option<TokenDetails>, SentinelOneError> {
        Self::maybe(
            self.data(
                reqwest::Method::GET,
                &format!("users/{owner_id}/api-token-details"),
                &[],
                None,
            )
            .await,
        )
        .await
    }

    // ---- service users -------------------------------------------------------------------

    /// Service users with exactly this name holding a role in the scope itself.
    pub async fn service_users_named(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<ServiceUser>, SentinelOneError> {
        let all: Vec<ServiceUser> = self
            .list(
                "service-users",
                &[(scope.filter(), scope.id()), ("query", name)],
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|s| {
                s.name == name
                    && s.scope == scope.kind()
                    && s.scope_roles.iter().any(|sr| sr.id == scope.id())
            })
            .collect())
    }

    pub async fn service_user(&self, id: &str) -> Result<Option<ServiceUser>, SentinelOneError> {
        Self::maybe(
            self.data(
                reqwest::Method::GET,
                &format!("service-users/{id}"),
                &[],
                None,
            )
            .await,
        )
        .await
    }

    /// Creates the service user; its token is in the answer, this once.
    pub async fn create_service_user(
        &self,
        name: &str,
        description: &str,
        expiration: &str,
        scope: &Scope,
        role_id: &str,
    ) -> Result<(ServiceUser, NewToken), SentinelOneError> {
        let body = json!({"data": {"name": name, "description": description,
                                   "expirationDate": expiration, "scope": scope.kind(),
                                   "scopeRoles": [{"id": scope.id(), "roleId": role_id}]}});
        let doc = self
            .send(reqwest::Method::POST, "service-users", &[], Some(&body))
            .await?;
        let data = doc.get("data").cloned().unwrap_or(Json::Null);
        let value = data
            .pointer("/apiToken/value")
            .and_then(Json::as_str)
            .map(Secret::new);
        let expires_at = data
            .pointer("/apiToken/expiresAt")
            .and_then(Json::as_str)
            .map(str::to_string);
        let su: ServiceUser = decode("POST", "service-users", data)?;
        let value = value.ok_or_else(|| SentinelOneError::Decode {
            method: "POST",
            path: "service-users".into(),
            reason: "the answer carries no apiToken.value".into(),
        })?;
        Ok((su, NewToken { value, expires_at }))
    }

    /// Sets the service user's role in `scope` and its description (the name cannot change):
    /// `PUT /service-users/{id} {data:{description, scope, scopeRoles}}`, ayol377/sentinelone-rs
    /// `services/service_users.rs` `UpdateServiceUserData`.
    pub async fn set_service_user_role(
        &self,
        id: &str,
        scope: &Scope,
        role_id: &str,
        description: &str,
    ) -> Result<ServiceUser, SentinelOneError> {
        let body = json!({"data": {"description": description, "scope": scope.kind(),
                                   "scopeRoles": [{"id": scope.id(), "roleId": role_id}]}});
        self.data(
            reqwest::Method::PUT,
            &format!("service-users/{id}"),
            &[],
            Some(&body),
        )
        .await
    }

    /// A new token for the service user (the old one is revoked).
    pub async fn generate_token(
        &self,
        id: &str,
        expiration: &str,
    ) -> Result<NewToken, SentinelOneError> {
        let path = format!("service-users/{id}/generate-api-token");
        let body = json!({"data": {"expirationDate": expiration}});
        let doc = self
            .send(reqwest::Method::POST, &path, &[], Some(&body))
            .await?;
        let value = doc
            .pointer("/data/token")
            .and_then(Json::as_str)
            .map(Secret::new)
            .ok_or_else(|| SentinelOneError::Decode {
                method: "POST",
                path: path.clone(),
                reason: "the answer carries no data.token".into(),
            })?;
        let expires_at = doc
            .pointer("/data/expiresAt")
            .and_then(Json::as_str)
            .map(str::to_string);
        Ok(NewToken { value, expires_at })
    }

    pub async fn delete_service_user(&self, id: &str) -> Result<(), SentinelOneError> {
        gone_ok(
            self.send(
                reqwest::Method::DELETE,
                &format!("service-users/{id}"),
                &[],
                None,
            )
            .await,
        )
    }
}

/// A field the vendor marks nullable, read as its default when null.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn gone_ok(r: Result<Json, SentinelOneError>) -> Result<(), SentinelOneError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

fn decode<T: for<'de> Deserialize<'de>>(
    method: &'static str,
    path: &str,
    v: Json,
) -> Result<T, SentinelOneError> {
    serde_json::from_value(v).map_err(|e| SentinelOneError::Decode {
        method,
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// The vendor envelope `{errors: [{code, title, message, detail}]}`; every field optional.
fn error_text(doc: &Json, status: u16) -> (Option<i64>, String) {
    let Some(e) = doc.pointer("/errors/0") else {
        return (None, format!("HTTP {status}"));
    };
    let code = e.get("code").and_then(Json::as_i64);
    let s = |k: &str| e.get(k).and_then(Json::as_str).filter(|s| !s.is_empty());
    let head = s("title").or_else(|| s("message")).unwrap_or("error");
    let message = match s("detail") {
        Some(d) if d != head => format!("{head}: {d}"),
        _ => head.to_string(),
    };
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::sandbox::{Sandbox, S1_ACCOUNT_ID, S1_ADMIN_TOKEN};

    #[test]
    fn error_envelope_fields_are_optional() {
        let doc = json!({"errors": [{"code": 4000010, "title": "Validation Error", "detail": "data.name: required"}]});
        assert_eq!(
            error_text(&doc, 400),
            (
                Some(4000010),
                "Validation Error: data.name: required".to_string()
            )
        );
        assert_eq!(
            error_text(&json!({"errors": [{}]}), 500),
            (None, "error".to_string())
        );
        assert_eq!(error_text(&Json::Null, 502), (None, "HTTP 502".to_string()));
    }

    #[test]
    fn shapes_decode_with_missing_fields() {
        let su: ServiceUser = serde_json::from_value(json!({"id": "1", "name": "Expel API",
            "scopeRoles": [{"id": "a", "roleId": "r", "roleName": "IR Team"}], "apiToken": null, "extra": 1}))
        .unwrap();
        assert!(su.api_token.is_none());
        assert_eq!(su.scope_roles[0].role_id, "r");
        let role: Role = serde_json::from_value(json!({"id": "1", "name": "Viewer", "pages": [
            {"name": "Endpoints", "identifier": "endpoints", "permissions": [
                {"identifier": "Endpoints.view", "title": "View", "value": true, "dependsOn": []},
                {"identifier": "Endpoints.remoteShell", "title": "Remote Shell", "value": false, "dependsOn": ["Endpoints.view"]}]}]}))
        .unwrap();
        assert_eq!(
            role.granted().into_iter().collect::<Vec<_>>(),
            vec!["Endpoints.view"]
        );
    }

    #[test]
    fn scopes_name_their_kind_and_filter() {
        let a = Scope::Account("1".into());
        let s = Scope::Site("2".into());
        assert_eq!(
            (a.kind(), a.id(), a.filter()),
            ("account", "1", "accountIds")
        );
        assert_eq!((s.kind(), s.id(), s.filter()), ("site", "2", "siteIds"));
        assert_eq!(s.to_string(), "site 2");
        let su: ServiceUser = serde_json::from_value(json!({"id": "1", "name": "Expel API",
            "scope": "site", "scopeRoles": [{"id": "2", "roleId": "r"}]}))
        .unwrap();
        assert_eq!(su.scope, s.kind());
        let site: Site = serde_json::from_value(json!({"id": "2", "name": "Default site",
            "accountId": "1", "isDefault": true}))
        .unwrap();
        assert_eq!(site.account_id, a.id());
    }

    #[test]
    fn new_token_never_prints_its_value() {
        let t = NewToken {
            value: Secret::new("s3cr3t-token"),
            expires_at: None,
        };
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }

    #[test]
    fn urls_keep_a_console_path_prefix() {
        let c = SentinelOneClient::new(
            Url::parse("https://usea1.sentinelone.net/").unwrap(),
            Secret::new("x"),
        )
        .unwrap();
        assert_eq!(
            c.url("rbac/roles").as_str(),
            "https://usea1.sentinelone.net/web/api/v2.1/rbac/roles"
        );
    }

    #[test]
    fn null_names_and_emails_decode_as_empty() {
        let page: Vec<ServiceUser> = decode(
            "GET",
            "service-users",
            json!([
                {"id": "1", "name": null, "scope": "account", "scopeRoles": []},
                {"id": "2", "name": "Expel API", "scope": "account",
                 "scopeRoles": [{"id": "a", "roleId": "r"}]}
            ]),
        )
        .unwrap();
        let names: Vec<&str> = page.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["", "Expel API"]);
        let u: User = serde_json::from_value(
            json!({"id": "1", "email": null, "fullName": null, "scope": "account"}),
        )
        .unwrap();
        assert_eq!((u.email.as_str(), u.full_name.as_str()), ("", ""));
    }

    const FAR_FUTURE: &str = "2099-01-01T00:00:00Z";

    /// The emulator, its admin client, the seeded account and the id of a new "Expel API"
    /// service user holding IR Team.
    async fn with_service_user() -> (Sandbox, SentinelOneClient, Scope, String) {
        let sb = Sandbox::start();
        let s1 = SentinelOneClient::new(sb.base.clone(), Secret::new(S1_ADMIN_TOKEN)).unwrap();
        let scope = Scope::Account(S1_ACCOUNT_ID.into());
        let ir = s1.predefined_role(&scope, "IR Team").await.unwrap();
        let ir = ir.expect("the emulator seeds IR Team");
        let (su, _token) = s1
            .create_service_user("Expel API", "test", FAR_FUTURE, &scope, &ir.id)
            .await
            .unwrap();
        (sb, s1, scope, su.id)
    }

    #[tokio::test]
    async fn a_page_holding_a_nameless_service_user_decodes() {
        let (sb, s1, scope, ours) = with_service_user().await;
        // the console's full-text query reads descriptions too: the nameless one is listed
        let (status, body) = sb
            .admin(
                reqwest::Method::POST,
                "/_admin/sentinelone/nameless-service-user",
                json!({"description": "token for the Expel API connector"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["name"], Json::Null, "{body}");
        let found = s1.service_users_named(&scope, "Expel API").await.unwrap();
        let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, [ours.as_str()]);
    }

    /// The statuses the emulator answered to revoke-api-token since the last reset of calls.
    async fn revoke_statuses(sb: &Sandbox) -> Vec<u64> {
        let (_, calls) = sb
            .admin(reqwest::Method::GET, "/_admin/calls", Json::Null)
            .await;
        calls["log"]
            .as_array()
            .expect("a call log")
            .iter()
            .filter(|c| {
                c["path"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("/revoke-api-token")
            })
            .filter_map(|c| c["status"].as_u64())
            .collect()
    }

    #[tokio::test]
    async fn revoke_sends_id_and_falls_back_to_user_id_on_400() {
        let (sb, s1, _scope, su) = with_service_user().await;
        s1.revoke_token(&su).await.unwrap();
        assert_eq!(s1.token_details(&su).await.unwrap(), None, "revoked");
        assert_eq!(
            revoke_statuses(&sb).await,
            [200],
            "{{data: {{id}}}} taken at once"
        );

        s1.generate_token(&su, FAR_FUTURE).await.unwrap();
        assert!(s1.token_details(&su).await.unwrap().is_some());
        let (status, body) = sb
            .admin(
                reqwest::Method::PUT,
                "/_admin/sentinelone/revoke-body",
                json!({"idField": "userId"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        sb.admin(reqwest::Method::DELETE, "/_admin/calls", Json::Null)
            .await;
        s1.revoke_token(&su).await.unwrap();
        assert_eq!(s1.token_details(&su).await.unwrap(), None, "revoked");
        assert_eq!(
            revoke_statuses(&sb).await,
            [400, 200],
            "id refused, then userId"
        );
    }
}
