//! AWS adapters for lifehook: every AWS client is built here, from one configuration
//! that honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`.
//!
//! - [`clients`]: the shared SDK configuration and lazily created clients.
//! - [`lifecycle`]: `CompleteLifecycleAction` / `RecordLifecycleActionHeartbeat` with
//!   classified errors, hook descriptions (cached), instances waiting on hooks.
//! - [`keepalive`]: heartbeats while an action runs, bounded by the global timeout.
//! - [`queue`]: an SQS consumer of lifecycle notifications.
//! - [`identity`]: who this instance is, from IMDSv2 (with an Auto Scaling fallback).
//! - [`action`]: one lifecycle action → pipeline → keepalive → completion, shared by the
//!   controller and the Lambda handler.
//! - [`controller`]: the fleet mode — queue → pipeline → keepalive → completion.
//! - [`lambda`]: the Lambda handler — EventBridge, SNS, SQS (partial batch responses) and
//!   direct hook invocations, bounded by the function's deadline.
//! - [`agent`]: the on-instance mode — its own inbox or IMDS, persisted progress, reboots.
//! - [`metrics`]: Prometheus metrics and the loopback admin server.
//! - [`steps`]: the step types that call AWS (`s3-fetch`, `s3-upload`, `ssm-command`,
//!   `ecs-drain`, `signal`, `tag`).
//!
//! Talks to: EC2 Auto Scaling, SQS and instance metadata over HTTPS (or whatever endpoint
//! the standard `AWS_ENDPOINT_URL*` / `AWS_EC2_METADATA_SERVICE_ENDPOINT` variables name).
//! Configuration is the standard AWS environment only (credentials, `AWS_REGION`,
//! endpoints); nothing sets an endpoint in code.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use lifehook_aws::queue::{QueueConfig, QueueConsumer};
//! use lifehook_aws::{ActionTarget, Clients, LifecycleApi};
//! use lifehook_model::LifecycleResult;
//!
//! let clients = Clients::load().await?;
//! let api = LifecycleApi::new(clients.autoscaling().clone());
//! let url = "https://sqs.us-east-1.amazonaws.com/123456789012/lifecycle";
//! let queue = QueueConsumer::new(clients.sqs().clone(), QueueConfig::new(url));
//! for msg in queue.next_batch().await? {
//!     let target = ActionTarget::from_event(&msg.event);
//!     match api.complete(&target, LifecycleResult::Continue).await {
//!         Ok(()) => queue.ack(msg).await?,
//!         Err(e) if e.is_already_resolved() => queue.ack(msg).await?,
//!         Err(e) => {
//!             queue.hand_back(msg).await?;
//!             return Err(e.into());
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod action;
pub mod agent;
pub mod clients;
pub mod controller;
pub mod drain;
pub mod identity;
pub mod keepalive;
pub mod lambda;
pub mod lifecycle;
pub mod metrics;
pub mod queue;
pub mod setup;
pub mod steps;

pub use clients::{Clients, ConfigError};
pub use lifecycle::{
    ActionKey, ActionTarget, ErrorClass, HookInfo, LifecycleApi, LifecycleError, RetryPolicy,
    WaitingInstance,
};
