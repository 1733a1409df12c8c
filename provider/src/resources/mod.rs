//! The Expel provider: its configuration, resources, data sources and functions.
use std::sync::Arc;

use async_trait::async_trait;

use tfplugin::diag::Diagnostics;
use tfplugin::provider::{DataSource, Function, Provider, Resource};
use tfplugin::schema::Schema;
use tfplugin::value::Value;

pub mod aws_names;
pub mod aws_regions;
pub mod cloudtrail;
pub mod common;
pub mod config;
pub mod device_health;
pub mod iam;
pub mod member_role;
pub mod organization;
pub mod ownership;
pub mod plugins;
pub mod s3;
pub mod sentinelone;
pub mod soc_email;
pub mod wiz;
pub mod workbench_pin;

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
            Arc::new(cloudtrail::CloudTrailIntegration),
            Arc::new(member_role::AwsMemberRole),
            Arc::new(sentinelone::SentinelOneDevice),
            Arc::new(wiz::WizDevice),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<ExpelData>>> {
        vec![
            Arc::new(organization::OrganizationDataSource),
            Arc::new(plugins::PluginsDataSource),
        ]
    }

    fn functions(&self) -> Vec<Arc<dyn Function>> {
        vec![Arc::new(soc_email::SocEmail)]
    }
}
