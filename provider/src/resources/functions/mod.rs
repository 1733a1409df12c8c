//! Provider functions, callable as `provider::expel::<name>(...)`.
pub mod soc_email;
