//! terraform-provider-expel: Expel Workbench onboarding guides as Terraform resources.
pub mod clients;
pub mod resources;
pub mod tfplugin;
