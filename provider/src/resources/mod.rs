//! The Expel provider: its configuration, resources, data sources and functions.
use std::sync::Arc;

use async_trait::async_trait;

use tfplugin::diag::Diagnostics;
use tfplugin::provider::{DataSource, Function, Provider, Resource};
use tfplugin::schema::Schema;
use tfplugin::value::Value;

pub mod cloudtrail;
pub mod config;
pub mod data_sources;
pub mod functions;
pub mod member_role;
pub mod org_roles;
pub mod sentinelone;
pub mod support;
pub mod wiz;

pub use config::ExpelData;

/// Source address of this provider in HCL.
pub const ADDRESS: &str = "registry.terraform.io/expel-io/expel";

pub struct ExpelProvider;

#[async_trait]
impl Provider for ExpelProvider {
    type Data = ExpelData;

    fn type_name(&self) -> &'static str {
        "expel"
    }

    fn schema(&self) -> Schema {
        config::schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        config::validate(config, diags)
    }

    async fn configure(
        &self,
        config: &Value,
        _terraform_version: &str,
        diags: &mut Diagnostics,
    ) -> Option<ExpelData> {
        config::configure(config, &config::ProcessEnv, diags)
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<ExpelData>>> {
        vec![
            Arc::new(support::guided::Guide::new(
                cloudtrail::CloudTrailIntegration,
            )),
            Arc::new(support::guided::Guide::new(member_role::AwsMemberRole)),
            Arc::new(support::guided::Guide::new(
                org_roles::OrganizationMemberRoles,
            )),
            Arc::new(support::guided::Guide::new(sentinelone::SentinelOneDevice)),
            Arc::new(support::guided::Guide::new(wiz::WizDevice)),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<ExpelData>>> {
        vec![
            Arc::new(data_sources::organization::OrganizationDataSource),
            Arc::new(data_sources::plugins::PluginsDataSource),
        ]
    }

    fn functions(&self) -> Vec<Arc<dyn Function>> {
        vec![Arc::new(functions::soc_email::SocEmail)]
    }
}
