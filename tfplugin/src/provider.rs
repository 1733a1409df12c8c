//! The traits a provider implements, in the spirit of terraform-plugin-framework.
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diag::Diagnostics;
use super::schema::Schema;
use super::value::{Type, Value};

/// What every resource, data source and configure call receives.
pub struct Ctx<D> {
    /// The provider's configured data (API clients), from `Provider::configure`.
    pub data: Arc<D>,
    /// Cancelled when Terraform sends StopProvider (Ctrl-C) while this call runs.
    pub cancel: CancellationToken,
}

/// A provider: its own schema and configuration, and what it offers.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    type Data: Send + Sync + 'static;
    /// The provider type name, e.g. `aws`; resource types start with `<name>_`.
    fn type_name(&self) -> &'static str;
    /// The executable's name as Terraform finds it, `terraform-provider-<type name>`; messages
    /// meant for the user name the provider by it.
    fn program_name(&self) -> String {
        format!("terraform-provider-{}", self.type_name())
    }
    fn schema(&self) -> Schema;
    /// Static checks of the provider block; values may be unknown here.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    /// Builds the provider data (clients) from the configuration.
    async fn configure(
        &self,
        config: &Value,
        terraform_version: &str,
        diags: &mut Diagnostics,
    ) -> Option<Self::Data>;
    fn resources(&self) -> Vec<Arc<dyn Resource<Self::Data>>>;
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Self::Data>>>;
    fn functions(&self) -> Vec<Arc<dyn Function>>;
}

/// What a plan hook sees: only the inputs of the plan, so that planning twice (at plan and at
/// apply time) gives the same answer.
pub struct PlanInput<'a> {
    pub prior: &'a Value,
    pub config: &'a Value,
    pub private: &'a [u8],
}

/// The outcome of Read.
pub struct ReadOutcome {
    /// `None`: the object is gone; Terraform plans to create it again.
    pub state: Option<Value>,
    pub private: Vec<u8>,
}

/// The outcome of Create and Update. On failure, return the state made so far (with errors
/// in the diagnostics) so nothing is orphaned.
pub struct ApplyOutcome {
    pub state: Option<Value>,
    pub private: Vec<u8>,
}

/// A managed resource.
#[async_trait]
pub trait Resource<D>: Send + Sync {
    /// Full type name, e.g. `aws_s3_bucket`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    /// Static checks beyond attribute validators; values may be unknown here.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    /// Adjusts the plan computed by the SDK: fills defaults derived from the provider's
    /// location, marks computed values that will change unknown. Terraform plans twice and
    /// requires the same answer: no clock, no randomness, no reads of things that change.
    async fn modify_plan(
        &self,
        _ctx: &Ctx<D>,
        _input: &PlanInput<'_>,
        _planned: &mut Value,
        _diags: &mut Diagnostics,
    ) {
    }
    async fn create(
        &self,
        ctx: &Ctx<D>,
        planned: &Value,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> ApplyOutcome;
    async fn read(
        &self,
        ctx: &Ctx<D>,
        state: &Value,
        private: &[u8],
        diags: &mut Diagnostics,
    ) -> ReadOutcome;
    async fn update(
        &self,
        ctx: &Ctx<D>,
        prior: &Value,
        planned: &Value,
        config: &Value,
        private: &[u8],
        diags: &mut Diagnostics,
    ) -> ApplyOutcome;
    async fn delete(&self, ctx: &Ctx<D>, prior: &Value, private: &[u8], diags: &mut Diagnostics);
    /// Builds a (possibly partial) state from an import id; Read fills in the rest.
    async fn import(&self, ctx: &Ctx<D>, id: &str, diags: &mut Diagnostics) -> Option<Value>;
    /// Upgrades state stored under an older schema version (JSON as in the state file).
    /// The default accepts only the current version.
    fn upgrade_state(
        &self,
        version: i64,
        _raw: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        no_upgrade(self.type_name(), version, diags)
    }
}

/// The answer of a resource with no upgrade from `version`: an error saying so.
pub fn no_upgrade(type_name: &str, version: i64, diags: &mut Diagnostics) -> Option<Value> {
    diags.error(
        "Unsupported state version",
        format!("{type_name} has no upgrade from schema version {version}."),
    );
    None
}

/// A data source.
#[async_trait]
pub trait DataSource<D>: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    async fn read(&self, ctx: &Ctx<D>, config: &Value, diags: &mut Diagnostics) -> Option<Value>;
}

/// A parameter of a provider function.
pub struct Parameter {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
}

/// A provider function's signature and documentation.
pub struct Signature {
    pub parameters: Vec<Parameter>,
    pub returns: Type,
    pub summary: &'static str,
    pub description: &'static str,
}

/// An error from a function call, optionally naming the argument at fault.
pub struct FunctionError {
    pub text: String,
    pub argument: Option<i64>,
}

/// A provider function, callable as `provider::<provider>::<name>(...)`.
pub trait Function: Send + Sync {
    fn name(&self) -> &'static str;
    fn signature(&self) -> Signature;
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError>;
}
