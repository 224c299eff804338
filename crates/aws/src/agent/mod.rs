//! `lifehook agent`: the on-instance mode. It handles the lifecycle actions of the
//! instance it runs on, and only those.
//!
//! Where actions come from (`[source]`):
//! - `topic_arn`: the hooks notify an SNS topic; the agent subscribes an inbox queue of its
//!   own with a filter on its instance id ([`inbox`]), so it never sees — and never
//!   bounces — another instance's message. It removes the inbox when it stops with nothing
//!   in progress.
//! - `queue_url`: a queue that only this instance's actions reach (messages for other
//!   instances are handed straight back, with a warning: use `topic_arn` for shared
//!   topics).
//! - `imds = true`: no queue at all. The agent reads IMDS
//!   `autoscaling/target-lifecycle-state` (spec §6.2) every `imds_poll_interval`; when it
//!   turns `InService` or `Terminated` and Auto Scaling confirms a `Pending:Wait` or
//!   `Terminating:Wait`, it runs the pipelines of that transition and completes by
//!   instance id (spec §6.3).
//!
//! In every mode, a launch action is also found at start: when Auto Scaling reports this
//! instance in `Pending:Wait`, the launch pipelines run (the launch notification went out
//! before the agent booted, so no queue of its own can have it).
//!
//! Crash and reboot safety: each action's progress is persisted in the state directory
//! after every step ([`state`]). A step that asks for a reboot (an `exec` step exiting
//! with its `reboot_exit_code`) records the next step, runs
//! `[agent] reboot_command`, and keeps heartbeating until the machine goes down; after
//! boot the agent sends a heartbeat first, then resumes at the next step (spec §2.4: a
//! heartbeat restarts the heartbeat timeout, not the global one). A step killed midway
//! runs again: steps are idempotent.
//!
//! Without a group (no `aws:autoscaling:groupName` tag, unknown to Auto Scaling), launch
//! pipelines still run and every hook call is skipped, with one log line saying so.

pub mod inbox;
mod memory;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lifehook_core::clock::Clock;
use lifehook_core::config::{Config, HookSpec, Pipeline};
use lifehook_core::pipeline::{ActionContext, Decision, Progress, StepStatus};
use lifehook_model::delivery::DeliveryPath;
use lifehook_model::{LifecycleEvent, LifecycleResult, LifecycleState, LifecycleTransition};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use crate::Clients;
use crate::action::{ActionHandler, HoldEnd, PrepareOptions, Prepared, Ran, Resolution};
use crate::drain::{count, drain};
use crate::identity::Imds;
use crate::lifecycle::LifecycleApi;
use crate::metrics::{ActionLabels, Metrics};
use crate::queue::{InFlight, QueueConfig, QueueConsumer};
use inbox::Inbox;
use state::{Record, StateDir, action_key};

/// How long in-flight actions may run on after SIGTERM.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// An action that asks for more reboots than this fails (a step that always says "reboot
/// required" must not reboot the instance forever).
pub const MAX_REBOOTS: u32 = 5;

/// Who the agent runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whoami {
    pub instance_id: String,
    /// `None`: the instance is in no Auto Scaling group.
    pub group: Option<String>,
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("cannot set up the agent's inbox: {0}")]
    Inbox(#[from] inbox::InboxError),
    #[error("cannot receive lifecycle actions: {0}")]
    Receive(#[from] crate::queue::QueueError),
    #[error("cannot make sure hook {hook} exists on group {group}: {detail}")]
    EnsureHook {
        group: String,
        hook: String,
        detail: String,
    },
}

/// What the agent did, when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Whether the inbox (queue and subscription) was removed.
    pub inbox_removed: bool,
}

/// How an action ended, for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Completed(LifecycleResult),
    /// No group: the steps ran, the hook call was skipped.
    RanWithoutGroup,
    AlreadyResolved,
    Held,
    /// A reboot was requested and the reboot command ran; the action resumes after boot.
    Rebooting,
    /// Stopped (SIGTERM) or could not finish now; resumes at the next start.
    Suspended,
    Dropped,
}

impl End {
    fn label(self) -> &'static str {
        match self {
            End::Completed(LifecycleResult::Continue) => "continue",
            End::Completed(LifecycleResult::Abandon) => "abandon",
            End::RanWithoutGroup => "no-group",
            End::AlreadyResolved => "already-resolved",
            End::Held => "held",
            End::Rebooting => "rebooting",
            End::Suspended => "suspended",
            End::Dropped => "dropped",
        }
    }
}

struct Shared {
    /// The action engine: routing, hooks, deadlines, steps with keepalive, completion.
    actions: ActionHandler,
    clients: Clients,
    me: Whoami,
    state: StateDir,
    /// Actions running in this process, with the queue messages that announced them
    /// (deleted once the action is finished).
    active: Mutex<HashMap<String, Vec<InFlight>>>,
    /// A reboot command ran: keep the inbox, the machine is going down.
    rebooting: AtomicBool,
    /// The queue being read, once there is one.
    consumer: std::sync::OnceLock<QueueConsumer>,
}

/// The on-instance handler.
pub struct Agent {
    sh: Arc<Shared>,
    imds: Imds,
}

impl Agent {
    /// Steps run with every step type, the AWS ones included. The state directory is
    /// `[agent] state_dir`, created if needed.
    pub fn new(
        config: Config,
        clients: Clients,
        me: Whoami,
        imds: Imds,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Result<Agent, AgentError> {
        let state = StateDir::open(&config.agent.state_dir)?;
        Ok(Agent {
            sh: Arc::new(Shared {
                actions: ActionHandler::new(config, &clients, metrics, clock),
                clients,
                me,
                state,
                active: Mutex::new(HashMap::new()),
                rebooting: AtomicBool::new(false),
                consumer: std::sync::OnceLock::new(),
            }),
            imds,
        })
    }

    /// Runs until `shutdown` resolves, then lets in-flight actions finish within `grace`.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> Result<Summary, AgentError> {
        let sh = self.sh;
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<End> = JoinSet::new();
        let mut summary = Summary::default();
        tokio::pin!(shutdown);
        info!(
            instance = %sh.me.instance_id,
            group = sh.me.group.as_deref().unwrap_or("(none)"),
            state_dir = %sh.state.root().display(),
            "agent started"
        );
        if sh.me.group.is_none() {
            info!(
                "this instance is in no Auto Scaling group: launch pipelines run, every lifecycle hook call is skipped"
            );
        }

        // 1. The hooks this agent serves exist (spec §2.1).
        if let Some(group) = &sh.me.group {
            ensure_hooks(&sh.actions.api, group, &sh.actions.config.agent.hooks).await?;
        }

        // 2. Actions in progress before a reboot or a crash resume first.
        for rec in sh.state.load_all() {
            if claim(&sh, &rec.key) {
                info!(key = %rec.key, next_step = rec.next_step, reboots = rec.reboots, "resuming an action in progress");
                tasks.spawn(job(sh.clone(), rec, true, cancel.child_token()));
            }
        }

        // 3. A launch action waiting for this instance.
        for rec in launch_actions(&sh).await {
            if claim(&sh, &rec.key) {
                if let Err(e) = sh.state.save(&rec) {
                    warn!(error = %e, "cannot persist the action; running it anyway");
                }
                tasks.spawn(job(sh.clone(), rec, false, cancel.child_token()));
            }
        }

        // 4. The source.
        let src = &sh.actions.config.source;
        let mut inbox = None;
        let consumer = if let Some(topic) = &src.topic_arn {
            let ib = Inbox::ensure(
                sh.clients.sqs(),
                sh.clients.sns(),
                topic,
                &sh.me.instance_id,
            )
            .await?;
            info!(queue = %ib.queue_url, topic = %topic, "inbox subscribed to the topic, filtered on this instance");
            let c = consumer(&sh, ib.queue_url.clone());
            inbox = Some(ib);
            Some(c)
        } else {
            src.queue_url.as_ref().map(|q| consumer(&sh, q.clone()))
        };
        let imds_mode = src.imds;
        if consumer.is_none() && !imds_mode {
            info!("no queue, topic or IMDS source configured: only the launch action is handled");
        }

        let mut poll = tokio::time::interval(sh.actions.config.agent.imds_poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_target: Option<String> = None;
        if let Some(c) = &consumer {
            let _ = sh.consumer.set(c.clone());
        }
        // As in the controller, the receive future lives across iterations (dropping it
        // mid-receive would strand the messages SQS already handed out).
        let mut receive = consumer.as_ref().map(|c| Box::pin(c.next_batch()));
        let mut backoff = Duration::from_millis(500);
        sh.actions.metrics.set_ready(true);
        // Whenever the agent goes idle (start-up over, the last action finished), it gives
        // back the mappings of code it will not run again soon (`memory`).
        let mut release_due = true;
        loop {
            if release_due && tasks.is_empty() {
                release_due = false;
                release_code_pages();
            }
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    record(&mut summary, done);
                    release_due = true;
                }
                batch = async {
                    match receive.as_mut() {
                        Some(r) => r.await,
                        None => std::future::pending().await,
                    }
                }, if receive.is_some() => {
                    match batch {
                        Ok(msgs) => {
                            backoff = Duration::from_millis(500);
                            for msg in msgs {
                                if let Some(rec) = accept(&sh, msg).await {
                                    tasks.spawn(job(sh.clone(), rec, false, cancel.child_token()));
                                }
                            }
                        }
                        Err(e) if e.is_retryable() => {
                            warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "receive failed; retrying");
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = &mut shutdown => break,
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(20));
                        }
                        Err(e) => {
                            cancel.cancel();
                            while let Some(done) = tasks.join_next().await {
                                record(&mut summary, done);
                            }
                            return Err(AgentError::Receive(e));
                        }
                    }
                    if let Some(c) = &consumer {
                        receive = Some(Box::pin(c.next_batch()));
                    }
                }
                _ = poll.tick(), if imds_mode => {
                    for rec in imds_actions(&sh, &self.imds, &mut last_target).await {
                        if claim(&sh, &rec.key) {
                            if let Err(e) = sh.state.save(&rec) {
                                warn!(error = %e, "cannot persist the action; running it anyway");
                            }
                            tasks.spawn(job(sh.clone(), rec, false, cancel.child_token()));
                        }
                    }
                }
            }
        }
        drop(receive);
        sh.actions.metrics.set_ready(false);
        info!(in_flight = tasks.len(), "stopping: no longer receiving");
        if sh.rebooting.load(Ordering::SeqCst) {
            // The machine is going down for a reboot a step asked for: nothing is gained by
            // holding it up; every action resumes from its record after boot.
            cancel.cancel();
        }
        let left = drain(&mut tasks, grace, &cancel, |d| record(&mut summary, d)).await;
        if left > 0 && !sh.rebooting.load(Ordering::SeqCst) {
            warn!(
                in_flight = left,
                "grace period over: the remaining actions were suspended (they resume at the next start)"
            );
        }
        if let Some(ib) = inbox {
            let pending = sh.state.load_all().len();
            if sh.rebooting.load(Ordering::SeqCst) || pending > 0 {
                info!(pending, queue = %ib.queue_url, "keeping the inbox: actions resume after the restart");
            } else {
                match ib.remove(sh.clients.sqs(), sh.clients.sns()).await {
                    Ok(()) => {
                        info!(queue = %ib.queue_url, "inbox removed (subscription and queue)");
                        summary.inbox_removed = true;
                    }
                    Err(e) => warn!(error = %e, "cannot remove the inbox"),
                }
            }
        }
        info!(outcomes = ?summary.outcomes, "agent stopped");
        Ok(summary)
    }
}

fn release_code_pages() {
    match memory::release_code_pages() {
        Ok(r) => debug!(
            mappings = r.mappings,
            resident_kib = r.kib,
            "idle: released the page mappings of code start-up and finished actions ran"
        ),
        Err(e) => debug!(error = %e, "cannot release the page mappings of finished code"),
    }
}

fn record(summary: &mut Summary, done: Result<End, tokio::task::JoinError>) {
    count(&mut summary.outcomes, done, |e| e.label());
}

fn consumer(sh: &Shared, url: String) -> QueueConsumer {
    let qc = QueueConfig::from_source(url, &sh.actions.config.source);
    QueueConsumer::with_clock(sh.clients.sqs().clone(), qc, sh.actions.clock.clone())
}

/// Marks `key` as running in this process; false if it already is.
fn claim(sh: &Shared, key: &str) -> bool {
    let mut active = sh.active.lock().unwrap_or_else(|p| p.into_inner());
    if active.contains_key(key) {
        return false;
    }
    active.insert(key.to_owned(), Vec::new());
    true
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn new_record(sh: &Shared, event: LifecycleEvent, pipeline: &Pipeline) -> Record {
    let started = ActionContext::event_time(&event).unwrap_or_else(|| sh.actions.clock.now());
    Record {
        key: action_key(&event),
        pipeline: pipeline.name.clone(),
        next_step: 0,
        started_at_ms: millis(started),
        reboots: 0,
        no_group: sh.me.group.is_none(),
        event,
    }
}

/// A received message: attach it to a running action, delete it if the action is
/// finished, or start the action.
async fn accept(sh: &Arc<Shared>, msg: InFlight) -> Option<Record> {
    let ev = msg.event.clone();
    if ev.instance_id != sh.me.instance_id {
        warn!(instance = %ev.instance_id, "a message for another instance on this agent's queue: handing it back (give each agent its own queue, or use `topic_arn`)");
        hand_back(sh, msg).await;
        return None;
    }
    let key = action_key(&ev);
    if sh.state.is_done(&key) {
        info!(key = %key, "a redelivered message for a finished action: deleting it");
        ack(sh, msg).await;
        return None;
    }
    {
        let mut active = sh.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = active.get_mut(&key) {
            held.push(msg);
            return None;
        }
    }
    let Some(pipeline) = sh.actions.route(&ev).await else {
        warn!(group = %ev.group, hook = %ev.hook, "no pipeline matches this action: leaving it to the hook's timeout");
        set_aside(
            sh,
            msg,
            "no pipeline of the configuration matches this action",
        )
        .await;
        return None;
    };
    let rec = new_record(sh, ev, pipeline);
    if !claim(sh, &rec.key) {
        return None;
    }
    sh.active
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(rec.key.clone())
        .or_default()
        .push(msg);
    if let Err(e) = sh.state.save(&rec) {
        warn!(error = %e, "cannot persist the action; running it anyway");
    }
    Some(rec)
}

async fn ack(sh: &Shared, msg: InFlight) {
    let Some(c) = sh.consumer.get() else { return };
    if let Err(e) = c.ack(msg).await {
        warn!(error = %e, "could not delete the message; it will be recognised when it comes back");
    }
}

async fn hand_back(sh: &Shared, msg: InFlight) {
    let Some(c) = sh.consumer.get() else { return };
    if let Err(e) = c.hand_back(msg).await {
        warn!(error = %e, "could not hand the message back");
    }
}

async fn set_aside(sh: &Shared, msg: InFlight, why: &str) {
    let Some(c) = sh.consumer.get() else { return };
    if let Err(e) = c.set_aside(msg, why).await {
        warn!(error = %e, "could not set the message aside");
    }
}

/// The lifecycle state Auto Scaling reports for this instance.
async fn asg_state(sh: &Shared) -> Option<LifecycleState> {
    let out = sh
        .clients
        .autoscaling()
        .describe_auto_scaling_instances()
        .instance_ids(&sh.me.instance_id)
        .send()
        .await;
    match out {
        Ok(o) => o
            .auto_scaling_instances()
            .iter()
            .find(|i| i.instance_id() == Some(sh.me.instance_id.as_str()))
            .and_then(|i| i.lifecycle_state())
            .and_then(|s| s.parse().ok()),
        Err(e) => {
            warn!(error = %crate::lifecycle::describe_sdk(&e), "DescribeAutoScalingInstances failed");
            None
        }
    }
}

/// The actions of `transition` waiting for this instance: one per hook of the group with
/// that transition that a pipeline matches. No token: they complete by instance id.
async fn waiting_actions(sh: &Shared, group: &str, transition: LifecycleTransition) -> Vec<Record> {
    let hooks = match sh.actions.api.hooks(group).await {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "cannot list the group's hooks");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for h in hooks.iter().filter(|h| h.transition == Some(transition)) {
        let ev = synthetic_event(&sh.me.instance_id, group, &h.name, transition);
        let key = action_key(&ev);
        if sh.state.is_done(&key) || sh.state.in_progress(&key) {
            continue;
        }
        if let Some(p) = sh.actions.route(&ev).await {
            out.push(new_record(sh, ev, p));
        }
    }
    out
}

fn synthetic_event(
    instance: &str,
    group: &str,
    hook: &str,
    t: LifecycleTransition,
) -> LifecycleEvent {
    LifecycleEvent {
        group: group.to_owned(),
        hook: hook.to_owned(),
        instance_id: instance.to_owned(),
        transition: t,
        token: String::new(),
        origin: None,
        destination: None,
        metadata: None,
        time: None,
        account: None,
        request_id: None,
        path: DeliveryPath::Direct,
    }
}

/// At start: the launch action(s) waiting for this instance, or — with no group — the
/// launch pipelines to run once.
async fn launch_actions(sh: &Shared) -> Vec<Record> {
    match &sh.me.group {
        Some(group) => {
            if asg_state(sh).await == Some(LifecycleState::PendingWait) {
                waiting_actions(sh, group, LifecycleTransition::Launching).await
            } else {
                Vec::new()
            }
        }
        None => {
            let ev = synthetic_event(&sh.me.instance_id, "", "", LifecycleTransition::Launching);
            let key = action_key(&ev);
            if sh.state.is_done(&key) || sh.state.in_progress(&key) {
                return Vec::new();
            }
            match sh.actions.route(&ev).await {
                Some(p) => vec![new_record(sh, ev, p)],
                None => {
                    info!(
                        "no launch pipeline applies without a group (pipelines that name groups do not match)"
                    );
                    Vec::new()
                }
            }
        }
    }
}

/// Queue-less mode: one read of `target-lifecycle-state`; on a change, the actions to run.
async fn imds_actions(sh: &Shared, imds: &Imds, last: &mut Option<String>) -> Vec<Record> {
    let target = match imds.target_lifecycle_state().await {
        Ok(t) => t,
        Err(e) => {
            warn!(error = %e, "cannot read autoscaling/target-lifecycle-state");
            return Vec::new();
        }
    };
    if target == *last {
        return Vec::new();
    }
    info!(
        from = last.as_deref().unwrap_or("(none)"),
        to = target.as_deref().unwrap_or("(none)"),
        "target lifecycle state changed"
    );
    *last = target.clone();
    let Some(group) = sh.me.group.clone() else {
        return Vec::new();
    };
    let (want, transition) = match target.as_deref() {
        Some("InService") => (LifecycleState::PendingWait, LifecycleTransition::Launching),
        Some("Terminated") => (
            LifecycleState::TerminatingWait,
            LifecycleTransition::Terminating,
        ),
        _ => return Vec::new(),
    };
    // The target state says where the instance is heading, not that a hook holds it:
    // Auto Scaling confirms before any step runs.
    if asg_state(sh).await != Some(want) {
        return Vec::new();
    }
    waiting_actions(sh, &group, transition).await
}

/// Makes sure each configured hook exists on `group`, creating the missing ones; an
/// existing hook is left as it is (spec §2.1: PutLifecycleHook would overwrite it).
async fn ensure_hooks(
    api: &LifecycleApi,
    group: &str,
    specs: &[HookSpec],
) -> Result<(), AgentError> {
    if specs.is_empty() {
        return Ok(());
    }
    let fail = |hook: &str, detail: String| AgentError::EnsureHook {
        group: group.to_owned(),
        hook: hook.to_owned(),
        detail,
    };
    let existing = api
        .hooks(group)
        .await
        .map_err(|e| fail("(all)", e.to_string()))?;
    for spec in specs {
        if existing.iter().any(|h| h.name == spec.name) {
            info!(hook = %spec.name, "hook exists");
            continue;
        }
        crate::lifecycle::put_hook(api.client(), group, spec)
            .send()
            .await
            .map_err(|e| fail(&spec.name, crate::lifecycle::describe_sdk(&e)))?;
        info!(hook = %spec.name, transition = %spec.transition, "hook created");
    }
    Ok(())
}

/// Runs one action to its end (for this process) and settles its messages.
async fn job(sh: Arc<Shared>, rec: Record, resumed: bool, cancel: CancellationToken) -> End {
    let ev = rec.event.clone();
    let span = crate::action::span(&ev);
    let started = std::time::Instant::now();
    let metrics = &sh.actions.metrics;
    metrics.in_flight.inc();
    let key = rec.key.clone();
    let end = run_action(&sh, rec, resumed, &cancel)
        .instrument(span.clone())
        .await;
    metrics.in_flight.dec();
    let labels = ActionLabels {
        transition: match ev.transition {
            LifecycleTransition::Launching => "launching",
            LifecycleTransition::Terminating => "terminating",
        },
        outcome: end.label(),
    };
    metrics.actions.get_or_create(&labels).inc();
    metrics
        .action_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let held = sh
        .active
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key)
        .unwrap_or_default();
    let finished = !matches!(end, End::Rebooting | End::Suspended);
    for msg in held {
        if finished {
            ack(&sh, msg).await;
        } else {
            hand_back(&sh, msg).await;
        }
    }
    span.in_scope(|| crate::action::log_done(end.label(), started.elapsed(), None));
    end
}

/// Runs one action with the engine ([`ActionHandler`]), adding what is the agent's own:
/// resuming at a persisted step (after a heartbeat), persisting progress after every
/// step, rebooting when a step asks for it, and skipping the hook calls of an instance in
/// no group.
async fn run_action(
    sh: &Arc<Shared>,
    mut rec: Record,
    resumed: bool,
    cancel: &CancellationToken,
) -> End {
    let ev = rec.event.clone();
    let pipeline_name = rec.pipeline.clone();
    let opts = PrepareOptions {
        pipeline: Some(&pipeline_name),
        started_at: Some(rec.started_at()),
        no_group: rec.no_group,
        // Resumed after a reboot or a restart: the action may have ended meanwhile.
        redelivered: resumed,
    };
    let action = match sh.actions.prepare(&ev, opts).await {
        Ok(a) => a,
        Err(resolution) => return unprepared(sh, &rec, resolution),
    };
    if rec.pipeline != action.pipeline.name {
        rec.pipeline = action.pipeline.name.clone();
        rec.next_step = 0;
    }
    let in_group = action.hook.is_some();

    // After a reboot or a crash, refresh the heartbeat before anything else.
    if resumed && in_group {
        match sh.actions.api.heartbeat(&action.target).await {
            Ok(()) => info!(next_step = rec.next_step, "heartbeat sent; resuming"),
            Err(e) if e.is_already_resolved() => {
                info!("the action was resolved while this agent was down");
                finish(sh, &rec.key);
                return End::AlreadyResolved;
            }
            Err(e) => warn!(error = %e, "the resuming heartbeat failed; resuming anyway"),
        }
    }

    // Persist after every step that succeeds.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let saver = {
        let state = sh.state.clone();
        let mut rec = rec.clone();
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if let Progress::StepFinished(r) = p
                    && r.status == StepStatus::Succeeded
                {
                    rec.next_step = r.index + 1;
                    if let Err(e) = state.save(&rec) {
                        warn!(error = %e, "cannot persist progress");
                    }
                }
            }
            rec.next_step
        })
    };
    info!(pipeline = %action.pipeline.name, from_step = rec.next_step, "running pipeline");
    let mut ran = sh
        .actions
        .run(&action, rec.next_step, Some(tx), cancel)
        .await;
    // The saver persisted the progress; it hands back the next step.
    if let Ok(next) = saver.await {
        rec.next_step = next;
    }

    match ran.outcome.decision {
        Decision::Complete(result) if !in_group => {
            ran.stop_keepalive(&sh.actions.metrics).await;
            complete_without_group(sh, &rec, result)
        }
        Decision::Complete(_) => {
            let resolution = sh.actions.conclude(&action, ran).await;
            settle(sh, &rec, resolution)
        }
        Decision::Reboot { resume_from } => {
            rec.next_step = resume_from;
            rec.reboots += 1;
            reboot(sh, rec, &action, ran, cancel).await
        }
        Decision::Hold => {
            let end = match &action.hook {
                Some(hook) => {
                    let keepalive = ran.into_keepalive();
                    sh.actions
                        .hold(&action.target, hook, action.started_at(), keepalive, cancel)
                        .await
                }
                None => {
                    info!("holding: no group, so no DefaultResult; waiting out the action's life");
                    tokio::select! {
                        _ = sh.actions.clock.sleep_until(action.ctx.global_deadline) => HoldEnd::DefaultResultApplied,
                        _ = cancel.cancelled() => HoldEnd::Cancelled,
                    }
                }
            };
            match end {
                HoldEnd::DefaultResultApplied => {
                    finish(sh, &rec.key);
                    End::Held
                }
                HoldEnd::Cancelled => End::Suspended,
            }
        }
        Decision::Interrupted { resume_from } => {
            ran.stop_keepalive(&sh.actions.metrics).await;
            rec.next_step = resume_from;
            if let Err(e) = sh.state.save(&rec) {
                warn!(error = %e, "cannot persist progress");
            }
            info!(resume_from, "interrupted; resumes at the next start");
            End::Suspended
        }
    }
}

/// A step asked for a reboot: persist the next step, run `[agent] reboot_command` and
/// keep heartbeating until the machine goes down. Too many reboots, a failure to persist
/// or a failing command apply `on_failure` instead.
async fn reboot(
    sh: &Arc<Shared>,
    rec: Record,
    action: &Prepared<'_>,
    mut ran: Ran,
    cancel: &CancellationToken,
) -> End {
    let on_failure = action.pipeline.policy.on_failure;
    if rec.reboots > MAX_REBOOTS {
        warn!(reboots = rec.reboots, result = %on_failure, "too many reboots for one action; applying on_failure");
        return complete(sh, &rec, action, ran, on_failure).await;
    }
    if let Err(e) = sh.state.save(&rec) {
        warn!(error = %e, result = %on_failure, "cannot persist progress before rebooting; not rebooting, applying on_failure");
        return complete(sh, &rec, action, ran, on_failure).await;
    }
    sh.rebooting.store(true, Ordering::SeqCst);
    let argv = &sh.actions.config.agent.reboot_command;
    info!(command = ?argv, resume_from = rec.next_step, reboots = rec.reboots, "rebooting");
    let status = match argv.split_first() {
        Some((program, args)) => {
            tokio::process::Command::new(program)
                .args(args)
                .env("LIFEHOOK_INSTANCE_ID", &rec.event.instance_id)
                .status()
                .await
        }
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "[agent] reboot_command is empty",
        )),
    };
    match status {
        Ok(s) if s.success() => {
            // Keep heartbeating until the machine goes down (or we are stopped).
            cancel.cancelled().await;
            ran.stop_keepalive(&sh.actions.metrics).await;
            End::Rebooting
        }
        other => {
            sh.rebooting.store(false, Ordering::SeqCst);
            let why = match other {
                Ok(s) => format!("exited with {s}"),
                Err(e) => e.to_string(),
            };
            warn!(command = ?argv, error = %why, result = %on_failure, "the reboot command failed; applying on_failure");
            complete(sh, &rec, action, ran, on_failure).await
        }
    }
}

/// Completes the action with `result` through the engine (or, in no group, skips it).
async fn complete(
    sh: &Shared,
    rec: &Record,
    action: &Prepared<'_>,
    mut ran: Ran,
    result: LifecycleResult,
) -> End {
    ran.stop_keepalive(&sh.actions.metrics).await;
    if action.hook.is_none() {
        return complete_without_group(sh, rec, result);
    }
    let resolution = sh.actions.complete(&action.target, result).await;
    settle(sh, rec, resolution)
}

fn complete_without_group(sh: &Shared, rec: &Record, result: LifecycleResult) -> End {
    info!(%result, "no group: skipping CompleteLifecycleAction");
    finish(sh, &rec.key);
    End::RanWithoutGroup
}

/// What a concluded action means for this agent: finished, or to resume at the next start.
fn settle(sh: &Shared, rec: &Record, resolution: Resolution) -> End {
    match resolution {
        Resolution::Completed(result) => {
            info!(%result, "lifecycle action completed");
            finish(sh, &rec.key);
            End::Completed(result)
        }
        Resolution::AlreadyResolved => {
            finish(sh, &rec.key);
            End::AlreadyResolved
        }
        Resolution::Retry { why } | Resolution::SetAside { why, .. } => {
            warn!(error = %why, "completing failed; the action resumes (at its last step) at the next start");
            End::Suspended
        }
        Resolution::Hold { .. } | Resolution::Interrupted { .. } => End::Suspended,
    }
}

/// An action the engine ended before any step ran.
fn unprepared(sh: &Shared, rec: &Record, resolution: Resolution) -> End {
    match resolution {
        Resolution::SetAside {
            reason: "unrouted", ..
        } => {
            warn!(pipeline = %rec.pipeline, "the pipeline of this action is no longer configured; dropping it");
            finish(sh, &rec.key);
            End::Dropped
        }
        Resolution::SetAside { why, .. } => {
            warn!("{why}");
            finish(sh, &rec.key);
            End::AlreadyResolved
        }
        Resolution::AlreadyResolved | Resolution::Completed(_) => {
            finish(sh, &rec.key);
            End::AlreadyResolved
        }
        Resolution::Retry { why } => {
            warn!(error = %why, "the action resumes at the next start");
            End::Suspended
        }
        Resolution::Hold { .. } | Resolution::Interrupted { .. } => End::Suspended,
    }
}

/// Records the action as finished. If that fails, the action may run again at the next
/// start (its steps are safe to run twice, and Auto Scaling answers an already resolved
/// action as such): say so rather than drop the error.
fn finish(sh: &Shared, key: &str) {
    if let Err(e) = sh.state.finish(key) {
        warn!(key, error = %e, "cannot record the action as finished; it may run again at the next start");
    }
}
