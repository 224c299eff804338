//! AWS adapters for lifehook: every AWS client is built here, from one configuration
//! that honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`.
//!
//! - [`clients`]: the shared SDK configuration and lazily created clients.
//! - [`lifecycle`]: `CompleteLifecycleAction` / `RecordLifecycleActionHeartbeat` with
//!   classified errors, hook descriptions (cached), instances waiting on hooks.
//! - [`keepalive`]: heartbeats while an action runs, bounded by the global timeout.
//! - [`queue`]: an SQS consumer of lifecycle notifications.
//! - [`identity`]: who this instance is, from IMDSv2 (with an Auto Scaling fallback).
//!
//! Talks to: EC2 Auto Scaling, SQS and instance metadata over HTTPS (or whatever endpoint
//! the standard `AWS_ENDPOINT_URL*` / `AWS_EC2_METADATA_SERVICE_ENDPOINT` variables name).

pub mod clients;
pub mod identity;
pub mod keepalive;
pub mod lifecycle;
pub mod queue;

pub use clients::{Clients, ConfigError};
pub use lifecycle::{
    ActionKey, ActionTarget, ErrorClass, HookInfo, LifecycleApi, LifecycleError, RetryPolicy,
    WaitingInstance,
};
