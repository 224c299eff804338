//! `lifehook controller`: the fleet mode. Reads lifecycle actions from one SQS queue, runs
//! the configured pipeline for each, keeps the action alive while it runs and completes it
//! according to the pipeline's policy. Any number of replicas may share the queue: SQS
//! visibility gives each message to one replica at a time, the message stays invisible
//! while its action runs, and it is deleted only once the action is completed or found
//! already resolved — so a replica that dies mid-action leaves the message to reappear for
//! another (or for itself after a restart), and steps are safe to run twice.
//!
//! Shutdown (SIGTERM): stop receiving; let in-flight actions finish within the grace
//! period; cancel the rest and hand their messages back to the queue at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lifehook_core::clock::Clock;
use lifehook_core::config::{Config, Pipeline};
use lifehook_core::pipeline::{ActionContext, Decision, Outcome, Runner};
use lifehook_model::{LifecycleResult, LifecycleTransition};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use crate::Clients;
use crate::drain::{count, drain};
use crate::keepalive::{Keepalive, KeepaliveConfig, KeepaliveEnd, KeepaliveReport};
use crate::lifecycle::{ActionTarget, HookInfo, LifecycleApi, LifecycleError};
use crate::metrics::{ActionLabels, Metrics, ReasonLabels};
use crate::queue::{InFlight, QueueConfig, QueueConsumer, QueueError};

/// How long in-flight actions may run on after SIGTERM before they are handed back.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// The longest pause between failed receives.
const MAX_RECEIVE_BACKOFF: Duration = Duration::from_secs(20);

/// Why the controller could not run.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(
        "the controller reads lifecycle actions from SQS: set `queue_url` in [source] of the configuration (or LIFEHOOK_QUEUE_URL)"
    )]
    NoQueue,
    #[error("cannot receive lifecycle actions")]
    Receive(#[source] QueueError),
}

/// What happened to one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionOutcome {
    Completed(LifecycleResult),
    AlreadyResolved,
    Held,
    HandedBack,
    SetAside,
}

impl ActionOutcome {
    fn label(self) -> &'static str {
        match self {
            ActionOutcome::Completed(LifecycleResult::Continue) => "continue",
            ActionOutcome::Completed(LifecycleResult::Abandon) => "abandon",
            ActionOutcome::AlreadyResolved => "already-resolved",
            ActionOutcome::Held => "held",
            ActionOutcome::HandedBack => "handed-back",
            ActionOutcome::SetAside => "set-aside",
        }
    }
}

/// Counts of outcomes, returned when the controller stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub outcomes: BTreeMap<&'static str, u64>,
}

struct Shared {
    config: Config,
    api: LifecycleApi,
    consumer: QueueConsumer,
    runner: Runner,
    metrics: Arc<Metrics>,
    region: String,
    keepalive: KeepaliveConfig,
    /// Deadlines and heartbeats are on this clock (a sandbox's virtual clock in tests).
    clock: Arc<dyn Clock>,
}

/// The fleet-mode handler.
pub struct Controller {
    shared: Arc<Shared>,
}

impl Controller {
    pub fn new(
        config: Config,
        clients: &Clients,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Result<Controller, ControllerError> {
        let src = &config.source;
        let queue_url = src.queue_url.clone().ok_or(ControllerError::NoQueue)?;
        let qc = QueueConfig::from_source(queue_url, src);
        let consumer = QueueConsumer::with_clock(clients.sqs().clone(), qc, clock.clone());
        let keepalive = KeepaliveConfig::from(&config.keepalive);
        Ok(Controller {
            shared: Arc::new(Shared {
                api: LifecycleApi::new(clients.autoscaling().clone()),
                consumer,
                runner: crate::steps::runner(clients),
                metrics,
                region: clients.region().to_owned(),
                keepalive,
                clock,
                config,
            }),
        })
    }

    /// Runs until `shutdown` resolves, then drains within `grace`.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> Result<Summary, ControllerError> {
        let sh = self.shared;
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<ActionOutcome> = JoinSet::new();
        let mut summary = Summary::default();
        let mut backoff = Duration::from_millis(500);
        sh.metrics.set_ready(true);
        info!(queue = %sh.consumer.config().queue_url, pipelines = sh.config.pipelines.len(), "controller started");
        tokio::pin!(shutdown);
        // The receive future lives across loop iterations: dropping it while a
        // ReceiveMessage is in flight would strand the messages SQS already handed out
        // until their visibility timeout. It is replaced only once it has finished.
        let consumer = sh.consumer.clone();
        let mut receive = Box::pin(consumer.next_batch());
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => record(&mut summary, done),
                batch = &mut receive => {
                    match batch {
                        Ok(msgs) => {
                            backoff = Duration::from_millis(500);
                            for msg in msgs {
                                tasks.spawn(handle(sh.clone(), msg, cancel.child_token()));
                            }
                        }
                        Err(e) if e.is_retryable() => {
                            warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "receive failed; retrying");
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = &mut shutdown => break,
                            }
                            backoff = (backoff * 2).min(MAX_RECEIVE_BACKOFF);
                        }
                        Err(e) => {
                            cancel.cancel();
                            while let Some(done) = tasks.join_next().await {
                                record(&mut summary, done);
                            }
                            return Err(ControllerError::Receive(e));
                        }
                    }
                    receive = Box::pin(consumer.next_batch());
                }
            }
        }
        drop(receive);
        sh.metrics.set_ready(false);
        info!(
            in_flight = tasks.len(),
            grace_s = grace.as_secs_f64(),
            "stopping: no longer receiving"
        );
        let left = drain(&mut tasks, grace, &cancel, |d| record(&mut summary, d)).await;
        if left > 0 {
            warn!(
                in_flight = left,
                "grace period over: the remaining actions were handed back to the queue"
            );
        }
        info!(outcomes = ?summary.outcomes, "controller stopped");
        Ok(summary)
    }
}

fn record(summary: &mut Summary, done: Result<ActionOutcome, tokio::task::JoinError>) {
    count(&mut summary.outcomes, done, |o| o.label());
}

fn transition_label(t: LifecycleTransition) -> &'static str {
    match t {
        LifecycleTransition::Launching => "launching",
        LifecycleTransition::Terminating => "terminating",
    }
}

async fn handle(sh: Arc<Shared>, msg: InFlight, cancel: CancellationToken) -> ActionOutcome {
    let ev = &msg.event;
    let span = tracing::info_span!(
        "action",
        token = %ev.token,
        instance = %ev.instance_id,
        group = %ev.group,
        hook = %ev.hook,
        transition = %ev.transition,
    );
    let transition = transition_label(ev.transition);
    let started = Instant::now();
    sh.metrics.in_flight.inc();
    let mut steps = Duration::ZERO;
    let outcome = handle_inner(&sh, msg, &cancel, &mut steps)
        .instrument(span.clone())
        .await;
    sh.metrics.in_flight.dec();
    let labels = ActionLabels {
        transition,
        outcome: outcome.label(),
    };
    sh.metrics.actions.get_or_create(&labels).inc();
    sh.metrics
        .action_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    // The one `info` line per action on the happy path (the steps' and the completion's
    // lines are `debug`): at thousands of actions per second, formatting and writing log
    // lines is a large share of the controller's CPU.
    span.in_scope(|| {
        info!(
            outcome = outcome.label(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            steps_ms = steps.as_millis() as u64,
            "action done"
        )
    });
    outcome
}

async fn handle_inner(
    sh: &Shared,
    msg: InFlight,
    cancel: &CancellationToken,
    steps: &mut Duration,
) -> ActionOutcome {
    let ev = msg.event.clone();
    let tags = if sh.config.needs_tags() {
        group_tags(&sh.api, &ev.group).await
    } else {
        BTreeMap::new()
    };
    let Some(pipeline) = sh.config.route(&ev, &tags) else {
        return set_aside(
            sh,
            msg,
            "unrouted",
            "no pipeline of the configuration matches this action",
        )
        .await;
    };
    let hook = match sh.api.hook(&ev.group, &ev.hook).await {
        Ok(h) => h,
        Err(LifecycleError::HookNotFound { .. }) => {
            return set_aside(
                sh,
                msg,
                "stale",
                "the hook no longer exists; the action is gone",
            )
            .await;
        }
        Err(e) if e.is_already_resolved() => {
            return ack(sh, msg, ActionOutcome::AlreadyResolved).await;
        }
        Err(e) => {
            warn!(error = %e, "cannot describe the hook; handing the action back");
            return hand_back(sh, msg).await;
        }
    };
    let now = sh.clock.now();
    let started_at = ActionContext::event_time(&ev).unwrap_or(now);
    let mut actx = ActionContext::new(ev.clone(), hook.heartbeat_timeout, started_at);
    actx.global_deadline = started_at + hook.global_timeout;
    actx.deadline_margin = sh.config.keepalive.deadline_margin;
    actx.clock = sh.clock.clone();
    actx.tags = tags;
    actx.region = Some(sh.region.clone());
    if actx.global_deadline <= now {
        info!("the action's global timeout has passed; it is already resolved");
        return ack(sh, msg, ActionOutcome::AlreadyResolved).await;
    }
    debug!(pipeline = %pipeline.name, receive_count = msg.receive_count, "running pipeline");

    let target = ActionTarget::from_event(&ev);
    let keepalive = Keepalive::start(
        sh.api.clone(),
        target.clone(),
        &hook,
        Some(started_at),
        sh.keepalive,
        sh.clock.clone(),
    );
    let outcome = sh.runner.run(pipeline, &actx, cancel).await;
    let report = keepalive.stop().await;
    *steps = outcome.steps.iter().map(|s| s.duration).sum();
    observe(sh, &outcome, &report);
    if report.end == KeepaliveEnd::AlreadyResolved {
        info!("the action was resolved elsewhere while the pipeline ran");
        return ack(sh, msg, ActionOutcome::AlreadyResolved).await;
    }
    match outcome.decision {
        Decision::Complete(result) => complete(sh, msg, &target, result, pipeline).await,
        Decision::Reboot { .. } => {
            let result = pipeline.policy.on_failure;
            warn!(%result, "a step asked for a reboot, which only the agent can do; applying on_failure");
            complete(sh, msg, &target, result, pipeline).await
        }
        Decision::Hold => hold(sh, msg, target, &hook, started_at, cancel).await,
        Decision::Interrupted { resume_from } => {
            info!(resume_from, "interrupted by shutdown");
            hand_back(sh, msg).await
        }
    }
}

fn observe(sh: &Shared, outcome: &Outcome, report: &KeepaliveReport) {
    sh.metrics.heartbeats.inc_by(u64::from(report.heartbeats));
    sh.metrics
        .heartbeat_failures
        .inc_by(u64::from(report.failures));
    for s in &outcome.steps {
        let status = sh.metrics.observe_step(s);
        if let Some(err) = &s.error {
            info!(step = %s.name, step_type = s.step_type, status, attempts = s.attempts, error = %err, "step report");
        } else {
            debug!(step = %s.name, step_type = s.step_type, status, attempts = s.attempts, duration_ms = s.duration.as_millis() as u64, "step report");
        }
    }
    debug!(decision = %outcome.decision, heartbeats = report.heartbeats, "pipeline finished");
}

async fn complete(
    sh: &Shared,
    msg: InFlight,
    target: &ActionTarget,
    result: LifecycleResult,
    _pipeline: &Pipeline,
) -> ActionOutcome {
    match sh.api.complete(target, result).await {
        Ok(()) => {
            debug!(%result, "lifecycle action completed");
            ack(sh, msg, ActionOutcome::Completed(result)).await
        }
        Err(e) if e.is_already_resolved() => {
            info!("the action was already resolved; nothing to complete");
            ack(sh, msg, ActionOutcome::AlreadyResolved).await
        }
        Err(e @ LifecycleError::Transient { .. }) => {
            warn!(error = %e, "completing failed; handing the action back to retry");
            hand_back(sh, msg).await
        }
        Err(e) => {
            set_aside(
                sh,
                msg,
                "complete-failed",
                &format!("cannot complete the action: {e}"),
            )
            .await
        }
    }
}

/// `on_deadline = "hold"`: keep heartbeating to the last useful moment and let the hook's
/// DefaultResult apply.
async fn hold(
    sh: &Shared,
    msg: InFlight,
    target: ActionTarget,
    hook: &HookInfo,
    started_at: SystemTime,
    cancel: &CancellationToken,
) -> ActionOutcome {
    info!(default_result = %hook.default_result, "holding: the hook's DefaultResult will apply");
    let keepalive = Keepalive::start(
        sh.api.clone(),
        target,
        hook,
        Some(started_at),
        sh.keepalive,
        sh.clock.clone(),
    );
    let until = started_at + hook.global_timeout;
    tokio::select! {
        _ = sh.clock.sleep_until(until) => {}
        _ = cancel.cancelled() => {
            keepalive.stop().await;
            return hand_back(sh, msg).await;
        }
    }
    let report = keepalive.stop().await;
    sh.metrics.heartbeats.inc_by(u64::from(report.heartbeats));
    ack(sh, msg, ActionOutcome::Held).await
}

async fn ack(sh: &Shared, msg: InFlight, outcome: ActionOutcome) -> ActionOutcome {
    if let Err(e) = sh.consumer.ack(msg).await {
        warn!(error = %e, "could not delete the message; it will be delivered again and found resolved");
    }
    outcome
}

async fn hand_back(sh: &Shared, msg: InFlight) -> ActionOutcome {
    if let Err(e) = sh.consumer.hand_back(msg).await {
        warn!(error = %e, "could not hand the message back; it reappears after its visibility timeout");
    }
    ActionOutcome::HandedBack
}

async fn set_aside(sh: &Shared, msg: InFlight, reason: &'static str, why: &str) -> ActionOutcome {
    warn!(reason, why, "setting the message aside");
    sh.metrics
        .set_aside
        .get_or_create(&ReasonLabels { reason })
        .inc();
    if let Err(e) = sh.consumer.set_aside(msg, why).await {
        warn!(error = %e, "could not set the message aside");
    }
    ActionOutcome::SetAside
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
