//! Handler logic that needs no AWS SDK: configuration, routing of lifecycle actions to
//! pipelines, the steps that run locally, the completion policy and keepalive planning.
//!
//! What it talks to over the network: only the URLs of `http`, `notify` and `probe` steps
//! of the configuration. Everything AWS (receiving messages, heartbeats, completion) lives in
//! `lifehook-aws`, which calls in here:
//!
//! ```no_run
//! # async fn f(event: lifehook_model::LifecycleEvent) {
//! use std::time::{Duration, SystemTime};
//! use lifehook_core::{config, pipeline::{ActionContext, Decision, Runner}};
//! let cfg = config::load(std::path::Path::new("lifehook.toml")).expect("valid configuration");
//! let tags = Default::default();
//! if let Some(p) = cfg.route(&event, &tags) {
//!     let start = ActionContext::event_time(&event).unwrap_or_else(SystemTime::now);
//!     let mut ctx = ActionContext::new(event.clone(), Duration::from_secs(300), start);
//!     ctx.deadline_margin = cfg.keepalive.deadline_margin;
//!     let outcome = Runner::new().run(p, &ctx, &Default::default()).await;
//!     match outcome.decision {
//!         Decision::Complete(result) => { /* CompleteLifecycleAction(result) */ }
//!         _ => { /* hold, reboot or hand back */ }
//!     }
//! }
//! # }
//! ```
//!
//! Configuration reference: `docs/configuration.md`.

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod keepalive;
pub mod pipeline;
pub mod policy;
pub mod step;
pub mod template;

pub use clock::{Clock, SandboxClock, SystemClock, TokioClock};
pub use config::{Config, Pipeline, Problem, load};
pub use keepalive::{KeepalivePlan, VisibilityPlan};
pub use pipeline::{ActionContext, Decision, Outcome, Progress, Runner};

#[cfg(test)]
pub(crate) mod test_support {
    use lifehook_model::delivery::DeliveryPath;
    use lifehook_model::{Endpoint, LifecycleEvent, LifecycleTransition};

    pub(crate) fn event(metadata: Option<&str>) -> LifecycleEvent {
        LifecycleEvent {
            group: "web-asg".into(),
            hook: "drain".into(),
            instance_id: "i-0123456789abcdef0".into(),
            transition: LifecycleTransition::Terminating,
            token: "tok-1".into(),
            origin: Some(Endpoint::AutoScalingGroup),
            destination: Some(Endpoint::EC2),
            metadata: metadata.map(str::to_owned),
            time: Some("2023-09-11T03:30:33.136Z".into()),
            account: Some("000000000000".into()),
            request_id: None,
            path: DeliveryPath::Direct,
        }
    }
}
