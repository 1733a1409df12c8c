//! What the resources share: the guided-resource adapter, state helpers, ownership, the
//! Workbench pin and device step, idempotent creates, and the AWS pieces (IAM, S3, naming
//! rules, regions) more than one resource uses.
pub mod aws_names;
pub mod aws_regions;
pub mod common;
pub mod create_once;
pub mod device_health;
pub mod device_step;
pub mod guided;
pub mod iam;
pub mod member_account;
pub mod ownership;
pub mod s3;
pub mod tags;
pub mod workbench_pin;
