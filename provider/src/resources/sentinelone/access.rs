//! The provider block `sentinelone { ... }`: the API token of a console user allowed to
//! manage roles and users, also from the environment.
use crate::clients::http::Limits;
use crate::clients::Secret;
use crate::resources::config::{setting, Access, Env};
use tfplugin::diag::Diagnostics;
use tfplugin::schema::{Attribute, Block};
use tfplugin::value::Value;

/// SentinelOne access: the token; a client is made per console URL (a resource attribute).
pub struct SentinelOneAccess {
    pub api_token: Secret,
}

impl Access for SentinelOneAccess {
    const BLOCK: &'static str = "sentinelone";

    fn block() -> Block {
        Block::new("SentinelOne management console access.").attr(
            Attribute::string("api_token")
                .optional()
                .sensitive()
                .description("API token of a console user allowed to manage roles and users. Default: `SENTINELONE_API_TOKEN`."),
        )
    }

    fn configure(
        block: &Value,
        env: &dyn Env,
        _limits: &Limits,
        _diags: &mut Diagnostics,
    ) -> Option<Self> {
        setting(block, &["api_token"], "SENTINELONE_API_TOKEN", env).map(|(t, _)| {
            SentinelOneAccess {
                api_token: Secret::new(t),
            }
        })
    }
}
