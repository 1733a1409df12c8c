//! One module per remote API. Clients know HTTP and the vendor's shapes, nothing of
//! Terraform or the engine.
pub mod aws;
pub mod http;
pub mod pause;
pub mod retry;
#[cfg(test)]
mod sandbox;
pub mod secret;
pub mod sentinelone;
pub mod sts;
pub mod wiz;
pub mod workbench;

pub use secret::Secret;
