//! The sandbox driven by the real aws-sdk-rust clients over loopback HTTP. One test binary,
//! one module per area.

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
