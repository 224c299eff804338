//! SQS in the sandbox: standard queues on the virtual clock.
//!
//! Both wire protocols reach one implementation: JSON 1.0 (`X-Amz-Target: AmazonSQS.<Op>`,
//! current SDKs) is handled directly; Query (`Action=<Op>&Version=2012-11-05`, older SDKs
//! and CLIs) is translated into the same JSON input, and the JSON output is rendered back
//! as Query XML.
//!
//! Visibility timeouts, delays and retention run on virtual time. Long polls wait on a
//! per-queue [`Notify`] that every send, and every message becoming visible (an
//! [`Timer::Visible`] timer), wakes.
//!
//! Layout: this file holds the queues, messages, timers and the operations other services
//! call; `ops.rs` the API operations and `handle`; `wire.rs` the Query translation. SQS
//! has no control routes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::clock::Millis;
use crate::protocol::json::JsonBody;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::protocol::{Input, Reply, RequestCtx};
use crate::world::{DeliveryError, Timer as WorldTimer, World};
use crate::{ACCOUNT_ID, Sandbox, ids};

mod ops;
#[cfg(test)]
mod tests;
mod wire;

pub(crate) use ops::handle;
pub(crate) use wire::{json_to_xml, query_to_json};

/// Default `VisibilityTimeout`, seconds.
pub(crate) const DEFAULT_VISIBILITY_TIMEOUT: u64 = 30;
/// Default `MessageRetentionPeriod`, seconds (4 days).
pub(crate) const DEFAULT_RETENTION: u64 = 345_600;
/// Default and largest `MaximumMessageSize`, bytes.
pub(crate) const MAX_MESSAGE_SIZE: u64 = 1_048_576;
/// The longest long poll, seconds.
pub(crate) const MAX_WAIT_SECONDS: i64 = 20;

/// SQS state of one region.
#[derive(Debug, Default)]
pub(crate) struct State {
    queues: BTreeMap<String, Queue>,
}

/// A message attribute (`MessageAttributes` of SendMessage, also SNS raw delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageAttr {
    pub(crate) data_type: String,
    pub(crate) string_value: Option<String>,
    pub(crate) binary_value: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RedrivePolicy {
    dead_letter_arn: String,
    max_receive_count: u32,
}

#[derive(Debug)]
struct Queue {
    name: String,
    created: Millis,
    modified: Millis,
    /// Every attribute as set (string values, as AWS keeps them).
    attrs: BTreeMap<String, String>,
    messages: VecDeque<Message>,
    /// No message expires before this (a lower bound of `expires_at`; `Millis::MAX` when
    /// there has been none), so `expire`, which runs on every access, scans the messages
    /// only when one can actually have expired.
    expiry_floor: Millis,
    notify: Arc<Notify>,
    tags: BTreeMap<String, String>,
    /// When the queue was last purged: AWS allows one `PurgeQueue` every 60 seconds.
    last_purge: Option<Millis>,
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    md5_body: String,
    attrs: BTreeMap<String, MessageAttr>,
    md5_attrs: Option<String>,
    /// The `AWSTraceHeader` system attribute (from `MessageSystemAttributes`, or the
    /// sender's `X-Amzn-Trace-Id` header).
    trace_header: Option<String>,
    /// `MessageGroupId` of a standard ("fair") queue's message, returned as a system
    /// attribute.
    group_id: Option<String>,
    /// The queue a dead-lettered message came from (`DeadLetterQueueSourceArn`).
    dlq_source_arn: Option<String>,
    sent: Millis,
    visible_at: Millis,
    expires_at: Millis,
    receive_count: u32,
    first_receive: Option<Millis>,
    /// The handle of the latest receive.
    receipt: Option<String>,
}

/// SQS timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A message of `queue` may have become visible (or a long poll reached its deadline):
    /// wake the queue's waiters.
    Wake { queue: String },
}

pub(crate) fn on_timer(world: &mut World, region: &str, t: Timer) {
    match t {
        Timer::Wake { queue } => {
            if let Some(q) = world.region(region).sqs.queues.get(&queue) {
                q.notify.notify_waiters();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

fn no_queue() -> AwsError {
    AwsError::new(
        400,
        "QueueDoesNotExist",
        "The specified queue does not exist.",
    )
    .with_query_code("AWS.SimpleQueueService.NonExistentQueue")
}

/// `InvalidParameterValue`: SQS's JSON protocol names it `InvalidParameterValueException` in
/// `__type` and keeps the Query code in `x-amzn-query-error`, as AWS answers (recorded
/// responses: `Code` `InvalidParameterValue`, `QueryErrorCode` `InvalidParameterValueException`).
fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterValueException", message)
        .with_query_code("InvalidParameterValue")
}

/// `Value {value} for parameter {name} is invalid. Reason: {why}`, AWS's wording.
fn invalid_param(name: &str, value: &str, why: &str) -> AwsError {
    invalid(format!(
        "Value {value} for parameter {name} is invalid. Reason: {why}"
    ))
}

/// `MissingParameter` (`MissingRequiredParameterException` in JSON `__type`).
fn missing(name: &str) -> AwsError {
    AwsError::new(
        400,
        "MissingRequiredParameterException",
        format!("The request must contain the parameter {name}."),
    )
    .with_query_code("MissingParameter")
}

fn bad_handle(h: &str) -> AwsError {
    AwsError::new(
        404,
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{h}\" is not a valid receipt handle."),
    )
}

/// A request signed for SQS that names no operation at all (e.g. a plain `GET` of a queue
/// URL): AWS answers 404 with the body `<UnknownOperationException/>`, whatever the client
/// accepts (recorded answers of LocalStack's AWS-validated Query API tests).
pub(crate) fn unknown_operation() -> AwsError {
    AwsError::new(
        404,
        "UnknownOperationException",
        "The request names no SQS operation.",
    )
}

pub(crate) fn is_unknown_operation(e: &AwsError) -> bool {
    e.status == 404 && e.code == "UnknownOperationException"
}

/// The answer to [`unknown_operation`], in SQS's shape for it.
pub(crate) fn unknown_operation_response(request_id: &str) -> axum::response::Response {
    let mut resp =
        axum::response::Response::new(axum::body::Body::from("<UnknownOperationException/>"));
    *resp.status_mut() = http::StatusCode::NOT_FOUND;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

fn invalid_attr_name(name: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidAttributeName",
        format!("Unknown Attribute {name}."),
    )
}

fn invalid_attr_value(name: &str, why: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidAttributeValue",
        format!("Invalid value for the parameter {name}. Reason: {why}"),
    )
}

// ---------------------------------------------------------------------------------------
// Names, URLs, ARNs
// ---------------------------------------------------------------------------------------

fn queue_url(host: &str, name: &str) -> String {
    format!("http://{host}/{ACCOUNT_ID}/{name}")
}

fn queue_arn(region: &str, name: &str) -> String {
    format!("arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}")
}

/// The queue name of a queue URL of any host (the last path segment), or a bare name.
pub(crate) fn name_from_url(url: &str) -> Option<&str> {
    let path = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let name = path.trim_end_matches('/').rsplit('/').next()?;
    (!name.is_empty() && !name.contains(':')).then_some(name)
}

/// (region, name) of `arn:aws:sqs:<region>:<account>:<name>`.
pub(crate) fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    crate::ids::split_arn(arn, "sqs").filter(|(_, name)| !name.is_empty())
}

fn valid_queue_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 80
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// ---------------------------------------------------------------------------------------
// MD5s, exactly as SQS computes them
// ---------------------------------------------------------------------------------------

fn md5_hex(bytes: &[u8]) -> String {
    let d = Md5::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `MD5OfMessageAttributes`: for each attribute in name order, the length-prefixed
/// (4-byte big-endian) name, data type, a transport byte (1 string, 2 binary) and the
/// length-prefixed value.
pub(crate) fn md5_of_attributes(attrs: &BTreeMap<String, MessageAttr>) -> String {
    let mut buf = Vec::new();
    let put = |buf: &mut Vec<u8>, b: &[u8]| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    for (name, a) in attrs {
        put(&mut buf, name.as_bytes());
        put(&mut buf, a.data_type.as_bytes());
        if let Some(b) = &a.binary_value {
            buf.push(2);
            put(&mut buf, b);
        } else {
            buf.push(1);
            put(&mut buf, a.string_value.as_deref().unwrap_or("").as_bytes());
        }
    }
    md5_hex(&buf)
}

// ---------------------------------------------------------------------------------------
// Queue attributes
// ---------------------------------------------------------------------------------------

const SETTABLE: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

const READ_ONLY: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

fn check_range(name: &str, v: &str, lo: u64, hi: u64) -> Result<(), AwsError> {
    match v.trim().parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(()),
        _ => Err(invalid_attr_value(
            name,
            &format!("must be an integer between {lo} and {hi}."),
        )),
    }
}

fn validate_attrs(attrs: &BTreeMap<String, String>) -> Result<(), AwsError> {
    for (k, v) in attrs {
        match k.as_str() {
            "DelaySeconds" => check_range(k, v, 0, 900)?,
            "MaximumMessageSize" => check_range(k, v, 1024, MAX_MESSAGE_SIZE)?,
            "MessageRetentionPeriod" => check_range(k, v, 60, 1_209_600)?,
            "ReceiveMessageWaitTimeSeconds" => check_range(k, v, 0, 20)?,
            "VisibilityTimeout" => check_range(k, v, 0, 43_200)?,
            "RedrivePolicy" => {
                if !v.is_empty() {
                    parse_redrive(v)?;
                }
            }
            "Policy" | "RedriveAllowPolicy" => {
                if !v.is_empty() && serde_json::from_str::<Value>(v).is_err() {
                    return Err(invalid_attr_value(k, "the value is not valid JSON."));
                }
            }
            // A standard queue knows no FIFO attributes, whatever their value (recorded AWS
            // answers: "Unknown Attribute FifoQueue.", "You can specify the DeduplicationScope
            // only when FifoQueue is set to true."). FIFO queues are refused by name first.
            "FifoQueue" | "ContentBasedDeduplication" => return Err(invalid_attr_name(k)),
            "DeduplicationScope" | "FifoThroughputLimit" => {
                return Err(AwsError::new(
                    400,
                    "InvalidAttributeName",
                    format!("You can specify the {k} only when FifoQueue is set to true."),
                ));
            }
            "KmsDataKeyReusePeriodSeconds" => check_range(k, v, 60, 86_400)?,
            "SqsManagedSseEnabled" => {
                if !matches!(v.as_str(), "true" | "false") {
                    return Err(invalid_attr_value(k, "must be true or false."));
                }
            }
            other if SETTABLE.contains(&other) => {}
            other => return Err(invalid_attr_name(other)),
        }
    }
    Ok(())
}

fn parse_redrive(v: &str) -> Result<RedrivePolicy, AwsError> {
    let bad = |why: &str| invalid_attr_value("RedrivePolicy", why);
    let j: Value = serde_json::from_str(v).map_err(|_| bad("the value is not valid JSON."))?;
    let arn = j
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("deadLetterTargetArn is missing."))?;
    let count = match j.get("maxReceiveCount") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|n| (1..=1000).contains(n))
    .ok_or_else(|| bad("maxReceiveCount must be an integer between 1 and 1000."))?;
    if parse_arn(arn).is_none() {
        return Err(bad("deadLetterTargetArn is not a queue ARN."));
    }
    Ok(RedrivePolicy {
        dead_letter_arn: arn.to_owned(),
        max_receive_count: count as u32,
    })
}

impl Queue {
    fn attr_u64(&self, name: &str, default: u64) -> u64 {
        self.attrs
            .get(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    fn redrive(&self) -> Option<RedrivePolicy> {
        self.attrs
            .get("RedrivePolicy")
            .filter(|v| !v.is_empty())
            .and_then(|v| parse_redrive(v).ok())
    }

    /// Drops messages past their retention period.
    fn expire(&mut self, now: Millis) {
        if now < self.expiry_floor {
            return;
        }
        self.messages.retain(|m| m.expires_at > now);
        self.expiry_floor = self
            .messages
            .iter()
            .map(|m| m.expires_at)
            .min()
            .unwrap_or(Millis::MAX);
    }

    fn push(&mut self, m: Message) {
        self.expiry_floor = self.expiry_floor.min(m.expires_at);
        self.messages.push_back(m);
    }

    fn attribute(&self, region: &str, name: &str, now: Millis) -> Option<String> {
        let count = |f: &dyn Fn(&Message) -> bool| self.messages.iter().filter(|m| f(m)).count();
        Some(match name {
            "ApproximateNumberOfMessages" => count(&|m| m.visible_at <= now).to_string(),
            "ApproximateNumberOfMessagesNotVisible" => {
                count(&|m| m.visible_at > now && m.receive_count > 0).to_string()
            }
            "ApproximateNumberOfMessagesDelayed" => {
                count(&|m| m.visible_at > now && m.receive_count == 0).to_string()
            }
            "CreatedTimestamp" => (self.created / 1000).to_string(),
            "LastModifiedTimestamp" => (self.modified / 1000).to_string(),
            "QueueArn" => queue_arn(region, &self.name),
            "VisibilityTimeout" => self
                .attr_u64("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT)
                .to_string(),
            "MessageRetentionPeriod" => self
                .attr_u64("MessageRetentionPeriod", DEFAULT_RETENTION)
                .to_string(),
            "MaximumMessageSize" => self
                .attr_u64("MaximumMessageSize", MAX_MESSAGE_SIZE)
                .to_string(),
            "DelaySeconds" => self.attr_u64("DelaySeconds", 0).to_string(),
            "ReceiveMessageWaitTimeSeconds" => self
                .attr_u64("ReceiveMessageWaitTimeSeconds", 0)
                .to_string(),
            // SSE-SQS is on by default for new queues; a KMS key turns it off (Amazon SQS
            // Developer Guide, "Encryption at rest": "SSE-SQS is enabled by default").
            "SqsManagedSseEnabled" => self
                .attrs
                .get(name)
                .cloned()
                .unwrap_or_else(|| "true".into()),
            // Shown only while a KMS key is set (default 300 s).
            "KmsDataKeyReusePeriodSeconds" => {
                self.attrs.get("KmsMasterKeyId").filter(|k| !k.is_empty())?;
                self.attr_u64(name, 300).to_string()
            }
            other => self.attrs.get(other).filter(|v| !v.is_empty())?.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Core operations on the world (shared by both protocols and by other services)
// ---------------------------------------------------------------------------------------

/// How a message over the queue's `MaximumMessageSize` is refused by SendMessage, and
/// how within SendMessageBatch (recorded AWS answers).
const TOO_LONG_SINGLE: &str = "One or more parameters are invalid.";
const TOO_LONG_IN_BATCH: &str = "One or more parameters cannot be validated.";

/// What a send may carry besides the body and the message attributes.
#[derive(Debug, Clone, Default)]
pub(crate) struct SendOptions {
    /// `DelaySeconds`; the queue's own delay when `None`.
    delay: Option<u64>,
    /// The `AWSTraceHeader` system attribute.
    trace_header: Option<String>,
    /// `MessageGroupId` (accepted on standard queues, which keep it as an attribute).
    group_id: Option<String>,
}

/// The size SQS counts for a message: the body, and each attribute's name, type and value
/// (Amazon SQS Developer Guide, "Message attributes": they count toward the size limit).
/// SNS counts a published message the same way.
pub(crate) fn message_size(body: &str, attrs: &BTreeMap<String, MessageAttr>) -> usize {
    body.len()
        + attrs
            .iter()
            .map(|(k, a)| {
                k.len()
                    + a.data_type.len()
                    + a.string_value.as_ref().map_or(0, String::len)
                    + a.binary_value.as_ref().map_or(0, Vec::len)
            })
            .sum::<usize>()
}

/// Puts a message on `queue`, scheduling a wake-up when it becomes visible, and waking
/// long pollers now when it is visible at once.
fn enqueue(
    world: &mut World,
    region: &str,
    queue: &str,
    body: String,
    attrs: BTreeMap<String, MessageAttr>,
    opts: SendOptions,
) -> Result<Message, AwsError> {
    let now = world.now;
    let q = find_queue(world, region, queue)?;
    let max = q.attr_u64("MaximumMessageSize", MAX_MESSAGE_SIZE);
    let size = message_size(&body, &attrs);
    if size as u64 > max {
        return Err(invalid(format!(
            "{TOO_LONG_SINGLE} Reason: Message must be shorter than {max} bytes."
        )));
    }
    let delay = opts.delay.unwrap_or_else(|| q.attr_u64("DelaySeconds", 0));
    let md5_attrs = (!attrs.is_empty()).then(|| md5_of_attributes(&attrs));
    let m = Message {
        id: ids::uuid(),
        md5_body: md5_hex(body.as_bytes()),
        body,
        attrs,
        md5_attrs,
        trace_header: opts.trace_header,
        group_id: opts.group_id,
        dlq_source_arn: None,
        sent: now,
        visible_at: now + delay * 1000,
        expires_at: now + q.attr_u64("MessageRetentionPeriod", DEFAULT_RETENTION) * 1000,
        receive_count: 0,
        first_receive: None,
        receipt: None,
    };
    q.push(m.clone());
    if delay == 0 {
        q.notify.notify_waiters();
    } else {
        let name = q.name.clone();
        world.schedule(
            m.visible_at,
            region,
            WorldTimer::Sqs(Timer::Wake { queue: name }),
        );
    }
    Ok(m)
}

/// Sends `body` to the queue whose ARN is `arn` (used by Auto Scaling, SNS and EventBridge
/// to deliver to queues). Wakes long-polling receivers.
pub(crate) fn send_by_arn(
    world: &mut World,
    region: &str,
    arn: &str,
    body: &str,
) -> Result<(), DeliveryError> {
    send_by_arn_with_attrs(world, region, arn, body, BTreeMap::new())
}

/// [`send_by_arn`] with message attributes (SNS raw delivery carries them).
pub(crate) fn send_by_arn_with_attrs(
    world: &mut World,
    region: &str,
    arn: &str,
    body: &str,
    attrs: BTreeMap<String, MessageAttr>,
) -> Result<(), DeliveryError> {
    let (region, name) = crate::world::delivery_target(region, arn, parse_arn)?;
    if !world.region(region).sqs.queues.contains_key(name) {
        return Err(DeliveryError::NoSuchTarget(arn.to_owned()));
    }
    enqueue(
        world,
        region,
        name,
        body.to_owned(),
        attrs,
        SendOptions::default(),
    )
    .map(|_| ())
    .map_err(|e| DeliveryError::Refused {
        arn: arn.to_owned(),
        reason: e.message,
    })
}

/// The number of messages in a queue (visible or not), for tests and the control API.
#[cfg(test)]
pub(crate) fn queue_depth(world: &mut World, region: &str, name: &str) -> Option<usize> {
    world
        .region(region)
        .sqs
        .queues
        .get(name)
        .map(|q| q.messages.len())
}

/// The control API's view of a region's queues: per queue, how many messages are visible,
/// in flight and delayed.
pub(crate) fn state_json(state: &State, now: Millis) -> Value {
    let queues: Map<String, Value> = state
        .queues
        .values()
        .map(|q| {
            let visible = q.messages.iter().filter(|m| m.visible_at <= now).count();
            let in_flight = q
                .messages
                .iter()
                .filter(|m| m.visible_at > now && m.receive_count > 0)
                .count();
            let delayed = q.messages.len() - visible - in_flight;
            // How long until the first in-flight message becomes visible again (lets a
            // test on the manual clock wait for a consumer to extend visibility).
            let in_flight_seconds_left = q
                .messages
                .iter()
                .filter(|m| m.visible_at > now && m.receive_count > 0)
                .map(|m| (m.visible_at - now) as f64 / 1000.0)
                .reduce(f64::min);
            (
                q.name.clone(),
                json!({"visible": visible, "in_flight": in_flight, "delayed": delayed,
                       "in_flight_seconds_left": in_flight_seconds_left}),
            )
        })
        .collect();
    Value::Object(queues)
}

/// Creates an empty queue with default attributes (unit tests of the services that
/// deliver to SQS).
#[cfg(test)]
pub(crate) fn create_test_queue(world: &mut World, region: &str, name: &str) {
    let now = world.now;
    world.region(region).sqs.queues.insert(
        name.to_owned(),
        Queue {
            name: name.to_owned(),
            created: now,
            modified: now,
            attrs: BTreeMap::new(),
            messages: VecDeque::new(),
            expiry_floor: Millis::MAX,
            notify: Arc::new(Notify::new()),
            tags: BTreeMap::new(),
            last_purge: None,
        },
    );
}
/// Whether `c` may appear in a message body or a string attribute value: `#x9 | #xA |
/// #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF` (SendMessage API
/// reference).
fn valid_message_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Checks a message attribute name as SQS does (Amazon SQS Developer Guide, "Message
/// attributes"): 1–256 characters, letters, digits, `-`, `_` and `.`; no leading or
/// trailing period, no two periods in a row, and no `AWS.` or `Amazon.` prefix (any case).
fn check_attr_name(name: &str) -> Result<(), AwsError> {
    let bad = |why: &str| {
        invalid(format!(
            "Message (user) attribute name '{name}' is invalid. Reason: {why}"
        ))
    };
    if name.is_empty() || name.chars().count() > 256 {
        return Err(bad("The name must be 1 to 256 characters long."));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(bad(&format!(
            "It contains the character '{c}'; only letters, digits, hyphens, underscores and periods are allowed."
        )));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        return Err(bad(
            "The prefixes AWS. and Amazon. (in any case) are reserved.",
        ));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(bad(
            "It must not start or end with a period or contain two periods in a row.",
        ));
    }
    Ok(())
}

/// Decodes `MessageAttributes` (JSON shape: `{name: {DataType, StringValue | BinaryValue}}`).
pub(crate) fn message_attrs(
    m: Option<&Map<String, Value>>,
) -> Result<BTreeMap<String, MessageAttr>, AwsError> {
    let mut out = BTreeMap::new();
    let Some(m) = m else {
        return Ok(out);
    };
    if m.len() > 10 {
        return Err(invalid(
            "Number of message attributes [".to_string()
                + &m.len().to_string()
                + "] exceeds the allowed maximum [10].",
        ));
    }
    for (name, v) in m {
        check_attr_name(name)?;
        let dt = v.get("DataType").and_then(Value::as_str).unwrap_or("");
        let base = dt.split('.').next().unwrap_or("");
        if !matches!(base, "String" | "Number" | "Binary") {
            return Err(invalid(format!(
                "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            )));
        }
        let sv = v
            .get("StringValue")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let bv = match v.get("BinaryValue").and_then(Value::as_str) {
            Some(s) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| {
                        invalid(format!(
                            "The binary value of attribute '{name}' is not base64."
                        ))
                    })?,
            ),
            None => None,
        };
        let empty = if base == "Binary" {
            bv.as_ref().is_none_or(Vec::is_empty)
        } else {
            sv.as_ref().is_none_or(String::is_empty)
        };
        if empty {
            return Err(invalid(format!(
                "Message (user) attribute '{name}' must contain a non-empty value of type '{base}'."
            )));
        }
        if let Some(c) = sv
            .as_deref()
            .and_then(|s| s.chars().find(|c| !valid_message_char(*c)))
        {
            return Err(invalid(format!(
                "Message (user) attribute '{name}' contains an invalid character (U+{:04X}). Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.",
                c as u32
            )));
        }
        if base == "Number"
            && sv
                .as_deref()
                .is_some_and(|s| s.trim().parse::<f64>().is_err())
        {
            return Err(invalid(format!(
                "Can't cast the value of message (user) attribute '{name}' to a number."
            )));
        }
        out.insert(
            name.clone(),
            MessageAttr {
                data_type: dt.to_owned(),
                string_value: if base == "Binary" { None } else { sv },
                binary_value: if base == "Binary" { bv } else { None },
            },
        );
    }
    Ok(out)
}

/// Decodes `MessageSystemAttributes`: only `AWSTraceHeader`, a `String` (SendMessage API
/// reference). Returns the trace header and `MD5OfMessageSystemAttributes`, which is
/// computed like `MD5OfMessageAttributes`.
pub(crate) fn system_attrs(
    m: Option<&Map<String, Value>>,
) -> Result<(Option<String>, Option<String>), AwsError> {
    let Some(m) = m.filter(|m| !m.is_empty()) else {
        return Ok((None, None));
    };
    let mut trace = None;
    for (name, v) in m {
        if name != "AWSTraceHeader" {
            return Err(invalid(format!(
                "Message system attribute name '{name}' is invalid."
            )));
        }
        let dt = v.get("DataType").and_then(Value::as_str).unwrap_or("");
        let sv = v.get("StringValue").and_then(Value::as_str).unwrap_or("");
        if dt != "String" {
            return Err(invalid(format!(
                "The type of message system attribute '{name}' is invalid. It must be String."
            )));
        }
        if sv.is_empty() {
            return Err(invalid(format!(
                "Message system attribute '{name}' must contain a non-empty value of type 'String'."
            )));
        }
        trace = Some(sv.to_owned());
    }
    let md5 = trace.as_ref().map(|t| {
        let mut a = BTreeMap::new();
        a.insert(
            "AWSTraceHeader".to_owned(),
            MessageAttr {
                data_type: "String".into(),
                string_value: Some(t.clone()),
                binary_value: None,
            },
        );
        md5_of_attributes(&a)
    });
    Ok((trace, md5))
}

/// The queue `name`, as it is (expired messages not yet dropped).
fn find_queue<'w>(
    world: &'w mut World,
    region: &str,
    name: &str,
) -> Result<&'w mut Queue, AwsError> {
    world
        .region(region)
        .sqs
        .queues
        .get_mut(name)
        .ok_or_else(no_queue)
}

fn queue_mut<'w>(
    world: &'w mut World,
    region: &str,
    name: &str,
) -> Result<&'w mut Queue, AwsError> {
    let now = world.now;
    let q = find_queue(world, region, name)?;
    q.expire(now);
    Ok(q)
}

// ---------------------------------------------------------------------------------------
// Receipt handles
// ---------------------------------------------------------------------------------------

fn new_handle(msg_id: &str) -> String {
    let raw = format!("{msg_id}:{}", ids::hex32());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The message id a receipt handle belongs to; `None` if it is not a handle at all.
fn handle_message_id(h: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD.decode(h).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (id, nonce) = s.split_once(':')?;
    (id.len() == 36 && nonce.len() == 32).then(|| id.to_owned())
}

fn delete_message(world: &mut World, region: &str, queue: &str, h: &str) -> Result<(), AwsError> {
    let q = queue_mut(world, region, queue)?;
    let id = handle_message_id(h).ok_or_else(|| bad_handle(h))?;
    // Deleting with an outdated handle of a message that still exists succeeds, as on AWS;
    // a message already deleted is a no-op.
    // Ids are unique, and a message being deleted was received, so it is usually near the
    // front: find it from there instead of scanning the whole queue.
    if let Some(i) = q.messages.iter().position(|m| m.id == id) {
        q.messages.remove(i);
    }
    Ok(())
}

fn change_visibility(
    world: &mut World,
    region: &str,
    queue: &str,
    h: &str,
    vt: i64,
) -> Result<(), AwsError> {
    let id = handle_message_id(h).ok_or_else(|| bad_handle(h))?;
    if !(0..=43_200).contains(&vt) {
        return Err(invalid(format!(
            "Value {vt} for parameter VisibilityTimeout is invalid. Reason: VisibilityTimeout must be an integer between 0 and 43200."
        )));
    }
    let now = world.now;
    let q = queue_mut(world, region, queue)?;
    let name = q.name.clone();
    // A deleted message: AWS answers InvalidParameterValue with this wording. A message
    // whose visibility already ended, or a handle of an earlier receive of a message that
    // still exists, is changed and answered 200, as AWS answers (the recorded responses of
    // "change visibility after the visibility timeout expired" and "terminate visibility
    // with the first receive's handle").
    let Some(m) = q.messages.iter_mut().find(|m| m.id == id) else {
        return Err(invalid_param(
            "ReceiptHandle",
            h,
            "Message does not exist or is not available for visibility timeout change.",
        ));
    };
    m.visible_at = now + vt as u64 * 1000;
    let at = m.visible_at;
    if vt == 0 {
        q.notify.notify_waiters();
    } else {
        world.schedule(at, region, WorldTimer::Sqs(Timer::Wake { queue: name }));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ReceiveMessage and long polling
// ---------------------------------------------------------------------------------------

struct ReceiveArgs {
    name: String,
    max: usize,
    visibility: Option<u64>,
    wait: u64,
    system_attrs: Vec<String>,
    message_attrs: Vec<String>,
}

/// Receives up to `args.max` visible messages, moving those past the redrive limit to the
/// dead-letter queue.
fn take_messages(
    world: &mut World,
    region: &str,
    args: &ReceiveArgs,
) -> Result<Vec<Value>, AwsError> {
    let now = world.now;
    let q = queue_mut(world, region, &args.name)?;
    let visibility = args
        .visibility
        .unwrap_or_else(|| q.attr_u64("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT));
    let redrive = q.redrive();
    let mut out = Vec::new();
    let mut to_dlq = Vec::new();
    let mut i = 0;
    while i < q.messages.len() && out.len() < args.max {
        if q.messages[i].visible_at > now {
            i += 1;
            continue;
        }
        if let Some(r) = &redrive
            && q.messages[i].receive_count >= r.max_receive_count
        {
            if let Some(m) = q.messages.remove(i) {
                to_dlq.push(m);
            }
            continue;
        }
        let m = &mut q.messages[i];
        m.receive_count += 1;
        m.first_receive.get_or_insert(now);
        m.visible_at = now + visibility * 1000;
        let handle = new_handle(&m.id);
        m.receipt = Some(handle.clone());
        out.push(message_json(m, &handle, args));
        i += 1;
    }
    let name = q.name.clone();
    if !out.is_empty() && visibility > 0 {
        world.schedule(
            now + visibility * 1000,
            region,
            WorldTimer::Sqs(Timer::Wake { queue: name }),
        );
    }
    if let (Some(r), false) = (redrive, to_dlq.is_empty()) {
        let (dlq_region, dlq_name) = parse_arn(&r.dead_letter_arn)
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap_or_default();
        let dlq_region = if dlq_region.is_empty() {
            region.to_owned()
        } else {
            dlq_region
        };
        for mut m in to_dlq {
            let Some(dlq) = world.region(&dlq_region).sqs.queues.get_mut(&dlq_name) else {
                tracing::warn!(queue = %args.name, dlq = %r.dead_letter_arn, "dead-letter queue does not exist; message dropped");
                continue;
            };
            // The message keeps its id, body, attributes and counts; it is visible at once
            // and names the queue it came from (`DeadLetterQueueSourceArn`).
            m.visible_at = now;
            m.receipt = None;
            m.dlq_source_arn = Some(queue_arn(region, &args.name));
            m.expires_at =
                m.sent + dlq.attr_u64("MessageRetentionPeriod", DEFAULT_RETENTION) * 1000;
            dlq.push(m);
            dlq.notify.notify_waiters();
        }
    }
    Ok(out)
}

/// Receives up to `max` visible messages of `queue` as a Lambda event source mapping does
/// (a receive like any other: the queue's visibility timeout, a receive counted, the
/// redrive policy applied) and returns them as SQS event records for a function (spec
/// §3.7 shape: `messageId`, `receiptHandle`, `body`, `attributes`, `messageAttributes`,
/// `md5OfBody`, `eventSource`, `eventSourceARN`, `awsRegion`).
pub(crate) fn receive_for_lambda(
    world: &mut World,
    region: &str,
    queue: &str,
    max: usize,
) -> Result<Vec<Value>, AwsError> {
    let args = ReceiveArgs {
        name: queue.to_owned(),
        max,
        visibility: None,
        wait: 0,
        system_attrs: vec!["All".into()],
        message_attrs: vec!["All".into()],
    };
    let arn = queue_arn(region, queue);
    Ok(take_messages(world, region, &args)?
        .into_iter()
        .map(|m| {
            let attrs: Map<String, Value> = m["MessageAttributes"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, a)| {
                            let mut v = json!({
                                "dataType": a["DataType"],
                                "stringListValues": [],
                                "binaryListValues": [],
                            });
                            if let Some(s) = a.get("StringValue") {
                                v["stringValue"] = s.clone();
                            }
                            if let Some(b) = a.get("BinaryValue") {
                                v["binaryValue"] = b.clone();
                            }
                            (k.clone(), v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut r = json!({
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes").cloned().unwrap_or_else(|| json!({})),
                "messageAttributes": attrs,
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            });
            if let Some(md5) = m.get("MD5OfMessageAttributes") {
                r["md5OfMessageAttributes"] = md5.clone();
            }
            r
        })
        .collect())
}

/// Deletes a message by receipt handle, for a Lambda event source mapping.
pub(crate) fn delete_for_lambda(
    world: &mut World,
    region: &str,
    queue: &str,
    receipt_handle: &str,
) -> Result<(), AwsError> {
    delete_message(world, region, queue, receipt_handle)
}

/// What wakes a waiter on `queue` (a message sent, or one visible again); `None` when the
/// queue does not exist.
pub(crate) fn queue_notify(world: &mut World, region: &str, queue: &str) -> Option<Arc<Notify>> {
    world
        .region(region)
        .sqs
        .queues
        .get(queue)
        .map(|q| q.notify.clone())
}

/// Whether `queue` exists in `region`.
pub(crate) fn queue_exists(world: &mut World, region: &str, queue: &str) -> bool {
    world.region(region).sqs.queues.contains_key(queue)
}

/// Whether `name` is selected by the `AttributeNames`/`MessageAttributeNames` of a receive:
/// `All`, `*` and `.*` select every attribute, `prefix.*` those whose name starts with
/// `prefix` (ReceiveMessage API reference; the recorded AWS answer selects `Hello` and
/// `Help.Me` with `Hel.*`), anything else the attribute of that name.
fn wants(list: &[String], name: &str) -> bool {
    list.iter().any(|n| {
        matches!(n.as_str(), "All" | "*" | ".*")
            || n == name
            || n.strip_suffix(".*").is_some_and(|p| name.starts_with(p))
    })
}

fn message_json(m: &Message, handle: &str, args: &ReceiveArgs) -> Value {
    let mut v = json!({
        "MessageId": m.id,
        "ReceiptHandle": handle,
        "MD5OfBody": m.md5_body,
        "Body": m.body,
    });
    let mut sys = Map::new();
    let mut put = |k: &str, val: String| {
        if wants(&args.system_attrs, k) {
            sys.insert(k.to_owned(), json!(val));
        }
    };
    put("SenderId", ACCOUNT_ID.to_owned());
    put("SentTimestamp", m.sent.to_string());
    put("ApproximateReceiveCount", m.receive_count.to_string());
    put(
        "ApproximateFirstReceiveTimestamp",
        m.first_receive.unwrap_or(m.sent).to_string(),
    );
    for (k, v) in [
        ("AWSTraceHeader", &m.trace_header),
        ("MessageGroupId", &m.group_id),
        ("DeadLetterQueueSourceArn", &m.dlq_source_arn),
    ] {
        if let Some(v) = v {
            put(k, v.clone());
        }
    }
    if !sys.is_empty() {
        v["Attributes"] = Value::Object(sys);
    }
    let chosen: BTreeMap<String, MessageAttr> = m
        .attrs
        .iter()
        .filter(|(k, _)| wants(&args.message_attrs, k))
        .map(|(k, a)| (k.clone(), a.clone()))
        .collect();
    if !chosen.is_empty() {
        v["MD5OfMessageAttributes"] = json!(md5_of_attributes(&chosen));
        let mut attrs = Map::new();
        for (k, a) in &chosen {
            let mut o = json!({"DataType": a.data_type});
            if let Some(s) = &a.string_value {
                o["StringValue"] = json!(s);
            }
            if let Some(b) = &a.binary_value {
                o["BinaryValue"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
            }
            attrs.insert(k.clone(), o);
        }
        v["MessageAttributes"] = Value::Object(attrs);
    }
    v
}
