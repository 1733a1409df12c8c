//! Wiz API client: OAuth client-credentials tokens (`audience=wiz-api`, form-encoded, cached
//! until shortly before expiry) and GraphQL over HTTP POST with variables.
//!
//! Wiz reports GraphQL errors with HTTP 200 in `errors[]`; they become
//! [`WizError::Graphql`] with the `extensions.code`. An UNAUTHENTICATED answer (HTTP 200 or
//! 401) drops the cached token and the call is sent once more with a fresh one. Queries are
//! retried on 429, 5xx and connection failures; mutations are sent once (repeating a create
//! could make a second object: the steps look for it before trying again). A 429 or 5xx
//! that outlasts the retries is [`WizError::Http`], transient, whatever `errors[]` says.
//! Secrets travel as [`Secret`] and never reach an error or log.
//!
//! Operations and fields follow the public client code of AxtonGrams/terraform-provider-wiz
//! (`internal/wiz/structs.go`, `internal/provider/resource_*.go`; docs/guides/api-assumptions.md):
//! a user has `effectiveRole` (no `role`, no expiry), users are filtered by `search` only,
//! an integration's patch is `{name, params}`, a webhook action carries a `body` template.
use super::http::{display_url, transient, Attempts, Deadline, Limits, Policy, Transport};
use super::retry::{RetryKind, Retryable};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use url::Url;

use super::secret::redact;
use super::Secret;

#[derive(Debug, thiserror::Error)]
pub enum WizError {
    #[error("Wiz refused {operation}: {code}: {message}")]
    Graphql {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("Wiz answered HTTP {status} to {operation}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Http {
        operation: &'static str,
        status: u16,
        detail: Option<String>,
    },
    #[error("Wiz token request failed (HTTP {status}): {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Auth {
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error("cannot reach Wiz ({operation}): {reason}")]
    Transport {
        operation: &'static str,
        reason: String,
    },
    #[error("Wiz sent an unexpected answer to {operation}: {reason}")]
    Decode {
        operation: &'static str,
        reason: String,
    },
}

impl WizError {
    /// The GraphQL `extensions.code`, when Wiz gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            WizError::Graphql { code, .. } => Some(code),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.code() == Some("NOT_FOUND")
    }
    /// Throttling, server trouble or a lost connection: trying again may help.
    pub fn is_transient(&self) -> bool {
        match self {
            WizError::Graphql { code, .. } => {
                matches!(
                    code.as_str(),
                    "INTERNAL" | "RATE_LIMITED" | "RATE_LIMIT_EXCEEDED" | "TOO_MANY_REQUESTS"
                )
            }
            WizError::Http { status, .. } | WizError::Auth { status, .. } => transient(*status),
            WizError::Transport { .. } => true,
            WizError::Decode { .. } => false,
        }
    }
}

impl Retryable for WizError {
    fn retry_kind(&self) -> RetryKind {
        RetryKind::retry_or_fail(self.is_transient())
    }
}

struct Token {
    value: Secret,
    token_type: String,
    until: Instant,
}

pub struct WizClient {
    transport: Transport,
    auth_url: Url,
    api_url: Url,
    client_id: String,
    client_secret: Secret,
    token: tokio::sync::Mutex<Option<Token>>,
    max_attempts: u32,
}

impl std::fmt::Debug for WizClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WizClient")
            .field("api_url", &self.api_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// One page of a GraphQL connection.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    nodes: Vec<T>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub last_rotated_at: Option<String>,
    #[serde(default)]
    pub assigned_projects: Vec<IdOnly>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct IdOnly {
    pub id: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserRole {
    pub id: String,
    pub name: String,
}

/// A user as read back: `effectiveRole` (structs.go User; resource_user.go reads it) is the
/// role in force, `isSuspended` (structs.go User) whether the user may sign in.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub effective_role: Option<IdOnly>,
    #[serde(default)]
    pub is_suspended: bool,
}

impl User {
    pub fn role_id(&self) -> Option<&str> {
        self.effective_role.as_ref().map(|r| r.id.as_str())
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoginSettings {
    pub domain_verification_code: String,
    pub allowed_domains: Vec<String>,
}

/// A WEBHOOK integration as read back (the password is never returned).
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookIntegration {
    pub id: String,
    pub name: String,
    pub all_projects: bool,
    pub url: String,
    pub username: Option<String>,
}

/// An automation rule as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct AutomationRule {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub trigger_source: String,
    pub trigger_type: Vec<String>,
    pub severities: Option<Vec<String>>,
    pub project_id: Option<String>,
    pub actions: Vec<RuleAction>,
}

/// One action of an automation rule as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleAction {
    pub kind: String,
    pub integration_id: Option<String>,
    /// The webhook body template (`WebhookActionTemplateParams.body`).
    pub body: Option<String>,
}

/// What we want an automation rule to be.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub description: String,
    pub trigger_source: String,
    pub trigger_type: Vec<String>,
    pub severities: Vec<String>,
    pub integration_id: String,
    /// The webhook action's body template (required: structs.go
    /// `WebhookActionTemplateParamsInput.body` has no omitempty).
    pub body: String,
}

const SA_FIELDS: &str = "id name clientId scopes type lastRotatedAt assignedProjects { id }";
const USER_FIELDS: &str = "id name email effectiveRole { id } isSuspended";
const INTEGRATION_FIELDS: &str = "id name isAccessibleToAllProjects params { ... on WebhookIntegrationParams { url authorization { ... on WebhookIntegrationBasicAuthorization { username } } } }";
const RULE_FIELDS: &str = "id name description enabled triggerSource triggerType filters project { id } actions { actionTemplateType integration { id } actionTemplateParams { ... on WebhookActionTemplateParams { body } } }";

/// The Wiz environment a tenant's URL belongs to, by its host.
///
/// Wiz serves three: commercial (`app.wiz.io`), Wiz on AWS GovCloud (`gov.wiz.io`) and Wiz for
/// Government, its FedRAMP environment (`app.wiz.us`). The token endpoints are `auth.app.wiz.io`,
/// `auth.gov.wiz.io` and `auth.app.wiz.us`, all three with audience `wiz-api`: Wiz's own
/// Cortex XSOAR integration accepts exactly those (wiz-sec-public/content,
/// `Packs/Wiz/Integrations/Wiz/Wiz.py`: `COGNITO_PREFIX` `auth.app`, `auth.gov`, `auth.test`
/// with the suffixes `wiz.io` and `wiz.us`) and derives the tenant's domain from the token
/// host (`auth.gov.wiz.io` -> `gov.wiz.io`). [G] The API host of a government tenant,
/// `api.<data center>.gov.wiz.io` or `api.<data center>.app.wiz.us`, follows the commercial
/// `api.<data center>.app.wiz.io` form; it is seen in third-party clients only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WizCloud {
    Commercial,
    /// Wiz on AWS GovCloud (`*.gov.wiz.io`).
    GovCloud,
    /// Wiz for Government, FedRAMP (`*.wiz.us`).
    Fedramp,
}

impl WizCloud {
    /// The environment of a Wiz URL; `None` for a host that is not Wiz's (a test server).
    pub fn of(url: &Url) -> Option<WizCloud> {
        let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if under("gov.wiz.io") {
            Some(WizCloud::GovCloud)
        } else if under("wiz.us") {
            Some(WizCloud::Fedramp)
        } else if under("wiz.io") {
            Some(WizCloud::Commercial)
        } else {
            None
        }
    }

    /// A government environment: GovCloud or FedRAMP.
    pub fn is_government(self) -> bool {
        self != WizCloud::Commercial
    }

    /// The OAuth token endpoint of this environment.
    pub fn token_url(self) -> &'static str {
        match self {
            WizCloud::Commercial => "https://auth.app.wiz.io/oauth/token",
            WizCloud::GovCloud => "https://auth.gov.wiz.io/oauth/token",
            WizCloud::Fedramp => "https://auth.app.wiz.us/oauth/token",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            WizCloud::Commercial => "commercial Wiz (app.wiz.io)",
            WizCloud::GovCloud => "Wiz on AWS GovCloud (gov.wiz.io)",
            WizCloud::Fedramp => "Wiz for Government, FedRAMP (app.wiz.us)",
        }
    }
}

impl WizClient {
    pub fn new(
        auth_url: Url,
        api_url: Url,
        client_id: String,
        client_secret: Secret,
    ) -> Result<Self, reqwest::Error> {
        Ok(WizClient {
            transport: Transport::new("Wiz", &Limits::default())?,
            auth_url,
            api_url,
            client_id,
            client_secret,
            token: tokio::sync::Mutex::new(None),
            max_attempts: 4,
        })
    }

    /// The client with other time limits (the provider's `request_timeout` and
    /// `request_total_timeout`).
    pub fn with_limits(self, limits: &Limits) -> Result<Self, reqwest::Error> {
        Ok(WizClient {
            transport: self.transport.with_limits(limits)?,
            ..self
        })
    }

    pub fn api_url(&self) -> &Url {
        &self.api_url
    }

    pub fn auth_url(&self) -> &Url {
        &self.auth_url
    }

    /// A valid access token: the cached one, or a new one from the token endpoint within the
    /// call's `deadline`.
    async fn token(&self, deadline: &mut Deadline) -> Result<(String, Secret), WizError> {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            if Instant::now() < t.until {
                return Ok((t.token_type.clone(), t.value.clone()));
            }
        }
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose())
            .append_pair("audience", "wiz-api")
            .finish();
        // The token endpoint's Retry-After is not read: it waits the backoff.
        let policy = Policy {
            retry_after: false,
            ..Policy::idempotent(self.max_attempts)
        };
        let resp = self
            .transport
            .send(deadline, policy, "token", || {
                self.transport
                    .request(reqwest::Method::POST, self.auth_url.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form.clone())
            })
            .await
            .map_err(|e| WizError::Transport {
                operation: "token",
                reason: format!(
                    "{} ({})",
                    deadline.describe(&e),
                    display_url(&self.auth_url)
                ),
            })?;
        let status = resp.status().as_u16();
        let body: Json = resp.json().await.unwrap_or(Json::Null);
        if status != 200 {
            return Err(WizError::Auth {
                status,
                error: redact(body.get("error").and_then(Json::as_str).unwrap_or("error")),
                description: body
                    .get("error_description")
                    .and_then(Json::as_str)
                    .map(redact),
            });
        }
        let value = body
            .get("access_token")
            .and_then(Json::as_str)
            .ok_or_else(|| WizError::Decode {
                operation: "token",
                reason: "no access_token".into(),
            })?;
        let token_type = body
            .get("token_type")
            .and_then(Json::as_str)
            .unwrap_or("Bearer")
            .to_string();
        let ttl = body
            .get("expires_in")
            .and_then(Json::as_u64)
            .unwrap_or(3600);
        // Renew a minute early (or at half-life for short tokens) so no call carries a token
        // that dies in flight.
        let margin = (ttl / 2).min(60);
        let t = Token {
            value: Secret::new(value),
            token_type: token_type.clone(),
            until: Instant::now() + Duration::from_secs(ttl.saturating_sub(margin)),
        };
        let out = (token_type, t.value.clone());
        *guard = Some(t);
        Ok(out)
    }

    /// Gets an access token (or uses the cached one): proves the client id and secret work.
    pub async fn authenticate(&self) -> Result<(), WizError> {
        let mut deadline = self.transport.deadline();
        self.token(&mut deadline).await.map(|_| ())
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Runs one GraphQL document; `data` on success.
    pub async fn graphql(
        &self,
        operation: &'static str,
        document: &str,
        variables: Json,
    ) -> Result<Json, WizError> {
        let is_query = !document.trim_start().starts_with("mutation");
        let policy = if is_query {
            Policy::idempotent(self.max_attempts)
        } else {
            Policy::once()
        };
        let body = json!({"query": document, "variables": variables, "operationName": operation});
        let mut tries = Attempts::new(policy);
        let mut reauthenticated = false;
        let mut deadline = self.transport.deadline();
        let transport = |deadline: &Deadline, e: reqwest::Error| WizError::Transport {
            operation,
            reason: format!("{} ({})", deadline.describe(&e), display_url(&self.api_url)),
        };
        loop {
            let (kind, token) = self.token(&mut deadline).await?;
            let request = self
                .transport
                .request(reqwest::Method::POST, self.api_url.clone())
                .header("Authorization", format!("{kind} {}", token.expose()))
                .header("Content-Type", "application/json")
                .body(body.to_string());
            let resp = match self
                .transport
                .attempt(&mut tries, &mut deadline, operation, request)
                .await
            {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => return Err(transport(&deadline, e)),
            };
            let status = resp.status().as_u16();
            let doc: Json = match resp.bytes().await {
                Ok(b) => serde_json::from_slice(&b).unwrap_or(Json::Null),
                Err(e) => return Err(transport(&deadline, e)),
            };
            let first = doc.pointer("/errors/0");
            let code = first
                .and_then(|e| e.pointer("/extensions/code"))
                .and_then(Json::as_str)
                .map(str::to_string);
            if (status == 401 || code.as_deref() == Some("UNAUTHENTICATED")) && !reauthenticated {
                // The token died (expired, revoked): get a new one and try once more.
                self.forget_token().await;
                reauthenticated = true;
                continue;
            }
            let message = first
                .and_then(|e| e.get("message"))
                .and_then(Json::as_str)
                .map(redact);
            if transient(status) {
                // Throttled or failed server side (a mutation may still have acted).
                return Err(WizError::Http {
                    operation,
                    status,
                    detail: message,
                });
            }
            if first.is_some() {
                let err = WizError::Graphql {
                    operation,
                    code: code.unwrap_or_else(|| "UNKNOWN".into()),
                    message: message.unwrap_or_default(),
                };
                if is_query
                    && err.is_transient()
                    && tries
                        .again(&deadline, None, &format!("wiz {operation}"), &err)
                        .await
                {
                    continue;
                }
                return Err(err);
            }
            if status >= 400 {
                return Err(WizError::Http {
                    operation,
                    status,
                    detail: None,
                });
            }
            return doc.get("data").cloned().ok_or(WizError::Decode {
                operation,
                reason: "no `data`".into(),
            });
        }
    }

    /// Runs a query and decodes `data.<field>`.
    async fn get<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        document: &str,
        field: &str,
        variables: Json,
    ) -> Result<T, WizError> {
        let data = self.graphql(operation, document, variables).await?;
        decode(operation, data.get(field).cloned().unwrap_or(Json::Null))
    }

    /// Every node of a connection, following `pageInfo.endCursor`. The document takes
    /// `$first: Int` and `$after: String` besides `vars`.
    async fn all<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        document: &str,
        field: &str,
        vars: Json,
    ) -> Result<Vec<T>, WizError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut v = vars.clone();
            if let Json::Object(m) = &mut v {
                m.insert("first".into(), json!(100));
                m.insert("after".into(), json!(after));
            }
            let page: Page<T> = self.get(operation, document, field, v).await?;
            out.extend(page.nodes);
            match (page.page_info.has_next_page, page.page_info.end_cursor) {
                (true, Some(c)) => after = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// Optional object by id: NOT_FOUND (or null) is `None`.
    async fn by_id<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        document: &str,
        field: &str,
        id: &str,
    ) -> Result<Option<T>, WizError> {
        match self.graphql(operation, document, json!({"id": id})).await {
            Ok(data) => match data.get(field) {
                None | Some(Json::Null) => Ok(None),
                Some(v) => decode(operation, v.clone()).map(Some),
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The values of an enum type, by GraphQL introspection.
    pub async fn enum_values(&self, type_name: &str) -> Result<Vec<String>, WizError> {
        let data = self
            .graphql(
                "EnumValues",
                "query EnumValues($name: String!) { __type(name: $name) { enumValues { name } } }",
                json!({"name": type_name}),
            )
            .await?;
        Ok(data
            .pointer("/__type/enumValues")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.get("name").and_then(Json::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    // ---- service accounts -----------------------------------------------------------------

    pub async fn service_account(&self, id: &str) -> Result<Option<ServiceAccount>, WizError> {
        let doc = format!(
            "query ServiceAccount($id: ID!) {{ serviceAccount(id: $id) {{ {SA_FIELDS} }} }}"
        );
        self.by_id("ServiceAccount", &doc, "serviceAccount", id)
            .await
    }

    pub async fn service_accounts_named(
        &self,
        name: &str,
    ) -> Result<Vec<ServiceAccount>, WizError> {
        let doc = format!("query ServiceAccounts($first: Int, $after: String, $search: String) {{ serviceAccounts(first: $first, after: $after, filterBy: {{search: $search}}) {{ nodes {{ {SA_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}");
        let all: Vec<ServiceAccount> = self
            .all(
                "ServiceAccounts",
                &doc,
                "serviceAccounts",
                json!({"search": name}),
            )
            .await?;
        Ok(all.into_iter().filter(|s| s.name == name).collect())
    }

    pub async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, WizError> {
        let doc = format!("query ServiceAccounts($first: Int, $after: String) {{ serviceAccounts(first: $first, after: $after) {{ nodes {{ {SA_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}");
        let all: Vec<ServiceAccount> = self
            .all("ServiceAccounts", &doc, "serviceAccounts", json!({}))
            .await?;
        Ok(all.into_iter().find(|s| s.client_id == client_id))
    }

    /// A THIRD_PARTY (API integration) service account on all projects, and its secret.
    pub async fn create_service_account(
        &self,
        name: &str,
        scopes: &[String],
    ) -> Result<(ServiceAccount, Secret), WizError> {
        let doc = format!("mutation CreateServiceAccount($input: CreateServiceAccountInput!) {{ createServiceAccount(input: $input) {{ serviceAccount {{ {SA_FIELDS} clientSecret }} }} }}");
        let data = self
            .graphql(
                "CreateServiceAccount",
                &doc,
                json!({"input": {"name": name, "type": "THIRD_PARTY", "scopes": scopes, "assignedProjectIds": []}}),
            )
            .await?;
        with_secret(
            "CreateServiceAccount",
            data.pointer("/createServiceAccount/serviceAccount"),
        )
    }

    /// A new client secret; the old one stops working.
    pub async fn rotate_secret(&self, id: &str) -> Result<(ServiceAccount, Secret), WizError> {
        let doc = format!("mutation RotateServiceAccountSecret($id: String!) {{ rotateServiceAccountSecret(ID: $id) {{ serviceAccount {{ {SA_FIELDS} clientSecret }} }} }}");
        let data = self
            .graphql("RotateServiceAccountSecret", &doc, json!({"id": id}))
            .await?;
        with_secret(
            "RotateServiceAccountSecret",
            data.pointer("/rotateServiceAccountSecret/serviceAccount"),
        )
    }

    pub async fn delete_service_account(&self, id: &str) -> Result<(), WizError> {
        self.delete(
            "DeleteServiceAccount",
            "deleteServiceAccount",
            "DeleteServiceAccountInput",
            id,
        )
        .await
    }

    async fn delete(
        &self,
        operation: &'static str,
        field: &str,
        input: &str,
        id: &str,
    ) -> Result<(), WizError> {
        let doc = format!(
            "mutation {operation}($input: {input}!) {{ {field}(input: $input) {{ _stub }} }}"
        );
        match self
            .graphql(operation, &doc, json!({"input": {"id": id}}))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ---- users, roles, login settings -----------------------------------------------------

    pub async fn user_roles(&self) -> Result<Vec<UserRole>, WizError> {
        self.all(
            "UserRoles",
            "query UserRoles($first: Int, $after: String) { userRoles(first: $first, after: $after) { nodes { id name } pageInfo { hasNextPage endCursor } } }",
            "userRoles",
            json!({}),
        )
        .await
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, WizError> {
        let doc = format!("query User($id: ID!) {{ user(id: $id) {{ {USER_FIELDS} }} }}");
        self.by_id("User", &doc, "user", id).await
    }

    /// Users with this e-mail address. `UserFilters` has no e-mail filter (structs.go:
    /// `search, role, source`), so the address is the free-text `search` and each match is
    /// compared with it (ignoring letter case, as e-mail domains do).
    pub async fn users_by_email(&self, email: &str) -> Result<Vec<User>, WizError> {
        let doc = format!("query Users($first: Int, $after: String, $filterBy: UserFilters) {{ users(first: $first, after: $after, filterBy: $filterBy) {{ nodes {{ {USER_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}");
        let all: Vec<User> = self
            .all(
                "Users",
                &doc,
                "users",
                json!({"filterBy": {"search": email}}),
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|u| u.email.eq_ignore_ascii_case(email))
            .collect())
    }

    /// Invites a user (Wiz identity provider, no expiry, global role).
    pub async fn create_user(
        &self,
        name: &str,
        email: &str,
        role_id: &str,
    ) -> Result<User, WizError> {
        let doc = format!("mutation CreateUser($input: CreateUserInput!) {{ createUser(input: $input) {{ user {{ {USER_FIELDS} }} }} }}");
        let data = self
            .graphql(
                "CreateUser",
                &doc,
                json!({"input": {"name": name, "email": email, "role": role_id, "sendEmailInvite": true}}),
            )
            .await?;
        decode(
            "CreateUser",
            data.pointer("/createUser/user")
                .cloned()
                .unwrap_or(Json::Null),
        )
    }

    /// Sets the name and role and lifts a suspension (`UpdateUserPatch` is `name, email, role,
    /// assignedProjectIds, isSuspended`).
    pub async fn update_user(&self, id: &str, name: &str, role_id: &str) -> Result<User, WizError> {
        let doc = format!("mutation UpdateUser($input: UpdateUserInput!) {{ updateUser(input: $input) {{ user {{ {USER_FIELDS} }} }} }}");
        let data = self
            .graphql(
                "UpdateUser",
                &doc,
                json!({"input": {"id": id, "patch": {"name": name, "role": role_id, "isSuspended": false}}}),
            )
            .await?;
        decode(
            "UpdateUser",
            data.pointer("/updateUser/user")
                .cloned()
                .unwrap_or(Json::Null),
        )
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), WizError> {
        self.delete("DeleteUser", "deleteUser", "DeleteUserInput", id)
            .await
    }

    pub async fn login_settings(&self) -> Result<LoginSettings, WizError> {
        self.get(
            "LoginSettings",
            "query LoginSettings { loginSettings { domainVerificationCode allowedDomains } }",
            "loginSettings",
            json!({}),
        )
        .await
    }

    pub async fn add_allowed_domain(&self, domain: &str) -> Result<(), WizError> {
        self.graphql(
            "AddAllowedLoginDomain",
            "mutation AddAllowedLoginDomain($input: AddAllowedLoginDomainInput!) { addAllowedLoginDomain(input: $input) { loginSettings { allowedDomains } } }",
            json!({"input": {"domain": domain}}),
        )
        .await
        .map(|_| ())
    }

    /// Removes one allowed login domain; one that is not there counts as removed.
    pub async fn remove_allowed_domain(&self, domain: &str) -> Result<(), WizError> {
        match self
            .graphql(
                "RemoveAllowedLoginDomain",
                "mutation RemoveAllowedLoginDomain($input: RemoveAllowedLoginDomainInput!) { removeAllowedLoginDomain(input: $input) { loginSettings { allowedDomains } } }",
                json!({"input": {"domain": domain}}),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ---- webhook integrations -------------------------------------------------------------

    pub async fn integration(&self, id: &str) -> Result<Option<WebhookIntegration>, WizError> {
        let doc = format!(
            "query Integration($id: ID!) {{ integration(id: $id) {{ {INTEGRATION_FIELDS} }} }}"
        );
        let raw: Option<Json> = self.by_id("Integration", &doc, "integration", id).await?;
        raw.map(|r| integration_from(&r)).transpose()
    }

    pub async fn integrations_named(
        &self,
        name: &str,
    ) -> Result<Vec<WebhookIntegration>, WizError> {
        let doc = format!("query Integrations($first: Int, $after: String, $search: String) {{ integrations(first: $first, after: $after, filterBy: {{search: $search, type: [WEBHOOK]}}) {{ nodes {{ {INTEGRATION_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}");
        let all: Vec<Json> = self
            .all(
                "Integrations",
                &doc,
                "integrations",
                json!({"search": name}),
            )
            .await?;
        Ok(all
            .iter()
            .map(integration_from)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|i| i.name == name)
            .collect())
    }

    /// A WEBHOOK integration on all projects with basic auth.
    pub async fn create_webhook_integration(
        &self,
        name: &str,
        url: &str,
        username: &str,
        password: &Secret,
    ) -> Result<WebhookIntegration, WizError> {
        let doc = format!("mutation CreateIntegration($input: CreateIntegrationInput!) {{ createIntegration(input: $input) {{ integration {{ {INTEGRATION_FIELDS} }} }} }}");
        let data = self
            .graphql(
                "CreateIntegration",
                &doc,
                json!({"input": {"name": name, "type": "WEBHOOK", "isAccessibleToAllProjects": true,
                    "params": {"webhook": {"url": url, "isOnPrem": false, "headers": [],
                        "authorization": {"username": username, "password": password.expose()}}}}}),
            )
            .await?;
        integration_from(
            data.pointer("/createIntegration/integration")
                .unwrap_or(&Json::Null),
        )
    }

    /// Sets the name, URL and basic auth. `UpdateIntegrationPatch` is `{name, params}`: the
    /// project scope is set at create only.
    pub async fn update_webhook_integration(
        &self,
        id: &str,
        name: &str,
        url: &str,
        username: &str,
        password: &Secret,
    ) -> Result<WebhookIntegration, WizError> {
        let doc = format!("mutation UpdateIntegration($input: UpdateIntegrationInput!) {{ updateIntegration(input: $input) {{ integration {{ {INTEGRATION_FIELDS} }} }} }}");
        let data = self
            .graphql(
                "UpdateIntegration",
                &doc,
                json!({"input": {"id": id, "patch": {"name": name,
                    "params": {"webhook": {"url": url,
                        "authorization": {"username": username, "password": password.expose()}}}}}}),
            )
            .await?;
        integration_from(
            data.pointer("/updateIntegration/integration")
                .unwrap_or(&Json::Null),
        )
    }

    pub async fn delete_integration(&self, id: &str) -> Result<(), WizError> {
        self.delete(
            "DeleteIntegration",
            "deleteIntegration",
            "DeleteIntegrationInput",
            id,
        )
        .await
    }

    // ---- automation rules -----------------------------------------------------------------

    pub async fn automation_rule(&self, id: &str) -> Result<Option<AutomationRule>, WizError> {
        let doc = format!(
            "query AutomationRule($id: ID!) {{ automationRule(id: $id) {{ {RULE_FIELDS} }} }}"
        );
        let raw: Option<Json> = self
            .by_id("AutomationRule", &doc, "automationRule", id)
            .await?;
        raw.map(|r| rule_from(&r)).transpose()
    }

    pub async fn automation_rules_named(
        &self,
        name: &str,
    ) -> Result<Vec<AutomationRule>, WizError> {
        let doc = format!("query AutomationRules($first: Int, $after: String, $search: String) {{ automationRules(first: $first, after: $after, filterBy: {{search: $search}}) {{ nodes {{ {RULE_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}");
        let all: Vec<Json> = self
            .all(
                "AutomationRules",
                &doc,
                "automationRules",
                json!({"search": name}),
            )
            .await?;
        Ok(all
            .iter()
            .map(rule_from)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|r| r.name == name)
            .collect())
    }

    fn rule_input(spec: &RuleSpec) -> Json {
        json!({
            "name": spec.name, "description": spec.description, "enabled": true,
            "triggerSource": spec.trigger_source, "triggerType": spec.trigger_type,
            "filters": {"severity": spec.severities},
            "actions": [{"integrationId": spec.integration_id, "actionTemplateType": "WEBHOOK",
                         "actionTemplateParams": {"webhook": {"body": spec.body, "headers": []}}}],
        })
    }

    pub async fn create_automation_rule(
        &self,
        spec: &RuleSpec,
    ) -> Result<AutomationRule, WizError> {
        let doc = format!("mutation CreateAutomationRule($input: CreateAutomationRuleInput!) {{ createAutomationRule(input: $input) {{ automationRule {{ {RULE_FIELDS} }} }} }}");
        let data = self
            .graphql(
                "CreateAutomationRule",
                &doc,
                json!({"input": Self::rule_input(spec)}),
            )
            .await?;
        rule_from(
            data.pointer("/createAutomationRule/automationRule")
                .unwrap_or(&Json::Null),
        )
    }

    pub async fn update_automation_rule(
        &self,
        id: &str,
        spec: &RuleSpec,
    ) -> Result<AutomationRule, WizError> {
        let doc = format!("mutation UpdateAutomationRule($input: UpdateAutomationRuleInput!) {{ updateAutomationRule(input: $input) {{ automationRule {{ {RULE_FIELDS} }} }} }}");
        let data = self
            .graphql(
                "UpdateAutomationRule",
                &doc,
                json!({"input": {"id": id, "patch": Self::rule_input(spec)}}),
            )
            .await?;
        rule_from(
            data.pointer("/updateAutomationRule/automationRule")
                .unwrap_or(&Json::Null),
        )
    }

    pub async fn delete_automation_rule(&self, id: &str) -> Result<(), WizError> {
        self.delete(
            "DeleteAutomationRule",
            "deleteAutomationRule",
            "DeleteAutomationRuleInput",
            id,
        )
        .await
    }
}

fn decode<T: DeserializeOwned>(operation: &'static str, v: Json) -> Result<T, WizError> {
    serde_json::from_value(v).map_err(|e| WizError::Decode {
        operation,
        reason: e.to_string(),
    })
}

fn with_secret(
    operation: &'static str,
    sa: Option<&Json>,
) -> Result<(ServiceAccount, Secret), WizError> {
    let sa = sa.cloned().unwrap_or(Json::Null);
    let secret = sa
        .get("clientSecret")
        .and_then(Json::as_str)
        .map(Secret::new)
        .ok_or(WizError::Decode {
            operation,
            reason: "no clientSecret in the answer".into(),
        })?;
    Ok((decode(operation, sa)?, secret))
}

fn integration_from(v: &Json) -> Result<WebhookIntegration, WizError> {
    let s = |p: &str| v.pointer(p).and_then(Json::as_str).map(str::to_string);
    Ok(WebhookIntegration {
        id: s("/id").ok_or(WizError::Decode {
            operation: "Integration",
            reason: "integration without id".into(),
        })?,
        name: s("/name").unwrap_or_default(),
        all_projects: v
            .get("isAccessibleToAllProjects")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        url: s("/params/url").unwrap_or_default(),
        username: s("/params/authorization/username"),
    })
}

fn rule_from(v: &Json) -> Result<AutomationRule, WizError> {
    let s = |p: &str| v.pointer(p).and_then(Json::as_str).map(str::to_string);
    let strings = |x: Option<&Json>| -> Option<Vec<String>> {
        x.and_then(Json::as_array).map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect()
        })
    };
    // `filters` is a JSON scalar: an object, or (some servers) a string holding JSON.
    let filters = match v.get("filters") {
        Some(Json::String(s)) => serde_json::from_str(s).unwrap_or(Json::Null),
        Some(f) => f.clone(),
        None => Json::Null,
    };
    Ok(AutomationRule {
        id: s("/id").ok_or(WizError::Decode {
            operation: "AutomationRule",
            reason: "rule without id".into(),
        })?,
        name: s("/name").unwrap_or_default(),
        description: s("/description"),
        enabled: v.get("enabled").and_then(Json::as_bool).unwrap_or(false),
        trigger_source: s("/triggerSource").unwrap_or_default(),
        trigger_type: strings(v.get("triggerType")).unwrap_or_default(),
        severities: strings(filters.get("severity")),
        project_id: s("/project/id"),
        actions: v
            .get("actions")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| {
                        let s = |p: &str| x.pointer(p).and_then(Json::as_str).map(str::to_string);
                        RuleAction {
                            kind: s("/actionTemplateType").unwrap_or_default(),
                            integration_id: s("/integration/id"),
                            body: s("/actionTemplateParams/body"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiz_environments_by_host() {
        let of = |u: &str| WizCloud::of(&url::Url::parse(u).unwrap());
        assert_eq!(
            of("https://api.us17.app.wiz.io/graphql"),
            Some(WizCloud::Commercial)
        );
        assert_eq!(
            of("https://auth.wiz.io/oauth/token"),
            Some(WizCloud::Commercial)
        );
        assert_eq!(
            of("https://api.us1.gov.wiz.io/graphql"),
            Some(WizCloud::GovCloud)
        );
        assert_eq!(
            of("https://auth.gov.wiz.io/oauth/token"),
            Some(WizCloud::GovCloud)
        );
        assert_eq!(
            of("https://API.US2.APP.WIZ.US/graphql"),
            Some(WizCloud::Fedramp)
        );
        assert_eq!(
            of("https://auth.app.wiz.us/oauth/token"),
            Some(WizCloud::Fedramp)
        );
        assert_eq!(of("http://127.0.0.1:5000/wiz/graphql"), None);
        assert_eq!(of("https://notwiz.io/graphql"), None);
        assert_eq!(of("https://gov.wiz.io.example.com/graphql"), None);
        assert!(WizCloud::GovCloud.is_government() && !WizCloud::Commercial.is_government());
        assert_eq!(
            WizCloud::GovCloud.token_url(),
            "https://auth.gov.wiz.io/oauth/token"
        );
    }

    #[test]
    fn errors_never_carry_secrets_and_classify() {
        let e = WizError::Graphql {
            operation: "CreateUser",
            code: "BAD_USER_INPUT".into(),
            message: "bad".into(),
        };
        assert_eq!(e.code(), Some("BAD_USER_INPUT"));
        assert!(!e.is_transient());
        assert!(WizError::Http {
            operation: "x",
            status: 503,
            detail: None
        }
        .is_transient());
        let c = WizClient::new(
            Url::parse("https://auth.example/oauth/token").unwrap(),
            Url::parse("https://api.example/graphql").unwrap(),
            "id".into(),
            Secret::new("hunter2"),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn rules_decode_filters_as_object_or_string() {
        let r = rule_from(
            &json!({"id": "r", "name": "n", "enabled": true, "triggerSource": "ISSUES",
            "triggerType": ["CREATED"], "filters": "{\"severity\":[\"LOW\"]}",
            "actions": [{"actionTemplateType": "WEBHOOK", "integration": {"id": "i"},
                         "actionTemplateParams": {"body": "{}"}}]}),
        )
        .unwrap();
        assert_eq!(r.severities, Some(vec!["LOW".to_string()]));
        assert_eq!(
            r.actions,
            vec![RuleAction {
                kind: "WEBHOOK".into(),
                integration_id: Some("i".into()),
                body: Some("{}".into())
            }]
        );
        let i = integration_from(
            &json!({"id": "i", "name": "n", "isAccessibleToAllProjects": true,
            "params": {"url": "https://x", "authorization": {"username": "u"}}}),
        )
        .unwrap();
        assert_eq!(i.username.as_deref(), Some("u"));
    }

    /// A fake Wiz: `/token` counts token requests; `/graphql` answers from a script.
    async fn fake(
        script: Vec<(u16, Json)>,
    ) -> (Url, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers and the body (Content-Length).
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text[..i]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                log.lock().unwrap().push(text.clone());
                let (status, body) = if text.starts_with("POST /token") {
                    (
                        200,
                        json!({"access_token": format!("tok{}", log.lock().unwrap().len()), "token_type": "Bearer", "expires_in": 3600}),
                    )
                } else {
                    script.next().unwrap_or((200, json!({"data": {}})))
                };
                let body = body.to_string();
                let resp = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        (base, seen)
    }

    fn client(base: &Url) -> WizClient {
        WizClient::new(
            base.join("token").unwrap(),
            base.join("graphql").unwrap(),
            "cid".into(),
            Secret::new("s3cr3t-value"),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn vendor_text_echoing_a_secret_is_redacted() {
        let password = Secret::new("webhook-pa55word-echoed");
        let echo = json!({"errors": [{"message": format!("Variable \"$input\" got invalid value {{\"authorization\":{{\"password\":\"{}\"}}}}", password.expose()), "extensions": {"code": "BAD_USER_INPUT"}}]});
        let (base, _) = fake(vec![(200, echo)]).await;
        let e = client(&base)
            .create_webhook_integration("n", "https://x", "u", &password)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("got invalid value"), "{e}");
        assert!(!e.contains("pa55word"), "the password leaked: {e}");

        // The token endpoint echoing the configured client secret.
        let (base, _) = scripted_token(json!({"error": "access_denied", "error_description": "client_secret s3cr3t-value is not valid"})).await;
        let e = client(&base)
            .graphql("Q", "query Q { x }", json!({}))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not valid"), "{e}");
        assert!(!e.contains("s3cr3t-value"), "the client secret leaked: {e}");
    }

    /// A token endpoint answering 401 with `body`.
    async fn scripted_token(body: Json) -> (Url, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&chunk[..n]).to_string());
                let body = body.to_string();
                let resp = format!("HTTP/1.1 401 X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        (base, seen)
    }

    #[tokio::test]
    async fn token_is_form_encoded_cached_and_renewed_on_unauthenticated() {
        let unauth = json!({"errors": [{"message": "token expired", "extensions": {"code": "UNAUTHENTICATED"}}]});
        let (base, seen) = fake(vec![
            (200, json!({"data": {"a": 1}})),
            (200, unauth),
            (200, json!({"data": {"a": 2}})),
        ])
        .await;
        let c = client(&base);
        assert_eq!(
            c.graphql("A", "query A { a }", json!({})).await.unwrap()["a"],
            json!(1)
        );
        assert_eq!(
            c.graphql("A", "query A { a }", json!({})).await.unwrap()["a"],
            json!(2)
        );
        let log = seen.lock().unwrap().clone();
        let tokens: Vec<&String> = log
            .iter()
            .filter(|r| r.starts_with("POST /token"))
            .collect();
        assert_eq!(
            tokens.len(),
            2,
            "one token, then a new one after UNAUTHENTICATED"
        );
        assert!(tokens[0].contains("application/x-www-form-urlencoded"));
        assert!(
            tokens[0].contains("grant_type=client_credentials")
                && tokens[0].contains("audience=wiz-api")
        );
    }

    #[tokio::test]
    async fn queries_retry_server_errors_mutations_do_not_and_errors_carry_the_code() {
        let (base, _) = fake(vec![
            (503, json!({})),
            (200, json!({"data": {"ok": true}})),
            (503, json!({})),
            (200, json!({"errors": [{"message": "no such thing", "extensions": {"code": "NOT_FOUND"}}]})),
        ]).await;
        let c = client(&base);
        assert_eq!(
            c.graphql("Q", "query Q { ok }", json!({})).await.unwrap()["ok"],
            json!(true)
        );
        let e = c
            .graphql("M", "mutation M { x }", json!({}))
            .await
            .unwrap_err();
        assert!(matches!(e, WizError::Http { status: 503, .. }), "{e}");
        let e = c
            .graphql("Q", "query Q { x }", json!({}))
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(!format!("{e} {e:?}").contains("s3cr3t-value"));
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_retries_stays_transient() {
        let limited = json!({"errors": [{"message": "slow down", "extensions": {"code": "RATE_LIMIT_EXCEEDED"}}]});
        let (base, _) = fake(vec![(429, limited.clone()); 5]).await;
        let c = client(&base);
        let e = c
            .graphql("Q", "query Q { x }", json!({}))
            .await
            .unwrap_err();
        assert!(
            matches!(e, WizError::Http { status: 429, .. }) && e.is_transient(),
            "{e}"
        );
        let e = c
            .graphql("M", "mutation M { x }", json!({}))
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
    }

    #[tokio::test]
    async fn users_are_found_by_search_and_their_email_compared_here() {
        let user = |id: &str, email: &str| json!({"id": id, "name": "Expel Analyst", "email": email, "effectiveRole": {"id": "R"}, "isSuspended": false});
        let (base, seen) = fake(vec![(
            200,
            json!({"data": {"users": {"nodes": [user("1", "soc+acme@expel.io.example"), user("2", "SOC+acme@expel.io")], "pageInfo": {"hasNextPage": false, "endCursor": null}}}}),
        )])
        .await;
        let found = client(&base)
            .users_by_email("soc+acme@expel.io")
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].id.as_str(), found[0].role_id()), ("2", Some("R")));
        let log = seen.lock().unwrap().clone();
        let sent = log.last().unwrap();
        assert!(
            sent.contains(r#""filterBy":{"search":"soc+acme@expel.io"}"#),
            "{sent}"
        );
        assert!(
            !sent.contains("email:") && !sent.contains("role {"),
            "no e-mail filter, no `role` field: {sent}"
        );
    }

    #[tokio::test]
    async fn connections_are_followed_page_by_page() {
        let sa = |id: &str, name: &str| json!({"id": id, "name": name, "clientId": id, "scopes": ["read:issues"], "type": "THIRD_PARTY", "lastRotatedAt": null, "assignedProjects": []});
        let (base, seen) = fake(vec![
            (200, json!({"data": {"serviceAccounts": {"nodes": [sa("1", "Expel Workbench"), sa("2", "Expel Workbench 2")], "pageInfo": {"hasNextPage": true, "endCursor": "c1"}}}})),
            (200, json!({"data": {"serviceAccounts": {"nodes": [sa("3", "Expel Workbench")], "pageInfo": {"hasNextPage": false, "endCursor": null}}}})),
        ]).await;
        let c = client(&base);
        let found = c.service_accounts_named("Expel Workbench").await.unwrap();
        assert_eq!(
            found.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            vec!["1", "3"]
        );
        let log = seen.lock().unwrap().clone();
        assert!(
            log.last().unwrap().contains("\"after\":\"c1\""),
            "second page asks after the cursor"
        );
    }
}
