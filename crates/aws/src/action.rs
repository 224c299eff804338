//! The action engine: one lifecycle action, from its event to its resolution. Every mode
//! that handles actions — the controller (actions from an SQS queue), the Lambda handler
//! (actions from an invocation's event) and the agent (its own instance's actions, with
//! persisted progress) — goes through these four moves, and no other code routes an
//! action, looks up its hook, plans its deadlines or completes it:
//!
//! 1. [`ActionHandler::prepare`]: route the action to a pipeline (on the group's tags when
//!    the configuration looks at them), look up its hook's timeouts, and plan its
//!    deadlines on the handler's clock. An action whose hook is gone or whose global
//!    timeout has passed ends here.
//! 2. [`ActionHandler::run`]: run the pipeline's steps (from a given step, reporting
//!    progress when asked) while the keepalive heartbeats the action.
//! 3. [`ActionHandler::conclude`]: turn the pipeline's decision into a [`Resolution`],
//!    completing the action (`CompleteLifecycleAction`) when the decision is a result.
//! 4. [`ActionHandler::hold`]: `on_deadline = "hold"` — keep the action alive to its global
//!    deadline and let the hook's DefaultResult apply.
//!
//! [`ActionHandler::handle`] chains 1–3 for the controller and the Lambda handler. Neither
//! path's envelope is known here: the caller turns the [`Resolution`] into what its
//! delivery needs (delete, set aside or hand back a message; acknowledge an invocation,
//! report a batch item failure, or fail it for a retry). The agent runs the moves itself,
//! because between them it does what is its own: resume at a persisted step, reboot the
//! instance, skip the hook calls of an instance in no group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lifehook_core::clock::Clock;
use lifehook_core::config::{Config, Pipeline};
use lifehook_core::pipeline::{ActionContext, Decision, Outcome, Progress, Runner};
use lifehook_model::{LifecycleEvent, LifecycleResult};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::Clients;
use crate::keepalive::{Keepalive, KeepaliveConfig, KeepaliveEnd, KeepaliveReport};
use crate::lifecycle::{ActionKey, ActionTarget, HookInfo, LifecycleApi, LifecycleError};
use crate::metrics::Metrics;

/// Without a hook to ask (an agent on an instance in no group), a pipeline's steps are
/// planned against this heartbeat timeout …
const NO_HOOK_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3600);
/// … and the longest life of a lifecycle action (spec §2.4).
const MAX_ACTION_LIFE: Duration = Duration::from_secs(48 * 3600);

/// How one action ended, as far as Auto Scaling is concerned.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// `CompleteLifecycleAction` succeeded with this result.
    Completed(LifecycleResult),
    /// The action was over before we could complete it (completed elsewhere, timed out,
    /// the instance is gone): nothing more to do.
    AlreadyResolved,
    /// `on_deadline = "hold"`: the steps reached the action's work deadline; the caller
    /// keeps the action alive as long as it can ([`ActionHandler::hold`]) and lets the
    /// hook's DefaultResult apply.
    Hold {
        hook: HookInfo,
        started_at: SystemTime,
    },
    /// The steps were cancelled (shutdown, or the Lambda function's own deadline) before
    /// the pipeline decided: the action is still waiting and must be handed back so that
    /// it is run again (from `resume_from` where progress is kept, else from the start:
    /// steps are safe to run twice).
    Interrupted { resume_from: usize },
    /// A transient failure (describing the hook, completing): hand the action back.
    Retry { why: String },
    /// Nothing will ever handle this action here: log it and let it go.
    SetAside { reason: &'static str, why: String },
}

/// How to prepare an action beyond what its event says.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions<'a> {
    /// Run this pipeline (by name) if it is still configured, instead of routing: an
    /// action resumed from persisted progress stays on the pipeline it started.
    pub pipeline: Option<&'a str>,
    /// When the action started, if known better than from its event (persisted).
    pub started_at: Option<SystemTime>,
    /// The instance is in no Auto Scaling group: there is no hook to look up, and no
    /// call about the action is made.
    pub no_group: bool,
    /// The message was delivered before (`ApproximateReceiveCount` > 1): another handler
    /// may have run it, and the action may be over. Checked with a heartbeat first.
    pub redelivered: bool,
}

/// An action ready to run: its pipeline, its hook (none for an instance in no group) and
/// its planned deadlines.
#[derive(Debug)]
pub struct Prepared<'h> {
    pub pipeline: &'h Pipeline,
    pub hook: Option<HookInfo>,
    pub ctx: ActionContext,
    pub target: ActionTarget,
}

impl Prepared<'_> {
    /// When the instance entered its wait state.
    pub fn started_at(&self) -> SystemTime {
        self.ctx.started_at
    }
}

/// The steps have run; the keepalive is still heartbeating (a reboot or a hold keeps it
/// running), until [`Ran::stop_keepalive`] or [`ActionHandler::conclude`].
pub struct Ran {
    pub outcome: Outcome,
    keepalive: Option<Keepalive>,
    report: Option<KeepaliveReport>,
}

impl Ran {
    /// Stops the heartbeats (once) and reports them; counted in the metrics.
    pub async fn stop_keepalive(&mut self, metrics: &Metrics) -> Option<&KeepaliveReport> {
        if let Some(k) = self.keepalive.take() {
            let report = k.stop().await;
            metrics.heartbeats.inc_by(u64::from(report.heartbeats));
            metrics
                .heartbeat_failures
                .inc_by(u64::from(report.failures));
            debug!(heartbeats = report.heartbeats, "keepalive stopped");
            self.report = Some(report);
        }
        self.report.as_ref()
    }

    /// The keepalive, still running (for a hold that goes on heartbeating).
    pub fn into_keepalive(mut self) -> Option<Keepalive> {
        self.keepalive.take()
    }

    /// The time the steps took.
    pub fn steps_duration(&self) -> Duration {
        self.outcome.steps.iter().map(|s| s.duration).sum()
    }
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEnd {
    /// The global deadline came: the hook's DefaultResult applied.
    DefaultResultApplied,
    /// Cancelled first (shutdown): the action is still waiting.
    Cancelled,
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

    /// The pipeline that handles `ev`, routing on the group's tags when the configuration
    /// looks at them. `None`: no pipeline matches.
    pub async fn route(&self, ev: &LifecycleEvent) -> Option<&Pipeline> {
        let tags = self.tags_for(ev).await;
        self.config.route(ev, &tags)
    }

    /// The group's tags when routing or a template needs them, else none.
    async fn tags_for(&self, ev: &LifecycleEvent) -> BTreeMap<String, String> {
        if self.config.needs_tags() && !ev.group.is_empty() {
            group_tags(&self.api, &ev.group).await
        } else {
            BTreeMap::new()
        }
    }

    /// Step 1: routes `ev`, looks up its hook and plans its deadlines. An `Err` is the
    /// action's resolution without running anything (unrouted, hook gone, already over,
    /// or a transient failure to retry).
    pub async fn prepare(
        &self,
        ev: &LifecycleEvent,
        opts: PrepareOptions<'_>,
    ) -> Result<Prepared<'_>, Resolution> {
        let tags = self.tags_for(ev).await;
        let pipeline = opts
            .pipeline
            .and_then(|name| self.config.pipelines.iter().find(|p| p.name == name))
            .or_else(|| self.config.route(ev, &tags));
        let Some(pipeline) = pipeline else {
            return Err(Resolution::SetAside {
                reason: "unrouted",
                why: "no pipeline of the configuration matches this action".into(),
            });
        };
        tracing::Span::current().record("pipeline", pipeline.name.as_str());
        let hook = if opts.no_group {
            None
        } else {
            match self.api.hook(&ev.group, &ev.hook).await {
                Ok(h) => Some(h),
                Err(LifecycleError::HookNotFound { .. }) => {
                    return Err(Resolution::SetAside {
                        reason: "stale",
                        why: "the hook no longer exists; the action is gone".into(),
                    });
                }
                Err(LifecycleError::GroupNotFound { group }) => {
                    return Err(Resolution::SetAside {
                        reason: "stale",
                        why: format!(
                            "Auto Scaling group {group} no longer exists; the action is gone"
                        ),
                    });
                }
                Err(e) if e.is_already_resolved() => return Err(Resolution::AlreadyResolved),
                Err(e) => {
                    return Err(Resolution::Retry {
                        why: format!("cannot describe the hook: {e}"),
                    });
                }
            }
        };
        let now = self.clock.now();
        let started_at = opts
            .started_at
            .or_else(|| ActionContext::event_time(ev))
            .unwrap_or(now);
        let (heartbeat_timeout, global_timeout) = match &hook {
            Some(h) => (h.heartbeat_timeout, h.global_timeout),
            None => (NO_HOOK_HEARTBEAT_TIMEOUT, MAX_ACTION_LIFE),
        };
        let mut ctx = ActionContext::new(ev.clone(), heartbeat_timeout, started_at);
        ctx.global_deadline = started_at + global_timeout;
        ctx.deadline_margin = self.config.keepalive.deadline_margin;
        ctx.clock = self.clock.clone();
        ctx.tags = tags;
        ctx.region = Some(self.region.clone());
        if hook.is_some() && ctx.global_deadline <= now {
            info!("the action's global timeout has passed; it is already resolved");
            return Err(Resolution::AlreadyResolved);
        }
        let target = target_of(ev);
        // An action that may be over already — redelivered after a crash, or older than
        // its heartbeat timeout (it lives on only if someone heartbeated it) — is checked
        // before any step runs: steps must not deregister or drain an instance whose
        // action has ended. A heartbeat is the cheap check, and proves it alive too.
        let stale = now
            .duration_since(started_at)
            .is_ok_and(|age| age >= heartbeat_timeout);
        if hook.is_some() && (opts.redelivered || stale) {
            match self.api.heartbeat(&target).await {
                Ok(()) => debug!(
                    redelivered = opts.redelivered,
                    "the action is alive (a heartbeat before the first step)"
                ),
                Err(e) if e.is_already_resolved() => {
                    info!(
                        redelivered = opts.redelivered,
                        "the action is already over; its pipeline is not run"
                    );
                    return Err(Resolution::AlreadyResolved);
                }
                // Cannot tell (throttled, unreachable): run, as without the check.
                Err(e) => debug!(error = %e, "the heartbeat before the first step failed"),
            }
        }
        Ok(Prepared {
            pipeline,
            hook,
            ctx,
            target,
        })
    }

    /// Step 2: runs the pipeline's steps from step `from` (0: the first) while the
    /// keepalive heartbeats the action. `progress` receives each step's report as it
    /// finishes. Cancelling `cancel` interrupts the steps ([`Decision::Interrupted`]).
    pub async fn run(
        &self,
        action: &Prepared<'_>,
        from: usize,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        cancel: &CancellationToken,
    ) -> Ran {
        let keepalive = action.hook.as_ref().map(|h| {
            Keepalive::start(
                self.api.clone(),
                action.target.clone(),
                h,
                Some(action.started_at()),
                self.keepalive,
                self.clock.clone(),
            )
        });
        debug!(pipeline = %action.pipeline.name, from_step = from, "running pipeline");
        // When the keepalive learns that the action is over ("No active Lifecycle Action"),
        // the running steps are cancelled: their work is moot.
        let steps_cancel = cancel.child_token();
        let _stop_watching = steps_cancel.clone().drop_guard();
        if let Some(resolved) = keepalive.as_ref().map(Keepalive::resolved) {
            let steps_cancel = steps_cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = resolved.cancelled() => {
                        info!("the action is over (resolved elsewhere or timed out); cancelling its steps");
                        steps_cancel.cancel();
                    }
                    () = steps_cancel.cancelled() => {}
                }
            });
        }
        let outcome = match progress {
            Some(tx) => {
                let runner = self.runner.clone().with_progress(tx);
                runner
                    .run_from(action.pipeline, &action.ctx, from, &steps_cancel)
                    .await
            }
            None => {
                self.runner
                    .run_from(action.pipeline, &action.ctx, from, &steps_cancel)
                    .await
            }
        };
        self.observe(&outcome);
        Ran {
            outcome,
            keepalive,
            report: None,
        }
    }

    /// Step 3: stops the keepalive and turns the pipeline's decision into a resolution,
    /// completing the action when the decision is a result. A reboot, which only the
    /// agent can do, applies `on_failure` here.
    pub async fn conclude(&self, action: &Prepared<'_>, mut ran: Ran) -> Resolution {
        let resolved_elsewhere = ran
            .stop_keepalive(&self.metrics)
            .await
            .is_some_and(|r| r.end == KeepaliveEnd::AlreadyResolved);
        debug!(decision = %ran.outcome.decision, "pipeline finished");
        if resolved_elsewhere {
            info!("the action was resolved elsewhere while the pipeline ran");
            return Resolution::AlreadyResolved;
        }
        match ran.outcome.decision {
            Decision::Complete(result) => self.complete(&action.target, result).await,
            Decision::Reboot { .. } => {
                let result = action.pipeline.policy.on_failure;
                warn!(%result, "a step asked for a reboot, which only the agent can do; applying on_failure");
                self.complete(&action.target, result).await
            }
            Decision::Hold => match &action.hook {
                Some(hook) => Resolution::Hold {
                    hook: hook.clone(),
                    started_at: action.started_at(),
                },
                None => Resolution::AlreadyResolved,
            },
            Decision::Interrupted { resume_from } => {
                info!(resume_from, "interrupted before the pipeline finished");
                Resolution::Interrupted { resume_from }
            }
        }
    }

    /// Steps 1–3 for one action: prepare, run from the first step, conclude. `steps`
    /// receives the time the steps took.
    pub async fn handle(
        &self,
        ev: &LifecycleEvent,
        cancel: &CancellationToken,
        steps: &mut Duration,
    ) -> Resolution {
        self.handle_with(ev, PrepareOptions::default(), cancel, steps)
            .await
    }

    /// [`Self::handle`] with options (the controller says whether a message is a
    /// redelivery).
    pub async fn handle_with(
        &self,
        ev: &LifecycleEvent,
        opts: PrepareOptions<'_>,
        cancel: &CancellationToken,
        steps: &mut Duration,
    ) -> Resolution {
        let action = match self.prepare(ev, opts).await {
            Ok(a) => a,
            Err(resolution) => return resolution,
        };
        let ran = self.run(&action, 0, None, cancel).await;
        *steps = ran.steps_duration();
        self.conclude(&action, ran).await
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

    /// Step 4, `on_deadline = "hold"`: heartbeats `target` to its global deadline
    /// (`started_at` + the hook's global timeout) and lets the hook's DefaultResult apply.
    /// `keepalive` continues the keepalive of a run ([`Ran::into_keepalive`]); without
    /// one, a new one starts.
    pub async fn hold(
        &self,
        target: &ActionTarget,
        hook: &HookInfo,
        started_at: SystemTime,
        keepalive: Option<Keepalive>,
        cancel: &CancellationToken,
    ) -> HoldEnd {
        info!(default_result = %hook.default_result, "holding: the hook's DefaultResult will apply");
        let keepalive = keepalive.unwrap_or_else(|| {
            Keepalive::start(
                self.api.clone(),
                target.clone(),
                hook,
                Some(started_at),
                self.keepalive,
                self.clock.clone(),
            )
        });
        let until = started_at + hook.global_timeout;
        let end = tokio::select! {
            _ = self.clock.sleep_until(until) => HoldEnd::DefaultResultApplied,
            _ = cancel.cancelled() => HoldEnd::Cancelled,
        };
        let report = keepalive.stop().await;
        self.metrics.heartbeats.inc_by(u64::from(report.heartbeats));
        self.metrics
            .heartbeat_failures
            .inc_by(u64::from(report.failures));
        end
    }

    /// Counts the steps' reports in the metrics. (Each step's log line is the runner's,
    /// when the step ends: `lifehook_core::pipeline`, "step finished".)
    fn observe(&self, outcome: &Outcome) {
        for s in &outcome.steps {
            self.metrics.observe_step(s);
        }
    }
}

/// The span of one action, carrying what identifies it in every log line of its handling;
/// `pipeline` is filled in once the action is routed.
pub fn span(ev: &LifecycleEvent) -> tracing::Span {
    tracing::info_span!(
        "action",
        token = %ev.token,
        instance = %ev.instance_id,
        group = %ev.group,
        hook = %ev.hook,
        transition = %ev.transition,
        pipeline = tracing::field::Empty,
    )
}

/// The one line that ends an action, in its span: `action done` with the outcome, the
/// result sent and who gave it, the time it took (and its steps'); a warning when the
/// handler ABANDONed it (a failed launch or an early end), else `info`.
pub fn log_done(outcome: &str, elapsed: std::time::Duration, steps: Option<std::time::Duration>) {
    let (result, by) = result_and_by(outcome);
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let elapsed_ms = ms(elapsed);
    let steps_ms = steps.map(ms);
    macro_rules! done {
        ($level:expr) => {
            tracing::event!(
                $level,
                outcome,
                result,
                by,
                elapsed_ms,
                steps_ms,
                "action done"
            )
        };
    }
    if outcome == "abandon" {
        done!(tracing::Level::WARN);
    } else {
        done!(tracing::Level::INFO);
    }
}

/// For the one line that ends an action: the result sent to Auto Scaling and who gave it,
/// from the outcome's label (the handler's `CONTINUE`/`ABANDON`, or the hook's
/// DefaultResult after a hold), `none` when neither.
pub fn result_and_by(outcome: &str) -> (&'static str, &'static str) {
    match outcome {
        "continue" => ("CONTINUE", "handler"),
        "abandon" => ("ABANDON", "handler"),
        "held" => ("none", "default-result"),
        _ => ("none", "none"),
    }
}

/// The action's address for Auto Scaling: its token, or — for an action found without a
/// message (the agent at start, or from IMDS) — the instance id.
fn target_of(ev: &LifecycleEvent) -> ActionTarget {
    if ev.token.is_empty() {
        ActionTarget::new(
            ev.group.clone(),
            ev.hook.clone(),
            ActionKey::InstanceId(ev.instance_id.clone()),
        )
    } else {
        ActionTarget::from_event(ev)
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
