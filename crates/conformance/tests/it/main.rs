//! The sandbox driven by the real aws-sdk-rust clients over loopback HTTP. One test binary,
//! one module per area.

mod autoscaling;
mod events;
mod smoke;
mod sns;
mod sqs;
