//! The sandbox driven by the real aws-sdk-rust clients over loopback HTTP. One test binary,
//! one module per area.

mod autoscaling;
mod ecs;
mod events;
mod s3;
mod smoke;
mod sns;
mod sqs;
mod ssm;
