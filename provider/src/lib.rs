//! terraform-provider-expel: Expel Workbench onboarding guides as Terraform resources.
pub mod clients;
pub mod engine;
pub mod policy;
pub mod resources;
