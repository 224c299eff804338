//! Lambda in the sandbox: functions that EventBridge rules, SNS subscriptions (protocol
//! `lambda`) and lifecycle hooks (spec §3.6) invoke asynchronously, served by a real
//! runtime process (for example `lifehook lambda`, built on `lambda_runtime`) through the
//! [Lambda Runtime API](https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
//!
//! - **Functions** are created through the control API (`POST /_sandbox/lambda/functions`).
//!   Nothing runs inside the sandbox: a function is a queue of invocations plus a Runtime
//!   API endpoint that a runtime process long-polls.
//! - **One listener per function.** `AWS_LAMBDA_RUNTIME_API` is `host:port`, and one
//!   runtime process serves one function. `lambda_runtime` keeps a base path only when the
//!   variable carries a scheme (`http://host:port/path`; a bare `host:port/path` does not
//!   parse as a URI and panics), a form real Lambda never uses and other runtimes, which
//!   prepend `http://`, cannot handle. So each function gets its own loopback listener when
//!   it is created, and the control API answers its `runtime_api` (`127.0.0.1:PORT`) and
//!   the environment a runtime needs.
//! - **Asynchronous (Event) invocations**: a delivery queues the event and wakes the
//!   function's long polls (a [`Notify`] per function; a poll never holds the world lock
//!   while it waits). `next` hands out the oldest pending invocation with a deadline of now
//!   plus the function's timeout; the runtime answers with `response` or `error`.
//! - **Retries** as AWS does for asynchronous invocations: a failed attempt (an `error`
//!   post, or no answer before the timeout on the virtual clock) is retried up to
//!   `max_retries` more times (default 2, per function 0–2), the first retry
//!   [`RETRY_DELAYS_SECS`]`[0]` = 60 s later, the second 120 s after that, with the same
//!   request id. Then the invocation is `failed`.
//! - **Payloads**: EventBridge passes the event as is (§3.4), SNS wraps the notification in
//!   `{"Records":[{"EventSource":"aws:sns",…,"Sns":{…}}]}` (§3.5), a hook passes the §3.1
//!   lifecycle message (§3.6; the test notification is not sent to functions).
//! - **An SQS event source** per function (`sqs_event_source` at creation), polled as an
//!   event source mapping does: when the runtime asks for work and no asynchronous
//!   invocation is pending, up to `batch_size` visible messages are received (the queue's
//!   visibility timeout, a receive counted, its redrive policy applied) and handed over as
//!   one synchronous invocation `{"Records":[{"eventSource":"aws:sqs",…}]}`, one batch at a
//!   time. A successful answer deletes the batch's messages — all of them, or with
//!   `report_batch_item_failures` all but those the answer lists in `batchItemFailures`
//!   (an answer that cannot be read, or lists an unknown id, fails the whole batch, as
//!   AWS does). An error or a timeout deletes none: they come back when their visibility
//!   ends, and go to the dead-letter queue past `maxReceiveCount`. No retry of the
//!   invocation itself.
//!
//! Layout: this file holds the functions, their invocations and timers; `ops.rs` the
//! Runtime API (Lambda's only wire API here: one handler per route); `control.rs` the
//! `/_sandbox/lambda/…` routes, through which functions are created.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::{Millis, iso_millis};
use crate::world::{DeliveryError, Timer as WorldTimer, World};
use crate::{ACCOUNT_ID, DEFAULT_REGION, Sandbox, ids};

mod control;
mod ops;

use ops::{runtime_json, runtime_router};
#[cfg(test)]
mod tests;

pub(crate) use control::{control, state_json};

/// Default function timeout, seconds (AWS's default).
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// Longest function timeout, seconds (15 minutes).
pub(crate) const MAX_TIMEOUT_SECS: u64 = 900;
/// Default and largest number of retries of a failed asynchronous invocation.
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 2;
/// Delay before the first and the second retry, seconds of virtual time.
pub(crate) const RETRY_DELAYS_SECS: [u64; 2] = [60, 120];
/// The memory size runtimes are told (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
pub(crate) const MEMORY_SIZE_MB: u32 = 128;
/// Largest asynchronous invocation payload, bytes (1 MB since 2025).
pub(crate) const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Largest body a runtime may post (a response or an error), bytes.
pub(crate) const MAX_RUNTIME_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Finished invocations kept per function (the oldest are forgotten first).
const MAX_FINISHED: usize = 1000;
/// Pending invocations per function before deliveries are refused.
const MAX_PENDING: usize = 100_000;

/// Lambda state of one region: its functions by name.
#[derive(Debug, Default)]
pub(crate) struct State {
    functions: BTreeMap<String, Function>,
}

#[derive(Debug)]
struct Function {
    /// Distinguishes this function from a later one of the same name.
    id: String,
    name: String,
    arn: String,
    timeout_secs: u64,
    max_retries: u32,
    runtime_api: SocketAddr,
    created: Millis,
    /// Woken whenever an invocation becomes pending (and when the function goes away).
    notify: Arc<Notify>,
    /// Request ids ready for `next`, oldest first.
    queue: VecDeque<String>,
    /// Every known invocation, oldest first.
    invocations: Vec<Invocation>,
    init_errors: Vec<Value>,
    /// The SQS queue polled for this function, if any.
    sqs_source: Option<SqsSource>,
    /// The Runtime API listener; aborted when the function is dropped.
    server: JoinHandle<()>,
}

/// An SQS event source mapping of a function (see the module documentation).
#[derive(Debug)]
struct SqsSource {
    /// The queue, in the function's region.
    queue: String,
    queue_arn: String,
    batch_size: usize,
    report_batch_item_failures: bool,
    /// The principal the mapping's SQS calls are authorized as (the function's execution
    /// role), when the sandbox enforces IAM.
    access_key_id: Option<String>,
    /// The batch being handled: its invocation's request id and its messages' (message
    /// id, receipt handle).
    batch: Option<(String, Vec<(String, String)>)>,
    /// Messages deleted after a successful answer, and batches that failed as a whole.
    deleted: u64,
    failed_batches: u64,
}

impl Drop for Function {
    fn drop(&mut self) {
        // Long polls see that the function is gone; the listener stops accepting.
        self.notify.notify_waiters();
        self.server.abort();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    InFlight,
    RetryScheduled,
    Succeeded,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InFlight => "in_flight",
            Status::RetryScheduled => "retry_scheduled",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    fn finished(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed)
    }
}

#[derive(Debug)]
struct Invocation {
    request_id: String,
    /// Who invoked: `events`, `sns`, `autoscaling`, `control`, `sqs`.
    source: String,
    /// Whether a failed attempt is retried (asynchronous invocations; not an SQS batch).
    retries: bool,
    payload: String,
    trace_id: String,
    status: Status,
    /// Attempts started so far.
    attempts: u32,
    enqueued: Millis,
    /// Virtual time the current (or last) attempt's timeout falls due.
    deadline: Option<Millis>,
    /// Virtual time of the next retry, while one is scheduled.
    retry_at: Option<Millis>,
    finished: Option<Millis>,
    response: Option<String>,
    errors: Vec<AttemptError>,
}

#[derive(Debug)]
struct AttemptError {
    attempt: u32,
    at: Millis,
    error_type: String,
    /// The body the runtime posted (usually `{"errorType":…,"errorMessage":…}`).
    payload: String,
}

/// Something to do at a point of virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The attempt `attempt` of an invocation runs out of time.
    Timeout {
        function: String,
        request_id: String,
        attempt: u32,
    },
    /// A failed invocation is queued again.
    Retry {
        function: String,
        request_id: String,
    },
}

/// `arn:aws:lambda:<region>:<account>:function:<name>`.
pub(crate) fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}")
}

/// (region, name) of a function ARN (a version or alias qualifier is accepted and ignored).
pub(crate) fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    let (region, resource) = crate::ids::split_arn(arn, "lambda")?;
    let mut p = resource.split(':');
    let (kind, name) = (p.next()?, p.next()?);
    let _qualifier = p.next();
    (kind == "function" && valid_name(name) && p.next().is_none()).then_some((region, name))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn real_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// An X-Ray style trace header: `Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn trace_id(now: Millis) -> String {
    let a = ids::uuid().replace('-', "");
    let b = ids::uuid().replace('-', "");
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        now / 1000,
        &a[..24],
        &b[..16]
    )
}

// ---------------------------------------------------------------------------------------
// Invoking (shared with EventBridge, SNS and Auto Scaling)
// ---------------------------------------------------------------------------------------

/// Queues an asynchronous invocation of the function `arn` with `payload` (a JSON
/// document) and wakes its runtime. Returns the request id.
pub(crate) fn invoke_by_arn(
    world: &mut World,
    region: &str,
    arn: &str,
    payload: &str,
    source: &str,
) -> Result<String, DeliveryError> {
    let (region, name) = crate::world::delivery_target(region, arn, parse_arn)?;
    invoke(world, region, name, payload, source).map_err(|e| match e {
        InvokeError::NoSuchFunction => DeliveryError::NoSuchTarget(arn.to_owned()),
        InvokeError::Refused(reason) => DeliveryError::Refused {
            arn: arn.to_owned(),
            reason,
        },
    })
}

enum InvokeError {
    NoSuchFunction,
    Refused(String),
}

fn invoke(
    world: &mut World,
    region: &str,
    name: &str,
    payload: &str,
    source: &str,
) -> Result<String, InvokeError> {
    // An SQS batch is a synchronous invocation (6 MB); the others are asynchronous.
    let (limit, kind) = if source == "sqs" {
        (MAX_RUNTIME_BODY_BYTES, "a synchronous")
    } else {
        (MAX_EVENT_BYTES, "an asynchronous")
    };
    if payload.len() > limit {
        return Err(InvokeError::Refused(format!(
            "the payload is {} bytes, more than the {limit} {kind} invocation may carry",
            payload.len()
        )));
    }
    let now = world.now;
    let Some(f) = world.region(region).lambda.functions.get_mut(name) else {
        return Err(InvokeError::NoSuchFunction);
    };
    if f.queue.len() >= MAX_PENDING {
        return Err(InvokeError::Refused(format!(
            "{MAX_PENDING} invocations are already pending"
        )));
    }
    let request_id = ids::uuid();
    f.invocations.push(Invocation {
        request_id: request_id.clone(),
        source: source.to_owned(),
        retries: source != "sqs",
        payload: payload.to_owned(),
        trace_id: trace_id(now),
        status: Status::Pending,
        attempts: 0,
        enqueued: now,
        deadline: None,
        retry_at: None,
        finished: None,
        response: None,
        errors: Vec::new(),
    });
    f.queue.push_back(request_id.clone());
    f.notify.notify_waiters();
    tracing::debug!(function = %f.arn, request_id = %request_id, source, "invocation queued");
    Ok(request_id)
}

/// The event an SNS subscription of protocol `lambda` receives (spec §3.5): the
/// notification `envelope` (the SQS-delivery form, §3.3) as the record's `Sns`, with the
/// Lambda spellings `SigningCertUrl`/`UnsubscribeUrl`, `Subject` null when absent and
/// `MessageAttributes` always present.
pub(crate) fn sns_event(envelope: &Value, subscription_arn: &str) -> String {
    let mut sns = serde_json::Map::new();
    let get = |k: &str| envelope.get(k).cloned().unwrap_or(Value::Null);
    for (k, from) in [
        ("Type", "Type"),
        ("MessageId", "MessageId"),
        ("TopicArn", "TopicArn"),
        ("Subject", "Subject"),
        ("Message", "Message"),
        ("Timestamp", "Timestamp"),
        ("SignatureVersion", "SignatureVersion"),
        ("Signature", "Signature"),
        ("SigningCertUrl", "SigningCertURL"),
        ("UnsubscribeUrl", "UnsubscribeURL"),
    ] {
        sns.insert(k.to_owned(), get(from));
    }
    sns.insert(
        "MessageAttributes".into(),
        envelope
            .get("MessageAttributes")
            .cloned()
            .unwrap_or_else(|| json!({})),
    );
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": Value::Object(sns),
    }]})
    .to_string()
}

// ---------------------------------------------------------------------------------------
// Attempts, timeouts and retries
// ---------------------------------------------------------------------------------------

/// What `next` hands a runtime.
struct Next {
    request_id: String,
    payload: String,
    deadline_ms: u64,
    arn: String,
    trace_id: String,
}

/// Starts the oldest pending invocation of `rt`'s function, if any; with none pending, a
/// batch from its SQS event source, if it has messages.
fn take_next(world: &mut World, rt: &Rt) -> Result<Option<Next>, RuntimeError> {
    poll_sqs_source(world, rt)?;
    let now = world.now;
    let f = function_mut(world, rt)?;
    let timeout_ms = f.timeout_secs * 1000;
    while let Some(id) = f.queue.pop_front() {
        let Some(inv) = f
            .invocations
            .iter_mut()
            .find(|i| i.request_id == id && i.status == Status::Pending)
        else {
            continue;
        };
        inv.status = Status::InFlight;
        inv.attempts += 1;
        inv.deadline = Some(now + timeout_ms);
        let next = Next {
            request_id: id.clone(),
            payload: inv.payload.clone(),
            deadline_ms: real_now_ms() + timeout_ms,
            arn: f.arn.clone(),
            trace_id: inv.trace_id.clone(),
        };
        let attempt = inv.attempts;
        let name = f.name.clone();
        world.schedule(
            now + timeout_ms,
            &rt.region,
            WorldTimer::Lambda(Timer::Timeout {
                function: name,
                request_id: id,
                attempt,
            }),
        );
        return Ok(Some(next));
    }
    Ok(None)
}

/// Receives a batch for the function's SQS event source when nothing else is pending and
/// no batch is in flight, and queues it as an invocation.
fn poll_sqs_source(world: &mut World, rt: &Rt) -> Result<(), RuntimeError> {
    let f = function_mut(world, rt)?;
    let Some(src) = f.sqs_source.as_ref() else {
        return Ok(());
    };
    if !f.queue.is_empty() || src.batch.is_some() {
        return Ok(());
    }
    let (queue, max) = (src.queue.clone(), src.batch_size);
    let (key, queue_arn) = (src.access_key_id.clone(), src.queue_arn.clone());
    // Polling needs the role's sqs:ReceiveMessage and sqs:GetQueueAttributes, as on AWS.
    if let Some(key) = &key
        && let Some(sb) = rt.sb.upgrade()
    {
        let now = world.now;
        let mut iam = sb.iam();
        let allowed = ["GetQueueAttributes", "ReceiveMessage"].iter().all(|op| {
            let who =
                crate::iam::Caller::new(key, crate::protocol::Service::Sqs, op, &rt.region, now);
            iam.authorize_internal(&who, &queue_arn)
        });
        if !allowed {
            return Ok(());
        }
    }
    let records = match crate::sqs::receive_for_lambda(world, &rt.region, &queue, max) {
        Ok(r) => r,
        Err(e) => {
            // The queue was deleted: nothing to poll (as a mapping whose queue is gone).
            tracing::debug!(queue = %queue, error = %e.message, "SQS event source not polled");
            return Ok(());
        }
    };
    if records.is_empty() {
        return Ok(());
    }
    let batch: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["messageId"].as_str().unwrap_or_default().to_owned(),
                r["receiptHandle"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let payload = json!({ "Records": records }).to_string();
    match invoke(world, &rt.region, &rt.name, &payload, "sqs") {
        Ok(request_id) => {
            if let Some(src) = function_mut(world, rt)?.sqs_source.as_mut() {
                src.batch = Some((request_id, batch));
            }
        }
        Err(InvokeError::NoSuchFunction) => return Err(RuntimeError::Gone),
        Err(InvokeError::Refused(reason)) => {
            // Too large for one invocation: left for their visibility to end (and the
            // dead-letter queue), as a batch the function failed.
            tracing::warn!(queue = %queue, reason, "SQS batch not invoked");
        }
    }
    Ok(())
}

/// Ends the SQS batch of invocation `request_id`, if it is one: with the function's answer
/// deletes the messages that succeeded; without one (an error, a timeout) deletes none.
fn finish_sqs_batch(
    sandbox: Option<&Sandbox>,
    world: &mut World,
    region: &str,
    function: &str,
    request_id: &str,
    answer: Option<&str>,
) {
    let Some(f) = world.region(region).lambda.functions.get_mut(function) else {
        return;
    };
    let Some(src) = f.sqs_source.as_mut() else {
        return;
    };
    if src.batch.as_ref().map(|(id, _)| id.as_str()) != Some(request_id) {
        return;
    }
    let Some((_, batch)) = src.batch.take() else {
        return;
    };
    let keep = answer.and_then(|a| failed_items(a, &batch, src.report_batch_item_failures));
    let Some(keep) = keep else {
        src.failed_batches += 1;
        tracing::info!(queue = %src.queue, request_id, messages = batch.len(), "SQS batch failed; its messages return after their visibility timeout");
        f.notify.notify_waiters();
        return;
    };
    let queue = src.queue.clone();
    let (key, queue_arn) = (src.access_key_id.clone(), src.queue_arn.clone());
    let to_delete: Vec<&(String, String)> =
        batch.iter().filter(|(id, _)| !keep.contains(id)).collect();
    // Deleting needs the role's sqs:DeleteMessage (DeleteMessageBatch is authorized as it).
    if let Some(key) = &key
        && !to_delete.is_empty()
        && let Some(sb) = sandbox
        && !sb.iam().authorize_internal(
            &crate::iam::Caller::new(
                key,
                crate::protocol::Service::Sqs,
                "DeleteMessageBatch",
                region,
                world.now,
            ),
            &queue_arn,
        )
    {
        return;
    }
    let mut deleted = 0;
    for (_, handle) in to_delete {
        if crate::sqs::delete_for_lambda(world, region, &queue, handle).is_ok() {
            deleted += 1;
        }
    }
    if let Some(f) = world.region(region).lambda.functions.get_mut(function) {
        if let Some(src) = f.sqs_source.as_mut() {
            src.deleted += deleted;
        }
        f.notify.notify_waiters();
    }
}

/// The message ids of a batch the function's answer asks to keep: none without
/// `report_batch_item_failures`; else those of `batchItemFailures`. `None` when the answer
/// fails the whole batch (not JSON, or an item that is not in the batch).
fn failed_items(
    answer: &str,
    batch: &[(String, String)],
    report_batch_item_failures: bool,
) -> Option<Vec<String>> {
    if !report_batch_item_failures {
        return Some(Vec::new());
    }
    let trimmed = answer.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Some(Vec::new());
    }
    let v: Value = serde_json::from_str(trimmed).ok()?;
    let items = match v.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return None,
    };
    items
        .iter()
        .map(|i| {
            let id = i.get("itemIdentifier")?.as_str()?;
            batch.iter().any(|(m, _)| m == id).then(|| id.to_owned())
        })
        .collect()
}

/// Records the failure of the current attempt and schedules a retry, or fails the
/// invocation when no retry is left.
fn fail_attempt(
    world: &mut World,
    region: &str,
    function: &str,
    request_id: &str,
    error_type: &str,
    payload: String,
) {
    let now = world.now;
    let Some(f) = world.region(region).lambda.functions.get_mut(function) else {
        return;
    };
    let max_retries = f.max_retries;
    let arn = f.arn.clone();
    let Some(inv) = f
        .invocations
        .iter_mut()
        .find(|i| i.request_id == request_id)
    else {
        return;
    };
    inv.errors.push(AttemptError {
        attempt: inv.attempts,
        at: now,
        error_type: error_type.to_owned(),
        payload,
    });
    inv.deadline = None;
    let retries_done = inv.attempts.saturating_sub(1);
    if inv.retries && retries_done < max_retries {
        let delay = RETRY_DELAYS_SECS
            .get(retries_done as usize)
            .copied()
            .unwrap_or(RETRY_DELAYS_SECS[RETRY_DELAYS_SECS.len() - 1]);
        let at = now + delay * 1000;
        inv.status = Status::RetryScheduled;
        inv.retry_at = Some(at);
        tracing::info!(function = %arn, request_id, error_type, retry_in_secs = delay, "invocation failed; retry scheduled");
        world.schedule(
            at,
            region,
            WorldTimer::Lambda(Timer::Retry {
                function: function.to_owned(),
                request_id: request_id.to_owned(),
            }),
        );
    } else {
        inv.status = Status::Failed;
        inv.finished = Some(now);
        tracing::warn!(function = %arn, request_id, error_type, attempts = inv.attempts, "invocation failed; no retries left");
        prune(f);
        finish_sqs_batch(None, world, region, function, request_id, None);
    }
}

/// Forgets the oldest finished invocations beyond [`MAX_FINISHED`].
fn prune(f: &mut Function) {
    let finished = f.invocations.iter().filter(|i| i.status.finished()).count();
    if finished > MAX_FINISHED {
        let mut extra = finished - MAX_FINISHED;
        f.invocations.retain(|i| {
            if extra > 0 && i.status.finished() {
                extra -= 1;
                false
            } else {
                true
            }
        });
    }
}

pub(crate) fn on_timer(world: &mut World, region: &str, t: Timer) {
    match t {
        Timer::Timeout {
            function,
            request_id,
            attempt,
        } => {
            let Some(f) = world.region(region).lambda.functions.get(&function) else {
                return;
            };
            let timeout = f.timeout_secs;
            let current = f.invocations.iter().any(|i| {
                i.request_id == request_id && i.status == Status::InFlight && i.attempts == attempt
            });
            if current {
                let body = json!({
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": format!("Task timed out after {timeout}.00 seconds"),
                });
                fail_attempt(
                    world,
                    region,
                    &function,
                    &request_id,
                    "Sandbox.Timedout",
                    body.to_string(),
                );
            }
        }
        Timer::Retry {
            function,
            request_id,
        } => {
            let Some(f) = world.region(region).lambda.functions.get_mut(&function) else {
                return;
            };
            let Some(inv) = f
                .invocations
                .iter_mut()
                .find(|i| i.request_id == request_id && i.status == Status::RetryScheduled)
            else {
                return;
            };
            inv.status = Status::Pending;
            inv.retry_at = None;
            f.queue.push_back(request_id);
            f.notify.notify_waiters();
        }
    }
}

// ---------------------------------------------------------------------------------------
// What a Runtime API listener serves (the handlers are in `ops.rs`)
// ---------------------------------------------------------------------------------------

/// What a function's listener serves: the function `name` (with id `id`) of `region`.
#[derive(Clone)]
struct Rt {
    sb: Weak<Sandbox>,
    region: String,
    name: String,
    id: String,
}

#[derive(Debug)]
enum RuntimeError {
    /// The function was deleted (or the sandbox reset).
    Gone,
    BadRequest(&'static str, String),
}

impl RuntimeError {
    fn into_response(self) -> Response {
        match self {
            RuntimeError::Gone => runtime_json(
                StatusCode::GONE,
                json!({"errorType": "ResourceNotFoundException", "errorMessage": "The function no longer exists in the sandbox."}),
            ),
            RuntimeError::BadRequest(t, m) => runtime_json(
                StatusCode::BAD_REQUEST,
                json!({"errorType": t, "errorMessage": m}),
            ),
        }
    }
}

fn function_mut<'w>(world: &'w mut World, rt: &Rt) -> Result<&'w mut Function, RuntimeError> {
    world
        .region(&rt.region)
        .lambda
        .functions
        .get_mut(&rt.name)
        .filter(|f| f.id == rt.id)
        .ok_or(RuntimeError::Gone)
}

fn as_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}
