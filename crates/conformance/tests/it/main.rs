//! The sandbox driven by the real aws-sdk-rust clients over loopback HTTP. One test binary,
//! one module per area.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod autoscaling;
mod cloudformation;
mod ec2;
mod ecs;
mod elbv2;
mod events;
mod imds;
mod lambda;
mod s3;
mod smoke;
mod sns;
mod sqs;
mod ssm;
mod sts;
