//! The provider block `wiz { ... }`: access to the Wiz tenant (a service account with admin
//! scopes), each value also from the environment.
use url::Url;

use crate::clients::http::Limits;
use crate::clients::wiz::{WizClient, WizCloud};
use crate::clients::Secret;
use crate::resources::config::{secure_url, setting, Access, Env};
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::schema::{validators, Attribute, Block};
use tfplugin::value::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct WizSettings {
    pub client_id: String,
    pub client_secret: Secret,
    pub auth_url: Url,
    pub api_url: Url,
}

/// Wiz access: the settings and the client (its token cached for the life of the provider
/// process).
pub struct WizAccess {
    pub settings: WizSettings,
    pub client: WizClient,
}

impl Access for WizAccess {
    const BLOCK: &'static str = "wiz";

    fn block() -> Block {
        Block::new("Wiz tenant access (a service account with admin scopes).")
            .attr(Attribute::string("client_id").optional().description("Default: `WIZ_CLIENT_ID`."))
            .attr(Attribute::string("client_secret").optional().sensitive().description("Default: `WIZ_CLIENT_SECRET`."))
            .attr(Attribute::string("auth_url").optional().description("OAuth token URL. Default: `WIZ_AUTH_URL`, or the token endpoint of the environment `api_url` is in: `https://auth.app.wiz.io/oauth/token` (commercial), `https://auth.gov.wiz.io/oauth/token` (an `api_url` under `gov.wiz.io`, Wiz on AWS GovCloud), `https://auth.app.wiz.us/oauth/token` (under `wiz.us`, Wiz for Government). Must be https (it carries the client secret); plain http only for this machine, as for `workbench_url`. See `expel_wiz_device`'s `govcloud`.").validator(validators::url(&["https", "http"])))
            .attr(Attribute::string("api_url").optional().description("GraphQL endpoint of the tenant, e.g. `https://api.us17.app.wiz.io/graphql`. Default: `WIZ_API_URL`. Must be https (it carries the access token); plain http only for this machine.").validator(validators::url(&["https", "http"])))
    }

    fn validate(block: &Value, diags: &mut Diagnostics) {
        let id = block.get("client_id").unwrap_or(&Value::Null);
        let secret = block.get("client_secret").unwrap_or(&Value::Null);
        if id.is_known() && secret.is_known() && id.is_null() != secret.is_null() {
            diags.attr_error(
                AttrPath::root("wiz"),
                "Incomplete Wiz credentials",
                "Set both `wiz.client_id` and `wiz.client_secret` (or WIZ_CLIENT_ID and WIZ_CLIENT_SECRET), or neither.",
            );
        }
    }

    fn configure(
        block: &Value,
        env: &dyn Env,
        limits: &Limits,
        diags: &mut Diagnostics,
    ) -> Option<Self> {
        let id = setting(block, &["client_id"], "WIZ_CLIENT_ID", env);
        let secret = setting(block, &["client_secret"], "WIZ_CLIENT_SECRET", env);
        let (id, secret) = match (id, secret) {
            (None, None) => return None,
            (Some(i), Some(s)) => (i.0, Secret::new(s.0)),
            (Some(_), None) => {
                diags.attr_error(
                    AttrPath::root("wiz").attr("client_secret"),
                    "Missing Wiz client secret",
                    "Set `wiz.client_secret` or WIZ_CLIENT_SECRET, since a Wiz client id is given.",
                );
                return None;
            }
            (None, Some(_)) => {
                diags.attr_error(
                    AttrPath::root("wiz").attr("client_id"),
                    "Missing Wiz client id",
                    "Set `wiz.client_id` or WIZ_CLIENT_ID, since a Wiz client secret is given.",
                );
                return None;
            }
        };
        let Some(api) = setting(block, &["api_url"], "WIZ_API_URL", env) else {
            diags.attr_error(AttrPath::root("wiz").attr("api_url"), "Missing Wiz API URL", "Set `wiz.api_url` or WIZ_API_URL to your tenant's GraphQL endpoint (Wiz: User Settings > Tenant > API Endpoint URL).");
            return None;
        };
        // Both URLs carry a secret: https, or plain http on this machine only.
        let mut secure = |(value, source): &(String, String), attr: &str, var: &str, what: &str| {
            secure_url(
                value,
                source,
                AttrPath::root("wiz").attr(attr),
                var,
                what,
                diags,
            )
        };
        let api_url = secure(&api, "api_url", "WIZ_API_URL", "the Wiz access token");
        // The token endpoint of the tenant's environment (a GovCloud tenant signs in at
        // auth.gov.wiz.io), unless one is given.
        let auth = setting(block, &["auth_url"], "WIZ_AUTH_URL", env).unwrap_or_else(|| {
            let cloud = api_url.as_ref().and_then(WizCloud::of);
            (
                cloud.unwrap_or(WizCloud::Commercial).token_url().into(),
                "the default".into(),
            )
        });
        let auth_url = secure(&auth, "auth_url", "WIZ_AUTH_URL", "the Wiz client secret");
        let settings = WizSettings {
            client_id: id,
            client_secret: secret,
            auth_url: auth_url?,
            api_url: api_url?,
        };
        // A client that cannot be built leaves Wiz unconfigured: the resource says so.
        let client = WizClient::new(
            settings.auth_url.clone(),
            settings.api_url.clone(),
            settings.client_id.clone(),
            settings.client_secret.clone(),
        )
        .and_then(|c| c.with_limits(limits))
        .ok()?;
        Some(WizAccess { settings, client })
    }
}
