//! Generic Terraform plugin SDK: knows Terraform, knows nothing of the provider built on it.
mod convert;
pub mod diag;
pub mod handshake;
pub mod log;
pub mod plan;
pub mod proto;
pub mod provider;
pub mod schema;
pub mod server;
#[cfg(test)]
mod tests;
pub mod tls;
pub mod value;
