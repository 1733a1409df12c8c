//! Expel Workbench API client: JSON:API at `/api/v2`, `Authorization: Bearer <key>`.
//! 429 and 5xx are retried with backoff (honouring Retry-After); 4xx are the caller's fault.
use std::time::Duration;

use serde_json::Value as Json;
use url::Url;

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

pub struct WorkbenchClient {
    http: reqwest::Client,
    base: Url,
    api_key: Secret,
    max_attempts: u32,
}

impl WorkbenchClient {
    pub fn new(base: Url, api_key: Secret) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "terraform-provider-expel/",
                env!("CARGO_PKG_VERSION")
            ))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(WorkbenchClient {
            http,
            base,
            api_key,
            max_attempts: 5,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let prefix = u.path().trim_end_matches('/').to_string();
        u.set_path(&format!("{prefix}/api/v2/{}", path.trim_start_matches('/')));
        u
    }

    /// GET a JSON:API document, retrying throttling and server errors.
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Json, WorkbenchError> {
        let method = "GET";
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .get(self.url(path))
                .query(query)
                .bearer_auth(self.api_key.expose())
                .header("Accept", "application/vnd.api+json")
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) if attempt < self.max_attempts && (e.is_connect() || e.is_timeout()) => {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(WorkbenchError::Transport {
                        base: self.base.to_string(),
                        method,
                        path: path.to_string(),
                        reason: e.without_url().to_string(),
                    })
                }
            };
            let status = resp.status().as_u16();
            if (status == 429 || status >= 500) && attempt < self.max_attempts {
                let wait = retry_after(&resp).unwrap_or_else(|| backoff(attempt));
                tracing::debug!(status, path, attempt, "Workbench retry");
                tokio::time::sleep(wait).await;
                continue;
            }
            let body = resp.bytes().await.map_err(|e| WorkbenchError::Transport {
                base: self.base.to_string(),
                method,
                path: path.to_string(),
                reason: e.without_url().to_string(),
            })?;
            let json: Json = serde_json::from_slice(&body).map_err(|e| WorkbenchError::Decode {
                method,
                path: path.to_string(),
                reason: format!("not JSON ({e})"),
            })?;
            if status >= 400 {
                let (title, detail) = error_text(&json);
                return Err(WorkbenchError::Api {
                    method,
                    path: path.to_string(),
                    status,
                    title,
                    detail,
                });
            }
            return Ok(json);
        }
    }

    /// GET every page of a collection, following `links.next`.
    async fn list(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Json>, WorkbenchError> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let off = offset.to_string();
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("page[offset]", &off));
            q.push(("page[limit]", "100"));
            let doc = self.get(path, &q).await?;
            let items =
                doc.get("data")
                    .and_then(Json::as_array)
                    .ok_or_else(|| WorkbenchError::Decode {
                        method: "GET",
                        path: path.to_string(),
                        reason: "no `data` array".into(),
                    })?;
            offset += items.len();
            out.extend(items.iter().cloned());
            let has_next = doc.pointer("/links/next").is_some_and(|n| !n.is_null());
            if !has_next || items.is_empty() {
                return Ok(out);
            }
        }
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

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(30)))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(6)))
}
