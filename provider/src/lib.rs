//! terraform-provider-expel: Expel Workbench onboarding guides as Terraform resources.
pub mod clients;
pub mod docgen;
pub mod engine;
pub mod policy;
pub mod resources;

/// This release's version (from Cargo): `--version`, the first log line and the User-Agent
/// of every call.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
