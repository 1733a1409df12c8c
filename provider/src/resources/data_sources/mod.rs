//! Data sources: read-only views of Workbench.
pub mod organization;
pub mod plugins;
