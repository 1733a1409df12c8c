//! One module per remote API. Clients know HTTP and the vendor's shapes, nothing of
//! Terraform or the engine.
pub mod aws;
pub mod secret;
pub mod wiz;
pub mod workbench;

pub use secret::Secret;
