//! Completing and heartbeating lifecycle actions, describing hooks, and listing the
//! instances that wait on hooks.
//!
//! Errors are classified once, here, into what a handler must do next (spec §2.3):
//! - `ValidationError` whose message starts with `No active Lifecycle Action found`: the
//!   action is already resolved (completed, timed out, or its hook or instance is gone).
//!   Terminal; never retried; the queue message may be deleted.
//! - throttling, contention, 5xx, timeouts, connection failures: retryable. The SDK
//!   already retries (standard mode, 3 attempts); [`RetryPolicy`] adds a few bounded,
//!   slower rounds on top, because a lifecycle action left uncompleted costs minutes.
//! - anything else: fatal, reported with the group, hook and instance or token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_autoscaling::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use lifehook_model::{LifecycleEvent, LifecycleResult, LifecycleState, LifecycleTransition};

/// The message prefix Auto Scaling uses for unknown, completed and expired actions.
pub const NO_ACTIVE_ACTION_PREFIX: &str = "No active Lifecycle Action found";

/// How long a described hook is trusted before it is described again.
pub const DEFAULT_HOOK_CACHE_TTL: Duration = Duration::from_secs(300);

/// Error codes that mean "slow down or try again" on Auto Scaling and its neighbours.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "ResourceContention",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// How a lifecycle action is named: by its token, its instance, or both (spec §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActionKey {
    Token(String),
    InstanceId(String),
    /// What handlers with a notification send: the token, plus the instance as a check.
    Both {
        token: String,
        instance_id: String,
    },
}

impl ActionKey {
    pub fn token(&self) -> Option<&str> {
        match self {
            ActionKey::Token(t) | ActionKey::Both { token: t, .. } => Some(t),
            ActionKey::InstanceId(_) => None,
        }
    }

    pub fn instance_id(&self) -> Option<&str> {
        match self {
            ActionKey::InstanceId(i) | ActionKey::Both { instance_id: i, .. } => Some(i),
            ActionKey::Token(_) => None,
        }
    }
}

/// One lifecycle action: (group, hook) and its token and/or instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionTarget {
    pub group: String,
    pub hook: String,
    pub key: ActionKey,
}

impl ActionTarget {
    pub fn new(group: impl Into<String>, hook: impl Into<String>, key: ActionKey) -> Self {
        ActionTarget {
            group: group.into(),
            hook: hook.into(),
            key,
        }
    }

    /// The action a notification announced, named by token and instance.
    pub fn from_event(event: &LifecycleEvent) -> Self {
        ActionTarget::new(
            event.group.clone(),
            event.hook.clone(),
            ActionKey::Both {
                token: event.token.clone(),
                instance_id: event.instance_id.clone(),
            },
        )
    }
}

impl fmt::Display for ActionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {}, hook {}", self.group, self.hook)?;
        if let Some(i) = self.key.instance_id() {
            write!(f, ", instance {i}")?;
        }
        if let Some(t) = self.key.token() {
            write!(f, ", token {t}")?;
        }
        Ok(())
    }
}

/// What to do about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The action no longer exists: stop, do not retry, the message may go.
    AlreadyResolved,
    /// Transient: try again later.
    Retryable,
    /// Will not succeed by retrying.
    Fatal,
}

/// Classifies a service error from its code, message and HTTP status.
pub fn classify(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> ErrorClass {
    if code == Some("ValidationError")
        && message.is_some_and(|m| m.trim_start().starts_with(NO_ACTIVE_ACTION_PREFIX))
    {
        return ErrorClass::AlreadyResolved;
    }
    if code.is_some_and(|c| RETRYABLE_CODES.contains(&c)) {
        return ErrorClass::Retryable;
    }
    match status {
        Some(429) => ErrorClass::Retryable,
        Some(s) if s >= 500 => ErrorClass::Retryable,
        _ => ErrorClass::Fatal,
    }
}

/// Classifies any SDK error (service, transport, timeout, construction).
pub fn classify_sdk<E, R>(err: &SdkError<E, R>) -> ErrorClass
where
    E: ProvideErrorMetadata,
    R: HasStatus,
{
    match err {
        SdkError::ServiceError(ctx) => classify(
            ctx.err().code(),
            ctx.err().message(),
            Some(ctx.raw().status_code()),
        ),
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => ErrorClass::Retryable,
        SdkError::DispatchFailure(d) => {
            if d.is_io() || d.is_timeout() {
                ErrorClass::Retryable
            } else {
                // Includes missing credentials: retrying does not help.
                ErrorClass::Fatal
            }
        }
        _ => ErrorClass::Fatal,
    }
}

/// The HTTP status of a raw response, whatever its concrete type.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_autoscaling::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// `code: message` of an SDK error, or its full context when it is not a service error.
pub(crate) fn describe_sdk<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match err {
        SdkError::ServiceError(ctx) => match (ctx.err().code(), ctx.err().message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_owned(),
            _ => DisplayErrorContext(err).to_string(),
        },
        SdkError::DispatchFailure(_) => format!(
            "{} (check the endpoint — AWS_ENDPOINT_URL or --endpoint-url — and the network)",
            error_chain(err)
        ),
        _ => error_chain(err),
    }
}

/// An error and its causes as `outer: inner: …`, each cause's text once, and never their
/// `Debug` dumps (`DisplayErrorContext` appends one).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let t = e.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = e.source();
    }
    text
}

/// A failed lifecycle call, with the context needed to act on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LifecycleError {
    /// The action is already resolved (completed, timed out, or gone). Terminal.
    #[error("lifecycle action already resolved ({target}): {message}")]
    AlreadyResolved {
        op: &'static str,
        target: ActionTarget,
        message: String,
    },
    /// A transient failure that outlasted the retries.
    #[error("{op} failed for {context} after {} (transient): {detail}", attempts_text(*.attempts))]
    Transient {
        op: &'static str,
        context: String,
        attempts: u32,
        detail: String,
    },
    /// A failure that retrying will not fix.
    #[error("{op} failed for {context}: {detail}")]
    Fatal {
        op: &'static str,
        context: String,
        detail: String,
    },
    /// The hook does not exist on the group.
    #[error("lifecycle hook {hook} not found on group {group}")]
    HookNotFound { group: String, hook: String },
    /// The group does not exist (deleted): none of its actions can be waiting.
    #[error("Auto Scaling group {group} not found")]
    GroupNotFound { group: String },
}

/// "1 attempt", "3 attempts".
fn attempts_text(n: u32) -> String {
    if n == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{n} attempts")
    }
}

impl LifecycleError {
    pub fn class(&self) -> ErrorClass {
        match self {
            LifecycleError::AlreadyResolved { .. } => ErrorClass::AlreadyResolved,
            LifecycleError::Transient { .. } => ErrorClass::Retryable,
            LifecycleError::Fatal { .. }
            | LifecycleError::HookNotFound { .. }
            | LifecycleError::GroupNotFound { .. } => ErrorClass::Fatal,
        }
    }

    pub fn is_already_resolved(&self) -> bool {
        self.class() == ErrorClass::AlreadyResolved
    }
}

/// Extra retries on top of the SDK's own, for transient failures only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Rounds after the first (each round is a full SDK call with its own retries).
    pub extra_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        extra_attempts: 3,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(20),
    };

    /// No extra retries (interactive commands: the operator is the retry loop).
    pub const NONE: RetryPolicy = RetryPolicy {
        extra_attempts: 0,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// The delay before extra round `n` (1-based): exponential, capped, with up to 25 %
    /// jitter taken from the clock so that many handlers do not retry in step.
    pub fn delay(&self, n: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_delay);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = capped.mul_f64(f64::from(nanos % 1000) / 4000.0);
        capped.saturating_sub(jitter)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::DEFAULT
    }
}

/// A hook's timing, as `DescribeLifecycleHooks` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInfo {
    pub group: String,
    pub name: String,
    pub transition: Option<LifecycleTransition>,
    pub heartbeat_timeout: Duration,
    pub global_timeout: Duration,
    pub default_result: LifecycleResult,
}

impl HookInfo {
    fn from_sdk(group: &str, h: &aws_sdk_autoscaling::types::LifecycleHook) -> Option<HookInfo> {
        let name = h.lifecycle_hook_name()?.to_owned();
        let hb = h
            .heartbeat_timeout()
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(lifehook_model::timeout::DEFAULT_HEARTBEAT_TIMEOUT_SECS);
        let global = h
            .global_timeout()
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or_else(|| lifehook_model::global_timeout_secs(hb));
        Some(HookInfo {
            group: h.auto_scaling_group_name().unwrap_or(group).to_owned(),
            name,
            transition: h.lifecycle_transition().and_then(|t| t.parse().ok()),
            heartbeat_timeout: Duration::from_secs(hb),
            global_timeout: Duration::from_secs(global),
            // Auto Scaling's own default is ABANDON.
            default_result: h
                .default_result()
                .and_then(|r| r.parse().ok())
                .unwrap_or(LifecycleResult::Abandon),
        })
    }
}

/// An instance waiting on lifecycle hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingInstance {
    pub group: String,
    pub instance_id: String,
    pub state: LifecycleState,
    /// The hooks of the transition the instance is in. Auto Scaling does not say which of
    /// them have been completed already, so all of them are listed.
    pub hooks: Vec<HookInfo>,
    /// When the scaling activity that put the instance in the wait state started, where
    /// one is found. This is no later than the start of the wait, so [`Self::time_left`]
    /// errs on the short side.
    pub since: Option<SystemTime>,
}

impl WaitingInstance {
    /// How long the instance has waited, where knowable.
    pub fn waited(&self, now: SystemTime) -> Option<Duration> {
        self.since
            .map(|s| now.duration_since(s).unwrap_or(Duration::ZERO))
    }

    /// Time left until the shortest global timeout of its hooks, where knowable.
    pub fn time_left(&self, now: SystemTime) -> Option<Duration> {
        let waited = self.waited(now)?;
        let global = self.hooks.iter().map(|h| h.global_timeout).min()?;
        Some(global.saturating_sub(waited))
    }
}

/// The transition an instance in a wait state is going through.
pub fn transition_of(state: LifecycleState) -> Option<LifecycleTransition> {
    match state {
        LifecycleState::PendingWait | LifecycleState::WarmedPendingWait => {
            Some(LifecycleTransition::Launching)
        }
        LifecycleState::TerminatingWait | LifecycleState::WarmedTerminatingWait => {
            Some(LifecycleTransition::Terminating)
        }
        _ => None,
    }
}

/// Typed access to the lifecycle operations of Auto Scaling. Cheap to clone; clones share
/// the hook cache.
#[derive(Debug, Clone)]
pub struct LifecycleApi {
    client: aws_sdk_autoscaling::Client,
    retry: RetryPolicy,
    cache: Arc<HookCache>,
}

#[derive(Debug)]
struct HookCache {
    ttl: Duration,
    /// group → hook → (described at, hook): looked up by `&str`, without allocating.
    entries: Mutex<HashMap<String, HooksOfGroup>>,
    /// One describe at a time per (group, hook) on a miss: a burst of actions of a hook
    /// not yet cached waits for the first one's `DescribeLifecycleHooks` instead of each
    /// sending its own.
    describing: Mutex<HashMap<(String, String), DescribeGate>>,
}

/// Hook name → (described at, hook).
type HooksOfGroup = HashMap<String, (Instant, HookInfo)>;
/// Held while one caller describes a (group, hook).
type DescribeGate = Arc<tokio::sync::Mutex<()>>;

impl HookCache {
    fn new(ttl: Duration) -> Self {
        HookCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            describing: Mutex::new(HashMap::new()),
        }
    }
}

impl LifecycleApi {
    pub fn new(client: aws_sdk_autoscaling::Client) -> Self {
        LifecycleApi {
            client,
            retry: RetryPolicy::DEFAULT,
            cache: Arc::new(HookCache::new(DEFAULT_HOOK_CACHE_TTL)),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_hook_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache = Arc::new(HookCache::new(ttl));
        self
    }

    pub fn client(&self) -> &aws_sdk_autoscaling::Client {
        &self.client
    }

    /// `CompleteLifecycleAction`.
    pub async fn complete(
        &self,
        target: &ActionTarget,
        result: LifecycleResult,
    ) -> Result<(), LifecycleError> {
        const OP: &str = "CompleteLifecycleAction";
        self.with_retries(OP, target, || async {
            self.client
                .complete_lifecycle_action()
                .auto_scaling_group_name(&target.group)
                .lifecycle_hook_name(&target.hook)
                .set_lifecycle_action_token(target.key.token().map(str::to_owned))
                .set_instance_id(target.key.instance_id().map(str::to_owned))
                .lifecycle_action_result(result.as_str())
                .send()
                .await
                .map(|_| ())
        })
        .await
    }

    /// `RecordLifecycleActionHeartbeat`: restarts the action's heartbeat timer.
    pub async fn heartbeat(&self, target: &ActionTarget) -> Result<(), LifecycleError> {
        const OP: &str = "RecordLifecycleActionHeartbeat";
        self.with_retries(OP, target, || async {
            self.client
                .record_lifecycle_action_heartbeat()
                .auto_scaling_group_name(&target.group)
                .lifecycle_hook_name(&target.hook)
                .set_lifecycle_action_token(target.key.token().map(str::to_owned))
                .set_instance_id(target.key.instance_id().map(str::to_owned))
                .send()
                .await
                .map(|_| ())
        })
        .await
    }

    async fn with_retries<E, F, Fut>(
        &self,
        op: &'static str,
        target: &ActionTarget,
        call: F,
    ) -> Result<(), LifecycleError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        F: Fn() -> Fut,
        Fut: std::future::Future<
                Output = Result<(), SdkError<E, aws_sdk_autoscaling::config::http::HttpResponse>>,
            >,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match call().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let detail = describe_sdk(&err);
            match classify_sdk(&err) {
                ErrorClass::AlreadyResolved => {
                    let message = match &err {
                        SdkError::ServiceError(ctx) => {
                            ctx.err().message().unwrap_or_default().to_owned()
                        }
                        _ => detail,
                    };
                    return Err(LifecycleError::AlreadyResolved {
                        op,
                        target: target.clone(),
                        message,
                    });
                }
                ErrorClass::Fatal => {
                    return Err(LifecycleError::Fatal {
                        op,
                        context: target.to_string(),
                        detail,
                    });
                }
                ErrorClass::Retryable if attempt > self.retry.extra_attempts => {
                    return Err(LifecycleError::Transient {
                        op,
                        context: target.to_string(),
                        attempts: attempt,
                        detail,
                    });
                }
                ErrorClass::Retryable => {
                    let delay = self.retry.delay(attempt);
                    tracing::warn!(op, target = %target, attempt, delay_ms = delay.as_millis() as u64, error = %detail, "transient failure, retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One hook's timing, from the cache when fresh, else from `DescribeLifecycleHooks`.
    pub async fn hook(&self, group: &str, hook: &str) -> Result<HookInfo, LifecycleError> {
        if let Some(h) = self.cached(group, hook) {
            return Ok(h);
        }
        let key = (group.to_owned(), hook.to_owned());
        let gate = {
            let mut d = self
                .cache
                .describing
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            d.entry(key.clone()).or_default().clone()
        };
        let turn = gate.lock().await;
        // Whoever held the gate before may have filled the cache.
        let described = match self.cached(group, hook) {
            Some(h) => Ok(vec![h]),
            None => self.describe_hooks(group, Some(hook)).await,
        };
        drop(turn);
        {
            let mut d = self
                .cache
                .describing
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // The last one out removes the gate (the map holds one reference and `gate`
            // another; each caller still waiting holds one more).
            if d.get(&key).is_some_and(|g| Arc::strong_count(g) <= 2) {
                d.remove(&key);
            }
        }
        let hooks = described?;
        hooks
            .into_iter()
            .find(|h| h.name == hook)
            .ok_or_else(|| LifecycleError::HookNotFound {
                group: group.to_owned(),
                hook: hook.to_owned(),
            })
    }

    /// Which of `groups` do not exist.
    pub async fn missing_groups(&self, groups: &[String]) -> Result<Vec<String>, LifecycleError> {
        const OP: &str = "DescribeAutoScalingGroups";
        let out = self
            .client
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|e| api_error(OP, format!("groups {}", groups.join(", ")), &e))?;
        let known: Vec<&str> = out
            .auto_scaling_groups()
            .iter()
            .filter_map(|g| g.auto_scaling_group_name())
            .collect();
        Ok(groups
            .iter()
            .filter(|g| !known.contains(&g.as_str()))
            .cloned()
            .collect())
    }

    /// Every hook of a group (always described afresh; refreshes the cache).
    pub async fn hooks(&self, group: &str) -> Result<Vec<HookInfo>, LifecycleError> {
        self.describe_hooks(group, None).await
    }

    fn cached(&self, group: &str, hook: &str) -> Option<HookInfo> {
        let entries = self.cache.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(group)
            .and_then(|hooks| hooks.get(hook))
            .filter(|(at, _)| at.elapsed() < self.cache.ttl)
            .map(|(_, h)| h.clone())
    }

    async fn describe_hooks(
        &self,
        group: &str,
        hook: Option<&str>,
    ) -> Result<Vec<HookInfo>, LifecycleError> {
        const OP: &str = "DescribeLifecycleHooks";
        let out = self
            .client
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .set_lifecycle_hook_names(hook.map(|h| vec![h.to_owned()]))
            .send()
            .await
            .map_err(|e| {
                // spec §2.3/§4.4: a group that does not exist is a ValidationError whose
                // message starts "AutoScalingGroup name not found".
                let gone = e.as_service_error().is_some_and(|se| {
                    se.code() == Some("ValidationError")
                        && se
                            .message()
                            .is_some_and(|m| m.starts_with("AutoScalingGroup name not found"))
                });
                if gone {
                    LifecycleError::GroupNotFound {
                        group: group.to_owned(),
                    }
                } else {
                    api_error(OP, format!("group {group}"), &e)
                }
            })?;
        let hooks: Vec<HookInfo> = out
            .lifecycle_hooks()
            .iter()
            .filter_map(|h| HookInfo::from_sdk(group, h))
            .collect();
        let now = Instant::now();
        let mut entries = self.cache.entries.lock().unwrap_or_else(|p| p.into_inner());
        let of_group = entries.entry(group.to_owned()).or_default();
        for h in &hooks {
            of_group.insert(h.name.clone(), (now, h.clone()));
        }
        Ok(hooks)
    }

    /// Every instance in a `*:Wait` state, in the named groups or (when `groups` is empty)
    /// in every group of the region, with the hooks of its transition and, where a scaling
    /// activity shows it, when the wait began.
    pub async fn waiting_instances(
        &self,
        groups: &[String],
    ) -> Result<Vec<WaitingInstance>, LifecycleError> {
        const OP: &str = "DescribeAutoScalingGroups";
        let context = if groups.is_empty() {
            "all groups".to_owned()
        } else {
            format!("groups {}", groups.join(", "))
        };
        let mut waiting: Vec<(String, String, LifecycleState)> = Vec::new();
        // The API takes at most 100 names per call.
        let chunks: Vec<Option<Vec<String>>> = if groups.is_empty() {
            vec![None]
        } else {
            groups.chunks(100).map(|c| Some(c.to_vec())).collect()
        };
        for names in chunks {
            let mut pages = self
                .client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(names)
                .into_paginator()
                .items()
                .send();
            while let Some(group) = pages.next().await {
                let group = group.map_err(|e| api_error(OP, context.clone(), &e))?;
                let Some(name) = group.auto_scaling_group_name() else {
                    continue;
                };
                for inst in group.instances() {
                    let (Some(id), Some(state)) = (inst.instance_id(), inst.lifecycle_state())
                    else {
                        continue;
                    };
                    let Ok(state) = state.as_str().parse::<LifecycleState>() else {
                        continue;
                    };
                    if state.is_wait() {
                        waiting.push((name.to_owned(), id.to_owned(), state));
                    }
                }
            }
        }

        let mut out = Vec::with_capacity(waiting.len());
        let mut per_group: HashMap<String, (Vec<HookInfo>, HashMap<String, SystemTime>)> =
            HashMap::new();
        for (group, instance_id, state) in waiting {
            if !per_group.contains_key(&group) {
                let hooks = self.hooks(&group).await?;
                let starts = self.wait_starts(&group).await?;
                per_group.insert(group.clone(), (hooks, starts));
            }
            let (hooks, starts) = &per_group[&group];
            let transition = transition_of(state);
            let hooks = hooks
                .iter()
                .filter(|h| transition.is_none() || h.transition == transition)
                .cloned()
                .collect();
            out.push(WaitingInstance {
                since: starts.get(&instance_id).copied(),
                group,
                instance_id,
                state,
                hooks,
            });
        }
        Ok(out)
    }

    /// Start times of the unfinished scaling activities of a group, by instance. Only
    /// the first page is read: unfinished activities are the most recent ones.
    async fn wait_starts(
        &self,
        group: &str,
    ) -> Result<HashMap<String, SystemTime>, LifecycleError> {
        const OP: &str = "DescribeScalingActivities";
        let out = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| api_error(OP, format!("group {group}"), &e))?;
        let mut starts = HashMap::new();
        for a in out.activities() {
            if a.end_time().is_some() {
                continue;
            }
            let mid = a.status_code().map(|s| s.as_str()) == Some("MidLifecycleAction");
            let (Some(desc), Some(start)) = (a.description(), a.start_time()) else {
                continue;
            };
            let Some(instance) = activity_instance(desc) else {
                continue;
            };
            let Ok(start) = SystemTime::try_from(*start) else {
                continue;
            };
            // Prefer the activity that says it is in a lifecycle action.
            if mid || !starts.contains_key(&instance) {
                starts.insert(instance, start);
            }
        }
        Ok(starts)
    }
}

/// The instance id at the end of an activity description such as
/// `Launching a new EC2 instance: i-0123` or `Terminating EC2 instance: i-0123`.
pub fn activity_instance(description: &str) -> Option<String> {
    let last = description.rsplit(": ").next()?.trim();
    let id = last.split_whitespace().next()?;
    id.starts_with("i-").then(|| id.to_owned())
}

/// `PutLifecycleHook` for `spec` on `group` (it creates the hook, or overwrites it whole:
/// spec §2.1), ready to send.
pub(crate) fn put_hook(
    client: &aws_sdk_autoscaling::Client,
    group: &str,
    spec: &lifehook_core::config::HookSpec,
) -> aws_sdk_autoscaling::operation::put_lifecycle_hook::builders::PutLifecycleHookFluentBuilder {
    client
        .put_lifecycle_hook()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(&spec.name)
        .lifecycle_transition(spec.transition.as_str())
        .heartbeat_timeout(i32::try_from(spec.heartbeat_timeout.as_secs()).unwrap_or(i32::MAX))
        .default_result(spec.default_result.as_str())
        .set_notification_target_arn(spec.notification_target_arn.clone())
        .set_role_arn(spec.role_arn.clone())
        .set_notification_metadata(spec.notification_metadata.clone())
}

fn api_error<E>(
    op: &'static str,
    context: String,
    err: &SdkError<E, aws_sdk_autoscaling::config::http::HttpResponse>,
) -> LifecycleError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = describe_sdk(err);
    match classify_sdk(err) {
        ErrorClass::Retryable => LifecycleError::Transient {
            op,
            context,
            attempts: 1,
            detail,
        },
        _ => LifecycleError::Fatal {
            op,
            context,
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_counted_in_english() {
        let e = |attempts| LifecycleError::Transient {
            op: "RecordLifecycleActionHeartbeat",
            context: "group g".into(),
            attempts,
            detail: "Throttling: Rate exceeded".into(),
        };
        assert!(
            e(1).to_string().contains("after 1 attempt (transient)"),
            "{}",
            e(1)
        );
        assert!(
            e(3).to_string().contains("after 3 attempts (transient)"),
            "{}",
            e(3)
        );
    }

    #[test]
    fn no_active_action_is_already_resolved() {
        for m in [
            "No active Lifecycle Action found with token 917070d0-a303-474b-a36c-a5e38a19de5e",
            "No active Lifecycle Action found with instance ID i-08406e13ee788fc10",
        ] {
            assert_eq!(
                classify(Some("ValidationError"), Some(m), Some(400)),
                ErrorClass::AlreadyResolved
            );
        }
    }

    #[test]
    fn other_validation_errors_are_fatal() {
        assert_eq!(
            classify(
                Some("ValidationError"),
                Some("AutoScalingGroup name not found - null"),
                Some(400)
            ),
            ErrorClass::Fatal
        );
        // The prefix must come from a ValidationError, not any code.
        assert_eq!(
            classify(
                Some("AccessDenied"),
                Some("No active Lifecycle Action found with token x"),
                Some(403)
            ),
            ErrorClass::Fatal
        );
        assert_eq!(
            classify(Some("ValidationError"), None, Some(400)),
            ErrorClass::Fatal
        );
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        assert_eq!(
            classify(Some("Throttling"), Some("Rate exceeded"), Some(400)),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify(Some("ResourceContention"), None, Some(500)),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify(Some("Whatever"), None, Some(503)),
            ErrorClass::Retryable
        );
        assert_eq!(classify(None, None, Some(429)), ErrorClass::Retryable);
        assert_eq!(
            classify(Some("InvalidClientTokenId"), None, Some(403)),
            ErrorClass::Fatal
        );
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        let p = RetryPolicy {
            extra_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
        };
        for n in 1..=40 {
            let d = p.delay(n);
            assert!(d <= Duration::from_secs(8), "{n}: {d:?}");
        }
        assert!(p.delay(1) <= Duration::from_secs(1));
        assert!(p.delay(1) >= Duration::from_millis(750));
        assert!(p.delay(4) >= Duration::from_secs(6));
        assert_eq!(RetryPolicy::NONE.delay(1), Duration::ZERO);
    }

    #[test]
    fn targets_display_their_context() {
        let t = ActionTarget::new(
            "web",
            "drain",
            ActionKey::Both {
                token: "tok".into(),
                instance_id: "i-1".into(),
            },
        );
        assert_eq!(
            t.to_string(),
            "group web, hook drain, instance i-1, token tok"
        );
        let t = ActionTarget::new("web", "drain", ActionKey::InstanceId("i-2".into()));
        assert_eq!(t.key.token(), None);
        assert_eq!(t.to_string(), "group web, hook drain, instance i-2");
    }

    #[test]
    fn activity_descriptions_name_instances() {
        assert_eq!(
            activity_instance("Launching a new EC2 instance: i-0853dfa8ce1627af9").as_deref(),
            Some("i-0853dfa8ce1627af9")
        );
        assert_eq!(
            activity_instance("Terminating EC2 instance: i-0abc").as_deref(),
            Some("i-0abc")
        );
        assert_eq!(activity_instance("Updating load balancers"), None);
    }

    #[test]
    fn wait_states_map_to_transitions() {
        assert_eq!(
            transition_of(LifecycleState::PendingWait),
            Some(LifecycleTransition::Launching)
        );
        assert_eq!(
            transition_of(LifecycleState::TerminatingWait),
            Some(LifecycleTransition::Terminating)
        );
        assert_eq!(transition_of(LifecycleState::InService), None);
    }

    #[test]
    fn time_left_uses_the_shortest_global_timeout() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let hook = |g| HookInfo {
            group: "g".into(),
            name: "h".into(),
            transition: Some(LifecycleTransition::Launching),
            heartbeat_timeout: Duration::from_secs(30),
            global_timeout: Duration::from_secs(g),
            default_result: LifecycleResult::Abandon,
        };
        let w = WaitingInstance {
            group: "g".into(),
            instance_id: "i-1".into(),
            state: LifecycleState::PendingWait,
            hooks: vec![hook(3000), hook(600)],
            since: Some(since),
        };
        let now = since + Duration::from_secs(100);
        assert_eq!(w.waited(now), Some(Duration::from_secs(100)));
        assert_eq!(w.time_left(now), Some(Duration::from_secs(500)));
        assert_eq!(
            w.time_left(since + Duration::from_secs(10_000)),
            Some(Duration::ZERO)
        );
    }
}
