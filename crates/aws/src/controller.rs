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
use lifehook_core::config::Config;
use lifehook_model::{LifecycleResult, LifecycleTransition};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use crate::Clients;
use crate::action::{ActionHandler, HoldEnd, Resolution};
use crate::drain::{count, drain};
use crate::lifecycle::{ActionTarget, HookInfo};
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
    actions: ActionHandler,
    consumer: QueueConsumer,
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
        Ok(Controller {
            shared: Arc::new(Shared {
                actions: ActionHandler::new(config, clients, metrics, clock),
                consumer,
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
        sh.actions.metrics.set_ready(true);
        let queue = &sh.consumer.config().queue_url;
        match sh.consumer.check().await {
            Ok(dlq) => {
                info!(queue = %queue, dead_letter_queue = dlq.as_deref().unwrap_or("(none: unhandleable messages are deleted with a log line)"), pipelines = sh.actions.config.pipelines.len(), "controller started");
            }
            Err(e) if e.is_retryable() => {
                warn!(queue = %queue, error = %e, "cannot read the queue yet; starting, and retrying as it receives");
            }
            Err(e) => {
                sh.actions.metrics.set_ready(false);
                return Err(ControllerError::Receive(e));
            }
        }
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
        sh.actions.metrics.set_ready(false);
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

pub(crate) fn transition_label(t: LifecycleTransition) -> &'static str {
    match t {
        LifecycleTransition::Launching => "launching",
        LifecycleTransition::Terminating => "terminating",
    }
}

async fn handle(sh: Arc<Shared>, msg: InFlight, cancel: CancellationToken) -> ActionOutcome {
    let ev = &msg.event;
    let span = crate::action::span(ev);
    let transition = transition_label(ev.transition);
    let started = Instant::now();
    sh.actions.metrics.in_flight.inc();
    let mut steps = Duration::ZERO;
    let outcome = handle_inner(&sh, msg, &cancel, &mut steps)
        .instrument(span.clone())
        .await;
    sh.actions.metrics.in_flight.dec();
    let labels = ActionLabels {
        transition,
        outcome: outcome.label(),
    };
    sh.actions.metrics.actions.get_or_create(&labels).inc();
    sh.actions
        .metrics
        .action_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    // The one `info` line per action on the happy path (the steps' and the completion's
    // lines are `debug`): at thousands of actions per second, formatting and writing log
    // lines is a large share of the controller's CPU.
    span.in_scope(|| crate::action::log_done(outcome.label(), started.elapsed(), Some(steps)));
    outcome
}

async fn handle_inner(
    sh: &Shared,
    msg: InFlight,
    cancel: &CancellationToken,
    steps: &mut Duration,
) -> ActionOutcome {
    let ev = msg.event.clone();
    debug!(receive_count = msg.receive_count, "handling the action");
    let opts = crate::action::PrepareOptions {
        redelivered: msg.receive_count > 1,
        ..Default::default()
    };
    match sh.actions.handle_with(&ev, opts, cancel, steps).await {
        Resolution::Completed(result) => ack(sh, msg, ActionOutcome::Completed(result)).await,
        Resolution::AlreadyResolved => ack(sh, msg, ActionOutcome::AlreadyResolved).await,
        Resolution::Hold { hook, started_at } => hold(sh, msg, &hook, started_at, cancel).await,
        Resolution::Interrupted { .. } => hand_back(sh, msg).await,
        Resolution::Retry { why } => {
            warn!(why, "handing the action back to retry");
            hand_back(sh, msg).await
        }
        Resolution::SetAside { reason, why } => set_aside(sh, msg, reason, &why).await,
    }
}

/// `on_deadline = "hold"`: keep heartbeating to the last useful moment and let the hook's
/// DefaultResult apply; a shutdown hands the message back.
async fn hold(
    sh: &Shared,
    msg: InFlight,
    hook: &HookInfo,
    started_at: SystemTime,
    cancel: &CancellationToken,
) -> ActionOutcome {
    let target = ActionTarget::from_event(&msg.event);
    match sh
        .actions
        .hold(&target, hook, started_at, None, cancel)
        .await
    {
        HoldEnd::DefaultResultApplied => ack(sh, msg, ActionOutcome::Held).await,
        HoldEnd::Cancelled => hand_back(sh, msg).await,
    }
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
    sh.actions
        .metrics
        .set_aside
        .get_or_create(&ReasonLabels { reason })
        .inc();
    if let Err(e) = sh.consumer.set_aside(msg, why).await {
        warn!(error = %e, "could not set the message aside");
    }
    ActionOutcome::SetAside
}
