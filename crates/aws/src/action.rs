//! One lifecycle action, from its event to its resolution: route it to a pipeline, look up
//! its hook, run the steps with keepalive (heartbeats while they run), and complete it as
//! the pipeline's policy says.
//!
//! Shared by the controller (actions from an SQS queue) and the Lambda handler (actions
//! from an invocation's event). Neither path's envelope is known here: the caller turns the
//! returned [`Resolution`] into what its delivery needs (delete, set aside or hand back a
//! message; acknowledge an invocation, report a batch item failure, or fail it for a
//! retry).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lifehook_core::clock::Clock;
use lifehook_core::config::Config;
use lifehook_core::pipeline::{ActionContext, Decision, Outcome, Runner};
use lifehook_model::{LifecycleEvent, LifecycleResult};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::Clients;
use crate::keepalive::{Keepalive, KeepaliveConfig, KeepaliveEnd, KeepaliveReport};
use crate::lifecycle::{ActionTarget, HookInfo, LifecycleApi, LifecycleError};
use crate::metrics::Metrics;

/// How one action ended, as far as Auto Scaling is concerned.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// `CompleteLifecycleAction` succeeded with this result.
    Completed(LifecycleResult),
    /// The action was over before we could complete it (completed elsewhere, timed out,
    /// the instance is gone): nothing more to do.
    AlreadyResolved,
    /// `on_deadline = "hold"`: the steps reached the action's work deadline; the caller
    /// keeps the action alive as long as it can and lets the hook's DefaultResult apply.
    Hold {
        hook: HookInfo,
        started_at: SystemTime,
    },
    /// The steps were cancelled (shutdown, or the Lambda function's own deadline) before
    /// the pipeline decided: the action is still waiting and must be handed back so that
    /// it is run again (from the start: steps are safe to run twice).
    Interrupted { resume_from: usize },
    /// A transient failure (describing the hook, completing): hand the action back.
    Retry { why: String },
    /// Nothing will ever handle this action here: log it and let it go.
    SetAside { reason: &'static str, why: String },
}

/// Everything needed to handle actions: the configuration, Auto Scaling, the step runner,
/// metrics and the clock deadlines are measured on.
pub struct ActionHandler {
    pub config: Config,
    pub api: LifecycleApi,
    pub runner: Runner,
    pub metrics: Arc<Metrics>,
    pub region: String,
    pub keepalive: KeepaliveConfig,
    /// Deadlines and heartbeats are on this clock (a sandbox's virtual clock in tests).
    pub clock: Arc<dyn Clock>,
}

impl ActionHandler {
    pub fn new(
        config: Config,
        clients: &Clients,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> ActionHandler {
        ActionHandler {
            api: LifecycleApi::new(clients.autoscaling().clone()),
            runner: crate::steps::runner(clients),
            metrics,
            region: clients.region().to_owned(),
            keepalive: KeepaliveConfig::from(&config.keepalive),
            clock,
            config,
        }
    }

    /// Runs the pipeline that matches `ev` and completes the action. `steps` receives the
    /// time the steps took. Cancelling `cancel` interrupts the steps
    /// ([`Resolution::Interrupted`]).
    pub async fn handle(
        &self,
        ev: &LifecycleEvent,
        cancel: &CancellationToken,
        steps: &mut Duration,
    ) -> Resolution {
        let tags = if self.config.needs_tags() {
            group_tags(&self.api, &ev.group).await
        } else {
            BTreeMap::new()
        };
        let Some(pipeline) = self.config.route(ev, &tags) else {
            return Resolution::SetAside {
                reason: "unrouted",
                why: "no pipeline of the configuration matches this action".into(),
            };
        };
        let hook = match self.api.hook(&ev.group, &ev.hook).await {
            Ok(h) => h,
            Err(LifecycleError::HookNotFound { .. }) => {
                return Resolution::SetAside {
                    reason: "stale",
                    why: "the hook no longer exists; the action is gone".into(),
                };
            }
            Err(e) if e.is_already_resolved() => return Resolution::AlreadyResolved,
            Err(e) => {
                return Resolution::Retry {
                    why: format!("cannot describe the hook: {e}"),
                };
            }
        };
        let now = self.clock.now();
        let started_at = ActionContext::event_time(ev).unwrap_or(now);
        let mut actx = ActionContext::new(ev.clone(), hook.heartbeat_timeout, started_at);
        actx.global_deadline = started_at + hook.global_timeout;
        actx.deadline_margin = self.config.keepalive.deadline_margin;
        actx.clock = self.clock.clone();
        actx.tags = tags;
        actx.region = Some(self.region.clone());
        if actx.global_deadline <= now {
            info!("the action's global timeout has passed; it is already resolved");
            return Resolution::AlreadyResolved;
        }
        debug!(pipeline = %pipeline.name, "running pipeline");

        let target = ActionTarget::from_event(ev);
        let keepalive = Keepalive::start(
            self.api.clone(),
            target.clone(),
            &hook,
            Some(started_at),
            self.keepalive,
            self.clock.clone(),
        );
        let outcome = self.runner.run(pipeline, &actx, cancel).await;
        let report = keepalive.stop().await;
        *steps = outcome.steps.iter().map(|s| s.duration).sum();
        self.observe(&outcome, &report);
        if report.end == KeepaliveEnd::AlreadyResolved {
            info!("the action was resolved elsewhere while the pipeline ran");
            return Resolution::AlreadyResolved;
        }
        match outcome.decision {
            Decision::Complete(result) => self.complete(&target, result).await,
            Decision::Reboot { .. } => {
                let result = pipeline.policy.on_failure;
                warn!(%result, "a step asked for a reboot, which only the agent can do; applying on_failure");
                self.complete(&target, result).await
            }
            Decision::Hold => Resolution::Hold { hook, started_at },
            Decision::Interrupted { resume_from } => {
                info!(resume_from, "interrupted before the pipeline finished");
                Resolution::Interrupted { resume_from }
            }
        }
    }

    /// `CompleteLifecycleAction`, with its errors classified.
    pub async fn complete(&self, target: &ActionTarget, result: LifecycleResult) -> Resolution {
        match self.api.complete(target, result).await {
            Ok(()) => {
                debug!(%result, "lifecycle action completed");
                Resolution::Completed(result)
            }
            Err(e) if e.is_already_resolved() => {
                info!("the action was already resolved; nothing to complete");
                Resolution::AlreadyResolved
            }
            Err(e @ LifecycleError::Transient { .. }) => Resolution::Retry {
                why: format!("completing failed: {e}"),
            },
            Err(e) => Resolution::SetAside {
                reason: "complete-failed",
                why: format!("cannot complete the action: {e}"),
            },
        }
    }

    fn observe(&self, outcome: &Outcome, report: &KeepaliveReport) {
        let m = &self.metrics;
        m.heartbeats.inc_by(u64::from(report.heartbeats));
        m.heartbeat_failures.inc_by(u64::from(report.failures));
        for s in &outcome.steps {
            let status = m.observe_step(s);
            if let Some(err) = &s.error {
                info!(step = %s.name, step_type = s.step_type, status, attempts = s.attempts, error = %err, "step report");
            } else {
                debug!(step = %s.name, step_type = s.step_type, status, attempts = s.attempts, duration_ms = s.duration.as_millis() as u64, "step report");
            }
        }
        debug!(decision = %outcome.decision, heartbeats = report.heartbeats, "pipeline finished");
    }
}

/// The group's tags, for routing on tags (empty, with a log line, when unavailable).
async fn group_tags(api: &LifecycleApi, group: &str) -> BTreeMap<String, String> {
    match api
        .client()
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
    {
        Ok(out) => out
            .auto_scaling_groups()
            .first()
            .map(|g| {
                g.tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => {
            warn!(group, error = %crate::lifecycle::describe_sdk(&e), "cannot read the group's tags; routing without them");
            BTreeMap::new()
        }
    }
}
