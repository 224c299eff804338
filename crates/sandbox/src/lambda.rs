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

/// Default function timeout, seconds (AWS's default).
pub const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// Longest function timeout, seconds (15 minutes).
pub const MAX_TIMEOUT_SECS: u64 = 900;
/// Default and largest number of retries of a failed asynchronous invocation.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Delay before the first and the second retry, seconds of virtual time.
pub const RETRY_DELAYS_SECS: [u64; 2] = [60, 120];
/// The memory size runtimes are told (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
pub const MEMORY_SIZE_MB: u32 = 128;
/// Largest asynchronous invocation payload, bytes (1 MB since 2025).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Largest body a runtime may post (a response or an error), bytes.
pub const MAX_RUNTIME_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Finished invocations kept per function (the oldest are forgotten first).
const MAX_FINISHED: usize = 1000;
/// Pending invocations per function before deliveries are refused.
const MAX_PENDING: usize = 100_000;

/// Lambda state of one region: its functions by name.
#[derive(Debug, Default)]
pub struct State {
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
pub enum Timer {
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
pub fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}")
}

/// (region, name) of a function ARN (a version or alias qualifier is accepted and ignored).
pub fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    let mut p = arn.split(':');
    let (a, _partition, svc, region, _account, kind, name) = (
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
    );
    let _qualifier = p.next();
    (a == "arn" && svc == "lambda" && kind == "function" && valid_name(name) && p.next().is_none())
        .then_some((region, name))
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
pub fn invoke_by_arn(
    world: &mut World,
    region: &str,
    arn: &str,
    payload: &str,
    source: &str,
) -> Result<String, DeliveryError> {
    let Some((arn_region, name)) = parse_arn(arn) else {
        return Err(DeliveryError::NoSuchTarget(arn.to_owned()));
    };
    let region = if arn_region.is_empty() {
        region
    } else {
        arn_region
    };
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
pub fn sns_event(envelope: &Value, subscription_arn: &str) -> String {
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

pub fn on_timer(world: &mut World, region: &str, t: Timer) {
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
// The Runtime API (one listener per function)
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

fn runtime_json(status: StatusCode, v: Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn accepted() -> Response {
    runtime_json(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

fn runtime_router(rt: Rt) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(|req: axum::extract::Request| async move {
            runtime_json(
                StatusCode::NOT_FOUND,
                json!({"errorType": "NotFound", "errorMessage": format!("The sandbox's Runtime API has no {} {}", req.method(), req.uri().path())}),
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RUNTIME_BODY_BYTES))
        .with_state(rt)
}

/// `GET /2018-06-01/runtime/invocation/next`: waits for an invocation (as long as it
/// takes, like the real API), never holding the world lock while waiting.
async fn next(AxState(rt): AxState<Rt>) -> Response {
    loop {
        let notify = {
            let Some(sb) = rt.sb.upgrade() else {
                return RuntimeError::Gone.into_response();
            };
            let mut w = sb.lock();
            let (notify, queue) = match function_mut(&mut w, &rt) {
                Ok(f) => (
                    f.notify.clone(),
                    f.sqs_source.as_ref().map(|s| s.queue.clone()),
                ),
                Err(e) => return e.into_response(),
            };
            // A message sent to the event source's queue (or visible again) wakes the poll.
            let queue_notify = queue
                .and_then(|q| crate::sqs::queue_notify(&mut w, &rt.region, &q))
                .unwrap_or_else(|| Arc::new(Notify::new()));
            (notify, queue_notify)
        };
        let (notify, queue_notify) = notify;
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let queue_notified = queue_notify.notified();
        tokio::pin!(queue_notified);
        queue_notified.as_mut().enable();
        let got = {
            let Some(sb) = rt.sb.upgrade() else {
                return RuntimeError::Gone.into_response();
            };
            let r = take_next(&mut sb.lock(), &rt);
            sb.poke();
            r
        };
        match got {
            Ok(Some(n)) => return next_response(n),
            Ok(None) => {}
            Err(e) => return e.into_response(),
        }
        tokio::select! {
            () = &mut notified => {}
            () = &mut queue_notified => {}
        }
    }
}

fn next_response(n: Next) -> Response {
    let mut r = Response::new(Body::from(n.payload));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (k, v) in [
        ("lambda-runtime-aws-request-id", n.request_id),
        ("lambda-runtime-deadline-ms", n.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", n.arn),
        ("lambda-runtime-trace-id", n.trace_id),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    r
}

/// The in-flight invocation `id` of `rt`'s function, or the Runtime API's error.
fn in_flight<'w>(
    world: &'w mut World,
    rt: &Rt,
    id: &str,
) -> Result<&'w mut Invocation, RuntimeError> {
    let f = function_mut(world, rt)?;
    let inv = f
        .invocations
        .iter_mut()
        .find(|i| i.request_id == id)
        .ok_or_else(|| {
            RuntimeError::BadRequest("InvalidRequestID", format!("Invalid request ID: {id}"))
        })?;
    if inv.status != Status::InFlight {
        return Err(RuntimeError::BadRequest(
            "InvalidStateTransition",
            format!(
                "Invocation {id} is {}, not in flight: it was already answered or timed out",
                inv.status.as_str()
            ),
        ));
    }
    Ok(inv)
}

async fn invocation_response(
    AxState(rt): AxState<Rt>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(sb) = rt.sb.upgrade() else {
        return RuntimeError::Gone.into_response();
    };
    let mut w = sb.lock();
    let now = w.now;
    let r = in_flight(&mut w, &rt, &id).map(|inv| {
        inv.status = Status::Succeeded;
        inv.finished = Some(now);
        inv.deadline = None;
        inv.response = Some(String::from_utf8_lossy(&body).into_owned());
    });
    match r {
        Ok(()) => {
            if let Ok(f) = function_mut(&mut w, &rt) {
                tracing::debug!(function = %f.arn, request_id = %id, "invocation succeeded");
                prune(f);
            }
            let answer = String::from_utf8_lossy(&body);
            finish_sqs_batch(Some(&sb), &mut w, &rt.region, &rt.name, &id, Some(&answer));
            drop(w);
            sb.poke();
            accepted()
        }
        Err(e) => e.into_response(),
    }
}

async fn invocation_error(
    AxState(rt): AxState<Rt>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(sb) = rt.sb.upgrade() else {
        return RuntimeError::Gone.into_response();
    };
    let mut w = sb.lock();
    if let Err(e) = in_flight(&mut w, &rt, &id) {
        return e.into_response();
    }
    let payload = String::from_utf8_lossy(&body).into_owned();
    let error_type = error_type(&headers, &payload);
    fail_attempt(&mut w, &rt.region, &rt.name, &id, &error_type, payload);
    drop(w);
    sb.poke();
    accepted()
}

/// The error's type: `Lambda-Runtime-Function-Error-Type`, else the body's `errorType`.
fn error_type(headers: &HeaderMap, payload: &str) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            serde_json::from_str::<Value>(payload)
                .ok()?
                .get("errorType")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".to_owned())
}

async fn init_error(AxState(rt): AxState<Rt>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(sb) = rt.sb.upgrade() else {
        return RuntimeError::Gone.into_response();
    };
    let mut w = sb.lock();
    let now = w.now;
    let payload = String::from_utf8_lossy(&body).into_owned();
    let error_type = error_type(&headers, &payload);
    match function_mut(&mut w, &rt) {
        Ok(f) => {
            tracing::warn!(function = %f.arn, error_type = %error_type, "runtime init error");
            if f.init_errors.len() >= 100 {
                f.init_errors.remove(0);
            }
            f.init_errors.push(json!({
                "time": iso_millis(now),
                "errorType": error_type,
                "payload": as_json(&payload),
            }));
            accepted()
        }
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// The control API
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFunction {
    #[serde(default)]
    region: Option<String>,
    name: String,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    max_retries: Option<u32>,
    /// Where the Runtime API listens (default `127.0.0.1:0`, an ephemeral loopback port).
    #[serde(default)]
    runtime_listen: Option<SocketAddr>,
    #[serde(default)]
    sqs_event_source: Option<SqsSourceSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqsSourceSpec {
    /// The queue's name, URL or ARN (in the function's region).
    queue: String,
    #[serde(default)]
    batch_size: Option<usize>,
    #[serde(default)]
    report_batch_item_failures: bool,
    #[serde(default)]
    access_key_id: Option<String>,
}

/// Largest (and default) batch of an SQS event source.
pub const MAX_SQS_BATCH: usize = 10;

type ControlResult = Result<Value, (u16, String)>;

/// `/_sandbox/lambda/…`:
///
/// | method | route | |
/// |---|---|---|
/// | POST | `/lambda/functions` | create a function (starts its Runtime API listener) |
/// | GET | `/lambda/functions` | every function with its invocations |
/// | GET | `/lambda/functions/<name or ARN>` | one function with its invocations |
/// | DELETE | `/lambda/functions/<name or ARN>` | delete it (stops its listener) |
/// | POST | `/lambda/functions/<name or ARN>/invocations` | queue an invocation with the body as payload |
pub fn control(
    sb: &Arc<Sandbox>,
    method: &http::Method,
    route: &str,
    body: &[u8],
) -> ControlResult {
    let rest = route.strip_prefix("/lambda/functions").unwrap_or("");
    if !route.starts_with("/lambda/functions") {
        return Err((
            404,
            format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
        ));
    }
    let rest = rest.trim_start_matches('/');
    let (target, sub) = match rest.split_once('/') {
        Some((t, s)) => (t, Some(s)),
        None => (rest, None),
    };
    match (method.clone(), target, sub) {
        (http::Method::POST, "", None) => create(sb, body),
        (http::Method::GET, "", None) => {
            let w = sb.lock();
            let now = w.now;
            let functions: Vec<Value> = w
                .regions
                .iter()
                .flat_map(|(r, reg)| {
                    reg.lambda
                        .functions
                        .values()
                        .map(move |f| function_json(r, f, now))
                })
                .collect();
            Ok(json!({ "functions": functions }))
        }
        (http::Method::GET, t, None) => {
            let mut w = sb.lock();
            let now = w.now;
            let (region, name) = locate(&mut w, t)?;
            let f = w
                .region(&region)
                .lambda
                .functions
                .get(&name)
                .ok_or_else(|| not_found(t))?;
            Ok(function_json(&region, f, now))
        }
        (http::Method::DELETE, t, None) => {
            let mut w = sb.lock();
            let (region, name) = locate(&mut w, t)?;
            w.region(&region).lambda.functions.remove(&name);
            Ok(json!({"deleted": function_arn(&region, &name)}))
        }
        (http::Method::POST, t, Some("invocations")) => {
            let payload = std::str::from_utf8(body)
                .map_err(|_| (400, "the payload must be UTF-8 JSON".to_owned()))?;
            if serde_json::from_str::<Value>(payload).is_err() {
                return Err((400, "the payload must be a JSON document".to_owned()));
            }
            let mut w = sb.lock();
            let (region, name) = locate(&mut w, t)?;
            let id = invoke(&mut w, &region, &name, payload, "control").map_err(|e| match e {
                InvokeError::NoSuchFunction => not_found(t),
                InvokeError::Refused(m) => (400, m),
            })?;
            drop(w);
            sb.poke();
            Ok(json!({"RequestId": id, "StatusCode": 202}))
        }
        _ => Err((
            404,
            format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
        )),
    }
}

fn not_found(what: &str) -> (u16, String) {
    (404, format!("Function not found: {what}"))
}

/// (region, name) of a function named by ARN, or by name in whichever region has it
/// (the default region first).
fn locate(w: &mut World, target: &str) -> Result<(String, String), (u16, String)> {
    if let Some((region, name)) = parse_arn(target) {
        return Ok((region.to_owned(), name.to_owned()));
    }
    if !valid_name(target) {
        return Err((
            400,
            format!("{target:?} is neither a function name nor a function ARN"),
        ));
    }
    if w.regions
        .get(DEFAULT_REGION)
        .is_some_and(|r| r.lambda.functions.contains_key(target))
    {
        return Ok((DEFAULT_REGION.to_owned(), target.to_owned()));
    }
    w.regions
        .iter()
        .find(|(_, r)| r.lambda.functions.contains_key(target))
        .map(|(region, _)| (region.clone(), target.to_owned()))
        .ok_or_else(|| not_found(target))
}

fn create(sb: &Arc<Sandbox>, body: &[u8]) -> ControlResult {
    let c: CreateFunction =
        serde_json::from_slice(body).map_err(|e| (400, format!("invalid JSON body: {e}")))?;
    let region = c.region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
    if region.is_empty()
        || region.len() > 64
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err((400, format!("invalid region {region:?}")));
    }
    if !valid_name(&c.name) {
        return Err((
            400,
            format!(
                "invalid function name {:?}: 1 to 64 letters, digits, hyphens and underscores",
                c.name
            ),
        ));
    }
    let timeout_secs = c.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=MAX_TIMEOUT_SECS).contains(&timeout_secs) {
        return Err((
            400,
            format!("timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}, got {timeout_secs}"),
        ));
    }
    let max_retries = c.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
    if max_retries > DEFAULT_MAX_RETRIES {
        return Err((
            400,
            format!("max_retries must be between 0 and {DEFAULT_MAX_RETRIES}, got {max_retries}"),
        ));
    }
    if sb
        .lock()
        .region(&region)
        .lambda
        .functions
        .contains_key(&c.name)
    {
        return Err((
            409,
            format!(
                "ResourceConflictException: Function already exist: {}",
                c.name
            ),
        ));
    }
    let sqs_source = match c.sqs_event_source {
        None => None,
        Some(spec) => Some(sqs_source(sb, &region, spec)?),
    };
    let listen = c
        .runtime_listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let std_listener = std::net::TcpListener::bind(listen).map_err(|e| {
        (
            400,
            format!("cannot listen on {listen} for the Runtime API: {e}"),
        )
    })?;
    let runtime_api = std_listener
        .local_addr()
        .map_err(|e| (500, format!("Runtime API listener: {e}")))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| (500, format!("Runtime API listener: {e}")))?;
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .map_err(|e| (500, format!("Runtime API listener: {e}")))?;
    let id = ids::uuid();
    let rt = Rt {
        sb: Arc::downgrade(sb),
        region: region.clone(),
        name: c.name.clone(),
        id: id.clone(),
    };
    let app = runtime_router(rt);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "Lambda Runtime API listener stopped");
        }
    });
    let mut w = sb.lock();
    let now = w.now;
    let functions = &mut w.region(&region).lambda.functions;
    if functions.contains_key(&c.name) {
        // Created concurrently: keep the first (dropping this one stops its listener).
        server.abort();
        return Err((
            409,
            format!(
                "ResourceConflictException: Function already exist: {}",
                c.name
            ),
        ));
    }
    let f = Function {
        id,
        name: c.name.clone(),
        arn: function_arn(&region, &c.name),
        timeout_secs,
        max_retries,
        runtime_api,
        created: now,
        notify: Arc::new(Notify::new()),
        queue: VecDeque::new(),
        invocations: Vec::new(),
        init_errors: Vec::new(),
        sqs_source,
        server,
    };
    tracing::info!(function = %f.arn, runtime_api = %runtime_api, "Lambda function created");
    let v = function_json(&region, &f, now);
    functions.insert(c.name, f);
    Ok(v)
}

/// Checks an `sqs_event_source`: the queue exists in the function's region, the batch
/// size is 1 to [`MAX_SQS_BATCH`].
fn sqs_source(
    sb: &Arc<Sandbox>,
    region: &str,
    spec: SqsSourceSpec,
) -> Result<SqsSource, (u16, String)> {
    let q = spec.queue.trim();
    let (q_region, name) = match crate::sqs::parse_arn(q) {
        Some((r, n)) => (r.to_owned(), n.to_owned()),
        None => (
            region.to_owned(),
            crate::sqs::name_from_url(q).unwrap_or_default().to_owned(),
        ),
    };
    if !q_region.is_empty() && q_region != region {
        return Err((
            400,
            format!("sqs_event_source.queue {q:?} is in {q_region}; the function is in {region}"),
        ));
    }
    if name.is_empty() || !crate::sqs::queue_exists(&mut sb.lock(), region, &name) {
        return Err((
            400,
            format!("sqs_event_source.queue {q:?}: no such queue in {region}"),
        ));
    }
    let batch_size = spec.batch_size.unwrap_or(MAX_SQS_BATCH);
    if !(1..=MAX_SQS_BATCH).contains(&batch_size) {
        return Err((
            400,
            format!(
                "sqs_event_source.batch_size must be between 1 and {MAX_SQS_BATCH}, got {batch_size}"
            ),
        ));
    }
    Ok(SqsSource {
        queue_arn: format!("arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"),
        queue: name,
        batch_size,
        report_batch_item_failures: spec.report_batch_item_failures,
        access_key_id: spec.access_key_id,
        batch: None,
        deleted: 0,
        failed_batches: 0,
    })
}

fn as_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

/// The environment a runtime process serving `f` needs (`lambda_runtime`'s
/// `Config::from_env` requires the first four).
fn runtime_env(region: &str, f: &Function) -> Value {
    json!({
        "AWS_LAMBDA_RUNTIME_API": f.runtime_api.to_string(),
        "AWS_LAMBDA_FUNCTION_NAME": f.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": MEMORY_SIZE_MB.to_string(),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": format!("/aws/lambda/{}", f.name),
        "AWS_LAMBDA_LOG_STREAM_NAME": "sandbox",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    })
}

fn invocation_json(i: &Invocation) -> Value {
    let mut v = json!({
        "RequestId": i.request_id,
        "source": i.source,
        "status": i.status.as_str(),
        "attempts": i.attempts,
        "enqueued": iso_millis(i.enqueued),
        "payload": as_json(&i.payload),
        "errors": i.errors.iter().map(|e| json!({
            "attempt": e.attempt,
            "time": iso_millis(e.at),
            "errorType": e.error_type,
            "payload": as_json(&e.payload),
        })).collect::<Vec<_>>(),
        "trace_id": i.trace_id,
    });
    if let Some(d) = i.deadline {
        v["deadline"] = json!(iso_millis(d));
    }
    if let Some(r) = i.retry_at {
        v["retry_at"] = json!(iso_millis(r));
    }
    if let Some(f) = i.finished {
        v["finished"] = json!(iso_millis(f));
    }
    if let Some(r) = &i.response {
        v["response"] = as_json(r);
    }
    v
}

fn function_json(region: &str, f: &Function, _now: Millis) -> Value {
    let count = |s: Status| f.invocations.iter().filter(|i| i.status == s).count();
    json!({
        "FunctionName": f.name,
        "FunctionArn": f.arn,
        "region": region,
        "runtime_api": f.runtime_api.to_string(),
        "timeout_secs": f.timeout_secs,
        "max_retries": f.max_retries,
        "created": iso_millis(f.created),
        "env": runtime_env(region, f),
        "counts": {
            "pending": count(Status::Pending),
            "in_flight": count(Status::InFlight),
            "retry_scheduled": count(Status::RetryScheduled),
            "succeeded": count(Status::Succeeded),
            "failed": count(Status::Failed),
        },
        "invocations": f.invocations.iter().map(invocation_json).collect::<Vec<_>>(),
        "init_errors": f.init_errors,
        "sqs_event_source": f.sqs_source.as_ref().map(|s| json!({
            "queue_arn": s.queue_arn,
            "batch_size": s.batch_size,
            "report_batch_item_failures": s.report_batch_item_failures,
            "batch_in_flight": s.batch.as_ref().map(|(id, msgs)| json!({
                "RequestId": id,
                "messages": msgs.len(),
            })),
            "deleted": s.deleted,
            "failed_batches": s.failed_batches,
        })),
    })
}

/// The control API's view of a region's functions (in `GET /_sandbox/state`): per name,
/// its ARN, Runtime API address and invocation counts.
pub fn state_json(region: &str, state: &State, now: Millis) -> Value {
    let m: serde_json::Map<String, Value> = state
        .functions
        .values()
        .map(|f| {
            let mut v = function_json(region, f, now);
            if let Value::Object(o) = &mut v {
                o.remove("invocations");
                o.remove("env");
            }
            (f.name.clone(), v)
        })
        .collect();
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    //! The Runtime API driven with plain HTTP against a sandbox on a manual clock.

    use std::time::Duration;

    use super::*;
    use crate::clock::ClockMode;
    use crate::{RunningSandbox, SandboxConfig};

    const FN_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:handler";
    /// A bound on waiting for an answer that is already due; never a pause.
    const BOUND: Duration = Duration::from_secs(10);

    struct T {
        sb: RunningSandbox,
        http: reqwest::Client,
    }

    impl T {
        async fn new() -> T {
            let sb = crate::start(SandboxConfig {
                listen: "127.0.0.1:0".parse().expect("addr"),
                clock: ClockMode::Manual,
                ..Default::default()
            })
            .await
            .expect("start");
            T {
                sb,
                http: reqwest::Client::new(),
            }
        }

        async fn control(
            &self,
            method: reqwest::Method,
            path: &str,
            body: Option<Value>,
        ) -> (u16, Value) {
            let mut r = self
                .http
                .request(method, format!("{}/_sandbox/{path}", self.sb.endpoint()));
            if let Some(b) = body {
                r = r.json(&b);
            }
            let resp = r.send().await.expect("control");
            let status = resp.status().as_u16();
            (status, resp.json().await.expect("control json"))
        }

        /// Creates `handler` and answers its `runtime_api`.
        async fn function(&self, extra: Value) -> String {
            let mut body = json!({"name": "handler"});
            if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
                b.extend(e);
            }
            let (status, v) = self
                .control(reqwest::Method::POST, "lambda/functions", Some(body))
                .await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["FunctionArn"], FN_ARN);
            assert_eq!(v["env"]["AWS_LAMBDA_FUNCTION_NAME"], "handler");
            v["runtime_api"].as_str().expect("runtime_api").to_owned()
        }

        async fn view(&self) -> Value {
            self.control(reqwest::Method::GET, "lambda/functions/handler", None)
                .await
                .1
        }

        async fn advance(&self, seconds: f64) {
            let (s, v) = self
                .control(
                    reqwest::Method::POST,
                    "clock/advance",
                    Some(json!({"seconds": seconds})),
                )
                .await;
            assert_eq!(s, 200, "{v}");
        }

        async fn json_call(&self, target: &str, body: Value) -> Value {
            let r = self
                .http
                .post(self.sb.endpoint())
                .header("x-amz-target", target)
                .header("content-type", "application/x-amz-json-1.1")
                .body(body.to_string())
                .send()
                .await
                .expect("json call");
            assert!(r.status().is_success(), "{target}: {}", r.status());
            r.json().await.expect("json answer")
        }

        /// `ApproximateNumberOfMessages` of the queue at `url`.
        async fn visible(&self, url: &str) -> String {
            let attrs = self
                .json_call(
                    "AmazonSQS.GetQueueAttributes",
                    json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]}),
                )
                .await;
            attrs["Attributes"]["ApproximateNumberOfMessages"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }

        async fn query(&self, form: &[(&str, &str)]) -> String {
            let r = self
                .http
                .post(self.sb.endpoint())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(form)
                        .finish(),
                )
                .send()
                .await
                .expect("query call");
            let ok = r.status().is_success();
            let text = r.text().await.expect("text");
            assert!(ok, "{form:?}: {text}");
            text
        }
    }

    /// `GET …/invocation/next`: (request id, headers, payload).
    async fn next(
        http: &reqwest::Client,
        api: &str,
    ) -> (String, reqwest::header::HeaderMap, Value) {
        let r = tokio::time::timeout(
            BOUND,
            http.get(format!("http://{api}/2018-06-01/runtime/invocation/next"))
                .send(),
        )
        .await
        .expect("next answered")
        .expect("next");
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        let id = h["lambda-runtime-aws-request-id"]
            .to_str()
            .expect("id")
            .to_owned();
        (id, h, r.json().await.expect("payload"))
    }

    async fn post(http: &reqwest::Client, api: &str, path: &str, body: Value) -> u16 {
        http.post(format!("http://{api}/2018-06-01/runtime/{path}"))
            .header("lambda-runtime-function-error-type", "Handler.Oops")
            .json(&body)
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn eventbridge_rule_invokes_the_function_and_records_the_response() {
        let t = T::new().await;
        let api = t.function(json!({"timeout_secs": 30})).await;
        t.json_call(
            "AWSEvents.PutRule",
            json!({"Name": "lc", "EventPattern": r#"{"source":["aws.autoscaling"]}"#}),
        )
        .await;
        let r = t
            .json_call(
                "AWSEvents.PutTargets",
                json!({"Rule": "lc", "Targets": [{"Id": "f", "Arn": FN_ARN}]}),
            )
            .await;
        assert_eq!(r["FailedEntryCount"], 0);

        // The poll starts first and is woken by the event.
        let http = t.http.clone();
        let api2 = api.clone();
        let poll = tokio::spawn(async move { next(&http, &api2).await });
        t.json_call(
            "AWSEvents.PutEvents",
            json!({"Entries": [{"Source": "aws.autoscaling", "DetailType": "EC2 Instance-launch Lifecycle Action", "Detail": "{\"AutoScalingGroupName\":\"web\"}"}]}),
        )
        .await;
        let (id, h, event) = poll.await.expect("poll task");
        assert_eq!(event["detail-type"], "EC2 Instance-launch Lifecycle Action");
        assert_eq!(event["detail"]["AutoScalingGroupName"], "web");
        assert!(event.get("Records").is_none());
        assert_eq!(h["lambda-runtime-invoked-function-arn"], FN_ARN);
        assert!(
            h["lambda-runtime-trace-id"]
                .to_str()
                .expect("trace")
                .starts_with("Root=1-")
        );
        let deadline: u64 = h["lambda-runtime-deadline-ms"]
            .to_str()
            .expect("deadline")
            .parse()
            .expect("number");
        let now = real_now_ms();
        assert!(
            deadline > now + 20_000 && deadline <= now + 30_000,
            "{deadline} vs {now}"
        );
        assert_eq!(t.view().await["counts"]["in_flight"], 1);

        let s = post(
            &t.http,
            &api,
            &format!("invocation/{id}/response"),
            json!({"ok": true}),
        )
        .await;
        assert_eq!(s, 202);
        let v = t.view().await;
        let inv = &v["invocations"][0];
        assert_eq!(inv["status"], "succeeded", "{v}");
        assert_eq!(inv["source"], "events");
        assert_eq!(inv["response"], json!({"ok": true}));
        assert_eq!(inv["attempts"], 1);
        // Answering twice, or an unknown id, is refused.
        assert_eq!(
            post(
                &t.http,
                &api,
                &format!("invocation/{id}/response"),
                json!({})
            )
            .await,
            400
        );
        assert_eq!(
            post(&t.http, &api, "invocation/nope/error", json!({})).await,
            400
        );
    }

    #[tokio::test]
    async fn errors_are_retried_twice_then_the_invocation_fails() {
        let t = T::new().await;
        let api = t.function(json!({})).await;
        let (s, v) = t
            .control(
                reqwest::Method::POST,
                "lambda/functions/handler/invocations",
                Some(json!({"n": 1})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let rid = v["RequestId"].as_str().expect("id").to_owned();

        let (id, _, payload) = next(&t.http, &api).await;
        assert_eq!((id.as_str(), &payload), (rid.as_str(), &json!({"n": 1})));
        let err = json!({"errorType": "Handler.Oops", "errorMessage": "first"});
        assert_eq!(
            post(&t.http, &api, &format!("invocation/{id}/error"), err).await,
            202
        );
        let v = t.view().await;
        assert_eq!(v["invocations"][0]["status"], "retry_scheduled", "{v}");
        assert_eq!(
            v["invocations"][0]["errors"][0]["errorType"],
            "Handler.Oops"
        );
        assert_eq!(
            v["invocations"][0]["errors"][0]["payload"]["errorMessage"],
            "first"
        );

        // Nothing is handed out before the retry delay has passed on the virtual clock.
        t.advance(59.0).await;
        assert_eq!(t.view().await["counts"]["pending"], 0);
        t.advance(1.0).await;
        let (id2, _, _) = next(&t.http, &api).await;
        assert_eq!(id2, rid, "a retry keeps the request id");
        let err = json!({"errorType": "Handler.Oops", "errorMessage": "second"});
        assert_eq!(
            post(&t.http, &api, &format!("invocation/{id}/error"), err).await,
            202
        );

        t.advance(120.0).await;
        let (id3, _, _) = next(&t.http, &api).await;
        assert_eq!(id3, rid);
        // The third attempt times out (default timeout 3 s).
        t.advance(3.0).await;
        let v = t.view().await;
        let inv = &v["invocations"][0];
        assert_eq!(inv["status"], "failed", "{v}");
        assert_eq!(inv["attempts"], 3);
        assert_eq!(inv["errors"].as_array().map(Vec::len), Some(3));
        assert_eq!(inv["errors"][2]["errorType"], "Sandbox.Timedout");
        assert_eq!(v["counts"]["failed"], 1);
        // A late answer to a timed-out attempt is refused.
        assert_eq!(
            post(
                &t.http,
                &api,
                &format!("invocation/{id}/response"),
                json!({})
            )
            .await,
            400
        );
        // No further retry.
        t.advance(600.0).await;
        assert_eq!(t.view().await["counts"]["pending"], 0);
    }

    #[tokio::test]
    async fn sns_subscription_gets_an_sns_shaped_record() {
        let t = T::new().await;
        let api = t.function(json!({})).await;
        let topic = "arn:aws:sns:us-east-1:000000000000:hooks";
        t.query(&[
            ("Action", "CreateTopic"),
            ("Version", "2010-03-31"),
            ("Name", "hooks"),
        ])
        .await;
        let sub = t
            .query(&[
                ("Action", "Subscribe"),
                ("Version", "2010-03-31"),
                ("TopicArn", topic),
                ("Protocol", "lambda"),
                ("Endpoint", FN_ARN),
            ])
            .await;
        t.query(&[
            ("Action", "Publish"),
            ("Version", "2010-03-31"),
            ("TopicArn", topic),
            ("Subject", "hello subject"),
            ("Message", "{\"k\":\"v\"}"),
        ])
        .await;
        let (id, _, event) = next(&t.http, &api).await;
        let rec = &event["Records"][0];
        assert_eq!(rec["EventSource"], "aws:sns");
        assert_eq!(rec["EventVersion"], "1.0");
        let sub_arn = rec["EventSubscriptionArn"].as_str().expect("sub arn");
        assert!(sub.contains(sub_arn), "{sub} / {sub_arn}");
        let sns = &rec["Sns"];
        assert_eq!(sns["Type"], "Notification");
        assert_eq!(sns["TopicArn"], topic);
        assert_eq!(sns["Subject"], "hello subject");
        assert_eq!(sns["Message"], "{\"k\":\"v\"}");
        assert_eq!(sns["SignatureVersion"], "1");
        assert_eq!(sns["MessageAttributes"], json!({}));
        assert!(sns["SigningCertUrl"].is_string() && sns["UnsubscribeUrl"].is_string());
        assert!(sns.get("SigningCertURL").is_none());
        assert_eq!(
            post(
                &t.http,
                &api,
                &format!("invocation/{id}/response"),
                json!(null)
            )
            .await,
            202
        );
        assert_eq!(t.view().await["invocations"][0]["source"], "sns");
    }

    #[tokio::test]
    async fn a_hook_targeting_a_function_invokes_it_with_the_lifecycle_message() {
        let t = T::new().await;
        let api = t.function(json!({})).await;
        t.query(&[
            ("Action", "CreateAutoScalingGroup"),
            ("Version", "2011-01-01"),
            ("AutoScalingGroupName", "web"),
            ("MinSize", "0"),
            ("MaxSize", "2"),
            ("DesiredCapacity", "0"),
            ("LaunchTemplate.LaunchTemplateName", "lt-web"),
            ("VPCZoneIdentifier", "subnet-a"),
        ])
        .await;
        t.query(&[
            ("Action", "PutLifecycleHook"),
            ("Version", "2011-01-01"),
            ("AutoScalingGroupName", "web"),
            ("LifecycleHookName", "boot"),
            ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
            ("NotificationTargetARN", FN_ARN),
            ("NotificationMetadata", "meta"),
        ])
        .await;
        // No test notification goes to a function.
        assert_eq!(t.view().await["invocations"], json!([]));
        t.query(&[
            ("Action", "SetDesiredCapacity"),
            ("Version", "2011-01-01"),
            ("AutoScalingGroupName", "web"),
            ("DesiredCapacity", "1"),
        ])
        .await;
        let (_, _, msg) = next(&t.http, &api).await;
        assert_eq!(msg["LifecycleHookName"], "boot");
        assert_eq!(msg["AutoScalingGroupName"], "web");
        assert_eq!(
            msg["LifecycleTransition"],
            "autoscaling:EC2_INSTANCE_LAUNCHING"
        );
        assert_eq!(msg["Service"], "AWS Auto Scaling");
        assert_eq!(msg["NotificationMetadata"], "meta");
        assert!(
            msg["LifecycleActionToken"]
                .as_str()
                .is_some_and(|s| s.len() == 36)
        );
        assert!(
            msg["EC2InstanceId"]
                .as_str()
                .is_some_and(|s| s.starts_with("i-"))
        );
        assert_eq!(t.view().await["invocations"][0]["source"], "autoscaling");
    }

    #[tokio::test]
    async fn an_sqs_event_source_hands_over_batches_and_deletes_what_succeeded() {
        let t = T::new().await;
        t.json_call("AmazonSQS.CreateQueue", json!({"QueueName": "dlq"}))
            .await;
        let redrive = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"2"}"#;
        let url = t
            .json_call(
                "AmazonSQS.CreateQueue",
                json!({"QueueName": "work", "Attributes": {"VisibilityTimeout": "30", "RedrivePolicy": redrive}}),
            )
            .await["QueueUrl"]
            .as_str()
            .expect("QueueUrl")
            .to_owned();
        for (spec, needle) in [
            (json!({"queue": "nope"}), "no such queue"),
            (json!({"queue": "work", "batch_size": 11}), "batch_size"),
            (
                json!({"queue": "arn:aws:sqs:eu-west-1:000000000000:work"}),
                "eu-west-1",
            ),
            (json!({"queue": "work", "bogus": 1}), "bogus"),
        ] {
            let (status, v) = t
                .control(
                    reqwest::Method::POST,
                    "lambda/functions",
                    Some(json!({"name": "bad", "sqs_event_source": spec})),
                )
                .await;
            assert_eq!(status, 400, "{spec}: {v}");
            assert!(v.to_string().contains(needle), "{v} should name {needle}");
        }
        let api = t
            .function(json!({"timeout_secs": 10, "sqs_event_source": {
                "queue": url, "batch_size": 2, "report_batch_item_failures": true}}))
            .await;
        for body in ["a", "b", "c"] {
            t.json_call(
                "AmazonSQS.SendMessage",
                json!({"QueueUrl": url, "MessageBody": body}),
            )
            .await;
        }
        let bodies = |ev: &Value| -> Vec<String> {
            let mut b: Vec<String> = ev["Records"]
                .as_array()
                .expect("Records")
                .iter()
                .map(|r| r["body"].as_str().expect("body").to_owned())
                .collect();
            b.sort();
            b
        };

        // Batch 1 (batch_size 2): "b" is reported failed, "a" is deleted.
        let (id1, _, ev) = next(&t.http, &api).await;
        assert_eq!(bodies(&ev), ["a", "b"]);
        let rec = &ev["Records"][0];
        assert_eq!(rec["eventSource"], "aws:sqs");
        assert_eq!(
            rec["eventSourceARN"],
            "arn:aws:sqs:us-east-1:000000000000:work"
        );
        assert_eq!(rec["awsRegion"], "us-east-1");
        assert_eq!(rec["attributes"]["ApproximateReceiveCount"], "1");
        assert!(rec["receiptHandle"].is_string() && rec["md5OfBody"].is_string());
        let b_id = ev["Records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["body"] == "b")
            .expect("b")["messageId"]
            .clone();
        let failures = json!({"batchItemFailures": [{"itemIdentifier": b_id}]});
        assert_eq!(
            post(
                &t.http,
                &api,
                &format!("invocation/{id1}/response"),
                failures
            )
            .await,
            202
        );
        // Batch 2: "c" alone ("b" is invisible for 30 s); an error deletes nothing.
        let (id2, _, ev) = next(&t.http, &api).await;
        assert_eq!(bodies(&ev), ["c"]);
        let oops = json!({"errorType": "Oops", "errorMessage": "no"});
        assert_eq!(
            post(&t.http, &api, &format!("invocation/{id2}/error"), oops).await,
            202
        );
        // Both come back once visible, received a second time; this batch times out.
        t.advance(31.0).await;
        let (id3, _, ev) = next(&t.http, &api).await;
        assert_eq!(bodies(&ev), ["b", "c"]);
        assert_eq!(
            ev["Records"][0]["attributes"]["ApproximateReceiveCount"],
            "2"
        );
        t.advance(11.0).await;
        let v = t.view().await;
        let status = |id: &str| {
            v["invocations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["RequestId"] == id)
                .map(|i| {
                    (
                        i["source"].clone(),
                        i["status"].clone(),
                        i["attempts"].clone(),
                    )
                })
        };
        assert_eq!(
            status(&id1),
            Some((json!("sqs"), json!("succeeded"), json!(1)))
        );
        assert_eq!(
            status(&id2),
            Some((json!("sqs"), json!("failed"), json!(1))),
            "no retry"
        );
        assert_eq!(
            status(&id3),
            Some((json!("sqs"), json!("failed"), json!(1)))
        );
        let src = &v["sqs_event_source"];
        assert_eq!(src["deleted"], 1, "{src}");
        assert_eq!(src["failed_batches"], 2, "{src}");
        assert_eq!(src["batch_in_flight"], Value::Null, "{src}");
        // Past maxReceiveCount (2) the next receive moves them to the dead-letter queue.
        t.advance(31.0).await;
        let got = t
            .json_call("AmazonSQS.ReceiveMessage", json!({"QueueUrl": url}))
            .await;
        assert!(
            got["Messages"].as_array().is_none_or(Vec::is_empty),
            "{got}"
        );
        assert_eq!(t.visible(&url.replace("/work", "/dlq")).await, "2");
    }

    #[tokio::test]
    async fn an_sqs_event_source_polls_only_what_its_role_allows() {
        let t = T::new().await;
        let url = t
            .json_call("AmazonSQS.CreateQueue", json!({"QueueName": "work"}))
            .await["QueueUrl"]
            .as_str()
            .expect("QueueUrl")
            .to_owned();
        let bind = |actions: Vec<&'static str>| {
            let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": actions, "Resource": "arn:aws:sqs:us-east-1:000000000000:work"}]});
            t.control(
                reqwest::Method::POST,
                "iam/policies",
                Some(json!({"access_key_id": "fn-role", "policy": doc})),
            )
        };
        let (status, v) = bind(vec!["sqs:GetQueueAttributes"]).await;
        assert_eq!(status, 200, "{v}");
        let api = t
            .function(json!({"sqs_event_source": {"queue": "work", "access_key_id": "fn-role"}}))
            .await;
        let send = |body: &'static str| {
            t.json_call(
                "AmazonSQS.SendMessage",
                json!({"QueueUrl": url, "MessageBody": body}),
            )
        };
        send("first").await;
        let http = t.http.clone();
        let api2 = api.clone();
        let poll = tokio::spawn(async move { next(&http, &api2).await });
        // Without sqs:ReceiveMessage the mapping is refused, as AWS would refuse the role.
        let started = tokio::time::Instant::now();
        loop {
            let (_, iam) = t.control(reqwest::Method::GET, "iam", None).await;
            let denied = iam["denials"].as_array().is_some_and(|d| {
                d.iter().any(|d| {
                    d["access_key_id"] == "fn-role"
                        && d["action"] == "sqs:ReceiveMessage"
                        && d["resource"] == "arn:aws:sqs:us-east-1:000000000000:work"
                })
            });
            if denied {
                break;
            }
            assert!(started.elapsed() < BOUND, "no denial recorded: {iam}");
            tokio::task::yield_now().await;
        }
        assert_eq!(t.visible(&url).await, "1", "not received");
        // Allowed, the waiting poll gets both messages once another one arrives.
        let (status, v) = bind(vec![
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
        ])
        .await;
        assert_eq!(status, 200, "{v}");
        send("second").await;
        let (id, _, ev) = poll.await.expect("poll");
        assert_eq!(ev["Records"].as_array().map(Vec::len), Some(2), "{ev}");
        assert_eq!(
            post(
                &t.http,
                &api,
                &format!("invocation/{id}/response"),
                json!({})
            )
            .await,
            202
        );
        let (_, iam) = t.control(reqwest::Method::GET, "iam", None).await;
        let used = &iam["allowed_actions"]["fn-role"];
        for a in [
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
        ] {
            assert!(
                used.as_array().is_some_and(|u| u.iter().any(|x| x == a)),
                "{a} not recorded as used: {iam}"
            );
        }
    }

    #[tokio::test]
    async fn control_api_refuses_bad_requests_and_delete_releases_polls() {
        let t = T::new().await;
        let api = t.function(json!({})).await;
        let post_fn =
            |body: Value| t.control(reqwest::Method::POST, "lambda/functions", Some(body));
        assert_eq!(post_fn(json!({"name": "handler"})).await.0, 409);
        assert_eq!(post_fn(json!({"name": "bad name"})).await.0, 400);
        assert_eq!(
            post_fn(json!({"name": "x", "timeout_secs": 0})).await.0,
            400
        );
        assert_eq!(post_fn(json!({"name": "x", "max_retries": 3})).await.0, 400);
        assert_eq!(post_fn(json!({"name": "x", "bogus": 1})).await.0, 400);
        assert_eq!(
            t.control(reqwest::Method::GET, "lambda/functions/nope", None)
                .await
                .0,
            404
        );
        let r = t
            .http
            .post(format!(
                "{}/_sandbox/lambda/functions/handler/invocations",
                t.sb.endpoint()
            ))
            .body("not json")
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 400);
        let r = t
            .http
            .get(format!("http://{api}/2018-06-01/runtime/nothing"))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 404);
        assert_eq!(
            post(
                &t.http,
                &api,
                "init/error",
                json!({"errorType": "Init", "errorMessage": "boom"})
            )
            .await,
            202
        );
        assert_eq!(
            t.view().await["init_errors"][0]["payload"]["errorMessage"],
            "boom"
        );

        // A waiting poll ends when its function is deleted.
        let http = t.http.clone();
        let api2 = api.clone();
        let poll = tokio::spawn(async move {
            http.get(format!("http://{api2}/2018-06-01/runtime/invocation/next"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        // Whether the poll is already waiting or arrives after the delete, it ends.
        tokio::task::yield_now().await;
        let (s, _) = t
            .control(reqwest::Method::DELETE, "lambda/functions/handler", None)
            .await;
        assert_eq!(s, 200);
        let status = tokio::time::timeout(BOUND, poll)
            .await
            .expect("poll ended")
            .expect("task");
        // 410 from the handler, or a closed connection once the listener is gone.
        assert!(matches!(status, Ok(410) | Err(_)), "{status:?}");
    }

    #[test]
    fn batch_answers_keep_the_listed_items_or_fail_the_whole_batch() {
        let batch = vec![
            ("m1".to_owned(), "h1".to_owned()),
            ("m2".to_owned(), "h2".to_owned()),
        ];
        let keep = |answer: &str, report: bool| failed_items(answer, &batch, report);
        // Without ReportBatchItemFailures any successful answer deletes everything.
        assert_eq!(keep("not json", false), Some(vec![]));
        assert_eq!(
            keep(r#"{"batchItemFailures":[{"itemIdentifier":"m1"}]}"#, false),
            Some(vec![])
        );
        // With it: nothing listed deletes everything; listed items stay.
        for nothing in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":null}"#,
            r#"{"batchItemFailures":[]}"#,
        ] {
            assert_eq!(keep(nothing, true), Some(vec![]), "{nothing:?}");
        }
        assert_eq!(
            keep(r#"{"batchItemFailures":[{"itemIdentifier":"m2"}]}"#, true),
            Some(vec!["m2".to_owned()])
        );
        // An answer that cannot be read, or names what the batch does not hold, fails it all.
        for bad in [
            "not json",
            r#"{"batchItemFailures":"m1"}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"m9"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{}]}"#,
        ] {
            assert_eq!(keep(bad, true), None, "{bad}");
        }
    }

    #[test]
    fn arns_and_sns_events() {
        assert_eq!(parse_arn(FN_ARN), Some(("us-east-1", "handler")));
        assert_eq!(
            parse_arn("arn:aws:lambda:eu-west-1:000000000000:function:f:$LATEST"),
            Some(("eu-west-1", "f"))
        );
        assert_eq!(parse_arn("arn:aws:sqs:us-east-1:000000000000:q"), None);
        assert_eq!(
            parse_arn("arn:aws:lambda:us-east-1:000000000000:function:"),
            None
        );
        let env = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "x",
            "Timestamp": "ts", "SignatureVersion": "1", "Signature": "s",
            "SigningCertURL": "c", "UnsubscribeURL": "u"});
        let e: Value = serde_json::from_str(&sns_event(&env, "sub")).expect("json");
        let sns = &e["Records"][0]["Sns"];
        assert_eq!(sns["Subject"], Value::Null);
        assert_eq!(
            (
                sns["SigningCertUrl"].as_str(),
                sns["UnsubscribeUrl"].as_str()
            ),
            (Some("c"), Some("u"))
        );
    }
}
